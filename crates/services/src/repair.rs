//! Rebuilding the allocators from the stored Services at start, and reporting what does not
//! fit as kube-apiserver's repair controllers do (`ipallocator/controller/repair.go`,
//! `portallocator/controller/repair.go`): a Warning Event on the Service per problem, with
//! their reasons and messages. Nothing is rewritten: a Service with a duplicate or an
//! out-of-range value keeps it ("please recreate service"), the value stays reserved while any
//! Service holds it, and an out-of-range value is simply not tracked.

use crate::alloc::holdings;
use crate::config::Family;
use crate::defaults::default_on_read;
use crate::netval::parse_ip_sloppy;
use crate::registry::{Adopted, Registry, Resource};
use crate::types::*;
use model::meta;
use serde_json::{json, Value};

pub const IP_REPAIR_COMPONENT: &str = "ipallocator-repair-controller";
pub const PORT_REPAIR_COMPONENT: &str = "portallocator-repair-controller";

/// A Service's identity in the registry: its uid, or `namespace/name` when it has none.
pub fn owner_id(obj: &Value) -> String {
    match meta::uid(obj) {
        Some(uid) if !uid.is_empty() => uid.to_string(),
        _ => format!("{}/{}", meta::namespace(obj).unwrap_or(""), meta::name(obj)),
    }
}

struct EventFactory {
    now: chrono::DateTime<chrono::Utc>,
    seq: i64,
}

impl EventFactory {
    /// A core/v1 Event about `svc` in the shape client-go's legacy recorder gives them (the one
    /// the repair controllers used before the events.k8s.io recorder), named as it names them.
    fn event(&mut self, svc: &Value, component: &str, reason: &str, message: String) -> Value {
        self.seq += 1;
        let nanos = self.now.timestamp_nanos_opt().unwrap_or(0) + self.seq;
        let ts = meta::format_time(self.now);
        let namespace = meta::namespace(svc).unwrap_or("default");
        let mut involved = serde_json::Map::new();
        involved.insert("kind".into(), json!("Service"));
        involved.insert("namespace".into(), json!(namespace));
        involved.insert("name".into(), json!(meta::name(svc)));
        if let Some(uid) = meta::uid(svc) {
            involved.insert("uid".into(), json!(uid));
        }
        involved.insert("apiVersion".into(), json!("v1"));
        if let Some(rv) = meta::resource_version(svc) {
            involved.insert("resourceVersion".into(), json!(rv));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{}.{:x}", meta::name(svc), nanos), "namespace": namespace},
            "involvedObject": Value::Object(involved),
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": "Warning",
            "eventTime": null,
            "reportingComponent": "",
            "reportingInstance": ""
        })
    }
}

/// Registers every allocation of `services` in `reg` (sorted by namespace and name, as the
/// repair controllers list them, so the first holder of a duplicate is deterministic) and
/// returns the Events describing what was wrong.
pub(crate) fn rebuild(
    reg: &mut Registry,
    services: Vec<Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let mut services = services;
    services.sort_by(|a, b| {
        (meta::namespace(a), meta::name(a)).cmp(&(meta::namespace(b), meta::name(b)))
    });
    let primary = reg.families().first().copied().unwrap_or(Family::IPv4);
    let port_range = reg.ports.range();
    let mut events = EventFactory { now, seq: 0 };
    let mut out = Vec::new();
    for svc in &services {
        let Ok(parsed) = Service::from_object(svc) else {
            continue;
        };
        let mut spec = parsed.spec;
        default_on_read(&mut spec, primary);
        let owner = owner_id(svc);
        // Unparsable addresses are reported once, not tracked.
        if spec.needs_cluster_ip() {
            for ip in spec
                .cluster_ips
                .iter()
                .filter(|ip| !ip.is_empty() && *ip != NONE)
            {
                if parse_ip_sloppy(ip).is_none() {
                    let m = format!("Cluster IP {ip} is not a valid IP; please recreate service");
                    out.push(events.event(svc, IP_REPAIR_COMPONENT, "ClusterIPNotValid", m));
                }
            }
        }
        for r in holdings(&spec) {
            match (r, reg.adopt(r, &owner)) {
                (_, Adopted::Owned) => {}
                (Resource::ClusterIp(ip), outcome) => {
                    let family = Family::of(ip);
                    let (reason, message) = match outcome {
                        Adopted::Duplicate => (
                            "ClusterIPAlreadyAllocated",
                            format!("Cluster IP [{family}]:{ip} was assigned to multiple services; please recreate service"),
                        ),
                        Adopted::FamilyNotConfigured => (
                            "ClusterIPNotValid",
                            format!("Cluster IP {ip}({family}) is of ip family that is no longer configured on cluster; please recreate service"),
                        ),
                        _ => {
                            let cidr = reg.ip_allocator(family).map(|a| a.cidr().to_string()).unwrap_or_default();
                            (
                                "ClusterIPOutOfRange",
                                format!("Cluster IP [{family}]:{ip} is not within the service CIDR {cidr}; please recreate service"),
                            )
                        }
                    };
                    out.push(events.event(svc, IP_REPAIR_COMPONENT, reason, message));
                }
                (Resource::NodePort(port), outcome) => {
                    let (reason, message) = match outcome {
                        Adopted::Duplicate => {
                            ("PortAlreadyAllocated", format!("Port {port} was assigned to multiple services; please recreate service"))
                        }
                        _ => ("PortOutOfRange", format!("Port {port} is not within the port range {port_range}; please recreate service")),
                    };
                    out.push(events.event(svc, PORT_REPAIR_COMPONENT, reason, message));
                }
            }
        }
    }
    out
}
