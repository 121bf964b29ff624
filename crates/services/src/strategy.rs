//! How kube-apiserver reconciles the linked fields of a Service across an update, before and
//! after allocation: `patchAllocatedValues` and `normalizeClusterIPs` (its `beginUpdate`), and
//! `dropTypeDependentFields` (the strategy's `PrepareForUpdate`).

use crate::types::*;
use std::collections::{BTreeMap, BTreeSet};

/// Upstream `normalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step for clients that
/// only know the singular field.
pub fn normalize_cluster_ips(new: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    let Some(old) = old else {
        // Create: a client that set only the singular field.
        if !new.cluster_ip.is_empty() && new.cluster_ips.is_empty() {
            new.cluster_ips = vec![new.cluster_ip.clone()];
        }
        return;
    };
    // An old client patching some other field left clusterIPs out.
    if !old.cluster_ips.is_empty() && new.cluster_ips.is_empty() && old.cluster_ip == new.cluster_ip
    {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if old.cluster_ip != new.cluster_ip {
        if !old.cluster_ip.is_empty() && new.cluster_ip.is_empty() {
            // Clearing it: clear the plural too if it was left as it was.
            if old.cluster_ips == new.cluster_ips {
                new.cluster_ips = Vec::new();
            }
        } else if old.cluster_ips == new.cluster_ips {
            // Changed the singular only: follow it (validation will refuse the change).
            new.cluster_ips = vec![new.cluster_ip.clone()];
        }
    }
}

/// Upstream `patchAllocatedValues`: a client that resubmits what it created (a PUT without
/// `clusterIP`, `nodePort` or `healthCheckNodePort`) keeps what was allocated for it.
pub fn patch_allocated_values(new: &mut ServiceSpec, old: &ServiceSpec) {
    if old.needs_cluster_ip() && new.needs_cluster_ip() {
        if new.cluster_ip.is_empty() {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if new.cluster_ips.is_empty() && !old.cluster_ips.is_empty() {
            new.cluster_ips = old.cluster_ips.clone();
        }
    }
    if old.needs_node_port() && new.needs_node_port() {
        let used_by = |s: &ServiceSpec| -> BTreeSet<i64> {
            s.ports
                .iter()
                .map(|p| p.node_port)
                .filter(|&n| n != 0)
                .collect()
        };
        // NodePorts the new object already uses may not be patched in a second time.
        let used: BTreeSet<i64> = used_by(old).intersection(&used_by(new)).copied().collect();
        // By port name: the user may have changed everything else about the port.
        let by_name: BTreeMap<&str, i64> = old
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.node_port))
            .collect();
        for p in &mut new.ports {
            if p.node_port == 0 {
                let old_value = by_name.get(p.name.as_str()).copied().unwrap_or(0);
                if !used.contains(&old_value) {
                    p.node_port = old_value;
                }
            }
        }
    }
    if old.needs_health_check() && new.needs_health_check() && new.health_check_node_port == 0 {
        new.health_check_node_port = old.health_check_node_port;
    }
}

