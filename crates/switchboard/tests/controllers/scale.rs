//! 100 Services over 1,000 pods: svc-0 selects all 1,000 (ten full slices, an Endpoints at
//! its 1,000-address capacity), svc-1..8 one shard of 125 each (two slices: 100 + 25), and
//! svc-9..99 one pod each. Endpoints and EndpointSlices converge, slices split at 100
//! endpoints, and a restart of the server and the controllers writes nothing (no Endpoints or
//! EndpointSlice changes its resourceVersion). Also the pod-change-to-slice latency at that
//! size, reported; `bench/controllers` measures it in a release build at 1,000 and 10,000 pods.

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
/// Pods fall in this many shards; svc-1..=SHARDS select one each.
const SHARDS: usize = 8;

/// What Service `i` selects, and how many of `pods_n` pods that is.
fn selection(i: usize, pods_n: usize) -> (serde_json::Value, usize) {
    match i {
        0 => (json!({"app": "scale"}), pods_n),
        i if i <= SHARDS => (
            json!({"app": "scale", "shard": format!("s{}", i - 1)}),
            pods_n / SHARDS,
        ),
        i => (json!({"app": "scale", "solo": format!("p{i}")}), 1),
    }
}

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", 42 + i / 65536, (i / 256) % 256, i % 256)
}

async fn populate(c: &Cluster, pods_n: usize, services_n: usize) {
    create_namespace(&c.client, NS).await;
    let pods = c.pods(NS);
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    // Pods first, then Services: each Service's first sync then sees all of its pods (the
    // other order rewrites svc-0's 1,000-address Endpoints for every pod).
    futures::stream::iter(0..pods_n)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let p = pod(&format!("pod-{i}"), json!({"app": "scale", "shard": format!("s{}", i % SHARDS), "solo": format!("p{i}")}), &ip(i), true);
                pods.create(&PostParams::default(), &p).await.unwrap();
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    futures::stream::iter(0..services_n)
        .map(|i| {
            let services = services.clone();
            async move {
                let (sel, _) = selection(i, pods_n);
                services
                    .create(
                        &PostParams::default(),
                        &service(&format!("svc-{i}"), sel, 80),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

/// Waits until nothing has changed for a second (the server's controllers are idle).
async fn settle(c: &Cluster) {
    let mut last = versions(&c.client).await;
    within(120, "the controllers to settle", async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = versions(&c.client).await;
            if now == last {
                return;
            }
            last = now;
        }
    })
    .await;
}

/// (kind/name) -> resourceVersion of every Endpoints and EndpointSlice in the namespace.
async fn versions(client: &Client) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in Api::<Endpoints>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("endpoints/{}", e.metadata.name.unwrap()),
            e.metadata.resource_version.unwrap(),
        );
    }
    for s in Api::<EndpointSlice>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("endpointslice/{}", s.metadata.name.unwrap()),
            s.metadata.resource_version.unwrap(),
        );
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
                panic!(
                    "slice {:?} holds {} endpoints",
                    s.metadata.name,
                    s.endpoints.len()
                );
            }
            let svc = s
                .metadata
                .labels
                .as_ref()?
                .get("kubernetes.io/service-name")?
                .clone();
            let e = per.entry(svc).or_default();
            e.0 += s.endpoints.len();
            e.1 += 1;
        }
        let ok = (0..services_n).all(|i| {
            let want = selection(i, pods_n).1;
            per.get(&format!("svc-{i}")) == Some(&(want, want.div_ceil(100)))
        });
        ok.then_some(())
    })
    .await;
}

/// The latency of each readiness flip from its acknowledgement to the slice event, and how
/// long each flip's own write (the PATCH of the pod status) took.
async fn pod_to_slice_latencies(c: &Cluster, rounds: usize) -> Vec<Duration> {
    pod_to_slice_latencies_and_writes(c, rounds).await.0
}

async fn pod_to_slice_latencies_and_writes(
    c: &Cluster,
    rounds: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let pods = c.pods(NS);
    // pod-42: in svc-0 (1,000 pods), svc-3 (its shard) and svc-42 (itself).
    let mut rx = watch_slices(&c.client, NS, "svc-42");
    let target = ip(42);
    next_matching(&mut rx, "initial state", |s| {
        conditions_of(s, &target) == Some((true, true, false))
    })
    .await;
    let mut out = Vec::new();
    let mut writes = Vec::new();
    for round in 0..rounds {
        let ready = round % 2 == 1;
        let sent = Instant::now();
        set_ready(&pods, "pod-42", ready).await;
        let acked = Instant::now();
        writes.push(acked - sent);
        let seen = next_matching(&mut rx, "readiness flip", |s| {
            conditions_of(s, &target) == Some((ready, ready, false))
        })
        .await;
        out.push(seen.saturating_duration_since(acked));
    }
    // Leave it ready.
    if rounds % 2 == 1 {
        set_ready(&pods, "pod-42", true).await;
    }
    (out, writes)
}

#[test]
fn hundred_services_over_a_thousand_pods_converge_and_a_restart_writes_nothing() {
    run_test(hundred_services_over_a_thousand_pods_converge_and_a_restart_writes_nothing_body());
}

async fn hundred_services_over_a_thousand_pods_converge_and_a_restart_writes_nothing_body() {
    let _serial = serial().await;
    let mut c = Cluster::start().await;
    let started = Instant::now();
    populate(&c, 1000, 100).await;
    let populated = started.elapsed();
    converged(&c.client, 1000, 100, 60).await;
    eprintln!("1,000 pods and 100 Services written in {populated:?}; slices converged {:?} after the start", started.elapsed());
    let endpoints: Api<Endpoints> = Api::namespaced(c.client.clone(), NS);
    let all = endpoints.get("svc-0").await.unwrap();
    let n: usize = all
        .subsets
        .iter()
        .flatten()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        n, 1000,
        "svc-0 selects every pod (at the Endpoints capacity)"
    );

    // Every readiness flip of pod-42 rewrites three slices and three Endpoints, one of them
    // 1,000 addresses long. Reported here (a debug build of the server spends ~0.2 s on that
    // Endpoints alone); the 100 ms bound is asserted by the latency test and measured in
    // release builds by the benchmark.
    let lat = pod_to_slice_latencies(&c, 10).await;
    let (p50, p99) = percentiles(lat.clone());
    eprintln!("1,000 pods / 100 Services (debug build): pod status write acknowledged -> EndpointSlice event p50 {p50:.1} ms, p99 {p99:.1} ms");

    // Let the last writes settle, then restart everything.
    settle(&c).await;
    let before = versions(&c.client).await;
    c.restart().await;
    converged(&c.client, 1000, 100, 60).await;
    // Give the controllers time to finish their first full pass over every Service.
    tokio::time::sleep(Duration::from_secs(3)).await;
    settle(&c).await;
    let after = versions(&c.client).await;
    assert_eq!(before.len(), after.len());
    let changed: Vec<&String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        changed.is_empty(),
        "rewritten after the restart: {changed:?}"
    );
}
