//! The userspace data plane (`--proxy-mode userspace`, crate proxy-userspace) end to end: the
//! agents listen on ClusterIPs they put on `lo` and on NodePorts, and splice TCP and UDP to
//! the pods; rr in strict turn, lc from live connection counts (read back on `/metrics`), an
//! endpoint removed leaves the rotation, a Service without endpoints refuses, and a ConfigMap
//! edit switches between nftables and user space without a restart.

use crate::support::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use test_support::netlab::{self, Node};

/// `ip -o addr show dev lo` in `node`.
fn lo_addresses(node: &Node) -> String {
    String::from_utf8_lossy(&node.exec(&["ip", "-o", "addr", "show", "dev", "lo"]).stdout)
        .to_string()
}

/// What the agent in `node` answers on `/proxyMode`.
fn proxy_mode(node: &Node) -> String {
    let out = node.exec(&[
        "curl",
        "-s",
        "--max-time",
        "3",
        "http://127.0.0.1:10249/proxyMode",
    ]);
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn nft_tables(node: &Node) -> String {
    String::from_utf8_lossy(&node.exec(&["nft", "list", "tables"]).stdout).to_string()
}

/// `switchboard_userspace_active_connections` of `service_port` on `node`, by endpoint.
fn active_connections(node: &Node, service_port: &str) -> BTreeMap<String, u64> {
    userspace_metric(
        node,
        "switchboard_userspace_active_connections",
        service_port,
    )
}

/// One `switchboard_userspace_*` family of `service_port` on `node`'s `/metrics`, by endpoint.
fn userspace_metric(node: &Node, family: &str, service_port: &str) -> BTreeMap<String, u64> {
    let out = node.exec(&[
        "curl",
        "-s",
        "--max-time",
        "3",
        "http://127.0.0.1:10249/metrics",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(family).and_then(|l| l.strip_prefix('{')) else {
            continue;
        };
        if !rest.contains(&format!("service_port=\"{service_port}\"")) {
            continue;
        }
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(endpoint) = labels
            .split("endpoint=\"")
            .nth(1)
            .and_then(|e| e.split('"').next())
        else {
            continue;
        };
        counts.insert(
            endpoint.to_string(),
            value.trim().parse().unwrap_or(u64::MAX),
        );
    }
    counts
}

/// Opens a long-lived stream connection from the client to `addr`; returns it and the pod
/// that serves it.
fn hold(c: &Cluster, addr: SocketAddr) -> (StreamClient, String) {
    let mut s = c
        .client
        .run(move || StreamClient::connect(addr, T))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let answer = s.ask("hold").expect("stream answer");
    let (pod, _) = parse_answer(&answer).unwrap_or_else(|| panic!("not an echo answer: {answer}"));
    (s, pod)
}

#[test]
fn userspace_mode_serves_cluster_ips_node_ports_and_udp_in_turn() {
    let c = Cluster::start(&["--proxy-mode", "userspace"]);
    let pods = c.three_pods();
    // No scheduler asked for: userspace mode's default is rr, as kube-proxy's userspace mode.
    let svc = c.service(
        "web",
        &[("app", "web")],
        json!({"type": "NodePort", "ports": [
            {"name": "http", "port": 80, "targetPort": 80, "nodePort": 30081},
            {"name": "stream", "port": 9000, "targetPort": 9000, "nodePort": 30082},
            {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
        ]}),
        json!({}),
    );
    let addr = cluster_ip(&svc, 80);
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    let n1 = c.node("n1");
    let cip = addr.ip().to_string();
    // The client may reach the Service through another node before n1 has synced.
    eventually(20, "the ClusterIP on n1's lo with the data plane's label", || {
        lo_addresses(n1)
            .contains(&format!("inet {cip}/32 scope global lo:sbus"))
            .then_some(())
    });
    assert!(
        !nft_tables(n1).contains("switchboard"),
        "no nftables table in userspace mode:\n{}",
        nft_tables(n1)
    );
    assert_eq!(proxy_mode(n1), "userspace");

    // rr: each pod in strict turn.
    let seq = c.ask_many(addr, 9);
    assert!(strict_rotation(&seq, 3), "not a strict turn: {seq:?}");
    // The limit the README states: the pod sees the node, not the client.
    let (_, source) = c.ask(addr).expect("request");
    assert_ne!(source.ip(), std::net::IpAddr::from(c.client.ip));

    // NodePort, from the LAN client, on both nodes' addresses (never on localhost).
    for node in &c.nodes {
        c.wait_all_answer(SocketAddr::new(node.ip.into(), 30081), &["p1", "p2", "p3"]);
    }
    let local: SocketAddr = "127.0.0.1:30081".parse().unwrap();
    assert!(n1.run(move || http_get(local, T)).is_err());

    // UDP through the ClusterIP: the answer comes back from the ClusterIP (the client's socket
    // is connected to it, so the kernel drops anything from another source).
    let udp = cluster_ip(&svc, 53);
    let mut seen = Vec::new();
    eventually(20, "UDP answers from every pod", || {
        // A new socket (a new client port) per ask: a new session, the next turn.
        if let Ok(answer) = c.client.run(move || udp_ask(udp, T)) {
            let (pod, _) = parse_answer(&answer).expect("UDP echo answer");
            if !seen.contains(&pod) {
                seen.push(pod);
            }
        }
        (seen.len() == 3).then_some(())
    });

    // Half-close: the client sends a line and shuts down its sending side; the proxy passes
    // the EOF on and keeps the other direction open, so the answer still arrives, then EOF.
    let stream = cluster_ip(&svc, 9000);
    let answer = c
        .client
        .run(move || -> std::io::Result<String> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect_timeout(&stream, T)?;
            s.set_read_timeout(Some(T))?;
            s.write_all(b"half\n")?;
            s.shutdown(std::net::Shutdown::Write)?;
            let mut all = String::new();
            s.read_to_string(&mut all)?;
            Ok(all)
        })
        .expect("answer after a half-close, then EOF");
    assert!(answer.trim_end().ends_with(" half"), "{answer:?}");

    // A dial that fails goes on to the next endpoint: p4 is a pod whose address answers but
    // where nothing listens (RST). Every request still succeeds, and the failures are counted.
    let p4 = c.lab.pod(c.node("n2"), "p4");
    netlab::k8s::register_pod(&c.server, &p4, "default", &[("app", "web")]);
    let p4_http = format!("{}:80", p4.ip);
    eventually(20, "p4's refused dials counted", || {
        let seq = c.ask_many(addr, 4);
        assert!(
            seq.iter().all(|p| ["p1", "p2", "p3"].contains(&p.as_str())),
            "{seq:?}"
        );
        let failures = userspace_metric(
            n1,
            "switchboard_userspace_dial_failures_total",
            "default/web:http/tcp",
        );
        (failures.get(&p4_http).is_some_and(|n| *n > 0)).then_some(())
    });
    c.kubectl(&["delete", "pod", "p4", "--wait=false"]);

    // An endpoint removed leaves the rotation (its echo server still runs: only the API object
    // goes, so an answer from p3 would mean the proxy still sends there).
    c.kubectl(&["delete", "pod", "p3", "--wait=false"]);
    eventually(20, "p3 out of the rotation", || {
        let seq = c.ask_many(addr, 6);
        (!seq.contains(&"p3".to_string()) && strict_rotation(&seq, 2)).then_some(())
    });
    drop(pods);

    // A Service without endpoints refuses at once (its address is local, nothing listens).
    let empty = c.service("empty", &[("app", "nothing")], json!({}), json!({}));
    let empty_addr = cluster_ip(&empty, 80);
    eventually(
        20,
        "connection refused by a Service without endpoints",
        || match c.client.run(move || http_get(empty_addr, T)) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(()),
            _ => None,
        },
    );
    // Deleting the Service takes its address off lo.
    let empty_ip = empty_addr.ip().to_string();
    c.kubectl(&["delete", "service", "empty"]);
    eventually(20, "the deleted Service's address leaves lo", || {
        (!lo_addresses(n1).contains(&format!("inet {empty_ip}/32"))).then_some(())
    });
}

#[test]
fn lc_sends_new_connections_to_the_endpoint_with_the_fewest_active_ones() {
    let c = Cluster::start(&["--proxy-mode", "userspace"]);
    c.three_pods();
    let svc = c.service(
        "web-lc",
        &[("app", "web")],
        json!({}),
        json!({"switchboard.dev/scheduler": "lc"}),
    );
    let addr = cluster_ip(&svc, 9000);
    let n1 = c.node("n1");
    let port = "default/web-lc:stream/tcp";
    let (p1, p2, p3) = ("10.42.1.10:9000", "10.42.1.11:9000", "10.42.2.10:9000");
    // (Not wait_all_answer: one connection at a time always finds every count at 0, so lc
    // sends each to p1.) The three endpoints are known to the data plane when their counters
    // are on /metrics.
    eventually(20, "web-lc's three endpoints in n1's data plane", || {
        let counts = active_connections(n1, port);
        (counts.len() == 3).then_some(())
    });
    // Nothing open on the http port: its first connection goes to the first endpoint.
    assert_eq!(c.ask(cluster_ip(&svc, 80)).expect("request").0, "p1");

    // Six connections held open: with every count equal, lc takes the first endpoint in
    // order (IPVS's tie-break), so they spread p1 p2 p3 p1 p2 p3.
    let mut held: Vec<(StreamClient, String)> = (0..6).map(|_| hold(&c, addr)).collect();
    let pods: Vec<&str> = held.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(pods, ["p1", "p2", "p3", "p1", "p2", "p3"]);
    let counts = active_connections(n1, port);
    assert_eq!(
        (counts.get(p1), counts.get(p2), counts.get(p3)),
        (Some(&2), Some(&2), Some(&2)),
        "{counts:?}"
    );

    // Both of p2's connections end; once the proxy has seen them end, p2 has the fewest.
    held.retain(|(_, pod)| pod != "p2");
    eventually(20, "p2's connections counted as closed", || {
        (active_connections(n1, port).get(p2) == Some(&0)).then_some(())
    });
    let next: Vec<(StreamClient, String)> = (0..3).map(|_| hold(&c, addr)).collect();
    let pods: Vec<&str> = next.iter().map(|(_, p)| p.as_str()).collect();
    // Two to p2 (0, then 1 < 2), then all have two: the tie goes to p1.
    assert_eq!(pods, ["p2", "p2", "p1"]);
    let counts = active_connections(n1, port);
    assert_eq!(
        (counts.get(p1), counts.get(p2), counts.get(p3)),
        (Some(&3), Some(&2), Some(&2)),
        "{counts:?}"
    );
    // The held connections still work after everything that happened.
    held.extend(next);
    for (s, pod) in held.iter_mut() {
        let answer = s.ask("still there").expect("held connection answers");
        assert!(answer.starts_with(&format!("pod={pod} ")), "{answer}");
    }
}

#[test]
fn a_configmap_edit_switches_between_nftables_and_userspace_without_a_restart() {
    let mut c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service(
        "web",
        &[("app", "web")],
        json!({}),
        json!({"switchboard.dev/scheduler": "lc"}),
    );
    let addr = cluster_ip(&svc, 80);
    let cip = addr.ip().to_string();
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    let n1 = c.node("n1").clone();
    assert!(nft_tables(&n1).contains("table ip switchboard"));
    assert!(!lo_addresses(&n1).contains("lo:sbus"));
    assert_eq!(proxy_mode(&n1), "nftables");
    // In nftables mode the lc annotation is served as random, and the agent says who has lc.
    assert!(
        c.agent(0).wait_for_log(
            "default/web: switchboard.dev/scheduler: the lc scheduler is provided by the userspace data plane (--proxy-mode userspace); the nftables data plane offers random, rr, sh, mh",
            Duration::from_secs(20)
        ),
        "{}",
        c.agent(0).log()
    );
    netlab::k8s::apply(
        &c.server,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}),
    );
    let put = |c: &Cluster, conf: &str| {
        netlab::k8s::apply(
            &c.server,
            &json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
                "data": {"config.conf": conf}}),
        )
    };

    put(&c, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: userspace\n");
    eventually(30, "n1 switched to user space", || {
        (!nft_tables(&n1).contains("switchboard")
            && lo_addresses(&n1).contains(&format!("inet {cip}/32 scope global lo:sbus")))
        .then_some(())
    });
    eventually(
        20,
        "n1's data plane has web's three stream endpoints",
        || (active_connections(&n1, "default/web:stream/tcp").len() == 3).then_some(()),
    );
    // lc from the annotation now: connections held open spread over the three pods in order.
    let stream = cluster_ip(&svc, 9000);
    let held: Vec<(StreamClient, String)> = (0..3).map(|_| hold(&c, stream)).collect();
    let pods: Vec<&str> = held.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(pods, ["p1", "p2", "p3"]);
    assert!(c.agent(0).log_contains("switching data planes"));
    assert_eq!(proxy_mode(&n1), "userspace");

    put(&c, "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\n");
    eventually(30, "n1 back on nftables", || {
        (nft_tables(&n1).contains("table ip switchboard") && !lo_addresses(&n1).contains("lo:sbus"))
            .then_some(())
    });
    c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    assert_eq!(proxy_mode(&n1), "nftables");
}
