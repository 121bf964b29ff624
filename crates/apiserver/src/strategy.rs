//! Per-kind rules the generic machinery applies on every write, as kube-apiserver's
//! `rest.RESTCreateStrategy` / `RESTUpdateStrategy`: what the server sets on create, what a
//! write through the main resource or the status subresource may change, and when
//! `metadata.generation` moves.

use model::meta;
use model::ResourceInfo;
use serde_json::{json, Map, Value};

/// Kinds whose `metadata.generation` tracks changes to their desired state.
fn tracks_generation(res: &ResourceInfo) -> bool {
    matches!(
        res.plural,
        "pods" | "endpointslices" | "ingresses" | "ingressclasses" | "ipaddresspools" | "l2advertisements"
    )
}

/// Whether updates may create a missing object (kube's `AllowCreateOnUpdate`).
pub fn allow_create_on_update(res: &ResourceInfo) -> bool {
    matches!(res.plural, "endpoints" | "events" | "leases" | "nodes")
}

/// The status a kind starts with when it has a status subresource: what kube-apiserver's
/// `PrepareForCreate` leaves (the zero value, serialised).
fn initial_status(res: &ResourceInfo, obj: &Value) -> Option<Value> {
    match res.plural {
        "services" | "ingresses" => Some(json!({"loadBalancer": {}})),
        "namespaces" => Some(json!({"phase": "Active"})),
        "pods" => {
            // No kubelet runs here: keep a status given on create (registered backends), else Pending.
            let given = obj.get("status").filter(|s| s.as_object().is_some_and(|m| !m.is_empty())).cloned();
            Some(given.unwrap_or_else(|| json!({"phase": "Pending", "qosClass": "BestEffort"})))
        }
        "nodes" => {
            let mut s = obj.get("status").cloned().unwrap_or_else(|| json!({}));
            if let Some(m) = s.as_object_mut() {
                m.entry("daemonEndpoints").or_insert(json!({"kubeletEndpoint": {"Port": 0}}));
                m.entry("nodeInfo").or_insert(json!({
                    "architecture": "", "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "",
                    "kubeProxyVersion": "", "kubeletVersion": "", "machineID": "", "operatingSystem": "",
                    "osImage": "", "systemUUID": ""
                }));
            }
            Some(s)
        }
        _ => None,
    }
}

fn now() -> String {
    meta::format_time(chrono::Utc::now())
}

/// What kube-apiserver writes as `null` because Go cannot omit it: an EndpointSlice's
/// `endpoints` and `ports` (slices without `omitempty`; reference 03's placeholder slice reads
/// `endpoints: null`, `ports: null`), and a pod condition's zero `lastProbeTime` and
/// `lastTransitionTime` (`metav1.Time` structs, which `omitempty` never drops; reference 03's
/// patched pod status reads `lastProbeTime: null`). The decoder drops nulls, so they are put
/// back here, on every write.
fn go_nulls(res: &ResourceInfo, obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else { return };
    match (res.group, res.plural) {
        ("discovery.k8s.io", "endpointslices") => {
            for field in ["endpoints", "ports"] {
                root.entry(field).or_insert(Value::Null);
            }
        }
        ("", "pods") => {
            let conditions = root.get_mut("status").and_then(|s| s.get_mut("conditions")).and_then(Value::as_array_mut);
            for c in conditions.into_iter().flatten().filter_map(Value::as_object_mut) {
                for field in ["lastProbeTime", "lastTransitionTime"] {
                    c.entry(field).or_insert(Value::Null);
                }
            }
        }
        _ => {}
    }
}

/// Sets what the server owns on a new object.
pub fn prepare_create(res: &ResourceInfo, obj: &mut Value) {
    go_nulls(res, obj);
    let m = meta::metadata_mut(obj);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(now()));
    for f in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
        m.shift_remove(f);
    }
    if tracks_generation(res) {
        m.insert("generation".into(), json!(1));
    } else {
        m.shift_remove("generation");
    }
    if !res.namespaced {
        m.shift_remove("namespace");
    }
    if res.plural == "namespaces" {
        let name = m.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
        let root = obj.as_object_mut().unwrap();
        root.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
    }
    if res.has_status {
        match initial_status(res, obj) {
            Some(s) => {
                obj.as_object_mut().unwrap().insert("status".into(), s);
            }
            None => {
                // Custom resources with a status subresource drop status on create.
                obj.as_object_mut().unwrap().shift_remove("status");
            }
        }
    }
}

const SERVER_OWNED_META: &[&str] =
    &["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name"];

