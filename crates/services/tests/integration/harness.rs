//! A stand-in for the generic write path: it does to a Service what the API server does around
//! admission (server-owned metadata, status handling, the store, `finish`), so the plugin can
//! be driven as kubectl drives kube-apiserver in the reference transcripts.

use model::admission::{Admission, AdmissionRequest, Operation};
use model::{ApiError, ResourceInfo};
use serde_json::{json, Value};
use services::{ServiceAdmission, ServiceConfig};
use std::collections::BTreeMap;

pub fn services_resource() -> &'static ResourceInfo {
    model::lookup("", "v1", "services").unwrap()
}

pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Drops `null`s and zero-length strings where the server's decoder would (a small subset of
/// what `schema::normalize` does, enough for these tests).
fn normalize(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
        for x in m.values_mut() {
            normalize(x);
        }
    } else if let Value::Array(a) = v {
        for x in a {
            normalize(x);
        }
    }
}

/// kubectl's rendering of a 422 (`The Service "x" is invalid: ...`) or of another error's
/// message.
pub fn kubectl(e: &ApiError) -> String {
    if e.code != 422 {
        return e.message.clone();
    }
    let details = e.details.as_ref().unwrap();
    let causes = details["causes"].as_array().unwrap();
    let name = details.get("name").and_then(Value::as_str).unwrap_or("");
    let lines: Vec<String> = causes
        .iter()
        .map(|c| {
            format!(
                "{}: {}",
                c["field"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect();
    if lines.len() == 1 {
        format!("The Service \"{name}\" is invalid: {}", lines[0])
    } else {
        format!(
            "The Service \"{name}\" is invalid: \n* {}",
            lines.join("\n* ")
        )
    }
}

pub struct Cluster {
    pub adm: ServiceAdmission,
    pub store: BTreeMap<String, Value>,
    next_uid: u64,
    rv: u64,
}

pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

impl Cluster {
    /// A k3s-default cluster with the `kubernetes` Service bootstrapped straight into the store.
    pub fn new() -> Cluster {
        Cluster::with_config(ServiceConfig {
            rng_seed: Some(1),
            ..ServiceConfig::default()
        })
    }

    pub fn with_config(config: ServiceConfig) -> Cluster {
        let ip = config.kubernetes_service_ip().unwrap().to_string();
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        let kubernetes = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "uid": "uid-kubernetes", "resourceVersion": "1",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}],
                     "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
                     "ipFamilies": [family], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"},
            "status": {"loadBalancer": {}}
        });
        Cluster::from_store(config, vec![kubernetes]).0
    }

    /// A cluster restarted on `services` (what a store would hand back), with the repair report.
    pub fn from_store(config: ServiceConfig, services: Vec<Value>) -> (Cluster, Vec<Value>) {
        let (adm, events) = ServiceAdmission::new(config, services.clone()).unwrap();
        let store = services
            .into_iter()
            .map(|s| (s["metadata"]["name"].as_str().unwrap().to_string(), s))
            .collect();
        (
            Cluster {
                adm,
                store,
                next_uid: 0,
                rv: 100,
            },
            events,
        )
    }

    fn req<'a>(
        &self,
        operation: Operation,
        subresource: Option<&'a str>,
        old: Option<&'a Value>,
        dry_run: bool,
    ) -> AdmissionRequest<'a> {
        AdmissionRequest {
            resource: services_resource(),
            operation,
            subresource,
            old,
            dry_run,
        }
    }

    fn store_object(&mut self, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.store.insert(
            obj["metadata"]["name"].as_str().unwrap().to_string(),
            obj.clone(),
        );
        obj
    }

    fn create_inner(&mut self, mut body: Value, dry_run: bool) -> Result<Written, ApiError> {
        normalize(&mut body);
        body["apiVersion"] = json!("v1");
        body["kind"] = json!("Service");
        self.next_uid += 1;
        let meta = body["metadata"].as_object_mut().unwrap();
        meta.insert("namespace".into(), json!("default"));
        meta.insert("uid".into(), json!(format!("uid-{}", self.next_uid)));
        meta.insert("creationTimestamp".into(), json!("2026-11-21T23:26:38Z"));
        body["status"] = json!({"loadBalancer": {}});
        let req = self.req(Operation::Create, None, None, dry_run);
        self.adm.default(&req, &mut body);
        let warnings = self.adm.admit(&req, &mut body)?;
        if dry_run {
            self.adm.finish(&req, &body, None);
            return Ok(Written {
                object: body,
                warnings,
            });
        }
        let name = body["metadata"]["name"].as_str().unwrap().to_string();
        if self.store.contains_key(&name) {
            self.adm.finish(&req, &body, None);
            return Err(ApiError::already_exists("", "services", &name));
        }
        let stored = self.store_object(body.clone());
        self.adm.finish(&req, &body, Some(&stored));
        Ok(Written {
            object: stored,
            warnings,
        })
    }

    pub fn create(&mut self, body: Value) -> Result<Written, ApiError> {
        self.create_inner(body, false)
    }

    pub fn create_dry_run(&mut self, body: Value) -> Result<Written, ApiError> {
        self.create_inner(body, true)
    }

    pub fn get(&self, name: &str) -> Value {
        self.store
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("services \"{name}\" not found"))
    }

    fn update_inner(
        &mut self,
        name: &str,
        mut new: Value,
        subresource: Option<&str>,
        store_fails: bool,
    ) -> Result<Written, ApiError> {
        normalize(&mut new);
        let old = self.get(name);
        // The strategy: server-owned metadata from the stored object; the main resource keeps
        // the stored status, /status keeps everything but the status.
        for f in [
            "uid",
            "creationTimestamp",
            "namespace",
            "name",
            "resourceVersion",
        ] {
            new["metadata"][f] = old["metadata"][f].clone();
        }
        if subresource == Some("status") {
            let status = new["status"].clone();
            new = old.clone();
            new["status"] = status;
        } else {
            new["status"] = old["status"].clone();
        }
        let req = self.req(Operation::Update, subresource, Some(&old), false);
        self.adm.default(&req, &mut new);
        let warnings = self.adm.admit(&req, &mut new)?;
        if store_fails {
            self.adm.finish(&req, &new, None);
            return Err(ApiError::stale("", "services", name));
        }
        let stored = self.store_object(new.clone());
        self.adm.finish(&req, &new, Some(&stored));
        Ok(Written {
            object: stored,
            warnings,
        })
    }

    /// `kubectl replace`: a PUT of `body`.
    pub fn replace(&mut self, name: &str, mut body: Value) -> Result<Written, ApiError> {
        body["apiVersion"] = json!("v1");
        body["kind"] = json!("Service");
        self.update_inner(name, body, None, false)
    }

    /// `kubectl patch --type=merge`.
    pub fn patch(&mut self, name: &str, patch: Value) -> Result<Written, ApiError> {
        let mut new = self.get(name);
        merge_patch(&mut new, &patch);
        self.update_inner(name, new, None, false)
    }

    /// A merge patch whose store write then fails (a lost optimistic-concurrency race).
    pub fn patch_lost_race(&mut self, name: &str, patch: Value) -> Result<Written, ApiError> {
        let mut new = self.get(name);
        merge_patch(&mut new, &patch);
        self.update_inner(name, new, None, true)
    }

    /// `kubectl patch --subresource=status --type=merge`.
    pub fn patch_status(&mut self, name: &str, patch: Value) -> Result<Written, ApiError> {
        let mut new = self.get(name);
        merge_patch(&mut new, &patch);
        self.update_inner(name, new, Some("status"), false)
    }

    pub fn delete(&mut self, name: &str) {
        let current = self.get(name);
        let req = self.req(Operation::Delete, None, Some(&current), false);
        let mut obj = current.clone();
        self.adm.admit(&req, &mut obj).unwrap();
        let deleted = self.store.remove(name).unwrap();
        self.adm.finish(&req, &obj, Some(&deleted));
    }
}

/// A minimal Service manifest as kubectl sends it.
pub fn svc(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

/// Every stored Service's ClusterIPs and NodePorts with its uid; panics on a value two
/// Services hold.
pub fn held_by_services(services: &[Value]) -> BTreeMap<services::Resource, String> {
    let mut out = BTreeMap::new();
    for obj in services {
        let spec = services::types::Service::from_object(obj).unwrap().spec;
        let uid = obj["metadata"]["uid"].as_str().unwrap().to_string();
        for r in services::alloc::holdings(&spec) {
            if let Some(other) = out.insert(r, uid.clone()) {
                panic!("{r:?} is held by both {other} and {uid}");
            }
        }
    }
    out
}

/// What the allocators hold, with the holder's identity.
pub fn allocations_by_holder(adm: &ServiceAdmission) -> BTreeMap<services::Resource, String> {
    let a = adm.allocations();
    let mut out: BTreeMap<services::Resource, String> = a
        .cluster_ips
        .into_iter()
        .map(|(ip, o)| (services::Resource::ClusterIp(ip), o))
        .collect();
    out.extend(
        a.node_ports
            .into_iter()
            .map(|(p, o)| (services::Resource::NodePort(p), o)),
    );
    out
}
