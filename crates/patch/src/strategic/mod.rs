//! Strategic merge patch (`application/strategic-merge-patch+json`), kube's own patch format,
//! following `k8s.io/apimachinery/pkg/util/strategicpatch` as kube-apiserver runs it
//! (`StrategicMergeMapPatch`, with parallel lists merged and unmatched nulls ignored).
//!
//! Like a merge patch, maps merge recursively and `null` deletes a key. What the schema adds is
//! per-field strategy: lists with `x-kubernetes-patch-strategy: merge` merge by their
//! `x-kubernetes-patch-merge-key` (or, for scalars, as a union) instead of being replaced. The
//! patch may carry directives: `$patch: replace | delete` on a map or list item,
//! `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and `$retainKeys`.

mod list;

use crate::typed::schema::Atom;
use crate::typed::TypeRef;
use crate::{gojson, mergepatch, status};
use model::{ApiError, ResourceInfo};
use serde_json::{Map, Value};

pub(crate) const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Applies a strategic merge patch body to `original`, with the merge keys and strategies of
/// the kind's schema. Kinds without a schema get merge-patch semantics.
pub fn strategic_merge_patch(info: &ResourceInfo, original: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let ty = TypeRef::definition(info.definition);
    if ty.is_untyped() {
        return mergepatch::merge_patch(original, patch);
    }
    let patch = gojson::parse(patch).map_err(ApiError::bad_request)?;
    let patch = match patch {
        Value::Object(map) => map,
        // A `null` body decodes into a nil map: nothing to merge.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                gojson::json_kind(&other)
            )))
        }
    };
    let original = original.as_object().cloned().unwrap_or_default();
    merge_map(original, patch, ty).map(Value::Object).map_err(SmpError::into_api_error)
}

/// How strategic merge patch fails; kube-apiserver maps each kind to a status code.
#[derive(Debug)]
pub(crate) enum SmpError {
    /// A malformed directive: 400.
    BadRequest(&'static str),
    /// Lists of lists, or content outside `$retainKeys`: 422.
    Unprocessable(&'static str),
    /// Anything else is a plain error: 500.
    Other(String),
}

impl SmpError {
    fn into_api_error(self) -> ApiError {
        match self {
            SmpError::BadRequest(m) => ApiError::bad_request(m),
            SmpError::Unprocessable(m) => status::unprocessable(m),
            SmpError::Other(m) => status::unknown(m),
        }
    }
}

pub(crate) const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
pub(crate) const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
pub(crate) const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
pub(crate) const NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

pub(crate) fn no_merge_key(item: &Value, key: &str) -> SmpError {
    SmpError::Other(format!("map: {} does not contain declared merge key: {key}", gojson::format_v(item)))
}

pub(crate) fn bad_arg_type(expected: &str, actual: &Value) -> SmpError {
    SmpError::Other(format!("expected a {expected}, but received a {}", gojson::go_type(actual)))
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> SmpError {
    let t = match directive {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", gojson::go_type(other), gojson::format_v(other)),
    };
    SmpError::Other(format!("unknown patch type: {t} in map: {}", gojson::format_v(&Value::Object(map.clone()))))
}

/// The patch metadata of a field: the schema below it, its strategies and merge key.
pub(crate) struct FieldMeta<'s> {
    pub(crate) ty: TypeRef<'s>,
    pub(crate) strategy: String,
    pub(crate) merge_key: String,
}

/// `LookupPatchMetadataForStruct` / `ForSlice`: what the schema of the map `ty` says about
/// `key`. A list's schema is that of its items.
pub(crate) fn field_meta<'s>(ty: TypeRef<'s>, key: &str, list: bool) -> Result<FieldMeta<'s>, SmpError> {
    let (child, node) = match ty.atom() {
        Atom::Map(m) => (m.child(key), m.fields.and_then(|f| f.get(key))),
        _ => (TypeRef::untyped(), None),
    };
    let ext = |name: &str| node.and_then(|n| n.get(name)).and_then(Value::as_str).unwrap_or("");
    let strategies: Vec<&str> = ext("x-kubernetes-patch-strategy").split(',').filter(|s| !s.is_empty()).collect();
    let strategy = match strategies.as_slice() {
        [] | ["retainKeys"] => "",
        [one] => one,
        ["retainKeys", other] | [other, "retainKeys"] => other,
        _ => return Err(SmpError::Other(format!("unexpected patch strategy: [{}]", strategies.join(" ")))),
    };
    let ty = if list {
        match child.atom() {
            Atom::List(l) => l.element,
            _ => TypeRef::untyped(),
        }
    } else {
        child
    };
    Ok(FieldMeta { ty, strategy: strategy.to_string(), merge_key: ext("x-kubernetes-patch-merge-key").to_string() })
}

