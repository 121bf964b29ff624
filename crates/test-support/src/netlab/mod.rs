//! Network-namespace labs: small clusters made of real namespaces, veths and bridges, for tests
//! that need the kernel (the agent's nftables, DNS, L2 announcements).
//!
//! # Topology
//!
//! ```text
//!   client ns (eth0 192.168.L.101)        client ns ...
//!        │                                     │
//!   ─────┴──── lan0 bridge (the LAN namespace) ┴──────────────
//!        │                                     │
//!   node ns n1 (eth0 192.168.L.11)        node ns n2 (eth0 192.168.L.12)
//!   ip_forward=1, routes 10.42.2.0/24     routes 10.42.1.0/24 via .11
//!     via .12, default dev eth0
//!   cbr0 bridge 10.42.1.1/24              cbr0 bridge 10.42.2.1/24
//!     │            │                        │
//!   pod ns p1    pod ns p2                pod ns p3
//!   10.42.1.10   10.42.1.11               10.42.2.10   (default via the node's cbr0)
//! ```
//!
//! - [`Lab::new`] makes the LAN namespace (bridge `lan0`, no address of its own). Each lab has
//!   its own LAN subnet `192.168.L.0/24` (L from a per-process counter) and unique namespace
//!   names `sbl-<pid>-<lab>-<role>-<name>`, so labs in parallel tests never meet. At the first
//!   `Lab::new` of a process, namespaces of the `sbl-` family whose process is gone are removed.
//! - [`Lab::node`]: a node namespace on the LAN (`eth0`, address `192.168.L.(10+N)`), with
//!   ip_forward on, rp_filter and ICMP redirects off, a pod bridge `cbr0` with pod CIDR
//!   `10.42.N.0/24` (N = 1, 2, ... in creation order), a default route out of `eth0` and routes
//!   to every other node's pod CIDR via that node's LAN address (so pods on different nodes
//!   reach each other).
//! - [`Lab::pod`]: a pod namespace behind its node's `cbr0` (`eth0`, `10.42.N.(10+k)`, default
//!   via `10.42.N.1`); its bridge port has hairpin mode on, as the CNI bridge plugin sets it, so
//!   a pod reaches itself through a Service.
//! - [`Lab::client`] / [`Lab::client_via`]: a namespace on the LAN (`192.168.L.(100+k)`) with the
//!   service CIDR `10.43.0.0/16` routed via a node and every pod CIDR via its node. Add routes
//!   for LoadBalancer or external IPs with [`Lab::route_via`].
//!
//! Every namespace has `lo` up. Nothing is connected to the root namespace: traffic stays
//! inside the lab.
//!
//! # Dual stack
//!
//! [`Lab::dual_stack`] makes the same lab with IPv6 next to every IPv4 address (the IPv4 side
//! is exactly as above): the LAN `fd5b:0:L::/64` (node N at `::(10+N)`, client k at
//! `::(100+k)`, written in hex: `fd5b:0:14::b`), node N's pod CIDR `fd42:0:0:N::/64` with the
//! gateway `::1` on `cbr0` and pods from `::a` on, the IPv6 service CIDR [`SERVICE_CIDR6`]
//! routed from clients via their node, and IPv6 forwarding on nodes. Addresses are added with
//! `nodad` and duplicate address detection is off in every namespace, so an address is usable
//! the moment it is added (DAD would leave it "tentative", unusable for bind and as a source,
//! for a second or more). The extra addresses are in the `ip6` fields of [`Node`], [`Pod`] and
//! [`Client`] (`None` in an IPv4-only lab), echo servers also listen on the pod's IPv6 address,
//! and [`k8s`] registers both families (InternalIPs, podCIDRs, podIPs).
//!
//! # Running things inside
//!
//! [`Node`], [`Pod`] and [`Client`] dereference to their [`Netns`]:
//! - `ns.exec(&["curl", "-s", url])` → `Output`; `ns.command("switchboard")` → a `Command`
//!   to configure and hand to `ns.spawn(cmd)`, which returns a [`Process`] that is killed when
//!   dropped and keeps its log ([`Process::log`], [`Process::wait_for_log`]).
//! - `ns.run(|| ...)` runs a closure on a thread that entered the namespace (`setns`); sockets
//!   made there stay in the namespace wherever they are used afterwards. `ns.block_on(fut)`
//!   does the same with a current-thread tokio runtime. The free functions [`http_get`],
//!   [`udp_ask`] and [`StreamClient::connect`] act in the calling thread's namespace, so
//!   `client.run(move || http_get(addr, t))` is a request from the client.
//!
//! # Echo servers
//!
//! [`Lab::http_echo`], [`Lab::udp_echo`] and [`Lab::stream_echo`] serve, inside a pod, on the
//! lab's own tokio runtime: HTTP (any request → `pod=NAME client=IP:PORT`), UDP (every
//! datagram → the same) and a line-based TCP stream (every line → `pod=NAME client=IP:PORT
//! LINE`). [`parse_answer`] splits an answer. They run until the pod is removed
//! ([`Lab::remove_pod`]) or the lab is dropped.
//!
//! # Reaching the API server
//!
//! A [`TestServer`] listens on the root namespace's loopback. [`Lab::kubeconfig_for`] starts a
//! forwarder whose listener is made inside the node namespace (`127.0.0.1:<the server's
//! port>` there) and whose upstream connections are made from the root namespace, and writes a
//! kubeconfig for use inside the node (the server certificate names 127.0.0.1). The
//! [`k8s`] module registers the matching Node and Pod objects through kubectl.
//!
//! # Cleanup
//!
//! Dropping the [`Lab`] (also while a test panics) stops its runtime, SIGKILLs every process
//! left inside its namespaces and deletes them, so nothing outlives the test. Requires root and
//! `ip` (iproute2).

