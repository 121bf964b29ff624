//! Golden text of the rendered rules for fixed snapshots, each also checked by the kernel
//! (`nft -c -f` in a throwaway network namespace). `UPDATE_GOLDEN=1 cargo test -p proxy-nft
//! --test golden` rewrites the files after a deliberate change; review the diff.

mod common;

use common::*;
use proxy_core::{IpFamily, Protocol, ProxyConfig, Scheduler, ServicePort, Snapshot};
use std::path::PathBuf;

fn golden(name: &str, snap: &Snapshot, cfg: &ProxyConfig, families: &[IpFamily]) {
    let mut text = String::new();
    for t in proxy_nft::render(snap, cfg) {
        if families.contains(&t.family) {
            text.push_str(&t.full_script());
        }
    }
    let ns = Netns::new();
    if let Err(e) = ns.nft_check(&text) {
        panic!("{name}: nft -c rejected the rendered rules: {e}\n{text}");
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.nft"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != text {
        let first = want.lines().zip(text.lines()).position(|(a, b)| a != b);
        panic!(
            "{name}: rendering differs from {} (first differing line {first:?}):\n{text}",
            path.display()
        );
    }
}

const V4: &[IpFamily] = &[IpFamily::V4];

fn web() -> ServicePort {
    service(
        "web",
        "10.43.0.20",
        &["10.42.0.11", "10.42.0.12", "10.42.0.13"],
    )
}

fn with_scheduler(s: Scheduler) -> Snapshot {
    let mut sp = web();
    sp.scheduler = s;
    snapshot([sp])
}

#[test]
fn cluster_ip_service() {
    golden(
        "cluster_ip",
        &snapshot([web(), service("single", "10.43.0.21", &["10.42.0.14"])]),
        &cfg(),
        V4,
    );
}

#[test]
fn node_port_service() {
    let mut sp = web();
    sp.node_port = Some(30080);
    let mut dns = service("dns", "10.43.0.10", &["10.42.0.11"]);
    dns.name.protocol = Protocol::Udp;
    dns.name.port = "dns".into();
    dns.port = 53;
    dns.node_port = Some(30053);
    golden("node_port", &snapshot([sp, dns]), &cfg(), V4);
}

#[test]
fn node_port_on_every_local_address() {
    let mut sp = web();
    sp.node_port = Some(30080);
    let cfg = ProxyConfig {
        nodeport_addresses: vec!["0.0.0.0/0".parse().unwrap()],
        ..cfg()
    };
    golden("node_port_all_addresses", &snapshot([sp]), &cfg, V4);
}

#[test]
fn load_balancer_service() {
    let mut sp = web();
    sp.node_port = Some(30080);
    sp.load_balancer_ips = vec![ip("192.168.150.100")];
    golden("load_balancer", &snapshot([sp]), &cfg(), V4);
}

#[test]
fn load_balancer_source_ranges() {
    let mut sp = web();
    sp.node_port = Some(30080);
    sp.load_balancer_ips = vec![ip("192.168.150.102")];
    sp.source_ranges = vec![
        "10.0.0.0/8".parse().unwrap(),
        "203.0.113.7/32".parse().unwrap(),
    ];
    let mut node_allowed = service("lb-node", "10.43.0.22", &["10.42.0.11"]);
    node_allowed.load_balancer_ips = vec![ip("192.168.150.103")];
    node_allowed.source_ranges = vec!["172.30.0.0/24".parse().unwrap()];
    golden("source_ranges", &snapshot([sp, node_allowed]), &cfg(), V4);
}

#[test]
fn external_ips() {
    let mut sp = web();
    sp.external_ips = vec![ip("192.168.150.41"), ip("192.168.150.42")];
    golden("external_ips", &snapshot([sp]), &cfg(), V4);
}

#[test]
fn services_without_endpoints_are_rejected() {
    let mut np = service("np", "10.43.0.23", &[]);
    np.node_port = Some(30081);
    np.external_ips = vec![ip("192.168.150.41")];
    golden(
        "no_endpoints",
        &snapshot([service("empty", "10.43.0.22", &[]), np]),
        &cfg(),
        V4,
    );
}

#[test]
fn session_affinity() {
    let mut sp = web();
    sp.affinity_timeout = Some(10800);
    let mut one = service("one", "10.43.0.21", &["10.42.0.14"]);
    one.affinity_timeout = Some(60);
    golden("affinity", &snapshot([sp, one]), &cfg(), V4);
}

