//! Invariants that hold for any input, checked on generated objects.

use crate::harness::info;
use patch::Writer;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// JSON values without nulls (merge patches cannot set null), nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![any::<bool>().prop_map(Value::from), (-5i64..5).prop_map(Value::from), "[a-c]{0,2}".prop_map(Value::from)];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", json_value(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// The merge patch that turns `a` into `b` (RFC 7386 §3, inverted).
fn merge_diff(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = Map::new();
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                patch.insert(k.clone(), Value::Null);
            }
            for (k, bv) in b {
                match a.get(k) {
                    Some(av) if av == bv => {}
                    Some(av) if av.is_object() && bv.is_object() => {
                        patch.insert(k.clone(), merge_diff(av, bv));
                    }
                    _ => {
                        patch.insert(k.clone(), bv.clone());
                    }
                }
            }
            Value::Object(patch)
        }
        (_, b) => b.clone(),
    }
}

/// A Service configuration: some of a few ports, labels and a selector.
fn service_config() -> impl Strategy<Value = Value> {
    let ports = prop::sample::subsequence(vec![80i64, 443, 8080, 9090], 0..4);
    let labels = prop::collection::btree_map("[a-c]", "[x-z]", 0..3);
    (ports, labels, prop::option::of("[a-c]"), any::<bool>()).prop_map(|(ports, labels, selector, nodeport)| {
        let ports: Vec<Value> = ports.iter().map(|p| json!({"name": format!("p{p}"), "port": p})).collect();
        let mut cfg = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gen", "namespace": "default"}, "spec": {}});
        if !labels.is_empty() {
            cfg["metadata"]["labels"] = json!(labels);
        }
        if !ports.is_empty() {
            cfg["spec"]["ports"] = Value::Array(ports);
        }
        if let Some(s) = selector {
            cfg["spec"]["selector"] = json!({"app": s});
        }
        if nodeport {
            cfg["spec"]["type"] = json!("NodePort");
        }
        cfg
    })
}

/// Objects shaped like Services and their patches, directives included, to probe for panics.
fn service_like() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "spec", "metadata", "ports", "port", "protocol", "name", "selector", "labels", "type", "finalizers", "targetPort",
        "$patch", "$retainKeys", "$setElementOrder/ports", "$deleteFromPrimitiveList/finalizers", "delete", "replace",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        (0i64..3).prop_map(Value::from),
        prop::sample::select(vec!["TCP", "delete", "replace", "merge", "x"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn json_patch_op() -> impl Strategy<Value = Value> {
    let op = prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "bogus"]);
    let token = prop::sample::select(vec!["a", "b", "c", "0", "1", "-", "-1", "-9", "99", "x~1y", ""]);
    let path = prop::collection::vec(token, 0..4).prop_map(|t| if t.is_empty() { String::new() } else { format!("/{}", t.join("/")) });
    (op, path.clone(), path, prop::option::of(json_value())).prop_map(|(op, path, from, value)| {
        let mut o = json!({"op": op, "path": path, "from": from});
        if let Some(v) = value {
            o["value"] = v;
        }
        o
    })
}

fn writer(manager: &str) -> Writer<'_> {
    Writer { manager, subresource: None, time: "2026-11-21T23:27:49Z" }
}

