//! The sync loop: kube-proxy's `syncProxyRules` driven by a [`Runner`]. Each sync looks up the
//! objects that changed since the last one in the reflector stores, updates a
//! `proxy_core::SnapshotTracker` with just those (the whole stores only on the first sync, after
//! a re-list or a configuration change) and hands its snapshot to the
//! data plane (`proxy_nft::NftProxier`), which renders and applies only the difference. Around it: the kube-proxy
//! ConfigMap and the Node are re-read when they change, and the metrics, health and
//! health-check node port servers are updated from what the sync did.

use crate::config::{self, Effective, Settings};
use crate::health::{node_eligible, ProxyHealth};
use crate::http::{ServiceHealth, ServiceHealthServers};
use crate::metrics::{ProxyMetrics, TrafficPolicyLabels};
use crate::node;
use crate::runner::{Next, Reason, Runner};
use crate::watch::{Caches, Changes};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::ObjectRef;
use proxy_core::{
    categorize, slice_key, IpFamily, ProxyConfig, ServiceName, SliceName, Snapshot, SnapshotTracker,
};
use proxy_nft::{Conntrack, Nft, NftProxier, SyncReport};
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// kube-proxy's label for an IP family.
pub fn family_label(f: IpFamily) -> &'static str {
    match f {
        IpFamily::V4 => "IPv4",
        IpFamily::V6 => "IPv6",
    }
}

/// The families the nftables data plane programs (a table each, always both).
pub const FAMILIES: [&str; 2] = ["IPv4", "IPv6"];

/// kube-proxy's burst of syncs allowed before `minSyncPeriod` applies.
const BURST_SYNCS: u32 = 2;

/// The data plane as the loop drives it: the nftables proxier, or its in-memory fake in tests.
pub trait DataPlane: Send {
    fn set_config(&mut self, cfg: ProxyConfig);
    /// The data plane the effective mode asks for (`config::DATA_PLANE` or
    /// `config::USERSPACE`); called before every sync. Only `userspace::Switching` acts on it.
    fn set_mode(&mut self, _data_plane: &'static str) {}
    /// Blocking.
    fn sync(&mut self, snap: &Snapshot) -> anyhow::Result<SyncReport>;
}

impl<N: Nft, C: Conntrack> DataPlane for NftProxier<N, C> {
    fn set_config(&mut self, cfg: ProxyConfig) {
        if *self.config() != cfg {
            NftProxier::set_config(self, cfg);
        }
    }

