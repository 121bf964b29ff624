//! L2 announcement of LoadBalancer IPs, MetalLB's layer-2 mode inside the Switchboard agent:
//! every node renews a Lease, elects an owner for each address from the same inputs
//! ([`election`]), and the owner answers ARP and NDP for it ([`speaker`]) and announces a
//! takeover with gratuitous ARP / unsolicited NA. Start at [`Announcer::new`]; theory and the
//! failover timing are in README.md.

pub mod args;
pub mod election;
pub mod frames;
pub mod health;
pub mod speaker;

pub use args::AnnounceArgs;
use election::{elect, World};
use futures::StreamExt;
use health::{LeaseTracker, ANN_DURATION_MS, LEASE_LABEL, LEASE_PREFIX};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use lb::crd::{IpAddressPool, L2Advertisement};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use speaker::{Speaker, Table};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Settings; the defaults aim at failover well under a second (README: "Failover timing").
#[derive(Clone, Debug)]
pub struct AnnounceConfig {
    pub node_name: String,
    /// The loadBalancerClass whose Services are announced (and Services with none).
    pub class: String,
    /// Where the agents' Leases live (exists in every cluster; names don't collide with
    /// kubelet's, which are the bare node names).
    pub lease_namespace: String,
    /// How often this node renews its Lease.
    pub renew_interval: Duration,
    /// A node whose Lease has not changed for this long is failed over.
    pub lease_duration: Duration,
    /// How often the election runs even without a watch event (expiries are not events).
    pub check_interval: Duration,
    /// After a takeover, gratuitous ARP / unsolicited NA go out at once and again after
    /// these delays (a frame can be lost; a switch may still be learning).
    pub repeat_announcements: Vec<Duration>,
    /// Send gratuitous ARP / unsolicited NA on takeover. Off only to measure what they buy
    /// (the benchmark's baseline): clients then find the new owner when their neighbour entry
    /// goes stale and they ask again.
    pub gratuitous: bool,
}

impl AnnounceConfig {
    pub fn new(node_name: impl Into<String>) -> Self {
        AnnounceConfig {
            node_name: node_name.into(),
            class: lb::DEFAULT_CLASS.into(),
            lease_namespace: "kube-node-lease".into(),
            renew_interval: Duration::from_millis(100),
            lease_duration: Duration::from_millis(500),
            check_interval: Duration::from_millis(25),
            repeat_announcements: vec![
                Duration::from_millis(100),
                Duration::from_millis(500),
                Duration::from_secs(2),
            ],
            gratuitous: true,
        }
    }
}

#[derive(Clone, Default)]
struct Metrics {
    announced: Gauge,
    takeovers: Counter,
    lease_renewal_failures: Counter,
}

/// The L2 announcer of one node.
pub struct Announcer {
    cfg: AnnounceConfig,
    speaker: Arc<Speaker>,
    metrics: Metrics,
}

/// Drops what the announcer never reads. These stores are copies next to the proxy's and the
/// DNS server's, and every Service and EndpointSlice of the cluster is in them: at 10k
/// Services they were a quarter of the agent's memory.
fn strip_meta<K: kube::Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    meta.owner_references = None;
}

/// Only the address pool's Services are read (`lb::plan::is_ours`: type LoadBalancer); of
/// the others the store keeps name and type.
fn strip_service(s: &mut Service) {
    strip_meta(s);
    let lb = s.spec.as_ref().and_then(|sp| sp.type_.as_deref()) == Some("LoadBalancer");
    if !lb {
        s.metadata.annotations = None;
        s.metadata.labels = None;
        s.spec = s
            .spec
            .take()
            .map(|sp| k8s_openapi::api::core::v1::ServiceSpec {
                type_: sp.type_,
                ..Default::default()
            });
        s.status = None;
    }
}

/// Of an EndpointSlice the announcer reads its Service label and which nodes have ready
/// endpoints: one ready endpoint per node is kept, with only its node name and readiness.
fn strip_slice(s: &mut EndpointSlice) {
    strip_meta(s);
    s.metadata.annotations = None;
    s.ports = None;
    let mut nodes = BTreeSet::new();
    s.endpoints.retain(|ep| {
        let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        ready
            && ep
                .node_name
                .as_ref()
                .is_some_and(|n| nodes.insert(n.clone()))
    });
    for ep in &mut s.endpoints {
        *ep = k8s_openapi::api::discovery::v1::Endpoint {
            node_name: ep.node_name.take(),
            conditions: Some(k8s_openapi::api::discovery::v1::EndpointConditions {
                ready: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        };
    }
}

fn cache<K>(api: Api<K>, wc: watcher::Config, strip: fn(&mut K), notify: Arc<Notify>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher::watcher(api, wc).modify(strip)).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            if let Err(e) = ev {
                tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed");
            }
            notify.notify_one();
        }
    });
    reader
}

