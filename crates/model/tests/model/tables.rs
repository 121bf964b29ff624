//! Table printing situations the reference transcripts do not cover, following printers.go.

use crate::{at, res};
use chrono::TimeDelta;
use model::table::{
    column_definitions, columns, human_duration, partial_object_metadata, row, row_cells, table,
    translate_timestamp_since, IncludeObject, ListMeta,
};
use serde_json::{json, Value};

const NOW: &str = "2026-11-21T12:00:00Z";

fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
    row_cells(res(group, plural), &obj, at(NOW))
}

fn strs(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|c| {
            c.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c.to_string())
        })
        .collect()
}

#[test]
fn human_duration_follows_apimachinery() {
    let cases: &[(i64, &str)] = &[
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (6, "6s"),
        (119, "119s"),
        (120, "2m"),
        (123, "2m3s"),
        (599, "9m59s"),
        (600, "10m"),
        (659, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 4 * 60 + 59, "3h4m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 3599, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 4 * 3600, "3d4h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (740 * 86400, "2y10d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(TimeDelta::seconds(*secs)), *want, "{secs}s");
    }
    // Sub-second parts truncate towards zero, as Go's int(d.Seconds()).
    assert_eq!(human_duration(TimeDelta::milliseconds(1999)), "1s");
    assert_eq!(human_duration(TimeDelta::milliseconds(-1999)), "0s");
    assert_eq!(human_duration(TimeDelta::milliseconds(-2001)), "<invalid>");
}

#[test]
fn missing_timestamp_is_unknown() {
    assert_eq!(translate_timestamp_since(None, at(NOW)), "<unknown>");
    assert_eq!(
        translate_timestamp_since(Some("2026-11-21T11:59:54Z"), at(NOW)),
        "6s"
    );
    assert_eq!(
        cells("", "namespaces", json!({"metadata": {"name": "x"}}))[2],
        json!("<unknown>")
    );
}

#[test]
fn every_served_resource_has_as_many_cells_as_columns() {
    for r in model::RESOURCES {
        let obj = json!({"metadata": {"name": "x", "namespace": "default", "creationTimestamp": "2026-11-21T11:00:00Z"}});
        let cols = columns(r);
        // Events lead with LAST SEEN; their name is the last (wide) column.
        let name_column = if r.kind == "Event" {
            cols.last().unwrap()
        } else {
            &cols[0]
        };
        assert_eq!(
            (name_column.name, name_column.format),
            ("Name", "name"),
            "{}",
            r.plural
        );
        assert_eq!(
            row_cells(r, &obj, at(NOW)).len(),
            cols.len(),
            "{}",
            r.plural
        );
        assert_eq!(column_definitions(r).len(), cols.len());
    }
}

fn pod(status: Value) -> Value {
    json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-21T11:00:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": status})
}

fn pod_status_cells(obj: Value) -> (String, String, String) {
    let c = strs(&cells("", "pods", obj));
    (c[1].clone(), c[2].clone(), c[3].clone())
}

#[test]
fn pod_with_running_ready_containers() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}]}));
    assert_eq!(
        pod_status_cells(p),
        ("1/2".into(), "Running".into(), "0".into())
    );
}

#[test]
fn pod_waiting_container_shows_its_reason_and_last_restart() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-21T11:58:00Z"}}}]}));
    assert_eq!(
        pod_status_cells(p),
        ("1/2".into(), "CrashLoopBackOff".into(), "4 (2m ago)".into())
    );
}

#[test]
fn pod_terminated_containers_show_reason_signal_or_exit_code() {
    let t = |term: Value| {
        pod(
            json!({"phase": "Running", "containerStatuses": [{"name": "a", "state": {"terminated": term}}]}),
        )
    };
    assert_eq!(
        pod_status_cells(t(json!({"reason": "OOMKilled", "exitCode": 137}))).1,
        "OOMKilled"
    );
    assert_eq!(
        pod_status_cells(t(json!({"signal": 9, "exitCode": 137}))).1,
        "Signal:9"
    );
    assert_eq!(pod_status_cells(t(json!({"exitCode": 3}))).1, "ExitCode:3");
}

