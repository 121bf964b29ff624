//! kube-proxy's `CategorizeEndpoints` (pkg/proxy/topology.go), per IP family: which endpoints
//! serve traffic under the "Cluster" policy, which under "Local", and whether the Service has
//! any usable endpoint at all (otherwise it is rejected).
//!
//! Topology-aware routing follows kube-proxy 1.36: the "Cluster" endpoints are narrowed to those
//! hinted for this node (`hints.forNodes`, trafficDistribution PreferSameNode) when every ready
//! endpoint has node hints and one is for this node; else to those hinted for this node's zone
//! (`hints.forZones`, PreferClose/PreferSameZone or `service.kubernetes.io/topology-mode: Auto`)
//! when every ready endpoint has zone hints and one is for the zone of this node (its
//! `topology.kubernetes.io/zone` label); else nothing is narrowed. Like kube-proxy, the proxy
//! looks only at the hints: the Service's trafficDistribution or annotation is what makes the
//! EndpointSlice controller write them. "Local" endpoints ignore topology.

use crate::{Endpoint, IpFamily, ServicePort};
use k8s_openapi::api::discovery::v1::Endpoint as SliceEndpoint;

/// An endpoint's topology hints, as they concern this node (worked out when the snapshot is
/// built, from the slice's `hints` and [`ProxyConfig`](crate::ProxyConfig)'s node name and zone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hints {
    /// `hints.forZones`.
    pub zone: Hint,
    /// `hints.forNodes`.
    pub node: Hint,
}

/// One kind of hint of one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hint {
    /// No hint of this kind.
    #[default]
    None,
    /// Hinted for this node (or its zone), possibly among others.
    Here,
    /// Hinted only for other nodes (zones).
    Elsewhere,
}

impl Hints {
    /// The hints of a slice endpoint for the node `node_name` in zone `zone` (`""`: the node
    /// has no zone label, so no zone hint is for it).
    pub fn of(ep: &SliceEndpoint, node_name: &str, zone: &str) -> Hints {
        let hints = ep.hints.as_ref();
        let zones = hints.and_then(|h| h.for_zones.as_ref());
        let nodes = hints.and_then(|h| h.for_nodes.as_ref());
        Hints {
            zone: Hint::from_names(zones.into_iter().flatten().map(|z| z.name.as_str()), zone),
            node: Hint::from_names(
                nodes.into_iter().flatten().map(|n| n.name.as_str()),
                node_name,
            ),
        }
    }
}

impl Hint {
    fn from_names<'a>(mut names: impl Iterator<Item = &'a str>, here: &str) -> Hint {
        let Some(first) = names.next() else {
            return Hint::None;
        };
        if !here.is_empty() && (first == here || names.any(|n| n == here)) {
            Hint::Here
        } else {
            Hint::Elsewhere
        }
    }
}

/// kube-proxy's topology modes (`topologyModeFromHints`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology {
    /// Every ready endpoint may be used.
    Any,
    /// Only endpoints hinted for this node.
    SameNode,
    /// Only endpoints hinted for this node's zone.
    SameZone,
}

impl Topology {
    fn from_hints(eps: &[&Endpoint]) -> Topology {
        // Called per port and family on every render: iterate, don't collect.
        let ready = || eps.iter().filter(|e| e.ready);
        if ready().next().is_none() {
            return Topology::Any;
        }
        let all_node = ready().all(|e| e.hints.node != Hint::None);
        if all_node && ready().any(|e| e.hints.node == Hint::Here) {
            return Topology::SameNode;
        }
        let all_zone = ready().all(|e| e.hints.zone != Hint::None);
        if all_zone && ready().any(|e| e.hints.zone == Hint::Here) {
            return Topology::SameZone;
        }
        Topology::Any
    }

