//! Reference 10, server-side apply: on a fresh object (`nginx-ssa`), with a second manager, on an
//! object owned by client-side apply (`nginx-csa`, including kubectl's migration), and raw
//! applies with curl (`nginx-raw-ssa`).

use crate::harness::{client_side_apply_create, entry, go_json, nginx_manifest, Service};
use serde_json::{json, Value};

const PORT_80: &str = "k:{\"port\":80,\"protocol\":\"TCP\"}";

fn port_80_fields() -> Value {
    json!({".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}})
}

fn kubectl_fields() -> Value {
    json!({"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:ports": {PORT_80: port_80_fields()}, "f:selector": {}}})
}

#[test]
fn apply_on_a_fresh_object() {
    let t49 = "2026-11-21T23:27:49Z";
    let t50 = "2026-11-21T23:27:50Z";
    let mut svc = Service::apply_new(&nginx_manifest("nginx-ssa", 80), "kubectl", t49).unwrap();
    assert_eq!(*svc.managed_fields(), json!([entry("kubectl", "Apply", Some(t49), kubectl_fields())]));
    assert_eq!(svc.obj["spec"]["type"], "ClusterIP");

    // The same configuration again changes nothing, not even the time.
    svc.apply(&nginx_manifest("nginx-ssa", 80), "kubectl", false, t50).unwrap();
    assert_eq!(*svc.managed_fields(), json!([entry("kubectl", "Apply", Some(t49), kubectl_fields())]));

    // A changed targetPort by the same manager: no conflict.
    svc.apply(&nginx_manifest("nginx-ssa", 8080), "kubectl", false, t50).unwrap();
    assert_eq!(svc.ports()[0]["targetPort"], 8080);

    // Another manager changing targetPort conflicts with `kubectl`.
    let other = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-ssa"},
        "spec": {"ports": [{"name": "nginx-port", "protocol": "TCP", "port": 80, "targetPort": 9999}]}});
    let err = svc.apply(&other, "other-tool", false, t50).unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(err.message, r#"Apply failed with 1 conflict: conflict with "kubectl": .spec.ports[port=80,protocol="TCP"].targetPort"#);
    assert_eq!(
        err.to_status()["details"],
        json!({"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\"", "field": ".spec.ports[port=80,protocol=\"TCP\"].targetPort"}]})
    );

    // Another manager adding a port: no conflict, the list is co-owned.
    let metrics = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-ssa"},
        "spec": {"ports": [{"name": "metrics", "protocol": "TCP", "port": 9153}]}});
    svc.apply(&metrics, "other-tool", false, t50).unwrap();
    assert_eq!(
        *svc.managed_fields(),
        json!([
            entry("kubectl", "Apply", Some(t50), kubectl_fields()),
            entry("other-tool", "Apply", Some(t50), json!({"f:spec": {"f:ports": {"k:{\"port\":9153,\"protocol\":\"TCP\"}": {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}}}})),
        ])
    );
    assert_eq!(
        svc.ports(),
        json!([{"name":"nginx-port","port":80,"protocol":"TCP","targetPort":8080},{"name":"metrics","port":9153,"protocol":"TCP","targetPort":9153}])
    );

    // kubectl applying without the metrics port: it stays, other-tool owns it.
    svc.apply(&nginx_manifest("nginx-ssa", 8080), "kubectl", false, t50).unwrap();
    assert_eq!(svc.ports().as_array().unwrap().len(), 2);

    // kubectl applying without the label it alone owned: the label goes.
    let mut unlabelled = nginx_manifest("nginx-ssa", 8080);
    unlabelled["metadata"].as_object_mut().unwrap().remove("labels");
    svc.apply(&unlabelled, "kubectl", false, "2026-11-21T23:27:51Z").unwrap();
    assert!(svc.obj["metadata"].get("labels").is_none(), "{}", svc.obj);
    assert_eq!(svc.obj["spec"]["clusterIP"], "10.96.79.135", "fields nobody applied stay");
    assert_eq!(svc.ports().as_array().unwrap().len(), 2);
}

