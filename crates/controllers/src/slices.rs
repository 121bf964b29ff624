//! The EndpointSlice controller's pure half, after upstream's `k8s.io/endpointslice`
//! reconciler: the endpoints a Service should have, grouped by address type and by the ports
//! they resolve to, placed into the existing slices with as few changes as possible (keep
//! what is unchanged, fill slices that change anyway, then the nearest-to-full unchanged one,
//! then new slices of at most `max_endpoints_per_slice`), and a placeholder slice when there
//! is nothing to publish.

use crate::pods;
use crate::topology::{HintsEvent, SliceInfo, TopologyCache};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// What the reconciler knows about a pod's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLookup {
    /// The Node exists; its `topology.kubernetes.io/zone` label, if any.
    Known(Option<String>),
    /// No Node object by that name.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub max_endpoints_per_slice: usize,
    /// Upstream skips a pod whose Node does not exist (unless the Service publishes not-ready
    /// addresses). Standalone Switchboard has no Node objects until an agent registers one,
    /// so by default such pods are published (without a zone).
    pub require_nodes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_endpoints_per_slice: 100,
            require_nodes: false,
        }
    }
}

/// The writes that bring a Service's slices to the desired state.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Sorts IPs numerically (IPv4 before IPv6), anything unparsable after, by text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IpOrder(u8, u128, String);

pub(crate) fn ip_order(s: &str) -> IpOrder {
    match s.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => IpOrder(0, u32::from(a) as u128, s.to_string()),
        Ok(IpAddr::V6(a)) => IpOrder(1, u128::from(a), s.to_string()),
        Err(_) => IpOrder(2, 0, s.to_string()),
    }
}

/// An endpoint's identity, as upstream's `hashEndpoint`: its (sorted) addresses, hostname and
/// target. Ordered by address, so new endpoints are placed in IP order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EndpointKey(Vec<IpOrder>, String, String, String);

pub(crate) fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addrs: Vec<IpOrder> = ep.addresses.iter().map(|a| ip_order(a)).collect();
    addrs.sort();
    let (ns, name) = ep
        .target_ref
        .as_ref()
        .map(|r| {
            (
                r.namespace.clone().unwrap_or_default(),
                r.name.clone().unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    EndpointKey(addrs, ep.hostname.clone().unwrap_or_default(), ns, name)
}

/// A group of slices shares one address type and one set of ports (order-insensitive).
pub(crate) type PortKey = Vec<(Option<String>, Option<i32>, Option<String>, Option<String>)>;

pub(crate) fn port_key(ports: Option<&Vec<EndpointPort>>) -> PortKey {
    let mut key: PortKey = ports
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.name.clone(),
                p.port,
                p.protocol.clone(),
                p.app_protocol.clone(),
            )
        })
        .collect();
    key.sort();
    key
}

/// Upstream's `getEndpointPorts`: every Service port the pod resolves, in Service order.
fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = pods::service_ports(svc);
    if ports.is_empty() && pods::is_headless(svc) {
        return Vec::new();
    }
    ports
        .iter()
        .filter_map(|sp| {
            let number = pods::find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(pods::protocol_or_tcp(sp.protocol.as_ref()).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// Upstream's `podToEndpoint`.
fn pod_to_endpoint(pod: &Pod, zone: Option<String>, svc: &Service, address_type: &str) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    // For compatibility, "ready" is never true for a terminating pod unless the Service
    // publishes not-ready addresses.
    let ready = pods::publish_not_ready(svc) || (serving && !terminating);
    let want_v6 = address_type == "IPv6";
    let addresses = pods::pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == want_v6)
        .map(|ip| ip.to_string())
        .collect();
    let node = pods::node_name(pod);
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name: (!node.is_empty()).then(|| node.to_string()),
        zone,
        hostname: if pods::should_set_hostname(pod, svc) {
            pods::hostname(pod)
        } else {
            None
        },
        ..Default::default()
    }
}

/// The labels of a slice of `svc`: the Service's (minus the reserved ones), the headless
/// marker, the service name and the manager.
pub fn slice_labels(svc: &Service, managed_by: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !pods::is_service_ip_set(svc) {
        labels.insert(crate::endpoints::HEADLESS_LABEL.into(), String::new());
    }
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        pods::name_of(&svc.metadata).to_string(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), managed_by.into());
    labels
}

