//! The userspace data plane: every service port is served by a socket of this process instead
//! of kernel NAT rules. Service addresses go on the node's `lo` ([`addresses`]), a listener
//! per address and port accepts TCP or receives UDP, and each new connection is sent to an
//! endpoint picked by the service's scheduler, `lc` (least connection) included, from live
//! per-endpoint connection counts. Start at [`UserspaceProxier::sync`]; the README explains
//! why user space and what it costs.

pub mod addresses;
pub mod balancer;
pub mod metrics;
mod route;
mod tcp;
mod udp;

pub use balancer::{Balancer, Lease, Pool};
pub use metrics::Metrics;

use addresses::{AddressError, LoAddresses};
use proxy_core::{categorize, IpFamily, Protocol, ProxyConfig, ServicePortName, Snapshot};
use route::{Kind, Route, SharedRoute};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// How long a UDP session lives without traffic. kube-proxy's userspace mode defaulted to
/// 250 ms (`--udp-timeout`), too short for anything but DNS; conntrack's UDP stream timeout
/// is 120 s, its single-datagram one 30 s.
pub const DEFAULT_UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("service addresses on lo: {0}")]
    Addresses(#[from] AddressError),
}

/// What one [`UserspaceProxier::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// The first sync of this proxier.
    pub full: bool,
    /// No listener or address changed (endpoints may have).
    pub unchanged: bool,
    pub service_ports: usize,
    /// Endpoints some connection can reach, over both families.
    pub endpoints: usize,
    /// Listeners open after the sync.
    pub listeners: usize,
    pub listeners_opened: usize,
    pub listeners_closed: usize,
    pub addresses_added: usize,
    pub addresses_removed: usize,
    /// Listeners that could not be opened (`address/protocol: error`); retried every sync.
    pub bind_errors: Vec<String>,
    pub duration: Duration,
}

/// A listening address, port and protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct FrontendKey {
    protocol: Protocol,
    addr: SocketAddr,
}

impl std::fmt::Display for FrontendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.protocol)
    }
}

struct Frontend {
    owner: ServicePortName,
    route: SharedRoute,
    task: JoinHandle<()>,
}

/// The userspace data plane of one node (its network namespace).
pub struct UserspaceProxier {
    handle: Handle,
    cfg: ProxyConfig,
    metrics: Option<Metrics>,
    udp_idle_timeout: Duration,
    addresses: LoAddresses,
    balancers: HashMap<(ServicePortName, IpFamily), Arc<Balancer>>,
    frontends: BTreeMap<FrontendKey, Frontend>,
    /// Problems already logged (each once while it lasts).
    logged: HashSet<String>,
    synced: bool,
}

impl UserspaceProxier {
    /// A proxier whose sockets run on `handle`. Adopts the service addresses a previous run
    /// left on `lo` (the first sync removes those no longer wanted). Blocking (runs `ip`).
    pub fn new(
        cfg: ProxyConfig,
        handle: Handle,
        metrics: Option<Metrics>,
    ) -> Result<Self, SyncError> {
        Ok(UserspaceProxier {
            handle,
            cfg,
            metrics,
            udp_idle_timeout: DEFAULT_UDP_IDLE_TIMEOUT,
            addresses: LoAddresses::adopt()?,
            balancers: HashMap::new(),
            frontends: BTreeMap::new(),
            logged: HashSet::new(),
            synced: false,
        })
    }

    pub fn set_udp_idle_timeout(&mut self, idle: Duration) {
        self.udp_idle_timeout = idle;
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.cfg
    }

    /// Takes effect at the next sync.
    pub fn set_config(&mut self, cfg: ProxyConfig) {
        self.cfg = cfg;
    }

    /// The balancer of a service port in one family (tests and diagnostics read its counts).
    pub fn balancer(&self, name: &ServicePortName, family: IpFamily) -> Option<Arc<Balancer>> {
        self.balancers.get(&(name.clone(), family)).cloned()
    }

    /// The listening sockets, as `address/protocol`.
    pub fn listeners(&self) -> Vec<String> {
        self.frontends.keys().map(|k| k.to_string()).collect()
    }

    /// The service addresses this proxier put on `lo`.
    pub fn addresses(&self) -> &BTreeSet<IpAddr> {
        self.addresses.owned()
    }

