//! Generic `ObjectMeta` validation with kube-apiserver's messages: the name rules (DNS-1123
//! subdomain and label, DNS-1035 label), `generateName`, labels, annotations, owner references
//! and finalizers, as `k8s.io/apimachinery/pkg/api/validation` and `pkg/apis/core/validation`
//! check them. Every check returns [`Cause`]s with the field path kube-apiserver reports
//! (`metadata.name`, `metadata.labels`); the apiserver wraps them in `ApiError::invalid`.
//!
//! The string checks (`is_dns1123_label`, `is_qualified_name`, ...) return the bare messages, the
//! way `k8s.io/apimachinery/pkg/util/validation` does, so other validators (and the label
//! selector parser) can reuse them.

use crate::errors::Cause;
use crate::registry::ResourceInfo;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------------
// String formats (k8s.io/apimachinery/pkg/util/validation, .../api/validate/content)
// ---------------------------------------------------------------------------------------------

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
/// A label's maximum length in DNS (RFC 1123).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;

const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
/// A subdomain's maximum length in DNS (RFC 1123).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
/// A label's maximum length in DNS (RFC 1035).
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
/// A label value's maximum length.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

/// The total size of all annotations (keys plus values), 256 KiB.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * (1 << 10);

/// `must be no more than 63 characters`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `must be non-empty`.
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// Upstream `RegexError`, including its double space between examples
/// (`(e.g. 'my-name',  or '123-abc', regex used for validation is '...')`).
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?` joined by dots.
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    s.as_bytes().first().is_some_and(|b| b.is_ascii_lowercase()) && matches_dns1123_label(s)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// Upstream `IsDNS1123Label`: a lowercase RFC 1123 label (namespace names, Service names).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: since the length was checked, it must be dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Upstream `IsDNS1123Subdomain`: most object names.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream `IsQualifiedName`: label keys, annotation keys, finalizers
/// (`[prefix/]name`, the prefix a DNS subdomain, the name at most 63 characters).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream `IsValidLabelValue`: empty, or a qualified-name part of at most 63 characters.
pub fn is_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Name validation functions (ValidateNameFunc)
// ---------------------------------------------------------------------------------------------

/// Upstream `ValidateNameFunc`: validates a name, or with `prefix` a `generateName` prefix.
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// A `generateName` prefix may end in `-`; upstream masks it before checking. The mask replaces
/// the last *two* characters with `a`, a quirk kept for identical results.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let mut cut = name.len() - 2;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}a", &name[..cut])
    } else {
        name.to_string()
    }
}

/// Upstream `NameIsDNSSubdomain`: most resources.
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_dns1123_subdomain(&mask_trailing_dash(name));
    }
    is_dns1123_subdomain(name)
}

/// Upstream `NameIsDNSLabel`: namespaces, and Services in 1.36 (RelaxedServiceNameValidation).
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_dns1123_label(&mask_trailing_dash(name));
    }
    is_dns1123_label(name)
}

/// Upstream `NameIsDNS1035Label`: Service names before 1.34.
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_dns1035_label(&mask_trailing_dash(name));
    }
    is_dns1035_label(name)
}

/// Upstream `ValidateNamespaceName`.
pub fn validate_namespace_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_label(name, prefix)
}

/// The name rule kube-apiserver 1.36 applies to a resource: namespaces and Services are RFC 1123
/// labels (Services since the RelaxedServiceNameValidation gate went on by default, so `1nginx`
/// is accepted and `a.b` is refused with "must not contain dots"); every other served resource,
/// including MetalLB's custom resources, is an RFC 1123 subdomain.
pub fn name_validator(res: &ResourceInfo) -> NameFn {
    match (res.group, res.plural) {
        ("", "namespaces") | ("", "services") => name_is_dns_label,
        _ => name_is_dns_subdomain,
    }
}

/// Custom resources go through apiextensions' validator, which has no legacy finalizer check.
fn is_custom_resource(res: &ResourceInfo) -> bool {
    res.group == "metallb.io"
}

// ---------------------------------------------------------------------------------------------
// ObjectMeta
// ---------------------------------------------------------------------------------------------

fn meta_string<'a>(meta: &'a Map<String, Value>, key: &str) -> &'a str {
    meta.get(key).and_then(Value::as_str).unwrap_or("")
}

/// String entries of a metadata map field, sorted by key (Go iterates maps randomly; we pick
/// the deterministic order).
fn string_map(meta: &Map<String, Value>, key: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = meta
        .get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Upstream `ValidateLabelName`.
pub fn validate_label_name(name: &str, field: &str) -> Vec<Cause> {
    is_qualified_name(name)
        .iter()
        .map(|m| Cause::invalid(field, &json!(name), m))
        .collect()
}

/// Upstream `ValidateLabels`: every key a qualified name, every value a label value. The field is
/// the map itself (`metadata.labels`), not the key.
pub fn validate_labels<'a>(
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    field: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (k, v) in labels {
        causes.extend(validate_label_name(k, field));
        causes.extend(
            is_label_value(v)
                .iter()
                .map(|m| Cause::invalid(field, &json!(v), m)),
        );
    }
    causes
}

/// Upstream `ValidateAnnotations`: keys are qualified names compared case-insensitively, and all
/// keys and values together may not exceed 256 KiB.
pub fn validate_annotations<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    field: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for m in is_qualified_name(&k.to_lowercase()) {
            causes.push(Cause::invalid(field, &json!(k), &m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        causes.push(Cause::new(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT_B} bytes"),
        ));
    }
    causes
}

/// Upstream `ValidateFinalizerName`.
pub fn validate_finalizer_name(name: &str, field: &str) -> Vec<Cause> {
    is_qualified_name(name)
        .iter()
        .map(|m| Cause::invalid(field, &json!(name), m))
        .collect()
}

/// Finalizers every built-in type accepts without a domain prefix.
pub const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Upstream `ValidateFinalizers`: names (reported on the list field, unindexed, as upstream does)
/// and the orphan/foregroundDeletion conflict.
pub fn validate_finalizers(finalizers: &[String], field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for f in finalizers {
        causes.extend(validate_finalizer_name(f, field));
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        causes.push(Cause::invalid(
            field,
            &json!(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    causes
}

/// The built-in types' extra check (`validateKubeFinalizerName`): a finalizer without a `/`
/// must be one of [`STANDARD_FINALIZERS`]. Reported per index.
fn validate_kube_finalizer_name(name: &str, field: &str) -> Vec<Cause> {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        return vec![Cause::invalid(
            field,
            &json!(name),
            "name is neither a standard finalizer name nor is it fully qualified",
        )];
    }
    Vec::new()
}

/// Upstream `ValidateOwnerReferences`. The field is the list (`metadata.ownerReferences`) and its
/// children (`metadata.ownerReferences.uid`), unindexed, as upstream reports them.
pub fn validate_owner_references(refs: &[Value], field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let (api_version, kind, name, uid) =
            (get("apiVersion"), get("kind"), get("name"), get("uid"));
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if version.is_empty() {
            causes.push(Cause::invalid(
                format!("{field}.apiVersion"),
                &json!(api_version),
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            causes.push(Cause::invalid(
                format!("{field}.kind"),
                &json!(kind),
                "must not be empty",
            ));
        }
        if name.is_empty() {
            causes.push(Cause::invalid(
                format!("{field}.name"),
                &json!(name),
                "must not be empty",
            ));
        }
        if uid.is_empty() {
            causes.push(Cause::invalid(
                format!("{field}.uid"),
                &json!(uid),
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            causes.push(Cause::invalid(
                field,
                r,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => causes.push(Cause::invalid(
                    field,
                    &Value::Array(refs.to_vec()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    causes
}

/// How to validate one object's metadata; [`ObjectMetaRules::for_resource`] picks what
/// kube-apiserver uses for a served resource.
#[derive(Debug, Clone, Copy)]
pub struct ObjectMetaRules {
    pub requires_namespace: bool,
    pub name_fn: NameFn,
    /// Built-in types also refuse unqualified, non-standard finalizer names.
    pub kube_finalizers: bool,
}

impl ObjectMetaRules {
    pub fn for_resource(res: &ResourceInfo) -> Self {
        ObjectMetaRules {
            requires_namespace: res.namespaced,
            name_fn: name_validator(res),
            kube_finalizers: !is_custom_resource(res),
        }
    }
}

/// Labels, annotations and owner references: the checks create and update share.
fn validate_meta_maps(meta: &Map<String, Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let labels = string_map(meta, "labels");
    causes.extend(validate_labels(
        labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        "metadata.labels",
    ));
    let annotations = string_map(meta, "annotations");
    causes.extend(validate_annotations(
        annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        "metadata.annotations",
    ));
    let owners = meta
        .get("ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    causes.extend(validate_owner_references(
        &owners,
        "metadata.ownerReferences",
    ));
    causes
}

/// Upstream `ValidateObjectMeta` (plus the core types' finalizer check) for `obj.metadata`.
/// The order of causes follows upstream: generateName, name, namespace, generation, labels,
/// annotations, ownerReferences, finalizers.
pub fn validate_object_meta_with(obj: &Value, rules: ObjectMetaRules) -> Vec<Cause> {
    let empty = Map::new();
    let meta = obj
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut causes = Vec::new();

    let generate_name = meta_string(meta, "generateName");
    if !generate_name.is_empty() {
        for m in (rules.name_fn)(generate_name, true) {
            causes.push(Cause::invalid(
                "metadata.generateName",
                &json!(generate_name),
                &m,
            ));
        }
    }
    let name = meta_string(meta, "name");
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for m in (rules.name_fn)(name, false) {
            causes.push(Cause::invalid("metadata.name", &json!(name), &m));
        }
    }
    let namespace = meta_string(meta, "namespace");
    if rules.requires_namespace {
        if namespace.is_empty() {
            causes.push(Cause::required("metadata.namespace", ""));
        } else {
            for m in validate_namespace_name(namespace, false) {
                causes.push(Cause::invalid("metadata.namespace", &json!(namespace), &m));
            }
        }
    } else if !namespace.is_empty() {
        causes.push(Cause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        if generation < 0 {
            causes.push(Cause::invalid(
                "metadata.generation",
                &json!(generation),
                "must be greater than or equal to 0",
            ));
        }
    }
    causes.extend(validate_meta_maps(meta));
    let finalizers = crate::meta::finalizers(obj);
    causes.extend(validate_finalizers(&finalizers, "metadata.finalizers"));
    if rules.kube_finalizers {
        for (i, f) in finalizers.iter().enumerate() {
            causes.extend(validate_kube_finalizer_name(
                f,
                &format!("metadata.finalizers[{i}]"),
            ));
        }
    }
    causes
}

/// `ValidateObjectMeta` with the rules kube-apiserver uses for `res`.
pub fn validate_object_meta(res: &ResourceInfo, obj: &Value) -> Vec<Cause> {
    validate_object_meta_with(obj, ObjectMetaRules::for_resource(res))
}

/// Upstream `ValidateObjectMetaUpdate(new, old)`: what an update may not change, plus the label,
/// annotation, owner and finalizer checks on the new metadata. Note the argument order: the
/// stored object first, then the object that replaces it.
pub fn validate_object_meta_update(res: &ResourceInfo, old: &Value, new: &Value) -> Vec<Cause> {
    let empty = Map::new();
    let nm = new
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let om = old
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut causes = Vec::new();

    if om.get("deletionTimestamp").is_some_and(|v| !v.is_null()) {
        let old_f: BTreeSet<String> = crate::meta::finalizers(old).into_iter().collect();
        let extra: BTreeSet<String> = crate::meta::finalizers(new)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            causes.push(Cause::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    let rv = meta_string(nm, "resourceVersion");
    if rv.is_empty() {
        causes.push(Cause::invalid(
            "metadata.resourceVersion",
            &json!(rv),
            "must be specified for an update",
        ));
    }
    let generation =
        |m: &Map<String, Value>| m.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if generation(nm) < generation(om) {
        causes.push(Cause::invalid(
            "metadata.generation",
            &json!(generation(nm)),
            "must not be decremented",
        ));
    }
    for key in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let n = nm.get(key).cloned().unwrap_or(Value::Null);
        let o = om.get(key).cloned().unwrap_or(Value::Null);
        let blank = |v: &Value| v.is_null() || v.as_str() == Some("");
        if n != o && !(blank(&n) && blank(&o)) {
            let shown = if n.is_null() && (key == "name" || key == "namespace" || key == "uid") {
                json!("")
            } else {
                n.clone()
            };
            causes.push(Cause::invalid(
                format!("metadata.{key}"),
                &shown,
                "field is immutable",
            ));
        }
    }
    causes.extend(validate_meta_maps(nm));
    if !is_custom_resource(res) {
        for (i, f) in crate::meta::finalizers(new).iter().enumerate() {
            causes.extend(validate_kube_finalizer_name(
                f,
                &format!("metadata.finalizers[{i}]"),
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_regex_shapes() {
        assert!(matches_dns1123_label("a"));
        assert!(matches_dns1123_label("1nginx"));
        assert!(!matches_dns1123_label("-a"));
        assert!(!matches_dns1123_label("a-"));
        assert!(!matches_dns1123_label(""));
        assert!(matches_dns1123_subdomain("a.b-c.d"));
        assert!(!matches_dns1123_subdomain("a..b"));
        assert!(!matches_dns1035_label("1a"));
        assert!(matches_qualified_name_part("My_Name.1"));
        assert!(!matches_qualified_name_part("_x"));
    }

    #[test]
    fn trailing_dash_mask_drops_two_characters() {
        assert_eq!(mask_trailing_dash("gen-svc-"), "gen-sva");
        assert_eq!(mask_trailing_dash("-"), "-");
        assert_eq!(mask_trailing_dash("ab"), "ab");
    }
}
