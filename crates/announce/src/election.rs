//! Who answers for which address, decided by every node alone from the same inputs (MetalLB's
//! `sortL2Candidates`): for each LoadBalancer IP, the candidates are the healthy nodes an
//! L2Advertisement of the IP's pool selects (for `externalTrafficPolicy: Local`, only those
//! with a ready local endpoint); they are ordered by SHA-256 of `node#ip`, and the first one
//! announces. Nodes agree without talking because they hash the same strings.

use k8s_openapi::api::core::v1::Service;
use lb::crd::{selector_matches, L2Advertisement};
use lb::pool::Pool;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Nodes carrying this label never announce (the upstream Kubernetes label MetalLB honours).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The order MetalLB gives candidates for one address: by SHA-256 of `node#ip`.
pub fn sort_candidates(ip: IpAddr, nodes: &mut [String]) {
    nodes.sort_by_cached_key(|n| Sha256::digest(format!("{n}#{ip}").as_bytes()));
}

/// Everything the election looks at.
#[derive(Debug, Default)]
pub struct World<'a> {
    pub services: Vec<&'a Service>,
    pub pools: Vec<Pool>,
    /// Pool name -> its labels (for ipAddressPoolSelectors).
    pub pool_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub ads: Vec<&'a L2Advertisement>,
    /// Node name -> labels.
    pub nodes: BTreeMap<String, BTreeMap<String, String>>,
    /// Nodes whose lease is fresh.
    pub healthy: BTreeSet<String>,
    /// Service key -> nodes with a ready endpoint of it.
    pub local_endpoints: BTreeMap<String, BTreeSet<String>>,
    /// The loadBalancerClass served.
    pub class: String,
}

/// One address and who should announce it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub ip: IpAddr,
    /// `namespace/name` of the Services on this address.
    pub services: Vec<String>,
    /// The elected node, None when no node may announce.
    pub owner: Option<String>,
    /// Candidates in election order (the owner first).
    pub candidates: Vec<String>,
    /// Interfaces per candidate node; an empty list means every interface.
    pub interfaces: BTreeMap<String, BTreeSet<String>>,
}

fn ad_selects_pool(
    ad: &L2Advertisement,
    pool: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let s = &ad.spec;
    if s.ip_address_pools.is_empty() && s.ip_address_pool_selectors.is_empty() {
        return true;
    }
    let empty = BTreeMap::new();
    s.ip_address_pools.iter().any(|p| p == pool)
        || s.ip_address_pool_selectors
            .iter()
            .any(|sel| selector_matches(sel, labels.unwrap_or(&empty)))
}

fn ad_selects_node(ad: &L2Advertisement, labels: &BTreeMap<String, String>) -> bool {
    ad.spec.node_selectors.is_empty()
        || ad
            .spec
            .node_selectors
            .iter()
            .any(|s| selector_matches(s, labels))
}

