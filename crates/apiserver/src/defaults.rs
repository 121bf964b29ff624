//! Kubernetes' defaulting for built-in kinds other than Services (`SetDefaults_*` in
//! k8s.io/kubernetes/pkg/apis/core/v1/defaults.go, plus the pod defaults that kube-apiserver's
//! default admission plugins add: priority, service account name, default toleration seconds).
//! Services have their own plugin (the `services` crate).

use model::admission::{Admission, AdmissionRequest};
use model::ApiError;
use serde_json::{json, Map, Value};

/// The plugin; stateless.
pub struct BuiltinDefaults;

fn set_default(m: &mut Map<String, Value>, key: &str, v: Value) {
    if m.get(key).is_none_or(|x| x.is_null() || x.as_str() == Some("")) {
        m.insert(key.to_string(), v);
    }
}

/// `IfNotPresent`, unless the image has no tag or `:latest` (then `Always`).
fn image_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_ports(ports: Option<&mut Value>, field: &str) {
    if let Some(Value::Array(ports)) = ports {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            if p.contains_key(field) || field.is_empty() {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

fn default_containers(containers: Option<&mut Value>) {
    let Some(Value::Array(cs)) = containers else { return };
    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
        set_default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
        set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
        set_default(c, "terminationMessagePolicy", json!("File"));
        c.entry("resources").or_insert_with(|| json!({}));
        default_ports(c.get_mut("ports"), "containerPort");
    }
}

/// `stringData` is write-only: kube-apiserver folds it into `data` (base64) while converting,
/// so it is never stored.
fn merge_string_data(secret: &mut Map<String, Value>) {
    use base64::Engine;
    let Some(Value::Object(string_data)) = secret.shift_remove("stringData") else { return };
    let data = secret.entry("data").or_insert_with(|| json!({}));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            data.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

fn default_pod(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    default_containers(spec.get_mut("containers"));
    default_containers(spec.get_mut("initContainers"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "restartPolicy", json!("Always"));
    spec.entry("terminationGracePeriodSeconds").or_insert(json!(30));
    spec.entry("securityContext").or_insert_with(|| json!({}));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    spec.entry("enableServiceLinks").or_insert(json!(true));
    // Priority admission.
    spec.entry("priority").or_insert(json!(0));
    set_default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    // ServiceAccount admission (without the token volume: no service account tokens here).
    let sa = spec.get("serviceAccountName").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("default").to_string();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    // DefaultTolerationSeconds admission.
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            let present = list.iter().any(|t| t.get("key").and_then(Value::as_str) == Some(key) && t.get("effect").and_then(Value::as_str).is_none_or(|e| e == "NoExecute"));
            if !present {
                list.push(json!({"effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300}));
            }
        }
    }
}

impl Admission for BuiltinDefaults {
    fn default(&self, req: &AdmissionRequest<'_>, obj: &mut Value) {
        if !req.resource.group.is_empty() && req.resource.group != "discovery.k8s.io" {
            return;
        }
        if req.subresource.is_some() {
            return;
        }
        match req.resource.plural {
            "pods" if req.old.is_none() => default_pod(obj),
            "pods" => {
                if let Some(spec) = obj.get_mut("spec") {
                    default_containers(spec.get_mut("containers"));
                }
            }
            "secrets" => {
                if let Some(m) = obj.as_object_mut() {
                    set_default(m, "type", json!("Opaque"));
                    merge_string_data(m);
                }
            }
            "endpoints" => {
                if let Some(Value::Array(subsets)) = obj.get_mut("subsets") {
                    for s in subsets.iter_mut() {
                        default_ports(s.get_mut("ports"), "");
                    }
                }
            }
            "endpointslices" => default_ports(obj.get_mut("ports"), ""),
            _ => {}
        }
    }

    fn admit(&self, _req: &AdmissionRequest<'_>, _obj: &mut Value) -> Result<Vec<String>, ApiError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::admission::Operation;

    #[test]
    fn pod_defaults_match_kube() {
        let pods = model::lookup("", "v1", "pods").unwrap();
        let req = AdmissionRequest { resource: pods, operation: Operation::Create, subresource: None, old: None, dry_run: false };
        let mut pod = json!({"spec": {"nodeName": "node1", "containers": [{"name": "c", "image": "nginx:1.26.2", "ports": [{"containerPort": 80, "name": "http"}]}]}});
        BuiltinDefaults.default(&req, &mut pod);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["spec"]["serviceAccountName"], "default");
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("registry:5000/nginx"), "Always");
    }
}