    /// Makes the listeners, addresses and balancers match `snap`. Listeners that stay keep
    /// their sockets and connections; a connection keeps its endpoint until it ends, even if
    /// the endpoint leaves. Blocking (runs `ip`); the sockets run on the proxier's runtime.
    pub fn sync(&mut self, snap: &Snapshot) -> Result<SyncReport, SyncError> {
        let start = Instant::now();
        let _rt = self.handle.enter();
        let mut report = SyncReport {
            full: !self.synced,
            service_ports: snap.service_ports.len(),
            ..SyncReport::default()
        };
        let short_circuit = Arc::new((self.cfg.cluster_cidrs.clone(), self.cfg.node_ips.clone()));
        let mut want_addrs: BTreeSet<IpAddr> = BTreeSet::new();
        let mut want: BTreeMap<FrontendKey, Route> = BTreeMap::new();
        let mut owners: BTreeMap<FrontendKey, ServicePortName> = BTreeMap::new();
        let mut live_balancers = HashSet::new();
        let mut problems: Vec<String> = Vec::new();
        for sp in snap.service_ports.values() {
            if sp.name.protocol == Protocol::Sctp {
                problems.push(format!(
                    "{}: SCTP is not served by the userspace data plane",
                    sp.name
                ));
                continue;
            }
            for f in IpFamily::ALL {
                let Some(cluster_ip) = sp.cluster_ip(f) else {
                    continue;
                };
                let c = categorize(sp, f);
                let source_ranges = Arc::new(sp.source_ranges.clone());
                let key = (sp.name.clone(), f);
                let balancer = self
                    .balancers
                    .entry(key.clone())
                    .or_insert_with(|| {
                        Arc::new(Balancer::new(sp.name.to_string(), self.metrics.clone()))
                    })
                    .clone();
                live_balancers.insert(key);
                let socket = |e: &proxy_core::Endpoint| SocketAddr::new(e.ip, e.port);
                balancer.update(
                    sp.scheduler,
                    sp.affinity_timeout
                        .map(|t| Duration::from_secs(u64::from(t))),
                    c.cluster.iter().map(socket).collect(),
                    c.local.iter().map(socket).collect(),
                );
                report.endpoints += c.all_reachable.len();
                let of_family = |ips: &[IpAddr]| -> Vec<IpAddr> {
                    ips.iter()
                        .copied()
                        .filter(|ip| IpFamily::of(ip) == f)
                        .collect()
                };
                let external_ips = of_family(&sp.external_ips);
                let lb_ips = of_family(&sp.load_balancer_ips);
                // The addresses stay while the Service does: without endpoints the kernel then
                // refuses (RST, ICMP port unreachable) instead of routing the packet onwards.
                want_addrs.insert(cluster_ip);
                want_addrs.extend(external_ips.iter().chain(&lb_ips).copied());
                if !c.has_any {
                    continue;
                }
                let route = |kind| Route {
                    balancer: balancer.clone(),
                    kind,
                    internal_local: sp.internal_policy_local,
                    external_local: sp.external_policy_local,
                    short_circuit: short_circuit.clone(),
                    source_ranges: source_ranges.clone(),
                };
                let mut fronts = vec![(SocketAddr::new(cluster_ip, sp.port), Kind::ClusterIp)];
                fronts.extend(
                    external_ips
                        .iter()
                        .map(|ip| (SocketAddr::new(*ip, sp.port), Kind::External)),
                );
                fronts.extend(
                    lb_ips
                        .iter()
                        .map(|ip| (SocketAddr::new(*ip, sp.port), Kind::LoadBalancer)),
                );
                if let Some(np) = sp.node_port {
                    let ips = self.cfg.nodeport_ips(f).unwrap_or_else(|| {
                        vec![match f {
                            IpFamily::V4 => Ipv4Addr::UNSPECIFIED.into(),
                            IpFamily::V6 => Ipv6Addr::UNSPECIFIED.into(),
                        }]
                    });
                    fronts.extend(
                        ips.into_iter()
                            .map(|ip| (SocketAddr::new(ip, np), Kind::External)),
                    );
                }
                for (addr, kind) in fronts {
                    let fk = FrontendKey {
                        protocol: sp.name.protocol,
                        addr,
                    };
                    if let Some(other) = owners.get(&fk) {
                        problems.push(format!("{}: {fk} is served for {other} already", sp.name));
                        continue;
                    }
                    owners.insert(fk, sp.name.clone());
                    want.insert(fk, route(kind));
                }
            }
        }

        // Addresses first: a listener on a ClusterIP needs it to be local.
        let add_result = self.addresses.add(&want_addrs);
        if let Ok(n) = &add_result {
            report.addresses_added = *n;
        }

        let gone: Vec<FrontendKey> = self
            .frontends
            .keys()
            .filter(|k| !want.contains_key(k))
            .copied()
            .collect();
        for k in gone {
            if let Some(f) = self.frontends.remove(&k) {
                // The listener closes; connections it accepted run on in their own tasks.
                f.task.abort();
                report.listeners_closed += 1;
            }
        }
        for (k, route) in want {
            let owner = owners
                .remove(&k)
                .expect("every wanted frontend has an owner");
            if let Some(f) = self.frontends.get_mut(&k) {
                *f.route.write().unwrap_or_else(|e| e.into_inner()) = route;
                f.owner = owner;
                continue;
            }
            let shared: SharedRoute = Arc::new(RwLock::new(route));
            match self.open(k, shared.clone()) {
                Ok(task) => {
                    self.frontends.insert(
                        k,
                        Frontend {
                            owner,
                            route: shared,
                            task,
                        },
                    );
                    report.listeners_opened += 1;
                }
                Err(e) => {
                    let msg = format!("{owner}: listening on {k}: {e}");
                    report.bind_errors.push(msg.clone());
                    problems.push(msg);
                }
            }
        }
        self.balancers.retain(|k, _| live_balancers.contains(k));
        let remove_result = self.addresses.remove_except(&want_addrs);
        if let Ok(n) = &remove_result {
            report.addresses_removed = *n;
        }

        let now: HashSet<String> = problems.into_iter().collect();
        for p in now.difference(&self.logged) {
            tracing::warn!("userspace data plane: {p}");
        }
        self.logged = now;
        add_result?;
        remove_result?;
        report.listeners = self.frontends.len();
        report.unchanged = !report.full
            && report.listeners_opened == 0
            && report.listeners_closed == 0
            && report.addresses_added == 0
            && report.addresses_removed == 0;
        report.duration = start.elapsed();
        self.synced = true;
        Ok(report)
    }

