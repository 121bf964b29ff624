//! Merging lists with the `merge` strategy, and the order of the result.
//!
//! Items of a list of maps match by merge key: matched items merge, new ones are added, items
//! with `$patch: delete` remove their match. Lists of scalars merge as a union, or lose the
//! values of a `$deleteFromPrimitiveList`. The order is then normalised: items the patch
//! mentions in the patch's order (or `$setElementOrder`'s), the others in their live order, and
//! the two interleaved by live position where both are known — so a brand-new item goes first.

use super::{bad_arg_type, clean, field_meta, merge_map, no_merge_key, FieldMeta, SmpError};
use super::{BAD_SET_ELEMENT_ORDER, DIRECTIVE, NO_LIST_OF_LISTS, SET_ELEMENT_ORDER};
use crate::gojson;
use crate::typed::TypeRef;
use serde_json::{Map, Value};

/// Whether a list holds maps (merged by key) or scalars.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Map,
    Scalar,
}

/// `sliceElementType`: all items of the lists must share one Go type, and not be lists.
fn item_kind(lists: &[&[Value]]) -> Result<ItemKind, SmpError> {
    let mut first: Option<&'static str> = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let t = gojson::go_type(item);
        match first {
            None if item.is_array() => return Err(SmpError::Unprocessable(NO_LIST_OF_LISTS)),
            None => first = Some(t),
            Some(f) if f != t => {
                let rendered: Vec<String> = lists.iter().map(|l| gojson::format_v(&Value::Array(l.to_vec()))).collect();
                return Err(SmpError::Other(format!("list element types are not identical: [{}]", rendered.join(" "))));
            }
            Some(_) => {}
        }
    }
    match first {
        Some("map[string]interface {}") => Ok(ItemKind::Map),
        Some(_) => Ok(ItemKind::Scalar),
        None => Err(SmpError::Other("no elements in any of the given slices".into())),
    }
}

/// `mergeSlice`.
pub(super) fn merge_list(original: Vec<Value>, patch: Vec<Value>, meta: &FieldMeta<'_>, delete_list: bool) -> Result<Vec<Value>, SmpError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = item_kind(&[&original, &patch])?;
    let key = meta.merge_key.as_str();
    let (server_order, patch_order, merged) = match kind {
        ItemKind::Scalar if delete_list => return Ok(original.into_iter().filter(|v| !patch.contains(v)).collect()),
        ItemKind::Scalar => {
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(&patch) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            (original, patch, merged)
        }
        ItemKind::Map => {
            if key.is_empty() {
                return Err(SmpError::Other("cannot merge lists without merge key for struct".into()));
            }
            let (original, patch) = apply_special_items(original, patch, key)?;
            let merged = merge_items(original.clone(), &patch, key, meta.ty)?;
            (original, patch, merged)
        }
    };
    let (in_patch, server_only) = partition(merged, &patch_order, key, kind)?;
    normalize_order(in_patch, server_only, &patch_order, &server_order, key, kind)
}

/// `mergeSliceWithSpecialElements`: `$patch: delete` items remove their match from the
/// original; a `$patch: replace` item makes the rest of the patch the whole list.
fn apply_special_items(mut original: Vec<Value>, patch: Vec<Value>, key: &str) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                while let Some(i) = find_by_key(&original, key, value)? {
                    original.remove(i);
                }
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(SmpError::Other("merging lists cannot yet be specified in the patch".into())),
            _ => {
                let map = item.as_object().cloned().unwrap_or_default();
                return Err(super::bad_patch_type(directive, &map));
            }
        }
    }
    Ok(if replace { (plain, Vec::new()) } else { (original, plain) })
}

