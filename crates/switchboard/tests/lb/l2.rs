//! Acceptance in network namespaces: three nodes and an outside client on one L2 segment; an
//! IPAddressPool inside the LAN subnet, an L2Advertisement and a LoadBalancer Service; the
//! client reaches the pods through the EXTERNAL-IP; the announcing node dies and the address
//! moves; ServiceLB node IPs are reachable.
//!
//! Each node runs `switchboard agent` (nftables data plane + L2 announcer) as a separate
//! process in its namespace, so it can be SIGKILLed.

use crate::support::{apply, eventually, external_ip, kubectl};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use test_support::netlab::{self, k8s, Lab, Node, Process};
use test_support::TestServer;

/// Extra agent flag of the benchmark's baseline: no gratuitous ARP on takeover.
pub const NO_GRATUITOUS: &str = "--l2-no-gratuitous";

pub struct L2Lab {
    pub lab: Lab,
    pub server: TestServer,
    pub nodes: Vec<Node>,
    pub client: netlab::Client,
    agents: Vec<Option<Process>>,
    agent_flags: Vec<String>,
}

/// The server flag of a dual-stack cluster (IPv4 and IPv6 Service CIDRs).
pub fn dual_stack_service_cidr() -> String {
    format!("{},{}", netlab::SERVICE_CIDR, netlab::SERVICE_CIDR6)
}

impl L2Lab {
    /// Three nodes, one echo pod on each (label app=web, port 8080), a client, and a node
    /// agent per node.
    pub fn start(server_flags: &[&str]) -> L2Lab {
        Self::start_with(server_flags, &[])
    }

    /// With extra flags for the node agents.
    pub fn start_with(server_flags: &[&str], agent_flags: &[&str]) -> L2Lab {
        Self::build(Lab::new(), server_flags, agent_flags)
    }

    /// The same in a dual-stack lab ([`Lab::dual_stack`]): IPv6 on the LAN, in the pods (the
    /// echo servers answer on both families), in the server's and the agents' CIDRs.
    pub fn start_dual_stack() -> L2Lab {
        let services = dual_stack_service_cidr();
        let clusters = format!("{},{}", netlab::CLUSTER_CIDR, netlab::CLUSTER_CIDR6);
        Self::build(
            Lab::dual_stack(),
            &["--service-cidr", &services],
            &["--service-cidr", &services, "--cluster-cidr", &clusters],
        )
    }

    fn build(lab: Lab, server_flags: &[&str], agent_flags: &[&str]) -> L2Lab {
        std::env::set_var("NO_COLOR", "1");
        let server = TestServer::start_with(env!("CARGO_BIN_EXE_switchboard"), server_flags);
        let nodes: Vec<Node> = (1..=3).map(|i| lab.node(&format!("node{i}"))).collect();
        for n in &nodes {
            k8s::register_node(&server, n);
            let pod = lab.pod(n, &format!("web-{}", n.name));
            k8s::register_pod(&server, &pod, "default", &[("app", "web")]);
            lab.http_echo(&pod, 8080);
        }
        let client = lab.client("outside");
        let agent_flags = agent_flags.iter().map(|f| f.to_string()).collect();
        let mut l = L2Lab {
            lab,
            server,
            nodes,
            client,
            agents: vec![],
            agent_flags,
        };
        for i in 0..3 {
            let p = l.spawn_agent(i);
            l.agents.push(Some(p));
        }
        l
    }

    fn spawn_agent(&self, i: usize) -> Process {
        let n = &self.nodes[i];
        let kubeconfig = self.lab.kubeconfig_for(n, &self.server);
        let mut cmd = n.command(env!("CARGO_BIN_EXE_switchboard"));
        cmd.arg("agent")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--node-name", &n.name]);
        // A dual-stack lab passes its own (two-family) --cluster-cidr.
        if !self.agent_flags.iter().any(|f| f == "--cluster-cidr") {
            cmd.args(["--cluster-cidr", netlab::CLUSTER_CIDR]);
        }
        cmd.args(&self.agent_flags)
            .env("RUST_LOG", test_support::log_filter())
            .env("NO_COLOR", "1");
        let p = n.spawn(cmd);
        assert!(
            p.wait_for_log("L2 announcer started", Duration::from_secs(30)),
            "agent on {} did not start: {}",
            n.name,
            p.log()
        );
        p
    }

