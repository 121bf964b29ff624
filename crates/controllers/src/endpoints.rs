//! The endpoints controller's pure half: the v1 Endpoints a Service with a selector should
//! have, given the pods in its namespace, in the canonical (repacked, sorted) form
//! kube-controller-manager writes; and whether the existing object already says that.

use crate::pods;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;

pub const MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpoint-controller";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
pub const OVER_CAPACITY_ANNOTATION: &str = "endpoints.kubernetes.io/over-capacity";
/// Endpoints hold at most this many addresses; the rest is only in EndpointSlices.
pub const MAX_CAPACITY: usize = 1000;

/// The pod's address for a Service of one IP family (the Service's first family; a pod with no
/// address of that family is left out), as upstream's `podToEndpointAddressForService`.
fn address_for_service(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let spec = svc.spec.as_ref();
    let want_v6 = match spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        Some(f) => f == "IPv6",
        None if pods::is_service_ip_set(svc) => {
            pods::is_ipv6(spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("")) == Some(true)
        }
        None => pods::pod_ips(pod).first().and_then(|ip| pods::is_ipv6(ip)) == Some(true),
    };
    let ip = pods::pod_ips(pod)
        .into_iter()
        .find(|ip| pods::is_ipv6(ip) == Some(want_v6))?;
    Some(EndpointAddress {
        ip: ip.to_string(),
        // Upstream points at the pod's node name even when it is empty (`nodeName: ""`); a
        // registered backend without a node reads better without it, as in EndpointSlices.
        node_name: Some(pods::node_name(pod).to_string()).filter(|n| !n.is_empty()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        hostname: None,
    })
}

/// Sort key of an address: IP bytes, then target uid (upstream's `LessEndpointAddress`).
fn address_key(a: &EndpointAddress) -> (String, String) {
    (
        a.ip.clone(),
        a.target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// Sort/identity key of a port: name, number, protocol, appProtocol.
type PortKey = (String, i32, String, String);
/// An address by (IP, target uid).
type AddressKey = (String, String);
/// For one port: each address and whether it is ready there.
type AddressReadiness = BTreeMap<AddressKey, bool>;
type SubsetSortKey = (Vec<PortKey>, Vec<AddressKey>, Vec<AddressKey>);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

/// The subsets for `svc` from the pods it selects, repacked as upstream's `RepackSubsets`:
/// one subset per distinct set of (address, ready) pairs, with every port those addresses
/// share; an address not ready on a port is listed under `notReadyAddresses`.
pub fn desired_subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let tolerate_unready = pods::publish_not_ready(svc);
    let ports = pods::service_ports(svc);
    let mut addresses: BTreeMap<(String, String), EndpointAddress> = BTreeMap::new();
    // Port (None: a headless Service without ports) → address key → ready. Not ready wins.
    let mut by_port: BTreeMap<Option<PortKey>, (Option<EndpointPort>, AddressReadiness)> =
        BTreeMap::new();
    for pod in pods {
        if !pods::should_be_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(mut address) = address_for_service(svc, pod) else {
            continue;
        };
        if pods::should_set_hostname(pod, svc) {
            address.hostname = pods::hostname(pod);
        }
        let ready = tolerate_unready || pods::is_ready(pod);
        let key = address_key(&address);
        let mut add = |port: Option<EndpointPort>| {
            addresses
                .entry(key.clone())
                .or_insert_with(|| address.clone());
            let entry = by_port
                .entry(port.as_ref().map(port_key))
                .or_insert_with(|| (port, BTreeMap::new()));
            entry
                .1
                .entry(key.clone())
                .and_modify(|r| *r = *r && ready)
                .or_insert(ready);
        };
        if ports.is_empty() {
            if pods::is_headless(svc) {
                add(None);
            }
            continue;
        }
        for sp in ports {
            let Some(number) = pods::find_port(pod, sp) else {
                continue;
            };
            add(Some(EndpointPort {
                name: sp.name.clone(),
                port: number,
                protocol: Some(pods::protocol_or_tcp(sp.protocol.as_ref()).to_string()),
                app_protocol: sp.app_protocol.clone(),
            }));
        }
    }
    // Group ports by the exact set of (address, ready) they map to.
    let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, set)) in by_port {
        let key: Vec<_> = set.into_iter().collect();
        let ports = groups.entry(key).or_default();
        if let Some(p) = port {
            ports.push(p);
        }
    }
    let mut subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(set, mut ports)| {
            let (ready, not_ready): (Vec<_>, Vec<_>) = set.into_iter().partition(|(_, r)| *r);
            let pick = |v: Vec<((String, String), bool)>| -> Option<Vec<EndpointAddress>> {
                let list: Vec<EndpointAddress> =
                    v.into_iter().map(|(k, _)| addresses[&k].clone()).collect();
                (!list.is_empty()).then_some(list)
            };
            ports.sort_by_key(port_key);
            EndpointSubset {
                addresses: pick(ready),
                not_ready_addresses: pick(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    subsets.sort_by_key(subset_sort_key);
    subsets
}

/// Upstream orders subsets by a hash of their content; any fixed order will do, as long as it
/// is the same every time (so an unchanged set compares equal). Ports first, then addresses.
fn subset_sort_key(s: &EndpointSubset) -> SubsetSortKey {
    (
        s.ports.iter().flatten().map(port_key).collect(),
        s.addresses.iter().flatten().map(address_key).collect(),
        s.not_ready_addresses
            .iter()
            .flatten()
            .map(address_key)
            .collect(),
    )
}

fn count(subsets: &[EndpointSubset]) -> (usize, usize) {
    subsets.iter().fold((0, 0), |(r, n), s| {
        (
            r + s.addresses.as_ref().map_or(0, Vec::len),
            n + s.not_ready_addresses.as_ref().map_or(0, Vec::len),
        )
    })
}

/// Upstream's `truncateEndpoints`: keep at most [`MAX_CAPACITY`] addresses, ready ones first,
/// spread over the subsets in proportion. Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let (total_ready, total_not_ready) = count(subsets);
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, num_total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_be_added = max;
    for s in subsets.iter_mut() {
        let in_subset = if truncate_ready {
            s.addresses.as_ref().map_or(0, Vec::len)
        } else {
            s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        };
        let to_be_added = ((in_subset as f64 / num_total as f64) * max as f64).ceil() as usize;
        let to_be_added = to_be_added.min(can_be_added);
        if truncate_ready {
            if let Some(a) = s.addresses.as_mut() {
                a.truncate(to_be_added);
                can_be_added -= a.len();
            }
            s.not_ready_addresses = None;
        } else if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(to_be_added);
            can_be_added -= a.len();
        }
        if s.addresses.as_ref().is_some_and(Vec::is_empty) {
            s.addresses = None;
        }
        if s.not_ready_addresses.as_ref().is_some_and(Vec::is_empty) {
            s.not_ready_addresses = None;
        }
    }
    true
}

