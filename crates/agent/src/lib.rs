//! The Switchboard node agent: what kube-proxy does on a node, plus the components that plug in
//! next to it (cluster DNS, LoadBalancer announcements). Start at [`run`]: it watches Services,
//! EndpointSlices, its Node and the `kube-proxy` ConfigMap through kube-rs, programs nftables
//! through `proxy-nft` from a [`proxy::ProxyLoop`], and serves kube-proxy's metrics and health
//! endpoints; the crate README explains the sync loop and the configuration precedence.

pub mod components;
pub mod config;
pub mod health;
pub mod http;
pub mod metrics;
pub mod node;
pub mod proxy;
pub mod runner;
pub mod userspace;
pub mod watch;

use anyhow::Context as _;
use ipnet::IpNet;
use kube::Client;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The agent's flags, named as kube-proxy's where it has them (its old names as aliases).
/// Proxy settings left unset here come from the kube-proxy ConfigMap, then from defaults.
#[derive(clap::Args, Clone, Debug)]
pub struct AgentArgs {
    /// The name of this node's Node object: endpoints with this nodeName are local, and the
    /// Node's InternalIP addresses are the NodePort addresses [default: the hostname]
    #[arg(long, alias = "hostname-override", env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Default scheduler of Services without a `switchboard.dev/scheduler` annotation: random
    /// (kube-proxy's behaviour), rr, sh (source-IP hash), mh (Maglev), or lc (least connection,
    /// userspace mode only) [default: random; rr with --proxy-mode ipvs or userspace]
    #[arg(long, alias = "ipvs-scheduler")]
    pub scheduler: Option<String>,
    /// kube-proxy's mode: "", nftables, iptables or ipvs are all served by the nftables data plane
    /// (ipvs makes rr the default scheduler, as in IPVS); userspace runs the userspace TCP/UDP
    /// proxy (every scheduler, lc included). /proxyMode answers "nftables" or "userspace"
    #[arg(long)]
    pub proxy_mode: Option<String>,
    /// CIDRs of the node addresses that accept NodePort traffic (comma-separated), or "primary":
    /// the node's addresses. Never localhost [default: primary]
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Option<Vec<String>>,
    /// Pod CIDR(s), comma-separated: traffic to a ClusterIP from outside them is masqueraded
    /// [default: 10.42.0.0/16]
    #[arg(long, alias = "cluster-cidrs", value_delimiter = ',')]
    pub cluster_cidr: Option<Vec<String>>,
    /// Masquerade all traffic sent to Services (`--masquerade-all` or `--masquerade-all=false`)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub masquerade_all: Option<bool>,
    /// Periodic resync of the rules, even without changes (Go duration) [default: 30s]
    #[arg(long, alias = "nftables-sync-period", value_parser = parse_duration)]
    pub sync_period: Option<Duration>,
    /// Minimum time between two syncs after a burst of two; 0 syncs on every change [default: 1s]
    #[arg(long, alias = "nftables-min-sync-period", value_parser = parse_duration)]
    pub min_sync_period: Option<Duration>,
    /// How often the watches start over with a fresh list from the API server [default: 15m]
    #[arg(long, value_parser = parse_duration)]
    pub config_sync_period: Option<Duration>,
    /// IP:port of /metrics and /proxyMode; "" disables
    #[arg(long, default_value = "127.0.0.1:10249")]
    pub metrics_bind_address: String,
    /// IP:port of /healthz and /livez; "" disables
    #[arg(long, default_value = "0.0.0.0:10256")]
    pub healthz_bind_address: String,
    /// NAMESPACE/NAME of the ConfigMap holding a KubeProxyConfiguration in data["config.conf"],
    /// applied live when edited; "" to not read one
    #[arg(long, default_value = "kube-system/kube-proxy")]
    pub kube_proxy_configmap: String,
    /// Do not probe the readiness of this node's pods
    #[arg(long)]
    pub no_readiness_probes: bool,
    #[command(flatten)]
    pub components: ComponentArgs,
}

pub use components::ComponentArgs;

fn parse_duration(s: &str) -> Result<Duration, String> {
    config::parse_go_duration(s)
}

impl AgentArgs {
    /// The proxy settings the command line sets (unset ones stay `None`).
    pub fn settings(&self) -> anyhow::Result<config::Settings> {
        let nodeport_addresses = match &self.nodeport_addresses {
            None => None,
            Some(list) => Some(
                config::parse_nodeport_addresses(list)
                    .map_err(|e| anyhow::anyhow!("--nodeport-addresses: {e}"))?,
            ),
        };
        let cluster_cidrs = match &self.cluster_cidr {
            None => None,
            Some(list) => Some(
                config::parse_cidrs(list).map_err(|e| anyhow::anyhow!("--cluster-cidr: {e}"))?,
            ),
        };
        Ok(config::Settings {
            mode: self.proxy_mode.clone(),
            scheduler: self.scheduler.clone(),
            nodeport_addresses,
            cluster_cidrs,
            masquerade_all: self.masquerade_all,
            sync_period: self.sync_period,
            min_sync_period: self.min_sync_period,
            config_sync_period: self.config_sync_period,
        })
    }

