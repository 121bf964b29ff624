//! Field selectors (`?fieldSelector=`), as `k8s.io/apimachinery/pkg/fields` parses and matches
//! them (`f=v`, `f==v`, `f!=v`, comma = AND, `\` escaping `\`, `,` and `=` in values), and, per
//! served resource, the field labels kube-apiserver 1.36 accepts and how their values are read
//! from an object.
//!
//! Using one against a resource is two steps, as in kube-apiserver: [`FieldSelector::parse`]
//! (syntax errors) and [`FieldSelector::convert_for`] (unsupported field labels, e.g.
//! `field label not supported: spec.foo`); both fail with a [`SelectorError`], a 400 BadRequest.
//! Then [`FieldSelector::matches_object`] filters.

use crate::registry::ResourceInfo;
pub use crate::selector::SelectorError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// `=`/`==` (the same term upstream) or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One `field=value` or `field!=value` term; `value` is unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// Whether the term holds for a field's value; a field the object does not have reads as
    /// `""`, as upstream `fields.Set.Get`.
    pub fn matches_value(&self, have: Option<&str>) -> bool {
        let have = have.unwrap_or("");
        match self.operator {
            FieldOperator::Equals => have == self.value,
            FieldOperator::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: terms ANDed together (in the order of their sorted source text, as
/// upstream); empty matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

const OPERATORS: [(&str, FieldOperator); 3] = [
    ("!=", FieldOperator::NotEquals),
    ("==", FieldOperator::Equals),
    ("=", FieldOperator::Equals),
];

impl FieldSelector {
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Upstream `fields.ParseSelector`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(selector);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, operator, rhs)) = split_term(part) else {
                return Err(SelectorError::new(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                )));
            };
            terms.push(FieldRequirement {
                field: lhs.to_string(),
                operator,
                value: unescape_value(rhs)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// A selector from terms (kept in the given order).
    pub fn from_terms(terms: Vec<FieldRequirement>) -> Self {
        FieldSelector { terms }
    }

    pub fn terms(&self) -> &[FieldRequirement] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every term matches, reading field values through `get` (e.g.
    /// `|f| field_value(res, obj, f)`).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms
            .iter()
            .all(|t| t.matches_value(get(&t.field).as_deref()))
    }

    /// Whether every term matches a field set (upstream `fields.Set`).
    pub fn matches_set(&self, fields: &BTreeMap<String, String>) -> bool {
        self.terms
            .iter()
            .all(|t| t.matches_value(fields.get(&t.field).map(String::as_str)))
    }

    /// Matches one object of `res` (its [`field_set`]).
    pub fn matches_object(&self, res: &ResourceInfo, obj: &Value) -> bool {
        self.is_empty() || self.matches_set(&field_set(res, obj))
    }

    /// The value a field must have (`f=v`), for index lookups such as `metadata.name`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }

    /// kube-apiserver's `Transform(ConvertFieldLabel)`: every field label must be supported by
    /// `res`; some are renamed (a Pod's `spec.host` is `spec.nodeName`). The first unsupported
    /// label (in term order) is the error.
    pub fn convert_for(&self, res: &ResourceInfo) -> Result<FieldSelector, SelectorError> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let field = convert_field_label(res, &t.field)?;
            terms.push(FieldRequirement {
                field,
                operator: t.operator,
                value: t.value.clone(),
            });
        }
        Ok(FieldSelector { terms })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Splits on commas not preceded by a backslash; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// The first operator occurrence splits the term; the field name has no escaping.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in OPERATORS {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

/// Upstream `fields.EscapeValue`: `\` → `\\`, `,` → `\,`, `=` → `\=`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream `fields.UnescapeValue`, with its errors (an unescaped `,` or `=` is reported by its
/// code point, e.g. `unescaped character in value: 61`).
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if matches!(c, '\\' | ',' | '=') {
                out.push(c);
            } else {
                return Err(SelectorError::new(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError::new(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::new(
            "invalid field selector: invalid escape sequence: \\",
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Field labels per resource
// ---------------------------------------------------------------------------------------------

const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const NODE_FIELDS: &[&str] = &["metadata.name", "spec.unschedulable"];
const EVENT_FIELDS: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
    "metadata.namespace",
    "metadata.name",
];
const NAMESPACE_FIELDS: &[&str] = &["status.phase", "metadata.name"];
const SECRET_FIELDS: &[&str] = &["type", "metadata.namespace", "metadata.name"];
const SERVICE_FIELDS: &[&str] = &[
    "metadata.namespace",
    "metadata.name",
    "spec.clusterIP",
    "spec.type",
];
const META_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];
const CLUSTER_CR_FIELDS: &[&str] = &["metadata.name"];

/// How kube-apiserver converts field labels for a kind.
enum Conversion {
    /// A conversion function registered for the kind (core/v1 Pod, Node, Event, Namespace,
    /// Secret, Service): unknown labels fail with `field label not supported: <label>`.
    Registered(&'static [&'static str]),
    /// Custom resources (apiextensions' converter): same message.
    CustomResource(&'static [&'static str]),
    /// No function registered: `runtime.DefaultMetaV1FieldSelectorConversion`.
    Default,
}

fn conversion(res: &ResourceInfo) -> Conversion {
    match (res.group, res.kind) {
        ("", "Pod") => Conversion::Registered(POD_FIELDS),
        ("", "Node") => Conversion::Registered(NODE_FIELDS),
        ("", "Event") => Conversion::Registered(EVENT_FIELDS),
        ("", "Namespace") => Conversion::Registered(NAMESPACE_FIELDS),
        ("", "Secret") => Conversion::Registered(SECRET_FIELDS),
        ("", "Service") => Conversion::Registered(SERVICE_FIELDS),
        ("metallb.io", _) if res.namespaced => Conversion::CustomResource(META_FIELDS),
        ("metallb.io", _) => Conversion::CustomResource(CLUSTER_CR_FIELDS),
        _ => Conversion::Default,
    }
}

/// The field labels `?fieldSelector=` accepts for a resource (kube-apiserver 1.36). Cluster-scoped
/// built-ins without their own conversion (IngressClass) still accept `metadata.namespace`, which
/// then only matches `""`.
pub fn supported_fields(res: &ResourceInfo) -> &'static [&'static str] {
    match conversion(res) {
        Conversion::Registered(f) | Conversion::CustomResource(f) => f,
        Conversion::Default => META_FIELDS,
    }
}

/// kube-apiserver's `ConvertFieldLabel` for one label: the (possibly renamed) label, or the
/// upstream error text.
pub fn convert_field_label(res: &ResourceInfo, label: &str) -> Result<String, SelectorError> {
    match conversion(res) {
        Conversion::Registered(fields) => {
            if fields.contains(&label) {
                Ok(label.to_string())
            } else if res.kind == "Pod" && label == "spec.host" {
                // Old v1 clients sent spec.host.
                Ok("spec.nodeName".to_string())
            } else {
                Err(SelectorError::new(format!(
                    "field label not supported: {label}"
                )))
            }
        }
        Conversion::CustomResource(fields) => {
            if fields.contains(&label) {
                Ok(label.to_string())
            } else {
                Err(SelectorError::new(format!(
                    "field label not supported: {label}"
                )))
            }
        }
        Conversion::Default => {
            if META_FIELDS.contains(&label) {
                Ok(label.to_string())
            } else {
                Err(SelectorError::new(format!(
                    "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )))
            }
        }
    }
}

/// Checks that every field label of `selector` is supported by `res` (the error of
/// [`FieldSelector::convert_for`], without the conversion).
pub fn check_supported(res: &ResourceInfo, selector: &FieldSelector) -> Result<(), SelectorError> {
    selector.convert_for(res).map(|_| ())
}

/// One selectable field of an object (see [`field_set`]); `None` if the resource has no such
/// field, which selectors read as `""`.
pub fn field_value(res: &ResourceInfo, obj: &Value, field: &str) -> Option<String> {
    field_set(res, obj).remove(field)
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut v = obj;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return "",
        }
    }
    v.as_str().unwrap_or("")
}

fn bool_at(obj: &Value, path: &[&str]) -> bool {
    let mut v = obj;
    for p in path {
        match v.get(p) {
            Some(next) => v = next,
            None => return false,
        }
    }
    v.as_bool().unwrap_or(false)
}

/// A Pod's primary IP as the internal type holds it: `status.podIP` wins over `status.podIPs`.
pub(crate) fn pod_ip(obj: &Value) -> &str {
    let ip = str_at(obj, &["status", "podIP"]);
    if !ip.is_empty() {
        return ip;
    }
    obj.pointer("/status/podIPs/0/ip")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The values of an object's selectable fields (upstream `GetAttrs` / `ToSelectableFields`).
/// Labels a resource accepts but never sets (a Pod's `status.podIPs`) are absent and read as "".
pub fn field_set(res: &ResourceInfo, obj: &Value) -> BTreeMap<String, String> {
    let mut set = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        set.insert(k.to_string(), v.to_string());
    };
    put("metadata.name", crate::meta::name(obj));
    if res.namespaced {
        put(
            "metadata.namespace",
            crate::meta::namespace(obj).unwrap_or(""),
        );
    }
    match (res.group, res.kind) {
        ("", "Pod") => {
            put("spec.nodeName", str_at(obj, &["spec", "nodeName"]));
            put(
                "spec.restartPolicy",
                str_at(obj, &["spec", "restartPolicy"]),
            );
            put(
                "spec.schedulerName",
                str_at(obj, &["spec", "schedulerName"]),
            );
            let mut sa = str_at(obj, &["spec", "serviceAccountName"]);
            if sa.is_empty() {
                sa = str_at(obj, &["spec", "serviceAccount"]);
            }
            put("spec.serviceAccountName", sa);
            put(
                "spec.hostNetwork",
                if bool_at(obj, &["spec", "hostNetwork"]) {
                    "true"
                } else {
                    "false"
                },
            );
            put("status.phase", str_at(obj, &["status", "phase"]));
            put("status.podIP", pod_ip(obj));
            put(
                "status.nominatedNodeName",
                str_at(obj, &["status", "nominatedNodeName"]),
            );
        }
        ("", "Node") => {
            put(
                "spec.unschedulable",
                if bool_at(obj, &["spec", "unschedulable"]) {
                    "true"
                } else {
                    "false"
                },
            );
        }
        ("", "Namespace") => {
            put("status.phase", str_at(obj, &["status", "phase"]));
            // Upstream keeps a bare "name" for backward compatibility (not selectable through
            // the conversion, which refuses it).
            put("name", crate::meta::name(obj));
        }
        ("", "Secret") => put("type", str_at(obj, &["type"])),
        ("", "Service") => {
            put("spec.clusterIP", str_at(obj, &["spec", "clusterIP"]));
            put("spec.type", str_at(obj, &["spec", "type"]));
        }
        ("", "Event") => {
            for f in [
                "kind",
                "namespace",
                "name",
                "uid",
                "apiVersion",
                "resourceVersion",
                "fieldPath",
            ] {
                put(
                    &format!("involvedObject.{f}"),
                    str_at(obj, &["involvedObject", f]),
                );
            }
            put("reason", str_at(obj, &["reason"]));
            put("reportingComponent", str_at(obj, &["reportingComponent"]));
            let mut source = str_at(obj, &["source", "component"]);
            if source.is_empty() {
                source = str_at(obj, &["reportingComponent"]);
            }
            put("source", source);
            put("type", str_at(obj, &["type"]));
        }
        _ => {}
    }
    set
}
