//! WATCH: a chunked stream of `{"type": ..., "object": ...}` lines, with kube-apiserver's
//! resourceVersion semantics (unset and `0` start with the current state as ADDED events, a
//! given version replays from history, a compacted one gets a single 410 ERROR event),
//! selector transitions (an object that stops matching is DELETED for this watcher), bookmarks
//! and `timeoutSeconds`.

use crate::negotiate::Output;
use crate::read::{check_list_options, Filter};
use crate::render::{self, IncludeObject};
use crate::server::{Ctx, Shared};
use axum::body::Body;
use axum::http::{header, Response, StatusCode};
use bytes::Bytes;
use model::{ApiError, ResourceInfo};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// kube-apiserver sends a bookmark about once a minute.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);
/// Default watch length: kube-apiserver picks 30-60 minutes (`--min-request-timeout` 1800 s × [1,2)).
const DEFAULT_TIMEOUT_SECS: u64 = 1800;

struct Encoder {
    res: &'static ResourceInfo,
    output: Output,
    include: IncludeObject,
    columns_sent: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = match self.output {
            Output::Table { v1beta1 } => {
                let mut meta = Map::new();
                if let Some(rv) = model::meta::resource_version(obj) {
                    meta.insert("resourceVersion".into(), json!(rv));
                }
                let t = render::table(self.res, &[obj], meta, self.include, v1beta1, !self.columns_sent);
                self.columns_sent = true;
                t
            }
            Output::PartialMetadata => render::partial_metadata(obj),
            _ => obj.clone(),
        };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, revision: u64, initial_events_end: bool) -> Bytes {
        let mut meta = Map::new();
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
        if initial_events_end {
            meta.insert("annotations".into(), json!({"k8s.io/initial-events-end": "true"}));
        }
        let mut obj = json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta});
        // kube-apiserver serialises an empty object of the kind: Go's zero values show.
        if let (Some(m), Some(zero)) = (obj.as_object_mut(), zero_fields(self.res)) {
            m.extend(zero);
        }
        let mut line = serde_json::to_vec(&json!({"type": "BOOKMARK", "object": obj})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

/// The non-metadata fields of a kind's zero value, where they serialise to something.
fn zero_fields(res: &ResourceInfo) -> Option<Map<String, Value>> {
    let v = match res.plural {
        "services" | "ingresses" => json!({"spec": {}, "status": {"loadBalancer": {}}}),
        "namespaces" => json!({"spec": {}, "status": {}}),
        "pods" => json!({"spec": {"containers": null}, "status": {}}),
        "endpointslices" => json!({"addressType": "", "endpoints": null}),
        "leases" | "ingressclasses" => json!({"spec": {}}),
        "nodes" => json!({"spec": {}, "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "", "operatingSystem": "", "architecture": ""}}}),
        "events" => json!({"involvedObject": {}, "source": {}, "firstTimestamp": null, "lastTimestamp": null, "eventTime": null, "reportingComponent": "", "reportingInstance": ""}),
        _ => return None,
    };
    v.as_object().cloned()
}

fn error_event(e: &ApiError) -> Bytes {
    let mut status = e.to_status();
    if let Some(m) = status.as_object_mut() {
        m.shift_remove("details");
    }
    let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub async fn watch(state: &Shared, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    check_list_options(&ctx, true)?;
    let res = ctx.path.resource;
    let filter = Filter::from_query(&ctx)?;
    let prefix = res.namespace_prefix(ctx.path.namespace.as_deref());
    let rv = ctx.query.get("resourceVersion").unwrap_or("").to_string();
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    let send_initial = match ctx.query.get("sendInitialEvents") {
        Some(v) => v == "true",
        None => rv.is_empty() || rv == "0",
    };
    let initial_end_marker = bookmarks && (ctx.query.get("sendInitialEvents") == Some("true") || rv.is_empty());
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or_else(|| DEFAULT_TIMEOUT_SECS + rand::random::<u64>() % DEFAULT_TIMEOUT_SECS);
    let mut enc = Encoder { res, output: ctx.render.output, include: ctx.render.include_object, columns_sent: false };

    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(256);
    // Initial state and the watch from its revision, both before the response starts, so that
    // errors still get a proper status code.
    let mut initial: Vec<Bytes> = Vec::new();
    let from = if send_initial {
        let page = state.store.list(&prefix, None, None);
        for o in page.items.iter().map(|o| &o.value).filter(|o| filter.matches(o)) {
            initial.push(enc.event("ADDED", o));
        }
        if initial_end_marker {
            initial.push(enc.bookmark(page.revision, true));
        }
        Some(page.revision)
    } else if rv.is_empty() || rv == "0" {
        None
    } else {
        Some(rv.parse::<u64>().unwrap_or(0))
    };
    let stream = match state.store.watch(&prefix, from) {
        Ok(s) => s,
        Err(store::StoreError::Compacted { oldest_available, .. }) => {
            let e = ApiError::gone(format!("too old resource version: {rv} ({})", oldest_available.saturating_sub(1).max(1)));
            let _ = tx.try_send(Ok(error_event(&e)));
            drop(tx);
            return Ok(stream_response(rx));
        }
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };

    tokio::spawn(async move {
        let mut stream = stream;
        for b in initial {
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_INTERVAL, BOOKMARK_INTERVAL);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let line = enc.bookmark(stream.progress_revision(), false);
                    if tx.send(Ok(line)).await.is_err() { return; }
                }
                ev = futures::StreamExt::next(&mut stream) => {
                    let Some(ev) = ev else { return };
                    let ev = match ev {
                        Ok(ev) => ev,
                        Err(e) => {
                            let err = ApiError::gone(e.to_string());
                            let _ = tx.send(Ok(error_event(&err))).await;
                            return;
                        }
                    };
                    let now_matches = filter.matches(&ev.object.value);
                    let was_matching = ev.prev.as_ref().is_some_and(|p| filter.matches(&p.value));
                    let kind = match ev.kind {
                        store::EventType::Added if now_matches => "ADDED",
                        store::EventType::Modified if now_matches && was_matching => "MODIFIED",
                        store::EventType::Modified if now_matches => "ADDED",
                        store::EventType::Modified if was_matching => "DELETED",
                        store::EventType::Deleted if was_matching || now_matches => "DELETED",
                        _ => continue,
                    };
                    let line = enc.event(kind, &ev.object.value);
                    if tx.send(Ok(line)).await.is_err() { return; }
                }
            }
        }
    });
    Ok(stream_response(rx))
}

fn stream_response(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Response<Body> {
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    r.headers_mut().insert(header::CACHE_CONTROL, "no-cache, private".parse().unwrap());
    r
}
