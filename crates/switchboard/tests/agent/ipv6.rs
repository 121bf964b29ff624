//! IPv6 end to end: a server with a dual-stack Service CIDR (`10.43.0.0/16,fd43::/112`), a
//! dual-stack netlab (IPv6 on the LAN and in pods), agents on both nodes, and real IPv6
//! connections from the LAN client to a SingleStack IPv6 ClusterIP, to its NodePort on each
//! node's IPv6 address, and to both ClusterIPs of a RequireDualStack Service.

use crate::support::*;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::MutexGuard;
use test_support::netlab::{self, k8s, Client, Lab, Node, Process};
use test_support::TestServer;

/// A dual-stack cluster: server, lab with n1 and n2, an agent on each, pods p1 (n1) and p3
/// (n2) with echo servers on both families, client c1 via n1.
struct DualStack {
    server: TestServer,
    nodes: Vec<Node>,
    client: Client,
    agents: Vec<Process>,
    // Dropped last: agents are killed before the lab removes their namespaces.
    _lab: Lab,
    _turn: MutexGuard<'static, ()>,
}

impl DualStack {
    fn start() -> DualStack {
        let turn = serial();
        std::env::set_var("NO_COLOR", "1");
        let server = TestServer::start_with(
            env!("CARGO_BIN_EXE_switchboard"),
            &[
                "--service-cidr",
                &format!("{},{}", netlab::SERVICE_CIDR, netlab::SERVICE_CIDR6),
            ],
        );
        let lab = Lab::dual_stack();
        let nodes = vec![lab.node("n1"), lab.node("n2")];
        for n in &nodes {
            k8s::register_node(&server, n);
        }
        let client = lab.client_via("c1", &nodes[0]);
        let agents = nodes
            .iter()
            .map(|node| {
                let kubeconfig = lab.kubeconfig_for(node, &server);
                let mut cmd = node.command(env!("CARGO_BIN_EXE_switchboard"));
                cmd.arg("agent")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(["--node-name", &node.name])
                    .args([
                        "--cluster-cidr",
                        &format!("{},{}", netlab::CLUSTER_CIDR, netlab::CLUSTER_CIDR6),
                        "--service-cidr",
                        &format!("{},{}", netlab::SERVICE_CIDR, netlab::SERVICE_CIDR6),
                    ])
                    .env("RUST_LOG", test_support::log_filter())
                    .env("NO_COLOR", "1");
                node.spawn(cmd)
            })
            .collect();
        for (node, pod) in [(&nodes[0], "p1"), (&nodes[1], "p3")] {
            let p = lab.pod(node, pod);
            lab.http_echo(&p, 80);
            k8s::register_pod(&server, &p, "default", &[("app", "web")]);
        }
        DualStack {
            server,
            nodes,
            client,
            agents,
            _lab: lab,
            _turn: turn,
        }
    }

    /// Applies a Service selecting the pods with `spec` merged in; returns it as stored.
    fn service(&self, name: &str, spec: Value) -> Value {
        let mut s = json!({"selector": {"app": "web"},
                           "ports": [{"name": "http", "port": 80, "targetPort": 80}]});
        for (k, v) in spec.as_object().unwrap() {
            s[k] = v.clone();
        }
        k8s::apply(
            &self.server,
            &json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": name, "namespace": "default"}, "spec": s}),
        );
        let out = self
            .server
            .kubectl(&["get", "service", name, "-n", "default", "-o", "json"]);
        assert!(out.status.success(), "{}", test_support::output_text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until both pods answered requests from the client to `addr`; returns the source
    /// address the pods saw last.
    fn wait_both_answer(&self, addr: SocketAddr) -> SocketAddr {
        let mut seen = std::collections::BTreeSet::new();
        let mut source = None;
        eventually(30, &format!("{addr} answered by p1 and p3"), || {
            if let Ok((pod, from)) = ask_from(&self.client, addr) {
                seen.insert(pod);
                source = Some(from);
            }
            (seen.len() == 2).then_some(())
        });
        source.unwrap()
    }
}

impl Drop for DualStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for a in &self.agents {
                eprintln!("---- {} ----\n{}", a.label(), a.log());
            }
        }
        for a in &mut self.agents {
            a.kill();
        }
    }
}

fn cluster_ips(svc: &Value) -> Vec<IpAddr> {
    svc["spec"]["clusterIPs"]
        .as_array()
        .expect("clusterIPs")
        .iter()
        .map(|ip| ip.as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn ipv6_clusterip_and_nodeport_reach_the_pods_over_ipv6() {
    let c = DualStack::start();
    let svc = c.service(
        "web6",
        json!({"type": "NodePort", "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"],
               "ports": [{"name": "http", "port": 80, "targetPort": 80, "nodePort": 30096}]}),
    );
    let ips = cluster_ips(&svc);
    assert_eq!(ips.len(), 1, "{svc}");
    let service_cidr6: ipnet::IpNet = netlab::SERVICE_CIDR6.parse().unwrap();
    assert!(
        service_cidr6.contains(&ips[0]),
        "{} not in {service_cidr6}",
        ips[0]
    );

    // ClusterIP over IPv6 from the LAN client (routed via n1): both pods, one on each node.
    let seen = c.wait_both_answer(SocketAddr::new(ips[0], 80));
    assert!(seen.is_ipv6(), "the pod saw {seen}");
    // The client is outside the cluster CIDRs: masqueraded, as over IPv4.
    assert_ne!(seen.ip(), IpAddr::V6(c.client.ip6.unwrap()));

    // The NodePort on each node's IPv6 address (an InternalIP of its Node).
    for node in &c.nodes {
        c.wait_both_answer(SocketAddr::new(node.ip6.unwrap().into(), 30096));
    }
    // SingleStack IPv6: nothing on the IPv4 NodePort.
    let v4 = SocketAddr::new(c.nodes[0].ip.into(), 30096);
    assert!(
        ask_from(&c.client, v4).is_err(),
        "an IPv6-only Service answered on IPv4"
    );
    // Both families are in the kernel: the agent wrote the ip6 table with this Service.
    let out = c.nodes[0].exec(&["nft", "list", "table", "ip6", "switchboard"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&ips[0].to_string()),
        "{}",
        test_support::output_text(&out)
    );
}

#[test]
fn dual_stack_service_answers_on_both_cluster_ips() {
    let c = DualStack::start();
    let svc = c.service("web", json!({"ipFamilyPolicy": "RequireDualStack"}));
    let ips = cluster_ips(&svc);
    assert_eq!(ips.len(), 2, "{svc}");
    assert!(ips[0].is_ipv4() && ips[1].is_ipv6(), "{ips:?}");
    for ip in ips {
        let seen = c.wait_both_answer(SocketAddr::new(ip, 80));
        assert_eq!(seen.is_ipv6(), ip.is_ipv6(), "{ip}: the pod saw {seen}");
    }
}
