//! Topology hints on EndpointSlice endpoints, decided as kube-controller-manager's reconciler
//! does: a Service annotated `service.kubernetes.io/topology-mode: Auto` (or the deprecated
//! `topology-aware-hints: auto`) is hinted by the topology cache ([`crate::topology`], zones
//! in proportion to their CPU); otherwise `spec.trafficDistribution` PreferClose /
//! PreferSameZone hints every ready endpoint for its own zone (`hints.forZones`) and
//! PreferSameNode adds its own node (`hints.forNodes`), as upstream's `trafficdist`; any other
//! Service carries no hints. The proxies (our agent, kube-proxy) then prefer endpoints hinted
//! for their zone or node.

use crate::topology::{self, HintsEvent, SliceInfo, TopologyCache};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointHints, EndpointSlice, ForNode, ForZone};

/// The annotation of topology-aware routing (`Auto` turns it on).
pub const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
/// Its deprecated spelling, still read by upstream.
pub const ANNOTATION_TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";

/// How a Service's endpoints are hinted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heuristic {
    /// Cluster-wide routing: no hints, stale ones are removed.
    None,
    /// PreferClose / PreferSameZone (zone hints), PreferSameNode (zone and node hints).
    PreferClose { node_hints: bool },
}

/// Upstream's `hintsEnabled`: the deprecated `topology-aware-hints` (which wins when both
/// are set), else `topology-mode`, is `Auto` or `auto`.
pub fn topology_mode_auto(svc: &Service) -> bool {
    let Some(a) = svc.metadata.annotations.as_ref() else {
        return false;
    };
    a.get(ANNOTATION_TOPOLOGY_AWARE_HINTS)
        .or_else(|| a.get(ANNOTATION_TOPOLOGY_MODE))
        .is_some_and(|v| v == "Auto" || v == "auto")
}

/// The hints step of upstream's `reconcileByAddressType`, over every slice of one address
/// type: `topology-mode: Auto` goes to the topology cache (when there is one); otherwise hints
/// the cache gave before are forgotten (with a `TopologyAwareHintsDisabled` Event), and
/// `trafficDistribution` decides, or every hint is removed. Returns the Events to record.
pub fn reconcile_hints(
    svc: &Service,
    si: &mut SliceInfo,
    cache: Option<&TopologyCache>,
) -> Vec<HintsEvent> {
    let heuristic = Heuristic::of(svc);
    let mut events = Vec::new();
    match cache {
        Some(cache) if topology_mode_auto(svc) => events = cache.add_hints(si),
        _ => {
            if let Some(cache) = cache {
                if cache.has_populated_hints(&si.service_key) {
                    tracing::info!(service = %si.service_key, address_type = %si.address_type, "topology aware hints annotation has changed, removing hints");
                    events.push(HintsEvent {
                        type_: "Warning",
                        reason: topology::REASON_DISABLED,
                        message: topology::with_address_type(
                            topology::TOPOLOGY_AWARE_HINTS_DISABLED,
                            &si.address_type,
                        ),
                    });
                }
                cache.remove_hints(&si.service_key, &si.address_type);
            }
            if heuristic == Heuristic::None {
                si.remove_hints();
            }
        }
    }
    if heuristic != Heuristic::None {
        // Upstream's `trafficdist.ReconcileHints`: everything written gets its hints; an
        // unchanged slice whose hints are missing, wrong or stale is written too.
        for s in si.to_create.iter_mut().chain(si.to_update.iter_mut()) {
            heuristic.update(s);
        }
        let mut keep = Vec::with_capacity(si.unchanged.len());
        for mut s in std::mem::take(&mut si.unchanged) {
            if heuristic.needs_update(&s) {
                heuristic.update(&mut s);
                si.to_update.push(s);
            } else {
                keep.push(s);
            }
        }
        si.unchanged = keep;
    }
    events
}

