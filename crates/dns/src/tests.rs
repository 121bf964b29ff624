//! The record logic end to end without I/O: objects -> `Zone::build` -> `answer::respond`,
//! with every response decoded by hickory-proto (an independent parser) before it is checked.

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use crate::answer::{respond, Action, Transport};
use crate::wire::{encode_name, rtype, CLASS_IN};
use crate::zone::{Zone, ZoneConfig};

fn svc(ns: &str, name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
        .unwrap()
}

fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    family: &str,
    endpoints: serde_json::Value,
    ports: serde_json::Value,
) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": family, "endpoints": endpoints, "ports": ports,
    }))
    .unwrap()
}

pub(crate) fn query_bytes(name: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut m = vec![
        0xAB,
        0xCD,
        0x01,
        0x00,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        edns.is_some() as u8,
    ];
    if name == "." {
        m.push(0);
    } else {
        for l in name.trim_end_matches('.').split('.') {
            m.push(l.len() as u8);
            m.extend(l.bytes()); // keeps the caller's letter case
        }
        m.push(0);
    }
    m.extend(qtype.to_be_bytes());
    m.extend(CLASS_IN.to_be_bytes());
    if let Some(size) = edns {
        m.extend([0, 0, 41]);
        m.extend(size.to_be_bytes());
        m.extend([0, 0, 0, 0, 0, 0]);
    }
    m
}

fn fixture() -> Zone {
    let services = vec![
        svc(
            "default",
            "web",
            json!({"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20", "fd00:43::20"],
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}, {"protocol": "UDP", "port": 9000}]}),
        ),
        svc(
            "default",
            "db",
            json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}),
        ),
        svc("default", "empty", json!({"clusterIP": "None"})),
        svc(
            "default",
            "unready",
            json!({"clusterIP": "None", "publishNotReadyAddresses": true}),
        ),
        svc(
            "default",
            "ext",
            json!({"type": "ExternalName", "externalName": "www.example.com"}),
        ),
        svc(
            "default",
            "alias",
            json!({"type": "ExternalName", "externalName": "web.default.svc.cluster.local."}),
        ),
        svc("other", "bad!name", json!({"clusterIP": "10.43.0.99"})),
    ];
    let slices = vec![
        slice(
            "default",
            "db-1",
            "db",
            "IPv4",
            json!([
                {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "conditions": {}},
                {"addresses": ["10.42.0.7"], "conditions": {"ready": false}},
            ]),
            json!([{"name": "pg", "protocol": "TCP", "port": 5432}, {"protocol": "TCP", "port": 1}]),
        ),
        slice(
            "default",
            "db-2",
            "db",
            "IPv6",
            json!([{"addresses": ["fd00:42::5"], "hostname": "db-0"}]),
            json!([]),
        ),
        slice(
            "default",
            "empty-1",
            "empty",
            "IPv4",
            json!([{"addresses": ["10.42.0.9"], "conditions": {"ready": false}}]),
            json!([]),
        ),
        slice(
            "default",
            "unready-1",
            "unready",
            "IPv4",
            json!([{"addresses": ["10.42.0.10"], "conditions": {"ready": false}}]),
            json!([]),
        ),
    ];
    Zone::build(&ZoneConfig::default(), &services, &slices)
}

fn ask(zone: &Zone, name: &str, qtype: u16) -> Message {
    ask_with(zone, name, qtype, None, Transport::Udp)
}

fn ask_with(zone: &Zone, name: &str, qtype: u16, edns: Option<u16>, t: Transport) -> Message {
    let q = query_bytes(name, qtype, edns);
    let mut out = Vec::new();
    let (action, _) = respond(zone, &q, t, 0, &mut out);
    assert!(
        matches!(action, Action::Reply),
        "{name} {qtype}: {action:?}"
    );
    let m = Message::from_vec(&out).unwrap_or_else(|e| panic!("{name}: undecodable response: {e}"));
    assert_eq!(m.id(), 0xABCD);
    m
}

fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn dns_version_txt() {
    let m = ask(&fixture(), "dns-version.cluster.local", rtype::TXT);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    let RData::TXT(t) = m.answers()[0].data() else {
        panic!()
    };
    assert_eq!(t.txt_data()[0].as_ref(), b"1.1.0");
}

