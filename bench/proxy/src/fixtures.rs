//! The benchmark's objects: `n` ClusterIP Services with one EndpointSlice of `ENDPOINTS`
//! ready endpoints each, built as the API would return them; shared by the benchmark and
//! `examples/memory.rs`.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy_core::ProxyConfig;
use serde_json::json;
use std::net::Ipv4Addr;

pub const ENDPOINTS: usize = 5;

pub fn ip(i: usize, base: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::from(base)) + i as u32)
}

/// The node every size is measured on.
pub fn config() -> ProxyConfig {
    ProxyConfig {
        node_name: "node1".into(),
        node_ips: vec!["172.30.0.10".parse().expect("ip")],
        cluster_cidrs: vec!["10.64.0.0/10".parse().expect("cidr")],
        service_cidrs: vec!["10.96.0.0/12".parse().expect("cidr")],
        ..ProxyConfig::default()
    }
}

pub fn objects(n: usize) -> (Vec<Service>, Vec<EndpointSlice>) {
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
pub fn slice(n: usize, i: usize, changed: Option<(usize, usize)>) -> EndpointSlice {
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

pub fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
