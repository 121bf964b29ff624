//! Operations on objects read through their schema, as structured-merge-diff's `typed` package
//! performs them: the field set an object sets, the comparison of two objects, the merge of an
//! applied configuration into a live object, and the removal of a set of fields.

mod compare;
mod fieldset;
mod merge;
mod remove;
pub(crate) mod schema;

pub(crate) use compare::{compare, Comparison};
pub(crate) use fieldset::{ensure_named_fields_are_members, to_field_set, validate};
pub(crate) use merge::merge;
pub(crate) use remove::remove_items;
pub(crate) use schema::TypeRef;

use crate::fieldpath::{path_string, PathElement};
use schema::{key_default, Atom, ListKind, ListType, MapType};
use serde_json::{Map, Value};

/// How a value is walked: as a leaf (compared and replaced whole), as list items, or as map
/// entries. Atomic lists and maps are leaves; so is a value whose kind disagrees with its schema.
pub(crate) enum Shape<'s, 'v> {
    Leaf,
    List(ListType<'s>, &'v [Value]),
    Map(MapType<'s>, Option<&'v Map<String, Value>>),
}

impl Shape<'_, '_> {
    fn same_kind(&self, other: &Shape<'_, '_>) -> bool {
        matches!((self, other), (Shape::Leaf, Shape::Leaf) | (Shape::List(..), Shape::List(..)) | (Shape::Map(..), Shape::Map(..)))
    }
}

/// The shape of `v` under `atom`. `null` is an empty list or map, as structured-merge-diff reads it.
pub(crate) fn shape<'s, 'v>(atom: &Atom<'s>, v: &'v Value) -> Shape<'s, 'v> {
    match (atom, v) {
        (Atom::Scalar, _) => Shape::Leaf,
        (Atom::List(l), Value::Array(items)) if !matches!(l.kind, ListKind::Atomic) => Shape::List(l.clone(), items),
        (Atom::List(l), Value::Null) if !matches!(l.kind, ListKind::Atomic) => Shape::List(l.clone(), &[]),
        (Atom::Map(m), Value::Object(map)) if !m.atomic => Shape::Map(m.clone(), Some(map)),
        (Atom::Map(m), Value::Null) if !m.atomic => Shape::Map(m.clone(), None),
        (Atom::Untyped, Value::Object(map)) => Shape::Map(MapType::untyped(), Some(map)),
        (Atom::Untyped, Value::Null) => Shape::Map(MapType::untyped(), None),
        _ => Shape::Leaf,
    }
}

/// The shape two sides are walked with: the one they agree on, or a leaf when they disagree.
pub(crate) fn common_shape<'s, 'v>(atom: &Atom<'s>, lhs: Option<&'v Value>, rhs: Option<&'v Value>) -> Shape<'s, 'v> {
    let ls = lhs.map(|v| shape(atom, v));
    let rs = rhs.map(|v| shape(atom, v));
    match (ls, rs) {
        (Some(l), Some(r)) if l.same_kind(&r) => r,
        (Some(_), Some(_)) => Shape::Leaf,
        (Some(l), None) => l,
        (None, Some(r)) => r,
        (None, None) => Shape::Leaf,
    }
}

/// The path element naming a list item: its key fields (with API defaults for omitted ones), or
/// its value for a set.
pub(crate) fn item_element(list: &ListType<'_>, item: &Value, index: usize) -> Result<PathElement, String> {
    match &list.kind {
        ListKind::Associative { keys, element_definition } if !keys.is_empty() => {
            let map = match item {
                Value::Object(map) => map,
                Value::Null => return Err("associative list with keys may not have a null element".into()),
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields = Vec::with_capacity(keys.len());
            for key in keys {
                let v = map.get(*key).cloned().or_else(|| key_default(*element_definition, key)).ok_or_else(|| {
                    format!("associative list with keys has an element that omits key field {key:?} (and doesn't have default value)")
                })?;
                fields.push((key.to_string(), v));
            }
            Ok(PathElement::key(fields))
        }
        ListKind::Associative { .. } | ListKind::Set => match item {
            Value::Object(_) => Err("associative list without keys has an element that's a map type".into()),
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => Err("associative list without keys has an element that's an explicit null".into()),
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListKind::Atomic => Ok(PathElement::Index(index as i64)),
    }
}

/// Validation errors collected on a walk, rendered as structured-merge-diff renders them.
#[derive(Default)]
pub(crate) struct Errors(Vec<String>);

impl Errors {
    pub(crate) fn push(&mut self, path: &[PathElement], message: impl std::fmt::Display) {
        self.0.push(format!("{}: {message}", path_string(path)));
    }

    pub(crate) fn into_result<T>(self, ok: T) -> Result<T, String> {
        match self.0.len() {
            0 => Ok(ok),
            1 => Err(self.0.into_iter().next().unwrap_or_default()),
            _ => Err(std::iter::once("errors:".to_string()).chain(self.0.into_iter().map(|e| format!("  {e}"))).collect::<Vec<_>>().join("\n")),
        }
    }
}

/// Items of a list indexed by path element, in order, first occurrence of each element winning.
pub(crate) fn index_items<'v>(
    list: &ListType<'_>,
    items: &'v [Value],
    path: &[PathElement],
    errors: &mut Errors,
) -> Vec<(PathElement, &'v Value)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item_element(list, item, i) {
            Ok(pe) => {
                if seen.insert(pe.clone()) {
                    out.push((pe, item));
                }
            }
            Err(e) => errors.push(path, format!("element {i}: {e}")),
        }
    }
    out
}
