//! ServiceLB, the k3s way (klipper-lb) without its per-Service pods: a LoadBalancer Service's
//! ingress is the IPs of the nodes labelled `svccontroller.k3s.cattle.io/enablelb=true` (every
//! node when none is), and every such node forwards the Service port. Two Services cannot take
//! one port on one node (klipper-lb's hostPort), so the older keeps it and the newer waits.

use crate::alloc::{Families, Port};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// The node label that opts nodes in (k3s's name, so k3s manifests carry over).
pub const ENABLE_LB_LABEL: &str = "svccontroller.k3s.cattle.io/enablelb";

/// What ServiceLB needs to know about a node.
#[derive(Clone, Debug, PartialEq)]
pub struct LbNode {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// ExternalIPs if the node has any, else InternalIPs (as k3s picks them).
    pub addresses: Vec<IpAddr>,
    /// False when the node's Ready condition says otherwise; nodes without conditions
    /// (standalone Switchboard registers nodes by hand) count as ready.
    pub ready: bool,
}

/// One Service asking ServiceLB.
#[derive(Clone, Debug)]
pub struct LbService {
    pub key: String,
    pub families: Families,
    pub ports: Vec<Port>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LbOutcome {
    Ingress {
        ips: Vec<IpAddr>,
        nodes: Vec<String>,
    },
    Pending(String),
}

/// Nodes that take ServiceLB traffic.
pub fn eligible_nodes(nodes: &[LbNode]) -> Vec<&LbNode> {
    let labelled = nodes.iter().any(|n| n.labels.contains_key(ENABLE_LB_LABEL));
    nodes
        .iter()
        .filter(|n| n.ready)
        .filter(|n| {
            !labelled
                || n.labels
                    .get(ENABLE_LB_LABEL)
                    .map(|v| v == "true")
                    .unwrap_or(false)
        })
        .collect()
}

/// Which Service holds which port on which node: klipper-lb's hostPorts. Kept by the planner
/// between changes, so one Service is placed against the others without re-placing them all.
#[derive(Clone, Debug, Default)]
pub struct Taken {
    /// node -> port -> the Service holding it.
    by_node: BTreeMap<String, BTreeMap<Port, String>>,
    /// Service -> (nodes, ports) it holds.
    held: BTreeMap<String, (Vec<String>, Vec<Port>)>,
}

impl Taken {
    pub fn holds(&self, key: &str) -> bool {
        self.held.contains_key(key)
    }

    /// What `key` holds: (nodes, ports).
    pub fn held(&self, key: &str) -> Option<&(Vec<String>, Vec<Port>)> {
        self.held.get(key)
    }

    /// Frees what `key` holds; true when it held something.
    pub fn release(&mut self, key: &str) -> bool {
        let Some((nodes, ports)) = self.held.remove(key) else {
            return false;
        };
        for n in &nodes {
            if let Some(held) = self.by_node.get_mut(n) {
                for p in &ports {
                    if held.get(p).is_some_and(|k| k == key) {
                        held.remove(p);
                    }
                }
                if held.is_empty() {
                    self.by_node.remove(n);
                }
            }
        }
        true
    }

    /// Places one Service on the eligible nodes where its ports are free (it must hold
    /// nothing: `release` it first), and records what it then holds.
    pub fn place(&mut self, eligible: &[&LbNode], svc: &LbService) -> LbOutcome {
        let o = self.fit(eligible, svc);
        if let LbOutcome::Ingress { nodes, .. } = &o {
            for n in nodes {
                let held = self.by_node.entry(n.clone()).or_default();
                for p in &svc.ports {
                    held.insert(p.clone(), svc.key.clone());
                }
            }
            self.held
                .insert(svc.key.clone(), (nodes.clone(), svc.ports.clone()));
        }
        o
    }

