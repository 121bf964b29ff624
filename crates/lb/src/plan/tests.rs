use super::*;
use crate::crd::{IpAddressPool, IpAddressPoolSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

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

/// A LoadBalancer Service as the API server stores it; `created` orders Services by age.
fn svc(name: &str, created: u32, port: i32, extra: serde_json::Value) -> Service {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "default",
                     "creationTimestamp": format!("2026-11-22T00:00:{created:02}Z")},
        "spec": {"type": "LoadBalancer", "ipFamilies": ["IPv4"],
                 "ports": [{"port": port, "protocol": "TCP"}], "selector": {"app": name}},
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn planner(mode: Mode) -> Planner {
    Planner::new(PlanConfig {
        class: "switchboard.io/lb".into(),
        mode,
    })
}

fn node(name: &str, ip: &str) -> LbNode {
    LbNode {
        name: name.into(),
        labels: BTreeMap::new(),
        addresses: vec![ip.parse().unwrap()],
        ready: true,
    }
}

fn show(o: &Outcome) -> String {
    match o {
        Outcome::Pool { pool, ips } => format!(
            "pool {pool}: {}",
            ips.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Outcome::ServiceLb { ips, .. } => format!(
            "servicelb: {}",
            ips.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        Outcome::Pending(r) => format!("pending: {r}"),
    }
}

fn run(
    p: &mut Planner,
    pools: &[Pool],
    svcs: &[Service],
    nodes: &[LbNode],
) -> BTreeMap<String, String> {
    let refs: Vec<&Service> = svcs.iter().collect();
    p.plan(pools.to_vec(), &refs, &BTreeMap::new(), nodes)
        .iter()
        .map(|(k, o)| (k.clone(), show(o)))
        .collect()
}

#[test]
fn full_pool_leaves_the_newest_pending() {
    let mut p = planner(Mode::Auto);
    let pools = [pool("p", &["192.168.1.240-192.168.1.241"])];
    let got = run(
        &mut p,
        &pools,
        &[
            svc("c", 3, 80, json!({})),
            svc("a", 1, 80, json!({})),
            svc("b", 2, 80, json!({})),
        ],
        &[],
    );
    assert_eq!(got["default/a"], "pool p: 192.168.1.240");
    assert_eq!(got["default/b"], "pool p: 192.168.1.241");
    assert_eq!(
        got["default/c"],
        "pending: Failed to allocate IP for \"default/c\": no available IPs"
    );
}

#[test]
fn an_address_is_kept_across_rounds_and_restarts() {
    let pools = [pool("p", &["192.168.1.240/29"])];
    // A restarted controller sees the status it wrote before and keeps it, even for a
    // Service that is newer than one still waiting.
    let mut p = planner(Mode::Auto);
    let held = svc(
        "new",
        5,
        80,
        json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.243"}]}}}),
    );
    let got = run(
        &mut p,
        &pools,
        &[
            svc(
                "old",
                1,
                80,
                json!({"spec": {"loadBalancerIP": "192.168.1.243"}}),
            ),
            held.clone(),
        ],
        &[],
    );
    assert_eq!(got["default/new"], "pool p: 192.168.1.243");
    assert!(got["default/old"].starts_with("pending: Failed to allocate IP for \"default/old\": can't use 192.168.1.243, address also in use by default/new"), "{}", got["default/old"]);
    let got = run(&mut p, &pools, &[held], &[]);
    assert_eq!(got["default/new"], "pool p: 192.168.1.243");
}

#[test]
fn requested_ips_annotation_and_pool_annotation() {
    let mut p = planner(Mode::Auto);
    let pools = [
        pool("a", &["10.0.0.1-10.0.0.5"]),
        pool("b", &["10.0.1.1-10.0.1.5"]),
    ];
    let got = run(
        &mut p,
        &pools,
        &[
            svc(
                "ann",
                1,
                80,
                json!({"metadata": {"annotations": {"metallb.universe.tf/loadBalancerIPs": "10.0.0.4"}}}),
            ),
            svc(
                "spec",
                2,
                80,
                json!({"spec": {"loadBalancerIP": "10.0.1.3"}}),
            ),
            svc(
                "pool",
                3,
                80,
                json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "b"}}}),
            ),
            svc(
                "both",
                4,
                80,
                json!({"metadata": {"annotations": {"metallb.universe.tf/loadBalancerIPs": "10.0.0.2"}}, "spec": {"loadBalancerIP": "10.0.0.2"}}),
            ),
            svc(
                "bad",
                5,
                80,
                json!({"spec": {"loadBalancerIP": "not-an-ip"}}),
            ),
            svc(
                "outside",
                6,
                80,
                json!({"spec": {"loadBalancerIP": "10.9.9.9"}}),
            ),
            svc(
                "nopool",
                7,
                80,
                json!({"metadata": {"annotations": {"metallb.universe.tf/address-pool": "zzz"}}}),
            ),
        ],
        &[],
    );
    assert_eq!(got["default/ann"], "pool a: 10.0.0.4");
    assert_eq!(got["default/spec"], "pool b: 10.0.1.3");
    assert_eq!(got["default/pool"], "pool b: 10.0.1.1");
    assert!(got["default/both"].contains("can not have both"));
    assert!(got["default/bad"].contains("invalid spec.loadBalancerIP \"not-an-ip\""));
    assert!(got["default/outside"].ends_with("[\"10.9.9.9\"] is not allowed in config"));
    assert!(got["default/nopool"].ends_with("unknown pool \"zzz\""));
}

