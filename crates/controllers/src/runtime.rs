//! The I/O half: reflectors (watch + in-memory store) for Services, Pods, Endpoints,
//! EndpointSlices and Nodes; events mapped to Service keys on one work queue; workers that run
//! the pure reconcilers and write only the differences; a garbage collector for slices whose
//! owners are gone; and a periodic resync. Nothing is reconciled before every initial list
//! is complete.

use crate::index::{PodIndex, ServiceIndex, SliceIndex, StoreIndex};
use crate::queue::Queue;
use crate::slices::{NodeLookup, Plan, LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::trigger::TriggerTimeTracker;
use crate::{endpoints, mirroring, pods, slices, ControllersConfig};
use futures::{StreamExt, TryStreamExt};

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A Service (and its Endpoints, slices) key: namespace and name.
pub type Key = (String, String);

/// Counters, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    pub syncs: AtomicU64,
    pub writes: AtomicU64,
    pub errors: AtomicU64,
}

/// Something we wrote that the stores have not shown yet. Reconciling on a store that misses
/// our own last write would duplicate a create or lose an update, so such a key waits for the
/// watch event (upstream's EndpointSliceTracker and staleEndpointsTracker).
#[derive(Debug, Clone)]
enum Expect {
    SliceExists(String),
    SliceNotRv(String, String),
    SliceGone(String, String),
    EndpointsExists,
    EndpointsNotRv(String),
    EndpointsGone(String),
}

/// Expectations older than this are dropped: someone else changed the object again, and the
/// watch will tell us about that.
const EXPECTATION_TTL: Duration = Duration::from_secs(5);
/// How soon a key that waits for its own write is looked at again if no event comes first.
const STALE_RETRY: Duration = Duration::from_millis(500);

pub(crate) struct Ctx {
    client: Client,
    cfg: ControllersConfig,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    /// Each index is updated under its own lock together with its store (see [`informer`]),
    /// so a lookup under that lock sees the two agree.
    service_index: Arc<Mutex<ServiceIndex>>,
    pod_index: Arc<Mutex<PodIndex>>,
    slice_index: Arc<Mutex<SliceIndex>>,
    pub(crate) queue: Arc<Queue<Key>>,
    /// Slices (namespace, name) whose owners may be gone.
    gc: Arc<Queue<Key>>,
    endpoints_trigger: TriggerTimeTracker,
    slices_trigger: TriggerTimeTracker,
    expect: Mutex<HashMap<Key, Vec<(Expect, Instant)>>>,
    failures: Mutex<HashMap<Key, u32>>,
    pub(crate) stats: Arc<Stats>,
    /// Zones' CPU shares and the hints given to `topology-mode: Auto` Services.
    topology: crate::topology::TopologyCache,
    recorder: crate::events::Recorder,
}

fn key_of<K: Resource>(o: &K) -> Key {
    (
        o.meta().namespace.clone().unwrap_or_default(),
        o.meta().name.clone().unwrap_or_default(),
    )
}

fn oref<K: Resource<DynamicType = ()>>(ns: &str, name: &str) -> ObjectRef<K> {
    ObjectRef::new(name).within(ns)
}

