//! Which fields an update added, modified or removed (`TypedValue.Compare`). Leaves compare by
//! value; a map, list or list item that appears or disappears as a whole is itself added or
//! removed, besides its contents — that is where `".": {}` in managedFields comes from.

use super::{common_shape, index_items, Errors, Shape, TypeRef};
use crate::fieldpath::{value, FieldSet, Path, PathElement};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: FieldSet,
    pub(crate) modified: FieldSet,
    pub(crate) removed: FieldSet,
}

impl Comparison {
    /// Drops `fields` and everything below them from all three sets.
    pub(crate) fn exclude(self, fields: &FieldSet) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(fields),
            modified: self.modified.recursive_difference(fields),
            removed: self.removed.recursive_difference(fields),
        }
    }
}

/// Compares `lhs` (before) with `rhs` (after).
pub(crate) fn compare(lhs: &Value, rhs: &Value, ty: TypeRef<'_>) -> Result<Comparison, String> {
    let mut walk = Walk { out: Comparison::default(), errors: Errors::default(), path: Vec::new() };
    walk.node(ty, Some(lhs), Some(rhs));
    walk.errors.into_result(walk.out)
}

struct Walk {
    out: Comparison,
    errors: Errors,
    path: Path,
}

impl Walk {
    fn node(&mut self, ty: TypeRef<'_>, lhs: Option<&Value>, rhs: Option<&Value>) {
        match common_shape(&ty.atom(), lhs, rhs) {
            Shape::Leaf => return self.leaf(lhs, rhs),
            Shape::Map(map, _) => {
                let (l, r) = (lhs.and_then(Value::as_object), rhs.and_then(Value::as_object));
                if l.is_none_or(|m| m.is_empty()) && r.is_none_or(|m| m.is_empty()) {
                    return self.leaf(lhs, rhs);
                }
                let mut keys: Vec<&String> = l.map(|m| m.keys().collect()).unwrap_or_default();
                if let Some(r) = r {
                    keys.extend(r.keys().filter(|k| !l.is_some_and(|l| l.contains_key(*k))));
                }
                for key in keys {
                    self.path.push(PathElement::Field(key.clone()));
                    self.node(map.child(key), l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                    self.path.pop();
                }
            }
            Shape::List(list, _) => {
                let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
                if l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty) {
                    return self.leaf(lhs, rhs);
                }
                let left = index_items(&list, l.map(Vec::as_slice).unwrap_or_default(), &self.path, &mut self.errors);
                let right = index_items(&list, r.map(Vec::as_slice).unwrap_or_default(), &self.path, &mut self.errors);
                let left_by: BTreeMap<&PathElement, &Value> = left.iter().map(|(pe, v)| (pe, *v)).collect();
                let right_by: BTreeMap<&PathElement, &Value> = right.iter().map(|(pe, v)| (pe, *v)).collect();
                for (pe, item) in &right {
                    self.path.push(pe.clone());
                    self.node(list.element, left_by.get(pe).copied(), Some(item));
                    self.path.pop();
                }
                for (pe, item) in &left {
                    if !right_by.contains_key(pe) {
                        self.path.push(pe.clone());
                        self.node(list.element, Some(item), None);
                        self.path.pop();
                    }
                }
            }
        }
        if lhs.is_none() {
            self.out.added.insert(&self.path);
        } else if rhs.is_none() {
            self.out.removed.insert(&self.path);
        }
    }

    fn leaf(&mut self, lhs: Option<&Value>, rhs: Option<&Value>) {
        match (lhs, rhs) {
            (None, Some(_)) => self.out.added.insert(&self.path),
            (Some(_), None) => self.out.removed.insert(&self.path),
            (Some(l), Some(r)) if !value::equals(l, r) => self.out.modified.insert(&self.path),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fieldpath::to_fields_v1;
    use serde_json::json;

    fn svc() -> TypeRef<'static> {
        TypeRef::definition("io.k8s.api.core.v1.Service")
    }

    #[test]
    fn added_maps_and_items_are_members_too() {
        let old = json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": {"loadBalancer": {}}});
        let new = json!({"metadata": {"name": "x", "labels": {"app": "nginx"}}, "spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "nginx"}}, "status": {"loadBalancer": {}}});
        let c = compare(&old, &new, svc()).unwrap();
        let added = to_fields_v1(&c.added).to_string();
        assert_eq!(
            added,
            r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}},"f:name":{}},"f:spec":{"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{},"f:protocol":{}}},"f:selector":{},"f:type":{}}}"#
        );
        assert_eq!(to_fields_v1(&c.removed).to_string(), r#"{"f:metadata":{"f:creationTimestamp":{}}}"#);
    }

    #[test]
    fn atomic_maps_are_leaves() {
        let old = json!({"spec": {"selector": {"app": "a"}}});
        let new = json!({"spec": {"selector": {"app": "b", "tier": "x"}}});
        let c = compare(&old, &new, svc()).unwrap();
        assert_eq!(to_fields_v1(&c.modified).to_string(), r#"{"f:spec":{"f:selector":{}}}"#);
        assert!(c.added.is_empty() && c.removed.is_empty());
    }

    #[test]
    fn a_missing_key_field_is_an_error() {
        let old = json!({"spec": {}});
        let new = json!({"spec": {"ports": [{"name": "x"}]}});
        assert_eq!(
            compare(&old, &new, svc()).unwrap_err(),
            ".spec.ports: element 0: associative list with keys has an element that omits key field \"port\" (and doesn't have default value)"
        );
    }
}
