//! The DNS server's own reflectors over Services and EndpointSlices (kube-rs, so it runs
//! against any API server). Every change wakes the compiler, which waits a few milliseconds
//! for the rest of a burst, compiles a new `Zone` from the stores and swaps it in. When the
//! API server goes away the watchers retry with backoff and the last zone keeps being served.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::server::Shared;
use crate::zone::{Zone, ZoneConfig};

/// How long a burst of changes may keep arriving before the zone is recompiled: short next
/// to the 1 s a change may take to be answered, long enough to fold a rollout's events.
const COALESCE: Duration = Duration::from_millis(20);

/// Drops what the zone never reads. These stores are copies next to the proxy's, and at 10k
/// Services managedFields alone were a large part of the agent's memory.
fn strip_meta<K: Resource>(o: &mut K) {
    let meta = o.meta_mut();
    meta.managed_fields = None;
    meta.owner_references = None;
}

fn strip_slice(s: &mut EndpointSlice) {
    strip_meta(s);
    for ep in &mut s.endpoints {
        ep.target_ref = None;
        ep.hints = None;
        ep.deprecated_topology = None;
    }
}

async fn reflect<K>(
    api: Api<K>,
    mut writer: reflector::store::Writer<K>,
    strip: fn(&mut K),
    changed: Arc<Notify>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(strip)
        .boxed();
    loop {
        match stream.try_next().await {
            Ok(Some(ev)) => {
                writer.apply_watcher_event(&ev);
                changed.notify_one();
            }
            Ok(None) => return,
            Err(e) => {
                // The backoff retries; until then the last zone stays in place.
                tracing::warn!(kind = %K::kind(&()), error = %e, "dns watch failed");
            }
        }
    }
}

/// Watches and recompiles until the task is dropped.
pub async fn run(client: kube::Client, cfg: ZoneConfig, shared: Arc<Shared>) {
    let (services, w_services) = reflector::store::<Service>();
    let (slices, w_slices) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(Notify::new());
    let a = tokio::spawn(reflect(
        Api::<Service>::all(client.clone()),
        w_services,
        strip_meta,
        changed.clone(),
    ));
    let b = tokio::spawn(reflect(
        Api::<EndpointSlice>::all(client),
        w_slices,
        strip_slice,
        changed.clone(),
    ));
    let _abort = AbortOnDrop(vec![a, b]);
    // Nothing is compiled before both first lists are complete: a half-listed cluster would
    // answer NXDOMAIN for names that exist.
    let _ = tokio::join!(services.wait_until_ready(), slices.wait_until_ready());
    loop {
        compile(&cfg, &services, &slices, &shared);
        changed.notified().await;
        tokio::time::sleep(COALESCE).await;
    }
}

fn compile(
    cfg: &ZoneConfig,
    services: &Store<Service>,
    slices: &Store<EndpointSlice>,
    shared: &Shared,
) {
    let started = Instant::now();
    let svcs = services.state();
    let sls = slices.state();
    let zone = Zone::build(
        cfg,
        svcs.iter().map(|s| s.as_ref()),
        sls.iter().map(|s| s.as_ref()),
    );
    let (names, count) = (zone.len(), zone.services);
    shared.zone.store(Arc::new(zone));
    shared.metrics.zone_names.set(names as i64);
    shared.metrics.zone_builds.inc();
    tracing::debug!(services = count, names, took = ?started.elapsed(), "dns zone compiled");
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}
