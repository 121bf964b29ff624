//! The Tables kube-apiserver 1.36.2 returned in reference 12 (and the event Table of 13),
//! reproduced cell for cell and byte for byte.

use crate::{at, fixture, res};
use model::table::{row_cells, table, IncludeObject, ListMeta};
use serde_json::{json, Value};

/// When the five Tables of reference 12 were fetched (every AGE cell agrees).
const TABLES_FETCHED: &str = "2026-11-21T23:29:33.5Z";

/// Joins each reference row's PartialObjectMetadata with the rest of the object from
/// `objects-*.json`.
fn objects_for(reference: &Value, extras: &Value) -> Vec<Value> {
    reference["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let meta = &row["object"]["metadata"];
            let name = meta["name"].as_str().unwrap();
            let mut obj = extras
                .get(name)
                .unwrap_or_else(|| panic!("no fixture object for {name}"))
                .clone();
            obj["metadata"] = meta.clone();
            obj
        })
        .collect()
}

fn assert_reference_table(group: &str, plural: &str, reference_file: &str, objects_file: &str) {
    let r = res(group, plural);
    let reference = fixture(reference_file);
    let objects = objects_for(&reference, &fixture(objects_file));
    let now = at(TABLES_FETCHED);
    for (row, obj) in reference["rows"].as_array().unwrap().iter().zip(&objects) {
        assert_eq!(
            Value::Array(row_cells(r, obj, now)),
            row["cells"],
            "cells of {plural}/{}",
            model::meta::name(obj)
        );
    }
    let meta = ListMeta {
        resource_version: reference["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .into(),
        ..Default::default()
    };
    let got = table(r, &objects, now, IncludeObject::Metadata, &meta);
    assert_eq!(
        got["columnDefinitions"], reference["columnDefinitions"],
        "columns of {plural}"
    );
    assert_eq!(got, reference);
    // Same bytes too: field order of the Table, the rows and PartialObjectMetadata.
    assert_eq!(got.to_string(), reference.to_string());
}

#[test]
fn services_table_matches_kube_apiserver() {
    assert_reference_table(
        "",
        "services",
        "reference/table-services.json",
        "objects-services.json",
    );
}

#[test]
fn endpoints_table_truncates_after_three_addresses_like_kube_apiserver() {
    assert_reference_table(
        "",
        "endpoints",
        "reference/table-endpoints.json",
        "objects-endpoints.json",
    );
}

#[test]
fn pods_table_matches_kube_apiserver() {
    assert_reference_table("", "pods", "reference/table-pods.json", "objects-pods.json");
}

#[test]
fn endpointslices_table_matches_kube_apiserver() {
    assert_reference_table(
        "discovery.k8s.io",
        "endpointslices",
        "reference/table-endpointslices.json",
        "objects-endpointslices.json",
    );
}

#[test]
fn ingresses_table_matches_kube_apiserver() {
    assert_reference_table(
        "networking.k8s.io",
        "ingresses",
        "reference/table-ingresses.json",
        "objects-ingresses.json",
    );
}

#[test]
fn single_service_with_include_object_none_and_object() {
    let r = res("", "services");
    let with_object = fixture("reference/table-svc-object.json");
    let svc = with_object["rows"][0]["object"].clone();
    let now = at(TABLES_FETCHED);
    let got = table(
        r,
        [&svc],
        now,
        IncludeObject::Object,
        &ListMeta::for_object(&svc),
    );
    assert_eq!(got, with_object);
    assert_eq!(got.to_string(), with_object.to_string());

    let without = fixture("reference/table-svc-none.json");
    let got = table(
        r,
        [&svc],
        now,
        IncludeObject::None,
        &ListMeta::for_object(&svc),
    );
    assert_eq!(got.to_string(), without.to_string());
}

#[test]
fn cluster_wide_page_carries_continue_token() {
    let r = res("", "services");
    let reference = fixture("reference/table-svc-all.json");
    let objects = objects_for(&reference, &fixture("objects-services.json"));
    let meta = ListMeta {
        resource_version: "666".into(),
        continue_token: reference["metadata"]["continue"].as_str().unwrap().into(),
        remaining_item_count: None,
    };
    let got = table(
        r,
        &objects,
        at(TABLES_FETCHED),
        IncludeObject::Metadata,
        &meta,
    );
    assert_eq!(got.to_string(), reference.to_string());
}

/// Reference 13, last command: `GET /api/v1/namespaces/default/events` as a Table.
#[test]
fn events_table_with_future_and_new_api_events() {
    let r = res("", "events");
    let names: Vec<String> = model::table::columns(r)
        .iter()
        .map(|c| format!("{}(p{})", c.name, c.priority))
        .collect();
    assert_eq!(
        names,
        [
            "Last Seen(p0)",
            "Type(p0)",
            "Reason(p0)",
            "Object(p0)",
            "Subobject(p1)",
            "Source(p1)",
            "Message(p0)",
            "First Seen(p1)",
            "Count(p1)",
            "Name(p1)"
        ]
    );
    let events = [
        json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "nginx-lb.future", "namespace": "default", "creationTimestamp": "2026-11-21T23:29:37Z"},
            "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": "nginx-lb", "namespace": "default"},
            "reason": "FromTheFuture", "message": "timestamps in 2030", "type": "Warning",
            "source": {"component": "manual"}, "count": 3,
            "firstTimestamp": "2030-01-01T00:00:00Z", "lastTimestamp": "2030-01-01T00:00:00Z",
            "eventTime": null, "reportingComponent": "", "reportingInstance": ""}),
        json!({"apiVersion": "v1", "count": 1, "eventTime": null, "firstTimestamp": "2026-11-21T23:29:37Z",
            "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": "nginx-lb", "namespace": "default", "uid": "d57019e7-54db-4720-a1a7-4b34010c0a5d"},
            "kind": "Event", "lastTimestamp": "2026-11-21T23:29:37Z", "message": "Ensuring load balancer",
            "metadata": {"creationTimestamp": "2026-11-21T23:29:37Z", "name": "nginx-lb.manual1", "namespace": "default", "resourceVersion": "667", "uid": "5b6236f8-a0ee-458b-ac99-8c34eda6e28a"},
            "reason": "EnsuringLoadBalancer", "reportingComponent": "", "reportingInstance": "",
            "source": {"component": "service-controller"}, "type": "Normal"}),
        json!({"action": "EnsureLoadBalancer", "apiVersion": "v1", "eventTime": "2026-11-21T23:29:37.000000Z", "firstTimestamp": null,
            "involvedObject": {"apiVersion": "v1", "kind": "Service", "name": "nginx-lb", "namespace": "default", "uid": "d57019e7-54db-4720-a1a7-4b34010c0a5d"},
            "kind": "Event", "lastTimestamp": null, "message": "Ensured load balancer",
            "metadata": {"creationTimestamp": "2026-11-21T23:29:37Z", "name": "nginx-lb.manual2", "namespace": "default", "resourceVersion": "668", "uid": "af501eed-1ee9-4540-82ed-372324155244"},
            "reason": "EnsuredLoadBalancer", "reportingComponent": "service-controller", "reportingInstance": "service-controller-node1",
            "source": {}, "type": "Normal"}),
        json!({"action": "StartKubeProxy", "apiVersion": "v1", "eventTime": "2026-11-21T23:26:31.383796Z", "firstTimestamp": null,
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": "node1"}, "kind": "Event", "lastTimestamp": null,
            "metadata": {"creationTimestamp": "2026-11-21T23:26:31Z", "name": "node1.18ea331abc6a0f68", "namespace": "default", "resourceVersion": "61", "uid": "f45b0e88-5af4-408e-9457-2f074234e177"},
            "reason": "Starting", "reportingComponent": "kube-proxy", "reportingInstance": "kube-proxy-vm", "source": {}, "type": "Normal"}),
        json!({"apiVersion": "v1", "count": 1, "eventTime": null, "firstTimestamp": "2026-11-21T23:26:30Z",
            "involvedObject": {"apiVersion": "v1", "kind": "Namespace", "name": "openshift-kube-apiserver", "namespace": "default"},
            "kind": "Event", "lastTimestamp": "2026-11-21T23:26:30Z", "message": "readyz=true",
            "metadata": {"creationTimestamp": "2026-11-21T23:26:30Z", "name": "openshift-kube-apiserver.18ea331a70d9df91", "namespace": "default", "resourceVersion": "54", "uid": "ac3b3e52-9d67-452f-8531-4b5f4119261f"},
            "reason": "KubeAPIReadyz", "reportingComponent": "", "reportingInstance": "",
            "source": {"component": "apiserver", "host": "vm"}, "type": "Warning"}),
    ];
    let expected = [
        json!([
            "<invalid>",
            "Warning",
            "FromTheFuture",
            "service/nginx-lb",
            "",
            "manual",
            "timestamps in 2030",
            "<invalid>",
            3,
            "nginx-lb.future"
        ]),
        json!([
            "1s",
            "Normal",
            "EnsuringLoadBalancer",
            "service/nginx-lb",
            "",
            "service-controller",
            "Ensuring load balancer",
            "1s",
            1,
            "nginx-lb.manual1"
        ]),
        json!([
            "1s",
            "Normal",
            "EnsuredLoadBalancer",
            "service/nginx-lb",
            "",
            "service-controller, service-controller-node1",
            "Ensured load balancer",
            "1s",
            1,
            "nginx-lb.manual2"
        ]),
        json!([
            "3m6s",
            "Normal",
            "Starting",
            "node/node1",
            "",
            "kube-proxy, kube-proxy-vm",
            "",
            "3m6s",
            1,
            "node1.18ea331abc6a0f68"
        ]),
        json!([
            "3m8s",
            "Warning",
            "KubeAPIReadyz",
            "namespace/openshift-kube-apiserver",
            "",
            "apiserver, vm",
            "readyz=true",
            "3m8s",
            1,
            "openshift-kube-apiserver.18ea331a70d9df91"
        ]),
    ];
    // Between 23:29:38.0 (the "3m8s" of KubeAPIReadyz) and 23:29:38.38 (the "3m6s" of a
    // 23:26:31.38 eventTime).
    let now = at("2026-11-21T23:29:38.2Z");
    for (e, want) in events.iter().zip(expected) {
        assert_eq!(
            Value::Array(row_cells(r, e, now)),
            want,
            "{}",
            model::meta::name(e)
        );
    }
}