/// Upstream `dropTypeDependentFields`: on a type change, clears what only the old type uses
/// and the user left as it was (the allocations are released when the write commits), and
/// the load balancer status of anything that is no longer a LoadBalancer.
pub fn drop_type_dependent_fields(
    new: &mut ServiceSpec,
    old: &ServiceSpec,
    status: &mut ServiceStatus,
) {
    if old.needs_cluster_ip() && !new.needs_cluster_ip() {
        if old.cluster_ip == new.cluster_ip && old.cluster_ips == new.cluster_ips {
            new.cluster_ip.clear();
            new.cluster_ips.clear();
        }
        if old.ip_families == new.ip_families {
            new.ip_families.clear();
        }
        if old.ip_family_policy == new.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if old.needs_node_port() && !new.needs_node_port() {
        let old_ports: BTreeSet<i64> = old
            .ports
            .iter()
            .map(|p| p.node_port)
            .filter(|&n| n != 0)
            .collect();
        // Users may add, remove or change ports as long as they add no NodePort of their own.
        let same = new
            .ports
            .iter()
            .all(|p| p.node_port == 0 || old_ports.contains(&p.node_port));
        if same {
            for p in &mut new.ports {
                p.node_port = 0;
            }
        }
    }
    if old.needs_health_check()
        && !new.needs_health_check()
        && old.health_check_node_port == new.health_check_node_port
    {
        new.health_check_node_port = 0;
    }
    if old.is_type(LOAD_BALANCER) && !new.is_type(LOAD_BALANCER) {
        if let (Some(o), Some(n)) = (
            old.allocate_load_balancer_node_ports,
            new.allocate_load_balancer_node_ports,
        ) {
            if o == n {
                new.allocate_load_balancer_node_ports = None;
            }
        }
        if old.load_balancer_class == new.load_balancer_class {
            new.load_balancer_class = None;
        }
    }
    if old.externally_accessible()
        && !new.externally_accessible()
        && old.external_traffic_policy == new.external_traffic_policy
    {
        new.external_traffic_policy.clear();
    }
    if !new.is_type(LOAD_BALANCER) {
        status.load_balancer = LoadBalancerStatus::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ServiceSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn normalize_on_create_fills_the_plural() {
        let mut s = spec(json!({"clusterIP": "10.43.100.100"}));
        normalize_cluster_ips(&mut s, None);
        assert_eq!(s.cluster_ips, vec!["10.43.100.100"]);
        let mut both = spec(json!({"clusterIP": "10.43.100.101", "clusterIPs": ["10.43.100.102"]}));
        normalize_cluster_ips(&mut both, None);
        assert_eq!(both.cluster_ips, vec!["10.43.100.102"]);
    }

    #[test]
    fn normalize_on_update() {
        let old = spec(json!({"clusterIP": "10.43.100.100", "clusterIPs": ["10.43.100.100"]}));
        // Singular changed, plural as before: the plural follows.
        let mut changed =
            spec(json!({"clusterIP": "10.43.100.200", "clusterIPs": ["10.43.100.100"]}));
        normalize_cluster_ips(&mut changed, Some(&old));
        assert_eq!(changed.cluster_ips, vec!["10.43.100.200"]);
        // Plural left out by an old client.
        let mut old_client = spec(json!({"clusterIP": "10.43.100.100"}));
        normalize_cluster_ips(&mut old_client, Some(&old));
        assert_eq!(old_client.cluster_ips, vec!["10.43.100.100"]);
        // Cleared singular, plural as before: both cleared.
        let mut cleared = spec(json!({"clusterIPs": ["10.43.100.100"]}));
        normalize_cluster_ips(&mut cleared, Some(&old));
        assert!(cleared.cluster_ips.is_empty());
    }

    #[test]
    fn put_without_allocated_values_keeps_them() {
        let old = spec(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30827,
            "clusterIP": "10.43.246.41", "clusterIPs": ["10.43.246.41"],
            "ports": [{"name": "a", "port": 80, "nodePort": 31224}, {"name": "b", "port": 81, "nodePort": 31225}]}),
        );
        let mut new = spec(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 31224}]}),
        );
        patch_allocated_values(&mut new, &old);
        assert_eq!(new.cluster_ip, "10.43.246.41");
        assert_eq!(new.cluster_ips, vec!["10.43.246.41"]);
        // 31224 is already used by port b, so port a is not patched with it.
        assert_eq!(new.ports[0].node_port, 0);
        assert_eq!(new.health_check_node_port, 30827);
    }

    #[test]
    fn type_change_to_cluster_ip_drops_node_ports_and_lb_fields() {
        let old = spec(
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": true, "externalTrafficPolicy": "Cluster",
            "loadBalancerIP": "192.168.150.50", "ports": [{"port": 80, "nodePort": 31337}]}),
        );
        let mut new = old.clone();
        new.type_ = CLUSTER_IP.to_string();
        let mut status: ServiceStatus =
            serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}))
                .unwrap();
        drop_type_dependent_fields(&mut new, &old, &mut status);
        assert_eq!(new.ports[0].node_port, 0);
        assert_eq!(new.allocate_load_balancer_node_ports, None);
        assert_eq!(new.external_traffic_policy, "");
        assert_eq!(new.load_balancer_ip, "192.168.150.50");
        assert!(status.load_balancer.ingress.is_empty());
    }

    #[test]
    fn type_change_to_external_name_drops_cluster_ips() {
        let old = spec(
            json!({"type": "ClusterIP", "clusterIP": "10.43.181.103", "clusterIPs": ["10.43.181.103"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"}),
        );
        let mut new = old.clone();
        new.type_ = EXTERNAL_NAME.to_string();
        drop_type_dependent_fields(&mut new, &old, &mut ServiceStatus::default());
        assert!(
            new.cluster_ip.is_empty() && new.cluster_ips.is_empty() && new.ip_families.is_empty()
        );
        assert_eq!(new.ip_family_policy, None);
    }

    #[test]
    fn a_new_node_port_on_type_change_is_kept_for_validation() {
        let old = spec(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}));
        let mut new =
            spec(json!({"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30999}]}));
        drop_type_dependent_fields(&mut new, &old, &mut ServiceStatus::default());
        assert_eq!(new.ports[0].node_port, 30999);
    }
}