/// kubectl's client-side part of the CSA → SSA migration (`csaupgrade.UpgradeManagedFieldsPatch`):
/// the client-side manager's fields are merged into the `kubectl` applier's entry.
fn upgrade_patch(svc: &Service) -> String {
    let entries = svc.managed_fields().as_array().unwrap();
    let csa = entries.iter().find(|e| e["manager"] == "kubectl-client-side-apply").unwrap();
    let mut upgraded: Vec<Value> = entries.iter().filter(|e| e["manager"] != "kubectl-client-side-apply").cloned().collect();
    for e in upgraded.iter_mut().filter(|e| e["manager"] == "kubectl" && e["operation"] == "Apply") {
        e["fieldsV1"] = union(&e["fieldsV1"], &csa["fieldsV1"]);
    }
    json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": svc.obj["metadata"]["resourceVersion"]},
        {"op": "replace", "path": "/metadata/managedFields", "value": upgraded}
    ])
    .to_string()
}

fn union(a: &Value, b: &Value) -> Value {
    let mut out = a.as_object().unwrap().clone();
    for (k, v) in b.as_object().unwrap() {
        let merged = match out.get(k) {
            Some(mine) => union(mine, v),
            None => v.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Value::Object(out)
}

#[test]
fn apply_over_client_side_apply() {
    let t51 = "2026-11-21T23:27:51Z";
    let t52 = "2026-11-21T23:27:52Z";
    let mut svc = client_side_apply_create(&nginx_manifest("nginx-csa", 80), t51);

    // Any manager but `kubectl` conflicts with the client-side applier.
    let err = svc.apply(&nginx_manifest("nginx-csa", 8080), "my-ssa", false, t51).unwrap_err();
    assert_eq!(
        err.message,
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .spec.ports[port=80,protocol="TCP"].targetPort"#
    );

    // `kubectl` takes over what last-applied-configuration lists, and updates the annotation.
    svc.apply(&nginx_manifest("nginx-csa", 8080), "kubectl", false, t51).unwrap();
    let annotation = svc.obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].as_str().unwrap().to_string();
    assert_eq!(
        annotation,
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"labels\":{\"app\":\"nginx\"},\"name\":\"nginx-csa\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"nginx-port\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}],\"selector\":{\"app\":\"nginx\"}}}\n"
    );

    assert_eq!(svc.managers(), ["kubectl/Apply", "kubectl-client-side-apply/Update"]);
    let csa = &svc.managed_fields()[1]["fieldsV1"]["f:spec"]["f:ports"][PORT_80];
    assert_eq!(*csa, json!({".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}), "only targetPort changed hands");

    // kubectl then applies the annotation as `kubectl-last-applied` (a no-op: no time recorded)…
    let just_annotation = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "nginx-csa", "namespace": "default", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": annotation}}});
    svc.apply(&just_annotation, "kubectl-last-applied", false, t51).unwrap();
    // …migrates the client-side manager's fields with a JSON patch of managedFields…
    let upgrade = upgrade_patch(&svc);
    svc.patch("json", &upgrade, "kubectl", t51).unwrap();
    assert_eq!(svc.managers(), ["kubectl-last-applied/Apply", "kubectl/Apply"]);
    // …and applies again, which prunes what only the client-side configuration had set.
    svc.apply(&nginx_manifest("nginx-csa", 8080), "kubectl", false, t51).unwrap();
    let annotation_fields = json!({"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}});
    assert_eq!(
        *svc.managed_fields(),
        json!([entry("kubectl-last-applied", "Apply", None, annotation_fields.clone()), entry("kubectl", "Apply", Some(t51), kubectl_fields())])
    );
    assert_eq!(svc.ports(), json!([{"name":"nginx-port","port":80,"protocol":"TCP","targetPort":8080}]));
    assert_eq!(svc.obj["spec"]["sessionAffinity"], "None");

    // An update by another manager, then an apply changing it: a conflict even for `kubectl`.
    svc.patch("strategic", r#"{"spec":{"sessionAffinity":"ClientIP"}}"#, "kubectl-patch", t51).unwrap();
    let mut with_affinity = nginx_manifest("nginx-csa", 8080);
    with_affinity["spec"]["sessionAffinity"] = json!("None");
    let err = svc.apply(&with_affinity, "kubectl", false, t52).unwrap_err();
    assert_eq!(err.message, r#"Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .spec.sessionAffinity"#);

    // --force-conflicts takes the field.
    svc.apply(&with_affinity, "kubectl", true, t52).unwrap();
    let mut kubectl = kubectl_fields();
    kubectl["f:spec"]["f:sessionAffinity"] = json!({});
    assert_eq!(
        *svc.managed_fields(),
        json!([
            entry("kubectl-last-applied", "Apply", None, annotation_fields),
            entry("kubectl", "Apply", Some(t52), kubectl),
            entry("kubectl-patch", "Update", Some(t51), json!({"f:spec": {"f:sessionAffinityConfig": {".": {}, "f:clientIP": {".": {}, "f:timeoutSeconds": {}}}}})),
        ])
    );
    assert_eq!(
        svc.obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"labels\":{\"app\":\"nginx\"},\"name\":\"nginx-csa\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"nginx-port\",\"port\":80,\"protocol\":\"TCP\",\"targetPort\":8080}],\"selector\":{\"app\":\"nginx\"},\"sessionAffinity\":\"None\"}}\n"
    );

    // Back to client-side apply: kubectl's three-way patch from the annotation.
    let mut last = nginx_manifest("nginx-csa", 80);
    last["metadata"]["annotations"] = json!({});
    let three_way = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": go_json(&last) + "\n"}},
        "spec": {"$setElementOrder/ports": [{"port": 80}], "ports": [{"port": 80, "targetPort": 80}], "sessionAffinity": null}
    });
    svc.patch("strategic", &three_way.to_string(), "kubectl-client-side-apply", t52).unwrap();
    assert_eq!(svc.ports(), json!([{"name":"nginx-port","port":80,"protocol":"TCP","targetPort":80}]));
    assert_eq!(svc.managers(), ["kubectl/Apply", "kubectl-patch/Update", "kubectl-client-side-apply/Update"]);
}

#[test]
fn raw_applies_from_curl() {
    let t = "2026-11-21T23:27:53Z";
    let first = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-raw-ssa"},
        "spec": {"selector": {"app": "nginx"}, "ports": [{"name": "p", "port": 80}]}});
    let mut svc = Service::apply_new(&first, "curl-ssa", t).unwrap();
    let curl_ssa = json!({"f:spec": {"f:ports": {PORT_80: {".": {}, "f:name": {}, "f:port": {}}}, "f:selector": {}}});
    assert_eq!(svc.managed_fields().to_string(), json!([entry("curl-ssa", "Apply", Some(t), curl_ssa.clone())]).to_string());
    assert_eq!(svc.ports(), json!([{"name": "p", "protocol": "TCP", "port": 80, "targetPort": 80}]));

    // A second manager setting the defaulted targetPort nobody owned: no conflict.
    let second = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nginx-raw-ssa"},
        "spec": {"ports": [{"name": "p", "port": 80, "targetPort": 81}]}});
    svc.apply(&second, "someone-else", false, t).unwrap();
    assert_eq!(
        svc.managed_fields().to_string(),
        json!([
            entry("curl-ssa", "Apply", Some(t), curl_ssa),
            entry("someone-else", "Apply", Some(t), json!({"f:spec": {"f:ports": {PORT_80: {".": {}, "f:name": {}, "f:port": {}, "f:targetPort": {}}}}})),
        ])
        .to_string()
    );

    svc.patch("strategic", r#"{"spec":{"ports":[{"port":443,"name":"q"}]}}"#, "curl", t).unwrap();
    assert_eq!(
        svc.ports(),
        json!([{"name":"q","protocol":"TCP","port":443,"targetPort":443},{"name":"p","protocol":"TCP","port":80,"targetPort":81}])
    );
    assert_eq!(svc.managers(), ["curl-ssa/Apply", "someone-else/Apply", "curl/Update"]);
}

#[test]
fn apply_errors() {
    let t = "2026-11-21T23:27:53Z";
    let svc = crate::harness::info("Service");
    let writer = patch::Writer { manager: "m", subresource: None, time: t };
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}});
    let err = patch::apply(svc, None, &pod, &writer, false).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (400, "invalid object type: /v1, Kind=Pod"));

    let with_fields = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "managedFields": []}});
    let err = patch::apply(svc, None, &with_fields, &writer, false).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (400, "metadata.managedFields must be nil"));

    let typo = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "default"}, "spec": {"portz": 1}});
    let err = patch::apply(svc, None, &typo, &writer, false).unwrap_err();
    assert_eq!(err.code, 500);
    assert_eq!(err.message, "failed to create typed patch object (default/x; /v1, Kind=Service): .spec.portz: field not declared in schema");

    let keyless = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "default"}, "spec": {"ports": [{"name": "p"}]}});
    let err = patch::apply(svc, None, &keyless, &writer, false).unwrap_err();
    assert_eq!(
        err.message,
        "failed to create typed patch object (default/x; /v1, Kind=Service): .spec.ports: element 0: associative list with keys has an element that omits key field \"port\" (and doesn't have default value)"
    );
}
