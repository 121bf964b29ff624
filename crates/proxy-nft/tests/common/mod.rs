//! Fixtures (snapshots built directly from proxy-core types) and a throwaway network namespace.
#![allow(dead_code)]

use proxy_core::{
    Endpoint, Protocol, ProxyConfig, Scheduler, ServiceName, ServicePort, ServicePortName, Snapshot,
};
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn cfg() -> ProxyConfig {
    ProxyConfig {
        node_name: "node1".into(),
        node_ips: vec![ip("172.30.0.10"), ip("fd00:30::10")],
        ..ProxyConfig::default()
    }
}

pub fn endpoint(addr: &str, port: u16, local: bool) -> Endpoint {
    Endpoint {
        ip: ip(addr),
        port,
        ready: true,
        serving: true,
        terminating: false,
        local,
        hints: Default::default(),
    }
}

/// A ClusterIP service port `default/NAME:http/tcp` on `cluster_ip`:80 with `eps` on port 8080.
pub fn service(name: &str, cluster_ip: &str, eps: &[&str]) -> ServicePort {
    ServicePort {
        name: ServicePortName {
            service: ServiceName {
                namespace: "default".into(),
                name: name.into(),
            },
            port: "http".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ips: vec![ip(cluster_ip)],
        port: 80,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
        source_ranges: vec![],
        affinity_timeout: None,
        external_policy_local: false,
        internal_policy_local: false,
        scheduler: Scheduler::Random,
        endpoints: eps.iter().map(|e| endpoint(e, 8080, false)).collect(),
    }
}

pub fn snapshot(ports: impl IntoIterator<Item = ServicePort>) -> Snapshot {
    let mut s = Snapshot::default();
    for p in ports {
        s.service_ports
            .insert(p.name.clone(), std::sync::Arc::new(p));
    }
    s
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const PREFIX: &str = "sbnft";

/// A network namespace removed on drop. Stale ones of dead test processes are swept first.
pub struct Netns {
    pub name: String,
}

/// One Service port of a generated snapshot (property tests of incremental syncs).
#[derive(Clone, Debug)]
pub struct SvcSpec {
    /// Which of four endpoints are there.
    pub endpoints: Vec<bool>,
    pub scheduler: Scheduler,
    pub affinity: Option<u32>,
    pub node_port: bool,
    pub udp: bool,
    pub etp_local: bool,
    pub dual_stack: bool,
    /// The first endpoint is terminating, not ready.
    pub terminating_first: bool,
    /// A LoadBalancer IP with source ranges.
    pub load_balancer: bool,
}

/// A Service port or none (a Service that is not there at this step).
pub fn svc_spec() -> impl proptest::strategy::Strategy<Value = Option<SvcSpec>> {
    use proptest::prelude::*;
    let sched = prop_oneof![
        Just(Scheduler::Random),
        Just(Scheduler::RoundRobin),
        Just(Scheduler::SourceHash),
        Just(Scheduler::Maglev)
    ];
    let flags = proptest::collection::vec(any::<bool>(), 7);
    proptest::option::weighted(
        0.8,
        (
            proptest::collection::vec(any::<bool>(), 4),
            sched,
            prop_oneof![Just(None), Just(Some(60u32)), Just(Some(120u32))],
            flags,
        )
            .prop_map(|(endpoints, scheduler, affinity, f)| SvcSpec {
                endpoints,
                scheduler,
                affinity,
                node_port: f[0],
                udp: f[1],
                etp_local: f[2],
                dual_stack: f[3],
                terminating_first: f[4],
                load_balancer: f[5] && f[6],
            }),
    )
}

/// The snapshot of `specs` (Service `svc{i}` at 10.43.0.{10+i}).
pub fn build(specs: &[Option<SvcSpec>]) -> Snapshot {
    let mut ports = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let Some(s) = spec else { continue };
        let mut sp: ServicePort = service(&format!("svc{i}"), &format!("10.43.0.{}", 10 + i), &[]);
        for (j, on) in s.endpoints.iter().enumerate() {
            if *on {
                let mut e: Endpoint = endpoint(&format!("10.42.0.{}", 10 + j), 8080, j % 2 == 0);
                if j == 0 && s.terminating_first {
                    e.ready = false;
                    e.terminating = true;
                }
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
        if s.node_port {
            sp.node_port = Some(30000 + i as u16);
            sp.external_policy_local = s.etp_local;
        }
        if s.load_balancer {
            sp.load_balancer_ips = vec![ip(&format!("192.168.150.{}", 10 + i))];
            sp.source_ranges = vec!["203.0.113.0/24".parse().unwrap()];
        }
        ports.push(sp);
    }
    snapshot(ports)
}

fn sweep_stale() {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(&format!("{PREFIX}-")) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}

impl Netns {
    pub fn new() -> Netns {
        if COUNTER.load(Ordering::SeqCst) == 0 {
            sweep_stale();
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{PREFIX}-{}-{n}", std::process::id());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        let ns = Netns { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// Runs a shell command inside the namespace; panics on failure.
    pub fn sh(&self, cmd: &str) -> String {
        let out = self.try_sh(cmd);
        match out {
            Ok(s) => s,
            Err(e) => panic!("{cmd}: {e}"),
        }
    }

    pub fn try_sh(&self, cmd: &str) -> Result<String, String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// `nft -c -f -`: checks a script against this namespace's kernel without committing.
    pub fn nft_check(&self, script: &str) -> Result<(), String> {
        self.nft_output(&["-c", "-f", "-"], script).map(drop)
    }

    pub fn nft_apply(&self, script: &str) -> Result<(), String> {
        self.nft_output(&["-f", "-"], script).map(drop)
    }

    /// `nft ARGS` with `script` on stdin: what it printed (stdout, then stderr: `--debug`
    /// output goes to either), or its stderr when it failed.
    pub fn nft_output(&self, args: &[&str], script: &str) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            Ok(text)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A node with pods behind point-to-point veths (routed, as Calico does: replies come back
/// through the node, so conntrack can undo the DNAT) and a LAN client.
///
/// node: lo, LAN 172.30.0.10/24 (veth to the client at 172.30.0.20), 10.42.0.1 on every pod veth.
/// pod i: 10.42.0.{10+i}/32, default route via 10.42.0.1; servers answer with the pod's name.
pub struct Lab {
    pub node: Netns,
    pub client: Netns,
    pub pods: Vec<Netns>,
    children: Vec<std::process::Child>,
}

impl Lab {
    /// `pods` pods; pod 0 is the client pod (10.42.0.10), pods 1.. run TCP and UDP echo
    /// servers on 8080 that answer "podN".
    pub fn new(pods: usize) -> Lab {
        let node = Netns::new();
        let client = Netns::new();
        node.sh("sysctl -qw net.ipv4.ip_forward=1");
        let pid = std::process::id();
        let n = COUNTER.load(Ordering::SeqCst);
        let lan = format!("sbl{pid}x{n}");
        node.sh(&format!("ip link add lan0 type veth peer name {lan}"));
        node.sh(&format!("ip link set {lan} netns {}", client.name));
        node.sh("ip addr add 172.30.0.10/24 dev lan0 && ip link set lan0 up");
        // Nodes have a default route; without one, the kernel answers "network unreachable"
        // for a ClusterIP before any of our hooks sees the packet.
        node.sh("ip route add default via 172.30.0.20 dev lan0");
        client.sh(&format!("ip link set {lan} name eth0 && ip addr add 172.30.0.20/24 dev eth0 && ip link set eth0 up"));
        client.sh("ip route add 10.43.0.0/16 via 172.30.0.10");
        let mut lab = Lab {
            node,
            client,
            pods: Vec::new(),
            children: Vec::new(),
        };
        for i in 0..pods {
            let pod = Netns::new();
            let ip = format!("10.42.0.{}", 10 + i);
            let host_if = format!("veth{i}");
            lab.node.sh(&format!(
                "ip link add {host_if} type veth peer name sbp{pid}x{n}x{i}"
            ));
            lab.node
                .sh(&format!("ip link set sbp{pid}x{n}x{i} netns {}", pod.name));
            lab.node.sh(&format!(
                "ip addr add 10.42.0.1/32 dev {host_if} && ip link set {host_if} up && ip route add {ip}/32 dev {host_if}"
            ));
            pod.sh(&format!(
                "ip link set sbp{pid}x{n}x{i} name eth0 && ip addr add {ip}/32 dev eth0 && ip link set eth0 up \
                 && ip route add 10.42.0.1/32 dev eth0 && ip route add default via 10.42.0.1 dev eth0"
            ));
            if i > 0 {
                // socat's forking UDP server loses datagrams now and then: a plain loop instead.
                let udp = format!(
                    "exec python3 -c \"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                     s.bind(('0.0.0.0',8080))\nwhile True:\n d,a=s.recvfrom(2048)\n s.sendto(b'pod{i}',a)\""
                );
                for cmd in [
                    format!("exec socat TCP-LISTEN:8080,fork,reuseaddr SYSTEM:'echo pod{i}'"),
                    udp,
                ] {
                    let child = Command::new("ip")
                        .args(["netns", "exec", &pod.name, "sh", "-c", &cmd])
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap();
                    lab.children.push(child);
                }
            }
            lab.pods.push(pod);
        }
        // Wait for the servers to listen.
        for (i, pod) in lab.pods.iter().enumerate().skip(1) {
            for _ in 0..100 {
                let listening = pod.sh("ss -Hltun 'sport = :8080'");
                if listening.matches("8080").count() >= 2 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = i;
        }
        lab
    }

    /// Opens a TCP connection from `ns` to `dst` and returns what the server said, or the error.
    pub fn tcp(ns: &Netns, dst: &str) -> Result<String, String> {
        ns.try_sh(&format!(
            "socat -t3 -T3 - TCP:{dst},connect-timeout=2 </dev/null"
        ))
        .map(|s| s.trim().to_string())
    }

    /// Sends one UDP datagram from `ns` (source port `sport`) and returns the answer.
    pub fn udp(ns: &Netns, dst: &str, sport: u16) -> Result<String, String> {
        let (host, port) = dst.rsplit_once(':').unwrap();
        ns.try_sh(&format!(
            "python3 -c \"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',{sport}))\n\
             s.settimeout(2)\ns.sendto(b'hi',('{host}',{port}))\nprint(s.recvfrom(2048)[0].decode())\""
        ))
        .map(|s| s.trim().to_string())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
