//! JSON patch (RFC 6902, `application/json-patch+json`) as kube-apiserver applies it.
//!
//! kube-apiserver uses `evanphx/json-patch` v4, which is more lenient than the RFC in two ways
//! clients rely on: `replace` of a missing object member adds it, and negative list indices count
//! from the end. Each operation is checked against the document the way evanphx walks it (which
//! also yields its exact error text), normalised, and then performed by the `json-patch` crate.

use crate::{gojson, status};
use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use model::ApiError;
use serde_json::{Map, Value};

/// kube-apiserver's cap on the operations of one JSON patch.
const MAX_OPERATIONS: usize = 10_000;

/// Applies a JSON patch body to `original`. A body that is not a list of operations is a 400; an
/// operation that does not apply (a failed `test`, an index out of range) is a 422 whose cause is
/// evanphx's message, e.g. `testing value /spec/type failed: test failed`.
pub fn json_patch(original: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let ops = decode(patch)?;
    if ops.len() > MAX_OPERATIONS {
        return Err(status::too_large(format!(
            "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            ops.len()
        )));
    }
    let mut doc = original.clone();
    for op in &ops {
        apply_operation(&mut doc, op).map_err(status::unprocessable)?;
    }
    Ok(doc)
}

/// Decodes the body into `[]handlers.jsonPatchOp`, with the decoder's messages.
fn decode(body: &[u8]) -> Result<Vec<Map<String, Value>>, ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("error decoding patch: {m}"));
    let value = gojson::parse(body).map_err(bad)?;
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(bad(format!(
                "json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
                gojson::json_kind(&other)
            )))
        }
    };
    let mut ops = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Object(op) => {
                for field in ["op", "path", "from"] {
                    match op.get(field) {
                        None | Some(Value::Null) | Some(Value::String(_)) => {}
                        Some(other) => {
                            return Err(bad(format!(
                                "json: cannot unmarshal {} into Go struct field jsonPatchOp.{field} of type string",
                                gojson::json_kind(other)
                            )))
                        }
                    }
                }
                ops.push(op);
            }
            Value::Null => ops.push(Map::new()),
            other => {
                return Err(bad(format!(
                    "json: cannot unmarshal {} into Go value of type handlers.jsonPatchOp",
                    gojson::json_kind(&other)
                )))
            }
        }
    }
    Ok(ops)
}

/// The `value` of an operation; `None` when absent or `null` (evanphx cannot tell them apart).
fn operand(op: &Map<String, Value>) -> Option<&Value> {
    op.get("value").filter(|v| !v.is_null())
}

fn string_field<'a>(op: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    op.get(field).and_then(Value::as_str)
}