/// The labels the Endpoints of `svc` carry: the Service's, plus managed-by, plus the headless
/// marker for a Service without a ClusterIP.
pub fn desired_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if pods::is_service_ip_set(svc) {
        labels.remove(HEADLESS_LABEL);
    } else {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(MANAGED_BY_LABEL.into(), CONTROLLER_NAME.into());
    labels
}

/// What to write, if anything.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Endpoints),
    Update(Endpoints),
}

/// Upstream's `syncService` for one selector Service: the desired Endpoints compared with the
/// existing one (subsets, labels and the over-capacity mark; the trigger-time annotation is
/// carried along but never causes a write on its own).
pub fn reconcile(
    svc: &Service,
    pods: &[&Pod],
    current: Option<&Endpoints>,
    trigger_time: Option<Timestamp>,
) -> Option<Write> {
    let mut subsets = desired_subsets(svc, pods);
    let truncated = truncate(&mut subsets);
    let labels = desired_labels(svc);
    if let Some(cur) = current {
        let cur_subsets = cur.subsets.as_deref().unwrap_or(&[]);
        let cur_over = cur
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(OVER_CAPACITY_ANNOTATION));
        if subsets_equal(cur_subsets, &subsets)
            && cur.metadata.labels.clone().unwrap_or_default() == labels
            && cur_over == truncated
        {
            return None;
        }
    }
    let mut meta = match current {
        Some(cur) => cur.metadata.clone(),
        None => ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        },
    };
    let mut annotations = meta.annotations.take().unwrap_or_default();
    match trigger_time {
        Some(t) => {
            annotations.insert(crate::trigger::ANNOTATION.into(), crate::trigger::format(t));
        }
        None => {
            annotations.remove(crate::trigger::ANNOTATION);
        }
    }
    if truncated {
        annotations.insert(OVER_CAPACITY_ANNOTATION.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY_ANNOTATION);
    }
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    meta.labels = Some(labels);
    meta.managed_fields = None;
    let ep = Endpoints {
        metadata: meta,
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    Some(if current.is_some() {
        Write::Update(ep)
    } else {
        Write::Create(ep)
    })
}

/// The JSON an Endpoints is written as.
pub fn to_wire(e: &Endpoints) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or(serde_json::Value::Null)
}