mod echo;
pub mod k8s;
mod ns;

pub use echo::{answer, http_get, parse_answer, udp_ask, StreamClient};
pub use ns::{Netns, Process};

use crate::TestServer;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use tokio::task::AbortHandle;

/// The Service CIDR (k3s's default, as `switchboard server`'s).
pub const SERVICE_CIDR: &str = "10.43.0.0/16";
/// The cluster (pod) CIDR; node N gets `10.42.N.0/24` of it.
pub const CLUSTER_CIDR: &str = "10.42.0.0/16";
/// The IPv6 Service CIDR a dual-stack lab routes (start the server with
/// `--service-cidr 10.43.0.0/16,fd43::/112`).
pub const SERVICE_CIDR6: &str = "fd43::/112";
/// The IPv6 cluster (pod) CIDR of a dual-stack lab; node N gets `fd42:0:0:N::/64` of it.
pub const CLUSTER_CIDR6: &str = "fd42::/48";

static LABS: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A node namespace. Dereferences to its [`Netns`].
#[derive(Clone, Debug)]
pub struct Node {
    /// The name given to [`Lab::node`] (use it as the Kubernetes Node name).
    pub name: String,
    pub netns: Netns,
    /// Its LAN address (the Node's InternalIP).
    pub ip: Ipv4Addr,
    /// N in its pod CIDR `10.42.N.0/24` (1 for the first node).
    pub index: u8,
    /// `10.42.N.0/24`
    pub pod_cidr: String,
    /// `10.42.N.1`, the node's address on its pod bridge (the pods' gateway).
    pub pod_gateway: Ipv4Addr,
    /// Dual-stack labs: its LAN IPv6 address (also an InternalIP).
    pub ip6: Option<Ipv6Addr>,
    /// Dual-stack labs: `fd42:0:0:N::/64`.
    pub pod_cidr6: Option<String>,
    /// Dual-stack labs: `fd42:0:0:N::1` on the pod bridge.
    pub pod_gateway6: Option<Ipv6Addr>,
}

/// A pod namespace. Dereferences to its [`Netns`].
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    /// The name of the node it runs on.
    pub node: String,
    pub netns: Netns,
    /// Its address in the node's pod CIDR.
    pub ip: Ipv4Addr,
    /// Dual-stack labs: its address in the node's IPv6 pod CIDR.
    pub ip6: Option<Ipv6Addr>,
}

/// A client namespace on the LAN. Dereferences to its [`Netns`].
#[derive(Clone, Debug)]
pub struct Client {
    pub name: String,
    pub netns: Netns,
    /// Its LAN address.
    pub ip: Ipv4Addr,
    /// Dual-stack labs: its LAN IPv6 address.
    pub ip6: Option<Ipv6Addr>,
}

macro_rules! deref_netns {
    ($t:ty) => {
        impl Deref for $t {
            type Target = Netns;
            fn deref(&self) -> &Netns {
                &self.netns
            }
        }
    };
}
deref_netns!(Node);
deref_netns!(Pod);
deref_netns!(Client);

