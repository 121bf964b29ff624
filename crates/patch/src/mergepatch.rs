//! JSON merge patch (RFC 7386, `application/merge-patch+json`) as kube-apiserver applies it:
//! `json-patch`'s merge, with the decode errors and the null pruning of `evanphx/json-patch`.

use crate::gojson;
use model::ApiError;
use serde_json::Value;

/// Applies a merge patch body to `original`: objects merge key by key, `null` deletes a key, any
/// other value (lists included) replaces what was there.
pub fn merge_patch(original: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let patch = decode_patch_object(patch)?;
    if patch.is_null() {
        // A `null` body decodes into a nil map, which evanphx rejects.
        return Err(ApiError::bad_request("Invalid JSON Patch"));
    }
    let mut patched = original.clone();
    json_patch::merge(&mut patched, &prune_nulls_in_lists(patch));
    Ok(patched)
}

/// The body must decode into `map[string]interface{}`; kube-apiserver reports anything else with
/// the decoder's words (kubectl turns `-p 'not json'` into the JSON string `"not json"`).
fn decode_patch_object(body: &[u8]) -> Result<Value, ApiError> {
    let value = gojson::parse(body).map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match &value {
        Value::Object(_) | Value::Null => Ok(value),
        other => Err(ApiError::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            gojson::json_kind(other)
        ))),
    }
}

/// A value the patch sets is stored without the `null` members of objects nested in lists
/// (RFC 7386 only prunes nested objects; evanphx also prunes inside lists).
fn prune_nulls_in_lists(patch: Value) -> Value {
    fn prune(v: Value, in_list: bool) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !(in_list && v.is_null()))
                    .map(|(k, v)| (k, prune(v, in_list)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| prune(v, true)).collect()),
            other => other,
        }
    }
    prune(patch, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_are_replaced_and_null_deletes() {
        let svc = json!({"metadata": {"labels": {"app": "nginx"}}, "spec": {"ports": [{"port": 80}, {"port": 443}]}});
        let out = merge_patch(&svc, br#"{"metadata":{"labels":{"tier":"backend","app":null}},"spec":{"ports":[{"name":"metrics","port":9090}]}}"#).unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"tier": "backend"}}, "spec": {"ports": [{"name": "metrics", "port": 9090}]}}));
    }

    #[test]
    fn a_string_body_is_rejected_like_kube() {
        let err = merge_patch(&json!({}), br#""not json""#).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "error decoding patch: json: cannot unmarshal string into Go value of type map[string]interface {}");
    }

    #[test]
    fn nulls_inside_lists_are_pruned() {
        let out = merge_patch(&json!({}), br#"{"a":[{"x":null,"y":1}]}"#).unwrap();
        assert_eq!(out, json!({"a": [{"y": 1}]}));
    }
}