fn is_reserved_label(k: &str) -> bool {
    k == LABEL_SERVICE_NAME || k == LABEL_MANAGED_BY || k == crate::endpoints::HEADLESS_LABEL
}

/// The controller owner reference a slice carries to its Service.
pub fn owner_reference(kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let uid = svc.metadata.uid.as_deref().unwrap_or("");
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

fn new_slice(svc: &Service, ports: Vec<EndpointPort>, address_type: &str) -> EndpointSlice {
    let name = pods::name_of(&svc.metadata);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(slice_labels(svc, CONTROLLER_NAME)),
            owner_references: Some(vec![owner_reference("Service", &svc.metadata)]),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then_some(ports),
    }
}

/// Upstream's `EndpointsEqualBeyondHash`: node, zone, conditions and target (without its
/// resourceVersion).
fn equal_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let strip = |r: &Option<ObjectReference>| {
        r.clone().map(|mut r| {
            r.resource_version = None;
            r
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && a.conditions == b.conditions
        && strip(&a.target_ref) == strip(&b.target_ref)
}

/// Reconciles one selector Service: `pods` are the pods its selector matches (any order),
/// `existing` the slices labelled with its name and managed by this controller. Creates carry
/// `generateName`; updates carry the existing name and resourceVersion.
pub fn reconcile(
    svc: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    node: &dyn Fn(&str) -> NodeLookup,
    opts: &Options,
    trigger_time: Option<Timestamp>,
) -> Plan {
    reconcile_with_topology(svc, pods, existing, node, opts, trigger_time, None).0
}

/// [`reconcile`] with the topology cache that hints `topology-mode: Auto` Services (without
/// one, such a Service gets no hints, as upstream without its cache); also returns the Events
/// to record on the Service.
pub fn reconcile_with_topology(
    svc: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    node: &dyn Fn(&str) -> NodeLookup,
    opts: &Options,
    trigger_time: Option<Timestamp>,
    topology: Option<&TopologyCache>,
) -> (Plan, Vec<HintsEvent>) {
    let address_types = pods::address_types(svc);
    let mut plan = Plan::default();
    let mut events = Vec::new();
    let mut existing: Vec<&EndpointSlice> = existing.to_vec();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for t in &address_types {
        let of_type: Vec<&EndpointSlice> = existing
            .iter()
            .copied()
            .filter(|s| s.address_type == *t)
            .collect();
        let p = reconcile_address_type(svc, pods, &of_type, node, opts, t, topology, &mut events);
        plan.create.extend(p.create);
        plan.update.extend(p.update);
        plan.delete.extend(p.delete);
    }
    // Slices of an address type the Service no longer has.
    let leftover: Vec<EndpointSlice> = existing
        .iter()
        .filter(|s| !address_types.contains(&s.address_type.as_str()))
        .map(|s| (*s).clone())
        .collect();
    if let Some(cache) = topology {
        for s in &leftover {
            cache.remove_hints(&service_key(svc), &s.address_type);
        }
    }
    (finalize(svc, plan, leftover, trigger_time), events)
}

fn service_key(svc: &Service) -> String {
    format!(
        "{}/{}",
        pods::namespace_of(&svc.metadata),
        pods::name_of(&svc.metadata)
    )
}

#[allow(clippy::too_many_arguments)]
fn reconcile_address_type(
    svc: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    node: &dyn Fn(&str) -> NodeLookup,
    opts: &Options,
    address_type: &str,
    topology: Option<&TopologyCache>,
    events: &mut Vec<HintsEvent>,
) -> Plan {
    let mut plan = Plan::default();
    let mut existing_by_ports: BTreeMap<PortKey, Vec<&EndpointSlice>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            existing_by_ports
                .entry(port_key(s.ports.as_ref()))
                .or_default()
                .push(s);
        } else {
            // A slice of an earlier Service with the same name.
            plan.delete.push((*s).clone());
        }
    }
    let mut desired: BTreeMap<PortKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for pod in pods {
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(svc, pod);
        let key = port_key(Some(&ports));
        let zone = match pods::node_name(pod) {
            "" => None,
            n => match node(n) {
                NodeLookup::Known(zone) => zone,
                NodeLookup::Unknown if opts.require_nodes && !pods::publish_not_ready(svc) => {
                    continue
                }
                NodeLookup::Unknown => None,
            },
        };
        let group = desired
            .entry(key)
            .or_insert_with(|| (ports, BTreeMap::new()));
        let ep = pod_to_endpoint(pod, zone, svc, address_type);
        if !ep.addresses.is_empty() {
            group.1.insert(endpoint_key(&ep), ep);
        }
    }
    for (key, (ports, set)) in desired.iter_mut() {
        let group = existing_by_ports.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let p = reconcile_ports(
            svc,
            group,
            std::mem::take(set),
            ports,
            opts.max_endpoints_per_slice.max(1),
            address_type,
        );
        plan.create.extend(p.create);
        plan.update.extend(p.update);
        plan.delete.extend(p.delete);
    }
    for (key, slices) in &existing_by_ports {
        if !desired.contains_key(key) {
            plan.delete.extend(slices.iter().map(|s| (*s).clone()));
        }
    }
    // Nothing to publish: keep (or make) one placeholder slice, so that consumers can tell
    // "no endpoints" from "not yet synced".
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = new_slice(svc, Vec::new(), address_type);
        if plan.delete.len() == 1 && is_placeholder_of(&plan.delete[0], &placeholder) {
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    // Topology hints are decided per address type, over all its slices together.
    let changed: BTreeSet<String> = plan
        .update
        .iter()
        .chain(&plan.delete)
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    let mut si = SliceInfo {
        service_key: service_key(svc),
        address_type: address_type.to_string(),
        to_create: std::mem::take(&mut plan.create),
        to_update: std::mem::take(&mut plan.update),
        unchanged: existing
            .iter()
            .filter(|s| !changed.contains(s.metadata.name.as_deref().unwrap_or_default()))
            .map(|s| (*s).clone())
            .collect(),
    };
    events.extend(crate::hints::reconcile_hints(svc, &mut si, topology));
    plan.create = si.to_create;
    plan.update = si.to_update;
    plan
}

/// Upstream's `placeholderSliceCompare`: same namespace, labels, owners, and no ports or
/// endpoints.
fn is_placeholder_of(s: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    s.metadata.namespace == placeholder.metadata.namespace
        && s.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
        && s.metadata.owner_references.clone().unwrap_or_default()
            == placeholder
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default()
        && s.address_type == placeholder.address_type
        && s.endpoints.is_empty()
        && s.ports.as_ref().is_none_or(Vec::is_empty)
}

/// Upstream's `reconcileByPortMapping` for one group of slices.
fn reconcile_ports(
    svc: &Service,
    existing: &[&EndpointSlice],
    mut desired: BTreeMap<EndpointKey, Endpoint>,
    ports: &[EndpointPort],
    max: usize,
    address_type: &str,
) -> Plan {
    let labels = slice_labels(svc, CONTROLLER_NAME);
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let mut unchanged: BTreeSet<String> = BTreeSet::new();
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut to_delete: BTreeSet<String> = BTreeSet::new();
    // 1. Keep the endpoints still desired (in their place), drop the others.
    for s in existing {
        let name = s.metadata.name.clone().unwrap_or_default();
        let mut kept = Vec::with_capacity(s.endpoints.len());
        let mut changed = false;
        for ep in &s.endpoints {
            if let Some(want) = desired.remove(&endpoint_key(ep)) {
                changed |= !equal_beyond_key(&want, ep);
                kept.push(want);
            }
        }
        let labels_changed = s.metadata.labels.clone().unwrap_or_default() != labels;
        if changed || kept.len() != s.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
                by_name.insert(name, (*s).clone());
            } else {
                let mut copy = (*s).clone();
                copy.endpoints = kept;
                copy.metadata.labels = Some(labels.clone());
                to_update.insert(name.clone());
                by_name.insert(name, copy);
            }
        } else if labels_changed {
            let mut copy = (*s).clone();
            copy.metadata.labels = Some(labels.clone());
            to_update.insert(name.clone());
            by_name.insert(name, copy);
        } else {
            unchanged.insert(name.clone());
            by_name.insert(name, (*s).clone());
        }
    }
    // 2. Fill the slices that change anyway, fullest first.
    if !desired.is_empty() && !to_update.is_empty() {
        let mut names: Vec<String> = to_update.iter().cloned().collect();
        names.sort_by_key(|n| std::cmp::Reverse(by_name[n].endpoints.len()));
        for n in names {
            let s = by_name.get_mut(&n).expect("slice to update");
            while s.endpoints.len() < max {
                let Some((_, ep)) = desired.pop_first() else {
                    break;
                };
                s.endpoints.push(ep);
            }
        }
    }
    // 3. Put what is left into the unchanged slice it fits best, or into new slices.
    let mut create = Vec::new();
    while !desired.is_empty() {
        let mut target: Option<String> = None;
        if desired.len() < max && !unchanged.is_empty() {
            let mut closest = max;
            for n in &unchanged {
                let len = by_name[n].endpoints.len();
                if len + desired.len() <= max {
                    let diff = max - (len + desired.len());
                    if diff < closest {
                        closest = diff;
                        target = Some(n.clone());
                        if diff == 0 {
                            break;
                        }
                    }
                }
            }
        }
        let slice = match &target {
            Some(n) => {
                unchanged.remove(n);
                to_update.insert(n.clone());
                by_name.get_mut(n).expect("unchanged slice")
            }
            None => {
                create.push(new_slice(svc, ports.to_vec(), address_type));
                create.last_mut().expect("just pushed")
            }
        };
        while slice.endpoints.len() < max {
            let Some((_, ep)) = desired.pop_first() else {
                break;
            };
            slice.endpoints.push(ep);
        }
    }
    // Topology hints come after every group is placed (`reconcile_address_type`).
    Plan {
        create,
        update: to_update.iter().map(|n| by_name[n].clone()).collect(),
        delete: to_delete.iter().map(|n| by_name[n].clone()).collect(),
    }
}

