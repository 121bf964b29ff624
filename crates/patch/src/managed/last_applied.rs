//! The bridge from client-side to server-side apply that kube-apiserver keeps for kubectl.
//!
//! `kubectl apply` (client-side) records the applied configuration in the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation and owns fields as manager
//! `kubectl-client-side-apply`. When the manager named `kubectl` later applies server-side,
//! kube-apiserver lets it take over, without a conflict, every field the annotation lists with
//! the value it still has (`lastAppliedManager`), and keeps the annotation up to date on each
//! such apply (`lastAppliedUpdater`). Other managers get ordinary conflicts. kubectl then does
//! the rest itself: it applies the annotation as manager `kubectl-last-applied` and merges the
//! client-side manager's fields into its own with a JSON patch of `metadata.managedFields`,
//! which `update_managed_fields` honours like any client-supplied managedFields.

use super::kind::Kind;
use crate::fieldpath::FieldSet;
use crate::{gojson, typed};
use serde_json::{Map, Value};

pub(crate) const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose applies upgrade client-side apply.
pub(crate) const KUBECTL: &str = "kubectl";

/// kube's limit on the total size of an object's annotations.
const ANNOTATIONS_SIZE_LIMIT: usize = 256 * 1024;

fn annotation(obj: &Value) -> Option<&str> {
    obj.get("metadata")?.get("annotations")?.get(ANNOTATION)?.as_str().filter(|s| !s.is_empty())
}

/// The fields `kubectl` may take over: those the annotation lists, minus any whose live value
/// differs from it. `None` when there is no usable annotation.
pub(crate) fn allowed_conflicts(kind: &Kind, live: &Value) -> Option<FieldSet> {
    let last: Value = serde_json::from_str(annotation(live)?).ok()?;
    if !last.is_object() || last.get("apiVersion").and_then(Value::as_str) != Some(kind.api_version().as_str()) {
        return None;
    }
    typed::validate(&last, kind.ty).ok()?;
    let set = typed::to_field_set(&last, kind.ty).ok()?;
    let cmp = typed::compare(&last, live, kind.ty).ok()?;
    Some(set.difference(&cmp.modified).difference(&cmp.added).difference(&cmp.removed))
}

/// After a successful apply by `kubectl` of an object carrying the annotation: the annotation
/// becomes the applied configuration (without the annotation itself), encoded as Go does.
pub(crate) fn update_annotation(result: &mut Value, applied: &Value) {
    if annotation(result).is_none() {
        return;
    }
    let value = last_applied(applied);
    let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
    let Some(annotations) = annotations.as_object_mut() else { return };
    annotations.insert(ANNOTATION.to_string(), Value::String(value));
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    if size > ANNOTATIONS_SIZE_LIMIT {
        annotations.remove(ANNOTATION);
    }
}

/// `buildLastApplied`: the applied object minus the annotation, as `json.Encoder` writes it.
fn last_applied(applied: &Value) -> String {
    let mut obj = applied.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let strings = meta.get("annotations").and_then(Value::as_object).map(|a| a.values().all(Value::is_string));
        match strings {
            Some(true) => {
                if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                    a.remove(ANNOTATION);
                }
            }
            // Annotations that are not a string map read as none, and are written back as none.
            Some(false) => {
                meta.remove("annotations");
            }
            None => {}
        }
    }
    gojson::marshal(&obj) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotation_is_go_encoded_with_a_newline() {
        let applied = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-csa", "namespace": "default", "labels": {"app": "nginx"}},
            "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 8080}]}});
        assert_eq!(
            last_applied(&applied),
            "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"labels\":{\"app\":\"nginx\"},\"name\":\"nginx-csa\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"nginx-port\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}],\"selector\":{\"app\":\"nginx\"}}}\n"
        );
    }
}