    fn admits(self, e: &Endpoint) -> bool {
        match self {
            Topology::Any => true,
            Topology::SameNode => e.hints.node == Hint::Here,
            Topology::SameZone => e.hints.zone == Hint::Here,
        }
    }
}

/// The endpoints of one service port, in one family, by the policy that uses them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categorized {
    /// Endpoints for the "Cluster" policy: the ready ones (those of this node or zone when
    /// topology hints say so, see the module docs), or, only when none is ready, the
    /// serving-and-terminating ones (so connections drain gracefully during a rollout).
    pub cluster: Vec<Endpoint>,
    /// Endpoints on this node for the "Local" policy (same fallback, among local endpoints).
    pub local: Vec<Endpoint>,
    /// The union of the two: every endpoint some packet can reach.
    pub all_reachable: Vec<Endpoint>,
    /// Some endpoint anywhere is usable; when false, the service is REJECTed.
    pub has_any: bool,
}

impl ServicePort {
    /// "Cluster" endpoints are needed when internal traffic uses them, or when external traffic
    /// exists (even with externalTrafficPolicy Local, pod and host traffic short-circuits to them).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }

    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || self.external_policy_local
    }
}

/// Categorises the endpoints of `sp` in `family`.
pub fn categorize(sp: &ServicePort, family: IpFamily) -> Categorized {
    let eps: Vec<&Endpoint> = sp
        .endpoints
        .iter()
        .filter(|e| IpFamily::of(&e.ip) == family)
        .collect();
    let mut out = Categorized::default();
    let mut topology = Topology::Any;
    if sp.uses_cluster_endpoints() {
        topology = Topology::from_hints(&eps);
        out.cluster = eps
            .iter()
            .filter(|e| e.ready && topology.admits(e))
            .map(|e| (*e).clone())
            .collect();
        // Topology was already ignored unless some ready endpoint is for this node or zone,
        // so an empty list here means nothing is ready anywhere.
        if out.cluster.is_empty() {
            out.cluster = eps
                .iter()
                .filter(|e| e.serving && e.terminating)
                .map(|e| (*e).clone())
                .collect();
        }
        out.has_any = !out.cluster.is_empty();
    }
    if !sp.uses_local_endpoints() {
        out.all_reachable = out.cluster.clone();
        return out;
    }
    let mut local_ready = false;
    let mut local_serving_terminating = false;
    for e in &eps {
        if e.ready {
            out.has_any = true;
            local_ready |= e.local;
        } else if e.serving && e.terminating {
            out.has_any = true;
            local_serving_terminating |= e.local;
        }
    }
    let use_serving_terminating = !local_ready && local_serving_terminating;
    if local_ready {
        out.local = eps
            .iter()
            .filter(|e| e.local && e.ready)
            .map(|e| (*e).clone())
            .collect();
    } else if local_serving_terminating {
        out.local = eps
            .iter()
            .filter(|e| e.local && e.serving && e.terminating)
            .map(|e| (*e).clone())
            .collect();
    }
    if !sp.uses_cluster_endpoints() {
        out.all_reachable = out.local.clone();
        return out;
    }
    if topology == Topology::Any && !use_serving_terminating {
        // Local holds only ready endpoints, all of which are in cluster already.
        out.all_reachable = out.cluster.clone();
        return out;
    }
    let mut all = out.cluster.clone();
    for e in &out.local {
        if !all.contains(e) {
            all.push(e.clone());
        }
    }
    all.sort();
    out.all_reachable = all;
    out
}

#[cfg(test)]
mod tests {
    //! kube-proxy's `TestCategorizeEndpoints` (pkg/proxy/topology_test.go), the topology cases
    //! and the traffic-policy cases they interact with, plus node hints.
    use super::*;
    use crate::{Protocol, Scheduler, ServiceName, ServicePortName};
    use serde_json::json;
    use std::collections::BTreeSet;

