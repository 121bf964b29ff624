//! The set of fields an object (an applied configuration) sets (`TypedValue.ToFieldSet`), the
//! validation of an applied configuration against the schema, and the widening of a set so that
//! struct fields holding owned fields count as owned (`EnsureNamedFieldsAreMembers`).

use super::schema::Atom;
use super::{index_items, item_element, shape, Errors, Shape, TypeRef};
use crate::fieldpath::{FieldSet, Path, PathElement};
use serde_json::Value;

/// Every leaf an object sets, every list item it names, every entry of a granular map, and every
/// field it sets to `null` or `{}`.
pub(crate) fn to_field_set(v: &Value, ty: TypeRef<'_>) -> Result<FieldSet, String> {
    let mut walk = Walk { set: FieldSet::new(), errors: Errors::default(), path: Vec::new(), strict: false };
    walk.node(ty, v);
    walk.errors.into_result(walk.set)
}

/// Checks an applied configuration the way converting it to a typed value does: list items must
/// carry their keys and be unique, and structs accept only declared fields.
pub(crate) fn validate(v: &Value, ty: TypeRef<'_>) -> Result<(), String> {
    let mut walk = Walk { set: FieldSet::new(), errors: Errors::default(), path: Vec::new(), strict: true };
    walk.node(ty, v);
    walk.errors.into_result(())
}

struct Walk {
    set: FieldSet,
    errors: Errors,
    path: Path,
    strict: bool,
}

impl Walk {
    fn node(&mut self, ty: TypeRef<'_>, v: &Value) {
        match shape(&ty.atom(), v) {
            Shape::Leaf => self.set.insert(&self.path),
            Shape::Map(map, entries) => {
                for (key, val) in entries.into_iter().flatten() {
                    self.path.push(PathElement::Field(key.clone()));
                    if self.strict && map.rejects(key) {
                        self.errors.push(&self.path, "field not declared in schema");
                    } else {
                        self.node(map.child(key), val);
                        let empty_map = val.as_object().is_some_and(|m| m.is_empty());
                        if val.is_null() || empty_map || !map.declares(key) {
                            self.set.insert(&self.path);
                        }
                    }
                    self.path.pop();
                }
            }
            Shape::List(list, items) => {
                if self.strict {
                    let mut seen = std::collections::BTreeSet::new();
                    for (i, item) in items.iter().enumerate() {
                        match item_element(&list, item, i) {
                            Ok(pe) if !seen.insert(pe.clone()) => {
                                self.errors.push(&self.path, format!("duplicate entries for key {pe}"))
                            }
                            Ok(_) => {}
                            Err(e) => self.errors.push(&self.path, format!("element {i}: {e}")),
                        }
                    }
                }
                let mut scratch = Errors::default();
                let errors = if self.strict { &mut scratch } else { &mut self.errors };
                for (pe, item) in index_items(&list, items, &self.path, errors) {
                    self.path.push(pe);
                    self.node(list.element, item);
                    self.set.insert(&self.path);
                    self.path.pop();
                }
            }
        }
    }
}

/// `set` plus every struct field that has members below it: owning `spec.ports[...]` means
/// owning `spec` too, while owning `metadata.labels.app` does not mean owning each label map.
pub(crate) fn ensure_named_fields_are_members(set: &FieldSet, ty: TypeRef<'_>) -> FieldSet {
    let atom = ty.atom();
    let mut out = FieldSet { members: set.members.clone(), children: Default::default() };
    for (pe, child) in &set.children {
        let child_ty = match (pe, &atom) {
            (PathElement::Field(name), Atom::Map(map)) => {
                if map.declares(name) {
                    out.members.insert(pe.clone());
                }
                map.child(name)
            }
            (PathElement::Key(_), Atom::List(list)) => list.element,
            _ => TypeRef::untyped(),
        };
        out.children.insert(pe.clone(), ensure_named_fields_are_members(child, child_ty));
    }
    out
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
    fn applied_service_fields() {
        let cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-raw-ssa"}, "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "p", "port": 80}]}});
        let set = to_field_set(&cfg, svc()).unwrap();
        assert_eq!(
            to_fields_v1(&set).to_string(),
            r#"{"f:apiVersion":{},"f:kind":{},"f:metadata":{"f:name":{}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{}}},"f:selector":{}}}"#
        );
    }

    #[test]
    fn named_fields_become_members() {
        let cfg = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"ports": [{"port": 80}]}});
        let set = ensure_named_fields_are_members(&to_field_set(&cfg, svc()).unwrap(), svc());
        assert_eq!(
            to_fields_v1(&set).to_string(),
            r#"{"f:metadata":{".":{},"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}}}}"#
        );
    }

    #[test]
    fn validation_names_unknown_fields_and_duplicates() {
        let cfg = json!({"spec": {"portz": 1, "ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            validate(&cfg, svc()).unwrap_err(),
            "errors:\n  .spec.portz: field not declared in schema\n  .spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]"
        );
    }
}
