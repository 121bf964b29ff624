//! The `mh` scheduler with real flows: 40 client addresses on the LAN, each mapped by the
//! kernel's `jhash` and the agent's lookup table to a pod. Taking one pod out of the ready set
//! moves exactly the clients that were on it; putting it back returns every client to where it
//! was.

use crate::support::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use test_support::netlab::k8s;

/// One HTTP request to `addr` from the client's address `src`: the pod that answered.
async fn ask_from_source(src: Ipv4Addr, addr: SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(src.into(), 0))?;
    let mut stream = socket.connect(addr).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    parse_answer(body)
        .map(|(pod, _)| pod)
        .ok_or_else(|| std::io::Error::other(format!("not an echo answer: {response:?}")))
}

/// Which pod each of `sources` reaches (sources that got no answer are left out).
fn mapping(c: &Cluster, sources: &[Ipv4Addr], addr: SocketAddr) -> BTreeMap<Ipv4Addr, String> {
    let sources = sources.to_vec();
    c.client.block_on(async move {
        let mut m = BTreeMap::new();
        for src in sources {
            if let Ok(Ok(pod)) = tokio::time::timeout(T, ask_from_source(src, addr)).await {
                m.insert(src, pod);
            }
        }
        m
    })
}

#[test]
fn mh_moves_only_the_clients_of_a_removed_pod_and_brings_them_back() {
    let c = Cluster::start(&[]);
    let pods = c.three_pods();
    let svc = c.service(
        "web",
        &[("app", "web")],
        json!({}),
        json!({"switchboard.dev/scheduler": "mh"}),
    );
    let addr = cluster_ip(&svc, 80);
    // One client address always reaches the same pod: wait for an answer, not for all pods.
    eventually(20, "the ClusterIP answers", || c.ask(addr).ok());
    // LAN hosts 200-239 are free in a lab (never handed out): 40 client addresses.
    let sources: Vec<Ipv4Addr> = (200..240).map(|h| c.lab.lan_ip(h)).collect();
    let lines: Vec<String> = sources
        .iter()
        .map(|s| format!("addr add {s}/24 dev eth0"))
        .collect();
    c.client.ip_batch(&lines);

    let before = eventually(20, "all 40 sources answered", || {
        let m = mapping(&c, &sources, addr);
        (m.len() == sources.len()).then_some(m)
    });
    let on_p3: Vec<Ipv4Addr> = before
        .iter()
        .filter(|(_, p)| *p == "p3")
        .map(|(s, _)| *s)
        .collect();
    assert!(
        !on_p3.is_empty() && on_p3.len() < sources.len(),
        "p3 should have some of the 40 clients: {before:?}"
    );
    // A second pass changes nothing: the mapping is a function of the client address.
    assert_eq!(mapping(&c, &sources, addr), before);

    // p3 not ready: its clients move, nobody else does.
    k8s::set_pod_ready(&c.server, &pods[2], "default", false);
    let after = eventually(20, "p3's clients moved off p3", || {
        let m = mapping(&c, &sources, addr);
        (m.len() == sources.len() && m.values().all(|p| p != "p3")).then_some(m)
    });
    for (src, pod) in &before {
        if pod != "p3" {
            assert_eq!(&after[src], pod, "{src} moved although its pod stayed");
        }
    }

    // p3 back: the table is a function of the endpoint set, so every client is where it was.
    k8s::set_pod_ready(&c.server, &pods[2], "default", true);
    eventually(20, "the mapping of before p3 left", || {
        (mapping(&c, &sources, addr) == before).then_some(())
    });
}
