//! Random sequences of creates, updates (type changes included), lost update races, dry runs,
//! deletes and restarts, against small ranges so that values collide: no two stored Services
//! ever share a ClusterIP or a NodePort, what is allocated is exactly what the stored Services
//! hold, and a restart rebuilds the same allocations without a repair event.

use crate::harness::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use services::{Resource, ServiceConfig};
use std::collections::BTreeMap;

fn config() -> ServiceConfig {
    ServiceConfig {
        service_cidrs: vec!["10.43.0.0/26".into(), "fd00:43::/120".into()],
        node_port_range: (30000, 30039),
        cluster_dns: vec!["10.43.0.10".parse().unwrap()],
        rng_seed: Some(17),
    }
}

#[derive(Debug, Clone)]
struct PortGen {
    port: i64,
    udp: bool,
    node_port: Option<i64>,
}

#[derive(Debug, Clone)]
struct SpecGen {
    kind: u8,
    ports: Vec<PortGen>,
    cluster_ip: Option<u8>,
    dual: bool,
    local: bool,
    hc: Option<i64>,
    no_lb_node_ports: bool,
}

fn port_gen() -> impl Strategy<Value = PortGen> {
    (
        prop::sample::select(vec![53i64, 80, 443]),
        any::<bool>(),
        prop::option::weighted(0.4, 29990i64..30045),
    )
        .prop_map(|(port, udp, node_port)| PortGen {
            port,
            udp,
            node_port,
        })
}

fn spec_gen() -> impl Strategy<Value = SpecGen> {
    (
        0u8..5,
        prop::collection::vec(port_gen(), 1..4),
        prop::option::weighted(0.3, 0u8..64),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.2, 30000i64..30040),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(kind, ports, cluster_ip, dual, local, hc, no_lb_node_ports)| SpecGen {
                kind,
                ports,
                cluster_ip,
                dual,
                local,
                hc,
                no_lb_node_ports,
            },
        )
}

impl SpecGen {
    fn to_spec(&self) -> Value {
        let ty = [
            "ClusterIP",
            "ClusterIP",
            "NodePort",
            "LoadBalancer",
            "ExternalName",
        ][self.kind as usize];
        let headless = self.kind == 1;
        let ports: Vec<Value> = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut v = json!({"name": format!("p{i}"), "port": p.port, "protocol": if p.udp { "UDP" } else { "TCP" }});
                if let (Some(np), "NodePort" | "LoadBalancer") = (p.node_port, ty) {
                    v["nodePort"] = json!(np);
                }
                v
            })
            .collect();
        let mut spec = json!({"type": ty, "ports": ports, "selector": {"app": "x"}});
        if ty == "ExternalName" {
            spec["externalName"] = json!("www.example.com");
        }
        if headless {
            spec["clusterIP"] = json!("None");
        } else if let (Some(o), true) = (self.cluster_ip, ty != "ExternalName") {
            spec["clusterIP"] = json!(format!("10.43.0.{o}"));
        }
        if self.dual && ty != "ExternalName" {
            spec["ipFamilyPolicy"] = json!("PreferDualStack");
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            spec["externalTrafficPolicy"] = json!(if self.local { "Local" } else { "Cluster" });
        }
        if ty == "LoadBalancer" {
            if let (true, Some(hc)) = (self.local, self.hc) {
                spec["healthCheckNodePort"] = json!(hc);
            }
            if self.no_lb_node_ports {
                spec["allocateLoadBalancerNodePorts"] = json!(false);
            }
        }
        spec
    }
}

#[derive(Debug, Clone)]
enum Step {
    Create(usize, SpecGen),
    DryRun(usize, SpecGen),
    /// A merge patch of the whole spec (type changes included).
    Patch(usize, SpecGen),
    /// A PUT that leaves the allocated values out.
    Put(usize, SpecGen),
    LostRace(usize, SpecGen),
    Delete(usize),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..10, spec_gen()).prop_map(|(n, s)| Step::Create(n, s)),
        1 => (0usize..10, spec_gen()).prop_map(|(n, s)| Step::DryRun(n, s)),
        3 => (0usize..10, spec_gen()).prop_map(|(n, s)| Step::Patch(n, s)),
        1 => (0usize..10, spec_gen()).prop_map(|(n, s)| Step::Put(n, s)),
        1 => (0usize..10, spec_gen()).prop_map(|(n, s)| Step::LostRace(n, s)),
        2 => (0usize..10).prop_map(Step::Delete),
        1 => Just(Step::Restart),
    ]
}

fn held(c: &Cluster) -> BTreeMap<Resource, String> {
    held_by_services(&c.store.values().cloned().collect::<Vec<_>>())
}