/// Runs one reflector: applies watch events to the store and tells `on_change` about each
/// change with the object as it was before (so a pod's old labels are known) and after;
/// `on_relist` runs after every complete (re)list.
pub(crate) async fn informer<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    on_change: impl Fn(Option<Arc<K>>, Option<&K>) + Send,
    on_relist: impl Fn() + Send,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    informer_indexed(api, writer, Arc::new(Mutex::new(())), on_change, on_relist).await
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`informer`] that also keeps `index` exactly in step with the store: each event goes to
/// both under the index's lock, and after a (re)list — where kube-rs swaps the whole store at
/// `InitDone` — the index is rebuilt from the new store, the only whole-store pass.
pub(crate) async fn informer_indexed<K, I>(
    api: Api<K>,
    mut writer: reflector::store::Writer<K>,
    index: Arc<Mutex<I>>,
    on_change: impl Fn(Option<Arc<K>>, Option<&K>) + Send,
    on_relist: impl Fn() + Send,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    I: StoreIndex<K>,
{
    let store = writer.as_reader();
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        match stream.try_next().await {
            Ok(Some(ev)) => match &ev {
                Event::Apply(o) => {
                    let old = {
                        let mut ix = lock(&index);
                        let old = store.get(&ObjectRef::from_obj(o));
                        writer.apply_watcher_event(&ev);
                        ix.apply(o);
                        old
                    };
                    on_change(old, Some(o));
                }
                Event::Delete(o) => {
                    let old = {
                        let mut ix = lock(&index);
                        let old = store
                            .get(&ObjectRef::from_obj(o))
                            .unwrap_or_else(|| Arc::new(o.clone()));
                        writer.apply_watcher_event(&ev);
                        ix.delete(o);
                        old
                    };
                    on_change(Some(old), None);
                }
                Event::InitDone => {
                    {
                        let mut ix = lock(&index);
                        writer.apply_watcher_event(&ev);
                        let all = store.state();
                        ix.rebuild(all.iter().map(Arc::as_ref));
                    }
                    on_relist();
                }
                // Init and InitApply only fill kube-rs's buffer for the next store; the store
                // (and so the index) changes at InitDone.
                _ => writer.apply_watcher_event(&ev),
            },
            Ok(None) => return,
            Err(e) => {
                // The backoff retries; the next list brings the store up to date.
                tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed");
            }
        }
    }
}

impl Ctx {
    fn service(&self, key: &Key) -> Option<Arc<Service>> {
        self.services.get(&oref(&key.0, &key.1))
    }

    /// Services in `ns` whose selector matches `labels`.
    fn services_selecting(
        &self,
        ns: &str,
        labels: Option<&std::collections::BTreeMap<String, String>>,
        out: &mut BTreeSet<Key>,
    ) {
        let ix = lock(&self.service_index);
        for name in ix.candidates(ns, labels) {
            let Some(s) = self.services.get(&oref(ns, &name)) else {
                continue;
            };
            if let Some(sel) = pods::service_selector(&s) {
                if pods::selector_matches(sel, labels) {
                    out.insert(key_of(s.as_ref()));
                }
            }
        }
    }

    fn on_pod(&self, old: Option<Arc<Pod>>, new: Option<&Pod>) {
        if let (Some(o), Some(n)) = (&old, new) {
            if o.metadata.resource_version == n.metadata.resource_version {
                return;
            }
        }
        let mut keys = BTreeSet::new();
        for p in old.as_deref().into_iter().chain(new) {
            self.services_selecting(
                pods::namespace_of(&p.metadata),
                p.metadata.labels.as_ref(),
                &mut keys,
            );
        }
        for k in keys {
            self.queue.add(k);
        }
    }

    fn on_slice(&self, slice: &EndpointSlice) {
        let labels = slice.metadata.labels.as_ref();
        let managed = labels
            .and_then(|l| l.get(LABEL_MANAGED_BY))
            .map(String::as_str);
        if matches!(
            managed,
            Some(slices::CONTROLLER_NAME | mirroring::CONTROLLER_NAME)
        ) {
            if let Some(svc) = labels.and_then(|l| l.get(LABEL_SERVICE_NAME)) {
                self.queue.add((
                    slice.metadata.namespace.clone().unwrap_or_default(),
                    svc.clone(),
                ));
            }
        }
        if self.owners_missing_from_stores(slice) {
            self.gc.add(key_of(slice));
        }
    }

