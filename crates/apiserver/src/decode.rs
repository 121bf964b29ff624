//! Turning a request body into an object of the right kind, with kube-apiserver's errors:
//! unparsable bodies, a wrong kind, wrong JSON types and (per `fieldValidation`) unknown fields.

use crate::negotiate::BodyType;
use model::{ApiError, ResourceInfo};
use serde_json::Value;

/// `fieldValidation`: what to do with fields the schema doesn't declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The largest body kube-apiserver accepts (`--max-request-body-bytes` default, 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Parses JSON or YAML into a value; errors say what kube-apiserver says.
pub fn parse_body(bytes: &[u8], bt: BodyType, res: &ResourceInfo) -> Result<Value, ApiError> {
    let parsed: Result<Value, String> = match bt {
        BodyType::Yaml | BodyType::ApplyYaml => {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string());
            text.and_then(|t| {
                if t.trim_start().starts_with('{') || t.trim_start().starts_with('[') {
                    patch::parse_json(t.as_bytes())
                } else {
                    serde_saphyr::from_str::<Value>(t).map_err(|e| format!("error converting YAML to JSON: {e}"))
                }
            })
        }
        BodyType::ApplyCbor => Err("CBOR is not supported".to_string()),
        BodyType::Protobuf => {
            return match schema::protobuf::decode(bytes) {
                Ok(v) => Ok(v),
                // Custom resources have no protobuf form: kube-apiserver answers 415.
                Err(e @ schema::protobuf::ProtobufError::CustomResource { .. }) => {
                    let mut err = ApiError::new(415, "UnsupportedMediaType", e.to_string());
                    err.details = Some(serde_json::Map::new());
                    Err(err)
                }
                Err(e) => Err(ApiError::bad_request(e.to_string())),
            }
        }
        _ => patch::parse_json(bytes),
    };
    parsed.map_err(|e| {
        let snippet: String = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
        ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e} ({snippet})",
            res.kind
        ))
    })
}

/// Checks that a full object (create, update) names the resource's kind and version, and that
/// its fields have the schema's types. Returns warnings for unknown fields (or fails under Strict)
/// and removes them, as decoding into kube's typed structs does.
pub fn admit_body(obj: &mut Value, res: &ResourceInfo, fv: FieldValidation, require_type_meta: bool) -> Result<Vec<String>, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            res.kind,
            json_type_name(obj)
        )));
    }
    let (api_version, kind) = model::meta::type_meta(obj);
    let (api_version, kind) = (api_version.map(str::to_string), kind.map(str::to_string));
    match (&api_version, &kind) {
        (Some(av), Some(k)) => {
            let (g, v) = model::registry::split_api_version(av);
            if k != res.kind || g != res.group {
                return Err(ApiError::bad_request(format!(
                    "{k} in version \"{v}\" cannot be handled as a {}: converting ({v}.{k}) to ({}.{}): unknown conversion",
                    res.kind,
                    if res.group.is_empty() { "core" } else { res.group.split('.').next().unwrap_or(res.group) },
                    res.kind
                )));
            }
            if v != res.version {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    res.api_version()
                )));
            }
        }
        (None, Some(_)) if require_type_meta => {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{}'",
                serde_json::to_string(obj).unwrap_or_default()
            )))
        }
        (_, None) if require_type_meta => {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                serde_json::to_string(obj).unwrap_or_default()
            )))
        }
        _ => {}
    }
    let m = obj.as_object_mut().unwrap();
    m.insert("apiVersion".into(), Value::String(res.api_version()));
    m.insert("kind".into(), Value::String(res.kind.to_string()));
    if m.get("metadata").is_some_and(|v| v.is_null()) {
        m.shift_remove("metadata");
    }
    let cannot = |e: String| ApiError::bad_request(format!("{} in version \"{}\" cannot be handled as a {}: {e}", res.kind, res.version, res.kind));
    schema::check_types(res.definition, obj).map_err(|e| cannot(e.to_string()))?;
    let unknown = schema::unknown_fields(res.definition, obj);
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match fv {
            FieldValidation::Strict => {
                let list: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                return Err(cannot(format!("strict decoding error: {}", list.join(", "))));
            }
            FieldValidation::Warn => warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\""))),
            FieldValidation::Ignore => {}
        }
        schema::prune_unknown(res.definition, obj);
    }
    // What decoding into Go structs (or CRD defaulting) does to representable values.
    schema::normalize(res.definition, obj);
    let crd_errors = schema::custom_resource_errors(res.definition, obj);
    if !crd_errors.is_empty() {
        let name = model::meta::name(obj).to_string();
        let causes = crd_errors.iter().map(|e| model::Cause::new(e.reason, e.field.clone(), e.message.clone())).collect();
        return Err(ApiError::invalid(res.group, res.kind, &name, causes));
    }
    Ok(warnings)
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
