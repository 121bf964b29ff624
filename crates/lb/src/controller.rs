//! The I/O half: reflectors for Services, IPAddressPools, Namespaces and Nodes, and one loop
//! that decides incrementally, as MetalLB's controller does. A changed Service is decided
//! alone against what the others hold ([`Planner::plan_service`]); only Services that are or
//! were LoadBalancers reach the loop. A whole round over every LoadBalancer Service runs at
//! start (the allocator is rebuilt from the stored statuses), after a relist, when a pool,
//! a namespace's labels or a node's ServiceLB view change, when a Service gave up an address
//! or ports someone may be waiting for, and every `resync`. Only statuses that differ are
//! written, with an Event for every changed outcome. Nothing is decided before all four
//! initial lists are complete.

use crate::crd::IpAddressPool;
use crate::plan::{self, Mode, Outcome, PlanConfig, Planner};
use crate::pool::Pool;
use crate::servicelb::LbNode;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The LoadBalancer controller's settings.
#[derive(Clone, Debug)]
pub struct LbConfig {
    /// The `loadBalancerClass` served (besides Services with none).
    pub class: String,
    pub mode: Mode,
    /// Read IPAddressPools from this namespace only (MetalLB reads `metallb-system`); None
    /// reads every namespace.
    pub pool_namespace: Option<String>,
    /// Component name on Events, and field manager of status writes.
    pub component: String,
    /// Changes arriving within this window are decided together.
    pub coalesce: Duration,
    /// Everything is looked at again this often.
    pub resync: Duration,
    /// Work counters, updated after every round.
    pub stats: Arc<LbStats>,
}

/// The class a Service names to be served by Switchboard (with no class it is served too).
pub const DEFAULT_CLASS: &str = "switchboard.io/lb";

impl Default for LbConfig {
    fn default() -> Self {
        LbConfig {
            class: DEFAULT_CLASS.into(),
            mode: Mode::Auto,
            pool_namespace: None,
            component: "switchboard-lb".into(),
            coalesce: Duration::from_millis(20),
            resync: Duration::from_secs(60),
            stats: Arc::default(),
        }
    }
}

/// Work counters, shared with whoever started the controller (tests read them).
#[derive(Debug, Default)]
pub struct LbStats {
    /// Service decisions made (a whole round counts every LoadBalancer Service of ours).
    pub decided: AtomicU64,
    /// Whole rounds (start, relist, pool / namespace-label / node changes, releases, resync).
    pub whole_rounds: AtomicU64,
    /// `status.loadBalancer` writes.
    pub status_writes: AtomicU64,
}

/// What the watches tell the loop.
#[derive(Default)]
struct Changes {
    /// Services to decide again, by key.
    services: HashSet<String>,
    /// Everything is to be looked at again.
    all: bool,
}

struct Shared {
    changes: Mutex<Changes>,
    notify: Notify,
}

impl Shared {
    fn changes(&self) -> std::sync::MutexGuard<'_, Changes> {
        // A panic while holding the lock leaves plain data behind; go on with it.
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn service(&self, key: String) {
        self.changes().services.insert(key);
        self.notify.notify_one();
    }

    fn all(&self) {
        self.changes().all = true;
        self.notify.notify_one();
    }
}

/// A reflector whose events go through `on_event`.
fn cache<K>(api: Api<K>, mut on_event: impl FnMut(&watcher::Event<K>) + Send + 'static) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => on_event(&ev),
                // The backoff retries; the relist brings the store up to date.
                Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed"),
            }
        }
    });
    reader
}

/// Services: only those that are, or were, LoadBalancers reach the loop, so the many
/// ClusterIP Services of a cluster cost one set lookup per change here and nothing after.
fn watch_services(api: Api<Service>, shared: Arc<Shared>) -> Store<Service> {
    let is_lb =
        |s: &Service| s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    // Keys last seen as LoadBalancer, to see one stop being one.
    let mut lb_keys: HashSet<String> = HashSet::new();
    let mut relisted: HashSet<String> = HashSet::new();
    cache(api, move |ev| match ev {
        watcher::Event::Apply(s) => {
            let key = plan::key_of(s);
            let was = if is_lb(s) {
                !lb_keys.insert(key.clone())
            } else {
                lb_keys.remove(&key)
            };
            if was || is_lb(s) {
                shared.service(key);
            }
        }
        watcher::Event::Delete(s) => {
            let key = plan::key_of(s);
            if lb_keys.remove(&key) {
                shared.service(key);
            }
        }
        watcher::Event::Init => relisted.clear(),
        watcher::Event::InitApply(s) => {
            if is_lb(s) {
                relisted.insert(plan::key_of(s));
            }
        }
        watcher::Event::InitDone => {
            lb_keys = std::mem::take(&mut relisted);
            shared.all();
        }
    })
}

