//! A stand-in for the parts of kube-apiserver around the patch crate, just enough to replay the
//! reference transcripts: Service defaulting (before ownership is computed on updates, after
//! apply), ClusterIP allocation (after ownership), and the write paths of create, patch and
//! apply in kube-apiserver's order.

use model::{ApiError, ResourceInfo};
use patch::Writer;
use serde_json::{json, Value};

pub fn info(kind: &str) -> &'static ResourceInfo {
    model::RESOURCES.iter().find(|r| r.kind == kind).expect("served kind")
}

/// Decoding a v1 Service: unknown fields dropped, then scheme defaulting.
pub fn default_service(obj: &mut Value) {
    let spec = obj.as_object_mut().unwrap().entry("spec").or_insert_with(|| json!({}));
    let spec = spec.as_object_mut().unwrap();
    let known = schema::Schema::get().definition("io.k8s.api.core.v1.ServiceSpec").unwrap()["properties"].as_object().unwrap();
    spec.retain(|k, _| known.contains_key(k));
    spec.entry("type").or_insert_with(|| json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert_with(|| json!("None"));
    if spec["sessionAffinity"] == "ClientIP" && !spec.contains_key("sessionAffinityConfig") {
        spec.insert("sessionAffinityConfig".into(), json!({"clientIP": {"timeoutSeconds": 10800}}));
    }
    if spec["type"] != "ExternalName" {
        spec.entry("internalTrafficPolicy").or_insert_with(|| json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            let port = port.as_object_mut().unwrap();
            port.entry("protocol").or_insert_with(|| json!("TCP"));
            if !port.contains_key("targetPort") {
                let p = port["port"].clone();
                port.insert("targetPort".into(), p);
            }
        }
    }
    let obj = obj.as_object_mut().unwrap();
    obj.entry("status").or_insert_with(|| json!({"loadBalancer": {}}));
}

/// What the registry does after ownership is recorded: drop fields the type no longer uses,
/// and allocate a ClusterIP on create.
fn prepare_service(obj: &mut Value, create: bool) {
    let spec = obj["spec"].as_object_mut().unwrap();
    if spec.get("sessionAffinity") == Some(&json!("None")) {
        spec.remove("sessionAffinityConfig");
    }
    if create {
        spec.insert("clusterIP".into(), json!("10.96.79.135"));
        spec.insert("clusterIPs".into(), json!(["10.96.79.135"]));
        spec.insert("ipFamilies".into(), json!(["IPv4"]));
        spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
        let meta = obj["metadata"].as_object_mut().unwrap();
        meta.insert("uid".into(), json!("557af5dd-6fbc-412a-b178-acc1685d552c"));
        meta.insert("creationTimestamp".into(), json!("2026-11-21T23:27:47Z"));
    }
    let rv = obj["metadata"].get("resourceVersion").and_then(Value::as_str).and_then(|s| s.parse::<u64>().ok()).unwrap_or(500);
    obj["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
}

fn writer<'a>(manager: &'a str, time: &'a str) -> Writer<'a> {
    Writer { manager, subresource: None, time }
}

/// One Service as the API server holds it.
pub struct Service {
    pub obj: Value,
}

impl Service {
    /// `POST`: defaulting, ownership from the zero object, then allocation.
    pub fn create(mut obj: Value, manager: &str, time: &str) -> Service {
        default_service(&mut obj);
        patch::record_update(info("Service"), None, &mut obj, &writer(manager, time));
        prepare_service(&mut obj, true);
        Service { obj }
    }

    /// `PATCH` with a JSON, merge or strategic merge patch, as `manager`.
    pub fn patch(&mut self, kind: &str, body: &str, manager: &str, time: &str) -> Result<(), ApiError> {
        let svc = info("Service");
        let mut new = match kind {
            "json" => patch::json_patch(&self.obj, body.as_bytes())?,
            "merge" => patch::merge_patch(&self.obj, body.as_bytes())?,
            _ => patch::strategic_merge_patch(svc, &self.obj, body.as_bytes())?,
        };
        default_service(&mut new);
        patch::record_update(svc, Some(&self.obj), &mut new, &writer(manager, time));
        prepare_service(&mut new, false);
        self.obj = new;
        Ok(())
    }

    /// `PATCH` with `application/apply-patch+yaml`: apply, then defaulting.
    pub fn apply(&mut self, config: &Value, manager: &str, force: bool, time: &str) -> Result<(), ApiError> {
        let mut new = patch::apply(info("Service"), Some(&self.obj), config, &writer(manager, time), force)?;
        default_service(&mut new);
        prepare_service(&mut new, false);
        self.obj = new;
        Ok(())
    }

    /// Server-side apply that creates the object.
    pub fn apply_new(config: &Value, manager: &str, time: &str) -> Result<Service, ApiError> {
        let mut obj = patch::apply(info("Service"), None, config, &writer(manager, time), false)?;
        default_service(&mut obj);
        prepare_service(&mut obj, true);
        Ok(Service { obj })
    }

    pub fn managed_fields(&self) -> &Value {
        &self.obj["metadata"]["managedFields"]
    }

    /// `manager/operation` of each managedFields entry, in order.
    pub fn managers(&self) -> Vec<String> {
        self.managed_fields()
            .as_array()
            .map(|a| a.iter().map(|e| format!("{}/{}", e["manager"].as_str().unwrap(), e["operation"].as_str().unwrap())).collect())
            .unwrap_or_default()
    }

    pub fn ports(&self) -> Value {
        self.obj["spec"]["ports"].clone()
    }
}

/// One managedFields entry of the v1 API.
pub fn entry(manager: &str, operation: &str, time: Option<&str>, fields: Value) -> Value {
    let mut e = json!({"manager": manager, "operation": operation, "apiVersion": "v1"});
    if let Some(t) = time {
        e["time"] = json!(t);
    }
    e["fieldsType"] = json!("FieldsV1");
    e["fieldsV1"] = fields;
    e
}

/// The Service of reference 10's manifests: `nginx` selector, one port 80.
pub fn nginx_manifest(name: &str, target_port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": target_port}]}})
}

/// `kubectl apply` (client-side) creating `manifest`: the object carries the last-applied
/// annotation kubectl computes.
pub fn client_side_apply_create(manifest: &Value, time: &str) -> Service {
    let mut last = manifest.clone();
    last["metadata"]["annotations"] = json!({});
    let annotation = go_json(&last) + "\n";
    let mut obj = manifest.clone();
    obj["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/last-applied-configuration": annotation});
    Service::create(obj, "kubectl-client-side-apply", time)
}

/// JSON with sorted keys, as kubectl's annotation has it (no characters needing escapes here).
pub fn go_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}
