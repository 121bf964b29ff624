//! The proxier renders only the service ports that changed. Whatever the sequence of snapshots
//! (and configuration changes), each transaction it sends is exactly the one a diff of the
//! whole old and new tables gives, what it believes it programmed is the whole render of the
//! last snapshot, and its counts equal a fresh proxier's. Ports share elements on purpose here
//! (a ClusterIP of two ports, pods behind several Services, two Services claiming one external
//! IP or node port) since that is where a per-port cache can go wrong.

mod common;

use common::*;
use proptest::prelude::*;
use proxy_core::{IpFamily, Protocol, ProxyConfig, Scheduler, ServicePort, Snapshot};
use proxy_nft::{diff, render_family, Fake, NftProxier, Programmed};
use std::sync::Arc;

#[derive(Clone, Debug)]
struct PortSpec {
    endpoints: Vec<(bool, bool)>,
    two_ports: bool,
    external_ip: Option<u8>,
    node_port: Option<u16>,
    lb: Option<(u8, bool)>,
    scheduler: Scheduler,
    affinity: Option<u32>,
    etp_local: bool,
    itp_local: bool,
    dual_stack: bool,
    udp: bool,
}

fn port_spec() -> impl Strategy<Value = Option<PortSpec>> {
    let sched = prop_oneof![
        Just(Scheduler::Random),
        Just(Scheduler::RoundRobin),
        Just(Scheduler::SourceHash),
        Just(Scheduler::Maglev)
    ];
    proptest::option::weighted(
        0.8,
        (
            proptest::collection::vec((any::<bool>(), any::<bool>()), 4),
            any::<bool>(),
            proptest::option::of(0..2u8),
            proptest::option::of(30000..30002u16),
            proptest::option::of((0..2u8, any::<bool>())),
            sched,
            prop_oneof![Just(None), Just(Some(60u32)), Just(Some(120u32))],
            (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    endpoints,
                    two_ports,
                    external_ip,
                    node_port,
                    lb,
                    scheduler,
                    affinity,
                    (etp_local, itp_local, dual_stack, udp),
                )| PortSpec {
                    endpoints,
                    two_ports,
                    external_ip,
                    node_port,
                    lb,
                    scheduler,
                    affinity,
                    etp_local,
                    itp_local,
                    dual_stack,
                    udp,
                },
            ),
    )
}

fn ports(i: usize, s: &PortSpec) -> Vec<ServicePort> {
    let mut sp = service(&format!("svc{i}"), &format!("10.43.0.{}", 10 + i), &[]);
    for (j, (on, ready)) in s.endpoints.iter().enumerate() {
        if *on {
            // The same four pods for every Service: hairpin elements are shared.
            let mut e = endpoint(&format!("10.42.0.{}", 10 + j), 8080, j % 2 == 0);
            e.ready = *ready || j > 1;
            e.serving = e.ready || j == 0;
            e.terminating = !e.ready;
            sp.endpoints.push(e);
            if s.dual_stack {
                sp.endpoints
                    .push(endpoint(&format!("fd00:42::{}", 10 + j), 8080, j % 2 == 0));
            }
        }
    }
    if s.dual_stack {
        sp.cluster_ips.push(ip(&format!("fd00:43::{}", 10 + i)));
    }
    sp.scheduler = s.scheduler;
    sp.affinity_timeout = s.affinity;
    if s.udp {
        sp.name.protocol = Protocol::Udp;
    }
    if let Some(x) = s.external_ip {
        sp.external_ips.push(ip(&format!("192.0.2.{x}")));
    }
    sp.node_port = s.node_port;
    if let Some((x, ranges)) = s.lb {
        sp.load_balancer_ips.push(ip(&format!("198.51.100.{x}")));
        if ranges {
            sp.source_ranges.push("172.30.0.0/16".parse().unwrap());
        }
    }
    sp.internal_policy_local = s.itp_local;
    sp.external_policy_local = s.etp_local && sp.externally_accessible();
    let mut out = vec![sp.clone()];
    if s.two_ports {
        // Same ClusterIP, another port: `cluster-ips` has one element for both.
        let mut b = sp;
        b.name.port = "metrics".into();
        b.port = 9090;
        b.node_port = None;
        out.push(b);
    }
    out
}

