//! A clean stop (SIGTERM) and start keeps everything as it was: every namespace, Service and
//! ConfigMap (the test's and the server's own) comes back identical, with the same uid and
//! resourceVersion; new writes get larger resourceVersions than anything before; preconditions
//! on old resourceVersions still work; and new Services get ClusterIPs and NodePorts that don't
//! collide with the ones allocated before the restart.

use crate::support::{blocking, client, create_namespace, diff, rv_of, start_server, within};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, PostParams};
use kube::Client;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const NAMESPACES: [&str; 3] = ["keep-a", "keep-b", "keep-c"];

/// (resource, namespace/name) -> object, for everything of these kinds in every namespace.
type Snapshot = BTreeMap<(String, String), Value>;

async fn snapshot(c: &Client) -> (Snapshot, u64) {
    let mut out = Snapshot::new();
    let mut max_list_rv = 0;
    for (resource, path) in [
        ("namespaces", "/api/v1/namespaces"),
        ("services", "/api/v1/services"),
        ("configmaps", "/api/v1/configmaps"),
    ] {
        let req = kube::core::Request::new(path)
            .list(&Default::default())
            .unwrap();
        let list: Value = c
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        max_list_rv = max_list_rv.max(
            list["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
        );
        for item in list["items"].as_array().expect("items") {
            let m = &item["metadata"];
            let key = format!(
                "{}/{}",
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap()
            );
            out.insert((resource.to_string(), key), item.clone());
        }
    }
    (out, max_list_rv)
}

fn max_rv(s: &Snapshot) -> u64 {
    s.values()
        .map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .max()
        .unwrap_or(0)
}

fn service(name: &str, node_port: bool) -> Service {
    let mut spec = json!({
        "selector": {"app": name},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ],
    });
    if node_port {
        spec["type"] = json!("NodePort");
    }
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"suite": "durability"}}, "spec": spec}),
    )
    .unwrap()
}

fn allocations(s: &Snapshot) -> (BTreeSet<String>, BTreeSet<u64>) {
    let mut ips = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for ((resource, _), o) in s {
        if resource == "services" {
            add_allocations(o, &mut ips, &mut ports);
        }
    }
    (ips, ports)
}

