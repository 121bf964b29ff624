use super::*;
use crate::crd::{IpAddressPool, IpAddressPoolSpec, ServiceAllocation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use proptest::prelude::*;

fn pool(name: &str, addrs: &[&str]) -> Pool {
    Pool::parse(&IpAddressPool {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: IpAddressPoolSpec {
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        },
    })
    .unwrap()
}

fn with_alloc(mut p: Pool, a: ServiceAllocation) -> Pool {
    p.allocation = Some((&a).into());
    p
}

const V4: Families = Families::V4;
const V6: Families = Families::V6;
const DUAL: Families = Families::DUAL;

fn svc(key: &str, ports: &[i32], sharing: &str) -> SvcRequest {
    SvcRequest {
        key: key.into(),
        namespace: key.split('/').next().unwrap().into(),
        namespace_labels: BTreeMap::new(),
        labels: BTreeMap::new(),
        families: V4,
        ports: ports
            .iter()
            .map(|p| Port {
                protocol: "TCP".into(),
                port: *p,
            })
            .collect(),
        sharing: SharingKey {
            sharing: sharing.into(),
            backend: String::new(),
        },
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(v: &[IpAddr]) -> Vec<String> {
    v.iter().map(|i| i.to_string()).collect()
}

#[test]
fn allocates_in_order_and_reports_a_full_pool() {
    let mut a = Allocator::new();
    a.set_pools([pool("p", &["10.0.0.1-10.0.0.2"])]);
    assert_eq!(
        ips(&a.allocate(&svc("d/a", &[80], "")).unwrap()),
        ["10.0.0.1"]
    );
    assert_eq!(
        ips(&a.allocate(&svc("d/b", &[80], "")).unwrap()),
        ["10.0.0.2"]
    );
    assert_eq!(
        a.allocate(&svc("d/c", &[80], "")).unwrap_err().0,
        "no available IPs"
    );
    // Asking again gives the same answer: allocation is idempotent.
    assert_eq!(
        ips(&a.allocate(&svc("d/a", &[80], "")).unwrap()),
        ["10.0.0.1"]
    );
    assert!(a.unassign("d/a"));
    assert_eq!(
        ips(&a.allocate(&svc("d/c", &[80], "")).unwrap()),
        ["10.0.0.1"]
    );
}

#[test]
fn sharing_needs_the_same_key_and_distinct_ports() {
    let mut a = Allocator::new();
    a.set_pools([pool("p", &["10.0.0.1/32"])]);
    a.allocate(&svc("d/tcp", &[80], "k")).unwrap();
    // Same key, other port: shares the one address.
    assert_eq!(
        ips(&a.allocate(&svc("d/udp", &[53], "k")).unwrap()),
        ["10.0.0.1"]
    );
    assert_eq!(a.services_on(ip("10.0.0.1")), ["d/tcp", "d/udp"]);
    // Same key, clashing port: refused.
    let e = a
        .assign(&svc("d/clash", &[80], "k"), &[ip("10.0.0.1")])
        .unwrap_err();
    assert_eq!(e.0, "port TCP/80 is already in use on 10.0.0.1 by d/tcp");
    // Other key: refused.
    let e = a
        .assign(&svc("d/other", &[81], "x"), &[ip("10.0.0.1")])
        .unwrap_err();
    assert!(
        e.0.contains("sharing key \"x\" does not match existing sharing key \"k\""),
        "{e}"
    );
    // No key: refused.
    let e = a
        .assign(&svc("d/none", &[82], ""), &[ip("10.0.0.1")])
        .unwrap_err();
    assert!(e.0.contains("new service does not allow sharing"), "{e}");
}

#[test]
fn different_backend_keys_do_not_share() {
    let mut a = Allocator::new();
    a.set_pools([pool("p", &["10.0.0.1/32"])]);
    let mut s1 = svc("d/a", &[80], "k");
    s1.sharing.backend = "app=a".into();
    let mut s2 = svc("d/b", &[81], "k");
    s2.sharing.backend = "app=b".into();
    a.allocate(&s1).unwrap();
    assert!(a.allocate(&s2).is_err());
}

#[test]
fn requested_address_outside_pools_or_taken() {
    let mut a = Allocator::new();
    a.set_pools([pool("p", &["10.0.0.0/30"])]);
    assert_eq!(
        a.assign(&svc("d/a", &[80], ""), &[ip("10.9.9.9")])
            .unwrap_err()
            .0,
        "[\"10.9.9.9\"] is not allowed in config"
    );
    a.assign(&svc("d/a", &[80], ""), &[ip("10.0.0.2")]).unwrap();
    let e = a
        .assign(&svc("d/b", &[80], ""), &[ip("10.0.0.2")])
        .unwrap_err();
    assert!(
        e.0.starts_with("can't use 10.0.0.2, address also in use by d/a"),
        "{e}"
    );
    // Auto allocation skips the taken address.
    assert_eq!(
        ips(&a.allocate(&svc("d/c", &[80], "")).unwrap()),
        ["10.0.0.0"]
    );
}

#[test]
fn auto_assign_false_pools_only_serve_explicit_requests() {
    let mut a = Allocator::new();
    let mut p = pool("manual", &["10.0.0.1/32"]);
    p.auto_assign = false;
    a.set_pools([p]);
    assert!(a.allocate(&svc("d/a", &[80], "")).is_err());
    assert_eq!(
        ips(&a
            .allocate_from_pool(&svc("d/a", &[80], ""), "manual")
            .unwrap()),
        ["10.0.0.1"]
    );
    assert_eq!(
        a.allocate_from_pool(&svc("d/b", &[80], ""), "nope")
            .unwrap_err()
            .0,
        "unknown pool \"nope\""
    );
}

#[test]
fn avoid_buggy_ips() {
    let mut a = Allocator::new();
    let mut p = pool("p", &["10.0.0.255-10.0.1.1"]);
    p.avoid_buggy_ips = true;
    a.set_pools([p]);
    assert_eq!(
        ips(&a.allocate(&svc("d/a", &[80], "")).unwrap()),
        ["10.0.1.1"]
    );
    assert!(a
        .assign(&svc("d/b", &[80], ""), &[ip("10.0.1.0")])
        .unwrap_err()
        .0
        .contains("avoidBuggyIPs"));
}

#[test]
fn dual_stack_takes_one_of_each_from_one_pool() {
    let mut a = Allocator::new();
    a.set_pools([
        pool("v4only", &["10.0.0.1/32"]),
        pool("dual", &["10.1.0.1/32", "fc00::1/128"]),
    ]);
    let mut s = svc("d/a", &[80], "");
    s.families = DUAL;
    assert_eq!(ips(&a.allocate(&s).unwrap()), ["10.1.0.1", "fc00::1"]);
    let mut s6 = svc("d/b", &[80], "");
    s6.families = V6;
    assert!(
        a.allocate(&s6).is_err(),
        "fc00::1 is taken and not shareable"
    );
    assert!(a
        .assign(&s6, &[ip("10.0.0.1")])
        .unwrap_err()
        .0
        .contains("IP families"));
}

/// PreferDualStack (IPv4 first) as the API server fills it in on a dual-stack cluster.
const PREFER: Families = Families {
    prefer_dual: true,
    ..Families::DUAL
};

#[test]
fn prefer_dual_stack_takes_both_from_a_dual_pool_else_one_family() {
    // MetalLB's findBestPoolForService: a pool with both families wins over an earlier
    // single-family one.
    let mut a = Allocator::new();
    a.set_pools([
        pool("a-v4", &["10.0.0.1/32"]),
        pool("b-dual", &["10.1.0.1/32", "fc00::1/128"]),
    ]);
    let mut s = svc("d/a", &[80], "");
    s.families = PREFER;
    assert_eq!(ips(&a.allocate(&s).unwrap()), ["10.1.0.1", "fc00::1"]);
    // The dual pool is full now: the primary family from the single-family pool.
    let mut s2 = svc("d/b", &[80], "");
    s2.families = PREFER;
    assert_eq!(ips(&a.allocate(&s2).unwrap()), ["10.0.0.1"]);
    // Nothing left: refused as before.
    let mut s3 = svc("d/c", &[80], "");
    s3.families = PREFER;
    assert!(a.allocate(&s3).is_err());
    // RequireDualStack never settles for one family.
    let mut a = Allocator::new();
    a.set_pools([pool("v4", &["10.0.0.1/32"])]);
    let mut r = svc("d/r", &[80], "");
    r.families = DUAL;
    assert!(a.candidate_pools(&r).is_empty());
    assert!(a.allocate(&r).is_err());
    assert!(a.allocate_from_pool(&r, "v4").is_err());
    r.families = PREFER;
    assert_eq!(ips(&a.allocate_from_pool(&r, "v4").unwrap()), ["10.0.0.1"]);
}

#[test]
fn prefer_dual_stack_primary_family_is_the_first_of_ip_families() {
    let mut a = Allocator::new();
    a.set_pools([
        pool("a-v4", &["10.0.0.1/32"]),
        pool("b-v6", &["fc00::1/128"]),
    ]);
    let mut s = svc("d/a", &[80], "");
    s.families = Families {
        v6_first: true,
        ..PREFER
    };
    assert_eq!(ips(&a.allocate(&s).unwrap()), ["fc00::1"]);
    let mut s4 = svc("d/b", &[80], "");
    s4.families = PREFER;
    assert_eq!(ips(&a.allocate(&s4).unwrap()), ["10.0.0.1"]);
}

#[test]
fn prefer_dual_stack_gets_the_missing_family_once_its_pool_has_one() {
    let mut a = Allocator::new();
    a.set_pools([pool("p", &["10.0.0.1/32"])]);
    let mut s = svc("d/a", &[80], "");
    s.families = PREFER;
    assert_eq!(ips(&a.allocate(&s).unwrap()), ["10.0.0.1"]);
    assert_eq!(ips(&a.add_missing_family(&s).unwrap()), ["10.0.0.1"]);
    a.set_pools([pool("p", &["10.0.0.1/32", "fc00::1/128"])]);
    assert_eq!(
        ips(&a.add_missing_family(&s).unwrap()),
        ["10.0.0.1", "fc00::1"]
    );
    assert_eq!(a.allocation("d/a").unwrap().1.len(), 2);
    // A single-stack Service is left alone.
    let mut v4 = svc("d/b", &[81], "");
    v4.families = V4;
    a.set_pools([
        pool("p", &["10.0.0.1/32", "fc00::1/128"]),
        pool("q", &["10.9.0.1/32"]),
    ]);
    a.assign(&v4, &[ip("10.9.0.1")]).unwrap();
    assert_eq!(ips(&a.add_missing_family(&v4).unwrap()), ["10.9.0.1"]);
}

#[test]
fn priority_and_service_allocation() {
    let mut a = Allocator::new();
    let general = pool("general", &["10.0.0.1/32"]);
    let team = with_alloc(
        pool("team", &["10.0.1.1/32"]),
        ServiceAllocation {
            priority: 10,
            namespaces: vec!["team".into()],
            ..Default::default()
        },
    );
    let urgent = with_alloc(
        pool("urgent", &["10.0.2.1/32"]),
        ServiceAllocation {
            priority: 1,
            namespaces: vec!["team".into()],
            service_selectors: vec![LabelSelector {
                match_labels: Some([("tier".to_string(), "gold".to_string())].into()),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    a.set_pools([general, team, urgent]);
    // Outside the namespace: only the general pool.
    assert_eq!(
        ips(&a.allocate(&svc("other/a", &[80], "")).unwrap()),
        ["10.0.0.1"]
    );
    // In the namespace: team before general.
    assert_eq!(
        ips(&a.allocate(&svc("team/a", &[80], "")).unwrap()),
        ["10.0.1.1"]
    );
    // Gold label: urgent (priority 1) first.
    let mut gold = svc("team/gold", &[80], "");
    gold.labels.insert("tier".into(), "gold".into());
    assert_eq!(ips(&a.allocate(&gold).unwrap()), ["10.0.2.1"]);
    // A requested address in a pool that does not serve the Service is refused.
    assert!(a
        .assign(&svc("other/b", &[80], ""), &[ip("10.0.1.1")])
        .unwrap_err()
        .0
        .contains("serviceAllocation"));
}

#[test]
fn removed_pool_invalidates_assign() {
    let mut a = Allocator::new();
    a.set_pools([pool("p", &["10.0.0.1/32"])]);
    let s = svc("d/a", &[80], "");
    let got = a.allocate(&s).unwrap();
    a.set_pools([pool("q", &["10.0.5.1/32"])]);
    assert!(a.assign(&s, &got).is_err());
    assert_eq!(ips(&a.allocate(&s).unwrap()), ["10.0.5.1"]);
}

// Property tests: random sequences of allocations, requests and releases keep the invariants.

#[derive(Clone, Debug)]
enum Op {
    Allocate {
        svc: u8,
        port: i32,
        key: u8,
    },
    Assign {
        svc: u8,
        port: i32,
        key: u8,
        host: u8,
    },
    Release {
        svc: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..12, 1i32..4, 0u8..3).prop_map(|(svc, port, key)| Op::Allocate { svc, port, key }),
        (0u8..12, 1i32..4, 0u8..3, 0u8..10).prop_map(|(svc, port, key, host)| Op::Assign {
            svc,
            port,
            key,
            host
        }),
        (0u8..12).prop_map(|svc| Op::Release { svc }),
    ]
}

fn req(n: u8, port: i32, key: u8) -> SvcRequest {
    // Key 0 means "no sharing".
    let k = if key == 0 {
        String::new()
    } else {
        format!("k{key}")
    };
    svc(&format!("ns/s{n}"), &[port], &k)
}

proptest! {
    #[test]
    fn invariants_hold_under_random_operations(ops in proptest::collection::vec(op(), 1..60)) {
        let mut a = Allocator::new();
        let mut p = pool("p", &["10.0.0.0-10.0.0.3", "10.0.0.255-10.0.1.1"]);
        p.avoid_buggy_ips = true;
        a.set_pools([p.clone()]);
        let mut reqs: HashMap<String, SvcRequest> = HashMap::new();
        for o in ops {
            match o {
                Op::Allocate { svc, port, key } => {
                    let r = req(svc, port, key);
                    match a.allocate(&r) {
                        Ok(_) => { reqs.insert(r.key.clone(), r); }
                        Err(e) => {
                            prop_assert_eq!(e.0, "no available IPs");
                            // Full means: no usable address would have accepted it.
                            for ip in p.addresses(true) {
                                prop_assert!(a.check_sharing(&r, ip).is_err());
                            }
                        }
                    }
                }
                Op::Assign { svc, port, key, host } => {
                    let r = req(svc, port, key);
                    let target = ip(&format!("10.0.0.{host}"));
                    let before = a.allocation(&r.key).map(|(p, i)| (p.to_string(), i.to_vec()));
                    if a.assign(&r, &[target]).is_ok() {
                        reqs.insert(r.key.clone(), r);
                    } else {
                        // A refused request leaves the Service as it was.
                        let after = a.allocation(&r.key).map(|(p, i)| (p.to_string(), i.to_vec()));
                        prop_assert_eq!(before, after);
                    }
                }
                Op::Release { svc } => {
                    let k = format!("ns/s{svc}");
                    a.unassign(&k);
                    reqs.remove(&k);
                }
            }
            // Invariant: every holder's address is usable in its pool; holders of one address
            // all share one non-empty key and use distinct ports.
            let mut by_ip: HashMap<IpAddr, Vec<&SvcRequest>> = HashMap::new();
            for s in a.services() {
                let (pool_name, got) = a.allocation(s).unwrap();
                prop_assert_eq!(pool_name, "p");
                for i in got {
                    prop_assert!(p.usable(*i), "{} not usable", i);
                    by_ip.entry(*i).or_default().push(&reqs[s]);
                }
            }
            prop_assert_eq!(a.services().count(), reqs.len());
            for (i, holders) in by_ip {
                prop_assert_eq!(a.services_on(i).len(), holders.len());
                if holders.len() > 1 {
                    let key = &holders[0].sharing;
                    prop_assert!(!key.sharing.is_empty());
                    let mut ports = std::collections::HashSet::new();
                    for h in holders {
                        prop_assert_eq!(&h.sharing, key);
                        for p in &h.ports { prop_assert!(ports.insert(p.clone()), "port {} twice on {}", p, i); }
                    }
                }
            }
        }
    }

    #[test]
    fn releasing_everything_frees_every_address(n in 1usize..8) {
        let mut a = Allocator::new();
        a.set_pools([pool("p", &["10.0.0.0/29"])]);
        for i in 0..n { a.allocate(&svc(&format!("d/s{i}"), &[80], "")).unwrap(); }
        for i in 0..n { let k = format!("d/s{i}"); prop_assert!(a.unassign(&k)); }
        prop_assert!(a.ips.is_empty());
        for i in 0..8 { a.allocate(&svc(&format!("d/t{i}"), &[80], "")).unwrap(); }
    }
}