    /// `--node-name`, else this machine's hostname.
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(node::hostname)
    }
}

/// How this agent runs, besides its flags.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub args: AgentArgs,
    /// Traffic to an unallocated address in these is rejected (kube-proxy's cluster-IPs check).
    pub service_cidrs: Vec<IpNet>,
    /// Create this machine's Node object when it does not exist (`switchboard up`).
    pub register_node: bool,
}

/// A client: from `kubeconfig` when given, else as kubectl would find one (`$KUBECONFIG`,
/// `~/.kube/config`) or, inside a pod, the in-cluster service account.
pub async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer()
            .await
            .context("no --kubeconfig, no in-cluster configuration and no kubeconfig found")?,
    };
    Ok(Client::try_from(config)?)
}

/// Runs the agent until `shutdown` completes. Fails at start on flags that cannot be run (an
/// invalid CIDR, `--scheduler lc`) and on ports that cannot be bound; later problems are logged
/// and retried.
pub async fn run(
    client: Client,
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let args = &cfg.args;
    let node_name = args.node_name();
    let flags = args.settings()?;
    let (effective, notes) = config::resolve(&flags).map_err(anyhow::Error::msg)?;
    for n in notes {
        tracing::warn!("{n}");
    }
    if cfg.register_node {
        if let Err(e) = node::register(&client, &node_name).await {
            tracing::error!(node = %node_name, error = %e, "registering this machine's Node failed");
        }
    }

    let mut registry = Registry::default();
    let metrics = metrics::ProxyMetrics::register(&mut registry);
    let userspace_metrics = proxy_userspace::Metrics::register(&mut registry);
    let proxy_mode: http::ProxyMode = Arc::new(std::sync::RwLock::new(effective.data_plane()));
    let health = Arc::new(health::ProxyHealth::new(2 * effective.sync_period));
    let components = components::start(
        &args.components,
        components::Context {
            client: &client,
            node_name: &node_name,
            registry: &mut registry,
            shutdown: &token,
        },
    )?;
    let registry = Arc::new(registry);
    // A component that ends (or fails) early is reported when it does, not at shutdown.
    let components: Vec<_> = components
        .into_iter()
        .map(|(name, task)| {
            tokio::spawn(async move {
                match task.await {
                    Ok(Ok(())) => tracing::info!(component = name, "component stopped"),
                    Ok(Err(e)) => tracing::error!(
                        component = name,
                        error = format!("{e:#}"),
                        "component failed"
                    ),
                    Err(e) => tracing::error!(component = name, error = %e, "component panicked"),
                }
            })
        })
        .collect();

    let mut servers = Vec::new();
    if let Some(l) = http::bind(&args.metrics_bind_address, "metrics").await? {
        tracing::info!(address = %l.local_addr()?, "metrics server listening");
        servers.push(http::spawn_server(
            l,
            http::metrics_router(registry.clone(), proxy_mode.clone()),
            token.clone(),
        ));
    }
    if let Some(l) = http::bind(&args.healthz_bind_address, "healthz").await? {
        tracing::info!(address = %l.local_addr()?, "healthz server listening");
        servers.push(http::spawn_server(
            l,
            http::health_router(health.clone(), metrics.clone()),
            token.clone(),
        ));
    }

    let changes = Arc::new(watch::Changes::new(
        metrics.clone(),
        health.clone(),
        proxy::FAMILIES.to_vec(),
    ));
    let (relist_tx, relist_rx) = tokio::sync::watch::channel(effective.config_sync_period);
    let config_map = match args.kube_proxy_configmap.as_str() {
        "" => None,
        s => Some(s.split_once('/').ok_or_else(|| {
            anyhow::anyhow!("--kube-proxy-configmap {s:?} is not NAMESPACE/NAME")
        })?),
    };
    let caches = watch::start(
        &client,
        &node_name,
        config_map,
        changes.clone(),
        relist_rx,
        &token,
    );

    let prober = (!args.no_readiness_probes).then(|| {
        let t = token.clone();
        tokio::spawn(
            controllers::probe::Prober::new(client.clone(), node_name.clone())
                .run(t.cancelled_owned()),
        )
    });

    tracing::info!(
        node = %node_name,
        data_plane = effective.data_plane(),
        scheduler = %effective.scheduler,
        cluster_cidrs = ?effective.cluster_cidrs,
        "agent starting"
    );
    let proxy = proxy::ProxyLoop {
        caches,
        changes,
        metrics,
        health: health.clone(),
        health_checks: http::ServiceHealthServers::new(health, token.clone()),
        flags,
        effective,
        node_name,
        service_cidrs: cfg.service_cidrs.clone(),
        factory: userspace::factory(userspace_metrics, proxy_mode),
        config_sync_period: relist_tx,
        config_map_name: args.kube_proxy_configmap.clone(),
        started: chrono::Utc::now(),
    };
    let proxy_task = tokio::spawn(proxy.run(token.clone()));

    shutdown.await;
    tracing::info!("agent stopping");
    token.cancel();
    let _ = proxy_task.await;
    if let Some(p) = prober {
        let _ = p.await;
    }
    for c in components {
        let _ = c.await;
    }
    for s in servers {
        let _ = s.await;
    }
    Ok(())
}