/// Subsets equal, ignoring the resourceVersion in target references and empty-vs-absent lists.
pub fn subsets_equal(a: &[EndpointSubset], b: &[EndpointSubset]) -> bool {
    fn norm(s: &EndpointSubset) -> EndpointSubset {
        let addrs = |v: &Option<Vec<EndpointAddress>>| {
            v.as_ref().filter(|l| !l.is_empty()).map(|l| {
                l.iter()
                    .map(|a| {
                        let mut a = a.clone();
                        if let Some(r) = a.target_ref.as_mut() {
                            r.resource_version = None;
                        }
                        a
                    })
                    .collect()
            })
        };
        EndpointSubset {
            addresses: addrs(&s.addresses),
            not_ready_addresses: addrs(&s.not_ready_addresses),
            ports: s.ports.clone().filter(|p| !p.is_empty()),
        }
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| norm(x) == norm(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(name: &str, ip: Option<&str>, ready: bool, labels: serde_json::Value) -> Pod {
        let mut status = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        if let Some(ip) = ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"nodeName": "node1", "containers": [{"name": "c", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}]}]},
            "status": status,
        }))
        .unwrap()
    }

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "nginx-service", "namespace": "default", "uid": "svc-uid", "labels": {"app": "nginx"}, "creationTimestamp": "2026-11-21T23:26:38Z"}, "spec": spec})).unwrap()
    }

    fn nginx_service() -> Service {
        svc(
            json!({"clusterIP": "10.43.0.20", "ipFamilies": ["IPv4"], "selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80, "protocol": "TCP", "targetPort": 80}]}),
        )
    }

    #[test]
    fn ready_and_not_ready_pods_share_one_subset() {
        let pods = [
            pod("nginx-2", Some("10.42.0.12"), true, json!({"app": "nginx"})),
            pod("nginx-1", Some("10.42.0.11"), true, json!({"app": "nginx"})),
            pod(
                "nginx-3",
                Some("10.42.0.13"),
                false,
                json!({"app": "nginx"}),
            ),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let subsets = desired_subsets(&nginx_service(), &refs);
        let v = serde_json::to_value(&subsets).unwrap();
        assert_eq!(
            v,
            json!([{
            "addresses": [
                {"ip": "10.42.0.11", "nodeName": "node1", "targetRef": {"kind": "Pod", "name": "nginx-1", "namespace": "default", "uid": "uid-nginx-1"}},
                {"ip": "10.42.0.12", "nodeName": "node1", "targetRef": {"kind": "Pod", "name": "nginx-2", "namespace": "default", "uid": "uid-nginx-2"}}],
            "notReadyAddresses": [
                {"ip": "10.42.0.13", "nodeName": "node1", "targetRef": {"kind": "Pod", "name": "nginx-3", "namespace": "default", "uid": "uid-nginx-3"}}],
            "ports": [{"name": "nginx-port", "port": 80, "protocol": "TCP"}]}])
        );
    }

    #[test]
    fn a_pod_without_the_named_port_is_left_out() {
        let s = svc(
            json!({"clusterIP": "10.43.0.21", "selector": {"app": "nginx"}, "ports": [{"name": "web", "port": 8080, "protocol": "TCP", "targetPort": "http"}]}),
        );
        let mut noport = pod(
            "nginx-noport",
            Some("10.42.0.14"),
            true,
            json!({"app": "nginx"}),
        );
        noport.spec.as_mut().unwrap().containers[0].ports = Some(vec![serde_json::from_value(
            json!({"containerPort": 8080, "name": "alt"}),
        )
        .unwrap()]);
        let one = pod("nginx-1", Some("10.42.0.11"), true, json!({"app": "nginx"}));
        let subsets = desired_subsets(&s, &[&noport, &one]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 80);
        assert_eq!(
            subsets[0].ports.as_ref().unwrap()[0].name.as_deref(),
            Some("web")
        );
    }

    #[test]
    fn pods_that_disagree_on_a_port_number_land_in_separate_subsets() {
        let s = svc(
            json!({"clusterIP": "10.43.0.21", "selector": {"app": "nginx"}, "ports": [{"name": "web", "port": 8080, "protocol": "TCP", "targetPort": "http"}]}),
        );
        let mut other = pod("b", Some("10.42.0.2"), true, json!({}));
        other.spec.as_mut().unwrap().containers[0]
            .ports
            .as_mut()
            .unwrap()[0]
            .container_port = 8080;
        let a = pod("a", Some("10.42.0.1"), true, json!({}));
        let subsets = desired_subsets(&s, &[&other, &a]);
        assert_eq!(subsets.len(), 2);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 80);
        assert_eq!(subsets[1].ports.as_ref().unwrap()[0].port, 8080);
    }

    #[test]
    fn terminating_pods_leave_endpoints_unless_not_ready_addresses_are_published() {
        let mut t = pod("t", Some("10.42.0.15"), true, json!({}));
        t.metadata.deletion_timestamp =
            Some(serde_json::from_value(json!("2026-11-21T23:27:32Z")).unwrap());
        assert!(desired_subsets(&nginx_service(), &[&t]).is_empty());
        let pnr = svc(
            json!({"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"app": "nginx"}, "ports": [{"name": "p", "port": 80, "targetPort": 80}]}),
        );
        let nr = pod("nr", Some("10.42.0.13"), false, json!({}));
        let subsets = desired_subsets(&pnr, &[&t, &nr]);
        assert_eq!(
            subsets[0].addresses.as_ref().unwrap().len(),
            2,
            "published as ready: {subsets:?}"
        );
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn headless_without_ports_lists_addresses_and_hostnames() {
        let s = svc(json!({"clusterIP": "None", "selector": {"app": "db"}}));
        let mut p = pod("db-0", Some("10.42.0.30"), true, json!({}));
        p.spec.as_mut().unwrap().hostname = Some("db-0".into());
        p.spec.as_mut().unwrap().subdomain = Some("nginx-service".into());
        let subsets = desired_subsets(&s, &[&p]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        assert_eq!(
            subsets[0].addresses.as_ref().unwrap()[0]
                .hostname
                .as_deref(),
            Some("db-0")
        );
        // A ClusterIP Service without ports gets no addresses at all.
        let s = svc(json!({"clusterIP": "10.43.0.9", "selector": {"app": "db"}}));
        assert!(desired_subsets(&s, &[&p]).is_empty());
    }

    #[test]
    fn an_address_not_ready_on_one_port_is_split_off() {
        // The same pod twice on different ports, ready on both: one subset, two ports.
        let s = svc(
            json!({"clusterIP": "10.43.0.9", "selector": {"app": "x"}, "ports": [
            {"name": "a", "port": 80, "targetPort": 80}, {"name": "b", "port": 81, "targetPort": 81}]}),
        );
        let p = pod("p", Some("10.42.0.1"), true, json!({}));
        let q = pod("q", Some("10.42.0.2"), false, json!({}));
        let subsets = desired_subsets(&s, &[&p, &q]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].ports.as_ref().unwrap().len(), 2);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn an_unchanged_endpoints_is_not_rewritten_and_a_new_one_carries_the_trigger_time() {
        let pods = [pod("nginx-1", Some("10.42.0.11"), true, json!({}))];
        let refs: Vec<&Pod> = pods.iter().collect();
        let t: Timestamp = "2026-11-21T23:26:38Z".parse().unwrap();
        let Some(Write::Create(ep)) = reconcile(&nginx_service(), &refs, None, Some(t)) else {
            panic!("expected a create")
        };
        assert_eq!(
            ep.metadata.annotations.as_ref().unwrap()[crate::trigger::ANNOTATION],
            "2026-11-21T23:26:38Z"
        );
        assert_eq!(
            ep.metadata.labels.as_ref().unwrap()[MANAGED_BY_LABEL],
            "endpoint-controller"
        );
        assert_eq!(reconcile(&nginx_service(), &refs, Some(&ep), None), None);
        // A label change on the Service is a change.
        let mut s = nginx_service();
        s.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("tier".into(), "web".into());
        let Some(Write::Update(up)) = reconcile(&s, &refs, Some(&ep), None) else {
            panic!("expected an update")
        };
        assert!(
            up.metadata.annotations.is_none(),
            "trigger time removed when none is known"
        );
    }

    #[test]
    fn more_than_a_thousand_addresses_are_truncated_ready_first() {
        let pods: Vec<Pod> = (0..1100)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    Some(&format!("10.1.{}.{}", i / 250, i % 250)),
                    i % 2 == 0,
                    json!({}),
                )
            })
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let Some(Write::Create(ep)) = reconcile(&nginx_service(), &refs, None, None) else {
            panic!()
        };
        let (ready, not_ready) = count(ep.subsets.as_deref().unwrap());
        assert_eq!((ready, not_ready), (550, 450));
        assert_eq!(
            ep.metadata.annotations.as_ref().unwrap()[OVER_CAPACITY_ANNOTATION],
            "truncated"
        );
        assert_eq!(
            reconcile(&nginx_service(), &refs, Some(&ep), None),
            None,
            "a truncated Endpoints is stable"
        );
    }
}
