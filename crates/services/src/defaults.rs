//! Defaulting: what kube-apiserver fills in when it decodes a v1 Service
//! (`SetDefaults_Service`), and what it fills in when it reads an old stored one
//! (`defaultOnRead`). The IP family fields are not defaulted here: they depend on the cluster's
//! ranges and are settled during allocation (see [`crate::families`]).

use crate::config::Family;
use crate::types::*;

/// The default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i64 = 10800;

/// Upstream `SetDefaults_Service`, applied to every Service body kube-apiserver decodes: on
/// create, on update (PUT body or patched object) and on status writes.
pub fn set_defaults(svc: &mut Service) {
    let spec = &mut svc.spec;
    if spec.session_affinity.is_empty() {
        spec.session_affinity = NONE.to_string();
    }
    if spec.session_affinity == NONE {
        spec.session_affinity_config = None;
    }
    if spec.session_affinity == "ClientIP" {
        let has_timeout = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .is_some_and(|c| c.timeout_seconds.is_some());
        if !has_timeout {
            spec.session_affinity_config = Some(SessionAffinityConfig {
                client_ip: Some(ClientIpConfig {
                    timeout_seconds: Some(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS),
                }),
            });
        }
    }
    if spec.type_.is_empty() {
        spec.type_ = CLUSTER_IP.to_string();
    }
    for p in &mut spec.ports {
        if p.protocol.is_empty() {
            p.protocol = "TCP".to_string();
        }
        if p.target_port == IntOrString::Int(0) || p.target_port == IntOrString::Str(String::new())
        {
            p.target_port = IntOrString::Int(p.port);
        }
    }
    if spec.externally_accessible() && spec.external_traffic_policy.is_empty() {
        spec.external_traffic_policy = CLUSTER.to_string();
    }
    if spec.internal_traffic_policy.is_none()
        && (spec.is_type(NODE_PORT) || spec.is_type(LOAD_BALANCER) || spec.is_type(CLUSTER_IP))
    {
        spec.internal_traffic_policy = Some(CLUSTER.to_string());
    }
    if spec.is_type(LOAD_BALANCER) && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    default_ingress_ip_mode(svc);
}

/// The status part of `SetDefaults_Service`: on a LoadBalancer, an ingress with an `ip` and no
/// `ipMode` gets `VIP`.
pub fn default_ingress_ip_mode(svc: &mut Service) {
    if svc.spec.is_type(LOAD_BALANCER) {
        for ing in &mut svc.status.load_balancer.ingress {
            if !ing.ip.is_empty() && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".to_string());
            }
        }
    }
}

