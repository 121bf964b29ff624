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

    use proptest::prelude::*;

    fn element() -> impl Strategy<Value = PathElement> {
        prop_oneof![
            "[a-c<&]{1,2}".prop_map(PathElement::Field),
            (0i64..3, "[a-b]").prop_map(|(p, q)| PathElement::key(vec![("port".into(), json!(p)), ("protocol".into(), json!(q))])),
            prop_oneof![(0i64..3).prop_map(Value::from), "[a-b]".prop_map(Value::from), Just(json!(1.5))].prop_map(PathElement::Value),
            (0i64..3).prop_map(PathElement::Index),
        ]
    }

    fn field_set() -> impl Strategy<Value = FieldSet> {
        prop::collection::vec(prop::collection::vec(element(), 1..4), 0..8).prop_map(|paths| {
            let mut set = FieldSet::new();
            for p in &paths {
                set.insert(p);
            }
            set
        })
    }

    proptest! {
        #[test]
        fn fields_v1_round_trips(set in field_set()) {
            let encoded = to_fields_v1(&set);
            prop_assert_eq!(from_fields_v1(&encoded).unwrap(), set.clone());
            // The text form re-parses to the same set too (keys are JSON inside JSON).
            let text: Value = serde_json::from_str(&encoded.to_string()).unwrap();
            prop_assert_eq!(from_fields_v1(&text).unwrap(), set);
        }

        #[test]
        fn set_algebra(a in field_set(), b in field_set()) {
            let union = a.union(&b);
            for p in a.paths().iter().chain(b.paths().iter()) {
                prop_assert!(union.has(p));
            }
            for p in a.intersection(&b).paths() {
                prop_assert!(a.has(&p) && b.has(&p));
            }
            for p in a.difference(&b).paths() {
                prop_assert!(a.has(&p) && !b.has(&p));
            }
            for p in a.paths() {
                prop_assert!(b.has(&p) || a.difference(&b).has(&p));
            }
            let rd = a.recursive_difference(&b);
            for p in rd.paths() {
                prop_assert!((1..=p.len()).all(|n| !b.has(&p[..n])));
            }
        }
    }
}
