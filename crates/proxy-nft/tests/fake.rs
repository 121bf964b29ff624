//! The proxier against the in-repo fake: what it sends, when.

mod common;

use common::*;
use proxy_core::IpFamily;
use proxy_nft::{Fake, NftProxier};

#[test]
fn first_sync_is_full_and_an_endpoint_change_sends_only_data_elements() {
    let fake = Fake::default();
    let mut p = NftProxier::with_backends(cfg(), fake.clone(), fake.clone()).unwrap();
    let a = snapshot([
        service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.12"]),
        service("db", "10.43.0.21", &["10.42.0.13"]),
    ]);
    let r = p.sync(&a).unwrap();
    assert!(r.full && !r.unchanged);
    assert_eq!(
        fake.0.lock().unwrap().scripts.len(),
        2,
        "one transaction per family"
    );
    assert!(fake.0.lock().unwrap().scripts[0].contains("delete table ip switchboard"));

    let r = p.sync(&a).unwrap();
    assert!(r.unchanged && !r.full);
    assert_eq!(
        fake.0.lock().unwrap().scripts.len(),
        2,
        "nothing sent when nothing changed"
    );

    let b = snapshot([
        service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.14"]),
        service("db", "10.43.0.21", &["10.42.0.13"]),
    ]);
    let r = p.sync(&b).unwrap();
    assert!(!r.full);
    let log = fake.0.lock().unwrap();
    assert_eq!(log.scripts.len(), 3, "only the IPv4 table changed");
    let script = &log.scripts[2];
    assert!(!script.contains("delete table"), "{script}");
    assert!(
        !script.contains("db"),
        "the unchanged service is not touched:\n{script}"
    );
    // A random-scheduled Service is dispatched by the shared data maps: its endpoint change
    // is elements only, no rule, chain or verdict (which would make the kernel re-validate the
    // whole chain graph).
    for word in ["rule", "chain", "goto", "jump"] {
        assert!(
            !script.contains(word),
            "{word} in an endpoint change:\n{script}"
        );
    }
    assert!(
        script.contains(
            "delete element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 1 }"
        ),
        "{script}"
    );
    assert!(
        script.contains("add element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 1 : 10.42.0.14 . 8080 }"),
        "{script}"
    );
    assert!(script.contains("delete element ip switchboard hairpin-connections { 10.42.0.12 . 10.42.0.12 . tcp . 8080 }"), "{script}");
    assert!(script.contains("add element ip switchboard hairpin-connections { 10.42.0.14 . 10.42.0.14 . tcp . 8080 }"), "{script}");
    assert_eq!(r.changes.chains_changed, 0);
    assert_eq!(
        (r.changes.elements_added, r.changes.elements_deleted),
        (2, 2)
    );
}

#[test]
fn a_failed_partial_sync_falls_back_to_a_full_rebuild() {
    let fake = Fake::default();
    let mut p = NftProxier::with_backends(cfg(), fake.clone(), fake.clone()).unwrap();
    p.sync(&snapshot([service("web", "10.43.0.20", &["10.42.0.11"])]))
        .unwrap();
    fake.0.lock().unwrap().fail_next = 1;
    let r = p
        .sync(&snapshot([service("web", "10.43.0.20", &["10.42.0.12"])]))
        .unwrap();
    assert!(r.full);
    assert!(r.partial_failure.is_some());
    let log = fake.0.lock().unwrap();
    assert!(log
        .scripts
        .last()
        .unwrap()
        .contains("delete table ip switchboard"));
}

#[test]
fn removed_udp_endpoints_get_their_conntrack_entries_deleted() {
    let fake = Fake::default();
    let mut p = NftProxier::with_backends(cfg(), fake.clone(), fake.clone()).unwrap();
    let mut dns = service("dns", "10.43.0.10", &["10.42.0.11", "10.42.0.12"]);
    dns.name.protocol = proxy_core::Protocol::Udp;
    dns.port = 53;
    dns.node_port = Some(30053);
    let tcp = service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.12"]);
    p.sync(&snapshot([dns.clone(), tcp.clone()])).unwrap();
    assert!(fake.0.lock().unwrap().conntrack.is_empty());
    dns.endpoints.retain(|e| e.ip.to_string() == "10.42.0.11");
    let mut tcp2 = tcp.clone();
    tcp2.endpoints.clear();
    let r = p.sync(&snapshot([dns, tcp2])).unwrap();
    assert_eq!(r.conntrack_deletions, 2);
    let log = fake.0.lock().unwrap();
    let got: Vec<String> = log
        .conntrack
        .iter()
        .map(|f| format!("{:?} {} {}", f.orig_dst, f.orig_port_dst, f.dst_nat))
        .collect();
    assert_eq!(
        got,
        ["None 30053 10.42.0.12", "Some(10.43.0.10) 53 10.42.0.12"]
    );
    assert!(p.programmed(IpFamily::V4).is_some());
}

#[test]
fn a_service_leaves_the_shared_maps_above_sixteen_endpoints_and_returns_below() {
    let fake = Fake::default();
    let mut p = NftProxier::with_backends(cfg(), fake.clone(), fake.clone()).unwrap();
    let eps = |n: usize| -> Vec<String> { (0..n).map(|i| format!("10.42.1.{i}")).collect() };
    let web = |n: usize| {
        let e = eps(n);
        let refs: Vec<&str> = e.iter().map(String::as_str).collect();
        snapshot([service("web", "10.43.0.20", &refs)])
    };
    let chain = "service-default/web/tcp/http";
    assert_eq!(proxy_nft::DISPATCH_MAX, 16);
    p.sync(&web(16)).unwrap();
    let full = fake.0.lock().unwrap().scripts[0].clone();
    assert!(
        !full.contains(chain),
        "16 endpoints are dispatched:\n{full}"
    );
    assert!(
        full.contains("add element ip switchboard service-ips-random-16 { 10.43.0.20 . tcp . 80 }")
    );

    let r = p.sync(&web(17)).unwrap();
    let script = fake.0.lock().unwrap().scripts.last().unwrap().clone();
    assert!(!r.full, "{r:?}");
    assert_eq!(r.changes.chains_added, 1, "{script}");
    assert!(
        script.contains(&format!("add chain ip switchboard {chain}")),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "add element ip switchboard service-ips {{ 10.43.0.20 . tcp . 80 : goto {chain} }}"
        )),
        "{script}"
    );
    assert!(
        script.contains(
            "delete element ip switchboard service-ips-random-16 { 10.43.0.20 . tcp . 80 }"
        ),
        "{script}"
    );
    assert!(
        script.contains(
            "delete element ip switchboard service-ips-dispatched { 10.43.0.20 . tcp . 80 }"
        ),
        "{script}"
    );

    let r = p.sync(&web(3)).unwrap();
    let script = fake.0.lock().unwrap().scripts.last().unwrap().clone();
    assert_eq!(r.changes.chains_deleted, 1, "{script}");
    assert!(
        script
            .contains("add element ip switchboard service-ips-random-3 { 10.43.0.20 . tcp . 80 }"),
        "{script}"
    );
    assert!(
        script.contains("add element ip switchboard service-endpoints { 10.43.0.20 . tcp . 80 . 0 : 10.42.1.0 . 8080"),
        "its slots are back:\n{script}"
    );
}