#[derive(Default)]
struct State {
    nodes: Vec<Node>,
    clients: Vec<Client>,
    pods: Vec<Pod>,
    /// Every namespace made, in creation order (removed ones taken out).
    namespaces: Vec<Netns>,
    lan_ports: u32,
    pods_per_node: HashMap<String, u8>,
    /// Echo servers and forwarders, by the namespace whose sockets they serve.
    tasks: HashMap<String, Vec<AbortHandle>>,
    forwarders: HashMap<(String, SocketAddr), SocketAddr>,
}

/// A network-namespace lab; see the [module docs](self). Everything it made goes when it is
/// dropped.
pub struct Lab {
    prefix: String,
    subnet: u8,
    /// Dual stack: IPv6 next to every IPv4 address.
    v6: bool,
    lan: Netns,
    rt: Option<tokio::runtime::Runtime>,
    dir: tempfile::TempDir,
    state: Mutex<State>,
}

impl Lab {
    /// A LAN namespace with its bridge; nodes, pods and clients are added with the methods
    /// below. Panics (with the reason) when namespaces cannot be made, e.g. not root.
    pub fn new() -> Lab {
        Self::build(false)
    }

    /// The same lab with IPv6 as well (see [Dual stack](self#dual-stack)).
    pub fn dual_stack() -> Lab {
        Self::build(true)
    }

