//! The dual-stack lab: IPv6 next to IPv4 on the LAN and in pods, routed across nodes, usable the
//! moment it is made (no duplicate address detection), while IPv4 behaves as in an IPv4 lab.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use test_support::netlab::{http_get, parse_answer, udp_ask, Lab};

const T: Duration = Duration::from_secs(3);

#[test]
fn pods_and_clients_talk_over_ipv6_across_nodes_and_ipv4_is_unchanged() {
    let lab = Lab::dual_stack();
    assert!(lab.is_dual_stack());
    let n1 = lab.node("n1");
    let n2 = lab.node("n2");
    let p1 = lab.pod(&n1, "p1");
    let p2 = lab.pod(&n2, "p2");
    let c1 = lab.client_via("c1", &n1);
    let a2 = lab.http_echo(&p2, 80);
    lab.udp_echo(&p2, 53);
    let a2v6 = p2.addr6(80).expect("p2 has an IPv6 address");
    assert_eq!(n1.pod_cidr6.as_deref(), Some("fd42:0:0:1::/64"));
    assert_eq!(p2.ip6.unwrap().to_string(), "fd42:0:0:2::a");

    // Nothing is tentative: every address was added usable.
    for ns in [&*n1, &*n2, &*p1, &*p2, &*c1] {
        let out = ns.exec(&["ip", "-6", "addr", "show", "tentative"]);
        assert!(
            out.stdout.is_empty(),
            "{}: {}",
            ns.name(),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // Pod to pod across nodes over IPv6: routed, not NATed.
    let body = p1
        .run(move || http_get(a2v6, T))
        .expect("p1 -> p2 over IPv6");
    let (pod, seen) = parse_answer(&body).unwrap();
    assert_eq!(pod, "p2");
    assert_eq!(seen.ip(), IpAddr::V6(p1.ip6.unwrap()));
    // A LAN client reaches a pod on the other node over IPv6 (via that node), UDP too.
    let body = c1
        .run(move || http_get(a2v6, T))
        .expect("c1 -> p2 over IPv6");
    assert_eq!(
        parse_answer(&body).unwrap().1.ip(),
        IpAddr::V6(c1.ip6.unwrap())
    );
    let udp = SocketAddr::new(p2.ip6.unwrap().into(), 53);
    let answer = c1.run(move || udp_ask(udp, T)).expect("UDP over IPv6");
    assert_eq!(parse_answer(&answer).unwrap().0, "p2");
    // IPv4 as before: the echo server sees a plain IPv4 client, not an IPv4-mapped one.
    let body = p1.run(move || http_get(a2, T)).expect("p1 -> p2 over IPv4");
    assert_eq!(parse_answer(&body).unwrap().1.ip(), IpAddr::V4(p1.ip));
    // Neighbour discovery on the LAN: the node answers for its IPv6 address (ndisc6, a real
    // NDP exchange, the IPv6 ARP).
    let n2v6 = n2.ip6.unwrap().to_string();
    let out = c1.exec(&["ndisc6", "-1", "-r", "3", &n2v6, "eth0"]);
    assert!(out.status.success(), "{}", test_support::output_text(&out));
}

#[test]
fn an_ipv4_lab_has_no_ipv6_addresses() {
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let p1 = lab.pod(&n1, "p1");
    let c1 = lab.client("c1");
    assert!(!lab.is_dual_stack());
    assert!(n1.ip6.is_none() && n1.pod_cidr6.is_none() && p1.ip6.is_none() && c1.ip6.is_none());
    let out = p1.exec(&["ip", "-6", "addr", "show", "scope", "global"]);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