/// `findMapInSliceBasedOnKeyValue`: the position of the first map whose merge key equals `value`.
fn find_by_key(items: &[Value], key: &str, value: &Value) -> Result<Option<usize>, SmpError> {
    for (i, item) in items.iter().enumerate() {
        let map = item.as_object().ok_or_else(|| SmpError::Other(format!("value for key {i} is not a map")))?;
        if map.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `mergeSliceWithoutSpecialElements`: patch items merge into their match or are appended.
fn merge_items(mut original: Vec<Value>, patch: &[Value], key: &str, ty: TypeRef<'_>) -> Result<Vec<Value>, SmpError> {
    for item in patch {
        let value = item.get(key).ok_or_else(|| no_merge_key(item, key))?;
        match find_by_key(&original, key, value)? {
            Some(i) => {
                let current = original[i].as_object().cloned().unwrap_or_default();
                let patch_map = item.as_object().cloned().unwrap_or_default();
                original[i] = Value::Object(merge_map(current, patch_map, ty)?);
            }
            None => original.extend(clean(item.clone())),
        }
    }
    Ok(original)
}

/// Splits `merged` into the items `by` mentions and the others, keeping their order.
fn partition(merged: Vec<Value>, by: &[Value], key: &str, kind: ItemKind) -> Result<(Vec<Value>, Vec<Value>), SmpError> {
    let mut mentioned = Vec::new();
    let mut others = Vec::new();
    for item in merged {
        let found = if kind == ItemKind::Scalar || key.is_empty() {
            by.contains(&item)
        } else {
            let map = item.as_object().ok_or_else(|| bad_arg_type("map[string]interface {}", &item))?;
            let value = map.get(key).ok_or_else(|| no_merge_key(&item, key))?;
            find_by_key(by, key, value)?.is_some()
        };
        if found {
            mentioned.push(item);
        } else {
            others.push(item);
        }
    }
    Ok((mentioned, others))
}

/// `index`: where an item sits in `order`, by merge key for maps and by value for scalars.
fn position(order: &[Value], item: &Value, key: &str, kind: ItemKind) -> Option<usize> {
    match kind {
        ItemKind::Map => order.iter().position(|o| o.get(key) == item.get(key)),
        ItemKind::Scalar => order.iter().position(|o| o == item),
    }
}

/// `normalizeElementOrder`: sorts the patch's items by `patch_order` and the server's by
/// `server_order`, then interleaves them.
fn normalize_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: &str,
    kind: ItemKind,
) -> Result<Vec<Value>, SmpError> {
    let right = sort_by_order(in_patch, patch_order, key, kind)?;
    let left = sort_by_order(server_only, server_order, key, kind)?;
    // `mergeSortedSlice`: a server item goes before a patch item only when both have a live
    // position and the server item's is earlier.
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (position(server_order, l, key, kind), position(server_order, r, key, kind)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    Ok(out)
}

/// `normalizeSliceOrder`: a stable sort by position in `order`; `$patch: delete` items last.
fn sort_by_order(items: Vec<Value>, order: &[Value], key: &str, kind: ItemKind) -> Result<Vec<Value>, SmpError> {
    let mut deletes = Vec::new();
    let mut items = if kind == ItemKind::Map {
        for item in items.iter().chain(order) {
            let map = item.as_object().ok_or_else(|| bad_arg_type("map[string]interface {}", item))?;
            if !map.contains_key(key) {
                return Err(no_merge_key(item, key));
            }
        }
        let (keep, delete): (Vec<Value>, Vec<Value>) =
            items.into_iter().partition(|i| i.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"));
        deletes = delete;
        keep
    } else {
        items
    };
    items.sort_by_key(|item| position(order, item, key, kind).unwrap_or(usize::MAX));
    items.extend(deletes);
    Ok(items)
}

/// `mergePatchIntoOriginal`: each `$setElementOrder/<field>` merges its list now and orders the
/// result by the directive.
pub(super) fn merge_set_element_order(original: &mut Map<String, Value>, patch: &mut Map<String, Value>, ty: TypeRef<'_>) -> Result<(), SmpError> {
    let directives: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
    for directive in directives {
        let order = patch.remove(&directive).unwrap_or(Value::Null);
        let Value::Array(order) = order else { return Err(bad_arg_type("[]interface {}", &order)) };
        let field = match directive.split_once('/') {
            Some((SET_ELEMENT_ORDER, field)) => field.to_string(),
            _ => return Err(SmpError::BadRequest(BAD_SET_ELEMENT_ORDER)),
        };
        let current = match original.get(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let patched = match patch.get(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
        };
        let meta = field_meta(ty, &field, true)?;
        check_order(patched.as_deref().unwrap_or_default(), &order, &meta.merge_key)?;
        let merged = match (&current, &patched) {
            (Some(c), None) => c.clone(),
            (None, Some(p)) => super::clean_list(p.clone()),
            (Some(c), Some(p)) if meta.strategy == "merge" => merge_list(c.clone(), p.clone(), &meta, false)?,
            (Some(_), Some(p)) => p.clone(),
            (None, None) => continue,
        };
        let current = current.unwrap_or_default();
        let patched = patched.unwrap_or_default();
        let kind = item_kind(&[&current, &patched])?;
        let (in_order, server_only) = partition(merged, &order, &meta.merge_key, kind)?;
        let ordered = normalize_order(in_order, server_only, &order, &current, &meta.merge_key, kind)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.remove(&field);
    }
    Ok(())
}

/// `validatePatchWithSetOrderList`: the patch's items must appear in the order list, in order.
fn check_order(patch: &[Value], order: &[Value], key: &str) -> Result<(), SmpError> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = if key.is_empty() {
        patch.iter().collect()
    } else {
        patch.iter().filter(|i| i.get(DIRECTIVE).and_then(Value::as_str) != Some("delete")).collect()
    };
    let same = |a: &Value, b: &Value| -> Result<bool, SmpError> {
        if key.is_empty() {
            return Ok(a == b);
        }
        let l = a.as_object().ok_or_else(|| bad_arg_type("map[string]interface {}", a))?;
        let r = b.as_object().ok_or_else(|| bad_arg_type("map[string]interface {}", b))?;
        Ok(l.get(key).ok_or_else(|| no_merge_key(a, key))? == r.get(key).ok_or_else(|| no_merge_key(b, key))?)
    };
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if items[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        if same(items[pi], &order[oi])? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(SmpError::Other(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}",
            gojson::format_v(&Value::Array(patch.to_vec())),
            gojson::format_v(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}
