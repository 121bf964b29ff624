//! The EndpointSlice mirroring controller's pure half: a Service without a selector keeps the
//! v1 Endpoints its users write, and those are mirrored into EndpointSlices (managed by
//! `endpointslicemirroring-controller.k8s.io`, owned by the Endpoints) so that consumers of
//! slices (the agent's proxy, DNS) see them too.

use crate::pods;
use crate::slices::{
    endpoint_key, owner_reference, port_key, EndpointKey, Plan, PortKey, LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
};
use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// Upstream's `--mirroring-max-endpoints-per-subset` default: addresses past it are not mirrored.
pub const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// Whether `endpoints` of `service` should be mirrored: the Service exists, has no selector,
/// and the Endpoints is not marked to skip (nor a leader-election lock).
pub fn should_mirror(service: Option<&Service>, endpoints: Option<&Endpoints>) -> bool {
    let (Some(svc), Some(ep)) = (service, endpoints) else {
        return false;
    };
    if pods::service_selector(svc).is_some()
        || svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .is_some_and(|s| !s.is_empty())
    {
        return false;
    }
    let skip = ep
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_SKIP_MIRROR))
        .is_some_and(|v| v == "true");
    let leader = ep
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    !skip && !leader
}

fn address_to_endpoint(a: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip: IpAddr = a.ip.parse().ok()?;
    let address_type = if ip.is_ipv6() { "IPv6" } else { "IPv4" };
    Some((
        Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: None,
                terminating: None,
            }),
            target_ref: a.target_ref.clone(),
            node_name: a.node_name.clone().filter(|n| !n.is_empty()),
            hostname: a.hostname.clone().filter(|h| !h.is_empty()),
            ..Default::default()
        },
        address_type,
    ))
}

fn slice_meta(ep: &Endpoints) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut labels = ep.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        LABEL_SERVICE_NAME.into(),
        pods::name_of(&ep.metadata).to_string(),
    );
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    let mut annotations = ep.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(crate::trigger::ANNOTATION);
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    (labels, annotations)
}

/// One group of mirrored endpoints: its ports, endpoints in order, and their identities.
type Group = (
    Vec<EndpointPort>,
    Vec<Endpoint>,
    std::collections::BTreeSet<EndpointKey>,
);