/// A cache whose changes call for a whole round when `project` (what the planner uses of the
/// object) changes; other changes (a Node's heartbeat) cost nothing.
fn watch_projected<K, P>(
    api: Api<K>,
    shared: Arc<Shared>,
    project: impl Fn(&K) -> P + Send + 'static,
) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    P: PartialEq + Send + 'static,
{
    let mut seen: HashMap<String, P> = HashMap::new();
    let mut relisted: HashMap<String, P> = HashMap::new();
    let name = |o: &K| {
        format!(
            "{}/{}",
            o.meta().namespace.as_deref().unwrap_or_default(),
            o.meta().name.as_deref().unwrap_or_default()
        )
    };
    cache(api, move |ev| match ev {
        watcher::Event::Apply(o) => {
            let p = project(o);
            if seen.get(&name(o)) != Some(&p) {
                seen.insert(name(o), p);
                shared.all();
            }
        }
        watcher::Event::Delete(o) => {
            seen.remove(&name(o));
            shared.all();
        }
        watcher::Event::Init => relisted.clear(),
        watcher::Event::InitApply(o) => {
            relisted.insert(name(o), project(o));
        }
        watcher::Event::InitDone => {
            seen = std::mem::take(&mut relisted);
            shared.all();
        }
    })
}

/// Runs the controller until `shutdown` completes.
pub async fn run(
    client: Client,
    cfg: LbConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        changes: Mutex::new(Changes::default()),
        notify: Notify::new(),
    });
    let services = watch_services(Api::<Service>::all(client.clone()), shared.clone());
    let pools_api = match &cfg.pool_namespace {
        Some(ns) => Api::<IpAddressPool>::namespaced(client.clone(), ns),
        None => Api::<IpAddressPool>::all(client.clone()),
    };
    // A pool's spec is all it is; its status (counters, some day) is not.
    let pools = watch_projected(pools_api, shared.clone(), |p: &IpAddressPool| {
        serde_json::to_value(&p.spec).ok()
    });
    let namespaces = watch_projected(
        Api::<Namespace>::all(client.clone()),
        shared.clone(),
        |n: &Namespace| n.metadata.labels.clone(),
    );
    let nodes = watch_projected(Api::<Node>::all(client.clone()), shared.clone(), lb_node);
    let mut ctl = Controller {
        client,
        planner: Planner::new(PlanConfig {
            class: cfg.class.clone(),
            mode: cfg.mode,
        }),
        cfg,
        last: HashMap::new(),
        events: HashMap::new(),
        bad_pools: BTreeMap::new(),
    };
    let work = async {
        let ready = tokio::try_join!(
            services.wait_until_ready(),
            pools.wait_until_ready(),
            namespaces.wait_until_ready(),
            nodes.wait_until_ready()
        );
        if ready.is_err() {
            return;
        }
        tracing::info!(class = %ctl.cfg.class, mode = ?ctl.cfg.mode, "LoadBalancer controller started");
        shared.all();
        loop {
            tokio::time::sleep(ctl.cfg.coalesce).await;
            let (keys, all) = {
                let mut c = shared.changes();
                (std::mem::take(&mut c.services), std::mem::take(&mut c.all))
            };
            let (mut retry_all, mut retry_keys) = (false, false);
            if all {
                retry_all = ctl.round(&services, &pools, &namespaces, &nodes).await;
            } else if !keys.is_empty() {
                let (failed, released) = ctl.services(keys, &services, &namespaces).await;
                retry_keys = !failed.is_empty();
                shared.changes().services.extend(failed);
                if released {
                    retry_all = ctl.round(&services, &pools, &namespaces, &nodes).await;
                }
            }
            if retry_all {
                shared.changes().all = true;
            }
            let retry = retry_all || retry_keys;
            ctl.publish_stats();
            let wait = if retry {
                Duration::from_secs(1)
            } else {
                ctl.cfg.resync
            };
            tokio::select! {
                _ = shared.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {
                    if !retry {
                        // The periodic look at everything.
                        shared.changes().all = true;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = shutdown => {}
    }
    Ok(())
}

struct Controller {
    client: Client,
    cfg: LbConfig,
    planner: Planner,
    /// Service key -> (uid, last outcome), to write an Event only when it changes.
    last: HashMap<String, (String, Outcome)>,
    /// (uid, reason, message) -> (Event name, count): a repeated Event counts up.
    events: HashMap<(String, String, String), (String, i32)>,
    /// Pools that failed to parse, by name -> resourceVersion, so each is logged once.
    bad_pools: BTreeMap<String, String>,
}

/// A node's addresses as ServiceLB uses them: ExternalIPs if any, else InternalIPs.
pub fn lb_node(n: &Node) -> LbNode {
    let addrs = n.status.as_ref().and_then(|s| s.addresses.as_ref());
    let of = |t: &str| -> Vec<IpAddr> {
        addrs
            .into_iter()
            .flatten()
            .filter(|a| a.type_ == t)
            .filter_map(|a| a.address.parse().ok())
            .collect()
    };
    let external = of("ExternalIP");
    let ready = n
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_none_or(|c| c.status == "True");
    LbNode {
        name: n.metadata.name.clone().unwrap_or_default(),
        labels: n.metadata.labels.clone().unwrap_or_default(),
        addresses: if external.is_empty() {
            of("InternalIP")
        } else {
            external
        },
        ready,
    }
}

impl Controller {
    /// One round; true when a write failed and the round should run again soon.
    async fn round(
        &mut self,
        services: &Store<Service>,
        pools: &Store<IpAddressPool>,
        namespaces: &Store<Namespace>,
        nodes: &Store<Node>,
    ) -> bool {
        let mut good = Vec::new();
        let mut seen = BTreeSet::new();
        let mut pool_objs = pools.state();
        pool_objs.sort_by_key(|p| (p.metadata.namespace.clone(), p.metadata.name.clone()));
        for p in pool_objs {
            let name = p.metadata.name.clone().unwrap_or_default();
            match Pool::parse(&p) {
                Ok(pool) if seen.insert(name.clone()) => good.push(pool),
                Ok(_) => {
                    tracing::warn!(pool = %name, "IPAddressPool name used in two namespaces; the second is ignored")
                }
                Err(e) => {
                    let rv = p.metadata.resource_version.clone().unwrap_or_default();
                    if self.bad_pools.insert(name.clone(), rv.clone()).as_deref()
                        != Some(rv.as_str())
                    {
                        tracing::warn!(pool = %name, error = %e, "IPAddressPool skipped");
                    }
                }
            }
        }
        let ns_labels: BTreeMap<String, BTreeMap<String, String>> = namespaces
            .state()
            .iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    n.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect();
        let mut node_list: Vec<LbNode> = nodes.state().iter().map(|n| lb_node(n)).collect();
        node_list.sort_by(|a, b| a.name.cmp(&b.name));
        let svc_objs = services.state();
        let refs: Vec<&Service> = svc_objs.iter().map(|s| s.as_ref()).collect();
        let outcomes = self.planner.plan(good, &refs, &ns_labels, &node_list);
        let by_key: HashMap<String, &Service> =
            refs.iter().map(|s| (plan::key_of(s), *s)).collect();
        let mut retry = false;
        for (key, outcome) in &outcomes {
            let Some(svc) = by_key.get(key) else { continue };
            retry |= !self.apply(svc, key, outcome).await;
        }
        self.last.retain(|k, _| outcomes.contains_key(k));
        retry
    }

    /// Decides the Services that changed, each alone (the older first). Returns the keys
    /// whose write failed, and whether one gave up something others may be waiting for.
    async fn services(
        &mut self,
        keys: HashSet<String>,
        services: &Store<Service>,
        namespaces: &Store<Namespace>,
    ) -> (Vec<String>, bool) {
        let mut work: Vec<(String, Option<Arc<Service>>)> = keys
            .into_iter()
            .map(|key| {
                let (ns, name) = key.split_once('/').unwrap_or(("", key.as_str()));
                let svc = services.get(&ObjectRef::new(name).within(ns));
                (key, svc)
            })
            .collect();
        work.sort_by_key(|(k, s)| (s.as_deref().map(crate::plan::creation), k.clone()));
        let (mut failed, mut released) = (Vec::new(), false);
        for (key, svc) in work {
            let ns = key.split_once('/').map(|(ns, _)| ns).unwrap_or_default();
            let labels = namespaces
                .get(&ObjectRef::new(ns))
                .and_then(|n| n.metadata.labels.clone());
            let change = self
                .planner
                .plan_service(&key, svc.as_deref(), labels.as_ref());
            released |= change.released;
            match (change.outcome, svc) {
                (Some(outcome), Some(svc)) => {
                    if !self.apply(&svc, &key, &outcome).await {
                        failed.push(key);
                    }
                }
                _ => {
                    self.last.remove(&key);
                }
            }
        }
        (failed, released)
    }

    /// Writes one Service's status if it differs, and an Event if its outcome changed; false
    /// when the write failed.
    async fn apply(&mut self, svc: &Service, key: &str, outcome: &Outcome) -> bool {
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        let want: BTreeSet<IpAddr> = outcome.ips().iter().copied().collect();
        let have: BTreeSet<IpAddr> = plan::status_ips(svc).into_iter().collect();
        let has_hostname = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some_and(|i| i.iter().any(|i| i.ip.is_none()));
        if want != have || has_hostname {
            self.cfg.stats.status_writes.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.write_status(svc, outcome.ips()).await {
                tracing::warn!(service = %key, error = %e, "writing status.loadBalancer failed");
                return false;
            }
            tracing::info!(service = %key, outcome = ?outcome, "LoadBalancer status written");
        }
        let changed = self
            .last
            .get(key)
            .is_none_or(|(u, o)| u != &uid || o != outcome);
        if changed {
            let (kind, reason, message) = describe(key, outcome);
            // At a restart, an address already in the status is not news.
            let news = !(matches!(outcome, Outcome::Pool { .. } | Outcome::ServiceLb { .. })
                && want == have
                && !self.last.contains_key(key));
            if news {
                self.event(svc, kind, reason, &message).await;
            }
            self.last.insert(key.to_string(), (uid, outcome.clone()));
        }
        true
    }

    fn publish_stats(&self) {
        let s = &self.cfg.stats;
        s.decided.store(self.planner.decided, Ordering::Relaxed);
        s.whole_rounds
            .store(self.planner.whole_rounds, Ordering::Relaxed);
    }

    async fn write_status(&self, svc: &Service, ips: &[IpAddr]) -> kube::Result<()> {
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        let name = svc.metadata.name.as_deref().unwrap_or_default();
        let ingress: Vec<serde_json::Value> = ips
            .iter()
            .map(|ip| serde_json::json!({"ip": ip.to_string()}))
            .collect();
        let body = if ingress.is_empty() {
            serde_json::json!({"status": {"loadBalancer": {"ingress": null}}})
        } else {
            serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}})
        };
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map(|_| ())
    }

    /// Records a core/v1 Event on the Service (what `kubectl describe svc` lists).
    async fn event(&mut self, svc: &Service, kind: &str, reason: &str, message: &str) {
        record_event(
            &self.client,
            &self.cfg.component,
            &mut self.events,
            svc,
            kind,
            reason,
            message,
        )
        .await;
    }
}

