//! SnapshotTracker: any sequence of Service and EndpointSlice updates and deletions, applied one
//! at a time, gives the snapshot that Snapshot::build gives for the objects that remain.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;
use proxy_core::{service_key, slice_key, ProxyConfig, Snapshot, SnapshotTracker};
use serde_json::json;
use std::collections::BTreeMap;

fn cfg() -> ProxyConfig {
    ProxyConfig {
        node_name: "node1".into(),
        node_ips: vec!["172.30.0.10".parse().unwrap()],
        ..ProxyConfig::default()
    }
}

/// A Service `svcN` of a small universe: few names so that updates hit the same objects, and
/// fields that change the ports, the scheduler (sometimes a typo), the health check and skips.
fn service_strategy() -> impl Strategy<Value = Service> {
    (
        0..4usize,
        0..3usize,
        prop_oneof![Just(None), Just(Some("rr")), Just(Some("bogus"))],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just("10.43.0.20"), Just("10.43.0.21"), Just("bad-ip"), Just("None")],
        any::<bool>(),
    )
        .prop_map(|(i, nports, sched, lb, etp_local, cip, udp)| {
            let mut ports = vec![json!({"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080})];
            if nports > 1 {
                ports.push(json!({"name": "dns", "port": 53, "protocol": if udp { "UDP" } else { "TCP" }}));
            }
            if nports > 2 {
                // A duplicate: skipped with a reason.
                ports.push(json!({"name": "http", "port": 81, "protocol": "TCP"}));
            }
            let mut annotations = serde_json::Map::new();
            if let Some(s) = sched {
                annotations.insert("switchboard.dev/scheduler".into(), json!(s));
            }
            serde_json::from_value(json!({
                "metadata": {"name": format!("svc{i}"), "namespace": "default", "annotations": annotations},
                "spec": {"type": if lb { "LoadBalancer" } else { "NodePort" }, "clusterIP": cip,
                         "externalTrafficPolicy": if etp_local { "Local" } else { "Cluster" },
                         "healthCheckNodePort": 31000 + i, "ports": ports,
                         "externalIPs": ["192.0.2.1", "nonsense"]},
                "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
            }))
            .unwrap()
        })
}

/// A slice `sliceN` that may move between Services, with endpoints from a small pool (the same
/// address in two slices of one Service exercises "first slice by name wins").
fn slice_strategy() -> impl Strategy<Value = EndpointSlice> {
    (
        0..6usize,
        0..4usize,
        proptest::collection::vec((0..4u8, any::<bool>(), any::<bool>(), any::<bool>()), 0..4),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some("2026-11-21T23:29:38Z")), Just(Some("garbage"))],
        any::<bool>(),
    )
        .prop_map(|(i, svc, eps, dns, trigger, labelled)| {
            let eps: Vec<serde_json::Value> = eps
                .iter()
                .map(|(a, ready, terminating, local)| {
                    json!({"addresses": [format!("10.42.0.{a}")], "nodeName": if *local { "node1" } else { "node2" },
                           "conditions": {"ready": ready, "terminating": terminating}})
                })
                .collect();
            let mut ports = vec![json!({"name": "http", "port": 8080, "protocol": "TCP"})];
            if dns {
                ports.push(json!({"name": "dns", "port": 53, "protocol": "UDP"}));
                ports.push(json!({"name": "x", "port": 0, "protocol": "TCP"}));
            }
            let mut labels = serde_json::Map::new();
            if labelled {
                labels.insert("kubernetes.io/service-name".into(), json!(format!("svc{svc}")));
            }
            let mut annotations = serde_json::Map::new();
            if let Some(t) = trigger {
                annotations.insert("endpoints.kubernetes.io/last-change-trigger-time".into(), json!(t));
            }
            serde_json::from_value(json!({
                "metadata": {"name": format!("slice{i}"), "namespace": "default",
                             "labels": labels, "annotations": annotations},
                "addressType": "IPv4",
                "ports": ports,
                "endpoints": eps,
            }))
            .unwrap()
        })
}

#[derive(Clone, Debug)]
enum Op {
    ApplyService(Box<Service>),
    DeleteService(usize),
    ApplySlice(Box<EndpointSlice>),
    DeleteSlice(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => service_strategy().prop_map(|s| Op::ApplyService(Box::new(s))),
        1 => (0..4usize).prop_map(Op::DeleteService),
        4 => slice_strategy().prop_map(|s| Op::ApplySlice(Box::new(s))),
        1 => (0..6usize).prop_map(Op::DeleteSlice),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_updates_equals_a_full_build(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        let mut tracker = SnapshotTracker::new(cfg());
        let mut services = BTreeMap::new();
        let mut slices = BTreeMap::new();
        for (step, op) in ops.iter().enumerate() {
            match op {
                Op::ApplyService(s) => {
                    tracker.apply_service(s);
                    services.insert(service_key(s), (**s).clone());
                }
                Op::DeleteService(i) => {
                    let key = proxy_core::ServiceName { namespace: "default".into(), name: format!("svc{i}") };
                    tracker.delete_service(&key);
                    services.remove(&key);
                }
                Op::ApplySlice(s) => {
                    tracker.apply_slice(s);
                    slices.insert(slice_key(s), (**s).clone());
                }
                Op::DeleteSlice(i) => {
                    let key = proxy_core::ServiceName { namespace: "default".into(), name: format!("slice{i}") };
                    tracker.delete_slice(&key);
                    slices.remove(&key);
                }
            }
            let full = Snapshot::build(services.values(), slices.values(), &cfg());
            prop_assert_eq!(tracker.snapshot(), &full, "after step {}: {:?}", step, op);
        }
        // A tracker made from the final objects agrees too.
        let mut fresh = SnapshotTracker::from_objects(cfg(), services.values(), slices.values());
        let full = Snapshot::build(services.values(), slices.values(), &cfg());
        prop_assert_eq!(fresh.snapshot(), &full);
    }
}

#[test]
fn build_does_not_depend_on_the_order_of_the_objects() {
    let ep = |ready: bool| json!({"addresses": ["10.42.0.1"], "conditions": {"ready": ready}});
    let mk = |name: &str, ready: bool| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": [ep(ready)],
        }))
        .unwrap()
    };
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]},
    }))
    .unwrap();
    let (a, b) = (mk("web-a", true), mk("web-b", false));
    let one = Snapshot::build([&svc], [&a, &b], &cfg());
    let other = Snapshot::build([&svc], [&b, &a], &cfg());
    assert_eq!(one, other);
    // The first slice by name wins: web-a says ready.
    let sp = one.service_ports.values().next().unwrap();
    assert!(sp.endpoints[0].ready);
}
