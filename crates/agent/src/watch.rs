//! The agent's view of the cluster: kube-rs reflectors for Services, EndpointSlices, this
//! node's Node and the `kube-proxy` ConfigMap, and the bookkeeping of what changed since the
//! last sync (kube-proxy's change trackers, as far as its metrics and health need them).
//!
//! Services and EndpointSlices are watched with kube-proxy's label selector
//! (`!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless`): Services
//! another proxy owns and headless Services are not ours. Only standard list/watch with label
//! and field selectors is used, so any API server works. The stores keep those objects without
//! what the proxy never reads (managedFields, other annotations, selectors, endpoints' target
//! references): at 10k Services that was most of the agent's memory.

use crate::health::ProxyHealth;
use crate::metrics::ProxyMetrics;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use proxy_core::{SCHEDULER_ANNOTATION, SOURCE_RANGES_ANNOTATION, TRIGGER_TIME_ANNOTATION};
use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// kube-proxy's selector for Services and EndpointSlices.
pub const PROXY_LABEL_SELECTOR: &str =
    "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless";

/// The stores the sync loop reads.
#[derive(Clone)]
pub struct Caches {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    pub node: Store<Node>,
    pub config_map: Option<Store<ConfigMap>>,
}

impl Caches {
    /// Resolves when every store has had its first complete list (false if a watcher ended).
    pub async fn wait_until_ready(&self) -> bool {
        let cm = async {
            match &self.config_map {
                Some(s) => s.wait_until_ready().await.is_ok(),
                None => true,
            }
        };
        let (a, b, c, d) = tokio::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.node.wait_until_ready(),
            cm
        );
        a.is_ok() && b.is_ok() && c.is_ok() && d
    }

    /// This node's Node, if it exists.
    pub fn node(&self) -> Option<Arc<Node>> {
        self.node.state().into_iter().next()
    }

    /// The kube-proxy ConfigMap, if it exists.
    pub fn config_map(&self) -> Option<Arc<ConfigMap>> {
        self.config_map.as_ref()?.state().into_iter().next()
    }
}

/// What changed since the sync loop last took the changes.
#[derive(Debug, Default)]
pub struct Pending {
    /// Services (namespace/name) with a Service change.
    pub services: HashSet<(String, String)>,
    /// Services (namespace/name) with an EndpointSlice change.
    pub endpoints: HashSet<(String, String)>,
    /// EndpointSlices (namespace/name) that changed.
    pub slices: HashSet<(String, String)>,
    /// The Node or the ConfigMap changed: the proxy configuration may have.
    pub config: bool,
    /// A watch finished a (re-)list: objects deleted while no watch ran are gone from its store
    /// without a Delete event.
    pub listed: bool,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.endpoints.is_empty() && !self.config && !self.listed
    }

    fn merge(&mut self, other: Pending) {
        self.services.extend(other.services);
        self.endpoints.extend(other.endpoints);
        self.slices.extend(other.slices);
        self.config |= other.config;
        self.listed |= other.listed;
    }
}

/// Shared between the watchers (writers) and the sync loop (which takes the changes).
pub struct Changes {
    pub notify: Notify,
    pending: Mutex<Pending>,
    metrics: ProxyMetrics,
    health: Arc<ProxyHealth>,
    families: Vec<&'static str>,
}