    /// Upstream's `checkNodeTopologyDistribution`: the Nodes' zone shares again, and the
    /// Services whose hints no longer fit them are reconciled. When the shares changed, so is
    /// every `topology-mode: Auto` Service (upstream waits for another event to hint one that
    /// had to go without hints, e.g. before its Nodes reported their CPU).
    fn check_node_topology(&self) {
        let nodes = self.nodes.state();
        if self.topology.set_nodes(nodes.iter().map(Arc::as_ref)) {
            for s in self.services.state() {
                if crate::hints::topology_mode_auto(&s) {
                    self.queue.add(key_of(s.as_ref()));
                }
            }
        }
        for key in self.topology.overloaded_services() {
            if let Some((ns, name)) = key.split_once('/') {
                self.queue.add((ns.to_string(), name.to_string()));
            }
        }
    }

    fn enqueue_all_services(&self) {
        for s in self.services.state() {
            self.queue.add(key_of(s.as_ref()));
        }
    }

    /// After a restart, Endpoints we made for Services deleted meanwhile (upstream's
    /// `checkLeftoverEndpoints`), and Endpoints that may need mirroring.
    fn enqueue_all_endpoints(&self) {
        for e in self.endpoints.state() {
            self.queue.add(key_of(e.as_ref()));
        }
    }

    /// At start-up, after a re-list and on resync (`on_slice` hands slices whose owners are
    /// gone to the garbage collector).
    fn enqueue_all_slices(&self) {
        for s in self.slices.state() {
            self.on_slice(&s);
        }
    }

    /// An owner (`Service` or `Endpoints`) is gone: its slices go to the garbage collector,
    /// which deletes those whose every owner is gone.
    fn collect_owned_by(&self, kind: &str, owner: &Key) {
        let names = lock(&self.slice_index).owned_by(&owner.0, kind, &owner.1);
        for name in names {
            self.gc.add((owner.0.clone(), name));
        }
    }

    fn expect(&self, key: &Key, e: Expect) {
        self.expect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .push((e, Instant::now()));
    }