    fn fit(&self, eligible: &[&LbNode], svc: &LbService) -> LbOutcome {
        if eligible.is_empty() {
            return LbOutcome::Pending("no ready node to take ServiceLB traffic".into());
        }
        let mut clashes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut free: Vec<&LbNode> = Vec::new();
        for n in eligible {
            let held = self.by_node.get(n.name.as_str());
            let mut ok = true;
            for p in &svc.ports {
                if let Some(other) = held.and_then(|h| h.get(p)).filter(|o| **o != svc.key) {
                    ok = false;
                    clashes
                        .entry(format!("{p} is already used by {other}"))
                        .or_default()
                        .insert(n.name.clone());
                }
            }
            if ok {
                free.push(n);
            }
        }
        if free.is_empty() {
            let why: Vec<String> = clashes
                .iter()
                .map(|(c, ns)| {
                    format!(
                        "{c} on node(s) {}",
                        ns.iter().cloned().collect::<Vec<_>>().join(",")
                    )
                })
                .collect();
            return LbOutcome::Pending(format!("ServiceLB port conflict: {}", why.join("; ")));
        }
        let mut ips: Vec<IpAddr> = free
            .iter()
            .flat_map(|n| n.addresses.iter())
            .filter(|ip| (ip.is_ipv4() && svc.families.v4) || (ip.is_ipv6() && svc.families.v6))
            .copied()
            .collect();
        ips.sort();
        ips.dedup();
        if ips.is_empty() {
            return LbOutcome::Pending(format!("no ServiceLB node has a {} address", svc.families));
        }
        LbOutcome::Ingress {
            ips,
            nodes: free.iter().map(|n| n.name.clone()).collect(),
        }
    }
}

/// Places Services in the order given (the caller puts Services that already hold their
/// ports first, then the older before the newer) and reports each one's ingress or why it
/// waits; also what they then hold.
pub fn plan_taken(nodes: &[LbNode], services: &[LbService]) -> (Vec<(String, LbOutcome)>, Taken) {
    let eligible = eligible_nodes(nodes);
    let mut taken = Taken::default();
    let out = services
        .iter()
        .map(|svc| (svc.key.clone(), taken.place(&eligible, svc)))
        .collect();
    (out, taken)
}

/// [`plan_taken`] without the holdings.
pub fn plan(nodes: &[LbNode], services: &[LbService]) -> Vec<(String, LbOutcome)> {
    plan_taken(nodes, services).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: &str, labels: &[(&str, &str)]) -> LbNode {
        LbNode {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            addresses: vec![ip.parse().unwrap()],
            ready: true,
        }
    }

    fn svc(key: &str, ports: &[i32]) -> LbService {
        LbService {
            key: key.into(),
            families: Families::V4,
            ports: ports
                .iter()
                .map(|p| Port {
                    protocol: "TCP".into(),
                    port: *p,
                })
                .collect(),
        }
    }

    fn ingress(o: &LbOutcome) -> Vec<String> {
        match o {
            LbOutcome::Ingress { ips, .. } => ips.iter().map(|i| i.to_string()).collect(),
            LbOutcome::Pending(r) => panic!("pending: {r}"),
        }
    }

    #[test]
    fn all_nodes_when_none_is_labelled() {
        let nodes = [node("n1", "10.0.0.1", &[]), node("n2", "10.0.0.2", &[])];
        let p = plan(&nodes, &[svc("d/a", &[80])]);
        assert_eq!(ingress(&p[0].1), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn only_labelled_nodes_when_some_are() {
        let nodes = [
            node("n1", "10.0.0.1", &[(ENABLE_LB_LABEL, "true")]),
            node("n2", "10.0.0.2", &[]),
            node("n3", "10.0.0.3", &[(ENABLE_LB_LABEL, "false")]),
        ];
        let p = plan(&nodes, &[svc("d/a", &[80])]);
        assert_eq!(ingress(&p[0].1), ["10.0.0.1"]);
    }

    #[test]
    fn port_taken_keeps_the_later_service_pending() {
        let nodes = [node("n1", "10.0.0.1", &[]), node("n2", "10.0.0.2", &[])];
        let p = plan(
            &nodes,
            &[
                svc("d/old", &[80, 443]),
                svc("d/new", &[8080, 443]),
                svc("d/other", &[8080]),
            ],
        );
        assert_eq!(ingress(&p[0].1), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            p[1].1,
            LbOutcome::Pending(
                "ServiceLB port conflict: TCP/443 is already used by d/old on node(s) n1,n2".into()
            )
        );
        // The pending Service holds nothing, so its 8080 stays free for the next one.
        assert_eq!(ingress(&p[2].1), ["10.0.0.1", "10.0.0.2"]);
    }

    #[test]
    fn unready_nodes_and_families() {
        let mut n2 = node("n2", "10.0.0.2", &[]);
        n2.ready = false;
        let nodes = [node("n1", "10.0.0.1", &[]), n2, node("n6", "fc00::6", &[])];
        let p = plan(&nodes, &[svc("d/a", &[80])]);
        assert_eq!(ingress(&p[0].1), ["10.0.0.1"]);
        let mut v6 = svc("d/b", &[81]);
        v6.families = Families::V6;
        assert_eq!(ingress(&plan(&nodes, &[v6])[0].1), ["fc00::6"]);
        assert!(matches!(
            plan(&[], &[svc("d/a", &[80])])[0].1,
            LbOutcome::Pending(_)
        ));
    }
}