/// A snapshot of `specs`, reusing the `Arc` of an equal port of `prev` where `share` says so
/// (the agent's tracker shares unchanged ports; a rebuilt snapshot does not).
fn build(specs: &[Option<PortSpec>], prev: &Snapshot, share: &[bool]) -> Snapshot {
    let mut snap = Snapshot::default();
    for (i, spec) in specs.iter().enumerate() {
        let Some(s) = spec else { continue };
        for sp in ports(i, s) {
            let arc = match prev.service_ports.get(&sp.name) {
                Some(old) if **old == sp && share[i] => old.clone(),
                _ => Arc::new(sp),
            };
            snap.service_ports.insert(arc.name.clone(), arc);
        }
    }
    snap
}

fn config(masquerade_all: bool) -> ProxyConfig {
    ProxyConfig {
        masquerade_all,
        ..cfg()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_transaction_is_the_whole_diff_and_the_model_the_whole_render(
        steps in proptest::collection::vec(
            (proptest::collection::vec(port_spec(), 6), proptest::collection::vec(any::<bool>(), 6), proptest::bool::weighted(0.15)),
            1..7,
        )
    ) {
        let fake = Fake::default();
        let mut p = NftProxier::with_backends(config(false), fake.clone(), fake.clone()).unwrap();
        let mut prev = Snapshot::default();
        let mut prev_cfg: Option<ProxyConfig> = None;
        let mut masq = false;
        for (step, (specs, share, toggle)) in steps.iter().enumerate() {
            if *toggle && step > 0 {
                masq = !masq;
                p.set_config(config(masq));
            }
            let cfg = config(masq);
            let snap = build(specs, &prev, share);
            let sent_before = fake.0.lock().unwrap().scripts.len();
            let report = p.sync(&snap).unwrap();
            let sent: Vec<String> = fake.0.lock().unwrap().scripts[sent_before..].to_vec();

            let mut expected = Vec::new();
            for f in IpFamily::ALL {
                let new = render_family(&snap, &cfg, f);
                match &prev_cfg {
                    None => expected.push(new.full_script()),
                    Some(pc) => {
                        let old = render_family(&prev, pc, f);
                        if let Some((script, _)) = diff(&Programmed::exact(old), &new) {
                            expected.push(script);
                        }
                    }
                }
                prop_assert_eq!(p.programmed(f), Some(new), "model after step {}", step);
            }
            prop_assert_eq!(&sent, &expected, "transactions of step {}", step);
            prop_assert_eq!(report.full, step == 0);

            // The running counts equal those of a proxier that sees this snapshot first.
            let other = Fake::default();
            let fresh = NftProxier::with_backends(cfg.clone(), other.clone(), other)
                .unwrap()
                .sync(&snap)
                .unwrap();
            prop_assert_eq!(report.endpoints, fresh.endpoints);
            prop_assert_eq!(report.no_local_endpoints_internal, fresh.no_local_endpoints_internal);
            prop_assert_eq!(report.no_local_endpoints_external, fresh.no_local_endpoints_external);
            prev = snap;
            prev_cfg = Some(cfg);
        }
    }
}

#[test]
fn after_a_failed_transaction_the_next_sync_is_whole_and_right() {
    let fake = Fake::default();
    let mut p = NftProxier::with_backends(cfg(), fake.clone(), fake.clone()).unwrap();
    let a = snapshot([service("web", "10.43.0.20", &["10.42.0.11"])]);
    p.sync(&a).unwrap();
    // Both the partial transaction and the full rebuild fail: the sync errs.
    fake.0.lock().unwrap().fail_next = 2;
    let b = snapshot([service("web", "10.43.0.20", &["10.42.0.12"])]);
    assert!(p.sync(&b).is_err());
    assert_eq!(p.programmed(IpFamily::V4), None);
    let r = p.sync(&b).unwrap();
    assert!(r.full);
    assert_eq!(
        p.programmed(IpFamily::V4),
        Some(render_family(&b, &cfg(), IpFamily::V4))
    );
    let c = snapshot([service("web", "10.43.0.20", &["10.42.0.13"])]);
    let r = p.sync(&c).unwrap();
    assert!(!r.full);
    assert_eq!(
        p.programmed(IpFamily::V4),
        Some(render_family(&c, &cfg(), IpFamily::V4))
    );
}
