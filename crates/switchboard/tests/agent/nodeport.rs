//! NodePort from outside the cluster (a client namespace on the LAN) to the nodes' LAN
//! addresses; `externalTrafficPolicy: Local` on a LoadBalancer Service (client address
//! preserved, only the node's own endpoints) and its healthCheckNodePort answered with
//! kube-proxy's JSON, 200 or 503.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;

#[test]
fn nodeport_30080_answers_on_every_node_ip_from_outside() {
    let c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service(
        "web",
        &[("app", "web")],
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 30080}]}),
        json!({}),
    );
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], 30080);
    for node in &c.nodes {
        let addr = SocketAddr::new(node.ip.into(), 30080);
        c.wait_all_answer(addr, &["p1", "p2", "p3"]);
    }
    // Not on the node's localhost by default (kube-proxy's nodePortAddresses default).
    let n1 = c.nodes[0].clone();
    let local = "127.0.0.1:30080".parse().unwrap();
    assert!(
        n1.run(move || http_get(local, T)).is_err(),
        "NodePort answered on n1's localhost"
    );
    // The ClusterIP of the same Service still works.
    c.wait_all_answer(cluster_ip(&svc, 80), &["p1", "p2", "p3"]);
}

/// `curl -s -w '\n%{http_code}' http://IP:PORT/` from the client: (status, JSON body).
fn health(c: &Cluster, ip: std::net::Ipv4Addr, port: u16) -> Option<(u16, Value)> {
    let out = c.client.exec(&[
        "curl",
        "-s",
        "--max-time",
        "3",
        "-w",
        "\n%{http_code}",
        &format!("http://{ip}:{port}/"),
    ]);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, serde_json::from_str(body).ok()?))
}

#[test]
fn external_traffic_policy_local_keeps_the_client_address_and_uses_only_local_pods() {
    // A LoadBalancer Service: only those get a healthCheckNodePort (kube-apiserver allocates
    // it for externalTrafficPolicy Local); its NodePort is what the test sends to.
    let c = Cluster::start(&[]);
    c.three_pods();
    let svc = c.service(
        "web-local",
        &[("app", "web")],
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
               "ports": [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 30081}]}),
        json!({}),
    );
    let hc = svc["spec"]["healthCheckNodePort"]
        .as_u64()
        .expect("healthCheckNodePort allocated") as u16;
    let (n1, n2) = (c.nodes[0].clone(), c.nodes[1].clone());

    // n1 has p1 and p2, n2 has p3: each node sends only to its own, and the pod sees the
    // client's own address (no masquerade).
    for (node, local) in [(&n1, vec!["p1", "p2"]), (&n2, vec!["p3"])] {
        let addr = SocketAddr::new(node.ip.into(), 30081);
        c.wait_all_answer(addr, &local);
        let mut pods = BTreeSet::new();
        for _ in 0..20 {
            let (pod, seen) = c.ask(addr).expect("request to the NodePort");
            assert_eq!(
                seen.ip(),
                std::net::IpAddr::V4(c.client.ip),
                "{pod} on {} saw {seen}, not the client",
                node.name
            );
            pods.insert(pod);
        }
        assert!(
            pods.iter().all(|p| local.contains(&p.as_str())),
            "{} used {pods:?}",
            node.name
        );
    }

    // The health check: 200 with the local endpoint count on both nodes...
    for (node, n) in [(&n1, 2), (&n2, 1)] {
        let (code, body) = eventually(20, "health check answers", || health(&c, node.ip, hc));
        assert_eq!(code, 200, "{}: {body}", node.name);
        assert_eq!(
            body["service"],
            json!({"namespace": "default", "name": "web-local"})
        );
        assert_eq!(body["localEndpoints"], n, "{}: {body}", node.name);
        assert_eq!(body["serviceProxyHealthy"], true);
    }
    // ...and 503 on n2 once its only pod is gone, while n1 stays 200.
    c.kubectl(&["delete", "pod", "p3", "--wait=false"]);
    let body = eventually(20, "n2's health check turns 503", || {
        match health(&c, n2.ip, hc) {
            Some((503, body)) => Some(body),
            _ => None,
        }
    });
    assert_eq!(body["localEndpoints"], 0, "{body}");
    let (code, body) = health(&c, n1.ip, hc).expect("n1 health check");
    assert_eq!((code, body["localEndpoints"].clone()), (200, json!(2)));
}