    /// `(address, zone hints, ready, local)`; node hints come from [`ep_nodes`].
    fn ep(addr: &str, zones: &[&str], ready: bool, local: bool) -> Endpoint {
        endpoint(addr, zones, &[], ready, local)
    }

    fn ep_nodes(addr: &str, nodes: &[&str], zones: &[&str]) -> Endpoint {
        endpoint(addr, zones, nodes, true, false)
    }

    /// Built the way the snapshot builds it: from a slice endpoint's JSON, on node `node-1` in
    /// zone `zone-a`... unless the test passes its own node zone to [`cat`].
    fn endpoint(addr: &str, zones: &[&str], nodes: &[&str], ready: bool, local: bool) -> Endpoint {
        let (ip, port) = addr.split_once(':').unwrap();
        let mut hints = json!({});
        if !zones.is_empty() {
            hints["forZones"] = zones.iter().map(|z| json!({"name": z})).collect();
        }
        if !nodes.is_empty() {
            hints["forNodes"] = nodes.iter().map(|n| json!({"name": n})).collect();
        }
        let raw: SliceEndpoint =
            serde_json::from_value(json!({"addresses": [ip], "hints": hints})).unwrap();
        Endpoint {
            ip: ip.parse().unwrap(),
            port: port.parse().unwrap(),
            ready,
            serving: ready,
            terminating: false,
            local,
            // Worked out for the zone the test's node is in; `cat` redoes it for another zone.
            hints: Hints::of(&raw, "node-1", "zone-a"),
        }
    }

    fn sp(
        itp_local: bool,
        etp_local: bool,
        node_port: Option<u16>,
        eps: Vec<Endpoint>,
    ) -> ServicePort {
        ServicePort {
            name: ServicePortName {
                service: ServiceName {
                    namespace: "ns".into(),
                    name: "svc".into(),
                },
                port: "p".into(),
                protocol: Protocol::Tcp,
            },
            cluster_ips: vec!["172.30.0.1".parse().unwrap()],
            port: 80,
            node_port,
            external_ips: vec![],
            load_balancer_ips: vec![],
            source_ranges: vec![],
            affinity_timeout: None,
            external_policy_local: etp_local && node_port.is_some(),
            internal_policy_local: itp_local,
            scheduler: Scheduler::Random,
            endpoints: eps,
        }
    }

    /// Re-derives every endpoint's hints for a node in `zone` ("" for no zone label).
    fn in_zone(mut sp: ServicePort, zone: &str, raw: &[(&str, &[&str])]) -> ServicePort {
        for e in &mut sp.endpoints {
            let addr = format!("{}:{}", e.ip, e.port);
            let zones = raw
                .iter()
                .find(|(a, _)| *a == addr)
                .map(|(_, z)| *z)
                .unwrap();
            let mut hints = json!({});
            if !zones.is_empty() {
                hints["forZones"] = zones.iter().map(|z| json!({"name": z})).collect();
            }
            let r: SliceEndpoint =
                serde_json::from_value(json!({"addresses": [e.ip.to_string()], "hints": hints}))
                    .unwrap();
            e.hints = Hints::of(&r, "node-1", zone);
        }
        sp
    }

    fn set(eps: &[Endpoint]) -> BTreeSet<String> {
        eps.iter().map(|e| format!("{}:{}", e.ip, e.port)).collect()
    }

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn four_zoned() -> Vec<Endpoint> {
        vec![
            ep("10.1.2.3:80", &["zone-a"], true, false),
            ep("10.1.2.4:80", &["zone-b"], true, false),
            ep("10.1.2.5:80", &["zone-c"], true, false),
            ep("10.1.2.6:80", &["zone-a"], true, false),
        ]
    }