impl Changes {
    pub fn new(
        metrics: ProxyMetrics,
        health: Arc<ProxyHealth>,
        families: Vec<&'static str>,
    ) -> Changes {
        Changes {
            notify: Notify::new(),
            pending: Mutex::new(Pending::default()),
            metrics,
            health,
            families,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change that the rules must reflect: queued for every family, as kube-proxy's proxiers
    /// each see every Service event.
    fn queued(&self) {
        let now = chrono::Utc::now();
        let ts = now.timestamp_micros() as f64 / 1e6;
        for f in &self.families {
            self.health.queued(f, now);
            self.metrics
                .last_queued_timestamp
                .get_or_create(&ProxyMetrics::family(f))
                .set(ts);
        }
        self.notify.notify_one();
    }

    pub fn service_changed(&self, svc: &Service) {
        let key = (
            svc.metadata.namespace.clone().unwrap_or_default(),
            svc.metadata.name.clone().unwrap_or_default(),
        );
        self.metrics.service_changes_total.inc();
        let n = {
            let mut p = self.lock();
            p.services.insert(key);
            p.services.len()
        };
        self.metrics.service_changes_pending.set(n as i64);
        self.queued();
    }

    pub fn slice_changed(&self, slice: &EndpointSlice) {
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .cloned()
            .unwrap_or_default();
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let slice_key = proxy_core::slice_key(slice);
        let key = (namespace, service);
        self.metrics.endpoint_changes_total.inc();
        let n = {
            let mut p = self.lock();
            p.slices.insert((slice_key.namespace, slice_key.name));
            p.endpoints.insert(key);
            p.endpoints.len()
        };
        self.metrics.endpoint_changes_pending.set(n as i64);
        self.queued();
    }

    pub fn config_changed(&self) {
        self.lock().config = true;
        self.notify.notify_one();
    }

    /// A store swapped in a fresh list.
    pub fn listed(&self) {
        self.lock().listed = true;
        self.notify.notify_one();
    }

    /// Takes what changed so far (the sync about to run covers it).
    pub fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }

    /// A failed sync gives its changes back.
    pub fn give_back(&self, p: Pending) {
        let mut cur = self.lock();
        cur.merge(p);
    }

    /// After a sync: what is still pending (arrived during the sync) is what the gauges show.
    pub fn publish_pending(&self) {
        let (s, e) = {
            let p = self.lock();
            (p.services.len(), p.endpoints.len())
        };
        self.metrics.service_changes_pending.set(s as i64);
        self.metrics.endpoint_changes_pending.set(e as i64);
    }

    pub fn has_pending(&self) -> bool {
        !self.lock().is_empty()
    }
}

/// Runs a reflector for `api` until `shutdown`, calling `on_change` for every object that was
/// applied or deleted (initial list included). Watch errors are logged and retried with
/// kube-rs's default backoff; the store keeps serving the last complete state meanwhile.
///
/// Every `relist` period (kube-proxy's `configSyncPeriod`) the watch is started over with a
/// fresh list, which the store swaps in atomically: kube-rs has no informer resync, and this
/// bounds how long a missed event could go unnoticed.
#[allow(clippy::too_many_arguments)]
pub fn spawn_reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &'static str,
    relist: watch::Receiver<Duration>,
    shutdown: CancellationToken,
    strip: fn(&mut K),
    on_change: impl Fn(&K) + Send + 'static,
    on_listed: impl Fn() + Send + 'static,
) -> Store<K>
where
    K: Resource + Clone + Debug + Send + Sync + serde::de::DeserializeOwned + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let watches = futures::stream::unfold((), move |()| {
        let period = *relist.borrow();
        let w = watcher::watcher(api.clone(), config.clone())
            .default_backoff()
            .modify(strip)
            .take_until(tokio::time::sleep(period));
        async move { Some((w, ())) }
    })
    .flatten();
    let stream = reflector::reflector(writer, watches);
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        loop {
            let ev = tokio::select! {
                _ = shutdown.cancelled() => break,
                ev = stream.next() => ev,
            };
            match ev {
                None => break,
                Some(Ok(Event::Apply(o) | Event::InitApply(o) | Event::Delete(o))) => on_change(&o),
                Some(Ok(Event::Init)) => tracing::debug!(what, "listing"),
                Some(Ok(Event::InitDone)) => {
                    tracing::debug!(what, "list complete");
                    on_listed();
                }
                Some(Err(e)) => tracing::warn!(what, error = %e, "watch failed; retrying"),
            }
        }
    });
    reader
}

/// Keeps only the annotations in `keep`, and drops managedFields and owner references.
fn strip_meta(meta: &mut kube::api::ObjectMeta, keep: &[&str]) {
    meta.managed_fields = None;
    meta.owner_references = None;
    if let Some(a) = &mut meta.annotations {
        a.retain(|k, _| keep.contains(&k.as_str()));
    }
}

/// What `proxy_core` does not read of a Service.
pub fn strip_service(s: &mut Service) {
    strip_meta(
        &mut s.metadata,
        &[SCHEDULER_ANNOTATION, SOURCE_RANGES_ANNOTATION],
    );
    if let Some(spec) = &mut s.spec {
        spec.selector = None;
    }
    if let Some(status) = &mut s.status {
        status.conditions = None;
    }
}

/// What `proxy_core` does not read of an EndpointSlice.
pub fn strip_slice(s: &mut EndpointSlice) {
    strip_meta(&mut s.metadata, &[TRIGGER_TIME_ANNOTATION]);
    for ep in &mut s.endpoints {
        ep.target_ref = None;
        ep.deprecated_topology = None;
    }
}

/// The Node and the ConfigMap are one object each: kept whole but for managedFields.
fn strip_managed_fields<K: Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}

fn listed(changes: &Arc<Changes>) -> impl Fn() + Send + 'static {
    let c = changes.clone();
    move || c.listed()
}

/// Starts the four reflectors. `config_map` is `namespace/name` of the kube-proxy ConfigMap
/// (`None`: not read).
pub fn start(
    client: &Client,
    node_name: &str,
    config_map: Option<(&str, &str)>,
    changes: Arc<Changes>,
    relist: watch::Receiver<Duration>,
    shutdown: &CancellationToken,
) -> Caches {
    let selector = watcher::Config::default().labels(PROXY_LABEL_SELECTOR);
    let c = changes.clone();
    let services = spawn_reflector(
        Api::<Service>::all(client.clone()),
        selector.clone(),
        "services",
        relist.clone(),
        shutdown.clone(),
        strip_service,
        move |s| c.service_changed(s),
        listed(&changes),
    );
    let c = changes.clone();
    let slices = spawn_reflector(
        Api::<EndpointSlice>::all(client.clone()),
        selector,
        "endpointslices",
        relist.clone(),
        shutdown.clone(),
        strip_slice,
        move |s| c.slice_changed(s),
        listed(&changes),
    );
    let c = changes.clone();
    let node = spawn_reflector(
        Api::<Node>::all(client.clone()),
        watcher::Config::default().fields(&format!("metadata.name={node_name}")),
        "node",
        relist.clone(),
        shutdown.clone(),
        strip_managed_fields,
        move |_| c.config_changed(),
        listed(&changes),
    );
    let config_map = config_map.map(|(ns, name)| {
        let c = changes.clone();
        spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), ns),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            "kube-proxy configmap",
            relist.clone(),
            shutdown.clone(),
            strip_managed_fields,
            move |_| c.config_changed(),
            listed(&changes),
        )
    });
    Caches {
        services,
        slices,
        node,
        config_map,
    }
}