/// Reference 00: `kubectl get node -o wide` on a node without kubelet (no Ready condition).
#[test]
fn node_without_conditions_prints_unknown() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"creationTimestamp": "2026-11-21T23:26:30Z", "labels": {"kubernetes.io/hostname": "node1"}, "name": "node1"},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"], "taints": [{"effect": "NoSchedule", "key": "node.kubernetes.io/not-ready"}]},
        "status": {"addresses": [{"address": "172.30.0.10", "type": "InternalIP"}, {"address": "node1", "type": "Hostname"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"architecture": "", "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "", "machineID": "", "operatingSystem": "", "osImage": "", "systemUUID": ""}}});
    assert_eq!(
        row_cells(res("", "nodes"), &node, at("2026-11-21T23:26:36.5Z")),
        vec![
            json!("node1"),
            json!("Unknown"),
            json!("<none>"),
            json!("6s"),
            json!(""),
            json!("172.30.0.10"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
}

/// Reference 09: namespaces, one of them being deleted.
#[test]
fn namespaces_show_phase() {
    let r = res("", "namespaces");
    let ns2 = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"creationTimestamp": "2026-11-21T23:27:37Z", "labels": {"kubernetes.io/metadata.name": "ns2"}, "name": "ns2"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    let ns1 = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"creationTimestamp": "2026-11-21T23:27:37Z", "deletionTimestamp": "2026-11-21T23:27:41Z", "name": "ns1"},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}});
    let now = at("2026-11-21T23:27:47.2Z");
    assert_eq!(
        row_cells(r, &ns2, now),
        vec![json!("ns2"), json!("Active"), json!("10s")]
    );
    assert_eq!(
        row_cells(r, &ns1, now),
        vec![json!("ns1"), json!("Terminating"), json!("10s")]
    );
}

/// Reference 03: `kubectl get pod nginx-term -o wide` after `kubectl delete --wait=false`.
#[test]
fn deleted_running_pod_is_terminating() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "nginx-term", "namespace": "default", "creationTimestamp": "2026-11-21T23:26:57Z",
            "deletionTimestamp": "2026-11-21T23:27:32Z", "deletionGracePeriodSeconds": 30},
        "spec": {"nodeName": "node1", "containers": [{"name": "container-nginx", "image": "nginx:1.26.2"}]},
        "status": {"phase": "Running", "podIP": "10.42.0.15", "podIPs": [{"ip": "10.42.0.15"}],
            "conditions": [{"type": "Ready", "status": "True"}]}});
    assert_eq!(
        row_cells(res("", "pods"), &pod, at("2026-11-21T23:27:02.4Z")),
        vec![
            json!("nginx-term"),
            json!("0/1"),
            json!("Terminating"),
            json!("0"),
            json!("5s"),
            json!("10.42.0.15"),
            json!("node1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}