    #[test]
    fn all_endpoints_hinted_and_some_for_this_zone_use_only_those() {
        let c = categorize(&sp(false, false, None, four_zoned()), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.1.2.3:80", "10.1.2.6:80"]));
        assert!(c.local.is_empty());
        assert_eq!(c.all_reachable, c.cluster);
        assert!(c.has_any);
    }

    #[test]
    fn local_policies_ignore_topology_and_all_reachable_merges() {
        for (itp, etp) in [(false, true), (true, false)] {
            let eps = vec![
                ep("10.1.2.3:80", &["zone-a"], true, true),
                ep("10.1.2.4:80", &["zone-b"], true, true),
                ep("10.1.2.5:80", &["zone-c"], true, false),
                ep("10.1.2.6:80", &["zone-a"], true, false),
            ];
            let c = categorize(&sp(itp, etp, Some(8080), eps), IpFamily::V4);
            assert_eq!(set(&c.cluster), names(&["10.1.2.3:80", "10.1.2.6:80"]));
            assert_eq!(set(&c.local), names(&["10.1.2.3:80", "10.1.2.4:80"]));
            assert_eq!(
                set(&c.all_reachable),
                names(&["10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"]),
                "itp {itp} etp {etp}"
            );
        }
    }

    #[test]
    fn conflicting_topology_and_localness_require_merging() {
        let eps = vec![
            ep("10.0.0.0:80", &["zone-a"], true, true),
            ep("10.0.0.1:80", &["zone-b"], true, true),
            ep("10.0.0.2:80", &["zone-a"], true, false),
            ep("10.0.0.3:80", &["zone-b"], true, false),
        ];
        let c = categorize(&sp(false, true, Some(8080), eps), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.0.0.0:80", "10.0.0.2:80"]));
        assert_eq!(set(&c.local), names(&["10.0.0.0:80", "10.0.0.1:80"]));
        assert_eq!(
            set(&c.all_reachable),
            names(&["10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"])
        );
    }

    #[test]
    fn node_without_zone_or_in_another_zone_uses_everything() {
        let raw: &[(&str, &[&str])] = &[("10.1.2.3:80", &["zone-a"])];
        let one = vec![ep("10.1.2.3:80", &["zone-a"], true, false)];
        // Empty node labels, an empty zone label, and a node in zone-b.
        for zone in ["", "zone-b"] {
            let s = in_zone(sp(false, false, None, one.clone()), zone, raw);
            let c = categorize(&s, IpFamily::V4);
            assert_eq!(set(&c.cluster), names(&["10.1.2.3:80"]), "zone {zone:?}");
        }
    }

    #[test]
    fn unready_endpoints_neither_count_nor_serve() {
        // One zone-a endpoint unready: only the other zone-a one.
        let mut eps = four_zoned();
        eps[3].ready = false;
        let c = categorize(&sp(false, false, None, eps), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.1.2.3:80"]));
        // Only unready endpoints in this zone: no filtering, the ready ones elsewhere.
        let mut eps = four_zoned();
        eps[0].ready = false;
        eps[3].ready = false;
        let c = categorize(&sp(false, false, None, eps), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.1.2.4:80", "10.1.2.5:80"]));
    }

    #[test]
    fn one_endpoint_without_hints_disables_topology() {
        let mut eps = four_zoned();
        eps[2] = ep("10.1.2.5:80", &[], true, false);
        let c = categorize(&sp(false, false, None, eps), IpFamily::V4);
        assert_eq!(c.cluster.len(), 4);
        assert_eq!(c.all_reachable.len(), 4);
    }

    #[test]
    fn an_endpoint_hinted_for_several_zones_serves_each() {
        let raw: &[(&str, &[&str])] = &[
            ("10.1.2.3:80", &["zone-a", "zone-b", "zone-c"]),
            ("10.1.2.4:80", &["zone-b", "zone-c"]),
            ("10.1.2.5:80", &["zone-b", "zone-d"]),
            ("10.1.2.6:80", &["zone-c"]),
        ];
        let eps = raw.iter().map(|(a, z)| ep(a, z, true, false)).collect();
        let s = in_zone(sp(false, false, None, eps), "zone-c", raw);
        let c = categorize(&s, IpFamily::V4);
        assert_eq!(
            set(&c.cluster),
            names(&["10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"])
        );
    }

    #[test]
    fn terminating_fallback_ignores_topology() {
        // Nothing ready: the serving-terminating endpoints, whatever their hints.
        let mut eps = four_zoned();
        for e in &mut eps {
            e.ready = false;
            e.serving = true;
            e.terminating = true;
        }
        let c = categorize(&sp(false, false, None, eps), IpFamily::V4);
        assert_eq!(c.cluster.len(), 4);
        assert!(c.has_any);
    }

    #[test]
    fn node_hints_win_over_zone_hints_when_every_endpoint_has_one() {
        let eps = vec![
            ep_nodes("10.1.2.3:80", &["node-1"], &["zone-a"]),
            ep_nodes("10.1.2.4:80", &["node-2"], &["zone-a"]),
            ep_nodes("10.1.2.5:80", &["node-3"], &["zone-b"]),
        ];
        let c = categorize(&sp(false, false, None, eps.clone()), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.1.2.3:80"]));
        // None for this node: zone hints decide.
        let mut other = eps.clone();
        other[0] = ep_nodes("10.1.2.3:80", &["node-9"], &["zone-a"]);
        let c = categorize(&sp(false, false, None, other), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.1.2.3:80", "10.1.2.4:80"]));
        // One without a node hint: zone hints decide.
        let mut partial = eps;
        partial[2] = ep("10.1.2.5:80", &["zone-b"], true, false);
        let c = categorize(&sp(false, false, None, partial), IpFamily::V4);
        assert_eq!(set(&c.cluster), names(&["10.1.2.3:80", "10.1.2.4:80"]));
    }

    #[test]
    fn hints_of_a_slice_endpoint() {
        let raw: SliceEndpoint = serde_json::from_value(json!({
            "addresses": ["10.0.0.1"],
            "hints": {"forZones": [{"name": "zone-b"}, {"name": "zone-a"}], "forNodes": [{"name": "n2"}]},
        }))
        .unwrap();
        let h = Hints::of(&raw, "n1", "zone-a");
        assert_eq!((h.zone, h.node), (Hint::Here, Hint::Elsewhere));
        assert_eq!(Hints::of(&raw, "n2", "").zone, Hint::Elsewhere);
        let bare: SliceEndpoint =
            serde_json::from_value(json!({"addresses": ["10.0.0.1"]})).unwrap();
        assert_eq!(Hints::of(&bare, "n1", "zone-a"), Hints::default());
    }

    #[test]
    fn snapshot_marks_hints_for_the_configured_zone() {
        use k8s_openapi::api::core::v1::Service;
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        let svc: Service = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.10", "trafficDistribution": "PreferClose",
                     "ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.42.1.10"], "zone": "zone-a", "hints": {"forZones": [{"name": "zone-a"}]}},
                {"addresses": ["10.42.2.10"], "zone": "zone-b", "hints": {"forZones": [{"name": "zone-b"}]}},
            ],
        }))
        .unwrap();
        for (zone, want) in [
            ("zone-a", vec!["10.42.1.10:8080"]),
            ("zone-b", vec!["10.42.2.10:8080"]),
            ("zone-c", vec!["10.42.1.10:8080", "10.42.2.10:8080"]),
            ("", vec!["10.42.1.10:8080", "10.42.2.10:8080"]),
        ] {
            let cfg = crate::ProxyConfig {
                node_name: "n1".into(),
                zone: zone.into(),
                ..Default::default()
            };
            let snap = crate::Snapshot::build([&svc], [&slice], &cfg);
            let sp = snap.service_ports.values().next().expect("one port");
            assert_eq!(
                set(&categorize(sp, IpFamily::V4).cluster),
                names(&want),
                "zone {zone:?}"
            );
        }
    }
}