    fn sync(&mut self, snap: &Snapshot) -> anyhow::Result<SyncReport> {
        Ok(NftProxier::sync(self, snap)?)
    }
}

/// Makes the data plane (blocking: the nftables proxier reads the existing table). Called again
/// after a failure, e.g. when `nft` is missing or the agent lacks CAP_NET_ADMIN.
pub type DataPlaneFactory =
    Arc<dyn Fn(ProxyConfig) -> anyhow::Result<Box<dyn DataPlane>> + Send + Sync>;

/// The real one: `nft` and `conntrack` of this network namespace.
pub fn nftables_factory() -> DataPlaneFactory {
    Arc::new(|cfg| Ok(Box::new(NftProxier::new(cfg)?) as Box<dyn DataPlane>))
}

/// Everything the loop needs; built by `Agent::run`.
pub struct ProxyLoop {
    pub caches: Caches,
    pub changes: Arc<Changes>,
    pub metrics: ProxyMetrics,
    pub health: Arc<ProxyHealth>,
    pub health_checks: ServiceHealthServers,
    pub flags: Settings,
    pub effective: Effective,
    pub node_name: String,
    pub service_cidrs: Vec<IpNet>,
    pub factory: DataPlaneFactory,
    /// The watchers' re-list period (configSyncPeriod), updated on a ConfigMap edit.
    pub config_sync_period: watch::Sender<Duration>,
    /// `namespace/name` of the kube-proxy ConfigMap, for log lines.
    pub config_map_name: String,
    pub started: DateTime<Utc>,
}

struct State {
    dataplane: Option<Box<dyn DataPlane>>,
    runner: Runner,
    /// The snapshot, kept up to date by changes (`None`: rebuild it from the stores).
    tracker: Option<SnapshotTracker>,
    /// Trigger times of slice changes taken in but not yet programmed (a sync failed), with
    /// the slice's family: observed when a sync succeeds.
    triggers: Vec<(&'static str, DateTime<Utc>)>,
    started: DateTime<Utc>,
    /// resourceVersion of the ConfigMap last looked at (`Some("")` for "absent").
    config_map_version: Option<String>,
    logged_skips: HashSet<String>,
    failures: u32,
    synced_once: bool,
}

impl ProxyLoop {
    /// Runs until `shutdown`. Nothing is programmed before every store has its first list.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ready = self.caches.wait_until_ready() => if !ready {
                tracing::error!("a watcher stopped before its first list; not programming anything");
                return;
            },
        }
        tracing::info!("initial lists complete; programming the data plane");
        let now = Instant::now();
        let mut st = State {
            dataplane: None,
            runner: Runner::new(
                self.effective.min_sync_period,
                self.effective.sync_period,
                BURST_SYNCS,
                now,
            ),
            tracker: None,
            triggers: Vec::new(),
            // Trigger times from before the agent started are not ours to report (kube-proxy
            // ignores those older than its change tracker too).
            started: self.started,
            config_map_version: None,
            logged_skips: HashSet::new(),
            failures: 0,
            synced_once: false,
        };
        st.runner.request();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match st.runner.next(Instant::now()) {
                Next::Run(reason) => self.sync(&mut st, reason).await,
                Next::At(t) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep_until(t.into()) => {}
                        _ = self.changes.notify.notified() => {
                            if self.changes.has_pending() {
                                st.runner.request();
                            }
                        }
                    }
                }
            }
        }
    }

    /// Re-reads the ConfigMap when it changed; returns whether the effective config changed.
    fn reconfigure(&mut self, st: &mut State) -> bool {
        self.health
            .set_node_eligible(node_eligible(self.caches.node().as_deref()));
        let cm = self.caches.config_map();
        let version = cm
            .as_ref()
            .map(|c| c.metadata.resource_version.clone().unwrap_or_default());
        let version_key = Some(version.clone().unwrap_or_default());
        if st.config_map_version == version_key {
            return false;
        }
        st.config_map_version = version_key;
        let from_cm = match &cm {
            None => {
                if self.caches.config_map.is_some() {
                    tracing::info!(configmap = %self.config_map_name, "no kube-proxy ConfigMap; using flags and defaults");
                }
                Settings::default()
            }
            Some(cm) => match cm.data.as_ref().and_then(|d| d.get("config.conf")) {
                None => {
                    tracing::error!(configmap = %self.config_map_name, "ConfigMap has no data[\"config.conf\"]; keeping the current configuration");
                    return false;
                }
                Some(yaml) => match config::parse_config_conf(yaml) {
                    Ok(s) => s,
                    Err(errors) => {
                        tracing::error!(configmap = %self.config_map_name, errors = ?errors, "KubeProxyConfiguration rejected; keeping the current configuration");
                        return false;
                    }
                },
            },
        };
        let overridden = self.flags.conflicts(&from_cm);
        if !overridden.is_empty() {
            tracing::warn!(configmap = %self.config_map_name, overridden = ?overridden, "command-line flags override the ConfigMap");
        }
        let merged = self.flags.over(&from_cm);
        match config::resolve(&merged) {
            Err(e) => {
                tracing::error!(configmap = %self.config_map_name, error = %e, scheduler = %self.effective.scheduler, "KubeProxyConfiguration rejected; keeping the current configuration");
                false
            }
            Ok((eff, notes)) => {
                for n in notes {
                    tracing::warn!(configmap = %self.config_map_name, "{n}");
                }
                if eff == self.effective {
                    return false;
                }
                tracing::info!(
                    configmap = %self.config_map_name,
                    mode = %eff.requested_mode,
                    scheduler = %eff.scheduler,
                    nodeport_addresses = ?eff.nodeport_addresses,
                    cluster_cidrs = ?eff.cluster_cidrs,
                    masquerade_all = eff.masquerade_all,
                    sync_period = ?eff.sync_period,
                    min_sync_period = ?eff.min_sync_period,
                    "proxy configuration changed"
                );
                st.runner
                    .set_intervals(eff.min_sync_period, eff.sync_period, Instant::now());
                self.health.set_timeout(2 * eff.sync_period);
                let _ = self.config_sync_period.send(eff.config_sync_period);
                self.effective = eff;
                true
            }
        }
    }

    fn proxy_config(&self) -> ProxyConfig {
        ProxyConfig {
            node_name: self.node_name.clone(),
            zone: node::zone(self.caches.node().as_deref()),
            node_ips: node::node_ips(self.caches.node().as_deref(), &node::interface_addresses()),
            nodeport_addresses: self.effective.nodeport_addresses.clone(),
            cluster_cidrs: self.effective.cluster_cidrs.clone(),
            service_cidrs: self.service_cidrs.clone(),
            masquerade_all: self.effective.masquerade_all,
            // `resolve` admitted only the schedulers nftables provides.
            scheduler: self.effective.scheduler.parse().unwrap_or_default(),
        }
    }

    async fn sync(&mut self, st: &mut State, reason: Reason) {
        let pending = self.changes.take();
        if pending.config || st.config_map_version.is_none() {
            self.reconfigure(st);
        }
        let cfg = self.proxy_config();
        // The whole stores when the tracker may not match them: first sync, a configuration
        // change (endpoints' locality and the default scheduler are folded in), and a re-list
        // (deletions while no watch ran come without an event; the watches re-list every
        // configSyncPeriod). Not at the periodic resync: rebuilding 50k Services takes about a
        // second, which a change arriving meanwhile would wait for, and the tracker equals a
        // rebuild by construction (proxy-core's property test).
        let whole = pending.listed || st.tracker.as_ref().is_none_or(|t| *t.config() != cfg);
        let input = if whole {
            Input::Whole {
                services: self.caches.services.state(),
                slices: self.caches.slices.state(),
            }
        } else {
            Input::Changes {
                services: pending
                    .services
                    .iter()
                    .map(|(ns, name)| {
                        let key = ServiceName {
                            namespace: ns.clone(),
                            name: name.clone(),
                        };
                        let obj = self.caches.services.get(&ObjectRef::new(name).within(ns));
                        (key, obj)
                    })
                    .collect(),
                slices: pending
                    .slices
                    .iter()
                    .map(|(ns, name)| {
                        let key = SliceName {
                            namespace: ns.clone(),
                            name: name.clone(),
                        };
                        let obj = self.caches.slices.get(&ObjectRef::new(name).within(ns));
                        (key, obj)
                    })
                    .collect(),
            }
        };
        let tracker = st.tracker.take();
        let started = st.started;
        let factory = self.factory.clone();
        let dataplane = st.dataplane.take();
        let data_plane = self.effective.data_plane();
        let start = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            let (mut tracker, triggers) = update_tracker(tracker, input, &cfg, started);
            let mut dp = match dataplane {
                Some(mut dp) => {
                    dp.set_config(cfg.clone());
                    dp
                }
                None => match factory(cfg.clone()) {
                    Ok(dp) => dp,
                    Err(e) => {
                        return (
                            None,
                            tracker,
                            triggers,
                            cfg,
                            Err(e.context("starting the nftables data plane")),
                        )
                    }
                },
            };
            dp.set_mode(data_plane);
            let report = dp.sync(tracker.snapshot());
            (Some(dp), tracker, triggers, cfg, report)
        });
        let (dataplane, mut tracker, triggers, cfg, report) = match task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the sync task failed");
                self.changes.give_back(pending);
                st.runner.done(Instant::now(), Some(self.retry_delay(st)));
                return;
            }
        };
        st.dataplane = dataplane;
        st.triggers.extend(triggers);
        let elapsed = start.elapsed();
        let now = Utc::now();
        let snap = tracker.snapshot();
        self.log_skipped(&mut st.logged_skips, snap);
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                st.tracker = Some(tracker);
                st.failures += 1;
                let retry = self.retry_delay(st);
                tracing::error!(error = format!("{e:#}"), retry_in = ?retry, "sync failed");
                for f in FAMILIES {
                    self.metrics
                        .nftables_sync_failures
                        .get_or_create(&ProxyMetrics::family(f))
                        .inc();
                }
                self.changes.give_back(pending);
                st.runner.done(Instant::now(), Some(retry));
                return;
            }
        };
        st.failures = 0;
        st.runner.done(Instant::now(), None);
        let secs = elapsed.as_secs_f64();
        for f in FAMILIES {
            let l = ProxyMetrics::family(f);
            self.metrics
                .sync_proxy_rules_duration
                .get_or_create(&l)
                .observe(secs);
            if report.full {
                self.metrics
                    .sync_full_proxy_rules_duration
                    .get_or_create(&l)
                    .observe(secs);
            } else {
                self.metrics
                    .sync_partial_proxy_rules_duration
                    .get_or_create(&l)
                    .observe(secs);
            }
            self.metrics
                .last_timestamp
                .get_or_create(&l)
                .set(now.timestamp_micros() as f64 / 1e6);
            self.health.updated(f, now);
        }
        self.observe_no_local_endpoints(snap, &report);
        for (family, t) in st.triggers.drain(..) {
            let secs = (now - t).to_std().unwrap_or_default().as_secs_f64();
            self.metrics
                .network_programming_duration
                .get_or_create(&ProxyMetrics::family(family))
                .observe(secs);
        }
        self.health_checks
            .sync(&health_check_ports(snap), &health_check_addresses(&cfg));
        self.changes.publish_pending();
        let fields = (
            report.full,
            report.unchanged,
            snap.service_ports.len(),
            report.endpoints,
        );
        if !st.synced_once || report.full {
            tracing::info!(full = fields.0, service_ports = fields.2, endpoints = fields.3, elapsed = ?elapsed, reason = ?reason, "SyncProxyRules complete");
        } else {
            tracing::debug!(full = fields.0, unchanged = fields.1, service_ports = fields.2, endpoints = fields.3, elapsed = ?elapsed, reason = ?reason, "SyncProxyRules complete");
        }
        st.synced_once = true;
        st.tracker = Some(tracker);
    }

    /// 1 s, doubling per consecutive failure, at most the sync period.
    fn retry_delay(&self, st: &State) -> Duration {
        let exp = st.failures.saturating_sub(1).min(16);
        Duration::from_secs(1 << exp).min(self.effective.sync_period)
    }

    fn log_skipped(&self, logged: &mut HashSet<String>, snap: &Snapshot) {
        // Each reason once while it lasts, not at every periodic resync.
        let mut now: HashSet<String> = snap
            .skipped
            .iter()
            .map(|s| format!("not programmed: {s}"))
            .collect();
        // A Service that asks for lc through its annotation is served, as random: say so.
        for sp in snap.service_ports.values() {
            if sp.scheduler == proxy_core::Scheduler::LeastConnection
                && self.effective.data_plane() != config::USERSPACE
            {
                now.insert(format!(
                    "Service {}: {}: {}; served as random",
                    sp.name.service,
                    proxy_core::SCHEDULER_ANNOTATION,
                    config::LC_REFUSED
                ));
            }
        }
        for s in now.difference(logged) {
            tracing::warn!("{s}");
        }
        *logged = now;
    }

    fn observe_no_local_endpoints(&self, snap: &Snapshot, report: &SyncReport) {
        for f in IpFamily::ALL {
            // The nftables proxier keeps these counts; otherwise count (every port).
            let (internal, external) = match &report.no_local_endpoints_per_family {
                Some(per) => {
                    let s = &per[f as usize];
                    (s.no_local_endpoints_internal, s.no_local_endpoints_external)
                }
                None => no_local_endpoints(snap, f),
            };
            for (policy, n) in [("internal", internal), ("external", external)] {
                self.metrics
                    .no_local_endpoints
                    .get_or_create(&TrafficPolicyLabels {
                        ip_family: family_label(f).into(),
                        traffic_policy: policy.into(),
                    })
                    .set(n as i64);
            }
        }
    }
}

