//! API errors as kube-apiserver reports them: a `Status` object with an HTTP code, a reason
//! and, for validation failures, field causes.

use serde_json::{json, Map, Value};

/// One field cause of an `Invalid` error (`spec.ports[0].port: Invalid value: 0: must be ...`).
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueDuplicate`, `FieldValueNotSupported`, `FieldValueForbidden`, `FieldValueTooLong`, ...
    pub reason: String,
    /// The message without the field prefix: `Invalid value: 0: must be between 1 and 65535, inclusive`.
    pub message: String,
    /// The field path: `spec.ports[0].port`.
    pub field: String,
}

impl Cause {
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause { reason: reason.to_string(), message: message.into(), field: field.into() }
    }
    /// `field: Invalid value: <value>: <detail>`; `value` is rendered as kube-apiserver does (strings quoted).
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        Cause::new("FieldValueInvalid", field, format!("Invalid value: {}: {}", render_value(value), detail))
    }
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let message = if detail.is_empty() { "Required value".to_string() } else { format!("Required value: {detail}") };
        Cause::new("FieldValueRequired", field, message)
    }
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Cause::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Cause::new("FieldValueDuplicate", field, format!("Duplicate value: {}", render_value(value)))
    }
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause::new(
            "FieldValueNotSupported",
            field,
            format!("Unsupported value: {}: supported values: {}", render_value(value), list.join(", ")),
        )
    }
}

/// Renders a value inside an error message the way Go's `%#v`-ish field error printing does.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// An error answered as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// `details`, absent when `None`. `Some(empty map)` renders `"details": {}`.
    pub details: Option<Map<String, Value>>,
    /// `metadata.continue` of the Status (a 410 for an expired continue token carries a new one).
    pub metadata_continue: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn details(name: &str, kind: &str) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    if !name.is_empty() {
        m.insert("name".into(), json!(name));
    }
    m.insert("kind".into(), json!(kind));
    Some(m)
}

fn details_group(name: &str, group: &str, kind: &str) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    if !name.is_empty() {
        m.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        m.insert("group".into(), json!(group));
    }
    m.insert("kind".into(), json!(kind));
    Some(m)
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError { code, reason: reason.to_string(), message: message.into(), details: None, metadata_continue: None }
    }

    /// `services "x" not found` (404). `resource` is the plural, `group` the API group.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
        ApiError {
            code: 404,
            reason: "NotFound".into(),
            message: format!("{qualified} \"{name}\" not found"),
            details: details_group(name, group, resource),
            metadata_continue: None,
        }
    }

    /// `services "x" already exists` (409).
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
        ApiError {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!("{qualified} \"{name}\" already exists"),
            details: details_group(name, group, resource),
            metadata_continue: None,
        }
    }

    /// Optimistic concurrency failure (409).
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
        ApiError {
            code: 409,
            reason: "Conflict".into(),
            message: format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"),
            details: details_group(name, group, resource),
            metadata_continue: None,
        }
    }

    /// The standard stale-resourceVersion conflict.
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `Service "x" is invalid: [a, b]` (422) with field causes.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let rendered: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        let summary = if rendered.len() == 1 { rendered[0].clone() } else { format!("[{}]", rendered.join(", ")) };
        let qualified = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let mut d = details_group(name, group, kind).unwrap();
        d.insert(
            "causes".into(),
            Value::Array(
                causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect(),
            ),
        );
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: format!("{qualified} \"{name}\" is invalid: {summary}"),
            details: Some(d),
            metadata_continue: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 410 Gone for a compacted resourceVersion: `too old resource version: 1 (623)`.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        let mut e = Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: {content_type}"));
        e.details = Some(Map::new());
        e
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let qualified = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") };
        ApiError {
            code: 403,
            reason: "Forbidden".into(),
            message: format!("{qualified} \"{name}\" is forbidden: {why}"),
            details: details_group(name, group, resource),
            metadata_continue: None,
        }
    }

    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let mut e = Self::new(500, "InternalError", format!("Internal error occurred: {}", message.into()));
        let mut d = Map::new();
        d.insert("causes".into(), json!([{"message": e.message.trim_start_matches("Internal error occurred: ")}]));
        e.details = Some(d);
        e
    }

    /// Replaces or sets `details` for callers that need a specific shape.
    pub fn with_details(mut self, name: &str, kind: &str) -> Self {
        self.details = details(name, kind);
        self
    }

    /// The `Status` object, field order as kube-apiserver writes it.
    pub fn to_status(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("Status"));
        m.insert("apiVersion".into(), json!("v1"));
        let mut meta = Map::new();
        if let Some(c) = &self.metadata_continue {
            meta.insert("continue".into(), json!(c));
        }
        m.insert("metadata".into(), Value::Object(meta));
        m.insert("status".into(), json!("Failure"));
        m.insert("message".into(), json!(self.message));
        // Plain Go errors surface as a Status with no reason; kube omits the empty field.
        if !self.reason.is_empty() {
            m.insert("reason".into(), json!(self.reason));
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), Value::Object(d.clone()));
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}

/// A `Status` of success, as returned by some deletes.
pub fn status_success(details: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("Status"));
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("metadata".into(), json!({}));
    m.insert("status".into(), json!("Success"));
    if let Some(d) = details {
        m.insert("details".into(), d);
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_kube() {
        let s = ApiError::not_found("", "services", "does-not-exist").to_status();
        assert_eq!(
            s.to_string(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"does-not-exist\" not found","reason":"NotFound","details":{"name":"does-not-exist","kind":"services"},"code":404}"#
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "",
            "Service",
            "bad-svc",
            vec![
                Cause::invalid("spec.ports[0].port", &json!(0), "must be between 1 and 65535, inclusive"),
                Cause::duplicate("spec.ports[1].name", &json!("http")),
            ],
        );
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Service \"bad-svc\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[1].name: Duplicate value: \"http\"]"
        );
    }
}