impl Heuristic {
    /// The `trafficDistribution` heuristic for `svc`. Upstream ignores the field when
    /// `topology-mode: Auto` is set (the topology cache decides instead): `None` then.
    pub fn of(svc: &Service) -> Heuristic {
        if topology_mode_auto(svc) {
            return Heuristic::None;
        }
        match svc
            .spec
            .as_ref()
            .and_then(|s| s.traffic_distribution.as_deref())
        {
            Some("PreferClose" | "PreferSameZone") => Heuristic::PreferClose { node_hints: false },
            Some("PreferSameNode") => Heuristic::PreferClose { node_hints: true },
            _ => Heuristic::None,
        }
    }

    /// Whether a slice the reconciler would leave alone has missing, wrong or stale hints.
    pub fn needs_update(&self, slice: &EndpointSlice) -> bool {
        match self {
            Heuristic::None => slice.endpoints.iter().any(|e| e.hints.is_some()),
            Heuristic::PreferClose { .. } => slice
                .endpoints
                .iter()
                // Upstream leaves the hints of endpoints that are not ready as they are.
                .filter(|e| ready(e))
                .any(|e| e.hints != self.hints_for(e)),
        }
    }

    /// Sets every endpoint's hints (ready endpoints only, for PreferClose).
    pub fn update(&self, slice: &mut EndpointSlice) {
        for e in slice.endpoints.iter_mut() {
            match self {
                Heuristic::None => e.hints = None,
                Heuristic::PreferClose { .. } if ready(e) => e.hints = self.hints_for(e),
                Heuristic::PreferClose { .. } => {}
            }
        }
    }

    /// The hints a ready endpoint should carry. Upstream compares "exactly one zone, equal to
    /// the endpoint's" (and the same for nodes); comparing with the full wanted value is the
    /// same test, as hints hold nothing else.
    fn hints_for(&self, e: &Endpoint) -> Option<EndpointHints> {
        let Heuristic::PreferClose { node_hints } = *self else {
            return None;
        };
        let for_zones = e.zone.as_ref().map(|z| vec![ForZone { name: z.clone() }]);
        let for_nodes = e
            .node_name
            .as_ref()
            .filter(|_| node_hints)
            .map(|n| vec![ForNode { name: n.clone() }]);
        (for_zones.is_some() || for_nodes.is_some()).then_some(EndpointHints {
            for_zones,
            for_nodes,
        })
    }
}