fn allocated(c: &Cluster) -> BTreeMap<Resource, String> {
    let a = allocations_by_holder(&c.adm);
    assert_eq!(
        c.adm.allocations().pending,
        0,
        "a reservation outlived its write"
    );
    a
}

fn check(c: &Cluster) {
    assert!(c.adm.is_consistent());
    assert_eq!(
        held(c),
        allocated(c),
        "the allocators disagree with the stored Services"
    );
}

fn restart(c: &mut Cluster) {
    let before = allocated(c);
    let (restarted, events) = Cluster::from_store(config(), c.store.values().cloned().collect());
    assert!(events.is_empty(), "repair found problems: {events:#?}");
    assert_eq!(
        allocated(&restarted),
        before,
        "the rebuilt allocators differ"
    );
    *c = restarted;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn allocations_stay_unique_and_agree_with_the_store(steps in prop::collection::vec(step(), 1..60)) {
        let mut c = Cluster::with_config(config());
        for s in steps {
            match s {
                Step::Create(n, g) => {
                    let _ = c.create(svc(&format!("s{n}"), g.to_spec()));
                }
                Step::DryRun(n, g) => {
                    let _ = c.create_dry_run(svc(&format!("s{n}"), g.to_spec()));
                }
                Step::Patch(n, g) => {
                    if c.store.contains_key(&format!("s{n}")) {
                        let _ = c.patch(&format!("s{n}"), json!({"spec": g.to_spec()}));
                    }
                }
                Step::Put(n, g) => {
                    if c.store.contains_key(&format!("s{n}")) {
                        let _ = c.replace(&format!("s{n}"), svc(&format!("s{n}"), g.to_spec()));
                    }
                }
                Step::LostRace(n, g) => {
                    if c.store.contains_key(&format!("s{n}")) {
                        let _ = c.patch_lost_race(&format!("s{n}"), json!({"spec": g.to_spec()}));
                    }
                }
                Step::Delete(n) => {
                    if c.store.contains_key(&format!("s{n}")) {
                        c.delete(&format!("s{n}"));
                    }
                }
                Step::Restart => restart(&mut c),
            }
            check(&c);
        }
        restart(&mut c);
    }
}

#[test]
fn repair_reports_duplicates_and_out_of_range_values_and_keeps_them_reserved() {
    let stored = |name: &str, uid: &str, spec: Value| -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": "5"},
               "spec": spec, "status": {"loadBalancer": {}}})
    };
    let np = |ip: &str, node_port: i64| {
        json!({"type": "NodePort", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": node_port}]})
    };
    let services = vec![
        stored("a", "uid-a", np("10.43.1.5", 30080)),
        stored("b", "uid-b", np("10.43.1.5", 30080)),
        stored("c", "uid-c", np("10.99.0.1", 80)),
    ];
    let (mut c, events) = Cluster::from_store(
        ServiceConfig {
            rng_seed: Some(1),
            ..ServiceConfig::default()
        },
        services,
    );
    let summary: Vec<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["involvedObject"]["name"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
                e["source"]["component"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    assert_eq!(
        summary,
        vec![
            s("b", "ClusterIPAlreadyAllocated", "Cluster IP [IPv4]:10.43.1.5 was assigned to multiple services; please recreate service", "ipallocator-repair-controller"),
            s("b", "PortAlreadyAllocated", "Port 30080 was assigned to multiple services; please recreate service", "portallocator-repair-controller"),
            s("c", "ClusterIPOutOfRange", "Cluster IP [IPv4]:10.99.0.1 is not within the service CIDR 10.43.0.0/16; please recreate service", "ipallocator-repair-controller"),
            s("c", "PortOutOfRange", "Port 80 is not within the port range 30000-32767; please recreate service", "portallocator-repair-controller"),
        ]
    );
    for e in &events {
        assert_eq!(e["type"], "Warning");
        assert_eq!(e["involvedObject"]["kind"], "Service");
        assert_eq!(e["metadata"]["namespace"], "default");
        assert!(e["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "{}.",
                e["involvedObject"]["name"].as_str().unwrap()
            )));
    }
    let names: std::collections::BTreeSet<&str> = events
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), events.len(), "event names are unique");

    // The duplicate stays reserved until the last Service holding it is gone.
    assert_eq!(c.adm.allocations().node_ports[&30080], "uid-a");
    c.delete("a");
    assert_eq!(c.adm.allocations().node_ports[&30080], "uid-b");
    assert!(c
        .create(svc(
            "d",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})
        ))
        .is_err());
    c.delete("b");
    c.create(svc(
        "d",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
    ))
    .unwrap();
    assert!(c.adm.is_consistent());
}
