use super::*;
use serde_json::json;

const SERVICE: &str = "io.k8s.api.core.v1.Service";
const POOL: &str = "io.metallb.v1beta1.IPAddressPool";

/// What kubectl 1.32 sends for a manifest: keys sorted at every level (YAML → map → JSON).
fn as_kubectl_sends(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, as_kubectl_sends(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(as_kubectl_sends).collect()),
        other => other,
    }
}

fn type_error(def: &str, obj: Value) -> String {
    check_types(def, &obj).unwrap_err().to_string()
}

#[test]
fn port_as_a_string_is_reported_like_go() {
    // 08-validation-errors.txt, "Wrong types: port as a string".
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "port-string"},
        "spec": {"selector": {"app": "nginx"}, "ports": [{"port": "80"}]}});
    assert_eq!(type_error(SERVICE, svc), "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32");
}

#[test]
fn selector_as_a_list_is_reported_like_go() {
    // 08-validation-errors.txt, "selector as a list".
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "selector-list"},
        "spec": {"selector": ["app=nginx"], "ports": [{"port": 80}]}});
    assert_eq!(
        type_error(SERVICE, svc),
        "json: cannot unmarshal array into Go struct field ServiceSpec.spec.selector of type map[string]string"
    );
}

#[test]
fn type_errors_name_go_types() {
    let svc = |spec: Value| json!({"spec": spec});
    assert_eq!(type_error(SERVICE, svc(json!({"type": 5}))), "json: cannot unmarshal number into Go struct field ServiceSpec.spec.type of type v1.ServiceType");
    assert_eq!(type_error(SERVICE, json!({"spec": "x"})), "json: cannot unmarshal string into Go struct field Service.spec of type v1.ServiceSpec");
    assert_eq!(
        type_error(SERVICE, svc(json!({"ports": {"port": 80}}))),
        "json: cannot unmarshal object into Go struct field ServiceSpec.spec.ports of type []v1.ServicePort"
    );
    assert_eq!(
        type_error(SERVICE, svc(json!({"ipFamilies": [4]}))),
        "json: cannot unmarshal number into Go struct field ServiceSpec.spec.ipFamilies of type v1.IPFamily"
    );
    assert_eq!(
        type_error(SERVICE, svc(json!({"ports": [{"port": 1.5}]}))),
        "json: cannot unmarshal number 1.5 into Go struct field ServicePort.spec.ports.port of type int32"
    );
    assert_eq!(
        type_error(SERVICE, svc(json!({"ports": [{"port": 3000000000u64}]}))),
        "json: cannot unmarshal number 3000000000 into Go struct field ServicePort.spec.ports.port of type int32"
    );
    assert_eq!(
        type_error(SERVICE, svc(json!({"publishNotReadyAddresses": "yes"}))),
        "json: cannot unmarshal string into Go struct field ServiceSpec.spec.publishNotReadyAddresses of type bool"
    );
    // Map values: the field stack does not grow by the key.
    assert_eq!(
        type_error(SERVICE, json!({"metadata": {"labels": {"app": 1}}})),
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
    );
    assert_eq!(type_error(SERVICE, json!([])), "json: cannot unmarshal array into Go value of type v1.Service");
}

#[test]
fn the_first_type_error_wins_unless_a_custom_decoder_fails() {
    let svc = json!({"spec": {"clusterIP": 1, "ports": [{"port": "80", "targetPort": true}]}});
    // targetPort's IntOrString.UnmarshalJSON aborts decoding, and wins over the earlier error.
    assert_eq!(type_error(SERVICE, svc), "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32");
    let svc = json!({"spec": {"clusterIP": 1, "ports": [{"port": "80"}]}});
    assert_eq!(type_error(SERVICE, svc), "json: cannot unmarshal number into Go struct field ServiceSpec.spec.clusterIP of type string");
}

#[test]
fn values_with_their_own_decoders() {
    assert!(check_types(SERVICE, &json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}})).is_ok());
    assert_eq!(
        type_error(SERVICE, json!({"metadata": {"creationTimestamp": "yesterday"}})),
        r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#
    );
    assert_eq!(
        type_error(SERVICE, json!({"metadata": {"creationTimestamp": 5}})),
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string"
    );
    let node = |cap: Value| json!({"status": {"capacity": {"cpu": cap}}});
    assert!(check_types("io.k8s.api.core.v1.Node", &node(json!("500m"))).is_ok());
    assert!(check_types("io.k8s.api.core.v1.Node", &node(json!(2))).is_ok());
    assert_eq!(
        type_error("io.k8s.api.core.v1.Node", node(json!("lots"))),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(type_error("io.k8s.api.core.v1.Node", node(json!("1Zi"))), "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
    assert_eq!(type_error("io.k8s.api.core.v1.Node", node(json!("1iK"))), "unable to parse quantity's suffix");
    assert_eq!(
        type_error("io.k8s.api.core.v1.Secret", json!({"data": {"k": "not base64!"}})),
        "illegal base64 data at input byte 3"
    );
    assert!(check_types("io.k8s.api.core.v1.Secret", &json!({"data": {"k": "aGVsbG8="}})).is_ok());
    // Anything decodes into managedFields' FieldsV1, and null into anything.
    assert!(check_types(SERVICE, &json!({"metadata": {"managedFields": [{"fieldsV1": {"f:spec": {}}}]}, "spec": null, "status": null})).is_ok());
}

#[test]
fn unknown_fields_in_decoder_order() {
    // 08-validation-errors.txt: `strict decoding error: unknown field "spec.ports[0].targtPort",
    // unknown field "spec.portz"`, for a manifest that lists portz before ports.
    let svc = as_kubectl_sends(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "unknown-field"},
        "spec": {"selector": {"app": "nginx"}, "portz": [{"port": 80}], "ports": [{"port": 80, "targtPort": 80}]}}));
    assert_eq!(unknown_fields(SERVICE, &svc), ["spec.ports[0].targtPort", "spec.portz"]);
    let message: Vec<String> = unknown_fields(SERVICE, &svc).iter().map(|p| format!("unknown field {p:?}")).collect();
    assert_eq!(format!("strict decoding error: {}", message.join(", ")), r#"strict decoding error: unknown field "spec.ports[0].targtPort", unknown field "spec.portz""#);

    let unknown = unknown_fields(SERVICE, &json!({"metadata": {"name": "x", "lables": {}}, "top": 1, "Spec": {}}));
    assert_eq!(unknown, ["metadata.lables", "top", "Spec"], "case-sensitive, document order");
}