/// Upstream `defaultOnReadService`: fills in what Services stored by older servers lack
/// (`clusterIPs`, the IP family fields) and hides `internalTrafficPolicy` on ExternalName
/// Services, where it was once defaulted by mistake. Applied to the stored object an update
/// starts from, and to every Service the allocators are rebuilt from.
pub fn default_on_read(spec: &mut ServiceSpec, primary: Family) {
    if !spec.cluster_ip.is_empty() && spec.cluster_ips.is_empty() {
        spec.cluster_ips = vec![spec.cluster_ip.clone()];
    }
    if spec.needs_cluster_ip() && spec.ip_families.is_empty() {
        if spec.cluster_ip == NONE {
            if spec.selector.is_empty() {
                spec.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_string());
                spec.ip_families = vec![
                    primary.as_str().to_string(),
                    primary.other().as_str().to_string(),
                ];
            } else {
                spec.ip_family_policy = Some(SINGLE_STACK.to_string());
                spec.ip_families = vec![primary.as_str().to_string()];
            }
        } else {
            spec.ip_families = spec
                .cluster_ips
                .iter()
                .map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" }.to_string())
                .collect();
            match spec.ip_families.len() {
                1 => spec.ip_family_policy = Some(SINGLE_STACK.to_string()),
                2 => spec.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_string()),
                _ => {}
            }
        }
    }
    if spec.is_type(EXTERNAL_NAME) {
        spec.internal_traffic_policy = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaulted(spec: serde_json::Value) -> serde_json::Value {
        let mut svc = Service::from_object(&json!({ "spec": spec })).unwrap();
        set_defaults(&mut svc);
        serde_json::to_value(&svc.spec).unwrap()
    }

    #[test]
    fn cluster_ip_service() {
        assert_eq!(
            defaulted(
                json!({"selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "port": 80}]})
            ),
            json!({"ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 80}],
                   "selector": {"app": "nginx"}, "type": "ClusterIP", "sessionAffinity": "None",
                   "internalTrafficPolicy": "Cluster"})
        );
    }

    #[test]
    fn target_port_zero_and_empty_become_the_port() {
        let spec = defaulted(
            json!({"ports": [{"port": 80, "targetPort": 0}, {"port": 81, "targetPort": ""}, {"port": 82, "targetPort": "http"}]}),
        );
        assert_eq!(spec["ports"][0]["targetPort"], 80);
        assert_eq!(spec["ports"][1]["targetPort"], 81);
        assert_eq!(spec["ports"][2]["targetPort"], "http");
    }

    #[test]
    fn external_types() {
        let np = defaulted(json!({"type": "NodePort", "ports": [{"port": 80}]}));
        assert_eq!(np["externalTrafficPolicy"], "Cluster");
        assert!(np.get("allocateLoadBalancerNodePorts").is_none());
        let lb = defaulted(json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
        assert_eq!(lb["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["allocateLoadBalancerNodePorts"], true);
        let eips = defaulted(json!({"externalIPs": ["192.168.150.41"], "ports": [{"port": 82}]}));
        assert_eq!(eips["externalTrafficPolicy"], "Cluster");
    }

    #[test]
    fn external_name_gets_nothing_kubernetes_does_not_set() {
        assert_eq!(
            defaulted(
                json!({"type": "ExternalName", "externalName": "nginx-service.ns2.svc.cluster.local"})
            ),
            json!({"type": "ExternalName", "sessionAffinity": "None", "externalName": "nginx-service.ns2.svc.cluster.local"})
        );
    }

    #[test]
    fn session_affinity() {
        let c = defaulted(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}));
        assert_eq!(
            c["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        let kept = defaulted(
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        );
        assert_eq!(
            kept["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            60
        );
        let dropped = defaulted(
            json!({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}),
        );
        assert!(dropped.get("sessionAffinityConfig").is_none());
    }

    #[test]
    fn lb_ingress_ip_mode() {
        let mut svc = Service::from_object(&json!({"spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.150.100"}, {"hostname": "lb.example.com"}, {"ip": "192.168.150.101", "ipMode": "Proxy"}]}}})).unwrap();
        set_defaults(&mut svc);
        let ing = &svc.status.load_balancer.ingress;
        assert_eq!(ing[0].ip_mode.as_deref(), Some("VIP"));
        assert_eq!(ing[1].ip_mode, None);
        assert_eq!(ing[2].ip_mode.as_deref(), Some("Proxy"));
    }

    #[test]
    fn on_read() {
        let mut old: ServiceSpec =
            serde_json::from_value(json!({"type": "ClusterIP", "clusterIP": "10.43.0.5"})).unwrap();
        default_on_read(&mut old, Family::IPv4);
        assert_eq!(old.cluster_ips, vec!["10.43.0.5"]);
        assert_eq!(old.ip_families, vec!["IPv4"]);
        assert_eq!(old.policy(), SINGLE_STACK);
        let mut headless: ServiceSpec =
            serde_json::from_value(json!({"type": "ClusterIP", "clusterIP": "None"})).unwrap();
        default_on_read(&mut headless, Family::IPv4);
        assert_eq!(headless.ip_families, vec!["IPv4", "IPv6"]);
        assert_eq!(headless.policy(), REQUIRE_DUAL_STACK);
    }
}
