//! Topology hints written by the server's EndpointSlice controller: pods on Nodes in two
//! zones behind a Service with `trafficDistribution`; every ready endpoint carries its Node's
//! zone (`zone` and `hints.forZones`), PreferSameNode adds `hints.forNodes`, a Node moving
//! zone moves the hints, and without trafficDistribution the hints go. Read with kube-rs and
//! with kubectl.

use crate::support::*;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const NS: &str = "topology-hints";

/// (pod, node, zone, forZones, forNodes) of every endpoint, sorted.
type Row = (String, String, String, Vec<String>, Vec<String>);

async fn rows(slices: &Api<EndpointSlice>) -> Vec<Row> {
    let l = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    let mut v: Vec<Row> = l
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let h = e.hints.clone().unwrap_or_default();
            (
                e.target_ref.as_ref().unwrap().name.clone().unwrap(),
                e.node_name.clone().unwrap_or_default(),
                e.zone.clone().unwrap_or_default(),
                h.for_zones
                    .iter()
                    .flatten()
                    .map(|z| z.name.clone())
                    .collect(),
                h.for_nodes
                    .iter()
                    .flatten()
                    .map(|n| n.name.clone())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(pod: &str, node: &str, zone: &str, for_zones: &[&str], for_nodes: &[&str]) -> Row {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    (
        pod.into(),
        node.into(),
        zone.into(),
        s(for_zones),
        s(for_nodes),
    )
}

async fn wait_rows(slices: &Api<EndpointSlice>, what: &str, want: Vec<Row>) {
    let mut last = Vec::new();
    let ok = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            last = rows(slices).await;
            if last == want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        ok.is_ok(),
        "{what}: slices show {last:#?}\nwanted {want:#?}"
    );
}

async fn set_traffic_distribution(services: &Api<Service>, value: Value) {
    services
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"trafficDistribution": value}})),
        )
        .await
        .expect("patching trafficDistribution");
}

#[test]
fn traffic_distribution_writes_zone_and_node_hints() {
    run_test(traffic_distribution_writes_zone_and_node_hints_body());
}

async fn traffic_distribution_writes_zone_and_node_hints_body() {
    let _serial = serial().await;
    let c = Cluster::start().await;
    create_namespace(&c.client, NS).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    for (name, zone) in [("tz-node-a", "zone-a"), ("tz-node-b", "zone-b")] {
        let n: Node = serde_json::from_value(json!({"metadata": {"name": name,
            "labels": {"topology.kubernetes.io/zone": zone}}}))
        .unwrap();
        nodes.create(&PostParams::default(), &n).await.unwrap();
    }
    let pods = c.pods(NS);
    for (name, node, ip, ready) in [
        ("a1", "tz-node-a", "127.0.40.1", true),
        ("a2", "tz-node-a", "127.0.40.2", false),
        ("b1", "tz-node-b", "127.0.40.3", true),
    ] {
        let mut p = pod(name, json!({"app": "web"}), ip, ready);
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    let mut svc = service("web", json!({"app": "web"}), 80);
    svc.spec.as_mut().unwrap().traffic_distribution = Some("PreferClose".into());
    services.create(&PostParams::default(), &svc).await.unwrap();
    let slices = c.slices(NS);

    // Zones come from the Nodes' labels; ready endpoints are hinted for their own zone, the
    // not-ready one is not hinted.
    wait_rows(
        &slices,
        "PreferClose",
        vec![
            row("a1", "tz-node-a", "zone-a", &["zone-a"], &[]),
            row("a2", "tz-node-a", "zone-a", &[], &[]),
            row("b1", "tz-node-b", "zone-b", &["zone-b"], &[]),
        ],
    )
    .await;
    // What kubectl shows.
    let out = c
        .bash(
            &format!("kubectl -n {NS} get endpointslices -l kubernetes.io/service-name=web -o json \
              | jq -c '[.items[].endpoints[] | select(.hints) | {{n: .targetRef.name, h: .hints}}] | sort_by(.n)'"),
            60,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[{"n":"a1","h":{"forZones":[{"name":"zone-a"}]}},{"n":"b1","h":{"forZones":[{"name":"zone-b"}]}}]"#
    );

    // PreferSameNode: node hints as well.
    set_traffic_distribution(&services, json!("PreferSameNode")).await;
    wait_rows(
        &slices,
        "PreferSameNode",
        vec![
            row("a1", "tz-node-a", "zone-a", &["zone-a"], &["tz-node-a"]),
            row("a2", "tz-node-a", "zone-a", &[], &[]),
            row("b1", "tz-node-b", "zone-b", &["zone-b"], &["tz-node-b"]),
        ],
    )
    .await;

    // PreferSameZone (PreferClose's new name); then a Node moves zone, its endpoints follow.
    set_traffic_distribution(&services, json!("PreferSameZone")).await;
    nodes
        .patch(
            "tz-node-b",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-c"}}}),
            ),
        )
        .await
        .unwrap();
    wait_rows(
        &slices,
        "a node moved to zone-c",
        vec![
            row("a1", "tz-node-a", "zone-a", &["zone-a"], &[]),
            row("a2", "tz-node-a", "zone-a", &[], &[]),
            row("b1", "tz-node-b", "zone-c", &["zone-c"], &[]),
        ],
    )
    .await;

    // The not-ready pod becomes ready: hinted too.
    set_ready(&pods, "a2", true).await;
    wait_rows(
        &slices,
        "a2 ready",
        vec![
            row("a1", "tz-node-a", "zone-a", &["zone-a"], &[]),
            row("a2", "tz-node-a", "zone-a", &["zone-a"], &[]),
            row("b1", "tz-node-b", "zone-c", &["zone-c"], &[]),
        ],
    )
    .await;

    // No trafficDistribution: no hints, zones stay.
    set_traffic_distribution(&services, Value::Null).await;
    wait_rows(
        &slices,
        "trafficDistribution removed",
        vec![
            row("a1", "tz-node-a", "zone-a", &[], &[]),
            row("a2", "tz-node-a", "zone-a", &[], &[]),
            row("b1", "tz-node-b", "zone-c", &[], &[]),
        ],
    )
    .await;
}
