//! Cluster DNS for the Switchboard agent: the records of the Kubernetes DNS specification
//! (schema 1.1.0) for Services, EndpointSlices and pods, answered from a zone compiled into
//! wire bytes (`zone`) by a request path that copies and patches (`answer`); other names are
//! forwarded to upstream resolvers with a bounded cache (`forward`).
//! Start at [`Dns::new`] and [`Dns::run`]; the theory is in the crate README.

pub mod answer;
pub mod args;
pub mod forward;
pub mod metrics;
pub mod publish;
pub mod server;
pub mod watch;
pub mod wire;
pub mod zone;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::registry::Registry;

pub use args::DnsArgs;
pub use publish::PublishConfig;
pub use zone::{PodMode, Zone, ZoneConfig};

/// Everything the DNS server is configured with.
#[derive(Clone, Debug)]
pub struct DnsConfig {
    pub zone: ZoneConfig,
    /// Addresses to serve on, UDP and TCP each (port 0: an ephemeral port, for tests). Empty:
    /// this node's addresses, port 53 (see [`node_addresses`]).
    pub bind: Vec<SocketAddr>,
    /// This node's name, to find its addresses.
    pub node_name: Option<String>,
    /// Upstream resolvers; None: the `nameserver`s of /etc/resolv.conf.
    pub upstreams: Option<Vec<SocketAddr>>,
    /// How many forwarded responses the cache holds.
    pub cache_size: usize,
    /// Publish this node as the `kube-dns` Service's endpoint (see `publish`).
    pub publish: Option<PublishConfig>,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            zone: ZoneConfig::default(),
            bind: vec![],
            node_name: None,
            upstreams: None,
            cache_size: 10_000,
            publish: None,
        }
    }
}

/// This node's addresses, as the agent takes them: the Node's InternalIP addresses, else its
/// ExternalIP ones, else the addresses of the non-loopback interfaces.
pub async fn node_addresses(
    client: Option<&kube::Client>,
    node_name: Option<&str>,
) -> Vec<std::net::IpAddr> {
    use k8s_openapi::api::core::v1::Node;
    if let (Some(client), Some(name)) = (client, node_name) {
        if let Ok(Some(node)) = kube::Api::<Node>::all(client.clone()).get_opt(name).await {
            let addrs = node.status.and_then(|s| s.addresses).unwrap_or_default();
            for kind in ["InternalIP", "ExternalIP"] {
                let ips: Vec<std::net::IpAddr> = addrs
                    .iter()
                    .filter(|a| a.type_ == kind)
                    .filter_map(|a| a.address.parse().ok())
                    .collect();
                if !ips.is_empty() {
                    return ips;
                }
            }
        }
    }
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && !i.ip().is_unspecified())
        .map(|i| i.ip())
        .filter(
            |ip| !matches!(ip, std::net::IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80),
        )
        .collect()
}

/// The DNS server: built (metrics registered) before the agent serves its registry, bound,
/// then run until shutdown.
pub struct Dns {
    cfg: DnsConfig,
    shared: Arc<server::Shared>,
    sockets: Vec<(std::net::UdpSocket, std::net::TcpListener)>,
}

impl Dns {
    /// Registers the metrics and reads the upstream resolvers. Binds nothing yet.
    pub fn new(cfg: DnsConfig, registry: &mut Registry) -> Dns {
        let metrics = metrics::Metrics::default();
        metrics.register(registry);
        let upstreams = match &cfg.upstreams {
            Some(u) => u.clone(),
            None => std::fs::read_to_string("/etc/resolv.conf")
                .map(|t| forward::resolv_conf_upstreams(&t))
                .unwrap_or_default(),
        };
        // Never forward to ourselves: a resolv.conf naming the cluster DNS would loop.
        let upstreams: Vec<SocketAddr> = upstreams
            .into_iter()
            .filter(|u| !cfg.zone.dns_ips.contains(&u.ip()) && !cfg.bind.contains(u))
            .collect();
        if upstreams.is_empty() {
            tracing::warn!("no upstream resolvers: names outside the cluster get SERVFAIL");
        }
        let shared = Arc::new(server::Shared {
            zone: ArcSwap::from_pointee(Zone::empty(&cfg.zone)),
            forwarder: forward::Forwarder::new(upstreams, cfg.cache_size, metrics.clone()),
            metrics,
            stop: Default::default(),
        });
        Dns {
            cfg,
            shared,
            sockets: Vec::new(),
        }
    }

    /// Binds every configured address (UDP and TCP) and returns the bound addresses, so a
    /// caller that asked for port 0 learns the port. `run` binds if this wasn't called.
    pub fn bind(&mut self) -> std::io::Result<Vec<SocketAddr>> {
        if self.sockets.is_empty() {
            for a in &self.cfg.bind {
                let pair = server::bind_pair(*a).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("binding DNS on {a}: {e}"))
                })?;
                self.sockets.push(pair);
            }
        }
        self.sockets.iter().map(|(u, _)| u.local_addr()).collect()
    }

    /// Replaces the zone (for serving a fixed zone without an API server: benchmarks).
    pub fn set_zone(&self, zone: Zone) {
        self.shared.metrics.zone_names.set(zone.len() as i64);
        self.shared.zone.store(Arc::new(zone));
    }

    /// Serves until `shutdown` resolves: the sockets, the watchers that keep the zone current
    /// (when a client is given), and the kube-dns publisher (when configured).
    pub async fn run(
        mut self,
        client: Option<kube::Client>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        if self.cfg.bind.is_empty() {
            let ips = node_addresses(client.as_ref(), self.cfg.node_name.as_deref()).await;
            if ips.is_empty() {
                anyhow::bail!(
                    "no address to serve DNS on: the node has none; give --dns-bind-address"
                );
            }
            self.cfg.bind = ips.iter().map(|ip| SocketAddr::new(*ip, 53)).collect();
            if let Some(p) = &mut self.cfg.publish {
                p.node_ips = ips;
            }
        }
        self.bind()?;
        let rt = tokio::runtime::Handle::current();
        let mut threads = Vec::new();
        let mut tasks = Vec::new();
        for (udp, tcp) in std::mem::take(&mut self.sockets) {
            let addr = udp.local_addr()?;
            tracing::info!(%addr, "DNS server listening (udp, tcp)");
            tcp.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(tcp)?;
            tasks.push(tokio::spawn(server::serve_tcp(
                listener,
                self.shared.clone(),
            )));
            let (udp, shared, rt) = (Arc::new(udp), self.shared.clone(), rt.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{addr}"))
                    .spawn(move || server::serve_udp(udp, shared, rt))?,
            );
        }
        if let Some(client) = client {
            tasks.push(tokio::spawn(watch::run(
                client.clone(),
                self.cfg.zone.clone(),
                self.shared.clone(),
            )));
            if let Some(p) = self.cfg.publish.clone() {
                tasks.push(tokio::spawn(publish::run(client, p)));
            }
        }
        shutdown.await;
        for t in &tasks {
            t.abort();
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