/// What a sync feeds the tracker.
enum Input {
    /// Everything in the stores.
    Whole {
        services: Vec<Arc<Service>>,
        slices: Vec<Arc<EndpointSlice>>,
    },
    /// The objects that changed (`None`: deleted).
    Changes {
        services: Vec<(ServiceName, Option<Arc<Service>>)>,
        slices: Vec<(SliceName, Option<Arc<EndpointSlice>>)>,
    },
}

/// kube-proxy's label for a slice's family (FQDN slices are not programmed; counted as IPv4).
fn slice_family(s: &EndpointSlice) -> &'static str {
    match s.address_type.as_str() {
        "IPv6" => "IPv6",
        _ => "IPv4",
    }
}

/// Brings the tracker up to date (a new one from `Whole`), and returns, for
/// kubeproxy_network_programming_duration_seconds, the family and
/// `last-change-trigger-time` of every slice whose trigger time is new and later than the
/// agent's start (kube-proxy ignores older ones too).
fn update_tracker(
    tracker: Option<SnapshotTracker>,
    input: Input,
    cfg: &ProxyConfig,
    started: DateTime<Utc>,
) -> (SnapshotTracker, Vec<(&'static str, DateTime<Utc>)>) {
    let mut triggers = Vec::new();
    match input {
        Input::Whole { services, slices } => {
            let mut old = tracker;
            let mut new = SnapshotTracker::from_objects(
                cfg.clone(),
                services.iter().map(|s| s.as_ref()),
                slices.iter().map(|s| s.as_ref()),
            );
            let before = old.as_mut().map(|t| &t.snapshot().slice_trigger_times);
            let after = &new.snapshot().slice_trigger_times;
            for s in &slices {
                let key = slice_key(s);
                if let Some(t) = after.get(&key) {
                    if *t > started && before.and_then(|b| b.get(&key)) != Some(t) {
                        triggers.push((slice_family(s), *t));
                    }
                }
            }
            (new, triggers)
        }
        Input::Changes { services, slices } => {
            let mut t = tracker.expect("changes apply to an existing tracker");
            for (key, obj) in &slices {
                let before = t.snapshot().slice_trigger_times.get(key).copied();
                match obj {
                    Some(s) => t.apply_slice(s),
                    None => t.delete_slice(key),
                }
                let after = t.snapshot().slice_trigger_times.get(key).copied();
                if let (Some(s), Some(at)) = (obj, after) {
                    if at > started && before != Some(at) {
                        triggers.push((slice_family(s), at));
                    }
                }
            }
            for (key, obj) in &services {
                match obj {
                    Some(s) => t.apply_service(s),
                    None => t.delete_service(key),
                }
            }
            (t, triggers)
        }
    }
}

/// Per family: service ports with internalTrafficPolicy / externalTrafficPolicy Local that have
/// endpoints, but none on this node (their traffic is dropped here), as the renderer counts.
pub fn no_local_endpoints(snap: &Snapshot, f: IpFamily) -> (usize, usize) {
    let (mut internal, mut external) = (0, 0);
    for sp in snap.service_ports.values().filter(|sp| sp.in_family(f)) {
        let c = categorize(sp, f);
        if !c.has_any || !c.local.is_empty() {
            continue;
        }
        if sp.internal_policy_local {
            internal += 1;
        }
        if sp.external_policy_local && sp.externally_accessible() {
            external += 1;
        }
    }
    (internal, external)
}

/// The health-check node ports the snapshot asks for.
pub fn health_check_ports(snap: &Snapshot) -> BTreeMap<u16, ServiceHealth> {
    snap.health_checks
        .iter()
        .map(|(svc, hc)| {
            (
                hc.node_port,
                ServiceHealth {
                    namespace: svc.namespace.clone(),
                    name: svc.name.clone(),
                    local_endpoints: hc.local_endpoints,
                },
            )
        })
        .collect()
}

/// Where health-check node ports listen: the NodePort addresses of each family, or every
/// address (`0.0.0.0`, `::`) where `nodePortAddresses` has a `/0`. With both `/0`s the IPv6
/// wildcard alone covers both families (a dual-stack socket), as two wildcards would collide.
pub fn health_check_addresses(cfg: &ProxyConfig) -> Vec<IpAddr> {
    let v4 = cfg.nodeport_ips(IpFamily::V4);
    let v6 = cfg.nodeport_ips(IpFamily::V6);
    match (v4, v6) {
        (None, None) => vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
        (v4, v6) => {
            let mut out = v4.unwrap_or_else(|| vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]);
            out.extend(v6.unwrap_or_else(|| vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)]));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(nodeport: &[&str]) -> ProxyConfig {
        ProxyConfig {
            node_ips: vec!["192.168.1.11".parse().unwrap(), "10.0.0.1".parse().unwrap()],
            nodeport_addresses: nodeport.iter().map(|s| s.parse().unwrap()).collect(),
            ..ProxyConfig::default()
        }
    }

    #[test]
    fn health_checks_listen_on_the_nodeport_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            health_check_addresses(&cfg(&[])),
            vec![ip("10.0.0.1"), ip("192.168.1.11")]
        );
        assert_eq!(
            health_check_addresses(&cfg(&["192.168.1.0/24"])),
            vec![ip("192.168.1.11")]
        );
        assert_eq!(
            health_check_addresses(&cfg(&["0.0.0.0/0"])),
            vec![ip("0.0.0.0")]
        );
        assert_eq!(
            health_check_addresses(&cfg(&["0.0.0.0/0", "::/0"])),
            vec![ip("::")]
        );
    }
}