/// The election for every LoadBalancer address that a pool holds and an L2Advertisement covers.
pub fn elect(w: &World) -> Vec<Assignment> {
    // ip -> Services on it, only ours, only addresses from pools.
    let mut by_ip: BTreeMap<IpAddr, Vec<&Service>> = BTreeMap::new();
    for svc in &w.services {
        if !lb::plan::is_ours(svc, &w.class) {
            continue;
        }
        for ip in lb::plan::status_ips(svc) {
            by_ip.entry(ip).or_default().push(svc);
        }
    }
    let mut out = Vec::new();
    for (ip, svcs) in by_ip {
        let Some(pool) = w.pools.iter().find(|p| p.contains(ip)) else {
            continue;
        };
        let ads: Vec<&&L2Advertisement> = w
            .ads
            .iter()
            .filter(|a| ad_selects_pool(a, &pool.name, w.pool_labels.get(&pool.name)))
            .collect();
        if ads.is_empty() {
            continue;
        }
        let mut keys: Vec<String> = svcs.iter().map(|s| lb::plan::key_of(s)).collect();
        keys.sort();
        let mut interfaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut all_interfaces: BTreeSet<String> = BTreeSet::new();
        for (node, labels) in &w.nodes {
            if !w.healthy.contains(node) || labels.contains_key(EXCLUDE_LABEL) {
                continue;
            }
            // externalTrafficPolicy Local: traffic that arrives at a node without a local
            // endpoint is dropped, so such a node must not attract it. Services sharing an
            // address have the same selector (the allocator's backend key).
            let local_ok = svcs.iter().all(|s| {
                let local = s
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.external_traffic_policy.as_deref())
                    == Some("Local");
                !local
                    || w.local_endpoints
                        .get(&lb::plan::key_of(s))
                        .is_some_and(|n| n.contains(node))
            });
            if !local_ok {
                continue;
            }
            for ad in ads.iter().filter(|a| ad_selects_node(a, labels)) {
                let set = interfaces.entry(node.clone()).or_default();
                if ad.spec.interfaces.is_empty() {
                    all_interfaces.insert(node.clone());
                } else {
                    set.extend(ad.spec.interfaces.iter().cloned());
                }
            }
        }
        for n in &all_interfaces {
            interfaces.insert(n.clone(), BTreeSet::new());
        }
        let mut candidates: Vec<String> = interfaces.keys().cloned().collect();
        sort_candidates(ip, &mut candidates);
        out.push(Assignment {
            ip,
            services: keys,
            owner: candidates.first().cloned(),
            candidates,
            interfaces,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb::crd::{IpAddressPool, IpAddressPoolSpec, L2AdvertisementSpec};
    use serde_json::json;

    fn pool() -> Pool {
        Pool::parse(&IpAddressPool {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("lab".into()),
                ..Default::default()
            },
            spec: IpAddressPoolSpec {
                addresses: vec!["192.168.1.240/28".into(), "fc00::/120".into()],
                ..Default::default()
            },
        })
        .unwrap()
    }

    fn svc(name: &str, ip: &str, etp: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": etp, "selector": {"app": name}, "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
        }))
        .unwrap()
    }

    fn ad(spec: L2AdvertisementSpec) -> L2Advertisement {
        L2Advertisement {
            metadata: Default::default(),
            spec,
        }
    }

    fn nodes(names: &[&str]) -> BTreeMap<String, BTreeMap<String, String>> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    [("kubernetes.io/hostname".to_string(), n.to_string())].into(),
                )
            })
            .collect()
    }

    fn world<'a>(svcs: &'a [Service], ads: &'a [L2Advertisement], names: &[&str]) -> World<'a> {
        World {
            services: svcs.iter().collect(),
            pools: vec![pool()],
            ads: ads.iter().collect(),
            nodes: nodes(names),
            healthy: names.iter().map(|s| s.to_string()).collect(),
            class: lb::DEFAULT_CLASS.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_owner_is_the_first_by_hash_and_everybody_agrees() {
        let svcs = [svc("web", "192.168.1.241", "Cluster")];
        let ads = [ad(Default::default())];
        let a = elect(&world(&svcs, &ads, &["n1", "n2", "n3"]));
        assert_eq!(a.len(), 1);
        let mut expect = vec!["n1".to_string(), "n2".into(), "n3".into()];
        sort_candidates("192.168.1.241".parse().unwrap(), &mut expect);
        assert_eq!(a[0].candidates, expect);
        assert_eq!(a[0].owner.as_ref(), Some(&expect[0]));
        // Input order does not matter.
        let mut shuffled = vec!["n3".to_string(), "n1".into(), "n2".into()];
        sort_candidates("192.168.1.241".parse().unwrap(), &mut shuffled);
        assert_eq!(shuffled, expect);
    }

    #[test]
    fn an_unhealthy_owner_hands_over_to_the_next_candidate() {
        let svcs = [svc("web", "192.168.1.241", "Cluster")];
        let ads = [ad(Default::default())];
        let mut w = world(&svcs, &ads, &["n1", "n2", "n3"]);
        let first = elect(&w)[0].clone();
        w.healthy.remove(first.owner.as_ref().unwrap());
        let second = elect(&w)[0].clone();
        assert_eq!(second.owner.as_ref(), Some(&first.candidates[1]));
    }

    #[test]
    fn node_selectors_interfaces_and_exclusions() {
        let svcs = [svc("web", "192.168.1.241", "Cluster")];
        let sel = k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("kubernetes.io/hostname".to_string(), "n2".to_string())].into()),
            ..Default::default()
        };
        let ads = [ad(L2AdvertisementSpec {
            node_selectors: vec![sel],
            interfaces: vec!["eth1".into()],
            ..Default::default()
        })];
        let a = elect(&world(&svcs, &ads, &["n1", "n2", "n3"]));
        assert_eq!(a[0].owner.as_deref(), Some("n2"));
        assert_eq!(a[0].interfaces["n2"], BTreeSet::from(["eth1".to_string()]));
        let mut w = world(&svcs, &ads, &["n1", "n2", "n3"]);
        w.nodes
            .get_mut("n2")
            .unwrap()
            .insert(EXCLUDE_LABEL.into(), "".into());
        assert_eq!(elect(&w)[0].owner, None);
    }

    #[test]
    fn local_traffic_policy_needs_a_local_endpoint() {
        let svcs = [svc("web", "192.168.1.241", "Local")];
        let ads = [ad(Default::default())];
        let mut w = world(&svcs, &ads, &["n1", "n2", "n3"]);
        assert_eq!(elect(&w)[0].owner, None);
        w.local_endpoints
            .insert("default/web".into(), ["n3".to_string()].into());
        assert_eq!(elect(&w)[0].owner.as_deref(), Some("n3"));
    }

    #[test]
    fn pools_without_an_advertisement_and_foreign_addresses_are_not_announced() {
        let svcs = [
            svc("web", "10.9.9.9", "Cluster"),
            svc("v6", "fc00::5", "Cluster"),
        ];
        let ads = [ad(L2AdvertisementSpec {
            ip_address_pools: vec!["other".into()],
            ..Default::default()
        })];
        assert!(elect(&world(&svcs, &ads, &["n1"])).is_empty());
        let ads = [ad(L2AdvertisementSpec {
            ip_address_pools: vec!["lab".into()],
            ..Default::default()
        })];
        let a = elect(&world(&svcs, &ads, &["n1"]));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].ip.to_string(), "fc00::5");
    }

    proptest::proptest! {
        /// Removing a node that is not the owner never moves an address (only the owner's
        /// failure does): the property that keeps failovers rare.
        #[test]
        fn losing_a_non_owner_keeps_the_owner(n in 2usize..8, host in 0u8..16, drop in 0usize..8) {
            let ip: IpAddr = format!("192.168.1.{}", 240 + host).parse().unwrap();
            let mut all: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
            sort_candidates(ip, &mut all);
            let owner = all[0].clone();
            let victim = all[drop % n].clone();
            let mut rest: Vec<String> = all.iter().filter(|x| **x != victim).cloned().collect();
            sort_candidates(ip, &mut rest);
            if victim != owner {
                proptest::prop_assert_eq!(&rest[0], &owner);
            } else {
                proptest::prop_assert_eq!(&rest[0], &all[1]);
            }
        }
    }
}
