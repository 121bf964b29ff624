//! ObjectMeta validation messages, checked against reference 08 where it has them.

use crate::res;
use model::validation::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
    name_is_dns_subdomain, validate_object_meta, validate_object_meta_update,
};
use model::{ApiError, Cause};
use serde_json::{json, Value};

const LABEL_REGEX: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_REGEX: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const KEY_REGEX: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn service(meta: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": [{"port": 80}]}})
}

fn messages(causes: &[Cause]) -> Vec<String> {
    causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

fn service_error(name: &str) -> String {
    let causes = validate_object_meta(
        res("", "services"),
        &service(json!({"name": name, "namespace": "default"})),
    );
    ApiError::invalid("", "Service", name, causes).message
}

/// Reference 08: "Invalid object names" (Services are RFC 1123 labels in 1.36).
#[test]
fn service_names_as_kube_apiserver_1_36() {
    assert_eq!(
        format!("The {}", service_error("Upper_Case")),
        format!("The Service \"Upper_Case\" is invalid: metadata.name: Invalid value: \"Upper_Case\": {LABEL_REGEX}")
    );
    assert_eq!(
        format!("The {}", service_error("nginx.dotted")),
        "The Service \"nginx.dotted\" is invalid: metadata.name: Invalid value: \"nginx.dotted\": must not contain dots"
    );
    let long = "a-service-name-that-is-exactly-sixty-four-characters-long-abcdef";
    assert_eq!(long.len(), 64);
    assert_eq!(
        format!("The {}", service_error(long)),
        format!("The Service \"{long}\" is invalid: metadata.name: Invalid value: \"{long}\": must be no more than 63 characters")
    );
    let ok = validate_object_meta(
        res("", "services"),
        &service(json!({"name": "1nginx", "namespace": "default"})),
    );
    assert!(ok.is_empty(), "{ok:?}");
}

#[test]
fn causes_carry_reasons_for_the_status_details() {
    let causes = validate_object_meta(
        res("", "services"),
        &service(json!({"name": "Upper_Case", "namespace": "default"})),
    );
    assert_eq!(causes[0].reason, "FieldValueInvalid");
    assert_eq!(causes[0].field, "metadata.name");
    assert_eq!(
        causes[0].message,
        format!("Invalid value: \"Upper_Case\": {LABEL_REGEX}")
    );
}

#[test]
fn most_resources_use_dns_subdomains_and_namespaces_labels() {
    let cm = json!({"metadata": {"name": "my.config", "namespace": "default"}});
    assert!(validate_object_meta(res("", "configmaps"), &cm).is_empty());
    let bad = json!({"metadata": {"name": "My.Config", "namespace": "default"}});
    assert_eq!(
        messages(&validate_object_meta(res("", "configmaps"), &bad)),
        [format!(
            "metadata.name: Invalid value: \"My.Config\": {SUBDOMAIN_REGEX}"
        )]
    );
    let ns = json!({"metadata": {"name": "team.a"}});
    assert_eq!(
        messages(&validate_object_meta(res("", "namespaces"), &ns)),
        ["metadata.name: Invalid value: \"team.a\": must not contain dots"]
    );
    let pool = json!({"metadata": {"name": "pool.a", "namespace": "metallb-system"}});
    assert!(validate_object_meta(res("metallb.io", "ipaddresspools"), &pool).is_empty());
    let long = "a".repeat(254);
    assert_eq!(
        messages(&validate_object_meta(
            res("", "nodes"),
            &json!({"metadata": {"name": long}})
        )),
        [format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"
        )]
    );
}

#[test]
fn name_or_generate_name_is_required() {
    let causes = validate_object_meta(
        res("", "services"),
        &service(json!({"namespace": "default"})),
    );
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldValueRequired");
    assert_eq!(
        messages(&causes),
        ["metadata.name: Required value: name or generateName is required"]
    );
}

#[test]
fn generate_name_prefix_may_end_in_a_dash() {
    let svc = res("", "services");
    let ok = service(
        json!({"generateName": "gen-svc-", "name": "gen-svc-x7k2p", "namespace": "default"}),
    );
    assert!(validate_object_meta(svc, &ok).is_empty());
    let bad = service(json!({"generateName": "Gen-", "name": "gen-abcde", "namespace": "default"}));
    assert_eq!(
        messages(&validate_object_meta(svc, &bad)),
        [format!(
            "metadata.generateName: Invalid value: \"Gen-\": {LABEL_REGEX}"
        )]
    );
    // Upstream masks the trailing dash by replacing the last two characters with "a".
    assert!(name_is_dns_subdomain("a-", true).is_empty());
    assert!(name_is_dns_subdomain("a.-", true).is_empty());
    assert!(!name_is_dns_subdomain("a-", false).is_empty());
}

#[test]
fn namespace_required_or_forbidden() {
    let causes = validate_object_meta(res("", "services"), &service(json!({"name": "a"})));
    assert_eq!(messages(&causes), ["metadata.namespace: Required value"]);
    let causes = validate_object_meta(
        res("", "services"),
        &service(json!({"name": "a", "namespace": "Bad_NS"})),
    );
    assert_eq!(
        messages(&causes),
        [format!(
            "metadata.namespace: Invalid value: \"Bad_NS\": {LABEL_REGEX}"
        )]
    );
    let causes = validate_object_meta(
        res("", "nodes"),
        &json!({"metadata": {"name": "n", "namespace": "default"}}),
    );
    assert_eq!(
        messages(&causes),
        ["metadata.namespace: Forbidden: not allowed on this type"]
    );
    assert_eq!(causes[0].reason, "FieldValueForbidden");
}

