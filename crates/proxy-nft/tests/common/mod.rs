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
        s.service_ports.insert(p.name.clone(), p);
    }
    s
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);
const PREFIX: &str = "sbnft";

/// A network namespace removed on drop. Stale ones of dead test processes are swept first.
pub struct Netns {
    pub name: String,
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
        self.nft_stdin(&["-c", "-f", "-"], script)
    }

    pub fn nft_apply(&self, script: &str) -> Result<(), String> {
        self.nft_stdin(&["-f", "-"], script)
    }

    fn nft_stdin(&self, args: &[&str], script: &str) -> Result<(), String> {
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
            Ok(())
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
