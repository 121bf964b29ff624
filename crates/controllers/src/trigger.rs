//! The `endpoints.kubernetes.io/last-change-trigger-time` annotation, as upstream's
//! `TriggerTimeTracker` computes it: the first sync of a Service reports the Service's creation
//! time; later syncs report the earliest pod Ready-condition transition that changed since
//! the previous sync, or nothing (and the annotation is then removed on the next write).

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Mutex;

pub const ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

#[derive(Default, Clone)]
struct State {
    pod_times: HashMap<String, Timestamp>,
    service_time: Option<Timestamp>,
}

/// One per controller (the endpoints and the EndpointSlice controllers each keep their own,
/// as upstream does), keyed by `namespace/name`.
#[derive(Default)]
pub struct TriggerTimeTracker {
    states: Mutex<HashMap<String, State>>,
}

impl TriggerTimeTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records this sync's pod and service times and returns the trigger time to publish.
    pub fn compute(&self, key: &str, service: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let previous = states.get(key).cloned();
        let was_known = previous.is_some();
        let previous = previous.unwrap_or_default();
        let mut min_changed: Option<Timestamp> = None;
        let mut pod_times = HashMap::new();
        for pod in pods {
            if let Some(t) = crate::pods::ready_transition_time(pod) {
                let name = crate::pods::name_of(&pod.metadata).to_string();
                if previous.pod_times.get(&name).is_none_or(|old| t > *old) {
                    min_changed = Some(min_changed.map_or(t, |m| m.min(t)));
                }
                pod_times.insert(name, t);
            }
        }
        let service_time = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(t) = service_time {
            if previous.service_time.is_none_or(|old| t > old) {
                min_changed = Some(min_changed.map_or(t, |m| m.min(t)));
            }
        }
        states.insert(
            key.to_string(),
            State {
                pod_times,
                service_time,
            },
        );
        if !was_known {
            return service_time;
        }
        min_changed
    }

    pub fn forget(&self, key: &str) {
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Go's `time.RFC3339Nano` in UTC: `2026-11-21T23:26:57Z`, fractional seconds without
/// trailing zeros.
pub fn format(t: Timestamp) -> String {
    let s = t.to_string();
    // jiff prints the shortest fraction already; normalise an explicit `+00:00` just in case.
    s.replace("+00:00", "Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(
            json!({"metadata": {"name": "s", "creationTimestamp": "2026-11-21T23:26:57Z"}}),
        )
        .unwrap()
    }

    fn pod(name: &str, ready_at: Option<&str>) -> Pod {
        let cond = match ready_at {
            Some(t) => json!({"type": "Ready", "status": "True", "lastTransitionTime": t}),
            None => json!({"type": "Ready", "status": "True"}),
        };
        serde_json::from_value(
            json!({"metadata": {"name": name}, "status": {"conditions": [cond]}}),
        )
        .unwrap()
    }

    #[test]
    fn first_sync_reports_the_service_creation_time() {
        let t = TriggerTimeTracker::new();
        let p = pod("a", None);
        assert_eq!(
            t.compute("ns/s", &svc(), &[&p]).map(format).as_deref(),
            Some("2026-11-21T23:26:57Z")
        );
        // Nothing changed since: no trigger time (the reference's later Endpoints lose it).
        assert_eq!(t.compute("ns/s", &svc(), &[&p]), None);
    }

    #[test]
    fn a_pod_readiness_change_reports_its_transition_time() {
        let t = TriggerTimeTracker::new();
        t.compute("ns/s", &svc(), &[]);
        let p = pod("a", Some("2026-11-21T23:30:00.5Z"));
        assert_eq!(
            t.compute("ns/s", &svc(), &[&p]).map(format).as_deref(),
            Some("2026-11-21T23:30:00.5Z")
        );
        assert_eq!(t.compute("ns/s", &svc(), &[&p]), None);
    }
}
