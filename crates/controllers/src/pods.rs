//! What the controllers read from a Pod and a Service, as kube-controller-manager's
//! `podutil` and `endpointslice/util` read it: readiness, addresses, named ports, selectors.

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The protocol of a port, `TCP` when unset (the API server's default).
pub fn protocol_or_tcp(p: Option<&String>) -> &str {
    p.map(String::as_str)
        .filter(|p| !p.is_empty())
        .unwrap_or("TCP")
}

pub fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

pub fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

/// The Pod's `Ready` condition, if it has one.
fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the Ready condition last changed: upstream's trigger time for a pod.
pub fn ready_transition_time(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Succeeded or Failed: the pod's containers will never run again.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's IPs: `status.podIPs`, or `status.podIP` when only that is set (the API server
/// fills podIPs from podIP on conversion, so both mean the same).
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an address, and (unless asked to
/// include them) not terminating.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || !is_terminating(pod)
}

/// `hostname` is published for a pod whose `subdomain` names the (headless) Service.
pub fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let hostname = spec.hostname.as_deref().unwrap_or("");
    !hostname.is_empty()
        && spec.subdomain.as_deref().unwrap_or("") == name_of(&svc.metadata)
        && namespace_of(&svc.metadata) == namespace_of(&pod.metadata)
}

pub fn hostname(pod: &Pod) -> Option<String> {
    pod.spec.as_ref()?.hostname.clone()
}

pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Upstream's `FindPort`: a numeric targetPort is used as it is; a named one is looked up in
/// the pod's container ports (and restartable init containers, i.e. sidecars) with the same
/// protocol. `None` when the pod has no such port.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let target = port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port));
    match target {
        IntOrString::Int(n) => Some(if n == 0 { port.port } else { n }),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<i32>() {
                // A numeric string is what an IntOrString from YAML like "8080" decodes to.
                return Some(n);
            }
            let spec = pod.spec.as_ref()?;
            let proto = protocol_or_tcp(port.protocol.as_ref());
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find_map(|cp| {
                    (cp.name.as_deref() == Some(name.as_str())
                        && protocol_or_tcp(cp.protocol.as_ref()) == proto)
                        .then_some(cp.container_port)
                })
        }
    }
}

/// Whether a Service selector matches a label set. The selector must be non-empty-or-set:
/// callers skip Services whose selector is `None` (they select nothing, not everything).
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The Service's selector, or `None` for a selectorless Service (`spec.selector` unset; an
/// API server drops an empty map, so `{}` is treated the same way).
pub fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

pub fn is_external_name(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

/// A ClusterIP is set (not headless, not empty).
pub fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

pub fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[])
}

/// IPv6 or not; `None` when the text is not an IP address.
pub fn is_ipv6(ip: &str) -> Option<bool> {
    ip.parse::<IpAddr>().ok().map(|a| a.is_ipv6())
}

/// The address types (`IPv4`, `IPv6`) a Service's slices carry: from `spec.ipFamilies`, else
/// the ClusterIP's family, else both (a headless Service from an old API server).
pub fn address_types(svc: &Service) -> Vec<&'static str> {
    let spec = svc.spec.as_ref();
    let mut types = Vec::new();
    for f in spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
    {
        let t = match f.as_str() {
            "IPv4" => "IPv4",
            "IPv6" => "IPv6",
            _ => continue,
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if !types.is_empty() {
        return types;
    }
    if is_service_ip_set(svc) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return vec![if is_ipv6(ip) == Some(true) {
            "IPv6"
        } else {
            "IPv4"
        }];
    }
    vec!["IPv4", "IPv6"]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn port(v: serde_json::Value) -> ServicePort {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_named_target_port_resolves_per_pod_and_protocol() {
        let p = pod(json!({"spec": {"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "name": "http"}, {"containerPort": 53, "name": "dns", "protocol": "UDP"}]}]}}));
        assert_eq!(
            find_port(&p, &port(json!({"port": 8080, "targetPort": "http"}))),
            Some(80)
        );
        assert_eq!(
            find_port(
                &p,
                &port(json!({"port": 8080, "targetPort": "http", "protocol": "UDP"}))
            ),
            None
        );
        assert_eq!(
            find_port(
                &p,
                &port(json!({"port": 53, "targetPort": "dns", "protocol": "UDP"}))
            ),
            Some(53)
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 8080, "targetPort": "nope"}))),
            None
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 8080, "targetPort": 9090}))),
            Some(9090)
        );
        assert_eq!(find_port(&p, &port(json!({"port": 8080}))), Some(8080));
    }

    #[test]
    fn sidecar_ports_count_but_plain_init_container_ports_do_not() {
        let p = pod(
            json!({"spec": {"containers": [{"name": "c"}], "initContainers": [
            {"name": "once", "ports": [{"containerPort": 1, "name": "a"}]},
            {"name": "side", "restartPolicy": "Always", "ports": [{"containerPort": 2, "name": "b"}]}]}}),
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "a"}))),
            None
        );
        assert_eq!(
            find_port(&p, &port(json!({"port": 80, "targetPort": "b"}))),
            Some(2)
        );
    }

    #[test]
    fn a_pod_without_an_address_or_a_finished_pod_is_no_endpoint() {
        assert!(!should_be_in_endpoints(
            &pod(json!({"status": {"phase": "Pending"}})),
            true
        ));
        assert!(!should_be_in_endpoints(
            &pod(json!({"status": {"phase": "Succeeded", "podIP": "10.0.0.1"}})),
            true
        ));
        assert!(should_be_in_endpoints(
            &pod(json!({"status": {"phase": "Running", "podIP": "10.0.0.1"}})),
            false
        ));
        let terminating = pod(
            json!({"metadata": {"deletionTimestamp": "2026-11-21T23:27:32Z"}, "status": {"podIP": "10.0.0.1"}}),
        );
        assert!(!should_be_in_endpoints(&terminating, false));
        assert!(should_be_in_endpoints(&terminating, true));
    }

    #[test]
    fn pod_ips_fall_back_to_pod_ip() {
        assert_eq!(
            pod_ips(&pod(json!({"status": {"podIP": "10.0.0.1"}}))),
            vec!["10.0.0.1"]
        );
        assert_eq!(
            pod_ips(&pod(
                json!({"status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]}})
            )),
            vec!["10.0.0.1", "fd00::1"]
        );
    }

    #[test]
    fn address_types_follow_ip_families_then_cluster_ip() {
        let svc = |v| serde_json::from_value::<Service>(v).unwrap();
        assert_eq!(
            address_types(&svc(json!({"spec": {"ipFamilies": ["IPv6", "IPv4"]}}))),
            vec!["IPv6", "IPv4"]
        );
        assert_eq!(
            address_types(&svc(json!({"spec": {"clusterIP": "fd00::10"}}))),
            vec!["IPv6"]
        );
        assert_eq!(
            address_types(&svc(json!({"spec": {"clusterIP": "None"}}))),
            vec!["IPv4", "IPv6"]
        );
    }
}