    fn build(v6: bool) -> Lab {
        SWEEP.call_once(ns::sweep_stale);
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("{}{}-{n}", ns::PREFIX, std::process::id());
        // The runtime that serves echo servers and relays API connections must live in the
        // root namespace: its upstream connections to the TestServer are made by its workers.
        let root = std::fs::File::open("/proc/self/ns/net").expect("opening /proc/self/ns/net");
        let rt = std::thread::spawn(move || {
            nix::sched::setns(&root, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("setns into the root namespace");
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("netlab")
                .enable_all()
                .build()
                .expect("netlab runtime")
        })
        .join()
        .expect("netlab runtime thread");
        let lab = Lab {
            lan: Netns::create(format!("{prefix}-lan")),
            prefix,
            subnet: (n % 200) as u8 + 20,
            v6,
            rt: Some(rt),
            dir: tempfile::Builder::new()
                .prefix("netlab-")
                .tempdir()
                .expect("temp dir"),
            state: Mutex::new(State::default()),
        };
        lab.state.lock().unwrap().namespaces.push(lab.lan.clone());
        lab.no_dad(&lab.lan);
        lab.lan.ip_batch(&[
            "link add lan0 type bridge".into(),
            "link set lan0 up".into(),
        ]);
        lab
    }

    /// The namespace-name prefix of this lab (`sbl-<pid>-<n>`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The LAN subnet, `192.168.L.0/24`.
    pub fn lan_cidr(&self) -> String {
        format!("192.168.{}.0/24", self.subnet)
    }

    /// `192.168.L.host`. Hosts 10-99 are nodes, 100-199 clients; 200-250 are never handed out
    /// (free for LoadBalancer pools and other test addresses on the LAN).
    pub fn lan_ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, self.subnet, host)
    }

    /// Whether this lab has IPv6 too ([`Lab::dual_stack`]).
    pub fn is_dual_stack(&self) -> bool {
        self.v6
    }

    /// The LAN's IPv6 subnet, `fd5b:0:L::/64` (dual-stack labs; the prefix exists in any lab).
    pub fn lan_cidr6(&self) -> String {
        format!("fd5b:0:{:x}::/64", self.subnet)
    }

    /// `fd5b:0:L::host`, the IPv6 twin of [`Lab::lan_ip`] (same host numbers, shown in hex).
    pub fn lan_ip6(&self, host: u8) -> Ipv6Addr {
        Ipv6Addr::new(
            0xfd5b,
            0,
            u16::from(self.subnet),
            0,
            0,
            0,
            0,
            u16::from(host),
        )
    }

    /// Duplicate address detection off for every interface made in `ns` from now on (and
    /// `all`): in a dual-stack lab addresses must be usable at once. Nothing in an IPv4 lab.
    fn no_dad(&self, ns: &Netns) {
        if self.v6 {
            set_sysctls(
                ns,
                &[
                    ("net/ipv6/conf/all/accept_dad", "0"),
                    ("net/ipv6/conf/default/accept_dad", "0"),
                ],
            );
        }
    }

    /// The LAN segment's namespace (holds bridge `lan0`; a packet capture there sees all LAN
    /// traffic).
    pub fn lan(&self) -> &Netns {
        &self.lan
    }

    fn check_name(name: &str) {
        assert!(
            !name.is_empty()
                && name.len() <= 40
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "lab names are 1-40 of [a-z0-9-]: {name:?}"
        );
    }

    fn new_ns(&self, role: &str, name: &str) -> Netns {
        Self::check_name(name);
        let ns = Netns::create(format!("{}-{role}-{name}", self.prefix));
        self.state.lock().unwrap().namespaces.push(ns.clone());
        self.no_dad(&ns);
        ns
    }

    /// A veth from the LAN bridge to `eth0` in `ns`, with `ip/24` (and `ip6/64`) on it.
    fn plug_into_lan(&self, ns: &Netns, ip: Ipv4Addr, ip6: Option<Ipv6Addr>) {
        let port = {
            let mut st = self.state.lock().unwrap();
            st.lan_ports += 1;
            format!("l{}", st.lan_ports)
        };
        self.lan.ip_batch(&[
            format!(
                "link add {port} type veth peer name eth0 netns {}",
                ns.name()
            ),
            format!("link set {port} master lan0 up"),
        ]);
        let mut lines = vec![format!("addr add {ip}/24 dev eth0")];
        if let Some(ip6) = ip6 {
            lines.push(format!("addr add {ip6}/64 dev eth0 nodad"));
        }
        lines.push("link set eth0 up".into());
        ns.ip_batch(&lines);
    }

    /// A node namespace named `name`; see the module docs for its addresses and routes.
    pub fn node(&self, name: &str) -> Node {
        let index = {
            let st = self.state.lock().unwrap();
            assert!(
                !st.nodes.iter().any(|n| n.name == name),
                "node {name} exists"
            );
            assert!(st.nodes.len() < 89, "at most 89 nodes per lab");
            st.nodes.len() as u8 + 1
        };
        let netns = self.new_ns("n", name);
        set_sysctls(
            &netns,
            &[
                ("net/ipv4/ip_forward", "1"),
                // Replies of masqueraded or DNATed flows may come back on another interface
                // than a strict reverse-path check expects; real nodes run with it loose or off.
                ("net/ipv4/conf/all/rp_filter", "0"),
                ("net/ipv4/conf/default/rp_filter", "0"),
                // Traffic from LAN clients is forwarded back out of eth0 (to other nodes, or
                // rejected); ICMP redirects for it would share the per-host ICMP rate limit
                // with the port-unreachable errors a REJECT sends, and starve them.
                ("net/ipv4/conf/all/send_redirects", "0"),
                ("net/ipv4/conf/default/send_redirects", "0"),
                // The per-host ICMP rate limit (a burst of 6, then one a second) makes a
                // REJECT's port-unreachable depend on how many unreachables the same client
                // got before (while a rule was not there yet, say): tests check the rules, so
                // every refusal must come back.
                ("net/ipv4/icmp_ratelimit", "0"),
            ],
        );
        if self.v6 {
            set_sysctls(
                &netns,
                &[
                    ("net/ipv6/conf/all/forwarding", "1"),
                    ("net/ipv6/conf/default/forwarding", "1"),
                    ("net/ipv6/icmp/ratelimit", "0"),
                ],
            );
        }
        let v6 = self.v6;
        let node = Node {
            name: name.to_string(),
            netns,
            ip: self.lan_ip(10 + index),
            index,
            pod_cidr: format!("10.42.{index}.0/24"),
            pod_gateway: Ipv4Addr::new(10, 42, index, 1),
            ip6: v6.then(|| self.lan_ip6(10 + index)),
            pod_cidr6: v6.then(|| format!("fd42:0:0:{index:x}::/64")),
            pod_gateway6: v6.then(|| pod_ip6(index, 1)),
        };
        self.plug_into_lan(&node.netns, node.ip, node.ip6);
        let mut setup = vec![
            "link add cbr0 type bridge".to_string(),
            format!("addr add {}/24 dev cbr0", node.pod_gateway),
            "link set cbr0 up".into(),
            "route add default dev eth0".into(),
        ];
        if let Some(gw6) = node.pod_gateway6 {
            setup.push(format!("addr add {gw6}/64 dev cbr0 nodad"));
            setup.push("route add ::/0 dev eth0".into());
        }
        let mut st = self.state.lock().unwrap();
        for other in &st.nodes {
            setup.push(format!("route add {} via {}", other.pod_cidr, other.ip));
            other.ip_batch(&[format!("route add {} via {}", node.pod_cidr, node.ip)]);
            if let (Some(c6), Some(ip6), Some(my_c6), Some(my_ip6)) =
                (&other.pod_cidr6, other.ip6, &node.pod_cidr6, node.ip6)
            {
                setup.push(format!("route add {c6} via {ip6}"));
                other.ip_batch(&[format!("route add {my_c6} via {my_ip6}")]);
            }
        }
        for c in &st.clients {
            c.ip_batch(&[format!("route add {} via {}", node.pod_cidr, node.ip)]);
            if let (Some(c6), Some(ip6)) = (&node.pod_cidr6, node.ip6) {
                c.ip_batch(&[format!("route add {c6} via {ip6}")]);
            }
        }
        node.ip_batch(&setup);
        st.nodes.push(node.clone());
        node
    }

    /// A pod namespace on `node`, behind its pod bridge.
    pub fn pod(&self, node: &Node, name: &str) -> Pod {
        let k = {
            let mut st = self.state.lock().unwrap();
            assert!(!st.pods.iter().any(|p| p.name == name), "pod {name} exists");
            let k = st.pods_per_node.entry(node.name.clone()).or_insert(0);
            assert!(*k < 240, "at most 240 pods per node");
            *k += 1;
            *k
        };
        let netns = self.new_ns("p", name);
        let pod = Pod {
            name: name.to_string(),
            node: node.name.clone(),
            netns,
            ip: Ipv4Addr::new(10, 42, node.index, 9 + k),
            ip6: node
                .pod_gateway6
                .map(|_| pod_ip6(node.index, 9 + u16::from(k))),
        };
        let port = format!("p{k}");
        node.ip_batch(&[
            format!(
                "link add {port} type veth peer name eth0 netns {}",
                pod.name()
            ),
            format!("link set {port} master cbr0 up"),
            // As the CNI bridge plugin's hairpinMode: with br_netfilter loaded, a pod's packet
            // to a Service DNATed back to the same pod must leave through the port it came in.
            format!("link set {port} type bridge_slave hairpin on"),
        ]);
        let mut lines = vec![
            format!("addr add {}/24 dev eth0", pod.ip),
            "link set eth0 up".into(),
            format!("route add default via {}", node.pod_gateway),
        ];
        if let (Some(ip6), Some(gw6)) = (pod.ip6, node.pod_gateway6) {
            lines.insert(1, format!("addr add {ip6}/64 dev eth0 nodad"));
            // Last, with the link up: the kernel refuses an IPv6 gateway on a down link.
            lines.push(format!("route add ::/0 via {gw6}"));
        }
        pod.ip_batch(&lines);
        self.state.lock().unwrap().pods.push(pod.clone());
        pod
    }

    /// Removes a pod: its echo servers stop, its processes are killed, its namespace (and so
    /// its veth) goes. Its address is not handed out again in this lab.
    pub fn remove_pod(&self, pod: &Pod) {
        self.forget(&pod.netns);
        self.state
            .lock()
            .unwrap()
            .pods
            .retain(|p| p.name != pod.name);
        pod.netns.destroy();
    }

    fn forget(&self, ns: &Netns) {
        let mut st = self.state.lock().unwrap();
        for t in st.tasks.remove(ns.name()).unwrap_or_default() {
            t.abort();
        }
        st.forwarders.retain(|(n, _), _| n != ns.name());
        st.namespaces.retain(|n| n != ns);
    }

    /// A client on the LAN whose Service CIDR route goes via the first node (panics if there
    /// is none yet).
    pub fn client(&self, name: &str) -> Client {
        let node = self
            .state
            .lock()
            .unwrap()
            .nodes
            .first()
            .cloned()
            .expect("Lab::client needs a node first");
        self.client_via(name, &node)
    }

    /// A client on the LAN whose Service CIDR route goes via `node`.
    pub fn client_via(&self, name: &str, node: &Node) -> Client {
        let k = {
            let st = self.state.lock().unwrap();
            assert!(
                !st.clients.iter().any(|c| c.name == name),
                "client {name} exists"
            );
            assert!(st.clients.len() < 99, "at most 99 clients per lab");
            st.clients.len() as u8
        };
        let netns = self.new_ns("c", name);
        let client = Client {
            name: name.to_string(),
            netns,
            ip: self.lan_ip(101 + k),
            ip6: self.v6.then(|| self.lan_ip6(101 + k)),
        };
        self.plug_into_lan(&client.netns, client.ip, client.ip6);
        let mut st = self.state.lock().unwrap();
        let mut routes = vec![format!("route add {SERVICE_CIDR} via {}", node.ip)];
        if let Some(ip6) = node.ip6 {
            routes.push(format!("route add {SERVICE_CIDR6} via {ip6}"));
        }
        for n in &st.nodes {
            routes.push(format!("route add {} via {}", n.pod_cidr, n.ip));
            if let (Some(c6), Some(ip6)) = (&n.pod_cidr6, n.ip6) {
                routes.push(format!("route add {c6} via {ip6}"));
            }
        }
        client.ip_batch(&routes);
        st.clients.push(client.clone());
        client
    }

    /// Routes `cidr` (e.g. a LoadBalancer IP `/32`, or an IPv6 `/128` in a dual-stack lab)
    /// from `ns` via `node`'s LAN address of the same family, replacing a route to the same
    /// destination.
    pub fn route_via(&self, ns: &Netns, cidr: &str, node: &Node) {
        let via = if cidr.contains(':') {
            node.ip6
                .expect("an IPv6 route needs a dual-stack lab")
                .to_string()
        } else {
            node.ip.to_string()
        };
        ns.ip(&["route", "replace", cidr, "via", &via]);
    }

    /// The nodes made so far.
    pub fn nodes(&self) -> Vec<Node> {
        self.state.lock().unwrap().nodes.clone()
    }

    /// The pods made so far (removed ones excluded).
    pub fn pods(&self) -> Vec<Pod> {
        self.state.lock().unwrap().pods.clone()
    }

    /// The names of all namespaces this lab currently has.
    pub fn namespaces(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .namespaces
            .iter()
            .map(|n| n.name().to_string())
            .collect()
    }

    /// A handle to the lab's runtime (in the root namespace), for servers of your own: bind
    /// sockets with `ns.run(..)`, then serve them with [`Lab::spawn`].
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.as_ref().unwrap().handle().clone()
    }

    /// Runs `fut` on the lab's runtime until the lab is dropped or `ns` is removed (its sockets
    /// belong to `ns`).
    pub fn spawn(&self, ns: &Netns, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let h = self.handle().spawn(fut).abort_handle();
        self.state
            .lock()
            .unwrap()
            .tasks
            .entry(ns.name().to_string())
            .or_default()
            .push(h);
    }

    /// Serves HTTP on `0.0.0.0:port` inside the pod (see the module docs), and on
    /// `[POD_IP6]:port` in a dual-stack lab; returns `POD_IP:port`.
    pub fn http_echo(&self, pod: &Pod, port: u16) -> SocketAddr {
        for bind in pod.echo_binds(port) {
            let l = pod
                .run(move || std::net::TcpListener::bind(bind))
                .expect("binding the HTTP echo server");
            l.set_nonblocking(true).unwrap();
            let name = pod.name.clone();
            self.spawn(&pod.netns, async move {
                echo::serve_http(tokio::net::TcpListener::from_std(l).unwrap(), name).await
            });
        }
        SocketAddr::new(pod.ip.into(), port)
    }

    /// Serves the UDP echo on `0.0.0.0:port` inside the pod (and `[POD_IP6]:port` in a
    /// dual-stack lab); returns `POD_IP:port`.
    pub fn udp_echo(&self, pod: &Pod, port: u16) -> SocketAddr {
        for bind in pod.echo_binds(port) {
            let s = pod
                .run(move || std::net::UdpSocket::bind(bind))
                .expect("binding the UDP echo server");
            s.set_nonblocking(true).unwrap();
            let name = pod.name.clone();
            self.spawn(&pod.netns, async move {
                echo::serve_udp(tokio::net::UdpSocket::from_std(s).unwrap(), name).await
            });
        }
        SocketAddr::new(pod.ip.into(), port)
    }

    /// Serves the line-based TCP stream echo on `0.0.0.0:port` inside the pod (and
    /// `[POD_IP6]:port` in a dual-stack lab); returns `POD_IP:port`.
    pub fn stream_echo(&self, pod: &Pod, port: u16) -> SocketAddr {
        for bind in pod.echo_binds(port) {
            let l = pod
                .run(move || std::net::TcpListener::bind(bind))
                .expect("binding the stream echo server");
            l.set_nonblocking(true).unwrap();
            let name = pod.name.clone();
            self.spawn(&pod.netns, async move {
                echo::serve_stream(tokio::net::TcpListener::from_std(l).unwrap(), name).await
            });
        }
        SocketAddr::new(pod.ip.into(), port)
    }

    /// A listener on `127.0.0.1:<target's port>` inside `ns` (an ephemeral port if that one is
    /// taken) whose connections are relayed to `target` from the root namespace. Returns the
    /// listening address; asking again for the same pair returns the same forwarder.
    pub fn forward_to_root(&self, ns: &Netns, target: SocketAddr) -> SocketAddr {
        let key = (ns.name().to_string(), target);
        if let Some(a) = self.state.lock().unwrap().forwarders.get(&key) {
            return *a;
        }
        let l = ns
            .run(move || {
                std::net::TcpListener::bind(("127.0.0.1", target.port()))
                    .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            })
            .expect("binding the forwarder");
        let local = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        self.spawn(ns, async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((mut inside, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    // This task runs on the lab runtime's workers, which live in the root
                    // namespace: the upstream socket is made there.
                    if let Ok(mut root) = tokio::net::TcpStream::connect(target).await {
                        let _ = inside.set_nodelay(true);
                        let _ = root.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inside, &mut root).await;
                    }
                });
            }
        });
        self.state.lock().unwrap().forwarders.insert(key, local);
        local
    }

    /// A kubeconfig for processes inside `ns` (usually a node) to reach `server`, through
    /// [`Lab::forward_to_root`]. Same credentials as the server's own kubeconfig.
    pub fn kubeconfig_for(&self, ns: &Netns, server: &TestServer) -> PathBuf {
        let local = self.forward_to_root(ns, server.addr);
        let text =
            std::fs::read_to_string(&server.kubeconfig).expect("reading the server's kubeconfig");
        let text = text.replace(
            &format!("server: https://{}", server.addr),
            &format!("server: https://{local}"),
        );
        assert!(
            text.contains(&format!("server: https://{local}")),
            "kubeconfig has no server line for {}",
            server.addr
        );
        let path = self.dir.path().join(format!("kubeconfig-{}", ns.name()));
        std::fs::write(&path, text).expect("writing kubeconfig");
        path
    }

    /// The lab's temporary directory (removed with the lab).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Sockets first (a socket keeps its namespace alive after `ip netns del`), then
        // processes and namespaces, the LAN last.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        let namespaces = std::mem::take(
            &mut self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .namespaces,
        );
        for ns in namespaces.iter().rev() {
            ns.destroy();
        }
    }
}