#[test]
fn completed_pod_with_a_running_container_is_running_or_not_ready() {
    let status = |ready: &str| {
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready}], "containerStatuses": [
            {"name": "a", "ready": true, "state": {"running": {}}},
            {"name": "b", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]})
    };
    // containerStatuses are walked backwards: "b" sets Completed, then "a" is running.
    assert_eq!(pod_status_cells(pod(status("True"))).1, "Running");
    assert_eq!(pod_status_cells(pod(status("False"))).1, "NotReady");
}

#[test]
fn pod_init_containers() {
    let base = |init_status: Value| {
        json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-21T11:00:00Z"},
            "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
            "status": {"phase": "Pending", "initContainerStatuses": init_status}})
    };
    let waiting = base(json!([
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]));
    assert_eq!(pod_status_cells(waiting).1, "Init:1/2");
    let failing = base(
        json!([{"name": "i1", "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
    );
    assert_eq!(
        pod_status_cells(failing),
        ("0/1".into(), "Init:CrashLoopBackOff".into(), "2".into())
    );
    let failed = base(json!([{"name": "i1", "state": {"terminated": {"exitCode": 2}}}]));
    assert_eq!(pod_status_cells(failed).1, "Init:ExitCode:2");
    let signalled =
        base(json!([{"name": "i1", "state": {"terminated": {"exitCode": 2, "signal": 15}}}]));
    assert_eq!(pod_status_cells(signalled).1, "Init:Signal:15");
}

#[test]
fn sidecar_init_containers_count_as_containers() {
    let p = json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-21T11:00:00Z"},
        "spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "a"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}],
            "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}}],
            "containerStatuses": [{"name": "a", "ready": true, "state": {"running": {}}}]}});
    assert_eq!(
        pod_status_cells(p),
        ("2/2".into(), "Running".into(), "1".into())
    );
}

#[test]
fn pod_status_reason_scheduling_gate_and_node_lost() {
    let evicted = pod(json!({"phase": "Failed", "reason": "Evicted"}));
    assert_eq!(pod_status_cells(evicted).1, "Evicted");
    let gated = pod(
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    assert_eq!(pod_status_cells(gated).1, "SchedulingGated");
    let mut lost = pod(json!({"phase": "Running", "reason": "NodeLost"}));
    lost["metadata"]["deletionTimestamp"] = json!("2026-11-21T11:59:00Z");
    assert_eq!(pod_status_cells(lost).1, "Unknown");
    let mut done = pod(json!({"phase": "Succeeded"}));
    done["metadata"]["deletionTimestamp"] = json!("2026-11-21T11:59:00Z");
    assert_eq!(pod_status_cells(done).1, "Succeeded");
}

#[test]
fn pod_wide_columns() {
    let p = json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-21T11:00:00Z"},
        "spec": {"containers": [{"name": "a"}], "readinessGates": [{"conditionType": "x/one"}, {"conditionType": "x/two"}]},
        "status": {"phase": "Pending", "nominatedNodeName": "n2", "podIPs": [{"ip": "fd00::1"}, {"ip": "10.0.0.1"}],
            "conditions": [{"type": "x/one", "status": "True"}, {"type": "x/two", "status": "False"}]}});
    assert_eq!(
        strs(&cells("", "pods", p))[4..],
        ["60m", "fd00::1", "<none>", "n2", "1/2"]
    );
}

