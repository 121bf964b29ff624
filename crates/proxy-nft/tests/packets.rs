//! Behaviour: the rules loaded into a real kernel (network namespaces) and real packets sent
//! through them, as kube-proxy's packet-flow tests describe situations.

mod common;

use common::*;
use proxy_core::{Protocol, Scheduler, ServicePort};
use proxy_nft::{ConntrackCli, NftAuto, NftProxier};

fn proxier(lab: &Lab) -> NftProxier {
    // The default backend: netlink, the nft CLI only for what its encoder does not know.
    let nft = NftAuto::in_netns(&lab.node.name);
    assert!(nft.has_netlink());
    NftProxier::with_backends(cfg(), nft, ConntrackCli::in_netns(&lab.node.name)).unwrap()
}

fn web(eps: &[&str]) -> ServicePort {
    service("web", "10.43.0.20", eps)
}

#[test]
fn pod_to_cluster_ip_reaches_an_endpoint() {
    let lab = Lab::new(3);
    let mut p = proxier(&lab);
    p.sync(&snapshot([web(&["10.42.0.11", "10.42.0.12"])]))
        .unwrap();
    for _ in 0..4 {
        let got = Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap();
        assert!(got == "pod1" || got == "pod2", "{got}");
    }
    // The node's own processes go through the output hook.
    let got = Lab::tcp(&lab.node, "10.43.0.20:80").unwrap();
    assert!(got == "pod1" || got == "pod2", "{got}");
}

#[test]
fn pod_to_cluster_ip_with_no_endpoints_is_rejected() {
    let lab = Lab::new(2);
    let mut p = proxier(&lab);
    p.sync(&snapshot([web(&[])])).unwrap();
    let err = Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap_err();
    assert!(err.contains("Connection refused"), "{err}");
    // A port the Service does not have is rejected too; an unallocated ClusterIP is dropped.
    let err = Lab::tcp(&lab.pods[0], "10.43.0.20:81").unwrap_err();
    assert!(err.contains("Connection refused"), "{err}");
    let err = Lab::tcp(&lab.pods[0], "10.43.0.99:80").unwrap_err();
    assert!(!err.contains("Connection refused"), "{err}");
}

#[test]
fn round_robin_rotates_through_endpoints() {
    let lab = Lab::new(4);
    let mut p = proxier(&lab);
    let mut sp = web(&["10.42.0.11", "10.42.0.12", "10.42.0.13"]);
    sp.scheduler = Scheduler::RoundRobin;
    p.sync(&snapshot([sp])).unwrap();
    let got: Vec<String> = (0..9)
        .map(|_| Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap())
        .collect();
    // An exact rotation: every three consecutive connections reach the three pods.
    for w in got.windows(3) {
        let mut w = w.to_vec();
        w.sort();
        assert_eq!(w, ["pod1", "pod2", "pod3"], "{got:?}");
    }
}

#[test]
fn source_hash_keeps_a_client_on_one_endpoint() {
    let lab = Lab::new(4);
    let mut p = proxier(&lab);
    let mut sp = web(&["10.42.0.11", "10.42.0.12", "10.42.0.13"]);
    sp.scheduler = Scheduler::SourceHash;
    p.sync(&snapshot([sp.clone()])).unwrap();
    let first = Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap();
    for _ in 0..5 {
        assert_eq!(Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap(), first);
    }
    // Maglev too, and through the LAN client's NodePort (a different source).
    sp.scheduler = Scheduler::Maglev;
    sp.node_port = Some(30080);
    p.sync(&snapshot([sp])).unwrap();
    let first = Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap();
    let from_lan = Lab::tcp(&lab.client, "172.30.0.10:30080").unwrap();
    for _ in 0..5 {
        assert_eq!(Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap(), first);
        assert_eq!(
            Lab::tcp(&lab.client, "172.30.0.10:30080").unwrap(),
            from_lan
        );
    }
}

#[test]
fn client_ip_affinity_pins_a_client() {
    let lab = Lab::new(4);
    let mut p = proxier(&lab);
    let mut sp = web(&["10.42.0.11", "10.42.0.12", "10.42.0.13"]);
    sp.affinity_timeout = Some(60);
    p.sync(&snapshot([sp])).unwrap();
    let first = Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap();
    for _ in 0..6 {
        assert_eq!(Lab::tcp(&lab.pods[0], "10.43.0.20:80").unwrap(), first);
    }
}