/// Carries over what an update may not change and applies the subresource's scope:
/// a write to the main resource keeps the old status; a write to `/status` keeps everything
/// but the status (kube's `ResetObjectMetaForStatus`).
pub fn prepare_update(res: &ResourceInfo, old: &Value, new: &mut Value, subresource: Option<&str>) {
    match subresource {
        Some("status") => {
            let status = new.get("status").cloned();
            let managed = meta::metadata(new).and_then(|m| m.get("managedFields")).cloned();
            *new = old.clone();
            let root = new.as_object_mut().unwrap();
            match status {
                Some(s) => root.insert("status".into(), s),
                None => root.shift_remove("status"),
            };
            if let Some(mf) = managed {
                meta::set_meta(new, "managedFields", mf);
            }
        }
        Some("finalize") => {
            // Only spec.finalizers of a namespace may change through /finalize.
            let finalizers = new.get("spec").and_then(|s| s.get("finalizers")).cloned();
            *new = old.clone();
            let spec = new.as_object_mut().unwrap().entry("spec").or_insert_with(|| json!({}));
            match finalizers {
                Some(f) => spec.as_object_mut().unwrap().insert("finalizers".into(), f),
                None => spec.as_object_mut().unwrap().shift_remove("finalizers"),
            };
        }
        _ => {
            if res.has_status {
                let root = new.as_object_mut().unwrap();
                match old.get("status") {
                    Some(s) => root.insert("status".into(), s.clone()),
                    None => root.shift_remove("status"),
                };
            }
            if res.plural == "namespaces" {
                // spec.finalizers only change through /finalize.
                if let Some(spec) = old.get("spec") {
                    new.as_object_mut().unwrap().insert("spec".into(), spec.clone());
                }
            }
        }
    }
    let old_meta = meta::metadata(old).cloned().unwrap_or_default();
    let m = meta::metadata_mut(new);
    for f in SERVER_OWNED_META {
        match old_meta.get(*f) {
            Some(v) => m.insert(f.to_string(), v.clone()),
            None => m.shift_remove(*f),
        };
    }
    m.shift_remove("selfLink");
    go_nulls(res, new);
    if tracks_generation(res) && desired_state_changed(old, new) {
        let g = meta::metadata(old).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0);
        meta::set_meta(new, "generation", json!(g + 1));
    }
}

/// Did anything outside `metadata` and `status` change?
fn desired_state_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.shift_remove("metadata");
        m.shift_remove("status");
        m.shift_remove("kind");
        m.shift_remove("apiVersion");
        m
    };
    strip(old) != strip(new)
}

/// Are two versions of an object the same apart from bookkeeping? A no-op write is not stored
/// (kube-apiserver answers it with the current object and no new resourceVersion).
pub fn semantically_equal(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut c = v.clone();
        if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
            m.shift_remove("resourceVersion");
            if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
                for e in mf.iter_mut() {
                    if let Some(e) = e.as_object_mut() {
                        e.shift_remove("time");
                    }
                }
            }
        }
        c
    };
    strip(old) == strip(new)
}

/// Puts `kind`, `apiVersion`, `metadata` first and metadata's fields in Go's order, as
/// kube-apiserver serialises objects; done once before storing so every read is in order.
pub fn canonical_order(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        // Go's `omitempty`: ObjectMeta's empty maps and lists are not serialised.
        meta.retain(|k, v| {
            !(matches!(k.as_str(), "labels" | "annotations" | "finalizers" | "ownerReferences" | "managedFields")
                && (v.as_object().is_some_and(Map::is_empty) || v.as_array().is_some_and(Vec::is_empty) || v.is_null()))
        });
    }
    let mut out = Map::new();
    for k in ["kind", "apiVersion"] {
        if let Some(v) = m.shift_remove(k) {
            out.insert(k.to_string(), v);
        }
    }
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        // A placeholder the store overwrites in place, so resourceVersion sits where Go puts it.
        meta.entry("resourceVersion").or_insert_with(|| Value::String(String::new()));
    }
    if m.contains_key("metadata") {
        let ordered = model::table::ordered_metadata(&Value::Object(m.clone()));
        m.shift_remove("metadata");
        out.insert("metadata".into(), ordered);
    }
    let status = m.shift_remove("status");
    out.append(m);
    if let Some(st) = status {
        out.insert("status".into(), st);
    }
    *m = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_write_keeps_spec_and_labels() {
        let svc = model::lookup("", "v1", "services").unwrap();
        let old = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1"}}, "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}});
        let mut new = json!({"metadata": {"name": "a", "labels": {"x": "2"}}, "spec": {"type": "NodePort"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        prepare_update(svc, &old, &mut new, Some("status"));
        assert_eq!(new["spec"]["type"], "ClusterIP");
        assert_eq!(new["metadata"]["labels"]["x"], "1");
        assert_eq!(new["status"]["loadBalancer"]["ingress"][0]["ip"], "1.2.3.4");
    }

    #[test]
    fn main_write_keeps_status_and_bumps_generation() {
        let ing = model::lookup("networking.k8s.io", "v1", "ingresses").unwrap();
        let old = json!({"metadata": {"name": "a", "generation": 1}, "spec": {"x": 1}, "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
        let mut new = json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {}});
        prepare_update(ing, &old, &mut new, None);
        assert_eq!(new["status"], old["status"]);
        assert_eq!(new["metadata"]["generation"], 2);
    }
}
