//! Unit tests per directive and per list strategy.

use super::strategic_merge_patch;
use model::ResourceInfo;
use serde_json::{json, Value};

fn info(kind: &str) -> &'static ResourceInfo {
    model::RESOURCES.iter().find(|r| r.kind == kind).expect("served kind")
}

fn smp(kind: &str, original: Value, patch: Value) -> Value {
    strategic_merge_patch(info(kind), &original, patch.to_string().as_bytes()).unwrap()
}

fn ports(v: &Value) -> Vec<i64> {
    v["spec"]["ports"].as_array().unwrap().iter().map(|p| p["port"].as_i64().unwrap()).collect()
}

fn svc(ports: &[i64]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|p| json!({"port": p, "protocol": "TCP", "targetPort": p})).collect();
    json!({"spec": {"ports": ports, "selector": {"app": "nginx"}, "type": "ClusterIP"}})
}

#[test]
fn new_items_go_before_the_live_ones() {
    let out = smp("Service", svc(&[80]), json!({"spec": {"ports": [{"name": "https", "port": 443, "targetPort": 443}]}}));
    assert_eq!(ports(&out), [443, 80]);
}

#[test]
fn items_merge_by_key() {
    let out = smp("Service", svc(&[443, 80]), json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}));
    assert_eq!(out["spec"]["ports"][1], json!({"port": 80, "protocol": "TCP", "targetPort": 8080}));
}

#[test]
fn delete_directive_removes_an_item() {
    let out = smp("Service", svc(&[443, 80]), json!({"spec": {"ports": [{"port": 443, "$patch": "delete"}]}}));
    assert_eq!(ports(&out), [80]);
}

#[test]
fn replace_directive_in_a_list_replaces_it() {
    let out = smp("Service", svc(&[443, 80]), json!({"spec": {"ports": [{"$patch": "replace"}, {"port": 9090}]}}));
    assert_eq!(out["spec"]["ports"], json!([{"port": 9090}]));
}

#[test]
fn replace_directive_on_a_map_replaces_it() {
    let out = smp("Service", svc(&[80]), json!({"spec": {"$patch": "replace", "type": "NodePort"}}));
    assert_eq!(out["spec"], json!({"type": "NodePort"}));
}

#[test]
fn delete_directive_on_a_map_empties_it() {
    let out = smp("Service", svc(&[80]), json!({"spec": {"$patch": "delete"}}));
    assert_eq!(out["spec"], json!({}));
}

#[test]
fn null_deletes_a_key_and_atomic_maps_merge_as_maps() {
    let out = smp("Service", svc(&[80]), json!({"spec": {"selector": {"tier": "web"}}}));
    assert_eq!(out["spec"]["selector"], json!({"app": "nginx", "tier": "web"}));
    let out = smp("Service", out, json!({"spec": {"selector": {"tier": null}}}));
    assert_eq!(out["spec"]["selector"], json!({"app": "nginx"}));
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    let original = json!({"spec": {"ipFamilies": ["IPv4", "IPv6"]}});
    let out = smp("Service", original, json!({"spec": {"ipFamilies": ["IPv6"]}}));
    assert_eq!(out["spec"]["ipFamilies"], json!(["IPv6"]));
}

#[test]
fn primitive_merge_lists_are_unions_and_delete_from_primitive_list_removes() {
    let original = json!({"metadata": {"finalizers": ["a", "b"]}});
    let out = smp("Service", original, json!({"metadata": {"finalizers": ["c", "a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = smp("Service", out, json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "b"]));
}

#[test]
fn set_element_order_orders_the_result() {
    let original = svc(&[1, 2, 3]);
    let patch = json!({"spec": {"$setElementOrder/ports": [{"port": 3}, {"port": 1}, {"port": 2}], "ports": [{"port": 1, "name": "one"}]}});
    let out = smp("Service", original, patch);
    assert_eq!(ports(&out), [3, 1, 2]);
    assert_eq!(out["spec"]["ports"][1]["name"], "one");
}

#[test]
fn set_element_order_out_of_step_with_the_patch_fails() {
    let patch = json!({"spec": {"$setElementOrder/ports": [{"port": 1}], "ports": [{"port": 2}]}});
    let err = strategic_merge_patch(info("Service"), &svc(&[1, 2]), patch.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.code, 500);
    assert!(err.message.starts_with("the order in patch list:"), "{}", err.message);
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let original = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]}});
    let patch = json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "cm"}}]}});
    let out = smp("Pod", original, patch);
    assert_eq!(out["spec"]["volumes"], json!([{"name": "v", "configMap": {"name": "cm"}}]));
}

#[test]
fn retain_keys_must_list_what_the_patch_sets() {
    let patch = json!({"spec": {"$retainKeys": ["type"], "selector": {"a": "b"}}});
    let err = strategic_merge_patch(info("Service"), &svc(&[80]), patch.to_string().as_bytes()).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (400, "invalid patch format of retainKeys"));
}

#[test]
fn a_missing_merge_key_is_an_error() {
    let err = strategic_merge_patch(info("Service"), &svc(&[80]), br#"{"spec":{"ports":[{"name":"x"}]}}"#).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (500, "map: map[name:x] does not contain declared merge key: port"));
}

#[test]
fn unknown_directives_are_errors() {
    let err = strategic_merge_patch(info("Service"), &svc(&[80]), br#"{"spec":{"$patch":"frob"}}"#).unwrap_err();
    assert_eq!(err.message, "unknown patch type: frob in map: map[$patch:frob]");
    let err = strategic_merge_patch(info("Service"), &svc(&[80]), br#"{"spec":{"ports":[{"$patch":"merge"}]}}"#).unwrap_err();
    assert_eq!(err.message, "merging lists cannot yet be specified in the patch");
}

#[test]
fn new_values_lose_their_nulls_and_directives() {
    let out = smp("Service", json!({"spec": {}}), json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10, "x": null}}}}));
    assert_eq!(out["spec"]["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 10}}));
    let out = smp("Service", json!({"spec": {}}), json!({"spec": {"ports": [{"port": 1, "$patch": "delete"}, {"port": 2}]}}));
    assert_eq!(out["spec"]["ports"], json!([{"port": 2}]));
}

#[test]
fn a_non_object_body_is_a_bad_request() {
    let err = strategic_merge_patch(info("Service"), &svc(&[80]), br#""x""#).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (400, "json: cannot unmarshal string into Go value of type map[string]interface {}"));
}

#[test]
fn kinds_without_a_schema_get_merge_patch_semantics() {
    let pool = ResourceInfo { definition: "io.example.v1.Unknown", ..*info("Service") };
    let out = strategic_merge_patch(&pool, &json!({"spec": {"a": [1, 2]}}), br#"{"spec":{"a":[3]}}"#).unwrap();
    assert_eq!(out, json!({"spec": {"a": [3]}}));
}
