//! Merges an applied configuration into a live object (`TypedValue.Merge`): leaves take the
//! configuration's value, granular maps merge entry by entry, list-maps and sets merge item by
//! item. Items keep the live order, except that items the configuration shares with the live
//! list follow the configuration's order, and new items go where the configuration puts them.

use super::{common_shape, item_element, Errors, Shape, TypeRef};
use crate::fieldpath::{Path, PathElement};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};

/// `lhs` merged with `rhs`, `rhs` winning on leaves. Duplicate items in `rhs` are an error.
pub(crate) fn merge(lhs: &Value, rhs: &Value, ty: TypeRef<'_>) -> Result<Value, String> {
    let mut walk = Walk { errors: Errors::default(), path: Vec::new() };
    let out = walk.node(ty, Some(lhs), Some(rhs)).unwrap_or_else(|| Value::Object(Map::new()));
    walk.errors.into_result(out)
}

struct Walk {
    errors: Errors,
    path: Path,
}

impl Walk {
    fn node(&mut self, ty: TypeRef<'_>, lhs: Option<&Value>, rhs: Option<&Value>) -> Option<Value> {
        let leaf = || rhs.or(lhs).cloned();
        match common_shape(&ty.atom(), lhs, rhs) {
            Shape::Leaf => leaf(),
            Shape::Map(map, _) => {
                let (l, r) = (lhs.and_then(Value::as_object), rhs.and_then(Value::as_object));
                if l.is_none_or(|m| m.is_empty()) && r.is_none_or(|m| m.is_empty()) {
                    return leaf();
                }
                let mut out = Map::new();
                let mut keys: Vec<&String> = l.map(|m| m.keys().collect()).unwrap_or_default();
                if let Some(r) = r {
                    keys.extend(r.keys().filter(|k| !l.is_some_and(|l| l.contains_key(*k))));
                }
                for key in keys {
                    self.path.push(PathElement::Field(key.clone()));
                    if let Some(v) = self.node(map.child(key), l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key))) {
                        out.insert(key.clone(), v);
                    }
                    self.path.pop();
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Shape::List(list, _) => {
                let (l, r) = (lhs.and_then(Value::as_array), rhs.and_then(Value::as_array));
                if l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty) {
                    return leaf();
                }
                let lhs_items = self.index(&list, l, false);
                let rhs_items = self.index(&list, r, true);
                let lhs_by: BTreeMap<&PathElement, &Value> = lhs_items.iter().map(|(pe, v)| (pe, *v)).collect();
                let rhs_by: BTreeMap<&PathElement, &Value> = rhs_items.iter().map(|(pe, v)| (pe, *v)).collect();
                let mut shared: VecDeque<&PathElement> =
                    rhs_items.iter().map(|(pe, _)| pe).filter(|pe| lhs_by.contains_key(pe)).collect();
                let mut next_shared = shared.pop_front();
                let mut out = Vec::with_capacity(lhs_items.len().max(rhs_items.len()));
                let (mut li, mut ri) = (0, 0);
                while li < lhs_items.len() || ri < rhs_items.len() {
                    if li < lhs_items.len() && ri < rhs_items.len() {
                        let pe = &lhs_items[li].0;
                        if *pe == rhs_items[ri].0 {
                            out.extend(self.item(&list, pe, Some(lhs_items[li].1), Some(rhs_items[ri].1)));
                            li += 1;
                            ri += 1;
                            next_shared = shared.pop_front();
                            continue;
                        }
                        // A shared item the configuration wants later: it is placed when reached there.
                        if rhs_by.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                            li += 1;
                            continue;
                        }
                    }
                    if li < lhs_items.len() && !rhs_by.contains_key(&lhs_items[li].0) {
                        out.extend(self.item(&list, &lhs_items[li].0, Some(lhs_items[li].1), None));
                        li += 1;
                        continue;
                    }
                    if ri < rhs_items.len() {
                        let (pe, item) = &rhs_items[ri];
                        out.extend(self.item(&list, pe, lhs_by.get(pe).copied(), Some(item)));
                        ri += 1;
                        if next_shared == Some(pe) {
                            next_shared = shared.pop_front();
                        }
                    } else {
                        // Only shared items already placed remain on the live side.
                        li += 1;
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    fn index<'v>(&mut self, list: &super::schema::ListType<'_>, items: Option<&'v Vec<Value>>, strict: bool) -> Vec<(PathElement, &'v Value)> {
        let mut out: Vec<(PathElement, &Value)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, item) in items.map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
            match item_element(list, item, i) {
                Ok(pe) if seen.insert(pe.clone()) => out.push((pe, item)),
                Ok(pe) if strict => self.errors.push(&self.path, format!("duplicate entries for key {pe}")),
                Ok(_) => {}
                Err(e) => self.errors.push(&self.path, format!("element {i}: {e}")),
            }
        }
        out
    }

    fn item(&mut self, list: &super::schema::ListType<'_>, pe: &PathElement, lhs: Option<&Value>, rhs: Option<&Value>) -> Option<Value> {
        self.path.push(pe.clone());
        let out = self.node(list.element, lhs, rhs);
        self.path.pop();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> TypeRef<'static> {
        TypeRef::definition("io.k8s.api.core.v1.Service")
    }

    #[test]
    fn list_maps_merge_by_key_and_keep_live_order() {
        let live = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}, {"port": 9153, "protocol": "TCP"}], "type": "ClusterIP"}});
        let cfg = json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}});
        let out = merge(&live, &cfg, svc()).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080, "name": "http"}, {"port": 9153, "protocol": "TCP"}], "type": "ClusterIP"}})
        );
    }

    #[test]
    fn shared_items_follow_the_configuration_order() {
        let live = json!({"spec": {"ports": [{"port": 1}, {"port": 2}, {"port": 3}]}});
        let cfg = json!({"spec": {"ports": [{"port": 3}, {"port": 4}, {"port": 1}]}});
        let out = merge(&live, &cfg, svc()).unwrap();
        let ports: Vec<i64> = out["spec"]["ports"].as_array().unwrap().iter().map(|p| p["port"].as_i64().unwrap()).collect();
        assert_eq!(ports, [2, 3, 4, 1]);
    }

    #[test]
    fn atomic_lists_and_maps_are_replaced() {
        let live = json!({"spec": {"selector": {"app": "a", "x": "y"}, "ipFamilies": ["IPv4", "IPv6"]}});
        let cfg = json!({"spec": {"selector": {"app": "b"}, "ipFamilies": ["IPv4"]}});
        assert_eq!(merge(&live, &cfg, svc()).unwrap(), cfg);
    }

    #[test]
    fn duplicates_in_the_configuration_are_rejected() {
        let cfg = json!({"spec": {"ports": [{"port": 80}, {"port": 80}]}});
        assert_eq!(merge(&json!({}), &cfg, svc()).unwrap_err(), ".spec.ports: duplicate entries for key [port=80,protocol=\"TCP\"]");
    }
}