    /// Kills node `i` the way a power cut would: its agent gets SIGKILL and its LAN link goes
    /// down at the same moment (a killed agent alone leaves the node's nftables rules
    /// forwarding, so nothing would have to fail over).
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.agents[i].take() {
            p.kill();
        }
        self.nodes[i].ip(&["link", "set", "eth0", "down"]);
    }

    pub fn revive_node(&mut self, i: usize) {
        self.nodes[i].ip(&["link", "set", "eth0", "up"]);
        let p = self.spawn_agent(i);
        self.agents[i] = Some(p);
    }

    pub fn vip(&self) -> IpAddr {
        IpAddr::V4(self.lab.lan_ip(240))
    }

    /// A pool of two addresses in the LAN subnet, announced on every node.
    pub fn apply_pool_and_advertisement(&self) {
        self.apply_pool(
            "lab",
            &[format!("{}-{}", self.lab.lan_ip(240), self.lab.lan_ip(241))],
        );
    }

    /// A pool named `name` with `addresses` and an L2Advertisement for it.
    pub fn apply_pool(&self, name: &str, addresses: &[String]) {
        let list: String = addresses.iter().map(|a| format!("  - {a}\n")).collect();
        apply(
            &self.server,
            &format!(
                "apiVersion: v1
kind: Namespace
metadata:
  name: metallb-system
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: {name}
  namespace: metallb-system
spec:
  addresses:
{list}---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: {name}
  namespace: metallb-system
spec:
  ipAddressPools:
  - {name}
"
            ),
        );
    }

    pub fn apply_service(&self, name: &str, port: u16) {
        apply(
            &self.server,
            &format!(
                "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
  - port: {port}
    targetPort: 8080
"
            ),
        );
    }

    /// One HTTP request from the client, with real curl.
    pub fn curl(&self, ip: IpAddr, port: u16, timeout: Duration) -> Option<String> {
        let url = format!("http://{}/", SocketAddr::new(ip, port));
        let t = format!("{:.2}", timeout.as_secs_f64());
        let family = if ip.is_ipv6() { "-6" } else { "-4" };
        let o = self.client.exec(&[
            "curl",
            family,
            "-s",
            "--connect-timeout",
            &t,
            "--max-time",
            &t,
            &url,
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// The MAC the client's neighbour table (`ip neigh`, `ip -6 neigh` for IPv6) holds for
    /// `ip`.
    pub fn client_mac_for(&self, ip: IpAddr) -> Option<String> {
        let family = if ip.is_ipv6() { "-6" } else { "-4" };
        let o = self
            .client
            .exec(&["ip", family, "neigh", "show", &ip.to_string()]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let mut words = text.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }

    pub fn node_mac(&self, i: usize) -> String {
        let o = self.nodes[i].exec(&["cat", "/sys/class/net/eth0/address"]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Which node the client's traffic for `ip` goes to, by MAC.
    pub fn announcing_node(&self, ip: IpAddr) -> Option<usize> {
        let mac = self.client_mac_for(ip)?;
        (0..self.nodes.len()).find(|i| self.node_mac(*i) == mac)
    }

    /// The node named in the latest nodeAssigned Event of a Service.
    pub fn assigned_node_event(&self, svc: &str) -> Option<String> {
        let out = kubectl(
            &self.server,
            &[
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.name={svc},reason=nodeAssigned"),
                "--sort-by=.lastTimestamp",
                "-o",
                "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
            ],
        );
        let last = out.lines().last()?;
        last.split('"').nth(1).map(str::to_string)
    }
}

/// Requests until one succeeds; the time from `since` to that success.
pub fn until_success(
    l: &L2Lab,
    ip: IpAddr,
    port: u16,
    since: Instant,
    limit: Duration,
) -> Option<(Duration, String)> {
    let addr = SocketAddr::new(ip, port);
    while since.elapsed() < limit {
        let r = l
            .client
            .run(move || netlab::http_get(addr, Duration::from_millis(50)));
        if let Ok(body) = r {
            return Some((since.elapsed(), body));
        }
    }
    None
}

#[test]
fn pool_address_is_announced_reaches_the_pods_and_fails_over() {
    let mut l = L2Lab::start(&[]);
    l.apply_pool_and_advertisement();
    l.apply_service("web", 80);
    let vip = l.vip();
    assert_eq!(
        external_ip(&l.server, "default", "web", |c| c != "<pending>"),
        vip.to_string()
    );

    // curl from the outside client reaches the pods through the EXTERNAL-IP.
    let body = eventually("curl to the EXTERNAL-IP", || {
        l.curl(vip, 80, Duration::from_millis(500))
    });
    assert!(body.starts_with("pod=web-node"), "{body}");
    let owner = l
        .announcing_node(vip)
        .expect("the client learned a node's MAC for the address");
    // Users see where the address lives.
    let named = eventually("nodeAssigned event", || l.assigned_node_event("web"));
    assert_eq!(named, l.nodes[owner].name);
    // The agent's /metrics (kube-proxy's address) carries the announcer's series: the owner
    // announces one address, the others none.
    for (i, n) in l.nodes.iter().enumerate() {
        let m = n.exec(&["curl", "-s", "http://127.0.0.1:10249/metrics"]);
        let text = String::from_utf8_lossy(&m.stdout).to_string();
        let want = if i == owner {
            "switchboard_l2_announced_ips 1"
        } else {
            "switchboard_l2_announced_ips 0"
        };
        assert!(
            text.contains(want),
            "{}: no {want:?} in /metrics:\n{text}",
            n.name
        );
    }
    let d = kubectl(&l.server, &["describe", "svc", "web"]);
    assert!(
        d.contains("nodeAssigned") && d.contains(&format!("announcing from node \"{}\"", named)),
        "{d}"
    );

    // The announcing node dies: the address moves and the client gets answers again.
    let t0 = Instant::now();
    l.kill_node(owner);
    let (took, body) = until_success(&l, vip, 80, t0, Duration::from_secs(30))
        .expect("the client never reached the Service again");
    let new_owner = l.announcing_node(vip).expect("a MAC for the address");
    assert_ne!(new_owner, owner, "the address did not move");
    assert!(body.starts_with("pod=web-node"), "{body}");
    eprintln!(
        "failover: {} dead, {} took over; first successful request after {:?}",
        l.nodes[owner].name, l.nodes[new_owner].name, took
    );
    let named = eventually("nodeAssigned event of the new owner", || {
        l.assigned_node_event("web")
            .filter(|n| *n == l.nodes[new_owner].name)
    });
    assert_eq!(named, l.nodes[new_owner].name);
}

#[test]
fn servicelb_node_ips_are_reachable_and_a_taken_port_waits() {
    let l = L2Lab::start(&["--load-balancer-mode", "servicelb"]);
    l.apply_service("traefik", 80);
    let ips: Vec<String> = l.nodes.iter().map(|n| n.ip.to_string()).collect();
    assert_eq!(
        external_ip(&l.server, "default", "traefik", |c| c.matches(',').count()
            == 2),
        ips.join(",")
    );
    for n in &l.nodes {
        let body = eventually(&format!("curl to {}:80", n.ip), || {
            l.curl(IpAddr::V4(n.ip), 80, Duration::from_millis(500))
        });
        assert!(body.starts_with("pod=web-node"), "{body}");
    }
    l.apply_service("web", 80);
    crate::support::describe_shows_event(
        &l.server,
        "default",
        "web",
        "AllocationFailed",
        "TCP/80 is already used by default/traefik",
    );
    assert_eq!(
        external_ip(&l.server, "default", "web", |_| true),
        "<pending>"
    );
}