proptest! {
    #[test]
    fn merge_patch_of_a_diff_turns_a_into_b(a in json_object(), b in json_object()) {
        let patch = merge_diff(&a, &b).to_string();
        prop_assert_eq!(patch::merge_patch(&a, patch.as_bytes()).unwrap(), b);
    }

    #[test]
    fn json_patch_of_a_diff_turns_a_into_b(a in json_object(), b in json_object()) {
        let patch = serde_json::to_string(&json_patch::diff(&a, &b)).unwrap();
        prop_assert_eq!(patch::json_patch(&a, patch.as_bytes()).unwrap(), b);
    }

    #[test]
    fn applying_the_same_configuration_twice_changes_nothing(cfg in service_config()) {
        let svc = info("Service");
        let first = patch::apply(svc, None, &cfg, &writer("kubectl"), false).unwrap();
        let second = patch::apply(svc, Some(&first), &cfg, &writer("kubectl"), false).unwrap();
        prop_assert_eq!(first, second);
    }

    #[test]
    fn a_second_applier_of_other_ports_conflicts_with_nobody(a in service_config(), b in service_config()) {
        let svc = info("Service");
        let mine: Vec<i64> = a["spec"]["ports"].as_array().map(|p| p.iter().map(|p| p["port"].as_i64().unwrap()).collect()).unwrap_or_default();
        // The second manager applies only ports the first did not.
        let mut b = b;
        if let Some(ports) = b["spec"]["ports"].as_array_mut() {
            ports.retain(|p| !mine.contains(&p["port"].as_i64().unwrap()));
        }
        b["spec"].as_object_mut().unwrap().retain(|k, _| k == "ports");
        b["metadata"].as_object_mut().unwrap().remove("labels");
        let live = patch::apply(svc, None, &a, &writer("one"), false).unwrap();
        let both = patch::apply(svc, Some(&live), &b, &writer("two"), false).unwrap();
        let ports: Vec<i64> = both["spec"]["ports"].as_array().map(|p| p.iter().map(|p| p["port"].as_i64().unwrap()).collect()).unwrap_or_default();
        let theirs = b["spec"]["ports"].as_array().map(Vec::len).unwrap_or(0);
        prop_assert_eq!(ports.len(), mine.len() + theirs);
        // And the first manager re-applying its configuration keeps the second's ports.
        let again = patch::apply(svc, Some(&both), &a, &writer("one"), false).unwrap();
        prop_assert_eq!(&again["spec"]["ports"], &both["spec"]["ports"]);
    }

    #[test]
    fn strategic_merge_patch_is_idempotent(cfg in service_config(), patch_cfg in service_config()) {
        let svc = info("Service");
        let body = json!({"metadata": patch_cfg["metadata"], "spec": patch_cfg["spec"]}).to_string();
        let once = patch::strategic_merge_patch(svc, &cfg, body.as_bytes()).unwrap();
        let twice = patch::strategic_merge_patch(svc, &once, body.as_bytes()).unwrap();
        prop_assert_eq!(once, twice);
    }

    #[test]
    fn patches_and_applies_never_panic(original in service_like(), body in service_like()) {
        let svc = info("Service");
        let bytes = body.to_string();
        let _ = patch::strategic_merge_patch(svc, &original, bytes.as_bytes());
        let _ = patch::merge_patch(&original, bytes.as_bytes());
        let _ = patch::json_patch(&original, bytes.as_bytes());
        if let (Value::Object(_), Value::Object(mut cfg)) = (&original, body) {
            cfg.insert("apiVersion".into(), json!("v1"));
            cfg.insert("kind".into(), json!("Service"));
            let live = patch::apply(svc, None, &original_as_service(&original), &writer("one"), true).ok();
            let _ = patch::apply(svc, live.as_ref(), &Value::Object(cfg), &writer("two"), false);
            let _ = patch::update_managed_fields(svc, live.as_ref(), &original, &writer("three"));
        }
    }

    #[test]
    fn json_patch_operations_never_panic(doc in json_object(), ops in prop::collection::vec(json_patch_op(), 0..4)) {
        let _ = patch::json_patch(&doc, Value::Array(ops).to_string().as_bytes());
    }

    #[test]
    fn an_update_that_changes_nothing_keeps_ownership(cfg in service_config()) {
        let svc = info("Service");
        let mut created = cfg.clone();
        patch::record_update(svc, None, &mut created, &writer("kubectl-create"));
        let fields = patch::update_managed_fields(svc, Some(&created), &created, &writer("someone"));
        prop_assert_eq!(Value::Array(fields), created["metadata"].get("managedFields").cloned().unwrap_or(Value::Array(vec![])));
    }
}

fn original_as_service(v: &Value) -> Value {
    let mut v = v.clone();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Service");
    v
}