#[test]
fn cluster_ip_service_has_a_aaaa_srv_and_ptr() {
    let z = fixture();
    let m = ask(&z, "web.default.svc.cluster.local", rtype::A);
    assert!(m.authoritative());
    assert_eq!(addrs(&m), vec![ip("10.43.0.20")]);
    assert_eq!(m.answers()[0].ttl(), 5);
    assert_eq!(
        addrs(&ask(&z, "web.default.svc.cluster.local", rtype::AAAA)),
        vec![ip("fd00:43::20")]
    );

    let m = ask(&z, "_http._tcp.web.default.svc.cluster.local", rtype::SRV);
    let RData::SRV(s) = m.answers()[0].data() else {
        panic!()
    };
    assert_eq!(
        (s.port(), s.target().to_ascii().as_str()),
        (80, "web.default.svc.cluster.local.")
    );
    // The additional section carries the target's addresses.
    assert_eq!(m.additionals().len(), 2);
    // Unnamed ports have no SRV record.
    let m = ask(&z, "_9000._udp.web.default.svc.cluster.local", rtype::SRV);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);

    for (rev, want) in [
        ("20.0.43.10.in-addr.arpa", "web.default.svc.cluster.local."),
        (
            "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.3.4.0.0.0.0.d.f.ip6.arpa",
            "web.default.svc.cluster.local.",
        ),
    ] {
        let m = ask(&z, rev, rtype::PTR);
        let RData::PTR(p) = m.answers()[0].data() else {
            panic!("{rev}")
        };
        assert_eq!(p.0.to_ascii(), want);
    }
}

#[test]
fn names_are_case_insensitive_and_the_question_case_is_echoed() {
    let m = ask(&fixture(), "WeB.Default.SVC.cluster.LOCAL", rtype::A);
    assert_eq!(addrs(&m), vec![ip("10.43.0.20")]);
    assert_eq!(
        m.answers()[0].name().to_ascii(),
        "WeB.Default.SVC.cluster.LOCAL."
    );
}

#[test]
fn headless_service_answers_ready_endpoints_hostnames_srv_and_ptr() {
    let z = fixture();
    let mut got = addrs(&ask(&z, "db.default.svc.cluster.local", rtype::A));
    got.sort();
    // Ready (true) and unset conditions count; ready=false doesn't.
    assert_eq!(got, vec![ip("10.42.0.5"), ip("10.42.0.6")]);
    assert_eq!(
        addrs(&ask(&z, "db.default.svc.cluster.local", rtype::AAAA)),
        vec![ip("fd00:42::5")]
    );
    // Hostname records: the endpoint's hostname (both families), or the generated one.
    assert_eq!(
        addrs(&ask(&z, "db-0.db.default.svc.cluster.local", rtype::A)),
        vec![ip("10.42.0.5")]
    );
    assert_eq!(
        addrs(&ask(&z, "db-0.db.default.svc.cluster.local", rtype::AAAA)),
        vec![ip("fd00:42::5")]
    );
    assert_eq!(
        addrs(&ask(&z, "10-42-0-6.db.default.svc.cluster.local", rtype::A)),
        vec![ip("10.42.0.6")]
    );
    let m = ask(&z, "10-42-0-7.db.default.svc.cluster.local", rtype::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);

    let m = ask(&z, "_pg._tcp.db.default.svc.cluster.local", rtype::SRV);
    let mut targets: Vec<(u16, String)> = m
        .answers()
        .iter()
        .map(|r| match r.data() {
            RData::SRV(s) => (s.port(), s.target().to_ascii()),
            _ => panic!(),
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            (5432, "10-42-0-6.db.default.svc.cluster.local.".into()),
            (5432, "db-0.db.default.svc.cluster.local.".into())
        ]
    );
    let m = ask(&z, "5.0.42.10.in-addr.arpa", rtype::PTR);
    let RData::PTR(p) = m.answers()[0].data() else {
        panic!()
    };
    assert_eq!(p.0.to_ascii(), "db-0.db.default.svc.cluster.local.");
}

