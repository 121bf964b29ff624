//! 1,000 Services of every type created by 8 concurrent clients against the real server, then
//! SIGKILL and a restart: every acknowledged Service is there as its 201 said (ClusterIP,
//! NodePorts, health check NodePort), no ClusterIP or NodePort is held twice, and the rebuilt
//! allocators still reserve every value: asking for any of them again is refused with
//! kube-apiserver's "already allocated", and new random allocations avoid all of them.

use crate::support::{blocking, client, create_namespace, start_server, within};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use test_support::TestServer;

const NS: &str = "kill9-services";
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 125;

/// The i-th Service: 6 in 10 ClusterIP, 3 NodePort (TCP and UDP 53 sharing one NodePort, plus
/// a metrics port), 1 LoadBalancer with `externalTrafficPolicy: Local` (a health check
/// NodePort as well).
fn service(name: &str, i: usize) -> Service {
    let spec = match i % 10 {
        0..=5 => json!({"selector": {"app": name}, "ports": [{"port": 80}]}),
        6..=8 => json!({"type": "NodePort", "ports": [
            {"name": "dns-tcp", "port": 53},
            {"name": "dns-udp", "protocol": "UDP", "port": 53},
            {"name": "metrics", "port": 9153}]}),
        _ => json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                    "ports": [{"port": 443}]}),
    };
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// What a Service holds: its ClusterIP and its distinct NodePorts (the health check one too).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    cluster_ip: String,
    node_ports: Vec<i32>,
}

fn held(svc: &Service) -> Held {
    let spec = svc.spec.as_ref().expect("spec");
    let mut node_ports: Vec<i32> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port)
        .chain(spec.health_check_node_port)
        .collect();
    node_ports.sort_unstable();
    node_ports.dedup();
    Held {
        cluster_ip: spec.cluster_ip.clone().unwrap_or_default(),
        node_ports,
    }
}

async fn create_all(server: &TestServer) -> BTreeMap<String, Held> {
    let mut tasks = Vec::new();
    for client_no in 0..CLIENTS {
        // A client (and connection pool) per writer, as 8 separate programs would have.
        let api: Api<Service> = Api::namespaced(client(server).await, NS);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for k in 0..PER_CLIENT {
                let i = client_no * PER_CLIENT + k;
                let name = format!("s{i:04}");
                let created = api
                    .create(&PostParams::default(), &service(&name, i))
                    .await
                    .unwrap_or_else(|e| panic!("creating {name}: {e}"));
                out.push((name, held(&created)));
            }
            out
        }));
    }
    let mut acked = BTreeMap::new();
    for t in tasks {
        acked.extend(t.await.expect("writer task"));
    }
    acked
}

/// Every ClusterIP and NodePort must have exactly one holder.
fn assert_unique(services: &BTreeMap<String, Held>) {
    let mut ips: BTreeMap<&str, &str> = BTreeMap::new();
    let mut ports: BTreeMap<i32, &str> = BTreeMap::new();
    for (name, h) in services {
        assert!(!h.cluster_ip.is_empty(), "{name} has no ClusterIP");
        if let Some(other) = ips.insert(&h.cluster_ip, name) {
            panic!("ClusterIP {} held by {other} and {name}", h.cluster_ip);
        }
        for p in &h.node_ports {
            if let Some(other) = ports.insert(*p, name) {
                panic!("NodePort {p} held by {other} and {name}");
            }
        }
    }
}

async fn stored(api: &Api<Service>) -> BTreeMap<String, Held> {
    api.list(&Default::default())
        .await
        .expect("listing services")
        .items
        .iter()
        .map(|s| (s.metadata.name.clone().unwrap(), held(s)))
        .collect()
}

/// A create of `spec` (which asks for a value some Service holds); the server's answer.
async fn refused(api: &Api<Service>, name: &str, spec: Value) -> String {
    let svc: Service =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
    match api.create(&PostParams::default(), &svc).await {
        Ok(_) => format!("{name} was created"),
        Err(kube::Error::Api(s)) => format!("{} {}", s.code, s.message),
        Err(e) => format!("{e}"),
    }
}

/// Asks for every ClusterIP and NodePort of `services` again; what was not refused as taken.
async fn still_reserved(api: &Api<Service>, services: &[(String, Held)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, h) in services {
        let msg = refused(
            api,
            &format!("ip-{name}"),
            json!({"clusterIP": h.cluster_ip, "ports": [{"port": 80}]}),
        )
        .await;
        let want = format!(
            "failed to allocate IP {}: provided IP is already allocated",
            h.cluster_ip
        );
        if !(msg.starts_with("422 ") && msg.contains(&want)) {
            wrong.push(format!("ClusterIP {} of {name}: {msg}", h.cluster_ip));
        }
        for p in &h.node_ports {
            let msg = refused(
                api,
                &format!("np-{name}-{p}"),
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": p}]}),
            )
            .await;
            if !(msg.starts_with("422 ") && msg.contains("provided port is already allocated")) {
                wrong.push(format!("NodePort {p} of {name}: {msg}"));
            }
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn services_survive_kill9_with_every_allocation_reserved() {
    let mut server = blocking(start_server);
    let c = client(&server).await;
    create_namespace(&c, NS).await;
    let acked = within(300, "1,000 concurrent Service creates", create_all(&server)).await;
    assert_eq!(acked.len(), CLIENTS * PER_CLIENT);
    assert_unique(&acked);

    blocking(|| {
        server.kill9();
        server.restart();
    });
    let api: Api<Service> = Api::namespaced(client(&server).await, NS);
    let after = within(60, "listing after the restart", stored(&api)).await;
    let lost: Vec<&String> = acked.keys().filter(|n| !after.contains_key(*n)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged Services lost by kill -9: {lost:?}"
    );
    for (name, h) in &acked {
        assert_eq!(&after[name], h, "{name} changed across kill -9");
    }
    assert_eq!(after.len(), acked.len(), "Services nobody acknowledged");
    assert_unique(&after);

    // Every value is still reserved: asking for it again is refused, with upstream's message
    // (8 clients ask, each for its share).
    let mut checks = Vec::new();
    let all_held: Vec<(String, Held)> = acked.clone().into_iter().collect();
    for share in all_held.chunks(all_held.len().div_ceil(CLIENTS)) {
        let api: Api<Service> = Api::namespaced(client(&server).await, NS);
        let share = share.to_vec();
        checks.push(tokio::spawn(
            async move { still_reserved(&api, &share).await },
        ));
    }
    let mut wrong = Vec::new();
    for c in checks {
        wrong.extend(c.await.expect("checking task"));
    }
    assert!(
        wrong.is_empty(),
        "values no longer reserved after kill -9:\n{}",
        wrong.join("\n")
    );

    // New random allocations avoid everything held before the kill.
    let mut all = after.clone();
    for i in 0..40 {
        let name = format!("new{i:02}");
        let created = api
            .create(&PostParams::default(), &service(&name, 6 + i % 4))
            .await
            .unwrap_or_else(|e| panic!("creating {name} after the restart: {e}"));
        all.insert(name, held(&created));
    }
    assert_unique(&all);
}
