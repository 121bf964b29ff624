//! The `Warning:` headers kube-apiserver 1.36 sends with Service writes
//! (`pkg/api/service/warnings.go` and the status strategy's `WarningsOnUpdate`).

use crate::netval::{cidr_warnings, ip_warnings};
use crate::types::*;
use crate::validation::{ANNOTATION_TOPOLOGY_HINTS, ANNOTATION_TOPOLOGY_MODE};
use std::collections::BTreeMap;

/// Warnings for a created or updated Service.
pub fn service_warnings(spec: &ServiceSpec, annotations: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    if annotations.contains_key(ANNOTATION_TOPOLOGY_HINTS) {
        out.push(format!("annotation {ANNOTATION_TOPOLOGY_HINTS} is deprecated, please use {ANNOTATION_TOPOLOGY_MODE} instead"));
    }
    let ip_set = !spec.cluster_ip.is_empty() && spec.cluster_ip != NONE;
    if ip_set {
        for (i, ip) in spec.cluster_ips.iter().enumerate() {
            out.extend(ip_warnings(&format!("spec.clusterIPs[{i}]"), ip));
        }
    }
    if spec.is_type(CLUSTER_IP) && spec.cluster_ip == NONE {
        if !spec.load_balancer_ip.is_empty() {
            out.push("spec.loadBalancerIP is ignored for headless services".to_string());
        }
        if !spec.external_ips.is_empty() {
            out.push("spec.externalIPs is ignored for headless services".to_string());
        }
        if spec.session_affinity != NONE {
            out.push("spec.SessionAffinity is ignored for headless services".to_string());
        }
    }
    if !spec.external_ips.is_empty() {
        out.push(
            "spec.externalIPs is deprecated and may no longer be implemented in some clusters"
                .to_string(),
        );
    }
    for (i, ip) in spec.external_ips.iter().enumerate() {
        out.extend(ip_warnings(&format!("spec.externalIPs[{i}]"), ip));
    }
    if !spec.load_balancer_ip.is_empty() {
        out.extend(ip_warnings("spec.loadBalancerIP", &spec.load_balancer_ip));
    }
    for (i, cidr) in spec.load_balancer_source_ranges.iter().enumerate() {
        out.extend(cidr_warnings(
            &format!("spec.loadBalancerSourceRanges[{i}]"),
            cidr,
        ));
    }
    if spec.is_type(EXTERNAL_NAME) && !spec.external_ips.is_empty() {
        out.push("spec.externalIPs is ignored when spec.type is \"ExternalName\"".to_string());
    }
    if !spec.is_type(EXTERNAL_NAME) && !spec.external_name.is_empty() {
        out.push("spec.externalName is ignored when spec.type is not \"ExternalName\"".to_string());
    }
    if spec.traffic_distribution.as_deref() == Some("PreferClose") {
        out.push(
            "spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\""
                .to_string(),
        );
    }
    out
}

/// Warnings for a status write: non-standard ingress IPs.
pub fn status_warnings(status: &ServiceStatus) -> Vec<String> {
    let mut out = Vec::new();
    for (i, ing) in status.load_balancer.ingress.iter().enumerate() {
        if !ing.ip.is_empty() {
            out.extend(ip_warnings(
                &format!("status.loadBalancer.ingress[{i}]"),
                &ing.ip,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn warnings(v: serde_json::Value) -> Vec<String> {
        let spec: ServiceSpec = serde_json::from_value(v).unwrap();
        service_warnings(&spec, &BTreeMap::new())
    }

    #[test]
    fn reference_warnings() {
        assert_eq!(
            warnings(json!({"type": "ClusterIP", "externalIPs": ["192.168.150.41"]})),
            vec![
                "spec.externalIPs is deprecated and may no longer be implemented in some clusters"
            ]
        );
        assert_eq!(
            warnings(json!({"type": "ClusterIP", "externalName": "www.example.com"})),
            vec!["spec.externalName is ignored when spec.type is not \"ExternalName\""]
        );
        assert_eq!(
            warnings(json!({"type": "ClusterIP", "trafficDistribution": "PreferClose"})),
            vec!["spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\""]
        );
        assert!(
            warnings(json!({"type": "LoadBalancer", "loadBalancerIP": "not-an-ip"})).is_empty()
        );
        assert!(
            warnings(json!({"type": "ExternalName", "externalName": "www.example.com"})).is_empty()
        );
    }
}
