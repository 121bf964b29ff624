//! core/v1 Events about Services, written as client-go's legacy recorder writes them for
//! kube-controller-manager (`source.component: endpoint-slice-controller`, name
//! `<service>.<unix nanos in hex>`), with its correlator's two habits: the same Event again is
//! a count increment on the first one, and each Service may burst 25 Events, then one per five
//! minutes (the EndpointSlice controller repeats its topology Events on every sync).

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// client-go's spam filter: a burst of 25, refilled at one token per 300 s.
const BURST: f64 = 25.0;
const REFILL_PER_SEC: f64 = 1.0 / 300.0;
/// Remembered Events and buckets are forgotten past this many (a new Event object at worst).
const MAX_REMEMBERED: usize = 4096;

type EventId = (String, String, String);

pub(crate) struct Recorder {
    client: Client,
    component: String,
    /// (service uid, reason, message) -> (Event name, count).
    seen: Mutex<HashMap<EventId, (String, i32)>>,
    /// service uid -> (tokens, last refill).
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Recorder {
    pub(crate) fn new(client: Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.into(),
            seen: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn allow(&self, uid: &str) -> bool {
        let mut b = lock(&self.buckets);
        if b.len() > MAX_REMEMBERED {
            b.clear();
        }
        let now = Instant::now();
        let (tokens, last) = b.entry(uid.to_string()).or_insert((BURST, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * REFILL_PER_SEC).min(BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Records an Event about `svc`; failures are logged, never returned (as client-go's
    /// asynchronous broadcaster).
    pub(crate) async fn record(&self, svc: &Service, type_: &str, reason: &str, message: &str) {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let uid = svc.metadata.uid.clone().unwrap_or_default();
        if !self.allow(&uid) {
            return;
        }
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let id = (uid.clone(), reason.to_string(), message.to_string());
        let repeat = {
            let mut seen = lock(&self.seen);
            if seen.len() > MAX_REMEMBERED {
                seen.clear();
            }
            seen.get_mut(&id).map(|(name, count)| {
                *count += 1;
                (name.clone(), *count)
            })
        };
        if let Some((name, count)) = repeat {
            let body =
                serde_json::json!({"count": count, "lastTimestamp": now, "message": message});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                .await
                .is_ok()
            {
                return;
            }
        }
        let ev = service_event(svc, &self.component, "", type_, reason, message);
        let name = ev.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                lock(&self.seen).insert(id, (name, 1));
            }
            Err(e) => tracing::warn!(reason, error = %e, "recording an Event failed"),
        }
    }
}

/// A new core/v1 Event about `svc` as client-go's legacy recorder writes it: named
/// `<service>.<unix nanos in hex>`, first and last seen now, count 1, reported by `component`.
pub fn service_event(
    svc: &Service,
    component: &str,
    reporting_instance: &str,
    type_: &str,
    reason: &str,
    message: &str,
) -> Event {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{svc_name}.{nanos:x}")),
            namespace: svc.metadata.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            name: Some(svc_name),
            namespace: svc.metadata.namespace.clone(),
            uid: svc.metadata.uid.clone(),
            resource_version: svc.metadata.resource_version.clone(),
            ..Default::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some(component.into()),
        reporting_instance: Some(reporting_instance.into()),
        ..Default::default()
    }
}