#[test]
fn headless_without_ready_endpoints_is_nxdomain_unless_publishing_not_ready() {
    let z = fixture();
    let m = ask(&z, "empty.default.svc.cluster.local", rtype::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    assert_eq!(
        addrs(&ask(&z, "unready.default.svc.cluster.local", rtype::A)),
        vec![ip("10.42.0.10")]
    );
}

#[test]
fn external_name_is_a_cname_chased_inside_the_zone_and_forwarded_outside() {
    let z = fixture();
    let m = ask(&z, "alias.default.svc.cluster.local", rtype::A);
    assert_eq!(m.answers()[0].record_type(), RecordType::CNAME);
    assert_eq!(addrs(&m), vec![ip("10.43.0.20")]);
    let m = ask(&z, "ext.default.svc.cluster.local", rtype::CNAME);
    let RData::CNAME(c) = m.answers()[0].data() else {
        panic!()
    };
    assert_eq!(c.0.to_ascii(), "www.example.com.");
    let q = query_bytes("ext.default.svc.cluster.local", rtype::A, None);
    let (action, _) = respond(&z, &q, Transport::Udp, 0, &mut Vec::new());
    let Action::Chase { target, .. } = action else {
        panic!("{action:?}")
    };
    assert_eq!(&*target, &encode_name("www.example.com").unwrap()[..]);
}

#[test]
fn pod_records_spell_their_address() {
    let z = fixture();
    assert_eq!(
        addrs(&ask(&z, "10-42-1-7.default.pod.cluster.local", rtype::A)),
        vec![ip("10.42.1.7")]
    );
    assert_eq!(
        addrs(&ask(
            &z,
            "fd00-42--7.default.pod.cluster.local",
            rtype::AAAA
        )),
        vec![ip("fd00:42::7")]
    );
    assert_eq!(
        ask(&z, "10-42-1-999.default.pod.cluster.local", rtype::A).response_code(),
        ResponseCode::NXDomain
    );
    let m = ask(&z, "10-42-1-7.default.pod.cluster.local", rtype::AAAA);
    assert_eq!(
        (m.response_code(), m.answers().len()),
        (ResponseCode::NoError, 0)
    );
}

#[test]
fn negative_answers_carry_the_soa_with_the_negative_ttl() {
    let z = fixture();
    // The ndots:5 search storm: names below svc.<zone> that don't exist.
    let m = ask(&z, "www.google.com.default.svc.cluster.local", rtype::A);
    assert_eq!(m.response_code(), ResponseCode::NXDomain);
    let soa = &m.name_servers()[0];
    assert_eq!(
        (soa.record_type(), soa.ttl(), soa.name().to_ascii().as_str()),
        (RecordType::SOA, 5, "cluster.local.")
    );
    let RData::SOA(s) = soa.data() else { panic!() };
    assert_eq!(s.minimum(), 5);
    // NODATA: the name exists, not with this type; empty non-terminals exist too.
    for name in [
        "web.default.svc.cluster.local",
        "default.svc.cluster.local",
        "svc.cluster.local",
    ] {
        let m = ask(&z, name, rtype::TXT);
        assert_eq!(
            (m.response_code(), m.answers().len()),
            (ResponseCode::NoError, 0),
            "{name}"
        );
        assert_eq!(m.name_servers()[0].record_type(), RecordType::SOA);
    }
    // A bad object is skipped; the rest is served.
    assert_eq!(
        ask(&z, "bad!name.other.svc.cluster.local", rtype::A).response_code(),
        ResponseCode::NXDomain
    );
}

#[test]
fn apex_has_soa_and_ns_with_the_servers_address() {
    let z = fixture();
    let m = ask(&z, "cluster.local", rtype::NS);
    let RData::NS(n) = m.answers()[0].data() else {
        panic!()
    };
    assert_eq!(n.0.to_ascii(), "ns.dns.cluster.local.");
    assert_eq!(
        addrs(&ask(&z, "ns.dns.cluster.local", rtype::A)),
        vec![ip("10.43.0.10")]
    );
    assert_eq!(
        ask(&z, "cluster.local", rtype::SOA).answers()[0].record_type(),
        RecordType::SOA
    );
}

#[test]
fn zone_transfers_are_refused_and_other_names_are_forwarded() {
    let z = fixture();
    assert_eq!(
        ask(&z, "cluster.local", rtype::AXFR).response_code(),
        ResponseCode::Refused
    );
    assert_eq!(
        ask(&z, "cluster.local", rtype::IXFR).response_code(),
        ResponseCode::Refused
    );
    let (action, _) = respond(
        &z,
        &query_bytes("example.com", rtype::A, None),
        Transport::Udp,
        0,
        &mut Vec::new(),
    );
    assert!(matches!(action, Action::Forward(_)));
    // An unknown reverse name falls through to the upstreams.
    let (action, _) = respond(
        &z,
        &query_bytes("1.2.3.4.in-addr.arpa", rtype::PTR, None),
        Transport::Udp,
        0,
        &mut Vec::new(),
    );
    assert!(matches!(action, Action::Forward(_)));
}

#[test]
fn before_the_first_sync_cluster_names_are_servfail() {
    let z = Zone::empty(&ZoneConfig::default());
    assert_eq!(
        ask(&z, "web.default.svc.cluster.local", rtype::A).response_code(),
        ResponseCode::ServFail
    );
}

#[test]
fn big_answers_truncate_over_udp_and_fit_over_tcp_and_edns() {
    let eps: Vec<serde_json::Value> = (0..100)
        .map(|i| json!({"addresses": [format!("10.42.{}.{}", i / 200, i % 200 + 1)]}))
        .collect();
    let z = Zone::build(
        &ZoneConfig::default(),
        &[svc("default", "big", json!({"clusterIP": "None"}))],
        &[slice(
            "default",
            "big-1",
            "big",
            "IPv4",
            json!(eps),
            json!([]),
        )],
    );
    let name = "big.default.svc.cluster.local";
    let m = ask(&z, name, rtype::A);
    assert!(m.truncated());
    assert!(m.answers().is_empty());
    let m = ask_with(&z, name, rtype::A, None, Transport::Tcp);
    assert_eq!((m.truncated(), m.answers().len()), (false, 100));
    // 100 * 16 bytes + header fits in 4096 but we cap at 1232: truncated even with EDNS.
    let m = ask_with(&z, name, rtype::A, Some(4096), Transport::Udp);
    assert!(m.truncated());
    assert!(m.extensions().is_some(), "the OPT record stays");
    let m = ask_with(
        &z,
        "web.default.svc.cluster.local",
        rtype::A,
        Some(4096),
        Transport::Udp,
    );
    assert_eq!(m.extensions().as_ref().unwrap().max_payload(), 1232);
}

#[test]
fn a_records_rotate_round_robin() {
    let z = fixture();
    let q = query_bytes("db.default.svc.cluster.local", rtype::A, None);
    let mut firsts = std::collections::BTreeSet::new();
    for rot in 0..4 {
        let mut out = Vec::new();
        respond(&z, &q, Transport::Udp, rot, &mut out);
        firsts.insert(addrs(&Message::from_vec(&out).unwrap())[0]);
    }
    assert_eq!(firsts.len(), 2);
}

#[test]
fn malformed_queries_get_formerr_or_nothing_never_a_panic() {
    let z = fixture();
    let mut out = Vec::new();
    // Two questions: FORMERR with the ID kept.
    let mut q = query_bytes("web.default.svc.cluster.local", rtype::A, None);
    q[5] = 2;
    let (a, o) = respond(&z, &q, Transport::Udp, 0, &mut out);
    assert!(matches!(a, Action::Reply));
    assert_eq!(o.rcode, 1);
    assert_eq!(
        Message::from_vec(&out).unwrap().response_code(),
        ResponseCode::FormErr
    );
    // A non-QUERY opcode: NOTIMP.
    let mut q = query_bytes("web.default.svc.cluster.local", rtype::A, None);
    q[2] |= 0x28; // opcode 5 (UPDATE)
    respond(&z, &q, Transport::Udp, 0, &mut out);
    assert_eq!(
        Message::from_vec(&out).unwrap().response_code(),
        ResponseCode::NotImp
    );
    // EDNS version 1: BADVERS.
    let mut q = query_bytes("web.default.svc.cluster.local", rtype::A, Some(1232));
    let n = q.len();
    q[n - 5] = 1;
    respond(&z, &q, Transport::Udp, 0, &mut out);
    // hickory names rcode 16 BADSIG (the TSIG meaning of the same number).
    assert_eq!(
        u16::from(Message::from_vec(&out).unwrap().response_code()),
        16
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: no panic, and whatever we send back decodes.
        #[test]
        fn any_bytes_are_answered_with_a_decodable_message_or_dropped(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let z = fixture();
            let mut out = Vec::new();
            if let (Action::Reply, _) = respond(&z, &bytes, Transport::Udp, 0, &mut out) {
                prop_assert!(Message::from_vec(&out).is_ok() || out.len() == 12);
            }
        }

        /// A valid query with mutated bytes: same.
        #[test]
        fn mutated_queries_never_panic(pos in 0usize..60, val in any::<u8>(), name in "[a-zA-Z0-9-]{1,20}(\\.[a-z]{1,10}){0,4}") {
            let z = fixture();
            let mut q = query_bytes(&format!("{name}.default.svc.cluster.local"), rtype::A, Some(1232));
            let p = pos % q.len();
            q[p] = val;
            let mut out = Vec::new();
            if let (Action::Reply, _) = respond(&z, &q, Transport::Udp, 0, &mut out) {
                prop_assert!(out.len() >= 12);
            }
        }
    }
}
