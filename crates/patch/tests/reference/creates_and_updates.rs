//! Ownership recorded by plain creates and updates, from references 00, 08 and 11: kubectl
//! create/label/patch of a Service, kube-apiserver's own `kubernetes` Service, a curl create,
//! and kube-controller-manager writing an EndpointSlice.

use crate::harness::{entry, info, Service};
use patch::Writer;
use serde_json::{json, Value};

const T: &str = "2026-11-21T23:27:54Z";

fn fields_of(obj: &Value, manager: &str) -> String {
    let entries = obj["metadata"]["managedFields"].as_array().unwrap();
    entries.iter().find(|e| e["manager"] == manager).map(|e| e["fieldsV1"].to_string()).unwrap_or_default()
}

#[test]
fn kubectl_create_label_and_patch() {
    let created = json!({"kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "watch-demo", "namespace": "default", "creationTimestamp": null, "labels": {"app": "watch-demo"}},
        "spec": {"ports": [{"name": "80-80", "protocol": "TCP", "port": 80, "targetPort": 80}], "selector": {"app": "watch-demo"}, "type": "ClusterIP"},
        "status": {"loadBalancer": {}}});
    let mut svc = Service::create(created, "kubectl-create", T);
    let create_fields = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}"#;
    assert_eq!(fields_of(&svc.obj, "kubectl-create"), create_fields);

    svc.patch("merge", r#"{"metadata":{"labels":{"tier":"web"}}}"#, "kubectl-label", T).unwrap();
    assert_eq!(fields_of(&svc.obj, "kubectl-create"), create_fields);
    assert_eq!(fields_of(&svc.obj, "kubectl-label"), r#"{"f:metadata":{"f:labels":{"f:tier":{}}}}"#);

    svc.patch("strategic", r#"{"spec":{"selector":{"app":"nginx"}}}"#, "kubectl-patch", T).unwrap();
    // The selector is an atomic map: it changes hands whole.
    assert_eq!(
        fields_of(&svc.obj, "kubectl-create"),
        r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:internalTrafficPolicy":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:sessionAffinity":{},"f:type":{}}}"#
    );
    assert_eq!(fields_of(&svc.obj, "kubectl-patch"), r#"{"f:spec":{"f:selector":{}}}"#);
    assert_eq!(svc.managers(), ["kubectl-create/Update", "kubectl-label/Update", "kubectl-patch/Update"]);
}

#[test]
fn the_kubernetes_service_and_a_curl_create() {
    // kube-apiserver creates `default/kubernetes` with its ClusterIP and ipFamilyPolicy set.
    let kubernetes = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}], "clusterIP": "10.96.0.1", "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None", "type": "ClusterIP"}});
    let svc = Service::create(kubernetes, "kube-apiserver", "2026-11-21T23:26:30Z");
    assert_eq!(
        fields_of(&svc.obj, "kube-apiserver"),
        r#"{"f:metadata":{"f:labels":{".":{},"f:component":{},"f:provider":{}}},"f:spec":{"f:clusterIP":{},"f:internalTrafficPolicy":{},"f:ipFamilyPolicy":{},"f:ports":{".":{},"k:{\"port\":443,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:sessionAffinity":{},"f:type":{}}}"#
    );

    // curl, with an unknown field and no labels: no f:metadata at all.
    let strict2 = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "strict2"}, "spec": {"portz": 1, "ports": [{"port": 80}]}});
    let svc = Service::create(strict2, "curl", "2026-11-21T23:27:37Z");
    assert_eq!(
        svc.managed_fields().to_string(),
        json!([entry("curl", "Update", Some("2026-11-21T23:27:37Z"), json!({"f:spec": {"f:internalTrafficPolicy": {}, "f:ports": {".": {},
            "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}}, "f:sessionAffinity": {}, "f:type": {}}}))])
        .to_string()
    );
}

#[test]
fn kube_controller_manager_writes_an_endpointslice() {
    let slices = info("EndpointSlice");
    let writer = Writer { manager: "kube-controller-manager", subresource: None, time: T };
    let owner = json!([{"apiVersion": "v1", "kind": "Service", "name": "watch-demo", "uid": "c2a3ab9c-2d08-4ff1-aa40-c0f24d8bdfbc", "controller": true, "blockOwnerDeletion": true}]);
    let mut slice = json!({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"generateName": "watch-demo-", "namespace": "default",
            "labels": {"app": "watch-demo", "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io", "kubernetes.io/service-name": "watch-demo"},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-21T23:27:54Z"}, "ownerReferences": owner},
        "addressType": "IPv4", "endpoints": null, "ports": null});
    patch::record_update(slices, None, &mut slice, &writer);
    let entry = &slice["metadata"]["managedFields"][0];
    assert_eq!(entry["apiVersion"], "discovery.k8s.io/v1");
    assert_eq!(
        entry["fieldsV1"].to_string(),
        r#"{"f:addressType":{},"f:metadata":{"f:annotations":{".":{},"f:endpoints.kubernetes.io/last-change-trigger-time":{}},"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:endpointslice.kubernetes.io/managed-by":{},"f:kubernetes.io/service-name":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"c2a3ab9c-2d08-4ff1-aa40-c0f24d8bdfbc\"}":{}}}}"#
    );
    slice["metadata"]["name"] = json!("watch-demo-8t7lf");
    slice["metadata"]["uid"] = json!("9ecddc8e-b4dc-49c3-ae61-a5850657477f");

    // The controller mirrors the new label and drops the trigger-time annotation.
    let mut next = slice.clone();
    next["metadata"]["labels"]["tier"] = json!("web");
    next["metadata"].as_object_mut().unwrap().remove("annotations");
    patch::record_update(slices, Some(&slice), &mut next, &writer);
    assert_eq!(
        next["metadata"]["managedFields"][0]["fieldsV1"].to_string(),
        r#"{"f:addressType":{},"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:endpointslice.kubernetes.io/managed-by":{},"f:kubernetes.io/service-name":{},"f:tier":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"c2a3ab9c-2d08-4ff1-aa40-c0f24d8bdfbc\"}":{}}}}"#
    );

    // Endpoints and ports (atomic lists) are filled in.
    let mut third = next.clone();
    third["endpoints"] = json!([{"addresses": ["10.42.0.12"], "conditions": {"ready": true}}]);
    third["ports"] = json!([{"name": "80-80", "protocol": "TCP", "port": 80}]);
    patch::record_update(slices, Some(&next), &mut third, &writer);
    assert_eq!(
        third["metadata"]["managedFields"][0]["fieldsV1"].to_string(),
        r#"{"f:addressType":{},"f:endpoints":{},"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:endpointslice.kubernetes.io/managed-by":{},"f:kubernetes.io/service-name":{},"f:tier":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"c2a3ab9c-2d08-4ff1-aa40-c0f24d8bdfbc\"}":{}}},"f:ports":{}}"#
    );
}

#[test]
fn status_writes_are_owned_under_the_subresource() {
    let mut svc = Service::create(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}), "kubectl-create", T);
    let services = info("Service");
    // Through the main resource, status is reset: writing it takes nothing.
    let mut via_main = svc.obj.clone();
    via_main["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
    let main = Writer { manager: "kubectl-patch", subresource: None, time: T };
    assert!(!patch::update_managed_fields(services, Some(&svc.obj), &via_main, &main).iter().any(|e| e["manager"] == "kubectl-patch"));

    // Through /status it is owned, with the subresource recorded.
    let status = Writer { manager: "lb-controller", subresource: Some("status"), time: T };
    patch::record_update(services, Some(&svc.obj.clone()), &mut via_main, &status);
    svc.obj = via_main;
    let entries = svc.managed_fields().as_array().unwrap();
    let lb = entries.iter().find(|e| e["manager"] == "lb-controller").unwrap();
    assert_eq!(lb["subresource"], "status");
    assert_eq!(lb["fieldsV1"].to_string(), r#"{"f:status":{"f:loadBalancer":{"f:ingress":{}}}}"#);
}

#[test]
fn objects_without_managed_fields_stay_untracked_on_update() {
    let services = info("Service");
    let old = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "uid": "u1"}, "spec": {"type": "ClusterIP"}});
    let mut new = old.clone();
    new["spec"]["type"] = json!("NodePort");
    let writer = Writer { manager: "m", subresource: None, time: T };
    assert!(patch::update_managed_fields(services, Some(&old), &new, &writer).is_empty());
}