fn apply_operation(doc: &mut Value, op: &Map<String, Value>) -> Result<(), String> {
    let kind = string_field(op, "op").unwrap_or("unknown");
    let path = string_field(op, "path");
    match kind {
        "add" => {
            let path = path.ok_or("add operation failed to decode path: missing value")?;
            let value = operand(op).cloned().unwrap_or(Value::Null);
            add(doc, path, value).map_err(|e| match e {
                Missing::Container => format!("add operation does not apply: doc is missing path: \"{path}\": missing value"),
                Missing::Member(e) => format!("error in add for path: '{path}': {e}"),
            })
        }
        "remove" => {
            let path = path.ok_or("remove operation failed to decode path: missing value")?;
            remove(doc, path).map(drop).map_err(|e| match e {
                Missing::Container => format!("remove operation does not apply: doc is missing path: \"{path}\": missing value"),
                Missing::Member(e) => format!("error in remove for path: '{path}': {e}"),
            })
        }
        "replace" => {
            let path = path.ok_or("replace operation failed to decode path: operation missing path field: missing value")?;
            let (parent, key) = locate(doc, path).ok_or_else(|| {
                format!("replace operation does not apply: doc is missing path: {path}: missing value")
            })?;
            let value = operand(op).cloned().unwrap_or(Value::Null);
            match resolve_member(doc, &parent, &key) {
                Ok(Member::Index(i)) => {
                    let path = parent.with_trailing_token(Token::new(i.to_string()));
                    perform(doc, PatchOperation::Replace(ReplaceOperation { path, value }))
                }
                // A missing object member is simply set: evanphx's `replace` does not check existence.
                Ok(Member::Key(_)) => {
                    let path = parent.with_trailing_token(Token::new(key));
                    perform(doc, PatchOperation::Add(AddOperation { path, value }))
                }
                Err(_) => Err(format!("replace operation does not apply: doc is missing key: {path}: missing value")),
            }
        }
        "move" => {
            let from = string_field(op, "from").ok_or("move operation failed to decode from: operation, missing from field: missing value")?;
            let (parent, key) =
                locate(doc, from).ok_or_else(|| format!("move operation does not apply: doc is missing from path: {from}: missing value"))?;
            resolve_member(doc, &parent, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let value = remove(doc, from).map_err(|e| match e {
                Missing::Container => format!("move operation does not apply: doc is missing from path: {from}: missing value"),
                Missing::Member(e) => format!("error in move for path: '{key}': {e}"),
            })?;
            let path = path.ok_or("move operation failed to decode path: operation missing path field: missing value")?;
            add(doc, path, value).map_err(|e| match e {
                Missing::Container => format!("move operation does not apply: doc is missing destination path: {path}: missing value"),
                Missing::Member(e) => format!("error in move for path: '{path}': {e}"),
            })
        }
        "copy" => {
            let from = string_field(op, "from").ok_or("copy operation failed to decode from: operation, missing from field: missing value")?;
            let (parent, key) =
                locate(doc, from).ok_or_else(|| format!("copy operation does not apply: doc is missing from path: {from}: missing value"))?;
            let value = match resolve_member(doc, &parent, &key) {
                Ok(member) => get(doc, &parent, &member).cloned().unwrap_or(Value::Null),
                Err(e) => return Err(format!("error in copy for from: '{from}': {e}")),
            };
            let path = path.ok_or("copy operation failed to decode path: missing value")?;
            add(doc, path, value).map_err(|e| match e {
                Missing::Container => format!("copy operation does not apply: doc is missing destination path: {path}: missing value"),
                Missing::Member(e) => format!("error while adding value during copy: {e}"),
            })
        }
        "test" => {
            let path = path.ok_or("test operation failed to decode path: operation missing path field: missing value")?;
            let failed = || format!("testing value {path} failed: test failed");
            let (parent, key) =
                locate(doc, path).ok_or_else(|| format!("test operation does not apply: is missing path: {path}: missing value"))?;
            let member = resolve_member(doc, &parent, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
            // A JSON null in the document reads as absent, like a missing member.
            match (get(doc, &parent, &member).filter(|v| !v.is_null()), operand(op)) {
                (None, None) => Ok(()),
                (Some(actual), Some(expected)) if actual == expected => Ok(()),
                _ => Err(failed()),
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// Why an operation's target could not be reached: its container is missing (the "does not
/// apply" messages), or the member in it is (messages wrapped as "error in <op> for path").
enum Missing {
    Container,
    Member(String),
}

/// A resolved member of the target's container.
enum Member {
    Key(String),
    Index(usize),
}

/// evanphx's `findObject`: the container the path's last token lives in, and that token. The
/// container must exist and be an object or a list; `None` otherwise.
fn locate(doc: &Value, path: &str) -> Option<(PointerBuf, String)> {
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() < 2 {
        return None;
    }
    let key = decode_token(parts.pop().unwrap_or_default());
    let mut container = PointerBuf::root();
    let mut cur = doc;
    for part in &parts[1..] {
        let part = decode_token(part);
        let next = match cur {
            Value::Object(map) => map.get(&part),
            Value::Array(items) => parse_index(&part).ok().and_then(|i| normalize_index(i, items.len())).map(|i| {
                container.push_back(Token::new(i.to_string()));
                &items[i]
            }),
            _ => None,
        }?;
        if cur.is_object() {
            container.push_back(Token::new(part));
        }
        cur = next;
    }
    matches!(cur, Value::Object(_) | Value::Array(_)).then_some((container, key))
}

fn decode_token(t: &str) -> String {
    t.replace("~1", "/").replace("~0", "~")
}

fn parse_index(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

/// Negative indices count from the end; `len` is the number of valid positions.
fn normalize_index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { i.checked_add(len)? } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

fn invalid_index(i: i64) -> String {
    format!("Unable to access invalid index: {i}: invalid index referenced")
}

/// evanphx's `get` on a container: objects yield any key (a missing one reads as null), lists
/// check the index.
fn resolve_member(doc: &Value, parent: &PointerBuf, key: &str) -> Result<Member, String> {
    match doc.pointer(parent.as_str()) {
        Some(Value::Array(items)) => {
            let i = parse_index(key)?;
            normalize_index(i, items.len()).map(Member::Index).ok_or_else(|| invalid_index(i))
        }
        _ => Ok(Member::Key(key.to_string())),
    }
}

fn get<'a>(doc: &'a Value, parent: &PointerBuf, member: &Member) -> Option<&'a Value> {
    match (doc.pointer(parent.as_str())?, member) {
        (Value::Object(map), Member::Key(k)) => map.get(k),
        (Value::Array(items), Member::Index(i)) => items.get(*i),
        _ => None,
    }
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), Missing> {
    let (parent, key) = locate(doc, path).ok_or(Missing::Container)?;
    let target = match doc.pointer(parent.as_str()) {
        Some(Value::Array(items)) if key == "-" => parent.with_trailing_token(Token::new(items.len().to_string())),
        Some(Value::Array(items)) => {
            let i = parse_index(&key).map_err(|e| Missing::Member(format!("value was not a proper array index: '{key}': {e}")))?;
            // Inserting may also address the position just past the end.
            let i = normalize_index(i, items.len() + 1).ok_or_else(|| Missing::Member(invalid_index(i)))?;
            parent.with_trailing_token(Token::new(i.to_string()))
        }
        _ => parent.with_trailing_token(Token::new(key)),
    };
    perform(doc, PatchOperation::Add(AddOperation { path: target, value })).map_err(Missing::Member)
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, Missing> {
    let (parent, key) = locate(doc, path).ok_or(Missing::Container)?;
    let target = match doc.pointer(parent.as_str()) {
        Some(Value::Array(items)) => {
            let i = parse_index(&key).map_err(Missing::Member)?;
            let i = normalize_index(i, items.len()).ok_or_else(|| Missing::Member(invalid_index(i)))?;
            parent.with_trailing_token(Token::new(i.to_string()))
        }
        Some(Value::Object(map)) if !map.contains_key(&key) => {
            return Err(Missing::Member(format!("Unable to remove nonexistent key: {key}: missing value")))
        }
        _ => parent.with_trailing_token(Token::new(key)),
    };
    let removed = doc.pointer(target.as_str()).cloned().unwrap_or(Value::Null);
    perform(doc, PatchOperation::Remove(RemoveOperation { path: target })).map_err(Missing::Member)?;
    Ok(removed)
}

/// Performs one already-validated operation with the `json-patch` crate.
fn perform(doc: &mut Value, op: PatchOperation) -> Result<(), String> {
    json_patch::patch(doc, &[op]).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Value {
        json!({"spec": {"type": "ClusterIP", "ports": [{"port": 9091}, {"port": 80}]}, "metadata": {"labels": {"tier": "backend"}}})
    }

    /// kube-apiserver reports failed patch operations without causes (see status::unprocessable).
    fn assert_no_causes(e: &ApiError) {
        assert_eq!(e.details, Some(serde_json::Map::new()));
    }

    #[test]
    fn add_replace_and_remove() {
        let out = json_patch(
            &svc(),
            br#"[{"op":"add","path":"/spec/ports/-","value":{"port":8080}},{"op":"replace","path":"/spec/ports/0/port","value":1},{"op":"add","path":"/metadata/labels/app","value":"nginx"},{"op":"remove","path":"/spec/ports/1"}]"#,
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 1}, {"port": 8080}]));
        assert_eq!(out["metadata"]["labels"], json!({"tier": "backend", "app": "nginx"}));
    }

    #[test]
    fn failed_test_is_unprocessable() {
        let err = json_patch(&svc(), br#"[{"op":"test","path":"/spec/type","value":"NodePort"},{"op":"remove","path":"/spec/ports/0"}]"#).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(err.reason, "Invalid");
        assert_eq!(err.message, "the server rejected our request due to an error in our request");
        assert_no_causes(&err);
    }

    #[test]
    fn removing_past_the_end_is_unprocessable() {
        let err = json_patch(&svc(), br#"[{"op":"remove","path":"/spec/ports/5"}]"#).unwrap_err();
        assert_no_causes(&err);
    }

    #[test]
    fn replace_of_a_list_item_replaces_it() {
        let out = json_patch(&svc(), br#"[{"op":"replace","path":"/spec/ports/1","value":{"port":81}}]"#).unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 9091}, {"port": 81}]));
    }

    #[test]
    fn replace_of_a_missing_member_adds_it() {
        let out = json_patch(&svc(), br#"[{"op":"replace","path":"/spec/nosuchfield","value":1}]"#).unwrap();
        assert_eq!(out["spec"]["nosuchfield"], 1);
    }

    #[test]
    fn a_non_list_body_is_a_bad_request() {
        let err = json_patch(&svc(), br#"{"not":"a list"}"#).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
        assert_eq!(err.message, "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp");
    }

    #[test]
    fn missing_container_and_unknown_op() {
        let err = json_patch(&svc(), br#"[{"op":"add","path":"/nope/x","value":1}]"#).unwrap_err();
        assert_no_causes(&err);
        let err = json_patch(&svc(), br#"[{"op":"frobnicate","path":"/spec"}]"#).unwrap_err();
        assert_no_causes(&err);
        let err = json_patch(&svc(), br#"[{"op":"remove","path":"/spec/nope"}]"#).unwrap_err();
        assert_no_causes(&err);
    }

    #[test]
    fn negative_indices_count_from_the_end() {
        let out = json_patch(&svc(), br#"[{"op":"remove","path":"/spec/ports/-1"}]"#).unwrap();
        assert_eq!(out["spec"]["ports"], json!([{"port": 9091}]));
    }

    #[test]
    fn absurd_indices_are_out_of_range() {
        let err = json_patch(&svc(), br#"[{"op":"remove","path":"/spec/ports/-9223372036854775808"}]"#).unwrap_err();
        assert_no_causes(&err);
    }

    #[test]
    fn move_and_copy() {
        let out = json_patch(&svc(), br#"[{"op":"copy","from":"/spec/type","path":"/spec/t2"},{"op":"move","from":"/spec/t2","path":"/metadata/t3"}]"#).unwrap();
        assert_eq!(out["metadata"]["t3"], "ClusterIP");
        assert!(out["spec"].get("t2").is_none());
    }
}
