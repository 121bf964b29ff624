//! Pods without a kubelet: the serviceaccount controller gives every namespace its `default`
//! ServiceAccount (which ServiceAccount admission requires of a pod), and a pod on a node
//! deleted gracefully stays Terminating for its grace period, then the server finishes the
//! deletion the kubelet would have finished.

use crate::support::*;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

#[test]
fn every_namespace_gets_a_default_service_account_and_keeps_it() {
    run_test(every_namespace_gets_a_default_service_account_and_keeps_it_body());
}

async fn every_namespace_gets_a_default_service_account_and_keeps_it_body() {
    let _serial = serial().await;
    within(120, "the service account test", async {
        let c = Cluster::start().await;
        let accounts: Api<ServiceAccount> = Api::all(c.client.clone());
        let namespaces: Api<Namespace> = Api::all(c.client.clone());
        let names: Vec<String> = namespaces
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            assert!(names.contains(&ns.to_string()), "namespace {ns}");
        }
        eventually(20, "a default ServiceAccount in every namespace", || async {
            let have: Vec<String> = accounts
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|a| a.metadata.name.as_deref() == Some("default"))
                .filter_map(|a| a.metadata.namespace)
                .collect();
            names.iter().all(|n| have.contains(n)).then_some(())
        })
        .await;

        // A pod created right after its namespace is admitted: admission waits briefly for
        // the controller, as kube-apiserver does.
        create_namespace(&c.client, "fresh").await;
        let pods: Api<Pod> = Api::namespaced(c.client.clone(), "fresh");
        pods.create(
            &PostParams::default(),
            &pod("p", json!({"app": "p"}), "10.42.9.1", true),
        )
        .await
        .expect("a pod in a new namespace");

        // A deleted default account comes back; a pod naming a missing account is refused.
        let in_fresh: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "fresh");
        let old = in_fresh.get("default").await.unwrap().metadata.uid;
        in_fresh
            .delete("default", &DeleteParams::default())
            .await
            .unwrap();
        eventually(10, "the default ServiceAccount made again", || async {
            let sa = in_fresh.get_opt("default").await.ok()??;
            (sa.metadata.uid != old).then_some(())
        })
        .await;
        let mut other = pod("q", json!({"app": "q"}), "10.42.9.2", true);
        other.spec.as_mut().unwrap().service_account_name = Some("robot".into());
        match pods.create(&PostParams::default(), &other).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 403);
                assert_eq!(
                    s.message,
                    "pods \"q\" is forbidden: error looking up service account fresh/robot: serviceaccount \"robot\" not found"
                );
            }
            other => panic!("a pod with a missing ServiceAccount: {other:?}"),
        }
    })
    .await;
}

#[test]
fn a_gracefully_deleted_pod_terminates_then_the_server_removes_it() {
    run_test(a_gracefully_deleted_pod_terminates_then_the_server_removes_it_body());
}

async fn a_gracefully_deleted_pod_terminates_then_the_server_removes_it_body() {
    let _serial = serial().await;
    within(120, "the graceful deletion test", async {
        let c = Cluster::start().await;
        create_namespace(&c.client, "graceful").await;
        let pods = c.pods("graceful");
        let services: Api<k8s_openapi::api::core::v1::Service> =
            Api::namespaced(c.client.clone(), "graceful");
        services
            .create(
                &PostParams::default(),
                &service("web", json!({"app": "web"}), 80),
            )
            .await
            .unwrap();
        let mut p = pod("web-1", json!({"app": "web"}), "10.42.8.1", true);
        p.spec.as_mut().unwrap().termination_grace_period_seconds = Some(2);
        pods.create(&PostParams::default(), &p).await.unwrap();
        let mut rx = watch_slices(&c.client, "graceful", "web");
        next_matching(&mut rx, "web-1 ready", |s| {
            conditions_of(s, "10.42.8.1") == Some((true, true, false))
        })
        .await;

        let deleted_at = std::time::Instant::now();
        let answer = pods
            .delete("web-1", &DeleteParams::default())
            .await
            .unwrap();
        let marked = answer
            .left()
            .expect("a graceful delete answers with the pod");
        assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(2));
        assert!(marked.metadata.deletion_timestamp.is_some());
        next_matching(&mut rx, "web-1 terminating", |s| {
            conditions_of(s, "10.42.8.1") == Some((false, true, true))
        })
        .await;
        assert!(pods.get_opt("web-1").await.unwrap().is_some());
        // The server ends it once the grace period has passed.
        eventually(30, "web-1 removed after its grace period", || async {
            pods.get_opt("web-1").await.ok()?.is_none().then_some(())
        })
        .await;
        assert!(
            deleted_at.elapsed() >= std::time::Duration::from_secs(1),
            "removed before its grace period"
        );
        next_matching(&mut rx, "web-1 gone from the slice", |s| {
            conditions_of(s, "10.42.8.1").is_none()
        })
        .await;

        // A pod without a node (no kubelet would ever run it) goes at once.
        let mut unscheduled = pod("web-2", json!({"app": "web"}), "10.42.8.2", true);
        unscheduled.spec.as_mut().unwrap().node_name = None;
        pods.create(&PostParams::default(), &unscheduled)
            .await
            .unwrap();
        let answer = pods
            .delete("web-2", &DeleteParams::default())
            .await
            .unwrap();
        let gone = answer.left().expect("the deleted pod");
        assert!(
            gone.metadata.deletion_timestamp.is_none()
                || gone.metadata.deletion_grace_period_seconds == Some(0)
        );
        assert!(pods.get_opt("web-2").await.unwrap().is_none());
    })
    .await;
}