    /// Opens the socket of `k` and starts serving it (needs the runtime context).
    fn open(&self, k: FrontendKey, route: SharedRoute) -> std::io::Result<JoinHandle<()>> {
        use socket2::{Domain, Socket, Type};
        let domain = Domain::for_address(k.addr);
        match k.protocol {
            Protocol::Tcp => {
                let s = Socket::new(domain, Type::STREAM, None)?;
                // A restarted agent rebinds while old connections are in TIME_WAIT.
                s.set_reuse_address(true)?;
                if k.addr.is_ipv6() {
                    s.set_only_v6(true)?;
                }
                s.set_nonblocking(true)?;
                s.bind(&k.addr.into())?;
                s.listen(1024)?;
                let l = tokio::net::TcpListener::from_std(s.into())?;
                Ok(self.handle.spawn(tcp::serve(l, route)))
            }
            Protocol::Udp => {
                let s = Socket::new(domain, Type::DGRAM, None)?;
                if k.addr.is_ipv6() {
                    s.set_only_v6(true)?;
                }
                s.set_nonblocking(true)?;
                s.bind(&k.addr.into())?;
                let u = tokio::net::UdpSocket::from_std(s.into())?;
                Ok(self
                    .handle
                    .spawn(udp::serve(u, route, self.udp_idle_timeout)))
            }
            Protocol::Sctp => Err(std::io::Error::other("SCTP is not supported")),
        }
    }

    /// Closes every listener and removes every address this proxier added (switching data
    /// planes, or shutting down). Established connections end with the process, or run on.
    pub fn cleanup(&mut self) -> Result<(), SyncError> {
        for (_, f) in std::mem::take(&mut self.frontends) {
            f.task.abort();
        }
        self.balancers.clear();
        self.addresses.remove_except(&BTreeSet::new())?;
        Ok(())
    }
}

impl Drop for UserspaceProxier {
    fn drop(&mut self) {
        if let Err(e) = self.cleanup() {
            tracing::warn!(error = %e, "removing the userspace data plane's addresses failed");
        }
    }
}
