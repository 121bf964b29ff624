//! kube-proxy's `CategorizeEndpoints` (pkg/proxy/topology.go), per IP family: which endpoints
//! serve traffic under the "Cluster" policy, which under "Local", and whether the Service has
//! any usable endpoint at all (otherwise it is rejected). Topology hints are not implemented.

use crate::{Endpoint, IpFamily, ServicePort};

/// The endpoints of one service port, in one family, by the policy that uses them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Categorized {
    /// Endpoints for the "Cluster" policy: the ready ones, or, only when none is ready, the
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
    if sp.uses_cluster_endpoints() {
        out.cluster = eps
            .iter()
            .filter(|e| e.ready)
            .map(|e| (*e).clone())
            .collect();
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
    if !use_serving_terminating {
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
