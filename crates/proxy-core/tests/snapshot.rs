//! Snapshot::build from Services and EndpointSlices written as kube-apiserver returns them.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy_core::{
    categorize, IpFamily, Protocol, ProxyConfig, Scheduler, ServiceName, ServicePortName, Snapshot,
};
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).unwrap()
}

fn cfg() -> ProxyConfig {
    ProxyConfig {
        node_name: "node1".into(),
        node_ips: vec!["172.30.0.10".parse().unwrap()],
        ..ProxyConfig::default()
    }
}

fn ep(ip: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> serde_json::Value {
    json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
}

fn web_slice(eps: Vec<serde_json::Value>) -> EndpointSlice {
    slice(json!({
        "metadata": {"name": "web-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"},
                     "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-21T23:29:38Z"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps,
    }))
}

fn web(spec_extra: serde_json::Value) -> Service {
    let mut spec = json!({"type": "ClusterIP", "clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]});
    for (k, v) in spec_extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    svc(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}))
}

fn port_name() -> ServicePortName {
    ServicePortName {
        service: ServiceName {
            namespace: "default".into(),
            name: "web".into(),
        },
        port: "http".into(),
        protocol: Protocol::Tcp,
    }
}

#[test]
fn cluster_ip_service_gets_its_slice_endpoints() {
    let s = web(json!({}));
    let sl = web_slice(vec![
        ep("10.42.0.11", "node1", true, true, false),
        ep("10.42.0.12", "node2", true, true, false),
    ]);
    let snap = Snapshot::build([&s], [&sl], &cfg());
    assert!(snap.skipped.is_empty(), "{:?}", snap.skipped);
    let sp = &snap.service_ports[&port_name()];
    assert_eq!(sp.port, 80);
    assert_eq!(sp.endpoints.len(), 2);
    assert!(sp.endpoints[0].local && !sp.endpoints[1].local);
    assert_eq!(sp.endpoints[0].port, 8080);
    assert_eq!(snap.slice_trigger_times.len(), 1);
}

#[test]
fn terminating_endpoints_are_used_only_when_none_is_ready() {
    let s = web(json!({}));
    let sl = web_slice(vec![
        ep("10.42.0.11", "node1", false, true, true),
        ep("10.42.0.12", "node2", true, true, false),
    ]);
    let snap = Snapshot::build([&s], [&sl], &cfg());
    let c = categorize(&snap.service_ports[&port_name()], IpFamily::V4);
    assert_eq!(
        c.cluster
            .iter()
            .map(|e| e.ip.to_string())
            .collect::<Vec<_>>(),
        ["10.42.0.12"]
    );

    let sl = web_slice(vec![
        ep("10.42.0.11", "node1", false, true, true),
        ep("10.42.0.12", "node2", false, false, false),
    ]);
    let snap = Snapshot::build([&s], [&sl], &cfg());
    let c = categorize(&snap.service_ports[&port_name()], IpFamily::V4);
    assert_eq!(
        c.cluster
            .iter()
            .map(|e| e.ip.to_string())
            .collect::<Vec<_>>(),
        ["10.42.0.11"]
    );
    assert!(c.has_any);

    let sl = web_slice(vec![ep("10.42.0.12", "node2", false, false, false)]);
    let snap = Snapshot::build([&s], [&sl], &cfg());
    assert!(!categorize(&snap.service_ports[&port_name()], IpFamily::V4).has_any);
}

#[test]
fn traffic_policy_local_uses_local_endpoints_only() {
    let sl = web_slice(vec![
        ep("10.42.0.11", "node1", true, true, false),
        ep("10.42.0.12", "node2", true, true, false),
    ]);
    let s = web(json!({"internalTrafficPolicy": "Local"}));
    let snap = Snapshot::build([&s], [&sl], &cfg());
    let c = categorize(&snap.service_ports[&port_name()], IpFamily::V4);
    assert!(
        c.cluster.is_empty(),
        "ITP Local without external access needs no cluster endpoints"
    );
    assert_eq!(c.local.len(), 1);
    assert_eq!(c.all_reachable.len(), 1);

    let s = web(
        json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
    );
    let snap = Snapshot::build([&s], [&sl], &cfg());
    let sp = &snap.service_ports[&port_name()];
    assert!(sp.external_policy_local);
    let c = categorize(sp, IpFamily::V4);
    assert_eq!(
        c.cluster.len(),
        2,
        "short-circuited pod traffic still uses every endpoint"
    );
    assert_eq!(c.local.len(), 1);

    // externalTrafficPolicy on a ClusterIP Service means nothing.
    let s = web(json!({"externalTrafficPolicy": "Local"}));
    let snap = Snapshot::build([&s], [&sl], &cfg());
    assert!(!snap.service_ports[&port_name()].external_policy_local);
}

#[test]
fn load_balancer_with_local_policy_reports_its_health_check_node_port() {
    let sl = web_slice(vec![
        ep("10.42.0.11", "node1", true, true, false),
        ep("10.42.0.12", "node2", true, true, false),
        ep("10.42.0.13", "node1", false, false, false),
    ]);
    let mut s = web(
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31999,
        "loadBalancerSourceRanges": ["192.168.150.0/24", "203.0.113.7/32"],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080}]}),
    );
    s.status = Some(serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.168.150.100", "ipMode": "VIP"}, {"ip": "192.168.150.101", "ipMode": "Proxy"}, {"hostname": "lb.example.com"}]}})).unwrap());
    let snap = Snapshot::build([&s], [&sl], &cfg());
    let hc = &snap.health_checks[&ServiceName {
        namespace: "default".into(),
        name: "web".into(),
    }];
    assert_eq!((hc.node_port, hc.local_endpoints), (31999, 1));
    let sp = &snap.service_ports[&port_name()];
    assert_eq!(
        sp.load_balancer_ips,
        vec!["192.168.150.100".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(sp.source_ranges.len(), 2);
}

#[test]
fn session_affinity_and_scheduler_annotation() {
    let mut s = web(json!({"sessionAffinity": "ClientIP"}));
    s.metadata.annotations =
        Some([("switchboard.dev/scheduler".to_string(), "mh".to_string())].into());
    let snap = Snapshot::build([&s], [], &cfg());
    let sp = &snap.service_ports[&port_name()];
    assert_eq!(sp.affinity_timeout, Some(10800));
    assert_eq!(sp.scheduler, Scheduler::Maglev);

    let mut s = web(
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
    );
    s.metadata.annotations = Some(
        [(
            "switchboard.dev/scheduler".to_string(),
            "fastest".to_string(),
        )]
        .into(),
    );
    let snap = Snapshot::build([&s], [], &cfg());
    let sp = &snap.service_ports[&port_name()];
    assert_eq!(sp.affinity_timeout, Some(60));
    assert_eq!(
        sp.scheduler,
        Scheduler::Random,
        "a bad annotation falls back to the node default"
    );
    assert_eq!(snap.skipped.len(), 1);
}

#[test]
fn headless_external_name_and_other_proxies_are_not_programmed() {
    let headless = svc(
        json!({"metadata": {"name": "h", "namespace": "default"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
    );
    let alias = svc(
        json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
    );
    let other = svc(
        json!({"metadata": {"name": "o", "namespace": "default", "labels": {"service.kubernetes.io/service-proxy-name": "other"}},
        "spec": {"clusterIP": "10.43.0.9", "ports": [{"port": 80}]}}),
    );
    let snap = Snapshot::build([&headless, &alias, &other], [], &cfg());
    assert!(snap.service_ports.is_empty());
    assert!(snap.skipped.is_empty());
}

#[test]
fn bad_objects_are_skipped_with_a_reason_and_the_rest_served() {
    let bad_ip = svc(
        json!({"metadata": {"name": "bad", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.300", "ports": [{"port": 80}]}}),
    );
    let bad_proto = svc(
        json!({"metadata": {"name": "proto", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.30",
        "ports": [{"name": "a", "port": 80, "protocol": "ICMP"}, {"name": "b", "port": 81, "protocol": "UDP"}]}}),
    );
    let bad_range = web(json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["nonsense"]}));
    let no_label = slice(
        json!({"metadata": {"name": "orphan", "namespace": "default"}, "addressType": "IPv4", "endpoints": []}),
    );
    let good = svc(
        json!({"metadata": {"name": "good", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.31", "ports": [{"port": 53, "protocol": "UDP"}]}}),
    );
    let snap = Snapshot::build(
        [&bad_ip, &bad_proto, &bad_range, &good],
        [&no_label],
        &cfg(),
    );
    let reasons: Vec<String> = snap.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|r| r.contains("default/bad") && r.contains("10.43.0.300")));
    assert!(reasons.iter().any(|r| r.contains("ICMP")));
    assert!(reasons.iter().any(|r| r.contains("nonsense")));
    assert!(reasons.iter().any(|r| r.contains("orphan")));
    let names: Vec<String> = snap.service_ports.keys().map(|k| k.to_string()).collect();
    assert_eq!(names, ["default/good:/udp", "default/proto:b/udp"]);
}

#[test]
fn dual_stack_service_keeps_both_families() {
    let s = svc(
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20", "fd00:43::20"],
        "ipFamilies": ["IPv4", "IPv6"], "ports": [{"name": "http", "port": 80}]}}),
    );
    let v4 = web_slice(vec![ep("10.42.0.11", "node1", true, true, false)]);
    let mut v6 = web_slice(vec![ep("fd00:42::11", "node1", true, true, false)]);
    v6.address_type = "IPv6".into();
    v6.metadata.name = Some("web-v6".into());
    let snap = Snapshot::build([&s], [&v4, &v6], &cfg());
    let sp = &snap.service_ports[&port_name()];
    assert_eq!(
        sp.cluster_ip(IpFamily::V6).unwrap().to_string(),
        "fd00:43::20"
    );
    assert_eq!(categorize(sp, IpFamily::V4).cluster.len(), 1);
    assert_eq!(categorize(sp, IpFamily::V6).cluster.len(), 1);
}