fn add_allocations(svc: &Value, ips: &mut BTreeSet<String>, ports: &mut BTreeSet<u64>) {
    for ip in svc["spec"]["clusterIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&svc["spec"]["clusterIP"]))
    {
        if let Some(ip) = ip.as_str().filter(|ip| !ip.is_empty() && *ip != "None") {
            ips.insert(ip.to_string());
        }
    }
    for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
        if let Some(n) = p["nodePort"].as_u64() {
            ports.insert(n);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_restart_keeps_every_object_version_uid_and_allocation() {
    within(120, "clean restart test", run()).await;
}

async fn run() {
    let mut server = blocking(start_server);
    let c = client(&server).await;
    for ns in NAMESPACES {
        create_namespace(&c, ns).await;
        let svcs: Api<Service> = Api::namespaced(c.clone(), ns);
        for (i, node_port) in [false, true, false].into_iter().enumerate() {
            svcs.create(
                &PostParams::default(),
                &service(&format!("svc-{i}"), node_port),
            )
            .await
            .unwrap_or_else(|e| panic!("creating {ns}/svc-{i}: {e}"));
        }
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
        for i in 0..4 {
            let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}, "data": {"k": format!("{ns} {i} ✓"), "empty": ""}})).unwrap();
            let cm = cms
                .create(&PostParams::default(), &cm)
                .await
                .unwrap_or_else(|e| panic!("creating {ns}/cm-{i}: {e}"));
            // Some objects have a history, not just a create.
            if i % 2 == 0 {
                let mut cm = cm;
                cm.data
                    .get_or_insert_with(Default::default)
                    .insert("updated".into(), "yes".into());
                cms.replace(&format!("cm-{i}"), &PostParams::default(), &cm)
                    .await
                    .unwrap_or_else(|e| panic!("updating {ns}/cm-{i}: {e}"));
            }
        }
    }
    let (before, list_rv_before) = snapshot(&c).await;
    let objects_rv_before = max_rv(&before);
    for ns in NAMESPACES {
        assert!(
            before.contains_key(&("namespaces".into(), format!("/{ns}"))),
            "namespace {ns} missing before the restart"
        );
    }

    assert!(
        blocking(|| server.stop()),
        "the server did not exit cleanly (status 0) within 20 s of SIGTERM"
    );
    blocking(|| server.restart());
    let c = client(&server).await;
    let (after, list_rv_after) = snapshot(&c).await;

    let mut problems = Vec::new();
    for (key, old) in &before {
        match after.get(key) {
            None => problems.push(format!("{key:?} is gone")),
            Some(new) => {
                let mut d = Vec::new();
                diff("", old, new, &mut d);
                if !d.is_empty() {
                    problems.push(format!(
                        "{key:?} changed across the restart: {}",
                        d.join("; ")
                    ));
                }
            }
        }
    }
    for key in after.keys().filter(|k| !before.contains_key(*k)) {
        problems.push(format!("{key:?} appeared across the restart"));
    }
    assert!(
        problems.is_empty(),
        "a clean restart did not keep everything:\n{}",
        problems.join("\n")
    );
    assert!(
        list_rv_after >= list_rv_before,
        "list resourceVersion went back from {list_rv_before} to {list_rv_after}"
    );

    // A replace with an old object's resourceVersion as precondition still works, and a stale
    // one is still refused.
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "keep-b");
    let mut cm = cms.get("cm-1").await.expect("GET keep-b/cm-1");
    let old_rv = rv_of(cm.metadata.resource_version.as_ref());
    cm.data
        .get_or_insert_with(Default::default)
        .insert("after".into(), "restart".into());
    let updated = cms
        .replace("cm-1", &PostParams::default(), &cm)
        .await
        .expect("replace with the pre-restart resourceVersion");
    let new_rv = rv_of(updated.metadata.resource_version.as_ref());
    assert!(new_rv > objects_rv_before && new_rv > list_rv_before, "an update after the restart got resourceVersion {new_rv}; before the restart objects were at up to {objects_rv_before}, lists at {list_rv_before}");
    assert!(new_rv > old_rv);
    match cms.replace("cm-1", &PostParams::default(), &cm).await {
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        other => panic!("a replace with a stale resourceVersion after the restart should be 409 Conflict, got {other:?}"),
    }

    // New Services don't get addresses or ports that were handed out before the restart.
    let (mut ips, mut ports) = allocations(&before);
    let svcs: Api<Service> = Api::namespaced(c.clone(), "keep-c");
    let mut last_rv = new_rv;
    for i in 0..6 {
        let s = svcs
            .create(
                &PostParams::default(),
                &service(&format!("new-{i}"), i % 2 == 0),
            )
            .await
            .unwrap_or_else(|e| panic!("creating keep-c/new-{i}: {e}"));
        let rv = rv_of(s.metadata.resource_version.as_ref());
        assert!(
            rv > last_rv,
            "resourceVersions after the restart are not increasing: {rv} after {last_rv}"
        );
        last_rv = rv;
        let v = serde_json::to_value(&s).unwrap();
        let (mut new_ips, mut new_ports) = (BTreeSet::new(), BTreeSet::new());
        add_allocations(&v, &mut new_ips, &mut new_ports);
        assert!(!new_ips.is_empty(), "keep-c/new-{i} got no ClusterIP: {v}");
        for ip in &new_ips {
            assert!(
                ips.insert(ip.clone()),
                "keep-c/new-{i} got ClusterIP {ip}, already allocated before the restart"
            );
        }
        for p in &new_ports {
            assert!(
                ports.insert(*p),
                "keep-c/new-{i} got NodePort {p}, already allocated before the restart"
            );
        }
    }
}