/// The Go type of a decoded value, for the "same type" checks of the merge.
#[derive(PartialEq, Eq)]
enum GoType {
    Map,
    Slice,
    Other(&'static str),
}

fn go_type(v: &Value) -> GoType {
    match v {
        Value::Object(_) => GoType::Map,
        Value::Array(_) => GoType::Slice,
        other => GoType::Other(gojson::go_type(other)),
    }
}

/// `mergeMap`: merges `patch` into `original`.
pub(crate) fn merge_map(mut original: Map<String, Value>, mut patch: Map<String, Value>, ty: TypeRef<'_>) -> Result<Map<String, Value>, SmpError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    list::merge_set_element_order(&mut original, &mut patch, ty)?;
    for (key, patch_value) in patch {
        let (key, delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => match rest.strip_prefix('/') {
                Some(field) => (field.to_string(), true),
                None => return Err(SmpError::BadRequest(BAD_PRIMITIVE_LIST)),
            },
            None => (key, false),
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(current) = original.get(&key) else {
            if !delete_list {
                set_cleaned(&mut original, key, patch_value);
            }
            continue;
        };
        if go_type(current) != go_type(&patch_value) {
            if !delete_list {
                set_cleaned(&mut original, key, patch_value);
            }
            continue;
        }
        match (original.remove(&key), patch_value) {
            (Some(Value::Object(cur)), Value::Object(p)) => {
                let meta = field_meta(ty, &key, false)?;
                let merged = if meta.strategy == "replace" { p } else { merge_map(cur, p, meta.ty)? };
                original.insert(key, Value::Object(merged));
            }
            (Some(Value::Array(cur)), Value::Array(p)) => {
                let meta = field_meta(ty, &key, true)?;
                let merged = if meta.strategy == "merge" || delete_list {
                    list::merge_list(cur, p, &meta, delete_list)?
                } else {
                    clean_list(p)
                };
                original.insert(key, Value::Array(merged));
            }
            (_, scalar) => set_cleaned(&mut original, key, scalar),
        }
    }
    Ok(original)
}

/// Sets a value the patch supplies wholesale, without the nulls and directives in it (the
/// decoder into Go types would drop them).
fn set_cleaned(map: &mut Map<String, Value>, key: String, value: Value) {
    match clean(value) {
        Some(v) => {
            map.insert(key, v);
        }
        None => {
            map.remove(&key);
        }
    }
}

fn clean_list(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter_map(clean).collect()
}

/// `discardNullValuesFromPatch` + `removeDirectives`: `None` when the value is itself a
/// directive (a map with `$patch`).
pub(crate) fn clean(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            Some(Value::Object(
                map.into_iter()
                    .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
                    .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(clean_list(items))),
        other => Some(other),
    }
}

fn is_directive_key(k: &str) -> bool {
    k == RETAIN_KEYS || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER)
}

/// `$retainKeys`: keys of the original not listed are cleared; the patch must not set others.
fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<(), SmpError> {
    let Some(retain) = patch.remove(RETAIN_KEYS) else { return Ok(()) };
    let Value::Array(retain) = retain else { return Err(SmpError::BadRequest(BAD_RETAIN_KEYS)) };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_FROM_PRIMITIVE_LIST) || k.starts_with(SET_ELEMENT_ORDER) {
            continue;
        }
        if !listed(k) {
            return Err(SmpError::BadRequest(BAD_RETAIN_KEYS));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

#[cfg(test)]
mod tests;
