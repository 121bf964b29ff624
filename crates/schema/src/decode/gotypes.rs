//! The Go type names kube-apiserver's decoder prints in `json: cannot unmarshal … of type T`.
//!
//! Most follow from the schema (`int32`, `string`, `map[string]string`, `[]v1.ServicePort`), but
//! Kubernetes gives many string fields a named type (`ServiceType`, `Protocol`) that the OpenAPI
//! schema does not record; those are listed here for the served kinds (k8s.io/api 1.36).

use crate::Schema;
use serde_json::Value;

/// (definition, property, Go type of the property).
const NAMED: &[(&str, &str, &str)] = &[
    ("io.k8s.api.core.v1.ServiceSpec", "type", "v1.ServiceType"),
    ("io.k8s.api.core.v1.ServiceSpec", "sessionAffinity", "v1.ServiceAffinity"),
    ("io.k8s.api.core.v1.ServiceSpec", "externalTrafficPolicy", "v1.ServiceExternalTrafficPolicy"),
    ("io.k8s.api.core.v1.ServiceSpec", "internalTrafficPolicy", "v1.ServiceInternalTrafficPolicy"),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilies", "[]v1.IPFamily"),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilyPolicy", "v1.IPFamilyPolicy"),
    ("io.k8s.api.core.v1.ServicePort", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.PortStatus", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.LoadBalancerIngress", "ipMode", "v1.LoadBalancerIPMode"),
    ("io.k8s.api.core.v1.EndpointPort", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.ContainerPort", "protocol", "v1.Protocol"),
    ("io.k8s.api.core.v1.NamespaceSpec", "finalizers", "[]v1.FinalizerName"),
    ("io.k8s.api.core.v1.NamespaceStatus", "phase", "v1.NamespacePhase"),
    ("io.k8s.api.core.v1.NamespaceCondition", "type", "v1.NamespaceConditionType"),
    ("io.k8s.api.core.v1.NamespaceCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.core.v1.NodeStatus", "phase", "v1.NodePhase"),
    ("io.k8s.api.core.v1.NodeStatus", "capacity", "v1.ResourceList"),
    ("io.k8s.api.core.v1.NodeStatus", "allocatable", "v1.ResourceList"),
    ("io.k8s.api.core.v1.NodeCondition", "type", "v1.NodeConditionType"),
    ("io.k8s.api.core.v1.NodeCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.core.v1.NodeAddress", "type", "v1.NodeAddressType"),
    ("io.k8s.api.core.v1.Taint", "effect", "v1.TaintEffect"),
    ("io.k8s.api.core.v1.Toleration", "operator", "v1.TolerationOperator"),
    ("io.k8s.api.core.v1.Toleration", "effect", "v1.TaintEffect"),
    ("io.k8s.api.core.v1.PodStatus", "phase", "v1.PodPhase"),
    ("io.k8s.api.core.v1.PodStatus", "qosClass", "v1.PodQOSClass"),
    ("io.k8s.api.core.v1.PodCondition", "type", "v1.PodConditionType"),
    ("io.k8s.api.core.v1.PodCondition", "status", "v1.ConditionStatus"),
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy", "v1.RestartPolicy"),
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy", "v1.DNSPolicy"),
    ("io.k8s.api.core.v1.PodSpec", "preemptionPolicy", "v1.PreemptionPolicy"),
    ("io.k8s.api.core.v1.Container", "imagePullPolicy", "v1.PullPolicy"),
    ("io.k8s.api.core.v1.Container", "terminationMessagePolicy", "v1.TerminationMessagePolicy"),
    ("io.k8s.api.core.v1.ResourceRequirements", "limits", "v1.ResourceList"),
    ("io.k8s.api.core.v1.ResourceRequirements", "requests", "v1.ResourceList"),
    ("io.k8s.api.core.v1.Secret", "type", "v1.SecretType"),
    ("io.k8s.api.core.v1.ObjectReference", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions", "uid", "types.UID"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry", "operation", "v1.ManagedFieldsOperationType"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Condition", "status", "v1.ConditionStatus"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "operator", "v1.LabelSelectorOperator"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", "propagationPolicy", "v1.DeletionPropagation"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "reason", "v1.StatusReason"),
    ("io.k8s.api.discovery.v1.EndpointSlice", "addressType", "v1.AddressType"),
    ("io.k8s.api.discovery.v1.EndpointPort", "protocol", "v1.Protocol"),
    ("io.k8s.api.networking.v1.HTTPIngressPath", "pathType", "v1.PathType"),
];

/// The Go type of property `prop` of definition `owner`, when Kubernetes names it.
pub(super) fn named(owner: &str, prop: &str) -> Option<&'static str> {
    NAMED.iter().find(|(d, p, _)| *d == owner && *p == prop).map(|(_, _, t)| *t)
}

/// `v1.ServiceSpec` for `io.k8s.api.core.v1.ServiceSpec`: reflect's `Type.String()`, package
/// name dot type name.
pub(super) fn struct_type(def: &str) -> String {
    let mut parts = def.rsplit('.');
    let name = parts.next().unwrap_or(def);
    match parts.next() {
        Some(pkg) => format!("{pkg}.{name}"),
        None => name.to_string(),
    }
}

/// The Go type of a schema node, as far as the schema tells it.
pub(super) fn of(s: &Schema, node: &Value) -> String {
    if let Some(name) = Schema::ref_of(node).or_else(|| node.get("allOf").and_then(|a| a.get(0)).and_then(Schema::ref_of)) {
        return match name {
            super::INT_OR_STRING => "intstr.IntOrString".into(),
            super::QUANTITY => "resource.Quantity".into(),
            _ => struct_type(name),
        };
    }
    let n = s.resolve(node);
    match crate::node_type(n) {
        Some("integer") => match n.get("format").and_then(Value::as_str) {
            Some("int32") => "int32".into(),
            Some("int64") => "int64".into(),
            _ => "int".into(),
        },
        Some("number") => match n.get("format").and_then(Value::as_str) {
            Some("float") => "float32".into(),
            _ => "float64".into(),
        },
        Some("string") if n.get("format").and_then(Value::as_str) == Some("byte") => "[]uint8".into(),
        Some("string") => "string".into(),
        Some("boolean") => "bool".into(),
        Some("array") => match s.items(n) {
            Some(items) => format!("[]{}", of(s, items)),
            None => "[]interface {}".into(),
        },
        Some("object") => match s.additional_properties(n) {
            Some(ap) => format!("map[string]{}", of(s, ap)),
            None => "map[string]interface {}".into(),
        },
        _ => "interface {}".into(),
    }
}
