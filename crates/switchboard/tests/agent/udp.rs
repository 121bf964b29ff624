//! A UDP Service whose only endpoint is replaced keeps answering: the client keeps one socket
//! (one source port, as a resolver does) and keeps sending, so a stale conntrack entry to the
//! old pod would hold its flow forever (kubernetes/kubernetes#126130) unless the agent deletes
//! it.

use crate::support::*;
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Sends one datagram and waits up to 300 ms for an answer.
fn ask(sock: &UdpSocket, to: SocketAddr) -> Option<String> {
    sock.send_to(b"ping", to).ok()?;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => return parse_answer(&String::from_utf8_lossy(&buf[..n])).map(|a| a.0),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None
            }
            Err(_) => continue, // an ICMP error from an earlier datagram
        }
    }
    None
}

#[test]
fn udp_service_keeps_answering_after_its_only_endpoint_is_replaced() {
    let c = Cluster::start(&[]);
    let old = c.pod("n1", "old", &[("app", "dns")]);
    let svc = c.service("dns", &[("app", "dns")], json!({}), json!({}));
    let addr = cluster_ip(&svc, 53);
    let sock = c.client.run(|| UdpSocket::bind("0.0.0.0:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    eventually(20, "the old pod answers through the ClusterIP", || {
        (ask(&sock, addr).as_deref() == Some("old")).then_some(())
    });

    // Replace: the new pod appears (on the other node), the old one goes from the API and
    // from the network; the client never stops sending from the same port.
    let _new = c.pod("n2", "new", &[("app", "dns")]);
    c.kubectl(&["delete", "pod", "old", "--wait=false"]);
    c.lab.remove_pod(&old);
    let start = Instant::now();
    let mut answers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = ask(&sock, addr);
        if a.as_deref() == Some("new") {
            break;
        }
        answers.push(a);
        assert!(
            Instant::now() < deadline,
            "no answer from the new pod within 20 s on the same socket; got {answers:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "the new pod answered {:?} after the replacement",
        start.elapsed()
    );
    // And it keeps answering.
    for _ in 0..5 {
        assert_eq!(ask(&sock, addr).as_deref(), Some("new"));
    }
}