/// The loop end to end on reflector stores fed by hand and the proxier's in-memory nft fake.
#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::watch::Changes;
    use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::runtime::reflector::{self, store::Writer};
    use kube::runtime::watcher::Event;
    use prometheus_client::registry::Registry;
    use proxy_nft::{Fake, FakeLog};
    use std::sync::Mutex;

    struct Harness {
        services: Writer<Service>,
        slices: Writer<EndpointSlice>,
        node: Writer<Node>,
        config_map: Writer<ConfigMap>,
        changes: Arc<Changes>,
        nft: Arc<Mutex<FakeLog>>,
        registry: Registry,
        shutdown: CancellationToken,
    }

    fn service(i: u32) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("s{i}"), "namespace": "default", "uid": format!("u{i}")},
            "spec": {"clusterIP": format!("10.43.1.{i}"), "clusterIPs": [format!("10.43.1.{i}")],
                     "ports": [{"port": 80, "protocol": "TCP"}]},
        }))
        .unwrap()
    }

    fn start(min_sync: Duration) -> Harness {
        let (services_r, services) = reflector::store::<Service>();
        let (slices_r, slices) = reflector::store::<EndpointSlice>();
        let (node_r, node) = reflector::store::<Node>();
        let (cm_r, config_map) = reflector::store::<ConfigMap>();
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        let health = Arc::new(ProxyHealth::new(Duration::from_secs(60)));
        let changes = Arc::new(Changes::new(
            metrics.clone(),
            health.clone(),
            FAMILIES.to_vec(),
        ));
        let fake = Fake::default();
        let nft = fake.0.clone();
        let factory: DataPlaneFactory = Arc::new(move |cfg| {
            Ok(
                Box::new(NftProxier::with_backends(cfg, fake.clone(), fake.clone())?)
                    as Box<dyn DataPlane>,
            )
        });
        let flags = Settings {
            min_sync_period: Some(min_sync),
            ..Settings::default()
        };
        let (effective, _) = config::resolve(&flags).unwrap();
        let shutdown = CancellationToken::new();
        let l = ProxyLoop {
            caches: Caches {
                services: services_r,
                slices: slices_r,
                node: node_r,
                config_map: Some(cm_r),
            },
            changes: changes.clone(),
            metrics,
            health: health.clone(),
            health_checks: ServiceHealthServers::new(health, shutdown.clone()),
            flags,
            effective: effective.clone(),
            node_name: "n1".into(),
            service_cidrs: vec![],
            factory,
            config_sync_period: watch::channel(effective.config_sync_period).0,
            config_map_name: "kube-system/kube-proxy".into(),
            started: Utc::now(),
        };
        tokio::spawn(l.run(shutdown.clone()));
        Harness {
            services,
            slices,
            node,
            config_map,
            changes,
            nft,
            registry,
            shutdown,
        }
    }

    impl Harness {
        fn scripts(&self) -> Vec<String> {
            self.nft.lock().unwrap().scripts.clone()
        }

        fn syncs(&self) -> f64 {
            let (text, _) = crate::metrics::render(&self.registry, false);
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(
                        "kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family=\"IPv4\"} ",
                    )
                })
                .map_or(0.0, |v| v.parse().unwrap())
        }

        async fn eventually(&self, what: &str, f: impl Fn(&Harness) -> bool) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !f(self) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: not within 10 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    fn list<K: kube::Resource + Clone>(w: &mut Writer<K>, objs: Vec<K>)
    where
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        w.apply_watcher_event(&Event::Init);
        for o in objs {
            w.apply_watcher_event(&Event::InitApply(o));
        }
        w.apply_watcher_event(&Event::InitDone);
    }

    #[tokio::test]
    async fn nothing_is_programmed_before_every_first_list() {
        let mut h = start(Duration::from_secs(1));
        list(&mut h.services, vec![service(1)]);
        list(&mut h.slices, vec![]);
        list(&mut h.node, vec![]);
        h.changes.service_changed(&service(1));
        // The ConfigMap's list is not complete: the first sync must not use a default scheduler
        // the ConfigMap may be about to change.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            h.scripts().is_empty(),
            "programmed before the ConfigMap list: {:?}",
            h.scripts()
        );
        list(&mut h.config_map, vec![]);
        h.eventually("first sync", |h| h.syncs() >= 1.0).await;
        let all = h.scripts().join("\n");
        assert!(
            all.contains("10.43.1.1"),
            "the listed Service is programmed:\n{all}"
        );
        h.shutdown.cancel();
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_coalesced_into_few_syncs() {
        let mut h = start(Duration::from_secs(2));
        list(&mut h.services, vec![]);
        list(&mut h.slices, vec![]);
        list(&mut h.node, vec![]);
        list(&mut h.config_map, vec![]);
        h.eventually("first sync", |h| h.syncs() >= 1.0).await;
        let before = h.syncs();
        for i in 1..=50 {
            let s = service(i);
            h.services.apply_watcher_event(&Event::Apply(s.clone()));
            h.changes.service_changed(&s);
        }
        h.eventually("the last of 50 changes programmed", |h| {
            h.scripts().join("\n").contains("10.43.1.50")
        })
        .await;
        let burst_syncs = h.syncs() - before;
        // Without coalescing this would be 50; the bucket allows one at once, then one per
        // min-sync-period. A loaded machine may stretch the burst over more periods, and the
        // initial lists' own syncs may land after `before`: a bound well below 50 still
        // tells coalescing from none.
        assert!(
            (1.0..=10.0).contains(&burst_syncs),
            "{burst_syncs} syncs for one burst"
        );
        let (text, _) = crate::metrics::render(&h.registry, false);
        assert!(
            text.contains("kubeproxy_sync_proxy_rules_service_changes_total 50\n"),
            "{text}"
        );
        assert!(
            text.contains("kubeproxy_sync_proxy_rules_service_changes_pending 0\n"),
            "{text}"
        );
        h.shutdown.cancel();
    }

    fn slice(svc: u32) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("s{svc}-x"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": format!("s{svc}")}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.1.10"], "conditions": {"ready": true}},
                          {"addresses": ["10.42.1.11"], "conditions": {"ready": true}}],
            "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
        }))
        .unwrap()
    }

    fn kube_proxy_config_map(conf: &str, version: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "resourceVersion": version},
            "data": {"config.conf": conf},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_config_map_edit_changes_the_scheduler_without_a_restart_and_a_bad_one_changes_nothing(
    ) {
        let mut h = start(Duration::ZERO);
        list(&mut h.services, vec![service(1)]);
        list(&mut h.slices, vec![slice(1)]);
        list(&mut h.node, vec![]);
        list(&mut h.config_map, vec![]);
        h.eventually("random programmed", |h| {
            h.scripts().join("\n").contains("numgen random mod 2")
        })
        .await;

        let edit = |h: &mut Harness, conf: &str, version: &str| {
            let cm = kube_proxy_config_map(conf, version);
            h.config_map.apply_watcher_event(&Event::Apply(cm));
            h.changes.config_changed();
        };
        edit(
            &mut h,
            "kind: KubeProxyConfiguration\nipvs:\n  scheduler: rr\n",
            "2",
        );
        h.eventually("rr programmed", |h| {
            h.scripts()
                .last()
                .is_some_and(|s| s.contains("numgen inc mod 2"))
        })
        .await;

        // lc, then garbage: refused; the next sync (forced by a Service change) keeps rr.
        edit(
            &mut h,
            "kind: KubeProxyConfiguration\nipvs:\n  scheduler: lc\n",
            "3",
        );
        edit(&mut h, "ipvs: [", "4");
        let before = h.syncs();
        h.services.apply_watcher_event(&Event::Apply(service(2)));
        h.changes.service_changed(&service(2));
        h.eventually("a sync after the bad edits", |h| h.syncs() > before)
            .await;
        let all = h.scripts().join("\n");
        let last_random = all.rfind("numgen random").unwrap_or(0);
        let last_inc = all.rfind("numgen inc").unwrap();
        assert!(last_inc > last_random, "rr stays after refused edits");
        h.shutdown.cancel();
    }

    fn slice_with(svc: u32, endpoint: &str, trigger: DateTime<Utc>) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("s{svc}-x"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": format!("s{svc}")},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time":
                                         trigger.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [endpoint], "conditions": {"ready": true}}],
            "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
        }))
        .unwrap()
    }

    fn programming_observations(h: &Harness) -> f64 {
        let (text, _) = crate::metrics::render(&h.registry, false);
        text.lines()
            .find_map(|l| {
                l.strip_prefix(
                    "kubeproxy_network_programming_duration_seconds_count{ip_family=\"IPv4\"} ",
                )
            })
            .map_or(0.0, |v| v.parse().unwrap())
    }

    #[tokio::test]
    async fn one_change_is_one_sync_of_just_that_change_and_one_latency_observation() {
        let mut h = start(Duration::from_secs(1));
        let services: Vec<Service> = (1..=20).map(service).collect();
        let slices: Vec<EndpointSlice> = (1..=20).map(slice).collect();
        list(&mut h.services, services);
        list(&mut h.slices, slices);
        list(&mut h.node, vec![]);
        list(&mut h.config_map, vec![]);
        h.eventually("first sync", |h| h.syncs() >= 1.0).await;
        // Quiet: a token is back.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let before = h.syncs();
        let scripts_before = h.scripts().len();
        let changed = slice_with(7, "10.42.1.99", Utc::now());
        h.slices.apply_watcher_event(&Event::Apply(changed.clone()));
        h.changes.slice_changed(&changed);
        h.eventually("the change programmed", |h| {
            h.scripts().join("\n").contains("10.42.1.99")
        })
        .await;
        // Nothing else is pending: no second sync follows.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.syncs() - before, 1.0, "one sync for one change");
        assert_eq!(programming_observations(&h), 1.0);
        let scripts = h.scripts();
        assert_eq!(scripts.len(), scripts_before + 1, "one transaction (IPv4)");
        let script = scripts.last().unwrap();
        assert!(!script.contains("delete table"), "{script}");
        for other in ["/s6/", "/s8/", "10.43.1.6 ", "10.43.1.8 "] {
            assert!(!script.contains(other), "only s7 is touched:\n{script}");
        }

        // A Service deleted: its rules go, in one more sync.
        let before = h.syncs();
        h.services.apply_watcher_event(&Event::Delete(service(3)));
        h.changes.service_changed(&service(3));
        // s3 is dispatched through the shared maps (no chains of its own): its ClusterIP
        // leaves them.
        h.eventually("the deletion programmed", |h| {
            h.scripts().last().is_some_and(|s| {
                s.contains("delete element ip switchboard cluster-ips { 10.43.1.3 }")
            })
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(h.syncs() - before, 1.0);
        h.shutdown.cancel();
    }
}