impl Announcer {
    /// Registers the announcer's metrics (`switchboard_l2_*`) in the agent's registry.
    pub fn new(cfg: AnnounceConfig, registry: &mut Registry) -> Announcer {
        let speaker = Arc::new(Speaker::new());
        let metrics = Metrics::default();
        registry.register(
            "switchboard_l2_announced_ips",
            "LoadBalancer IPs this node answers ARP/NDP for",
            metrics.announced.clone(),
        );
        registry.register(
            "switchboard_l2_takeovers",
            "Addresses this node took over",
            metrics.takeovers.clone(),
        );
        registry.register(
            "switchboard_l2_lease_renewal_failures",
            "Failed renewals of this node's Lease",
            metrics.lease_renewal_failures.clone(),
        );
        registry.register(
            "switchboard_l2_arp_replies",
            "ARP replies sent",
            speaker.stats.arp_replies.clone(),
        );
        registry.register(
            "switchboard_l2_ndp_replies",
            "Neighbor Advertisements sent in answer",
            speaker.stats.ndp_replies.clone(),
        );
        registry.register(
            "switchboard_l2_announcements",
            "Gratuitous ARP / unsolicited NA frames sent",
            speaker.stats.announcements.clone(),
        );
        Announcer {
            cfg,
            speaker,
            metrics,
        }
    }

