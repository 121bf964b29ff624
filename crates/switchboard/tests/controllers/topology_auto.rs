//! Topology-aware routing (`service.kubernetes.io/topology-mode: Auto`) through the server's
//! EndpointSlice controller: Nodes in two zones, two ready pods in each. While the Nodes have
//! not reported Ready and their CPU there are no hints (a `TopologyAwareHintsDisabled` Event
//! says why); once they report 3 and 1 allocatable CPUs the slices are hinted 3:1 (one zone-b
//! endpoint lent to zone-a), with a `TopologyAwareHintsEnabled` Event. Giving zone-b as much
//! CPU as zone-a brings the hints back
//! to each endpoint's own zone (the Service is requeued because its hints overload zone-b);
//! deleting zone-b's Node removes every hint, with a `TopologyAwareHintsDisabled` Event saying
//! why. Read with kube-rs and with kubectl.

use crate::support::*;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

const NS: &str = "topology-auto";

/// (pod, zone, forZones) of every endpoint, sorted by pod.
type Row = (String, String, Vec<String>);

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
            assert!(
                h.for_nodes.is_none(),
                "the topology cache gives zone hints only"
            );
            (
                e.target_ref.as_ref().unwrap().name.clone().unwrap(),
                e.zone.clone().unwrap_or_default(),
                h.for_zones
                    .iter()
                    .flatten()
                    .map(|z| z.name.clone())
                    .collect(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(pod: &str, zone: &str, for_zones: &[&str]) -> Row {
    (
        pod.into(),
        zone.into(),
        for_zones.iter().map(|z| z.to_string()).collect(),
    )
}

async fn wait_rows(slices: &Api<EndpointSlice>, what: &str, want: Vec<Row>) {
    let mut last = Vec::new();
    let ok = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            last = rows(slices).await;
            if last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        ok.is_ok(),
        "{what}: slices show {last:#?}\nwanted {want:#?}"
    );
}

/// A Node in `zone` that has not reported its status yet.
async fn zone_node(nodes: &Api<Node>, name: &str, zone: &str) {
    let n: Node = serde_json::from_value(json!({"metadata": {"name": name,
        "labels": {"topology.kubernetes.io/zone": zone}}}))
    .unwrap();
    nodes.create(&PostParams::default(), &n).await.unwrap();
}

/// The Node reports Ready and `cpu` allocatable (its status written as a kubelet would).
async fn set_cpu(nodes: &Api<Node>, name: &str, cpu: &str) {
    let status = json!({"status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
}

/// The topology Events recorded on Service `web`, as kubectl lists them:
/// (`type reason [component]: message`, count).
async fn topology_events(c: &Cluster) -> Vec<(String, i64)> {
    let out = c
        .bash(
            &format!(
                "kubectl -n {NS} get events -o json | jq -r '.items[] \
                 | select(.involvedObject.kind == \"Service\" and .involvedObject.name == \"web\") \
                 | \"\\(.count)|\\(.type) \\(.reason) [\\(.source.component)]: \\(.message)\"'"
            ),
            60,
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('|'))
        .map(|(n, l)| (l.to_string(), n.parse().expect("count")))
        .collect()
}

/// Waits for the Event `want` with a count above `above`; returns its count.
async fn wait_event(c: &Cluster, want: &str, above: i64) -> i64 {
    let mut last = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            last = topology_events(c).await;
            if let Some((_, n)) = last.iter().find(|(l, n)| l == want && *n > above) {
                return *n;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    match found {
        Ok(n) => n,
        Err(_) => panic!("no Event {want:?} counted above {above}; Events: {last:#?}"),
    }
}

const INSUFFICIENT: &str = "Warning TopologyAwareHintsDisabled [endpoint-slice-controller]: Insufficient Node information: allocatable CPU or zone not specified on one or more nodes, addressType: IPv4";

#[test]
fn topology_mode_auto_hints_zones_in_proportion_to_cpu() {
    run_test(topology_mode_auto_hints_zones_in_proportion_to_cpu_body());
}

async fn topology_mode_auto_hints_zones_in_proportion_to_cpu_body() {
    let _serial = serial().await;
    let c = Cluster::start().await;
    create_namespace(&c.client, NS).await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    zone_node(&nodes, "ta-node-a", "zone-a").await;
    zone_node(&nodes, "ta-node-b", "zone-b").await;
    let pods = c.pods(NS);
    for (name, node, ip) in [
        ("a1", "ta-node-a", "127.0.41.1"),
        ("a2", "ta-node-a", "127.0.41.2"),
        ("b1", "ta-node-b", "127.0.41.3"),
        ("b2", "ta-node-b", "127.0.41.4"),
    ] {
        let mut p = pod(name, json!({"app": "web"}), ip, true);
        p.spec.as_mut().unwrap().node_name = Some(node.into());
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    let mut svc = service("web", json!({"app": "web"}), 80);
    svc.metadata.annotations =
        Some([("service.kubernetes.io/topology-mode".into(), "Auto".into())].into());
    services.create(&PostParams::default(), &svc).await.unwrap();
    let slices = c.slices(NS);

    // No Node is Ready with its CPU yet: zones, but no hints, and the Service is told why.
    wait_rows(
        &slices,
        "Nodes without status",
        vec![
            row("a1", "zone-a", &[]),
            row("a2", "zone-a", &[]),
            row("b1", "zone-b", &[]),
            row("b2", "zone-b", &[]),
        ],
    )
    .await;
    wait_event(&c, INSUFFICIENT, 0).await;

    // The Nodes report 3 CPUs against 1 (the new shares requeue the Service): zone-a
    // should get 3 of the 4 endpoints (no fewer than ceil(3 / 1.2)), so the first zone-b
    // endpoint is hinted for zone-a.
    set_cpu(&nodes, "ta-node-a", "3").await;
    set_cpu(&nodes, "ta-node-b", "1000m").await;
    wait_rows(
        &slices,
        "3:1 CPU",
        vec![
            row("a1", "zone-a", &["zone-a"]),
            row("a2", "zone-a", &["zone-a"]),
            row("b1", "zone-b", &["zone-a"]),
            row("b2", "zone-b", &["zone-b"]),
        ],
    )
    .await;
    let out = c
        .bash(
            &format!("kubectl -n {NS} get endpointslices -l kubernetes.io/service-name=web -o json \
              | jq -c '[.items[].endpoints[] | {{n: .targetRef.name, z: .zone, h: .hints}}] | sort_by(.n)'"),
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
        concat!(
            r#"[{"n":"a1","z":"zone-a","h":{"forZones":[{"name":"zone-a"}]}},"#,
            r#"{"n":"a2","z":"zone-a","h":{"forZones":[{"name":"zone-a"}]}},"#,
            r#"{"n":"b1","z":"zone-b","h":{"forZones":[{"name":"zone-a"}]}},"#,
            r#"{"n":"b2","z":"zone-b","h":{"forZones":[{"name":"zone-b"}]}}]"#
        )
    );
    wait_event(
        &c,
        "Normal TopologyAwareHintsEnabled [endpoint-slice-controller]: Topology Aware Hints has been enabled, addressType: IPv4",
        0,
    )
    .await;

    // zone-b gets 3 CPUs too: its one hinted endpoint is now below its minimum of 2, so the
    // Node change requeues the Service and each endpoint serves its own zone.
    set_cpu(&nodes, "ta-node-b", "3").await;
    wait_rows(
        &slices,
        "1:1 CPU",
        vec![
            row("a1", "zone-a", &["zone-a"]),
            row("a2", "zone-a", &["zone-a"]),
            row("b1", "zone-b", &["zone-b"]),
            row("b2", "zone-b", &["zone-b"]),
        ],
    )
    .await;

    // While hinted, nothing adds to the Insufficient count.
    let insufficient = topology_events(&c)
        .await
        .into_iter()
        .find(|(l, _)| l == INSUFFICIENT)
        .map(|(_, n)| n)
        .expect("the earlier Event");
    // zone-b's Node is deleted: one zone left, so no hints at all (its pods' endpoints lose
    // their zone too).
    nodes
        .delete("ta-node-b", &DeleteParams::default())
        .await
        .unwrap();
    wait_rows(
        &slices,
        "zone-b's Node deleted",
        vec![
            row("a1", "zone-a", &[]),
            row("a2", "zone-a", &[]),
            row("b1", "", &[]),
            row("b2", "", &[]),
        ],
    )
    .await;
    // The same Event again: counted up on the first one.
    wait_event(&c, INSUFFICIENT, insufficient).await;
}