#[test]
fn changing_the_requested_ip_moves_the_service() {
    let mut p = planner(Mode::Auto);
    let pools = [pool("a", &["10.0.0.1-10.0.0.5"])];
    assert_eq!(
        run(&mut p, &pools, &[svc("s", 1, 80, json!({}))], &[])["default/s"],
        "pool a: 10.0.0.1"
    );
    let moved = svc(
        "s",
        1,
        80,
        json!({"spec": {"loadBalancerIP": "10.0.0.5"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}),
    );
    assert_eq!(
        run(&mut p, &pools, &[moved], &[])["default/s"],
        "pool a: 10.0.0.5"
    );
    // 10.0.0.1 is free again.
    assert_eq!(
        run(&mut p, &pools, &[svc("t", 2, 80, json!({}))], &[])["default/t"],
        "pool a: 10.0.0.1"
    );
}

#[test]
fn sharing_by_annotation() {
    let mut p = planner(Mode::Auto);
    let pools = [pool("a", &["10.0.0.1/32"])];
    let shared =
        json!({"metadata": {"annotations": {"metallb.universe.tf/allow-shared-ip": "dns"}}});
    let got = run(
        &mut p,
        &pools,
        &[
            svc("tcp", 1, 53, shared.clone()),
            svc("udp", 2, 54, shared.clone()),
            svc("clash", 3, 53, shared),
        ],
        &[],
    );
    assert_eq!(got["default/tcp"], "pool a: 10.0.0.1");
    assert_eq!(got["default/udp"], "pool a: 10.0.0.1");
    assert!(
        got["default/clash"].starts_with("pending:"),
        "{}",
        got["default/clash"]
    );
}

#[test]
fn class_and_type_decide_whose_service_it_is() {
    let mut p = planner(Mode::Auto);
    let pools = [pool("a", &["10.0.0.1/32"])];
    let got = run(
        &mut p,
        &pools,
        &[
            svc(
                "other",
                1,
                80,
                json!({"spec": {"loadBalancerClass": "example.com/other"}}),
            ),
            svc(
                "mine",
                2,
                80,
                json!({"spec": {"loadBalancerClass": "switchboard.io/lb"}}),
            ),
            svc("np", 3, 80, json!({"spec": {"type": "NodePort"}})),
        ],
        &[],
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got["default/mine"], "pool a: 10.0.0.1");
    // Type change to ClusterIP releases the address.
    let got = run(
        &mut p,
        &pools,
        &[
            svc(
                "mine",
                2,
                80,
                json!({"spec": {"type": "ClusterIP", "loadBalancerClass": null}}),
            ),
            svc("next", 4, 80, json!({})),
        ],
        &[],
    );
    assert_eq!(got["default/next"], "pool a: 10.0.0.1");
}

#[test]
fn servicelb_serves_what_no_pool_serves() {
    let mut p = planner(Mode::Auto);
    let mut team = pool("team", &["10.0.0.1/32"]);
    team.allocation = Some(crate::pool::Allocation {
        priority: 0,
        namespaces: vec!["team".into()],
        namespace_selectors: vec![],
        service_selectors: vec![],
    });
    let nodes = [node("n1", "192.168.5.1"), node("n2", "192.168.5.2")];
    let got = run(
        &mut p,
        &[team],
        &[svc("web", 1, 80, json!({})), svc("web2", 2, 80, json!({}))],
        &nodes,
    );
    assert_eq!(got["default/web"], "servicelb: 192.168.5.1,192.168.5.2");
    assert_eq!(
        got["default/web2"],
        "pending: ServiceLB port conflict: TCP/80 is already used by default/web on node(s) n1,n2"
    );
    // Pools-only mode: no fallback.
    let mut p = planner(Mode::Pools);
    let got = run(&mut p, &[], &[svc("web", 1, 80, json!({}))], &nodes);
    assert_eq!(
        got["default/web"],
        "pending: Failed to allocate IP for \"default/web\": no available IPs"
    );
    // ServiceLB mode: even with a pool.
    let mut p = planner(Mode::ServiceLb);
    let got = run(
        &mut p,
        &[pool("a", &["10.0.0.1/32"])],
        &[svc("web", 1, 80, json!({}))],
        &nodes,
    );
    assert_eq!(got["default/web"], "servicelb: 192.168.5.1,192.168.5.2");
}

#[test]
fn servicelb_holder_keeps_its_port_against_an_older_newcomer() {
    let mut p = planner(Mode::ServiceLb);
    let nodes = [node("n1", "192.168.5.1")];
    assert_eq!(
        run(&mut p, &[], &[svc("young", 5, 80, json!({}))], &nodes)["default/young"],
        "servicelb: 192.168.5.1"
    );
    let got = run(
        &mut p,
        &[],
        &[svc("young", 5, 80, json!({})), svc("old", 1, 80, json!({}))],
        &nodes,
    );
    assert_eq!(got["default/young"], "servicelb: 192.168.5.1");
    assert!(got["default/old"].starts_with("pending: ServiceLB port conflict"));
}

#[test]
fn dual_stack_service() {
    let mut p = planner(Mode::Auto);
    let pools = [pool("d", &["10.0.0.1/32", "fc00::1/128"])];
    let got = run(
        &mut p,
        &pools,
        &[svc(
            "ds",
            1,
            80,
            json!({"spec": {"ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "RequireDualStack"}}),
        )],
        &[],
    );
    assert_eq!(got["default/ds"], "pool d: 10.0.0.1,fc00::1");
}

#[test]
fn prefer_dual_stack_settles_for_the_family_the_pools_have() {
    let mut p = planner(Mode::Auto);
    let prefer =
        json!({"spec": {"ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack"}});
    let s = svc("pds", 1, 80, prefer);
    assert!(families(&s).prefer_dual);
    // An IPv4-only pool serves it (not ServiceLB, as Auto would for a pool-less Service).
    let got = run(
        &mut p,
        &[pool("v4", &["10.0.0.1/32"])],
        std::slice::from_ref(&s),
        &[],
    );
    assert_eq!(got["default/pds"], "pool v4: 10.0.0.1");
    // The pool gains IPv6: the Service keeps its address and gets the other family too.
    let got = run(
        &mut p,
        &[pool("v4", &["10.0.0.1/32", "fc00::1/128"])],
        &[s],
        &[],
    );
    assert_eq!(got["default/pds"], "pool v4: 10.0.0.1,fc00::1");
    // RequireDualStack is not PreferDualStack.
    let r = svc(
        "rds",
        2,
        80,
        json!({"spec": {"ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "RequireDualStack"}}),
    );
    let f = families(&r);
    assert!(f.v4 && f.v6 && f.v6_first && !f.prefer_dual);
}

fn cluster_ip(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"type": "ClusterIP", "ports": [{"port": 80}]},
    }))
    .unwrap()
}

#[test]
fn services_created_one_by_one_cost_one_decision_each() {
    let mut p = planner(Mode::Auto);
    p.plan(
        vec![pool("lab", &["10.0.0.0/23"])],
        &[],
        &BTreeMap::new(),
        &[],
    );
    let n = 400;
    let mut all: Vec<Service> = Vec::new();
    let mut outcomes = BTreeMap::new();
    for i in 0..n {
        // Ten ClusterIP Services per LoadBalancer one: they cost no decision at all.
        for j in 0..10 {
            let c = cluster_ip(&format!("c{i}-{j}"));
            let change = p.plan_service(&key_of(&c), Some(&c), None);
            assert_eq!(change.outcome, None);
            assert!(!change.released);
            all.push(c);
        }
        let s = svc(&format!("lb{i}"), (i % 60) as u32, 80, json!({}));
        let change = p.plan_service(&key_of(&s), Some(&s), None);
        assert!(!change.released);
        outcomes.insert(key_of(&s), change.outcome.expect("ours"));
        // The API writes the status the controller decided; the watch brings the Service
        // back, and deciding it again changes nothing.
        let mut written = s.clone();
        written.status = Some(
            serde_json::from_value(json!({"loadBalancer": {"ingress": outcomes[&key_of(&s)]
                .ips().iter().map(|ip| json!({"ip": ip.to_string()})).collect::<Vec<_>>()}}))
            .unwrap(),
        );
        let again = p.plan_service(&key_of(&s), Some(&written), None);
        assert_eq!(again.outcome.as_ref(), Some(&outcomes[&key_of(&s)]));
        all.push(written);
    }
    // Two decisions per LoadBalancer Service (its creation, its status write), none for the
    // ClusterIP ones, and no whole round: linear in the Services created. A whole round per
    // change, as before, would have made n * (n + 1) decisions.
    assert_eq!(p.decided, 2 * n as u64);
    assert_eq!(p.whole_rounds, 1);
    let ips: BTreeSet<IpAddr> = outcomes.values().flat_map(|o| o.ips().to_vec()).collect();
    assert_eq!(ips.len(), n, "every Service got its own address");
    assert_eq!(
        outcomes.values().map(show).next().unwrap(),
        "pool lab: 10.0.0.0"
    );
    // A whole round (a restart, the resync) agrees with what was decided one by one.
    let refs: Vec<&Service> = all.iter().collect();
    let whole = p.plan(
        vec![pool("lab", &["10.0.0.0/23"])],
        &refs,
        &BTreeMap::new(),
        &[],
    );
    assert_eq!(whole, outcomes);
    let mut fresh = planner(Mode::Auto);
    let restart = fresh.plan(
        vec![pool("lab", &["10.0.0.0/23"])],
        &refs,
        &BTreeMap::new(),
        &[],
    );
    assert_eq!(restart, outcomes);
}

#[test]
fn a_release_asks_for_a_whole_round_that_serves_the_waiting() {
    let mut p = planner(Mode::Auto);
    p.plan(
        vec![pool("lab", &["10.0.0.1-10.0.0.2"])],
        &[],
        &BTreeMap::new(),
        &[],
    );
    let s: Vec<Service> = (0..3)
        .map(|i| svc(&format!("s{i}"), i, 80, json!({})))
        .collect();
    let shown: Vec<String> = s
        .iter()
        .map(|x| show(&p.plan_service(&key_of(x), Some(x), None).outcome.unwrap()))
        .collect();
    assert_eq!(
        shown,
        [
            "pool lab: 10.0.0.1",
            "pool lab: 10.0.0.2",
            "pending: Failed to allocate IP for \"default/s2\": no available IPs"
        ]
    );
    // Deciding the waiting one again alone releases nothing.
    assert!(!p.plan_service("default/s2", Some(&s[2]), None).released);
    // s0 is deleted: its address is free, and the loop must look at everything.
    let gone = p.plan_service("default/s0", None, None);
    assert_eq!(
        gone,
        ServiceChange {
            outcome: None,
            released: true
        }
    );
    let refs: Vec<&Service> = s[1..].iter().collect();
    let whole = p.plan(
        vec![pool("lab", &["10.0.0.1-10.0.0.2"])],
        &refs,
        &BTreeMap::new(),
        &[],
    );
    assert_eq!(show(&whole["default/s2"]), "pool lab: 10.0.0.1");
    // A type change away from LoadBalancer releases too.
    let mut c = s[1].clone();
    c.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    assert!(p.plan_service("default/s1", Some(&c), None).released);
}

#[test]
fn servicelb_one_by_one_keeps_ports_and_a_release_is_reported() {
    let mut p = planner(Mode::ServiceLb);
    let nodes = [node("n1", "192.168.0.1"), node("n2", "192.168.0.2")];
    p.plan(vec![], &[], &BTreeMap::new(), &nodes);
    let a = svc("a", 1, 80, json!({}));
    let b = svc("b", 2, 80, json!({}));
    let c = svc("c", 3, 81, json!({}));
    let d = |p: &mut Planner, s: &Service| {
        show(&p.plan_service(&key_of(s), Some(s), None).outcome.unwrap())
    };
    assert_eq!(d(&mut p, &a), "servicelb: 192.168.0.1,192.168.0.2");
    assert_eq!(
        d(&mut p, &b),
        "pending: ServiceLB port conflict: TCP/80 is already used by default/a on node(s) n1,n2"
    );
    assert_eq!(d(&mut p, &c), "servicelb: 192.168.0.1,192.168.0.2");
    // a again (its status came back): it keeps its port.
    assert_eq!(d(&mut p, &a), "servicelb: 192.168.0.1,192.168.0.2");
    assert_eq!(p.decided, 4);
    // a moves to port 8080: port 80 is released, and the whole round gives it to b.
    let a2 = svc("a", 1, 8080, json!({}));
    let change = p.plan_service("default/a", Some(&a2), None);
    assert!(change.released);
    let whole = p.plan(vec![], &[&a2, &b, &c], &BTreeMap::new(), &nodes);
    assert_eq!(
        show(&whole["default/b"]),
        "servicelb: 192.168.0.1,192.168.0.2"
    );
}