/// The slices mirroring `ep` should have, and the writes from `existing` (the slices labelled
/// with its name and managed by the mirroring controller) to them. `ep` is `None` when nothing
/// should be mirrored (then every existing mirrored slice goes).
pub fn reconcile(
    ep: Option<&Endpoints>,
    existing: &[&EndpointSlice],
    max_per_slice: usize,
) -> Plan {
    let max = max_per_slice.max(1);
    let mut plan = Plan::default();
    let Some(ep) = ep else {
        plan.delete = existing.iter().map(|s| (*s).clone()).collect();
        return plan;
    };
    // Group addresses by (address type, ports), deduplicated, in the order written.
    let mut desired: BTreeMap<(String, PortKey), Group> = BTreeMap::new();
    for subset in ep.subsets.iter().flatten() {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(pods::protocol_or_tcp(p.protocol.as_ref()).to_string()),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let key = port_key(Some(&ports));
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        for (n, (a, r)) in ready.chain(not_ready).enumerate() {
            if n >= MAX_ENDPOINTS_PER_SUBSET {
                break;
            }
            let Some((endpoint, t)) = address_to_endpoint(a, r) else {
                continue;
            };
            let group = desired
                .entry((t.to_string(), key.clone()))
                .or_insert_with(|| (ports.clone(), Vec::new(), Default::default()));
            if group.2.insert(endpoint_key(&endpoint)) {
                group.1.push(endpoint);
            }
        }
    }
    let (labels, annotations) = slice_meta(ep);
    let owner = owner_reference("Endpoints", &ep.metadata);
    let mut existing_by_group: BTreeMap<(String, PortKey), Vec<&EndpointSlice>> = BTreeMap::new();
    let mut existing: Vec<&EndpointSlice> = existing.to_vec();
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for s in existing {
        existing_by_group
            .entry((s.address_type.clone(), port_key(s.ports.as_ref())))
            .or_default()
            .push(s);
    }
    for ((address_type, key), (ports, endpoints, _)) in desired {
        let mut have = existing_by_group
            .remove(&(address_type.clone(), key))
            .unwrap_or_default()
            .into_iter();
        for chunk in endpoints.chunks(max) {
            let want = |name: Option<String>, rv: Option<String>| EndpointSlice {
                metadata: ObjectMeta {
                    name: name.clone(),
                    generate_name: name
                        .is_none()
                        .then(|| format!("{}-", pods::name_of(&ep.metadata))),
                    namespace: ep.metadata.namespace.clone(),
                    labels: Some(labels.clone()),
                    annotations: (!annotations.is_empty()).then(|| annotations.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    resource_version: rv,
                    ..Default::default()
                },
                address_type: address_type.clone(),
                endpoints: chunk.to_vec(),
                ports: (!ports.is_empty()).then(|| ports.clone()),
            };
            match have.next() {
                Some(s) => {
                    let same = s.endpoints == chunk
                        && s.metadata.labels.clone().unwrap_or_default() == labels
                        && s.metadata.annotations.clone().unwrap_or_default() == annotations
                        && s.metadata.owner_references.clone().unwrap_or_default()
                            == vec![owner.clone()];
                    if !same {
                        let mut w =
                            want(s.metadata.name.clone(), s.metadata.resource_version.clone());
                        w.metadata.generate_name = s.metadata.generate_name.clone();
                        plan.update.push(w);
                    }
                }
                None => plan.create.push(want(None, None)),
            }
        }
        plan.delete.extend(have.cloned());
    }
    for (_, slices) in existing_by_group {
        plan.delete.extend(slices.into_iter().cloned());
    }
    // Reuse slices that would be deleted for the creates (fewer names churned).
    let mut kept = Vec::new();
    for old in std::mem::take(&mut plan.delete) {
        match plan
            .create
            .iter()
            .rposition(|c| c.address_type == old.address_type)
        {
            Some(i) => {
                let mut s = plan.create.remove(i);
                s.metadata.name = old.metadata.name.clone();
                s.metadata.generate_name = old.metadata.generate_name.clone();
                s.metadata.resource_version = old.metadata.resource_version.clone();
                plan.update.push(s);
            }
            None => kept.push(old),
        }
    }
    plan.delete = kept;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(v: serde_json::Value) -> Endpoints {
        serde_json::from_value(v).unwrap()
    }

    fn selectorless() -> Service {
        serde_json::from_value(json!({"metadata": {"name": "external-db", "namespace": "default"}, "spec": {"clusterIP": "10.43.0.50", "ports": [{"port": 5432}]}})).unwrap()
    }

    fn hand_written() -> Endpoints {
        endpoints(json!({
            "metadata": {"name": "external-db", "namespace": "default", "uid": "ep-uid", "labels": {"team": "db"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"}},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}, {"ip": "192.0.2.11", "nodeName": "node1"}],
                         "notReadyAddresses": [{"ip": "192.0.2.12"}],
                         "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]
        }))
    }

    #[test]
    fn hand_written_endpoints_of_a_selectorless_service_are_mirrored() {
        let ep = hand_written();
        assert!(should_mirror(Some(&selectorless()), Some(&ep)));
        let plan = reconcile(Some(&ep), &[], 100);
        assert_eq!(plan.create.len(), 1);
        let v = crate::slices::to_wire(&plan.create[0]);
        assert_eq!(v["metadata"]["generateName"], "external-db-");
        assert_eq!(
            v["metadata"]["labels"],
            json!({"team": "db", "kubernetes.io/service-name": "external-db", "endpointslice.kubernetes.io/managed-by": CONTROLLER_NAME})
        );
        assert_eq!(v["metadata"]["annotations"], json!({"note": "x"}));
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "Endpoints");
        assert_eq!(
            v["ports"],
            json!([{"name": "pg", "port": 5432, "protocol": "TCP"}])
        );
        assert_eq!(
            v["endpoints"],
            json!([
            {"addresses": ["192.0.2.10"], "conditions": {"ready": true}},
            {"addresses": ["192.0.2.11"], "conditions": {"ready": true}, "nodeName": "node1"},
            {"addresses": ["192.0.2.12"], "conditions": {"ready": false}}])
        );
        // Mirrored again: nothing to do.
        let mut existing = plan.create[0].clone();
        existing.metadata.name = Some("external-db-abcde".into());
        assert!(reconcile(Some(&ep), &[&existing], 100).is_empty());
    }

    #[test]
    fn selector_services_and_skip_mirror_are_not_mirrored() {
        let mut svc = selectorless();
        svc.spec.as_mut().unwrap().selector = Some([("app".to_string(), "x".to_string())].into());
        assert!(!should_mirror(Some(&svc), Some(&hand_written())));
        let mut ep = hand_written();
        ep.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(LABEL_SKIP_MIRROR.into(), "true".into());
        assert!(!should_mirror(Some(&selectorless()), Some(&ep)));
        assert!(!should_mirror(None, Some(&hand_written())));
    }

    #[test]
    fn a_changed_address_updates_the_same_slice_and_a_removed_endpoints_deletes_it() {
        let ep = hand_written();
        let mut existing = reconcile(Some(&ep), &[], 100).create.remove(0);
        existing.metadata.name = Some("external-db-abcde".into());
        let mut changed = ep.clone();
        changed.subsets.as_mut().unwrap()[0]
            .addresses
            .as_mut()
            .unwrap()[0]
            .ip = "192.0.2.20".into();
        let plan = reconcile(Some(&changed), &[&existing], 100);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        assert_eq!(
            plan.update[0].metadata.name.as_deref(),
            Some("external-db-abcde")
        );
        let plan = reconcile(None, &[&existing], 100);
        assert_eq!(plan.delete.len(), 1);
    }

    #[test]
    fn ports_changes_reuse_the_slice_name_and_families_get_their_own_slices() {
        let ep = hand_written();
        let mut existing = reconcile(Some(&ep), &[], 100).create.remove(0);
        existing.metadata.name = Some("external-db-abcde".into());
        let mut changed = ep.clone();
        changed.subsets.as_mut().unwrap()[0].ports.as_mut().unwrap()[0].port = 6432;
        changed.subsets.as_mut().unwrap()[0]
            .addresses
            .as_mut()
            .unwrap()
            .push(serde_json::from_value(json!({"ip": "2001:db8::1"})).unwrap());
        let plan = reconcile(Some(&changed), &[&existing], 100);
        let mut kinds: Vec<(&str, bool)> = plan
            .update
            .iter()
            .chain(&plan.create)
            .map(|s| (s.address_type.as_str(), s.metadata.name.is_some()))
            .collect();
        kinds.sort();
        assert_eq!(kinds, [("IPv4", true), ("IPv6", false)]);
        assert!(plan.delete.is_empty());
    }
}
