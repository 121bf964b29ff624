//! Field paths and sets of them, and their `FieldsV1` encoding: the vocabulary of field
//! ownership (structured-merge-diff's `fieldpath` package).

mod element;
mod set;
pub(crate) mod value;

pub use element::{path_string, Path, PathElement};
pub use set::FieldSet;

use serde_json::{Map, Value};

/// Encodes a set as `FieldsV1`: one key per element in element order, `{}` for a member, a
/// nested object for children, with `".": {}` when the element is also a member itself.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    Value::Object(encode(set))
}

fn encode(set: &FieldSet) -> Map<String, Value> {
    let mut out = Map::new();
    let mut members = set.members.iter().peekable();
    let mut children = set.children.iter().peekable();
    loop {
        let take_member = match (members.peek(), children.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(m), Some((c, _))) => *m < *c,
        };
        if take_member {
            let m = members.next().expect("peeked");
            out.insert(m.to_fields_v1(), Value::Object(Map::new()));
            continue;
        }
        let (pe, child) = children.next().expect("peeked");
        let mut nested = Map::new();
        if members.peek() == Some(&pe) {
            members.next();
            nested.insert(".".into(), Value::Object(Map::new()));
        }
        nested.extend(encode(child));
        out.insert(pe.to_fields_v1(), Value::Object(nested));
    }
    out
}

/// Decodes `FieldsV1`. Elements of an unknown kind are skipped, as upstream readers do.
pub fn from_fields_v1(v: &Value) -> Result<FieldSet, String> {
    Ok(decode(v)?.0.unwrap_or_default())
}

/// The set below a node and whether the node itself is a member (`{}` or `".": {}`).
fn decode(v: &Value) -> Result<(Option<FieldSet>, bool), String> {
    let map = v.as_object().ok_or_else(|| format!("expected an object in fieldsV1, got {v}"))?;
    let mut children: Option<FieldSet> = None;
    let mut is_member = false;
    for (key, value) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_v1(key).map_err(|e| format!("parsing key as path element: {e}"))? else {
            continue;
        };
        let (grandchildren, child_is_member) = decode(value)?;
        let set = children.get_or_insert_with(FieldSet::new);
        if child_is_member {
            set.members.insert(pe.clone());
        }
        if let Some(g) = grandchildren.filter(|g| !g.is_empty()) {
            let merged = match set.children.remove(&pe) {
                Some(prev) => prev.union(&g),
                None => g,
            };
            set.children.insert(pe, merged);
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_kubectl_create_fields() {
        let v = json!({"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}});
        let set = from_fields_v1(&v).unwrap();
        assert_eq!(to_fields_v1(&set).to_string(), v.to_string());
    }

    #[test]
    fn empty_object_is_the_empty_set() {
        assert!(from_fields_v1(&json!({})).unwrap().is_empty());
    }
}