#[test]
fn node_port_and_load_balancer_ip_from_the_lan() {
    let lab = Lab::new(3);
    let mut p = proxier(&lab);
    let mut sp = web(&["10.42.0.11", "10.42.0.12"]);
    sp.node_port = Some(30080);
    sp.external_ips = vec![ip("172.30.0.10")];
    let mut empty = service("empty", "10.43.0.21", &[]);
    empty.node_port = Some(30081);
    p.sync(&snapshot([sp, empty])).unwrap();
    let got = Lab::tcp(&lab.client, "172.30.0.10:30080").unwrap();
    assert!(got == "pod1" || got == "pod2", "{got}");
    let got = Lab::tcp(&lab.client, "172.30.0.10:80").unwrap();
    assert!(got == "pod1" || got == "pod2", "{got}");
    let err = Lab::tcp(&lab.client, "172.30.0.10:30081").unwrap_err();
    assert!(err.contains("Connection refused"), "{err}");
}

#[test]
fn external_traffic_policy_local_drops_where_no_endpoint_is_local() {
    let lab = Lab::new(3);
    let mut p = proxier(&lab);
    let mut sp = web(&[]);
    sp.endpoints = vec![
        endpoint("10.42.0.11", 8080, true),
        endpoint("10.42.0.12", 8080, false),
    ];
    sp.node_port = Some(30080);
    sp.external_policy_local = true;
    let mut remote = service("remote", "10.43.0.21", &["10.42.0.12"]);
    remote.node_port = Some(30081);
    remote.external_policy_local = true;
    p.sync(&snapshot([sp, remote])).unwrap();
    for _ in 0..4 {
        assert_eq!(
            Lab::tcp(&lab.client, "172.30.0.10:30080").unwrap(),
            "pod1",
            "only the local endpoint serves the LAN"
        );
    }
    let err = Lab::tcp(&lab.client, "172.30.0.10:30081").unwrap_err();
    assert!(
        !err.contains("Connection refused"),
        "dropped, not rejected: {err}"
    );
    // Pods short-circuit to every endpoint.
    assert_eq!(Lab::tcp(&lab.pods[0], "10.43.0.21:80").unwrap(), "pod2");
}

#[test]
fn load_balancer_source_ranges_admit_only_listed_clients() {
    let lab = Lab::new(2);
    let mut p = proxier(&lab);
    let mut sp = web(&["10.42.0.11"]);
    sp.load_balancer_ips = vec![ip("172.30.0.10")];
    sp.source_ranges = vec!["192.0.2.0/24".parse().unwrap()];
    p.sync(&snapshot([sp.clone()])).unwrap();
    let err = Lab::tcp(&lab.client, "172.30.0.10:80").unwrap_err();
    assert!(!err.contains("Connection refused"), "{err}");
    sp.source_ranges.push("172.30.0.20/32".parse().unwrap());
    p.sync(&snapshot([sp])).unwrap();
    assert_eq!(Lab::tcp(&lab.client, "172.30.0.10:80").unwrap(), "pod1");
}

#[test]
fn removed_udp_endpoint_loses_its_conntrack_entry() {
    let lab = Lab::new(3);
    let mut p = proxier(&lab);
    let mut dns = service("dns", "10.43.0.10", &["10.42.0.11"]);
    dns.name.protocol = Protocol::Udp;
    dns.port = 53;
    p.sync(&snapshot([dns.clone()])).unwrap();
    assert_eq!(
        Lab::udp(&lab.pods[0], "10.43.0.10:53", 40000).unwrap(),
        "pod1"
    );
    // Same 5-tuple again: conntrack keeps it on pod1 (and would after pod1 is gone).
    dns.endpoints = vec![endpoint("10.42.0.12", 8080, false)];
    let r = p.sync(&snapshot([dns])).unwrap();
    assert_eq!(r.conntrack_deletions, 1);
    assert_eq!(
        Lab::udp(&lab.pods[0], "10.43.0.10:53", 40000).unwrap(),
        "pod2"
    );
}