/// Upstream's `finalize`, minus the I/O: turn creates into updates of slices that would be
/// deleted (same address type, owned by this Service), drop creates while the Service is being
/// deleted, and stamp the trigger time on everything written.
fn finalize(
    svc: &Service,
    mut plan: Plan,
    leftover: Vec<EndpointSlice>,
    trigger_time: Option<Timestamp>,
) -> Plan {
    let mut i = 0;
    while i < plan.delete.len() && !plan.create.is_empty() {
        let old = &plan.delete[i];
        let last = plan.create.last().expect("non-empty");
        if old.address_type == last.address_type && owned_by(old, svc) {
            let mut slice = plan.create.pop().expect("non-empty");
            slice.metadata.name = old.metadata.name.clone();
            slice.metadata.resource_version = old.metadata.resource_version.clone();
            slice.metadata.generate_name = old
                .metadata
                .generate_name
                .clone()
                .or(slice.metadata.generate_name);
            plan.update.push(slice);
            plan.delete.remove(i);
        } else {
            i += 1;
        }
    }
    plan.delete.extend(leftover);
    if svc.metadata.deletion_timestamp.is_some() {
        plan.create.clear();
    }
    for s in plan.create.iter_mut().chain(plan.update.iter_mut()) {
        let mut annotations = s.metadata.annotations.take().unwrap_or_default();
        match trigger_time {
            Some(t) => {
                annotations.insert(crate::trigger::ANNOTATION.into(), crate::trigger::format(t));
            }
            None => {
                annotations.remove(crate::trigger::ANNOTATION);
            }
        }
        s.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
        s.metadata.managed_fields = None;
    }
    plan
}

/// The JSON a slice is written as: `endpoints` and `ports` are `null` when empty, as
/// kube-apiserver shows a slice whose lists went through protobuf (`[]` and `null` are one
/// thing there), so that `kubectl get -o yaml` matches.
pub fn to_wire(s: &EndpointSlice) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        if s.endpoints.is_empty() {
            m.insert("endpoints".into(), serde_json::Value::Null);
        }
        if s.ports.as_ref().is_none_or(Vec::is_empty) {
            m.insert("ports".into(), serde_json::Value::Null);
        }
    }
    v
}

#[cfg(test)]
mod tests;
