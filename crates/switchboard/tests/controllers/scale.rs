//! 100 Services over 1,000 pods: Endpoints and EndpointSlices converge, slices split at 100
//! endpoints, and a restart of the server and the controllers writes nothing (no Endpoints or
//! EndpointSlice changes its resourceVersion). Also the pod-change-to-slice latency at that
//! size; `bench_pod_to_slice_latency_10k` (ignored) does the same at 10,000 pods.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams};
use kube::Client;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const NS: &str = "scale";
/// Pods fall in this many groups; Service i selects group i % GROUPS.
const GROUPS: usize = 4;

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", 42 + i / 65536, (i / 256) % 256, i % 256)
}

async fn populate(c: &Cluster, pods_n: usize, services_n: usize) {
    create_namespace(&c.client, NS).await;
    let pods = c.pods(NS);
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    futures::stream::iter(0..services_n)
        .map(|i| {
            let services = services.clone();
            async move {
                let sel = if i == 0 { json!({"app": "scale"}) } else { json!({"app": "scale", "group": format!("g{}", i % GROUPS)}) };
                services.create(&PostParams::default(), &service(&format!("svc-{i}"), sel, 80)).await.unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    futures::stream::iter(0..pods_n)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let p = pod(&format!("pod-{i}"), json!({"app": "scale", "group": format!("g{}", i % GROUPS)}), &ip(i), true);
                pods.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

/// (kind/name) -> resourceVersion of every Endpoints and EndpointSlice in the namespace.
async fn versions(client: &Client) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in Api::<Endpoints>::namespaced(client.clone(), NS).list(&ListParams::default()).await.unwrap().items {
        out.insert(format!("endpoints/{}", e.metadata.name.unwrap()), e.metadata.resource_version.unwrap());
    }
    for s in Api::<EndpointSlice>::namespaced(client.clone(), NS).list(&ListParams::default()).await.unwrap().items {
        out.insert(format!("endpointslice/{}", s.metadata.name.unwrap()), s.metadata.resource_version.unwrap());
    }
    out
}

/// Waits until every Service has slices holding exactly its pods, none over 100.
async fn converged(client: &Client, pods_n: usize, services_n: usize, secs: u64) {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    eventually(secs, "slices converge", || async {
        let all = slices.list(&ListParams::default()).await.ok()?.items;
        let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for s in &all {
            if s.endpoints.len() > 100 {
                panic!("slice {:?} holds {} endpoints", s.metadata.name, s.endpoints.len());
            }
            let svc = s.metadata.labels.as_ref()?.get("kubernetes.io/service-name")?.clone();
            let e = per.entry(svc).or_default();
            e.0 += s.endpoints.len();
            e.1 += 1;
        }
        let group = pods_n / GROUPS;
        let ok = (0..services_n).all(|i| {
            let want = if i == 0 { pods_n } else { group };
            per.get(&format!("svc-{i}")) == Some(&(want, want.div_ceil(100)))
        });
        ok.then_some(())
    })
    .await;
}

async fn pod_to_slice_latencies(c: &Cluster, rounds: usize) -> Vec<Duration> {
    let pods = c.pods(NS);
    let mut rx = watch_slices(&c.client, NS, "svc-1");
    let target = ip(1);
    next_matching(&mut rx, "initial state", |s| conditions_of(s, &target) == Some((true, true, false))).await;
    let mut out = Vec::new();
    for round in 0..rounds {
        let ready = round % 2 == 1;
        set_ready(&pods, "pod-1", ready).await;
        let acked = Instant::now();
        let seen = next_matching(&mut rx, "readiness flip", |s| conditions_of(s, &target) == Some((ready, ready, false))).await;
        out.push(seen.saturating_duration_since(acked));
    }
    // Leave it ready.
    if rounds % 2 == 1 {
        set_ready(&pods, "pod-1", true).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_services_over_a_thousand_pods_converge_and_a_restart_writes_nothing() {
    let mut c = Cluster::start().await;
    let started = Instant::now();
    populate(&c, 1000, 100).await;
    let populated = started.elapsed();
    converged(&c.client, 1000, 100, 60).await;
    eprintln!("1,000 pods and 100 Services written in {populated:?}; slices converged {:?} after the start", started.elapsed());
    let endpoints: Api<Endpoints> = Api::namespaced(c.client.clone(), NS);
    let all = endpoints.get("svc-0").await.unwrap();
    let n: usize = all.subsets.iter().flatten().map(|s| s.addresses.as_ref().map_or(0, Vec::len)).sum();
    assert_eq!(n, 1000, "svc-0 selects every pod (at the Endpoints capacity)");

    let lat = pod_to_slice_latencies(&c, 20).await;
    let (p50, p99) = percentiles(lat.clone());
    eprintln!("1,000 pods / 100 Services: pod status write acknowledged -> EndpointSlice event p50 {p50:.1} ms, p99 {p99:.1} ms");
    assert!(lat.iter().all(|d| *d < Duration::from_millis(100)), "{lat:?}");

    // Let the last writes settle, then restart everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = versions(&c.client).await;
    c.restart().await;
    converged(&c.client, 1000, 100, 60).await;
    // Give the controllers time to finish their first full pass (and one resync).
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(ctl) = &c.controllers {
        eventually(30, "controllers idle", || async { ctl.is_idle().then_some(()) }).await;
        assert_eq!(c.writes(), Some(0), "the restarted controllers wrote something");
    }
    let after = versions(&c.client).await;
    assert_eq!(before.len(), after.len());
    let changed: Vec<&String> = before.iter().filter(|(k, v)| after.get(*k) != Some(v)).map(|(k, _)| k).collect();
    assert!(changed.is_empty(), "rewritten after the restart: {changed:?}");
}

/// `cargo test --release -p switchboard --test controllers -- --ignored --nocapture bench`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: 10,000 pods, minutes in a debug build"]
async fn bench_pod_to_slice_latency_10k() {
    for (pods_n, services_n) in [(1000usize, 100usize), (10_000, 100)] {
        let c = Cluster::start().await;
        let started = Instant::now();
        populate(&c, pods_n, services_n).await;
        converged(&c.client, pods_n, services_n, 600).await;
        let synced = started.elapsed();
        let lat = pod_to_slice_latencies(&c, 100).await;
        let (p50, p99) = percentiles(lat);
        println!("{pods_n} pods / {services_n} Services: populated+converged in {synced:?}; pod change -> EndpointSlice p50 {p50:.2} ms, p99 {p99:.2} ms");
    }
}