#[test]
fn labels_and_annotations() {
    let obj = service(json!({"name": "a", "namespace": "default",
        "labels": {"bad key": "ok", "good": "-bad", "example.com/fine": "v"},
        "annotations": {"Example.com/Upper": "anything goes", "a/b/c": "x"}}));
    assert_eq!(
        messages(&validate_object_meta(res("", "services"), &obj)),
        [
            format!("metadata.labels: Invalid value: \"bad key\": {KEY_REGEX}"),
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
            "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string(),
        ]
    );
}

#[test]
fn annotations_are_limited_to_256_kib() {
    let big = "x".repeat(256 * 1024);
    let obj = service(json!({"name": "a", "namespace": "default", "annotations": {"k": big}}));
    let causes = validate_object_meta(res("", "services"), &obj);
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldValueTooLong");
    assert_eq!(
        messages(&causes),
        ["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
    let fits = service(
        json!({"name": "a", "namespace": "default", "annotations": {"k": "x".repeat(256 * 1024 - 1)}}),
    );
    assert!(validate_object_meta(res("", "services"), &fits).is_empty());
}

#[test]
fn finalizers() {
    let svc = res("", "services");
    let with = |f: Value| service(json!({"name": "a", "namespace": "default", "finalizers": f}));
    assert!(validate_object_meta(
        svc,
        &with(json!(["kubernetes", "orphan", "example.com/cleanup"]))
    )
    .is_empty());
    assert_eq!(
        messages(&validate_object_meta(svc, &with(json!(["cleanup"])))),
        ["metadata.finalizers[0]: Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified"]
    );
    assert_eq!(
        messages(&validate_object_meta(
            svc,
            &with(json!(["example.com/bad name"]))
        )),
        [format!(
            "metadata.finalizers: Invalid value: \"example.com/bad name\": {KEY_REGEX}"
        )]
    );
    assert_eq!(
        messages(&validate_object_meta(svc, &with(json!(["orphan", "foregroundDeletion"])))),
        ["metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"]
    );
    // Custom resources have no list of standard finalizers.
    let pool = json!({"metadata": {"name": "p", "namespace": "metallb-system", "finalizers": ["cleanup"]}});
    assert!(validate_object_meta(res("metallb.io", "ipaddresspools"), &pool).is_empty());
}

#[test]
fn owner_references_and_generation() {
    let obj = service(
        json!({"name": "a", "namespace": "default", "generation": -1, "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u1", "controller": true},
        {"apiVersion": "", "kind": "", "name": "", "uid": ""},
        {"apiVersion": "v1", "kind": "ReplicaSet", "name": "r", "uid": "u2", "controller": true}]}),
    );
    assert_eq!(
        messages(&validate_object_meta(res("", "services"), &obj))
            .iter()
            .map(|m| m.split(": [").next().unwrap().to_string())
            .collect::<Vec<_>>(),
        [
            "metadata.generation: Invalid value: -1: must be greater than or equal to 0",
            "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
            "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
            "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
            "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
            "metadata.ownerReferences: Invalid value",
        ]
    );
    let all = messages(&validate_object_meta(res("", "services"), &obj));
    assert!(all.last().unwrap().ends_with(
        "Only one reference can have Controller set to true. Found \"true\" in references for Deployment/d and ReplicaSet/r"
    ));
}

#[test]
fn updates_keep_identity_fields() {
    let svc = res("", "services");
    let old = service(
        json!({"name": "a", "namespace": "default", "uid": "u1", "resourceVersion": "5", "creationTimestamp": "2026-11-21T23:26:38Z", "generation": 2}),
    );
    let mut new = old.clone();
    assert!(validate_object_meta_update(svc, &old, &new).is_empty());
    new["metadata"]["name"] = json!("b");
    new["metadata"]["uid"] = json!("u2");
    new["metadata"]["generation"] = json!(1);
    new["metadata"]["resourceVersion"] = json!("");
    assert_eq!(
        messages(&validate_object_meta_update(svc, &old, &new)),
        [
            "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
            "metadata.generation: Invalid value: 1: must not be decremented",
            "metadata.name: Invalid value: \"b\": field is immutable",
            "metadata.uid: Invalid value: \"u2\": field is immutable",
        ]
    );
}

#[test]
fn no_new_finalizers_while_deleting() {
    let svc = res("", "services");
    let old = service(
        json!({"name": "a", "namespace": "default", "resourceVersion": "5",
        "deletionTimestamp": "2026-11-21T23:27:41Z", "finalizers": ["example.com/a"]}),
    );
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    let causes = validate_object_meta_update(svc, &old, &new);
    assert_eq!(
        messages(&causes),
        ["metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/b\"}"]
    );
}

#[test]
fn string_checks() {
    assert!(is_dns1123_label("1nginx").is_empty());
    assert_eq!(
        is_dns1123_label(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
    assert_eq!(is_dns1123_label(&format!("{}.b", "a".repeat(63))).len(), 2);
    assert!(is_dns1123_subdomain("a.b.c").is_empty());
    assert_eq!(is_dns1123_subdomain("a_b"), [SUBDOMAIN_REGEX]);
    assert_eq!(
        is_dns1035_label("1nginx"),
        ["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    );
    assert!(is_qualified_name("kubernetes.io/service-name").is_empty());
    assert_eq!(
        is_qualified_name(&"k".repeat(64)),
        ["name part must be no more than 63 characters"]
    );
    assert!(is_label_value("").is_empty());
    assert_eq!(
        is_label_value(&"v".repeat(64)),
        ["must be no more than 63 characters"]
    );
}
