//! Memory by stage, without the kernel: the RSS the objects take, then what a
//! `SnapshotTracker` fed all of them adds, then what an `NftProxier` (on the in-memory `Fake`
//! backend) adds after its first, full sync and after 20 one-endpoint syncs, and the process's
//! peak. RSS deltas include what the allocator keeps after freeing (the full sync's whole table
//! and script are transient). Also the time of those incremental syncs, CPU only.
//!
//! Run: `cargo run --release -p bench-proxy --example memory -- 10000`

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy_core::{ProxyConfig, SnapshotTracker};
use proxy_nft::{Fake, NftProxier};
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const ENDPOINTS: usize = 5;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10000, |a| a.parse().expect("size"));
    let cfg = ProxyConfig {
        node_name: "node1".into(),
        node_ips: vec!["172.30.0.10".parse().expect("ip")],
        cluster_cidrs: vec!["10.64.0.0/10".parse().expect("cidr")],
        service_cidrs: vec!["10.96.0.0/12".parse().expect("cidr")],
        ..ProxyConfig::default()
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    let r0 = rss_kib("VmRSS:");
    let (services, slices) = objects(n);
    let r1 = rss_kib("VmRSS:");
    let mut tracker = SnapshotTracker::from_objects(cfg.clone(), &services, &slices);
    let r2 = rss_kib("VmRSS:");
    let fake = Fake::default();
    let mut proxier = NftProxier::with_backends(cfg, fake.clone(), fake.clone()).expect("proxier");
    proxier.sync(tracker.snapshot()).expect("full sync");
    fake.0.lock().expect("fake").scripts.clear();
    let r3 = rss_kib("VmRSS:");
    let mut times: Vec<(Duration, Duration)> = Vec::new();
    for r in 0..21 {
        let i = (r * 7919) % n;
        let changed = slice(n, i, Some((i, r % ENDPOINTS)));
        let t = Instant::now();
        tracker.apply_slice(&changed);
        let report = proxier.sync(tracker.snapshot()).expect("sync");
        times.push((t.elapsed(), report.render));
        fake.0.lock().expect("fake").scripts.clear();
    }
    let r4 = rss_kib("VmRSS:");
    times.sort();
    println!(
        "| {n} | {:.0} MiB | +{:.0} MiB | +{:.0} MiB | {:.0} MiB | {:.0} MiB | {:.2} ms ({:.2} ms) |",
        mib(r1 - r0),
        mib(r2 - r1),
        mib(r3.saturating_sub(r2)),
        mib(r4),
        mib(rss_kib("VmHWM:")),
        times[10].0.as_secs_f64() * 1000.0,
        times[10].1.as_secs_f64() * 1000.0,
    );
}

fn ip(i: usize, base: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::from(base)) + i as u32)
}
fn objects(n: usize) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::with_capacity(n);
    let mut slices = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("svc-{i}");
        services.push(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "bench"},
                "spec": {"type": "ClusterIP", "clusterIP": ip(i + 1, [10, 96, 0, 0]).to_string(),
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}
            }))
            .expect("service"),
        );
        slices.push(slice(n, i, None));
    }
    (services, slices)
}
/// The slice of Service `i`; `changed` = (i, j) moves its endpoint j to another address.
fn slice(n: usize, i: usize, changed: Option<(usize, usize)>) -> EndpointSlice {
    let name = format!("svc-{i}");
    let eps: Vec<serde_json::Value> = (0..ENDPOINTS)
        .map(|j| {
            let mut k = i * ENDPOINTS + j;
            if changed == Some((i, j)) {
                k += n * ENDPOINTS;
            }
            json!({"addresses": [ip(k, [10, 64, 0, 0]).to_string()], "conditions": {"ready": true}, "nodeName": "node2"})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-abcde"), "namespace": "bench", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps,
    }))
    .expect("slice")
}
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
