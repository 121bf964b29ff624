//! The cluster every agent test runs on: a `switchboard server` (API and endpoint controllers)
//! on the root namespace's loopback, a netlab with nodes n1 and n2 whose Node objects are
//! registered, one `switchboard agent` per node inside its namespace, pods with echo servers
//! registered as Pods, and a client on the LAN whose Service routes go via n1.

use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use test_support::netlab::{self, k8s, Client, Lab, Node, Pod, Process};
use test_support::{output_text, TestServer};

pub use test_support::netlab::{http_get, parse_answer, udp_ask, StreamClient};

/// One request's timeout: generous, the machine is shared.
pub const T: Duration = Duration::from_secs(3);

/// The tests of this binary take turns: each runs a server and two agents on a 2-core
/// machine, and some check that a change is live within a second.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct Cluster {
    pub lab: Lab,
    pub server: TestServer,
    pub nodes: Vec<Node>,
    pub agents: Vec<Option<Process>>,
    pub client: Client,
    /// Extra flags every agent of this cluster is started with.
    agent_flags: Vec<String>,
    _turn: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Server, lab with nodes n1 and n2 (Nodes registered), client c1 via n1; agents started
    /// with `--cluster-cidr 10.42.0.0/16` plus `agent_flags`.
    pub fn start(agent_flags: &[&str]) -> Cluster {
        let turn = serial();
        std::env::set_var("NO_COLOR", "1");
        let server = TestServer::start(env!("CARGO_BIN_EXE_switchboard"));
        let lab = Lab::new();
        let nodes = vec![lab.node("n1"), lab.node("n2")];
        for n in &nodes {
            k8s::register_node(&server, n);
        }
        let client = lab.client_via("c1", &nodes[0]);
        let mut c = Cluster {
            lab,
            server,
            agents: Vec::new(),
            nodes,
            client,
            agent_flags: agent_flags.iter().map(|s| s.to_string()).collect(),
            _turn: turn,
        };
        for i in 0..c.nodes.len() {
            let a = c.spawn_agent(i);
            c.agents.push(Some(a));
        }
        c
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).expect("node")
    }

    /// `switchboard agent --kubeconfig K --node-name N --cluster-cidr 10.42.0.0/16 FLAGS` in
    /// node `i`'s namespace.
    pub fn spawn_agent(&self, i: usize) -> Process {
        let node = &self.nodes[i];
        let kubeconfig = self.lab.kubeconfig_for(node, &self.server);
        let mut cmd = node.command(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("agent")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--node-name",
                &node.name,
                "--cluster-cidr",
                netlab::CLUSTER_CIDR,
            ])
            .args(&self.agent_flags)
            .env("RUST_LOG", test_support::log_filter())
            .env("NO_COLOR", "1");
        node.spawn(cmd)
    }

    /// The agent of node `i`, which must be running.
    pub fn agent(&mut self, i: usize) -> &mut Process {
        self.agents[i].as_mut().expect("agent running")
    }

    /// A pod on `node` with HTTP echo on 80, stream echo on 9000 and UDP echo on 53, registered
    /// in `default` with `labels`, Running and Ready.
    pub fn pod(&self, node: &str, name: &str, labels: &[(&str, &str)]) -> Pod {
        let pod = self.lab.pod(self.node(node), name);
        self.lab.http_echo(&pod, 80);
        self.lab.stream_echo(&pod, 9000);
        self.lab.udp_echo(&pod, 53);
        k8s::register_pod(&self.server, &pod, "default", labels);
        pod
    }

    /// p1 and p2 on n1, p3 on n2, all `app=web`.
    pub fn three_pods(&self) -> Vec<Pod> {
        vec![
            self.pod("n1", "p1", &[("app", "web")]),
            self.pod("n1", "p2", &[("app", "web")]),
            self.pod("n2", "p3", &[("app", "web")]),
        ]
    }

    /// `kubectl apply` of a Service in `default`: `spec` is merged over a selector-based
    /// ClusterIP Service with ports http 80/TCP→80, stream 9000/TCP→9000 and dns 53/UDP→53.
    /// Returns the applied object as the server returned it.
    pub fn service(
        &self,
        name: &str,
        selector: &[(&str, &str)],
        spec: Value,
        annotations: Value,
    ) -> Value {
        let selector: serde_json::Map<String, Value> = selector
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let mut s = json!({
            "selector": selector,
            "ports": [
                {"name": "http", "port": 80, "targetPort": 80, "protocol": "TCP"},
                {"name": "stream", "port": 9000, "targetPort": 9000, "protocol": "TCP"},
                {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
            ],
        });
        if let (Some(base), Some(over)) = (s.as_object_mut(), spec.as_object()) {
            for (k, v) in over {
                base.insert(k.clone(), v.clone());
            }
        }
        let obj = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": s,
        });
        k8s::apply(&self.server, &obj);
        self.get_json(&["get", "service", name, "-n", "default"])
    }

    /// `kubectl ARGS -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.server.kubectl(&a);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            output_text(&out)
        );
        serde_json::from_slice(&out.stdout).expect("kubectl JSON")
    }

    /// kubectl, asserting success.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.server.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            output_text(&out)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// One HTTP request from the client to `addr`; the pod that answered and the source it saw.
    pub fn ask(&self, addr: SocketAddr) -> std::io::Result<(String, SocketAddr)> {
        ask_from(&self.client, addr)
    }

    /// `n` sequential requests (each a new connection) from the client; the answering pods in
    /// order. Panics on a failed request.
    pub fn ask_many(&self, addr: SocketAddr, n: usize) -> Vec<String> {
        ask_many_from(&self.client, addr, n)
    }

    /// Waits until every pod in `pods` has answered requests to `addr` from the client (and
    /// nothing else did).
    pub fn wait_all_answer(&self, addr: SocketAddr, pods: &[&str]) {
        let mut seen: Vec<String> = Vec::new();
        eventually(20, &format!("{addr} answered by all of {pods:?}"), || {
            if let Ok((pod, _)) = self.ask(addr) {
                assert!(
                    pods.contains(&pod.as_str()),
                    "{addr} answered by {pod}, not one of {pods:?}"
                );
                if !seen.contains(&pod) {
                    seen.push(pod);
                }
            }
            (seen.len() == pods.len()).then_some(())
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the agents said is the first thing to read when a test fails.
            for a in self.agents.iter().flatten() {
                let log = a.log();
                let tail: Vec<&str> = log.lines().rev().take(60).collect();
                eprintln!("---- last lines of {} ----", a.label());
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        // Agents before the lab (the lab would kill them anyway; this reaps them).
        for a in self.agents.iter_mut().flatten() {
            a.kill();
        }
    }
}

pub fn ask_from(ns: &netlab::Netns, addr: SocketAddr) -> std::io::Result<(String, SocketAddr)> {
    let body = ns.run(move || http_get(addr, T))?;
    parse_answer(&body)
        .ok_or_else(|| std::io::Error::other(format!("not an echo answer: {body:?}")))
}

pub fn ask_many_from(ns: &netlab::Netns, addr: SocketAddr, n: usize) -> Vec<String> {
    ns.run(move || {
        (0..n)
            .map(|i| {
                let body =
                    http_get(addr, T).unwrap_or_else(|e| panic!("request {i} to {addr}: {e}"));
                parse_answer(&body)
                    .unwrap_or_else(|| panic!("not an echo answer: {body:?}"))
                    .0
            })
            .collect()
    })
}

/// [`ask_many_from`] for `eventually` loops: `None` when any request fails (a Service whose
/// rules are not there yet refuses or times out).
pub fn try_ask_many_from(ns: &netlab::Netns, addr: SocketAddr, n: usize) -> Option<Vec<String>> {
    ns.run(move || {
        (0..n)
            .map(|_| {
                let body = http_get(addr, T).ok()?;
                parse_answer(&body).map(|a| a.0)
            })
            .collect()
    })
}

/// The Service's ClusterIP with `port`.
pub fn cluster_ip(svc: &Value, port: u16) -> SocketAddr {
    let ip: IpAddr = svc["spec"]["clusterIP"]
        .as_str()
        .expect("clusterIP")
        .parse()
        .expect("clusterIP address");
    SocketAddr::new(ip, port)
}

/// Whether `seq` is a strict rotation: every window of `k` consecutive answers holds `k`
/// different pods (so each pod comes back exactly every `k` requests).
pub fn strict_rotation(seq: &[String], k: usize) -> bool {
    seq.len() >= k
        && seq
            .windows(k)
            .all(|w| w.iter().collect::<std::collections::HashSet<_>>().len() == k)
}

/// Polls `f` until it returns `Some` (every 50 ms), for at most `secs`.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