fn ready(e: &Endpoint) -> bool {
    e.conditions.as_ref().and_then(|c| c.ready) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::EndpointConditions;

    fn ep(ip: &str, zone: Option<&str>, node: Option<&str>, ready: bool) -> Endpoint {
        Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                ..Default::default()
            }),
            zone: zone.map(String::from),
            node_name: node.map(String::from),
            ..Default::default()
        }
    }

    fn svc(td: Option<&str>, annotations: &[(&str, &str)]) -> Service {
        let mut s = Service {
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                traffic_distribution: td.map(String::from),
                ..Default::default()
            }),
            ..Default::default()
        };
        if !annotations.is_empty() {
            s.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        s
    }

    fn zones(e: &Endpoint) -> Vec<String> {
        e.hints
            .iter()
            .flat_map(|h| h.for_zones.iter().flatten())
            .map(|z| z.name.clone())
            .collect()
    }

    fn nodes(e: &Endpoint) -> Vec<String> {
        e.hints
            .iter()
            .flat_map(|h| h.for_nodes.iter().flatten())
            .map(|z| z.name.clone())
            .collect()
    }

    #[test]
    fn heuristic_follows_traffic_distribution_and_topology_mode() {
        let close = Heuristic::PreferClose { node_hints: false };
        assert_eq!(Heuristic::of(&svc(None, &[])), Heuristic::None);
        assert_eq!(Heuristic::of(&svc(Some("PreferClose"), &[])), close);
        assert_eq!(Heuristic::of(&svc(Some("PreferSameZone"), &[])), close);
        assert_eq!(
            Heuristic::of(&svc(Some("PreferSameNode"), &[])),
            Heuristic::PreferClose { node_hints: true }
        );
        assert_eq!(Heuristic::of(&svc(Some("Bogus"), &[])), Heuristic::None);
        // topology-mode Auto wins over trafficDistribution (the topology cache decides).
        for ann in [ANNOTATION_TOPOLOGY_MODE, ANNOTATION_TOPOLOGY_AWARE_HINTS] {
            assert_eq!(
                Heuristic::of(&svc(Some("PreferClose"), &[(ann, "Auto")])),
                Heuristic::None
            );
        }
        assert_eq!(
            Heuristic::of(&svc(
                Some("PreferClose"),
                &[(ANNOTATION_TOPOLOGY_MODE, "Disabled")]
            )),
            close
        );
    }

    #[test]
    fn prefer_close_hints_ready_endpoints_with_their_zone() {
        let mut s = EndpointSlice {
            endpoints: vec![
                ep("10.0.0.1", Some("a"), Some("n1"), true),
                ep("10.0.0.2", Some("b"), Some("n2"), true),
                ep("10.0.0.3", None, Some("n3"), true),
                ep("10.0.0.4", Some("a"), Some("n1"), false),
            ],
            ..Default::default()
        };
        let h = Heuristic::PreferClose { node_hints: false };
        assert!(h.needs_update(&s));
        h.update(&mut s);
        assert!(!h.needs_update(&s));
        let z: Vec<Vec<String>> = s.endpoints.iter().map(zones).collect();
        assert_eq!(z, [vec!["a"], vec!["b"], vec![], vec![]]);
        assert!(s.endpoints[2].hints.is_none(), "no zone: no hints at all");
        assert!(s.endpoints.iter().all(|e| nodes(e).is_empty()));
        // A not-ready endpoint's hints are left as they are, and do not ask for an update.
        s.endpoints[3].hints = Some(EndpointHints {
            for_zones: Some(vec![ForZone { name: "z".into() }]),
            for_nodes: None,
        });
        assert!(!h.needs_update(&s));
        h.update(&mut s);
        assert_eq!(zones(&s.endpoints[3]), ["z"]);
        // A wrong zone hint (the node moved zone) is an update.
        s.endpoints[0].zone = Some("c".into());
        assert!(h.needs_update(&s));
        h.update(&mut s);
        assert_eq!(zones(&s.endpoints[0]), ["c"]);
    }

    #[test]
    fn prefer_same_node_adds_node_hints_and_default_removes_all() {
        let mut s = EndpointSlice {
            endpoints: vec![
                ep("10.0.0.1", Some("a"), Some("n1"), true),
                ep("10.0.0.2", None, Some("n2"), true),
            ],
            ..Default::default()
        };
        let node = Heuristic::PreferClose { node_hints: true };
        node.update(&mut s);
        assert_eq!(zones(&s.endpoints[0]), ["a"]);
        assert_eq!(nodes(&s.endpoints[0]), ["n1"]);
        assert!(zones(&s.endpoints[1]).is_empty());
        assert_eq!(nodes(&s.endpoints[1]), ["n2"]);
        // Going back to PreferSameZone drops the node hints.
        let zone = Heuristic::PreferClose { node_hints: false };
        assert!(zone.needs_update(&s));
        zone.update(&mut s);
        assert!(s.endpoints.iter().all(|e| nodes(e).is_empty()));
        // No trafficDistribution: every hint goes, also on not-ready endpoints.
        s.endpoints[1].conditions.as_mut().unwrap().ready = Some(false);
        s.endpoints[1].hints = Some(EndpointHints::default());
        assert!(Heuristic::None.needs_update(&s));
        Heuristic::None.update(&mut s);
        assert!(s.endpoints.iter().all(|e| e.hints.is_none()));
        assert!(!Heuristic::None.needs_update(&s));
    }
}