    /// Runs until `shutdown` completes. Nothing is announced before every cache has its first
    /// list and this node's Lease has been renewed once.
    pub async fn run(
        self,
        client: Client,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let cfg = self.cfg.clone();
        let notify = Arc::new(Notify::new());
        let all = watcher::Config::default;
        let services = cache(
            Api::<Service>::all(client.clone()),
            all(),
            strip_service,
            notify.clone(),
        );
        let slices = cache(
            Api::<EndpointSlice>::all(client.clone()),
            all(),
            strip_slice,
            notify.clone(),
        );
        let pools = cache(
            Api::<IpAddressPool>::all(client.clone()),
            all(),
            strip_meta,
            notify.clone(),
        );
        let ads = cache(
            Api::<L2Advertisement>::all(client.clone()),
            all(),
            strip_meta,
            notify.clone(),
        );
        let nodes = cache(
            Api::<Node>::all(client.clone()),
            all(),
            strip_meta,
            notify.clone(),
        );
        let leases = cache(
            Api::<Lease>::namespaced(client.clone(), &cfg.lease_namespace),
            watcher::Config::default().labels(&format!("{LEASE_LABEL}=true")),
            strip_meta,
            notify.clone(),
        );
        let renewed = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let renewer = tokio::spawn(renew_lease(
            client.clone(),
            cfg.clone(),
            renewed.clone(),
            self.metrics.clone(),
        ));
        let work = async {
            let ready = tokio::try_join!(
                services.wait_until_ready(),
                slices.wait_until_ready(),
                pools.wait_until_ready(),
                ads.wait_until_ready(),
                nodes.wait_until_ready(),
                leases.wait_until_ready()
            );
            if ready.is_err() {
                return;
            }
            tracing::info!(node = %cfg.node_name, "L2 announcer started");
            let mut state = State::default();
            loop {
                let own = *renewed.lock().unwrap_or_else(|e| e.into_inner());
                self.round(
                    &client, &mut state, own, &services, &slices, &pools, &ads, &nodes, &leases,
                )
                .await;
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(cfg.check_interval) => {}
                }
            }
        };
        tokio::select! {
            _ = work => {}
            _ = shutdown => {}
        }
        renewer.abort();
        // Stop answering at once: the next owner takes over when our Lease expires. (A clean
        // shutdown could also delete the Lease to hand over sooner; see README.)
        self.speaker.set_table(Table::new());
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        client: &Client,
        st: &mut State,
        own_renewal: Option<Instant>,
        services: &Store<Service>,
        slices: &Store<EndpointSlice>,
        pools: &Store<IpAddressPool>,
        ads: &Store<L2Advertisement>,
        nodes: &Store<Node>,
        leases: &Store<Lease>,
    ) {
        let cfg = &self.cfg;
        let now = Instant::now();
        let mut present = BTreeSet::new();
        for l in leases.state() {
            let Some(spec) = &l.spec else { continue };
            let Some(node) = spec.holder_identity.clone() else {
                continue;
            };
            if !l
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(LEASE_PREFIX))
            {
                continue;
            }
            let renew = spec
                .renew_time
                .as_ref()
                .map(|t| t.0.to_string())
                .unwrap_or_default();
            let ms = l
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_DURATION_MS))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64 * 1000);
            st.tracker
                .observe(&node, &renew, Duration::from_millis(ms), now);
            present.insert(node);
        }
        st.tracker.retain(&present);
        let mut healthy = st.tracker.healthy(now);
        // Our own health is what we know first-hand: a node that cannot renew its Lease must
        // stop answering, because the others will soon elect someone else.
        let self_ok =
            own_renewal.is_some_and(|t| now.saturating_duration_since(t) < cfg.lease_duration);
        if self_ok {
            healthy.insert(cfg.node_name.clone());
        } else {
            healthy.remove(&cfg.node_name);
        }
        let pool_objs = pools.state();
        let mut parsed = Vec::new();
        let mut pool_labels = BTreeMap::new();
        for p in &pool_objs {
            if let Ok(pool) = lb::pool::Pool::parse(p) {
                pool_labels.insert(
                    pool.name.clone(),
                    p.metadata.labels.clone().unwrap_or_default(),
                );
                parsed.push(pool);
            }
        }
        let mut local_endpoints: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for s in slices.state() {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            else {
                continue;
            };
            for ep in &s.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if let (true, Some(n)) = (ready, &ep.node_name) {
                    local_endpoints
                        .entry(format!("{ns}/{svc}"))
                        .or_default()
                        .insert(n.clone());
                }
            }
        }
        let svc_objs = services.state();
        let ad_objs = ads.state();
        let node_objs = nodes.state();
        let world = World {
            services: svc_objs.iter().map(|s| s.as_ref()).collect(),
            pools: parsed,
            pool_labels,
            ads: ad_objs.iter().map(|a| a.as_ref()).collect(),
            nodes: node_objs
                .iter()
                .map(|n| {
                    (
                        n.metadata.name.clone().unwrap_or_default(),
                        n.metadata.labels.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            healthy,
            local_endpoints,
            class: cfg.class.clone(),
        };
        let assignments = elect(&world);
        // Raw sockets (promiscuous) only on nodes that may have to announce something, opened
        // before this node could take an address over, and re-read now and then since
        // interfaces come and go.
        let candidate = assignments
            .iter()
            .any(|a| a.candidates.contains(&cfg.node_name));
        if candidate
            && st
                .refreshed
                .is_none_or(|t| now.saturating_duration_since(t) > Duration::from_secs(5))
        {
            self.speaker.refresh_interfaces();
            st.refreshed = Some(now);
            tracing::debug!(interfaces = ?self.speaker.interfaces(), "L2 interfaces");
        }
        let mut table = Table::new();
        let mut services_of: HashMap<IpAddr, Vec<String>> = HashMap::new();
        for a in assignments {
            if a.owner.as_deref() == Some(cfg.node_name.as_str()) {
                table.insert(
                    a.ip,
                    a.interfaces
                        .get(&cfg.node_name)
                        .cloned()
                        .unwrap_or_default(),
                );
                services_of.insert(a.ip, a.services);
            }
        }
        let gained: Vec<IpAddr> = table
            .keys()
            .filter(|ip| !st.current.contains_key(ip))
            .copied()
            .collect();
        let lost: Vec<IpAddr> = st
            .current
            .keys()
            .filter(|ip| !table.contains_key(ip))
            .copied()
            .collect();
        if gained.is_empty() && lost.is_empty() && table == st.current {
            self.repeat_announcements(st, now);
            return;
        }
        self.speaker.set_table(table.clone());
        self.metrics.announced.set(table.len() as i64);
        for ip in &lost {
            tracing::info!(%ip, node = %cfg.node_name, "no longer announcing");
            st.repeats.retain(|(i, _)| i != ip);
        }
        for ip in &gained {
            self.metrics.takeovers.inc();
            if cfg.gratuitous {
                self.speaker.announce(*ip, &table[ip]);
                for d in &cfg.repeat_announcements {
                    st.repeats.push((*ip, now + *d));
                }
            }
            tracing::info!(%ip, node = %cfg.node_name, "announcing (took over)");
        }
        st.current = table;
        self.repeat_announcements(st, now);
        // Tell users where each address lives now: an Event on every Service of a gained IP.
        for ip in gained {
            for key in services_of.get(&ip).into_iter().flatten() {
                let Some((ns, name)) = key.split_once('/') else {
                    continue;
                };
                let Some(svc) = services.get(&reflector::ObjectRef::new(name).within(ns)) else {
                    continue;
                };
                let msg = format!(
                    "announcing from node {:?} with protocol \"layer2\"",
                    cfg.node_name
                );
                lb::controller::record_event(
                    client,
                    "switchboard-l2",
                    &mut st.events,
                    &svc,
                    "Normal",
                    "nodeAssigned",
                    &msg,
                )
                .await;
            }
        }
    }

    fn repeat_announcements(&self, st: &mut State, now: Instant) {
        let due: Vec<IpAddr> = st
            .repeats
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(ip, _)| *ip)
            .collect();
        st.repeats.retain(|(_, at)| *at > now);
        for ip in due {
            if let Some(on) = st.current.get(&ip) {
                self.speaker.announce(ip, on);
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// When the interfaces were last re-read (None: no sockets opened yet).
    refreshed: Option<Instant>,
    tracker: LeaseTracker,
    current: Table,
    /// Announcements still to repeat: (ip, when).
    repeats: Vec<(IpAddr, Instant)>,
    events: HashMap<(String, String, String), (String, i32)>,
}

/// Renews this node's Lease every `renew_interval`, creating it when missing; records when a
/// renewal last succeeded.
async fn renew_lease(
    client: Client,
    cfg: AnnounceConfig,
    renewed: Arc<std::sync::Mutex<Option<Instant>>>,
    metrics: Metrics,
) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.lease_namespace);
    let name = format!("{LEASE_PREFIX}{}", cfg.node_name);
    let secs = cfg.lease_duration.as_millis().div_ceil(1000).max(1) as i32;
    let mut tick = tokio::time::interval(cfg.renew_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let body = serde_json::json!({
            "metadata": {
                "labels": {LEASE_LABEL: "true"},
                "annotations": {ANN_DURATION_MS: cfg.lease_duration.as_millis().to_string()},
            },
            "spec": {"holderIdentity": cfg.node_name, "leaseDurationSeconds": secs, "renewTime": now},
        });
        // A renewal slower than the lease duration is no renewal.
        let res = tokio::time::timeout(
            cfg.lease_duration,
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&body)),
        )
        .await;
        let ok = match res {
            Ok(Ok(_)) => true,
            Ok(Err(kube::Error::Api(e))) if e.code == 404 => {
                let lease: Lease = match serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name, "namespace": cfg.lease_namespace,
                                 "labels": {LEASE_LABEL: "true"},
                                 "annotations": {ANN_DURATION_MS: cfg.lease_duration.as_millis().to_string()}},
                    "spec": {"holderIdentity": cfg.node_name, "leaseDurationSeconds": secs, "renewTime": now, "acquireTime": now},
                })) {
                    Ok(l) => l,
                    Err(_) => continue,
                };
                api.create(&PostParams::default(), &lease).await.is_ok()
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "renewing the L2 lease failed");
                false
            }
            Err(_) => false,
        };
        if ok {
            *renewed.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        } else {
            metrics.lease_renewal_failures.inc();
        }
    }
}

#[cfg(test)]
mod strip_tests {
    use super::*;

    #[test]
    fn a_stripped_slice_keeps_one_ready_endpoint_per_node() {
        let mut s: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"port": 80}],
            "endpoints": [
                {"addresses": ["10.42.0.1"], "nodeName": "n1", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.2"], "nodeName": "n1"},
                {"addresses": ["10.42.0.3"], "nodeName": "n2", "conditions": {"ready": false}},
                {"addresses": ["10.42.0.4"], "nodeName": "n3", "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "p4"}},
                {"addresses": ["10.42.0.5"]},
            ],
        }))
        .unwrap();
        strip_slice(&mut s);
        let nodes: Vec<_> = s
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.node_name.as_deref(),
                    e.conditions.as_ref().and_then(|c| c.ready),
                )
            })
            .collect();
        assert_eq!(nodes, [(Some("n1"), Some(true)), (Some("n3"), Some(true))]);
        assert!(s.endpoints.iter().all(|e| e.target_ref.is_none()));
        assert_eq!(
            s.metadata.labels.unwrap()["kubernetes.io/service-name"],
            "web"
        );
    }
}