#[test]
fn finished_pods_carry_a_completed_row_condition() {
    let r = res("", "pods");
    let done = pod(json!({"phase": "Succeeded"}));
    let row = row(r, &done, at(NOW), IncludeObject::None);
    assert_eq!(
        row["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["cells", "conditions", "object"]);
    let failed = pod(json!({"phase": "Failed"}));
    assert_eq!(
        model::table::row_conditions(r, &failed).unwrap()[0]["message"],
        "The pod failed."
    );
    assert!(model::table::row_conditions(r, &pod(json!({"phase": "Running"}))).is_none());
}

#[test]
fn service_edge_cases() {
    let svc = |spec: Value, status: Value| json!({"metadata": {"name": "s", "creationTimestamp": "2026-11-21T11:00:00Z"}, "spec": spec, "status": status});
    // Only a legacy clusterIP (no clusterIPs) still prints it.
    let c = strs(&cells(
        "",
        "services",
        svc(
            json!({"type": "ClusterIP", "clusterIP": "10.43.0.5", "ports": [{"port": 80, "protocol": "UDP"}]}),
            json!({}),
        ),
    ));
    assert_eq!(c[1..5], ["ClusterIP", "10.43.0.5", "<none>", "80/UDP"]);
    // Load balancer ingress is a sorted set of IPs (or hostnames when there is no IP).
    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIPs": ["10.43.0.6"], "ports": [{"port": 443, "nodePort": 31000, "protocol": "TCP"}]}),
        json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.9"}, {"hostname": "a.example"}, {"ip": "192.168.1.10"}, {"ip": "192.168.1.9"}]}}),
    );
    assert_eq!(
        strs(&cells("", "services", lb))[3],
        "192.168.1.10,192.168.1.9,a.example"
    );
    let unknown = svc(json!({"type": "Foo"}), json!({}));
    assert_eq!(strs(&cells("", "services", unknown))[3], "<unknown>");
}

#[test]
fn endpoints_of_a_headless_service_without_ports_and_ipv6() {
    let ep = json!({"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 53}]}]});
    assert_eq!(
        strs(&cells("", "endpoints", ep))[1],
        "10.0.0.1,10.0.0.2,[fd00::1]:53"
    );
    let many = json!({"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}], "ports": [{"port": 80}, {"port": 81}]}]});
    assert_eq!(
        strs(&cells("", "endpoints", many))[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 5 more..."
    );
    let empty_subsets = json!({"metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 80}]}]});
    assert_eq!(strs(&cells("", "endpoints", empty_subsets))[1], "");
}

#[test]
fn endpointslice_ports_by_number_name_or_star() {
    let s = json!({"metadata": {"name": "s"}, "addressType": "IPv6",
        "ports": [{"port": 80}, {"name": "web"}, {}, {"port": 9}],
        "endpoints": [{"addresses": ["fd00::1", "fd00::2"]}]});
    assert_eq!(
        strs(&cells("discovery.k8s.io", "endpointslices", s))[1..4],
        ["IPv6", "80,web,* + 1 more...", "fd00::1,fd00::2"]
    );
}

#[test]
fn node_status_roles_and_addresses() {
    let n = json!({"metadata": {"name": "n", "creationTimestamp": "2026-11-19T11:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x", "kubernetes.io/role": "master", "node-role.kubernetes.io/etcd": "true"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "False"}],
            "addresses": [{"type": "ExternalIP", "address": "203.0.113.5"}, {"type": "InternalIP", "address": "10.0.0.5"}, {"type": "InternalIP", "address": "10.0.0.6"}],
            "nodeInfo": {"kubeletVersion": "v1.36.2", "osImage": "Debian GNU/Linux 13", "kernelVersion": "6.12.0", "containerRuntimeVersion": "containerd://2.1.0"}}});
    assert_eq!(
        strs(&cells("", "nodes", n)),
        [
            "n",
            "NotReady,SchedulingDisabled",
            "control-plane,etcd,master",
            "2d1h",
            "v1.36.2",
            "10.0.0.5",
            "203.0.113.5",
            "Debian GNU/Linux 13",
            "6.12.0",
            "containerd://2.1.0"
        ]
    );
}

#[test]
fn event_series_and_missing_timestamps() {
    let e = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{a}"},
        "type": "Normal", "reason": "Pulled", "message": "  done \n",
        "eventTime": "2026-11-21T11:50:00.000000Z", "series": {"count": 7, "lastObservedTime": "2026-11-21T11:59:00.500000Z"},
        "reportingComponent": "kubelet", "source": {"host": "node1"}});
    assert_eq!(
        cells("", "events", e),
        vec![
            json!("59s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/p"),
            json!("spec.containers{a}"),
            json!("kubelet, node1"),
            json!("done"),
            json!("10m"),
            json!(7),
            json!("e")
        ]
    );
    let bare = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Node"}});
    let c = cells("", "events", bare);
    assert_eq!(
        (c[0].clone(), c[3].clone(), c[7].clone(), c[8].clone()),
        (
            json!("<unknown>"),
            json!("node"),
            json!("<unknown>"),
            json!(1)
        )
    );
}

#[test]
fn configmaps_secrets_leases() {
    let cm = json!({"metadata": {"name": "c", "creationTimestamp": "2026-11-21T11:59:53Z"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
    assert_eq!(
        cells("", "configmaps", cm),
        vec![json!("c"), json!(2), json!("7s")]
    );
    let secret = json!({"metadata": {"name": "s", "creationTimestamp": "2026-11-21T11:00:00Z"}, "type": "kubernetes.io/tls",
        "data": {"tls.crt": "", "tls.key": ""}, "stringData": {"tls.key": "x", "ca.crt": "y"}});
    assert_eq!(
        cells("", "secrets", secret),
        vec![
            json!("s"),
            json!("kubernetes.io/tls"),
            json!(3),
            json!("60m")
        ]
    );
    let lease = json!({"metadata": {"name": "l", "creationTimestamp": "2026-11-21T11:00:00Z"}, "spec": {"holderIdentity": "node1_abc"}});
    assert_eq!(
        cells("coordination.k8s.io", "leases", lease),
        vec![json!("l"), json!("node1_abc"), json!("60m")]
    );
    let free =
        json!({"metadata": {"name": "l", "creationTimestamp": "2026-11-21T11:00:00Z"}, "spec": {}});
    assert_eq!(cells("coordination.k8s.io", "leases", free)[1], json!(""));
}

#[test]
fn ingress_hosts_address_and_tls_ports() {
    let ing = json!({"metadata": {"name": "i", "creationTimestamp": "2026-11-21T11:00:00Z"},
        "spec": {"rules": [{"host": "a.example"}, {}, {"host": "b.example"}, {"host": "c.example"}, {"host": "d.example"}],
            "tls": [{"hosts": ["a.example"]}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.2"}, {"hostname": "lb.example"}]}}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "ingresses", ing)),
        [
            "i",
            "<none>",
            "a.example,b.example,c.example + 2 more...",
            "192.168.1.2,lb.example",
            "80, 443",
            "60m"
        ]
    );
    let catch_all = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "traefik", "defaultBackend": {}}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "ingresses", catch_all))[1..5],
        ["traefik", "*", "", "80"]
    );
}

#[test]
fn ingressclass_parameters() {
    let ic = |params: Value| {
        json!({"metadata": {"name": "nginx", "creationTimestamp": "2026-11-21T11:00:00Z"},
            "spec": {"controller": "k8s.io/ingress-nginx", "parameters": params}})
    };
    let with_group = ic(
        json!({"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}),
    );
    assert_eq!(
        strs(&cells("networking.k8s.io", "ingressclasses", with_group)),
        [
            "nginx",
            "k8s.io/ingress-nginx",
            "IngressParameters.k8s.example.com/external-lb",
            "60m"
        ]
    );
    let core =
        ic(json!({"kind": "ConfigMap", "name": "cfg", "scope": "Namespace", "namespace": "x"}));
    assert_eq!(
        strs(&cells("networking.k8s.io", "ingressclasses", core))[2],
        "ConfigMap/cfg"
    );
    let none = json!({"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller"}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "ingressclasses", none))[2],
        "<none>"
    );
}

#[test]
fn metallb_columns_come_from_the_crds() {
    let pools = res("metallb.io", "ipaddresspools");
    let defs = column_definitions(pools);
    assert_eq!(
        defs[1],
        json!({"name": "Auto Assign", "type": "boolean", "format": "",
            "description": "Custom resource definition column (in JSONPath format): .spec.autoAssign", "priority": 0})
    );
    let names: Vec<&str> = columns(pools).iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["Name", "Auto Assign", "Avoid Buggy IPs", "Addresses"]
    );
    let pool = json!({"metadata": {"name": "first-pool"}, "spec": {"addresses": ["192.168.10.0/24", "fc00:f853:0ccd:e799::/124"], "autoAssign": true}});
    assert_eq!(
        row_cells(pools, &pool, at(NOW)),
        vec![
            json!("first-pool"),
            json!(true),
            Value::Null,
            json!("[\"192.168.10.0/24\",\"fc00:f853:0ccd:e799::/124\"]")
        ]
    );

    let l2 = res("metallb.io", "l2advertisements");
    let cols = columns(l2);
    let names: Vec<(&str, i64)> = cols.iter().map(|c| (c.name, c.priority)).collect();
    assert_eq!(
        names,
        [
            ("Name", 0),
            ("IPAddressPools", 0),
            ("IPAddressPool Selectors", 0),
            ("Interfaces", 0),
            ("Node Selectors", 10)
        ]
    );
    let adv = json!({"metadata": {"name": "example"}, "spec": {
        "ipAddressPools": ["first-pool"],
        "nodeSelectors": [{"matchLabels": {"kubernetes.io/hostname": "node<1>", "a": "b"}}]}});
    assert_eq!(
        row_cells(l2, &adv, at(NOW)),
        vec![
            json!("example"),
            json!("[\"first-pool\"]"),
            Value::Null,
            Value::Null,
            json!("[{\"matchLabels\":{\"a\":\"b\",\"kubernetes.io/hostname\":\"node\\u003c1\\u003e\"}}]")
        ]
    );
}

#[test]
fn partial_object_metadata_orders_fields_like_go() {
    let obj = json!({"kind": "Service", "metadata": {"labels": {"a": "b"}, "uid": "u", "name": "n", "extra": 1, "namespace": "ns", "creationTimestamp": "t"}});
    assert_eq!(
        partial_object_metadata(&obj).to_string(),
        r#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"n","namespace":"ns","uid":"u","creationTimestamp":"t","labels":{"a":"b"},"extra":1}}"#
    );
}

#[test]
fn include_object_values() {
    assert_eq!(IncludeObject::parse(None).unwrap(), IncludeObject::Metadata);
    assert_eq!(
        IncludeObject::parse(Some("")).unwrap(),
        IncludeObject::Metadata
    );
    assert_eq!(
        IncludeObject::parse(Some("None")).unwrap(),
        IncludeObject::None
    );
    assert_eq!(
        IncludeObject::parse(Some("Object")).unwrap(),
        IncludeObject::Object
    );
    let err: model::ApiError = IncludeObject::parse(Some("All")).unwrap_err().into();
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "unrecognized includeObject value: \"All\"")
    );
}

#[test]
fn empty_list_table_and_object_without_type_meta() {
    let r = res("", "configmaps");
    let t = table(
        r,
        [],
        at(NOW),
        IncludeObject::Object,
        &ListMeta {
            resource_version: "5".into(),
            ..Default::default()
        },
    );
    assert_eq!(t["rows"], json!([]));
    assert_eq!(t["metadata"], json!({"resourceVersion": "5"}));
    let cm = json!({"metadata": {"name": "c"}, "data": {}});
    let t = table(
        r,
        [&cm],
        at(NOW),
        IncludeObject::Object,
        &ListMeta::default(),
    );
    assert_eq!(t["metadata"], json!({}));
    assert_eq!(
        t["rows"][0]["object"].to_string(),
        r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{}}"#
    );
}