#[test]
fn duplicate_keys_are_strict_errors_in_place() {
    let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"portz":1,"ports":[{"port":80,"port":81}],"selector":{"a":"1","a":"2"}}}"#;
    let errs: Vec<String> = strict_errors(SERVICE, body).unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(
        errs,
        [
            r#"duplicate field "metadata.name""#,
            r#"unknown field "spec.portz""#,
            r#"duplicate field "spec.ports[0].port""#,
            r#"duplicate field "spec.selector.a""#,
        ]
    );
    assert_eq!(duplicate_fields(SERVICE, body), ["metadata.name", "spec.ports[0].port", "spec.selector.a"]);
    assert!(duplicate_fields(SERVICE, b"not json").is_empty());
    // A repeated unknown key is one unknown field, not a duplicate.
    let errs: Vec<String> = strict_errors(SERVICE, br#"{"spec":{"portz":1,"portz":2}}"#).unwrap().iter().map(ToString::to_string).collect();
    assert_eq!(errs, [r#"unknown field "spec.portz""#]);
}

#[test]
fn pruning_keeps_what_the_go_struct_keeps() {
    let mut svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x", "labels": {"a": "b"}, "bogus": 1},
        "spec": {"portz": [1], "ports": [{"port": 80, "targtPort": 80}], "selector": {"any-key": "kept"}},
        "extra": true});
    prune_unknown(SERVICE, &mut svc);
    assert_eq!(svc, json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {"ports": [{"port": 80}], "selector": {"any-key": "kept"}}}));
    assert!(unknown_fields(SERVICE, &svc).is_empty());
}

#[test]
fn custom_resources_prune_structurally_and_sort() {
    let pool = json!({"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "p", "zzz": 1},
        "spec": {"zeta": 1, "addresses": ["10.0.0.0/24"], "alpha": 2,
            "serviceAllocation": {"namespaceSelectors": [{"matchLabels": {"a": "b"}, "bad": 1}]}},
        "status": {"anything": "is pruned"}});
    assert_eq!(
        unknown_fields(POOL, &pool),
        ["spec.alpha", "spec.serviceAllocation.namespaceSelectors[0].bad", "spec.zeta", "status.anything", "metadata.zzz"]
    );
    let mut pruned = pool.clone();
    prune_unknown(POOL, &mut pruned);
    assert_eq!(pruned["spec"], json!({"addresses": ["10.0.0.0/24"], "serviceAllocation": {"namespaceSelectors": [{"matchLabels": {"a": "b"}}]}}));
    assert_eq!(pruned["status"], json!({}));
    assert_eq!(pruned["metadata"], json!({"name": "p"}));
    // Wrong types are not decode errors for custom resources, but schema errors.
    let bad = json!({"spec": {"addresses": "10.0.0.1", "autoAssign": "yes"}});
    assert!(check_types(POOL, &bad).is_ok());
    let errs: Vec<String> = custom_resource_errors(POOL, &bad).iter().map(ToString::to_string).collect();
    assert_eq!(
        errs,
        [
            r#"spec.addresses: Invalid value: "string": spec.addresses in body must be of type array: "string""#,
            r#"spec.autoAssign: Invalid value: "string": spec.autoAssign in body must be of type boolean: "string""#,
        ]
    );
    assert_eq!(custom_resource_errors(POOL, &json!({"metadata": {"name": "p"}}))[0].to_string(), "spec: Required value");
}

#[test]
fn normalize_does_what_the_go_round_trip_does() {
    let mut svc = json!({"metadata": {"creationTimestamp": "2024-03-01T01:30:00.5+02:00", "labels": {"a": null}, "annotations": null},
        "spec": {"ports": [{"port": 80.0, "targetPort": 8080.0, "name": null}], "clusterIP": null}});
    normalize(SERVICE, &mut svc);
    assert_eq!(svc, json!({"metadata": {"creationTimestamp": "2024-02-29T23:30:00Z", "labels": {"a": ""}},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}]}}));
    let mut port_null = json!({"spec": {"ports": [{"port": null}]}});
    normalize(SERVICE, &mut port_null);
    assert_eq!(port_null, json!({"spec": {"ports": [{"port": 0}]}}), "a required int32 becomes 0");
    let mut node = json!({"status": {"capacity": {"cpu": 2}}});
    normalize("io.k8s.api.core.v1.Node", &mut node);
    assert_eq!(node["status"]["capacity"]["cpu"], "2");
}

#[test]
fn normalize_fills_custom_resource_defaults() {
    let mut pool = json!({"spec": {"addresses": ["10.0.0.0/24"], "avoidBuggyIPs": null}});
    normalize(POOL, &mut pool);
    assert_eq!(pool["spec"], json!({"addresses": ["10.0.0.0/24"], "autoAssign": true, "avoidBuggyIPs": false}));
}
