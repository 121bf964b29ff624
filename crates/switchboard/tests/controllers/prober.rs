//! Readiness probing without a kubelet: a Pod on node1 with an httpGet readinessProbe aimed at
//! a listener of this test becomes Ready when the listener answers 200, and its endpoint in the
//! EndpointSlice follows; when the listener answers 503 the pod turns NotReady again.

use crate::support::*;
use controllers::probe::Prober;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, PostParams};
use serde_json::json;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NS: &str = "prober";

#[test]
fn a_readiness_probe_drives_the_ready_condition_and_the_slice() {
    run_test(a_readiness_probe_drives_the_ready_condition_and_the_slice_body());
}

async fn a_readiness_probe_drives_the_ready_condition_and_the_slice_body() {
    let _serial = serial().await;
    let c = Cluster::start().await;
    create_namespace(&c.client, NS).await;
    // The "process": answers with whatever status the test sets.
    let status = Arc::new(AtomicU16::new(200));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = status.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let code = answer.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            });
        }
    });
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    services
        .create(
            &PostParams::default(),
            &service("probed", json!({"app": "probed"}), 80),
        )
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "probed-0", "labels": {"app": "probed"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": "registered", "ports": [{"name": "http", "containerPort": port}],
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1, "failureThreshold": 1}}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]},
    }))
    .unwrap();
    let pods = c.pods(NS);
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let prober = tokio::spawn(Prober::new(c.client.clone(), "node1").run(async move {
        let _ = stopped.await;
    }));
    let mut rx = watch_slices(&c.client, NS, "probed");
    next_matching(&mut rx, "the probed pod ready in the slice", |s| {
        conditions_of(s, "127.0.0.1") == Some((true, true, false))
    })
    .await;
    let p = pods.get("probed-0").await.unwrap();
    let cond = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(cond.status, "True");
    assert!(cond.last_transition_time.is_some());

    status.store(503, Ordering::Relaxed);
    next_matching(&mut rx, "the probed pod not ready in the slice", |s| {
        conditions_of(s, "127.0.0.1") == Some((false, false, false))
    })
    .await;
    let _ = stop.send(());
    prober.await.unwrap();
}
