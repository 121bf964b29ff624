//! What field ownership needs to know about the kind being written: its schema, its apiVersion,
//! the fields a write through this endpoint never owns (reset fields), and the empty object a
//! create starts from.

use crate::fieldpath::{FieldSet, PathElement};
use crate::typed::TypeRef;
use model::ResourceInfo;
use serde_json::{json, Value};

pub(crate) struct Kind {
    pub(crate) ty: TypeRef<'static>,
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) definition: &'static str,
    /// Fields this endpoint resets, so that writing them never takes ownership: `status` through
    /// the main resource, everything but `status` (and metadata) through `/status`.
    pub(crate) ignored: FieldSet,
}

impl Kind {
    pub(crate) fn new(info: &ResourceInfo, subresource: Option<&str>) -> Kind {
        let ty = TypeRef::definition(info.definition);
        let mut ignored = FieldSet::new();
        match subresource {
            None if info.has_status => ignored.insert(&[PathElement::Field("status".into())]),
            Some("status") => {
                let top: Vec<String> = match ty.atom() {
                    crate::typed::schema::Atom::Map(m) => m.fields.map(|f| f.keys().cloned().collect()).unwrap_or_default(),
                    _ => vec!["spec".to_string()],
                };
                for field in top {
                    if !matches!(field.as_str(), "apiVersion" | "kind" | "metadata" | "status") {
                        ignored.insert(&[PathElement::Field(field)]);
                    }
                }
            }
            _ => {}
        }
        Kind { ty, group: info.group, version: info.version, kind: info.kind, definition: info.definition, ignored }
    }

    /// `v1` or `discovery.k8s.io/v1`.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The object a create (or an apply that creates) is compared with: the Go zero value of the
    /// kind as kube-apiserver serialises it. Its non-pointer structs (`spec: {}`) and
    /// non-omitempty lists (`containers: null`) are present, so filling them in does not make
    /// them "added" — which is why a created Service's managedFields own `f:ports` with `".": {}`
    /// but never `f:spec` itself.
    pub(crate) fn zero_object(&self) -> Value {
        let meta = json!({"creationTimestamp": null});
        match self.definition {
            "io.k8s.api.core.v1.Service" | "io.k8s.api.networking.v1.Ingress" => {
                json!({"metadata": meta, "spec": {}, "status": {"loadBalancer": {}}})
            }
            "io.k8s.api.core.v1.Pod" => json!({"metadata": meta, "spec": {"containers": null}, "status": {}}),
            "io.k8s.api.core.v1.Namespace" => json!({"metadata": meta, "spec": {}, "status": {}}),
            "io.k8s.api.core.v1.Node" => json!({"metadata": meta, "spec": {}, "status": {
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
                    "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "", "operatingSystem": "", "architecture": ""}
            }}),
            "io.k8s.api.core.v1.Event" => json!({"metadata": meta, "involvedObject": {}, "source": {},
                "firstTimestamp": null, "lastTimestamp": null, "eventTime": null, "reportingComponent": "", "reportingInstance": ""}),
            "io.k8s.api.discovery.v1.EndpointSlice" => json!({"metadata": meta, "addressType": "", "endpoints": null, "ports": null}),
            "io.k8s.api.coordination.v1.Lease" | "io.k8s.api.networking.v1.IngressClass" => json!({"metadata": meta, "spec": {}}),
            // Custom resources are unstructured: their empty object is empty.
            d if !d.starts_with("io.k8s.") => json!({}),
            _ => json!({"metadata": meta}),
        }
    }

    /// `default/nginx; /v1, Kind=Service`, as kube names an object in typed-conversion errors.
    pub(crate) fn describe(obj: &Value) -> String {
        let (api_version, kind) = model::meta::type_meta(obj);
        let namespace = model::meta::meta_str(obj, "namespace").unwrap_or("");
        format!("{namespace}/{}; {}", model::meta::name(obj), gvk_string(api_version.unwrap_or(""), kind.unwrap_or("")))
    }
}

/// `schema.GroupVersionKind.String()`: `/v1, Kind=Service`, `apps/v1, Kind=Deployment`.
pub(crate) fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = model::registry::split_api_version(api_version);
    format!("{group}/{version}, Kind={kind}")
}
