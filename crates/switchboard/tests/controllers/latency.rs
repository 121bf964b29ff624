//! A pod write — readiness flip, label change, graceful and forced deletion, a new pod — is
//! reflected in the Service's EndpointSlice and Endpoints, as kube-rs watches see them; the
//! issue's bound is 100 ms from the write.
//!
//! How the bound is held (see the crate README of `controllers`, "Latency"): every change must
//! arrive (within a generous 10 s, so a lost event fails the test instead of hanging it); each
//! change's latency is measured from just before the write is sent (so the write's own
//! round trip counts against us) to the watch event, and all of them are printed. In a release
//! build the median over the changes must be under 100 ms, for the slices and for the
//! Endpoints. A debug build on a shared 2-core machine measures the compiler's output more
//! than the design, so there the numbers are reported, not asserted; the release benchmark
//! (`bench/controllers`) gives p50/p99 at 1,000 and 10,000 pods.

use crate::support::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const NS: &str = "latency";
const LIMIT_MS: f64 = 100.0;

#[test]
fn pod_changes_reach_endpointslices_and_endpoints_within_100ms() {
    run_test(pod_changes_reach_endpointslices_and_endpoints_within_100ms_body());
}

async fn pod_changes_reach_endpointslices_and_endpoints_within_100ms_body() {
    let _serial = serial().await;
    eprintln!("latency: started");
    within(180, "the latency test", run()).await;
    eprintln!("latency: done");
}

