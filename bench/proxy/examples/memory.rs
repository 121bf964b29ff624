//! Memory by stage, without the kernel: the RSS the objects take, then what a
//! `SnapshotTracker` fed all of them adds, then what an `NftProxier` (on the in-memory `Fake`
//! backend) adds after its first, full sync and after 20 one-endpoint syncs, and the process's
//! peak. RSS deltas include what the allocator keeps after freeing (the full sync's whole table
//! and script are transient). Also the time of those incremental syncs, CPU only.
//!
//! Run: `cargo run --release -p bench-proxy --example memory -- 10000`

#[path = "../src/fixtures.rs"]
mod fixtures;

use fixtures::{objects, rss_kib, slice, ENDPOINTS};
use proxy_core::{ProxyConfig, SnapshotTracker};
use proxy_nft::{Fake, NftProxier};
use std::time::{Duration, Instant};

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