/// The Event an outcome deserves: (type, reason, message), worded like MetalLB's.
pub fn describe(key: &str, o: &Outcome) -> (&'static str, &'static str, String) {
    let list = |ips: &[IpAddr]| {
        ips.iter()
            .map(|i| format!("{:?}", i.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match o {
        Outcome::Pool { pool, ips } => (
            "Normal",
            "IPAllocated",
            format!("Assigned IP [{}] from pool {pool:?}", list(ips)),
        ),
        Outcome::ServiceLb { ips, nodes } => (
            "Normal",
            "IPAllocated",
            format!(
                "Assigned node IPs [{}] (ServiceLB on node(s) {})",
                list(ips),
                nodes.join(",")
            ),
        ),
        Outcome::Pending(r) if r.starts_with("Failed to allocate") => {
            ("Warning", "AllocationFailed", r.clone())
        }
        Outcome::Pending(r) => (
            "Warning",
            "AllocationFailed",
            format!("Failed to allocate IP for {key:?}: {r}"),
        ),
    }
}

/// Creates an Event about `svc`, or counts up the same Event recorded before (as client-go's
/// recorder does), so a Service that flips does not bury its history.
pub async fn record_event(
    client: &Client,
    component: &str,
    seen: &mut HashMap<(String, String, String), (String, i32)>,
    svc: &Service,
    kind: &str,
    reason: &str,
    message: &str,
) {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let uid = svc.metadata.uid.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    // Only recent Events are counted up; forgetting old ones costs a new Event object at most.
    if seen.len() > 4096 {
        seen.clear();
    }
    let id = (uid.clone(), reason.to_string(), message.to_string());
    if let Some((name, count)) = seen.get_mut(&id) {
        *count += 1;
        let body = serde_json::json!({"count": *count, "lastTimestamp": now});
        if api
            .patch(name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .is_ok()
        {
            return;
        }
    }
    let ev = controllers::events::service_event(svc, component, component, kind, reason, message);
    let name = ev.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), &ev).await {
        Ok(_) => {
            seen.insert(id, (name, 1));
        }
        Err(e) => tracing::warn!(reason, error = %e, "recording an Event failed"),
    }
}