    /// Whether the stores still miss one of our writes for `key`. Met expectations are dropped.
    fn is_stale(&self, key: &Key) -> bool {
        let mut all = self.expect.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = all.get_mut(key) else {
            return false;
        };
        let ns = &key.0;
        list.retain(|(e, at)| {
            if at.elapsed() > EXPECTATION_TTL {
                return false;
            }
            let met = match e {
                Expect::SliceExists(n) => self.slices.get(&oref(ns, n)).is_some(),
                Expect::SliceNotRv(n, rv) => self
                    .slices
                    .get(&oref(ns, n))
                    .is_none_or(|s| s.metadata.resource_version.as_ref() != Some(rv)),
                Expect::SliceGone(n, uid) => self
                    .slices
                    .get(&oref(ns, n))
                    .is_none_or(|s| s.metadata.uid.as_ref() != Some(uid)),
                Expect::EndpointsExists => self.endpoints.get(&oref(ns, &key.1)).is_some(),
                Expect::EndpointsNotRv(rv) => self
                    .endpoints
                    .get(&oref(ns, &key.1))
                    .is_none_or(|s| s.metadata.resource_version.as_ref() != Some(rv)),
                Expect::EndpointsGone(uid) => self
                    .endpoints
                    .get(&oref(ns, &key.1))
                    .is_none_or(|s| s.metadata.uid.as_ref() != Some(uid)),
            };
            !met
        });
        let stale = !list.is_empty();
        if !stale {
            all.remove(key);
        }
        stale
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            dry_run: false,
            field_manager: Some(self.cfg.field_manager.clone()),
        }
    }

    fn selected_pods(&self, svc: &Service) -> Vec<Arc<Pod>> {
        let Some(sel) = pods::service_selector(svc) else {
            return Vec::new();
        };
        let ns = pods::namespace_of(&svc.metadata);
        let ix = lock(&self.pod_index);
        ix.candidates(ns, sel)
            .iter()
            .filter_map(|name| self.pods.get(&oref(ns, name)))
            .filter(|p| pods::selector_matches(sel, p.metadata.labels.as_ref()))
            .collect()
    }

    fn slices_managed_by(&self, key: &Key, manager: &str) -> Vec<Arc<EndpointSlice>> {
        let ix = lock(&self.slice_index);
        ix.managed_by(&key.0, &key.1, manager)
            .iter()
            .filter_map(|name| self.slices.get(&oref(&key.0, name)))
            .collect()
    }

    fn node_lookup(&self, name: &str) -> NodeLookup {
        match self.nodes.get(&ObjectRef::new(name)) {
            Some(n) => NodeLookup::Known(
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(slices::ZONE_LABEL))
                    .cloned(),
            ),
            None => NodeLookup::Unknown,
        }
    }

    async fn sync_endpoints(&self, key: &Key, svc: Option<&Service>) -> kube::Result<()> {
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), &key.0);
        let current = self.endpoints.get(&oref(&key.0, &key.1));
        let Some(svc) = svc else {
            // The Service is gone: so are its Endpoints (upstream deletes them whoever wrote
            // them; at start-up only the ones we manage are looked at).
            self.endpoints_trigger
                .forget(&format!("{}/{}", key.0, key.1));
            if let Some(cur) = current {
                let uid = cur.metadata.uid.clone().unwrap_or_default();
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&key.1, &dp).await {
                    Ok(_) => {
                        self.stats.writes.fetch_add(1, Ordering::Relaxed);
                        self.expect(key, Expect::EndpointsGone(uid));
                    }
                    Err(e) if is_code(&e, 404) || is_code(&e, 409) => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(());
        };
        if pods::is_external_name(svc) || pods::service_selector(svc).is_none() {
            return Ok(());
        }
        let selected = self.selected_pods(svc);
        let refs: Vec<&Pod> = selected.iter().map(Arc::as_ref).collect();
        let t = self
            .endpoints_trigger
            .compute(&format!("{}/{}", key.0, key.1), svc, &refs);
        match endpoints::reconcile(svc, &refs, current.as_deref(), t) {
            None => Ok(()),
            Some(endpoints::Write::Create(ep)) => {
                match api.create(&self.post_params(), &ep).await {
                    Ok(_) => {
                        self.stats.writes.fetch_add(1, Ordering::Relaxed);
                        self.expect(key, Expect::EndpointsExists);
                        Ok(())
                    }
                    // A terminating namespace refuses new objects: nothing to do.
                    Err(e) if is_code(&e, 403) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Some(endpoints::Write::Update(ep)) => {
                let old_rv = ep.metadata.resource_version.clone().unwrap_or_default();
                api.replace(&key.1, &self.post_params(), &ep).await?;
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                self.expect(key, Expect::EndpointsNotRv(old_rv));
                Ok(())
            }
        }
    }

    async fn sync_slices(&self, key: &Key, svc: Option<&Service>) -> kube::Result<()> {
        let Some(svc) = svc else {
            // Slices of a deleted Service go with it through the garbage collector.
            self.slices_trigger.forget(&format!("{}/{}", key.0, key.1));
            for family in ["IPv4", "IPv6"] {
                self.topology
                    .remove_hints(&format!("{}/{}", key.0, key.1), family);
            }
            return Ok(());
        };
        // Upstream leaves slices alone once a Service loses its selector or becomes an
        // ExternalName (they stay behind, as in reference 12).
        if pods::is_external_name(svc) || pods::service_selector(svc).is_none() {
            return Ok(());
        }
        let selected = self.selected_pods(svc);
        let refs: Vec<&Pod> = selected.iter().map(Arc::as_ref).collect();
        let existing = self.slices_managed_by(key, slices::CONTROLLER_NAME);
        let existing_refs: Vec<&EndpointSlice> = existing.iter().map(Arc::as_ref).collect();
        let t = self
            .slices_trigger
            .compute(&format!("{}/{}", key.0, key.1), svc, &refs);
        let opts = slices::Options {
            max_endpoints_per_slice: self.cfg.max_endpoints_per_slice,
            require_nodes: self.cfg.require_nodes,
        };
        let (plan, events) = slices::reconcile_with_topology(
            svc,
            &refs,
            &existing_refs,
            &|n| self.node_lookup(n),
            &opts,
            t,
            Some(&self.topology),
        );
        let written = self.apply_slice_plan(key, plan).await;
        for e in events {
            self.recorder
                .record(svc, e.type_, e.reason, &e.message)
                .await;
        }
        written
    }

    async fn sync_mirroring(&self, key: &Key, svc: Option<&Service>) -> kube::Result<()> {
        let existing = self.slices_managed_by(key, mirroring::CONTROLLER_NAME);
        let ep = self.endpoints.get(&oref(&key.0, &key.1));
        let mirror = mirroring::should_mirror(svc, ep.as_deref());
        if !mirror && existing.is_empty() {
            return Ok(());
        }
        let existing_refs: Vec<&EndpointSlice> = existing.iter().map(Arc::as_ref).collect();
        let plan = mirroring::reconcile(
            if mirror { ep.as_deref() } else { None },
            &existing_refs,
            self.cfg.mirroring_max_endpoints_per_slice,
        );
        self.apply_slice_plan(key, plan).await
    }

    /// Creates, then updates, then deletes, as upstream's `finalize`; the writes of one phase
    /// go out concurrently.
    async fn apply_slice_plan(&self, key: &Key, plan: Plan) -> kube::Result<()> {
        if plan.is_empty() {
            return Ok(());
        }
        let path = EndpointSlice::url_path(&(), Some(&key.0));
        let request = kube::core::Request::new(path);
        let pp = self.post_params();
        let creates = plan.create.iter().map(|s| {
            let body = serde_json::to_vec(&slices::to_wire(s)).unwrap_or_default();
            let req = request.create(&pp, body);
            async move {
                let req = req.map_err(kube::Error::BuildRequest)?;
                match self.client.request::<EndpointSlice>(req).await {
                    Ok(created) => {
                        self.stats.writes.fetch_add(1, Ordering::Relaxed);
                        self.expect(
                            key,
                            Expect::SliceExists(created.metadata.name.unwrap_or_default()),
                        );
                        Ok(())
                    }
                    Err(e) if is_code(&e, 403) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        });
        futures::future::try_join_all(creates).await?;
        let updates = plan.update.iter().map(|s| {
            let name = s.metadata.name.clone().unwrap_or_default();
            let old_rv = s.metadata.resource_version.clone().unwrap_or_default();
            let body = serde_json::to_vec(&slices::to_wire(s)).unwrap_or_default();
            let req = request.replace(&name, &pp, body);
            async move {
                let req = req.map_err(kube::Error::BuildRequest)?;
                self.client.request::<EndpointSlice>(req).await?;
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                self.expect(key, Expect::SliceNotRv(name, old_rv));
                Ok::<(), kube::Error>(())
            }
        });
        futures::future::try_join_all(updates).await?;
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.0);
        let deletes = plan.delete.iter().map(|s| {
            let name = s.metadata.name.clone().unwrap_or_default();
            let uid = s.metadata.uid.clone().unwrap_or_default();
            let api = api.clone();
            async move {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&name, &dp).await {
                    Ok(_) => {
                        self.stats.writes.fetch_add(1, Ordering::Relaxed);
                        self.expect(key, Expect::SliceGone(name, uid));
                        Ok(())
                    }
                    Err(e) if is_code(&e, 404) || is_code(&e, 409) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        });
        futures::future::try_join_all(deletes).await?;
        Ok(())
    }

    /// One key: the endpoints, EndpointSlice and mirroring controllers, side by side.
    async fn reconcile(&self, key: &Key) -> Result<bool, kube::Error> {
        if self.is_stale(key) {
            return Ok(false);
        }
        self.stats.syncs.fetch_add(1, Ordering::Relaxed);
        let svc = self.service(key);
        let svc = svc.as_deref();
        let (a, b, c) = tokio::join!(
            async {
                if self.cfg.endpoints {
                    self.sync_endpoints(key, svc).await
                } else {
                    Ok(())
                }
            },
            async {
                if self.cfg.endpoint_slices {
                    self.sync_slices(key, svc).await
                } else {
                    Ok(())
                }
            },
            async {
                if self.cfg.mirroring {
                    self.sync_mirroring(key, svc).await
                } else {
                    Ok(())
                }
            }
        );
        a.and(b).and(c).map(|_| true)
    }

    fn owners_missing_from_stores(&self, slice: &EndpointSlice) -> bool {
        let owners = slice.metadata.owner_references.as_deref().unwrap_or(&[]);
        let ns = slice.metadata.namespace.as_deref().unwrap_or("");
        !owners.is_empty()
            && owners
                .iter()
                .all(|o| match (o.api_version.as_str(), o.kind.as_str()) {
                    ("v1", "Service") => self
                        .services
                        .get(&oref(ns, &o.name))
                        .is_none_or(|s| s.metadata.uid.as_deref() != Some(o.uid.as_str())),
                    ("v1", "Endpoints") => self
                        .endpoints
                        .get(&oref(ns, &o.name))
                        .is_none_or(|s| s.metadata.uid.as_deref() != Some(o.uid.as_str())),
                    _ => false,
                })
    }

    /// Whether an owner still exists, asking the API server (the stores may lag behind a
    /// Service that was just created).
    async fn owner_exists(
        &self,
        ns: &str,
        o: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> kube::Result<bool> {
        let uid = match (o.api_version.as_str(), o.kind.as_str()) {
            ("v1", "Service") => Api::<Service>::namespaced(self.client.clone(), ns)
                .get_opt(&o.name)
                .await?
                .and_then(|s| s.metadata.uid),
            ("v1", "Endpoints") => Api::<Endpoints>::namespaced(self.client.clone(), ns)
                .get_opt(&o.name)
                .await?
                .and_then(|s| s.metadata.uid),
            _ => return Ok(true),
        };
        Ok(uid.as_deref() == Some(o.uid.as_str()))
    }

    /// The garbage collector for one slice: deleted if its every owner is gone.
    async fn collect_garbage(&self, slice: &Key) -> kube::Result<()> {
        let ns = slice.0.as_str();
        let candidates = self
            .slices
            .get(&oref(ns, &slice.1))
            .filter(|s| self.owners_missing_from_stores(s));
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        if let Some(s) = candidates {
            let mut alive = false;
            for o in s.metadata.owner_references.iter().flatten() {
                if self.owner_exists(ns, o).await? {
                    alive = true;
                    break;
                }
            }
            if alive {
                return Ok(());
            }
            let name = s.metadata.name.clone().unwrap_or_default();
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: s.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&name, &dp).await {
                Ok(_) => {
                    self.stats.writes.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(namespace = ns, slice = %name, "garbage-collected an EndpointSlice whose owners are gone");
                }
                Err(e) if is_code(&e, 404) || is_code(&e, 409) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn backoff(&self, key: &Key) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        // 5 ms doubling to 10 s (upstream: 5 ms to 1000 s).
        Duration::from_millis(5u64.saturating_mul(1 << (*n).min(11))).min(Duration::from_secs(10))
    }

    fn forget_failures(&self, key: &Key) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

pub(crate) fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

async fn worker(ctx: Arc<Ctx>) {
    while let Some(key) = ctx.queue.get().await {
        match ctx.reconcile(&key).await {
            Ok(true) => ctx.forget_failures(&key),
            Ok(false) => ctx.queue.add_after(key.clone(), STALE_RETRY),
            Err(e) => {
                ctx.stats.errors.fetch_add(1, Ordering::Relaxed);
                let delay = ctx.backoff(&key);
                // A conflict means our store was behind: the watch event is on its way.
                if is_code(&e, 409) {
                    tracing::debug!(namespace = %key.0, service = %key.1, error = %e, "sync conflict, retrying");
                } else {
                    tracing::warn!(namespace = %key.0, service = %key.1, error = %e, ?delay, "sync failed, retrying");
                }
                ctx.queue.add_after(key.clone(), delay);
            }
        }
        ctx.queue.done(&key);
    }
}

async fn gc_worker(ctx: Arc<Ctx>) {
    while let Some(slice) = ctx.gc.get().await {
        if let Err(e) = ctx.collect_garbage(&slice).await {
            tracing::warn!(namespace = %slice.0, endpointslice = %slice.1, error = %e, "garbage collection failed, retrying");
            ctx.gc.add_after(slice.clone(), Duration::from_secs(1));
        }
        ctx.gc.done(&slice);
    }
}

#[allow(clippy::too_many_arguments)]
fn spawn_informer<K, I>(
    tasks: &mut tokio::task::JoinSet<()>,
    client: &Client,
    ctx: &Arc<Ctx>,
    writer: reflector::store::Writer<K>,
    index: Arc<Mutex<I>>,
    on_change: fn(&Ctx, Option<Arc<K>>, Option<&K>),
    on_relist: fn(&Ctx),
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    I: StoreIndex<K> + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (c1, c2) = (Arc::downgrade(ctx), Arc::downgrade(ctx));
    tasks.spawn(informer_indexed(
        api,
        writer,
        index,
        move |old, new| {
            if let Some(c) = c1.upgrade() {
                on_change(&c, old, new)
            }
        },
        move || {
            if let Some(c) = c2.upgrade() {
                on_relist(&c)
            }
        },
    ));
}

/// A running set of controllers.
pub struct Controllers {
    ctx: Arc<Ctx>,
    tasks: tokio::task::JoinSet<()>,
    /// The serviceaccount controller's queue (namespaces), when it runs.
    service_accounts: Option<Arc<Queue<String>>>,
}

impl Controllers {
    /// Starts the reflectors at once and the workers once every initial list is complete.
    pub fn start(client: Client, cfg: ControllersConfig) -> Controllers {
        let (services, w_services) = reflector::store::<Service>();
        let (pods, w_pods) = reflector::store::<Pod>();
        let (endpoints, w_endpoints) = reflector::store::<Endpoints>();
        let (slices, w_slices) = reflector::store::<EndpointSlice>();
        let (nodes, w_nodes) = reflector::store::<Node>();
        let ctx = Arc::new(Ctx {
            client: client.clone(),
            cfg,
            services,
            pods,
            endpoints,
            slices,
            nodes,
            service_index: Arc::default(),
            pod_index: Arc::default(),
            slice_index: Arc::default(),
            queue: Queue::new(),
            gc: Queue::new(),
            endpoints_trigger: TriggerTimeTracker::new(),
            slices_trigger: TriggerTimeTracker::new(),
            expect: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            stats: Arc::new(Stats::default()),
            topology: crate::topology::TopologyCache::new(),
            recorder: crate::events::Recorder::new(client.clone(), "endpoint-slice-controller"),
        });
        let mut tasks = tokio::task::JoinSet::new();
        spawn_informer(
            &mut tasks,
            &client,
            &ctx,
            w_services,
            ctx.service_index.clone(),
            |c, old, new| {
                let obj = new.cloned().map(Arc::new).or(old);
                if let Some(s) = obj {
                    let key = key_of(s.as_ref());
                    if new.is_none() {
                        c.collect_owned_by("Service", &key);
                    }
                    c.queue.add(key);
                }
            },
            |c| c.enqueue_all_services(),
        );
        spawn_informer(
            &mut tasks,
            &client,
            &ctx,
            w_pods,
            ctx.pod_index.clone(),
            |c, old, new| c.on_pod(old, new),
            |c| c.enqueue_all_services(),
        );
        spawn_informer(
            &mut tasks,
            &client,
            &ctx,
            w_endpoints,
            Arc::new(Mutex::new(())),
            |c, old, new| {
                let obj = new.cloned().map(Arc::new).or(old);
                if let Some(e) = obj {
                    let key = key_of(e.as_ref());
                    if new.is_none() {
                        c.collect_owned_by("Endpoints", &key);
                    }
                    c.queue.add(key);
                }
            },
            |c| c.enqueue_all_endpoints(),
        );
        spawn_informer(
            &mut tasks,
            &client,
            &ctx,
            w_slices,
            ctx.slice_index.clone(),
            |c, old, new| {
                if let Some(s) = new.or(old.as_deref()) {
                    c.on_slice(s);
                }
            },
            |c| c.enqueue_all_slices(),
        );
        spawn_informer(
            &mut tasks,
            &client,
            &ctx,
            w_nodes,
            Arc::new(Mutex::new(())),
            |c, old, new| {
                // A node's zone is copied into endpoints: a change touches every Service.
                let zone = |n: Option<&Node>| {
                    n.and_then(|n| n.metadata.labels.as_ref())
                        .and_then(|l| l.get(slices::ZONE_LABEL))
                        .cloned()
                };
                if crate::topology::node_changed(old.as_deref(), new) {
                    c.check_node_topology();
                }
                if zone(old.as_deref()) != zone(new) || old.is_none() || new.is_none() {
                    c.enqueue_all_services();
                }
            },
            |c| {
                c.check_node_topology();
                c.enqueue_all_services()
            },
        );
        let service_accounts = ctx.cfg.service_accounts.then(|| {
            crate::serviceaccounts::start(
                &mut tasks,
                &client,
                &ctx.cfg.field_manager,
                ctx.stats.clone(),
            )
        });
        let starter = ctx.clone();
        tasks.spawn(async move {
            let ctx = starter;
            // Never act on a partial picture: wait for every initial list.
            let ready = futures::future::join5(
                ctx.services.wait_until_ready(),
                ctx.pods.wait_until_ready(),
                ctx.endpoints.wait_until_ready(),
                ctx.slices.wait_until_ready(),
                ctx.nodes.wait_until_ready(),
            )
            .await;
            if ready.0.is_err()
                || ready.1.is_err()
                || ready.2.is_err()
                || ready.3.is_err()
                || ready.4.is_err()
            {
                return;
            }
            ctx.check_node_topology();
            tracing::info!(
                services = ctx.services.state().len(),
                pods = ctx.pods.state().len(),
                endpointslices = ctx.slices.state().len(),
                "controllers synced their caches; starting workers"
            );
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..ctx.cfg.workers.max(1) {
                workers.spawn(worker(ctx.clone()));
            }
            workers.spawn(gc_worker(ctx.clone()));
            let resync = ctx.cfg.resync_period;
            let periodic = ctx.clone();
            workers.spawn(async move {
                if resync.is_zero() {
                    return;
                }
                let mut tick =
                    tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
                loop {
                    tick.tick().await;
                    // The fallback for a missed event: look at everything again; only real
                    // differences are written.
                    periodic.enqueue_all_services();
                    periodic.enqueue_all_endpoints();
                    periodic.enqueue_all_slices();
                }
            });
            while workers.join_next().await.is_some() {}
        });
        Controllers {
            ctx,
            tasks,
            service_accounts,
        }
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.ctx.stats.clone()
    }

    /// Whether the work queue is empty and no sync is running (for tests).
    pub fn is_idle(&self) -> bool {
        self.ctx.queue.is_idle()
            && self.ctx.gc.is_idle()
            && self.service_accounts.as_ref().is_none_or(|q| q.is_idle())
    }

    /// Stops the workers and the watches.
    pub async fn shutdown(mut self) {
        self.ctx.queue.shut_down();
        self.ctx.gc.shut_down();
        if let Some(q) = &self.service_accounts {
            q.shut_down();
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}