impl Pod {
    /// `POD_IP6:port` in a dual-stack lab.
    pub fn addr6(&self, port: u16) -> Option<SocketAddr> {
        self.ip6.map(|ip| SocketAddr::new(ip.into(), port))
    }

    /// Where echo servers listen: every IPv4 address, and the pod's IPv6 address (its own
    /// socket, so IPv4 clients are still seen as plain IPv4 addresses, not `::ffff:` ones).
    fn echo_binds(&self, port: u16) -> Vec<SocketAddr> {
        let mut v = vec![SocketAddr::from(([0, 0, 0, 0], port))];
        if let Some(ip6) = self.ip6 {
            v.push(SocketAddr::new(ip6.into(), port));
        }
        v
    }
}

/// `fd42:0:0:N::host`, an address in node N's IPv6 pod CIDR.
fn pod_ip6(node: u8, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd42, 0, 0, u16::from(node), 0, 0, 0, host)
}

/// Writes `/proc/sys/<key>` from a thread inside `ns` (the `net` tree is per namespace of the
/// thread that opens it), without forking a `sysctl`.
fn set_sysctls(ns: &Netns, kv: &[(&str, &str)]) {
    let kv: Vec<(String, String)> = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ns.run(move || {
        for (k, v) in kv {
            std::fs::write(format!("/proc/sys/{k}"), &v)
                .unwrap_or_else(|e| panic!("setting {k}={v}: {e}"));
        }
    });
}
