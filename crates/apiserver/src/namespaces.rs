//! The namespace finalizer (kube-controller-manager's namespace controller, built in): once a
//! namespace is terminating, delete everything in it, wait until it is gone (objects with
//! finalizers take their time), then clear `spec.finalizers` and remove the namespace.

use crate::read::key_of;
use crate::server::Shared;
use model::{meta, registry::RESOURCES};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// Runs until the channel closes. Terminating namespaces found at start are finished too.
pub async fn run(state: Shared, mut rx: mpsc::UnboundedReceiver<String>) {
    let ns_res = model::lookup("", "v1", "namespaces").unwrap();
    for ns in state.store.list(&ns_res.key_prefix(), None, None).items.into_iter().map(|o| o.value) {
        if meta::deletion_timestamp(&ns).is_some() {
            spawn_finalize(state.clone(), meta::name(&ns).to_string());
        }
    }
    while let Some(name) = rx.recv().await {
        spawn_finalize(state.clone(), name);
    }
}

/// kube-controller-manager's namespace controller takes a moment (informer and discovery
/// resync) before it empties a namespace; clients rely on seeing `Terminating` in between.
const FINALIZE_AFTER: Duration = Duration::from_millis(1500);

fn spawn_finalize(state: Shared, name: String) {
    tokio::spawn(async move {
        tokio::time::sleep(FINALIZE_AFTER).await;
        let mut delay = Duration::from_millis(50);
        loop {
            match finalize(&state, &name).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(namespace = %name, error = %e, "namespace cleanup failed; retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    });
}

/// One pass; `Ok(true)` when the namespace is gone.
async fn finalize(state: &Shared, name: &str) -> Result<bool, model::ApiError> {
    let ns_res = model::lookup("", "v1", "namespaces").unwrap();
    let mut remaining = 0usize;
    for res in RESOURCES.iter().filter(|r| r.namespaced) {
        let items: Vec<_> = state.store.list(&res.namespace_prefix(Some(name)), None, None).items.into_iter().map(|o| o.value).collect();
        remaining += items.len();
        for obj in items {
            // Pods go at once (grace period 0), also those already terminating: without a
            // kubelet nobody would end them sooner than their grace period.
            if meta::deletion_timestamp(&obj).is_some() && res.plural != "pods" {
                continue;
            }
            match crate::write::delete_one(state, res, &obj, false, Some(0)).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        // Check again: immediate deletes are done, finalizers may still hold some objects.
        let left: usize = RESOURCES
            .iter()
            .filter(|r| r.namespaced)
            .map(|r| state.store.list(&r.namespace_prefix(Some(name)), None, None).items.len())
            .sum();
        if left > 0 {
            return Ok(false);
        }
    }
    let key = ns_res.key(None, name);
    let Some(ns) = state.store.get(&key).map(|o| o.value) else { return Ok(true) };
    let rev = meta::resource_version(&ns).and_then(|r| r.parse().ok());
    if meta::finalizers(&ns).is_empty() {
        match state.store.delete(&key, rev).await {
            Ok(_) | Err(store::StoreError::NotFound { .. }) => Ok(true),
            Err(store::StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(model::ApiError::internal(e.to_string())),
        }
    } else {
        // Someone else's finalizer in metadata.finalizers: clear ours and wait for them.
        let mut cleared: Value = ns.as_ref().clone();
        if let Some(spec) = cleared.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("finalizers".into(), json!([]));
        }
        let _ = state.store.update(&key_of(ns_res, &ns), cleared, rev).await;
        Ok(false)
    }
}
