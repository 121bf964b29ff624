//! The schema as structured-merge-diff sees it, read from the vendored OpenAPI definitions the
//! way kube-openapi's `schemaconv` converts them: every node is a scalar, a list (atomic, a set,
//! or a map keyed by some fields), a map (a struct with declared fields, or a string-keyed map;
//! granular or atomic), or untyped (deduced from the value).

use schema::{node_type, Schema};
use serde_json::{Map, Value};

/// A reference to the schema node of a field or list element; `None` is untyped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TypeRef<'s> {
    node: Option<&'s Value>,
}

impl<'s> TypeRef<'s> {
    pub(crate) fn untyped() -> TypeRef<'static> {
        TypeRef { node: None }
    }

    /// The root type of a kind, by definition name; untyped when the schema does not know it.
    pub(crate) fn definition(name: &str) -> TypeRef<'static> {
        TypeRef { node: Schema::get().definition(name) }
    }

    pub(crate) fn is_untyped(&self) -> bool {
        self.node.is_none()
    }

    pub(crate) fn atom(&self) -> Atom<'s> {
        let Some(node) = self.node else { return Atom::Untyped };
        let schema = Schema::get();
        let resolved = schema.resolve(node);
        // Extensions on the field override those of the definition it refers to.
        let ext = |key: &str| node.get(key).or_else(|| resolved.get(key));
        if resolved.get("oneOf").is_some() || resolved.get("anyOf").is_some() {
            return Atom::Untyped;
        }
        let props = resolved.get("properties").and_then(Value::as_object);
        let additional = resolved.get("additionalProperties").filter(|v| v.is_object());
        match node_type(resolved) {
            Some("array") => {
                let items = resolved.get("items").or_else(|| node.get("items"));
                Atom::List(ListType { element: TypeRef { node: items }, kind: list_kind(ext, items) })
            }
            Some("object") | None if props.is_some() || additional.is_some() => Atom::Map(MapType {
                fields: props,
                element: additional,
                atomic: ext("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"),
            }),
            Some("string" | "integer" | "number" | "boolean") => Atom::Scalar,
            _ => Atom::Untyped,
        }
    }
}

fn list_kind<'s>(ext: impl Fn(&str) -> Option<&'s Value>, items: Option<&'s Value>) -> ListKind<'s> {
    let keyed = |keys: Vec<&'s str>| ListKind::Associative {
        keys,
        element_definition: items.and_then(element_definition),
    };
    match ext("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => return ListKind::Set,
        Some("map") => {
            let keys = ext("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            return keyed(keys);
        }
        Some(_) => return ListKind::Atomic,
        None => {}
    }
    // Without a list type, a merge patch strategy makes the list associative (schemaconv).
    let strategy = ext("x-kubernetes-patch-strategy").and_then(Value::as_str).unwrap_or("");
    if strategy.split(',').any(|s| s == "merge") {
        return match ext("x-kubernetes-patch-merge-key").and_then(Value::as_str) {
            Some(key) => keyed(vec![key]),
            None => ListKind::Set,
        };
    }
    ListKind::Atomic
}

fn element_definition(items: &Value) -> Option<&str> {
    Schema::ref_of(items).or_else(|| {
        let all = items.get("allOf")?.as_array()?;
        match all.as_slice() {
            [single] => Schema::ref_of(single),
            _ => None,
        }
    })
}

#[derive(Clone, Debug)]
pub(crate) enum Atom<'s> {
    Scalar,
    List(ListType<'s>),
    Map(MapType<'s>),
    /// No schema: scalars are leaves, lists atomic, maps granular (structured-merge-diff's
    /// "deduced" type).
    Untyped,
}

#[derive(Clone, Debug)]
pub(crate) struct ListType<'s> {
    pub(crate) element: TypeRef<'s>,
    pub(crate) kind: ListKind<'s>,
}

#[derive(Clone, Debug)]
pub(crate) enum ListKind<'s> {
    Atomic,
    /// A set of scalars, items named by value.
    Set,
    /// A list-map, items named by their key fields.
    Associative { keys: Vec<&'s str>, element_definition: Option<&'s str> },
}

#[derive(Clone, Debug)]
pub(crate) struct MapType<'s> {
    /// Declared fields of a struct.
    pub(crate) fields: Option<&'s Map<String, Value>>,
    /// The value type of a string-keyed map.
    pub(crate) element: Option<&'s Value>,
    pub(crate) atomic: bool,
}

impl<'s> MapType<'s> {
    pub(crate) fn untyped() -> MapType<'s> {
        MapType { fields: None, element: None, atomic: false }
    }

    /// Whether `name` is a declared struct field (as opposed to a map entry or an unknown field).
    pub(crate) fn declares(&self, name: &str) -> bool {
        self.fields.is_some_and(|f| f.contains_key(name))
    }

    /// The type of the value under `name`.
    pub(crate) fn child(&self, name: &str) -> TypeRef<'s> {
        let node = self.fields.and_then(|f| f.get(name)).or(self.element);
        TypeRef { node }
    }

    /// A struct that neither declares `name` nor accepts arbitrary entries.
    pub(crate) fn rejects(&self, name: &str) -> bool {
        self.fields.is_some() && self.element.is_none() && !self.declares(name)
    }
}

/// Key fields the API defaults, which structured-merge-diff uses when an item omits them
/// (`+default="TCP"` in the Go types; the vendored OpenAPI dropped the `default`s).
pub(crate) fn key_default(element_definition: Option<&str>, key: &str) -> Option<Value> {
    match (element_definition?, key) {
        ("io.k8s.api.core.v1.ServicePort" | "io.k8s.api.core.v1.ContainerPort", "protocol") => Some(Value::from("TCP")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'s>(t: TypeRef<'s>, name: &str) -> TypeRef<'s> {
        match t.atom() {
            Atom::Map(m) => m.child(name),
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn service_shapes() {
        let svc = TypeRef::definition("io.k8s.api.core.v1.Service");
        let spec = field(svc, "spec");
        match field(spec, "ports").atom() {
            Atom::List(ListType { kind: ListKind::Associative { keys, element_definition }, .. }) => {
                assert_eq!(keys, ["port", "protocol"]);
                assert_eq!(element_definition, Some("io.k8s.api.core.v1.ServicePort"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(field(spec, "selector").atom(), Atom::Map(MapType { atomic: true, .. })));
        assert!(matches!(field(spec, "clusterIPs").atom(), Atom::List(ListType { kind: ListKind::Atomic, .. })));
        let meta = field(svc, "metadata");
        assert!(matches!(field(meta, "labels").atom(), Atom::Map(MapType { atomic: false, fields: None, .. })));
        assert!(matches!(field(meta, "finalizers").atom(), Atom::List(ListType { kind: ListKind::Set, .. })));
        let owner = match field(meta, "ownerReferences").atom() {
            Atom::List(l) => l.element,
            other => panic!("{other:?}"),
        };
        assert!(matches!(owner.atom(), Atom::Map(MapType { atomic: true, .. })));
        let port = match field(spec, "ports").atom() {
            Atom::List(l) => l.element,
            other => panic!("{other:?}"),
        };
        assert!(matches!(field(port, "targetPort").atom(), Atom::Untyped));
    }
}
