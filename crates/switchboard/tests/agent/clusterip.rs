//! ClusterIP from a client on the LAN (routed via node n1): all pods reached, the schedulers
//! (random, rr in strict turn, sh sticky per client), ClientIP session affinity until its
//! timeout, a removed endpoint out of rotation within a second of the API write, and a Service
//! without endpoints refusing at once.

use crate::support::*;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn clusterip_reaches_all_three_pods_on_both_nodes() {
    let c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 80);
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    // The client is outside the cluster CIDR: its traffic is masqueraded (the pod on n2 must
    // answer back through n1, which did the DNAT), so a pod sees a node address, not the
    // client's.
    let (_, seen) = c.ask(addr).unwrap();
    assert_ne!(
        seen.ip(),
        std::net::IpAddr::V4(c.client.ip),
        "masquerade expected for a client outside --cluster-cidr"
    );
    // A pod reaches the ClusterIP too (also itself: hairpin).
    let p1 = c.lab.pods().into_iter().find(|p| p.name == "p1").unwrap();
    let mut from_p1 = BTreeSet::new();
    eventually(
        20,
        "p1 reaches all three pods through the ClusterIP",
        || {
            from_p1.extend(ask_many_from(&p1, addr, 10));
            (from_p1.len() == 3).then_some(())
        },
    );
}

#[test]
fn rr_takes_the_pods_in_strict_turn() {
    let c = Cluster::start(&["--scheduler", "rr"]);
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 80);
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    let seq = c.ask_many(addr, 30);
    assert!(strict_rotation(&seq, 3), "not a strict turn: {seq:?}");
}

#[test]
fn sh_sends_one_client_always_to_the_same_pod() {
    // Per Service, by annotation; the agent's default stays random.
    let c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service(
        "web",
        &[("app", "web")],
        json!({}),
        json!({"switchboard.dev/scheduler": "sh"}),
    );
    let addr = cluster_ip(&svc, 80);
    // A second client from another address: each must stick to one pod, whichever it is.
    let c2 = c.lab.client_via("c2", &c.nodes[0]);
    eventually(20, "the Service answers", || c.ask(addr).ok());
    for (name, ns) in [("c1", &*c.client), ("c2", &*c2)] {
        let seq = ask_many_from(ns, addr, 30);
        let pods: BTreeSet<&String> = seq.iter().collect();
        assert_eq!(pods.len(), 1, "client {name} spread over {pods:?} with sh");
    }
}

#[test]
fn client_ip_affinity_keeps_a_client_on_one_pod_until_the_timeout() {
    let c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service(
        "web",
        &[("app", "web")],
        json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 1}}}),
        json!({}),
    );
    let addr = cluster_ip(&svc, 80);
    eventually(20, "the Service answers", || c.ask(addr).ok());
    std::thread::sleep(Duration::from_millis(1500));
    // Each round: 20 quick requests stick to one pod; after a quiet 1.5 s (> timeoutSeconds)
    // the choice is made afresh, so over rounds another pod must show up (random picks the
    // same pod ten times running with probability 3^-9).
    let mut chosen = Vec::new();
    for round in 0..10 {
        let seq = c.ask_many(addr, 20);
        let pods: BTreeSet<&String> = seq.iter().collect();
        assert_eq!(
            pods.len(),
            1,
            "round {round}: affinity broken within the timeout: {seq:?}"
        );
        chosen.push(seq[0].clone());
        if chosen.iter().collect::<BTreeSet<_>>().len() > 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1500));
    }
    panic!("affinity never expired: the same pod in every round {chosen:?}");
}

#[test]
fn removed_endpoint_leaves_rotation_within_a_second_of_the_api_write() {
    let c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service("web", &[("app", "web")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 80);
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    // Let the last sync age past kube-proxy's default minSyncPeriod (1 s), as in a quiet
    // cluster, so the next change is not held back by rate limiting of an earlier one.
    std::thread::sleep(Duration::from_millis(1100));
    // The pod's namespace and echo server stay: if the rule still pointed at it, it would
    // answer. Only the API object goes.
    c.kubectl(&["delete", "pod", "p3", "--wait=false"]);
    let written = Instant::now();
    // How long it actually took, for the log: the last answer p3 gave after the write.
    let mut last_p3 = None;
    while written.elapsed() < Duration::from_millis(1000) {
        let (pod, _) = c.ask(addr).expect("request during the change");
        if pod == "p3" {
            last_p3 = Some(written.elapsed());
        }
    }
    eprintln!("last answer from p3: {last_p3:?} after the API write");
    let seq = c.ask_many(addr, 30);
    assert!(
        !seq.iter().any(|p| p == "p3"),
        "p3 still in rotation 1 s after its deletion: {seq:?}"
    );
    assert_eq!(
        seq.iter().collect::<BTreeSet<_>>().len(),
        2,
        "both remaining pods serve: {seq:?}"
    );
}

#[test]
fn service_without_endpoints_refuses_the_connection_at_once() {
    let c = Cluster::start(&[]);
    c.three_pods();
    // A working Service first: the agent is up and syncing.
    let web = c.service("web", &[("app", "web")], json!({}), json!({}));
    eventually(20, "the web Service answers", || {
        c.ask(cluster_ip(&web, 80)).ok()
    });
    let empty = c.service("empty", &[("app", "nothing")], json!({}), json!({}));
    let addr = cluster_ip(&empty, 80);
    // Until the agent has the Service, the packet goes unanswered (a timeout or unreachable);
    // then it must be refused (ICMP port unreachable → ECONNREFUSED), not dropped.
    let err = eventually(20, "connection refused by the empty Service", || {
        let r = c
            .client
            .run(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)));
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(e),
            Ok(_) => panic!("a Service without endpoints accepted a connection"),
            Err(_) => None,
        }
    });
    // And at once: a refusal, not a 5 s connect timeout running out.
    let again = c
        .client
        .run(move || std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)));
    assert_eq!(
        again.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused,
        "first: {err}"
    );
    // UDP too: an ICMP port unreachable comes back.
    let u = std::net::SocketAddr::new(addr.ip(), 53);
    let r = c.client.run(move || udp_ask(u, Duration::from_secs(2)));
    assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
}
