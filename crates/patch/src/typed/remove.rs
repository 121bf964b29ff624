//! Removes a set of fields from an object (`TypedValue.RemoveItems`): a member of the set goes
//! with everything below it; a map or list left with nothing in it goes too.

use super::{item_element, shape, Shape, TypeRef};
use crate::fieldpath::{FieldSet, PathElement};
use serde_json::{Map, Value};

/// `v` without the fields in `set`. An object emptied entirely comes back as `{}`.
pub(crate) fn remove_items(v: &Value, set: &FieldSet, ty: TypeRef<'_>) -> Value {
    walk(v, set, ty).unwrap_or_else(|| Value::Object(Map::new()))
}

/// `None` when nothing is left (structured-merge-diff yields `null`, which the Go types then
/// drop; the field is dropped here directly).
fn walk(v: &Value, set: &FieldSet, ty: TypeRef<'_>) -> Option<Value> {
    match shape(&ty.atom(), v) {
        Shape::Leaf | Shape::Map(_, None) => Some(v.clone()),
        Shape::Map(_, Some(entries)) if entries.is_empty() => Some(v.clone()),
        Shape::List(_, []) => Some(v.clone()),
        Shape::Map(map, Some(entries)) => {
            let mut out = Map::new();
            let mut kept = 0;
            for (key, val) in entries {
                let pe = PathElement::Field(key.clone());
                if set.members.contains(&pe) {
                    continue;
                }
                kept += 1;
                match set.with_prefix(&pe) {
                    Some(sub) => {
                        if let Some(rest) = walk(val, sub, map.child(key)) {
                            out.insert(key.clone(), rest);
                        }
                    }
                    None => {
                        out.insert(key.clone(), val.clone());
                    }
                }
            }
            (kept > 0).then_some(Value::Object(out))
        }
        Shape::List(list, items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                // Items were validated before; one that cannot be named is kept as it is.
                let Ok(pe) = item_element(&list, item, i) else {
                    out.push(item.clone());
                    continue;
                };
                if set.members.contains(&pe) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => out.push(walk(item, sub, list.element).unwrap_or_else(|| Value::Object(Map::new()))),
                    None => out.push(item.clone()),
                }
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::from_fields_v1;
    use serde_json::json;

    #[test]
    fn removes_members_and_empties() {
        let svc = TypeRef::definition("io.k8s.api.core.v1.Service");
        let obj = json!({"metadata": {"name": "x", "labels": {"app": "nginx"}}, "spec": {"ports": [{"port": 80, "name": "a"}, {"port": 81}], "type": "ClusterIP"}});
        let set = from_fields_v1(&json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:ports": {"k:{\"port\":81,\"protocol\":\"TCP\"}": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {"f:name": {}}}}})).unwrap();
        assert_eq!(
            remove_items(&obj, &set, svc),
            json!({"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}], "type": "ClusterIP"}})
        );
    }
}