#[test]
fn affinity_with_round_robin() {
    let mut sp = web();
    sp.affinity_timeout = Some(300);
    sp.scheduler = Scheduler::RoundRobin;
    golden("affinity_rr", &snapshot([sp]), &cfg(), V4);
}

#[test]
fn scheduler_random() {
    golden(
        "scheduler_random",
        &with_scheduler(Scheduler::Random),
        &cfg(),
        V4,
    );
}

#[test]
fn scheduler_round_robin() {
    golden(
        "scheduler_rr",
        &with_scheduler(Scheduler::RoundRobin),
        &cfg(),
        V4,
    );
}

#[test]
fn scheduler_source_hash() {
    golden(
        "scheduler_sh",
        &with_scheduler(Scheduler::SourceHash),
        &cfg(),
        V4,
    );
}

#[test]
fn scheduler_maglev() {
    golden(
        "scheduler_mh",
        &with_scheduler(Scheduler::Maglev),
        &cfg(),
        V4,
    );
}

#[test]
fn scheduler_least_connection_renders_as_random() {
    let lc = proxy_nft::render(&with_scheduler(Scheduler::LeastConnection), &cfg());
    let random = proxy_nft::render(&with_scheduler(Scheduler::Random), &cfg());
    assert_eq!(lc, random);
}

#[test]
fn external_traffic_policy_local() {
    let mut sp = service("local", "10.43.0.24", &[]);
    sp.endpoints = vec![
        endpoint("10.42.0.11", 8080, true),
        endpoint("10.42.1.12", 8080, false),
    ];
    sp.node_port = Some(30082);
    sp.load_balancer_ips = vec![ip("192.168.150.104")];
    sp.external_policy_local = true;
    let mut none_local = service("remote-only", "10.43.0.25", &["10.42.1.13"]);
    none_local.node_port = Some(30083);
    none_local.external_policy_local = true;
    golden("etp_local", &snapshot([sp, none_local]), &cfg(), V4);
}

#[test]
fn internal_traffic_policy_local() {
    let mut sp = service("itp", "10.43.0.26", &[]);
    sp.endpoints = vec![
        endpoint("10.42.0.11", 8080, true),
        endpoint("10.42.1.12", 8080, false),
    ];
    sp.internal_policy_local = true;
    let mut none_local = service("itp-remote", "10.43.0.27", &["10.42.1.13"]);
    none_local.internal_policy_local = true;
    golden("itp_local", &snapshot([sp, none_local]), &cfg(), V4);
}

#[test]
fn terminating_endpoints_serve_only_when_nothing_is_ready() {
    let mut sp = service("rollout", "10.43.0.28", &[]);
    let mut term = endpoint("10.42.0.11", 8080, true);
    term.ready = false;
    term.terminating = true;
    let mut gone = endpoint("10.42.0.12", 8080, false);
    gone.ready = false;
    gone.serving = false;
    gone.terminating = true;
    sp.endpoints = vec![term.clone(), gone];
    let mut mixed = service("mixed", "10.43.0.29", &["10.42.0.13"]);
    mixed.endpoints.push(term);
    golden("terminating_fallback", &snapshot([sp, mixed]), &cfg(), V4);
}

#[test]
fn masquerade_all_and_no_cluster_cidr() {
    let cfg = ProxyConfig {
        masquerade_all: true,
        cluster_cidrs: vec![],
        service_cidrs: vec![],
        ..cfg()
    };
    golden("masquerade_all", &snapshot([web()]), &cfg, V4);
}

#[test]
fn dual_stack() {
    let mut sp = web();
    sp.cluster_ips.push(ip("fd00:43::20"));
    sp.endpoints.push(endpoint("fd00:42::11", 8080, false));
    sp.endpoints.push(endpoint("fd00:42::12", 8080, false));
    sp.node_port = Some(30080);
    sp.affinity_timeout = Some(600);
    sp.load_balancer_ips = vec![ip("192.168.150.100"), ip("fd00:150::100")];
    sp.source_ranges = vec!["fd00:150::/64".parse().unwrap()];
    let cfg = ProxyConfig {
        cluster_cidrs: vec![
            "10.42.0.0/16".parse().unwrap(),
            "fd00:42::/56".parse().unwrap(),
        ],
        service_cidrs: vec![
            "10.43.0.0/16".parse().unwrap(),
            "fd00:43::/112".parse().unwrap(),
        ],
        ..cfg()
    };
    golden(
        "dual_stack",
        &snapshot([sp]),
        &cfg,
        &[IpFamily::V4, IpFamily::V6],
    );
}
