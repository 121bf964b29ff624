//! A typed view of a Service's `spec` and `status`, with Go's JSON rules: fields are written in
//! the Go struct's order, and zero values of `omitempty` fields (an empty string, a 0 port, an
//! empty list) are not written at all, so that what we store reads back as kube-apiserver's
//! would. Anything we do not model is kept in `other`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const CLUSTER_IP: &str = "ClusterIP";
pub const NODE_PORT: &str = "NodePort";
pub const LOAD_BALANCER: &str = "LoadBalancer";
pub const EXTERNAL_NAME: &str = "ExternalName";
pub const NONE: &str = "None";
pub const SINGLE_STACK: &str = "SingleStack";
pub const PREFER_DUAL_STACK: &str = "PreferDualStack";
pub const REQUIRE_DUAL_STACK: &str = "RequireDualStack";
pub const LOCAL: &str = "Local";
pub const CLUSTER: &str = "Cluster";

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// `intstr.IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub target_port: IntOrString,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub node_port: i64,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionAffinityConfig {
    #[serde(rename = "clientIP", default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<ClientIpConfig>,
}

/// `ServiceSpec`, fields in the Go struct's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    #[serde(
        rename = "clusterIP",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_ip: String,
    #[serde(rename = "clusterIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_ips: Vec<String>,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(rename = "externalIPs", default, skip_serializing_if = "Vec::is_empty")]
    pub external_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session_affinity: String,
    #[serde(
        rename = "loadBalancerIP",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub load_balancer_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub external_traffic_policy: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub health_check_node_port: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub publish_not_ready_addresses: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_family_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocate_load_balancer_node_ports: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_traffic_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_distribution: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortStatus {
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerIngress {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortStatus>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadBalancerStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<LoadBalancerIngress>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    #[serde(default)]
    pub load_balancer: LoadBalancerStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl ServiceSpec {
    pub fn is_type(&self, t: &str) -> bool {
        self.type_ == t
    }

    /// `needsClusterIP`: every type but ExternalName.
    pub fn needs_cluster_ip(&self) -> bool {
        !self.is_type(EXTERNAL_NAME)
    }

    /// `needsNodePort`: NodePort and LoadBalancer.
    pub fn needs_node_port(&self) -> bool {
        self.is_type(NODE_PORT) || self.is_type(LOAD_BALANCER)
    }

    /// `apiservice.NeedsHealthCheck` / `needsHCNodePort`: a LoadBalancer with
    /// `externalTrafficPolicy: Local`.
    pub fn needs_health_check(&self) -> bool {
        self.is_type(LOAD_BALANCER) && self.external_traffic_policy == LOCAL
    }

    /// `apiservice.ExternallyAccessible`.
    pub fn externally_accessible(&self) -> bool {
        self.is_type(LOAD_BALANCER)
            || self.is_type(NODE_PORT)
            || (self.is_type(CLUSTER_IP) && !self.external_ips.is_empty())
    }

    /// `shouldAllocateNodePorts`.
    pub fn should_allocate_node_ports(&self) -> bool {
        self.is_type(NODE_PORT)
            || (self.is_type(LOAD_BALANCER)
                && self.allocate_load_balancer_node_ports.unwrap_or(true))
    }

    /// Validation's `isHeadlessService`: exactly `clusterIPs: [None]`.
    pub fn is_headless(&self) -> bool {
        self.cluster_ips.len() == 1 && self.cluster_ips[0] == NONE
    }

    /// Allocation's notion of headless: the first ClusterIP is `None`.
    pub fn first_cluster_ip_is_none(&self) -> bool {
        self.cluster_ips.first().is_some_and(|ip| ip == NONE)
    }

    pub fn policy(&self) -> &str {
        self.ip_family_policy.as_deref().unwrap_or("")
    }

    /// The NodePorts the Service's ports use, each once (`collectServiceNodePorts`).
    pub fn node_ports(&self) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        for p in &self.ports {
            if p.node_port != 0 && !out.contains(&p.node_port) {
                out.push(p.node_port);
            }
        }
        out
    }
}

/// A Service object's spec and status, read from and written back to its JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub spec: ServiceSpec,
    pub status: ServiceStatus,
}

impl Service {
    /// Reads `spec` and `status`; the generic decoder has already checked the JSON types, so an
    /// error here means the object is not a Service at all.
    pub fn from_object(obj: &Value) -> Result<Service, serde_json::Error> {
        let spec = match obj.get("spec") {
            Some(s) if !s.is_null() => serde_json::from_value(s.clone())?,
            _ => ServiceSpec::default(),
        };
        let status = match obj.get("status") {
            Some(s) if !s.is_null() => serde_json::from_value(s.clone())?,
            _ => ServiceStatus::default(),
        };
        Ok(Service { spec, status })
    }

    /// Writes `spec` and `status` back into the object, keeping its other fields where they are.
    pub fn write_to(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert(
                "spec".into(),
                serde_json::to_value(&self.spec).unwrap_or_else(|_| Value::Object(Map::new())),
            );
            m.insert(
                "status".into(),
                serde_json::to_value(&self.status).unwrap_or_else(|_| Value::Object(Map::new())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_go_order_and_drops_zero_values() {
        let obj = json!({"spec": {
            "type": "NodePort", "clusterIP": "", "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "nodePort": 0, "targetPort": "http", "protocol": "TCP"}],
            "publishNotReadyAddresses": false, "allocateLoadBalancerNodePorts": false
        }});
        let svc = Service::from_object(&obj).unwrap();
        let mut out = json!({});
        svc.write_to(&mut out);
        assert_eq!(
            serde_json::to_string(&out["spec"]).unwrap(),
            r#"{"ports":[{"protocol":"TCP","port":80,"targetPort":"http"}],"selector":{"a":"1","b":"2"},"type":"NodePort","allocateLoadBalancerNodePorts":false}"#
        );
        assert_eq!(
            serde_json::to_string(&out["status"]).unwrap(),
            r#"{"loadBalancer":{}}"#
        );
    }

    #[test]
    fn status_ingress_order() {
        let obj = json!({"status": {"loadBalancer": {"ingress": [{"ports": [{"protocol": "TCP", "port": 80}], "ipMode": "VIP", "ip": "1.2.3.4"}]}}});
        let mut out = json!({});
        Service::from_object(&obj).unwrap().write_to(&mut out);
        assert_eq!(
            serde_json::to_string(&out["status"]).unwrap(),
            r#"{"loadBalancer":{"ingress":[{"ip":"1.2.3.4","ipMode":"VIP","ports":[{"port":80,"protocol":"TCP"}]}]}}"#
        );
    }
}