/// The Service's Endpoints as a kube-rs watch sees them, each stamped with its arrival.
fn watch_endpoints(client: &kube::Client) -> mpsc::UnboundedReceiver<(Instant, Endpoints)> {
    let api: Api<Endpoints> = Api::namespaced(client.clone(), NS);
    let cfg = watcher::Config::default().fields("metadata.name=web");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(e) | watcher::Event::InitApply(e)) = ev {
                if tx.send((Instant::now(), e)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// (ready, not ready) addresses of the Endpoints.
fn addresses(e: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in e.subsets.iter().flatten() {
        ready.extend(s.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(s.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    (ready, not_ready)
}

async fn next_endpoints(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Endpoints)>,
    what: &str,
    pred: impl Fn(&(Vec<String>, Vec<String>)) -> bool,
) -> Instant {
    within(10, what, async {
        loop {
            let (at, e) = rx.recv().await.expect("watch ended");
            if pred(&addresses(&e)) {
                return at;
            }
        }
    })
    .await
}

type SlicePred = Box<dyn Fn(&EndpointSlice) -> bool>;
type EndpointsPred = Box<dyn Fn(&(Vec<String>, Vec<String>)) -> bool>;

fn ip(i: usize) -> String {
    format!("10.42.1.{i}")
}

fn has(list: &[String], i: usize) -> bool {
    list.contains(&ip(i))
}

async fn run() {
    let c = Cluster::start().await;
    create_namespace(&c.client, NS).await;
    let pods = c.pods(NS);
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    services
        .create(
            &PostParams::default(),
            &service("web", json!({"app": "web"}), 8080),
        )
        .await
        .unwrap();
    for i in 0..10 {
        pods.create(
            &PostParams::default(),
            &pod(&format!("web-{i}"), json!({"app": "web"}), &ip(i), true),
        )
        .await
        .unwrap();
    }
    let mut slices = watch_slices(&c.client, NS, "web");
    let mut eps = watch_endpoints(&c.client);
    next_matching(&mut slices, "all ten endpoints ready in the slice", |s| {
        (0..10).all(|i| conditions_of(s, &ip(i)) == Some((true, true, false)))
    })
    .await;
    next_endpoints(
        &mut eps,
        "all ten addresses ready in Endpoints",
        |(r, _)| r.len() == 10,
    )
    .await;

    // (what, slice latency, Endpoints latency)
    let mut results: Vec<(String, Duration, Duration)> = Vec::new();
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    for round in 0..14 {
        let (what, slice_ok, eps_ok): (String, SlicePred, EndpointsPred) = match round {
            0..=7 => {
                let ready = round % 2 == 1;
                (
                    format!("readiness of web-3 -> {ready}"),
                    Box::new(move |s| conditions_of(s, &ip(3)) == Some((ready, ready, false))),
                    Box::new(move |(r, n)| has(r, 3) == ready && has(n, 3) != ready),
                )
            }
            8 => (
                "label change takes web-5 out".into(),
                Box::new(|s| conditions_of(s, &ip(5)).is_none()),
                Box::new(|(r, n)| !has(r, 5) && !has(n, 5)),
            ),
            9 => (
                "label change brings web-5 back".into(),
                Box::new(|s| conditions_of(s, &ip(5)) == Some((true, true, false))),
                Box::new(|(r, _)| has(r, 5)),
            ),
            // A pod on a node is deleted gracefully: terminating in the slice (ready false,
            // serving true), gone from the v1 Endpoints.
            10 => (
                "graceful delete of web-6".into(),
                Box::new(|s| conditions_of(s, &ip(6)) == Some((false, true, true))),
                Box::new(|(r, n)| !has(r, 6) && !has(n, 6)),
            ),
            11 => (
                "forced delete of web-6".into(),
                Box::new(|s| conditions_of(s, &ip(6)).is_none()),
                Box::new(|(r, n)| !has(r, 6) && !has(n, 6)),
            ),
            12 => (
                "forced delete of web-7".into(),
                Box::new(|s| conditions_of(s, &ip(7)).is_none()),
                Box::new(|(r, n)| !has(r, 7) && !has(n, 7)),
            ),
            _ => (
                "a new pod web-10".into(),
                Box::new(|s| conditions_of(s, &ip(10)) == Some((true, true, false))),
                Box::new(|(r, _)| has(r, 10)),
            ),
        };
        let sent = Instant::now();
        match round {
            0..=7 => set_ready(&pods, "web-3", round % 2 == 1).await,
            8 | 9 => {
                let app = if round == 8 { "other" } else { "web" };
                let patch = json!({"metadata": {"labels": {"app": app}}});
                pods.patch("web-5", &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .unwrap();
            }
            10 => {
                pods.delete("web-6", &DeleteParams::default())
                    .await
                    .unwrap();
            }
            11 => {
                pods.delete("web-6", &force).await.unwrap();
            }
            12 => {
                pods.delete("web-7", &force).await.unwrap();
            }
            _ => {
                pods.create(
                    &PostParams::default(),
                    &pod("web-10", json!({"app": "web"}), &ip(10), true),
                )
                .await
                .unwrap();
            }
        }
        // Round 11's forced delete changes nothing in Endpoints (web-6 already left it): its
        // Endpoints latency is not measured.
        let slice_at = next_matching(&mut slices, &what, slice_ok).await;
        let eps_at = if round == 11 {
            sent
        } else {
            next_endpoints(&mut eps, &what, eps_ok).await
        };
        results.push((
            what,
            slice_at.saturating_duration_since(sent),
            eps_at.saturating_duration_since(sent),
        ));
    }

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (what, s, e) in &results {
        eprintln!(
            "latency: {what:<34} EndpointSlice {:>6.1} ms   Endpoints {:>6.1} ms",
            ms(*s),
            ms(*e)
        );
    }
    let slice_lat: Vec<Duration> = results.iter().map(|r| r.1).collect();
    let eps_lat: Vec<Duration> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 11)
        .map(|(_, r)| r.2)
        .collect();
    let (s50, s99) = percentiles(slice_lat);
    let (e50, e99) = percentiles(eps_lat);
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "latency ({build} build), from sending the pod write to the watch event: EndpointSlice median {s50:.1} ms, max {s99:.1} ms; Endpoints median {e50:.1} ms, max {e99:.1} ms"
    );
    if !cfg!(debug_assertions) {
        assert!(
            s50 < LIMIT_MS && e50 < LIMIT_MS,
            "median pod-change latency over {LIMIT_MS} ms: EndpointSlice {s50:.1} ms, Endpoints {e50:.1} ms"
        );
    }
}
