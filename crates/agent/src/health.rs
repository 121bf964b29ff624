//! kube-proxy's health answers, as pure functions of the proxy's state: `/healthz` and `/livez`
//! on port 10256 (`ProxyHealthServer`), and the body of a `healthCheckNodePort` answer for a
//! Service with `externalTrafficPolicy: Local` (`service_health.go`).
//!
//! A proxier family (IPv4, IPv6) is unhealthy when a change has been queued for longer than the
//! health timeout (twice the sync period) without a successful sync; before its first sync it
//! counts as healthy ("starting up"). `/healthz` is also 503 when this node is not eligible for
//! traffic: its Node object is missing, being deleted, or tainted
//! `ToBeDeletedByClusterAutoscaler`. Times are written as Go's `time.Time` marshals them.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The cluster autoscaler's taint on a node it is about to delete.
pub const TO_BE_DELETED_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

#[derive(Debug, Default)]
struct State {
    last_updated: BTreeMap<String, DateTime<Utc>>,
    oldest_pending: BTreeMap<String, DateTime<Utc>>,
    node_eligible: bool,
    timeout: Duration,
}

/// The proxy's health, shared by the sync loop (writes) and the HTTP handlers (read).
#[derive(Debug)]
pub struct ProxyHealth {
    state: Mutex<State>,
}

/// One answer: status code and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthAnswer {
    pub healthy: bool,
    pub body: String,
}

impl ProxyHealth {
    pub fn new(timeout: Duration) -> ProxyHealth {
        ProxyHealth {
            state: Mutex::new(State {
                timeout,
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// kube-proxy uses twice its sync period.
    pub fn set_timeout(&self, timeout: Duration) {
        self.lock().timeout = timeout;
    }

    /// A change for `family` arrived and is not programmed yet.
    pub fn queued(&self, family: &str, now: DateTime<Utc>) {
        self.lock()
            .oldest_pending
            .entry(family.to_string())
            .or_insert(now);
    }

    /// `family`'s rules reflect everything queued before the sync started.
    pub fn updated(&self, family: &str, now: DateTime<Utc>) {
        let mut s = self.lock();
        s.oldest_pending.remove(family);
        s.last_updated.insert(family.to_string(), now);
    }

    pub fn set_node_eligible(&self, eligible: bool) {
        self.lock().node_eligible = eligible;
    }

    /// Whether every proxier family is healthy (without node eligibility), as the
    /// `serviceProxyHealthy` of health-check answers reports.
    pub fn healthy(&self, now: DateTime<Utc>) -> bool {
        self.health(now).0
    }

    /// (healthy, lastUpdated, status per family)
    fn health(&self, now: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>, Map<String, Value>) {
        let s = self.lock();
        let mut healthy = true;
        let mut status = Map::new();
        for (family, updated) in &s.last_updated {
            let late = s
                .oldest_pending
                .get(family)
                .is_some_and(|queued| (now - *queued).to_std().unwrap_or_default() >= s.timeout);
            healthy &= !late;
            status.insert(
                family.clone(),
                json!({"lastUpdated": go_time(updated), "healthy": !late}),
            );
        }
        (healthy, s.last_updated.values().max().copied(), status)
    }

    /// `/healthz` (with `nodeEligible`) or `/livez`. `now` is the request's time; `answered`
    /// the time read when answering healthy, which kube-proxy reports as `lastUpdated` so that a
    /// healthy proxy always looks fresh.
    pub fn answer(
        &self,
        healthz: bool,
        now: DateTime<Utc>,
        answered: DateTime<Utc>,
    ) -> HealthAnswer {
        let (mut healthy, last_updated, status) = self.health(now);
        let eligible = self.lock().node_eligible;
        if healthz {
            healthy &= eligible;
        }
        let last_updated = if healthy {
            Some(answered)
        } else {
            last_updated
        };
        let mut body = Map::new();
        body.insert(
            "lastUpdated".into(),
            Value::String(last_updated.map_or_else(|| GO_ZERO_TIME.to_string(), |t| go_time(&t))),
        );
        body.insert("currentTime".into(), Value::String(go_time(&now)));
        if healthz {
            body.insert("nodeEligible".into(), Value::Bool(eligible));
        }
        body.insert("healthy".into(), Value::Bool(healthy));
        if !status.is_empty() {
            body.insert("status".into(), Value::Object(status));
        }
        HealthAnswer {
            healthy,
            body: Value::Object(body).to_string(),
        }
    }
}

/// Whether kube-proxy would call this node eligible for traffic.
pub fn node_eligible(node: Option<&Node>) -> bool {
    let Some(node) = node else { return false };
    if node.metadata.deletion_timestamp.is_some() {
        return false;
    }
    !node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == TO_BE_DELETED_TAINT))
}

/// Go's zero `time.Time` in JSON.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds and trailing zeros dropped, as Go's `time.Time` marshals.
pub fn go_time(t: &DateTime<Utc>) -> String {
    let s = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}Z")
}

/// The body kube-proxy answers on a `healthCheckNodePort` (tab-indented, no trailing newline).
pub fn service_health_body(
    namespace: &str,
    name: &str,
    local_endpoints: usize,
    proxy_healthy: bool,
) -> String {
    let q = |s: &str| Value::String(s.to_string()).to_string();
    format!(
        "{{\n\t\"service\": {{\n\t\t\"namespace\": {},\n\t\t\"name\": {}\n\t}},\n\t\"localEndpoints\": {},\n\t\"serviceProxyHealthy\": {}\n}}",
        q(namespace),
        q(name),
        local_endpoints,
        proxy_healthy
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64, nanos: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_795_303_000 + secs, nanos).unwrap()
    }

    #[test]
    fn go_time_format() {
        assert_eq!(
            go_time(&Utc.timestamp_opt(1_795_303_767, 953_645_250).unwrap()),
            "2026-11-21T23:29:27.95364525Z"
        );
        assert_eq!(
            go_time(&Utc.timestamp_opt(1_795_303_767, 0).unwrap()),
            "2026-11-21T23:29:27Z"
        );
        assert_eq!(
            go_time(&Utc.timestamp_opt(1_795_303_767, 100).unwrap()),
            "2026-11-21T23:29:27.0000001Z"
        );
    }

    #[test]
    fn healthz_after_syncs_has_kube_proxys_shape() {
        let h = ProxyHealth::new(Duration::from_secs(60));
        h.set_node_eligible(true);
        h.updated("IPv4", at(0, 0));
        h.updated("IPv6", at(1, 0));
        let a = h.answer(true, at(10, 0), at(10, 5));
        assert!(a.healthy);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "lastUpdated",
                "currentTime",
                "nodeEligible",
                "healthy",
                "status"
            ]
        );
        assert_eq!(
            v["lastUpdated"],
            go_time(&at(10, 5)),
            "healthy: lastUpdated is now"
        );
        assert_eq!(
            v["status"]["IPv4"],
            json!({"lastUpdated": go_time(&at(0, 0)), "healthy": true})
        );
        // /livez has no nodeEligible.
        let l: Value = serde_json::from_str(&h.answer(false, at(10, 0), at(10, 0)).body).unwrap();
        assert!(l.get("nodeEligible").is_none());
    }

    #[test]
    fn healthz_body_is_the_transcripts_byte_for_byte() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let h = ProxyHealth::new(Duration::from_secs(60));
        h.set_node_eligible(true);
        h.updated("IPv6", t("2026-11-21T23:26:31.553934699Z"));
        h.updated("IPv4", t("2026-11-21T23:29:27.95364525Z"));
        let a = h.answer(
            true,
            t("2026-11-21T23:29:38.263547217Z"),
            t("2026-11-21T23:29:38.265238278Z"),
        );
        // 14-kube-proxy.txt, `curl -s -i 127.0.0.1:10256/healthz` (Content-Length: 282).
        let want = r#"{"lastUpdated":"2026-11-21T23:29:38.265238278Z","currentTime":"2026-11-21T23:29:38.263547217Z","nodeEligible":true,"healthy":true,"status":{"IPv4":{"lastUpdated":"2026-11-21T23:29:27.95364525Z","healthy":true},"IPv6":{"lastUpdated":"2026-11-21T23:26:31.553934699Z","healthy":true}}}"#;
        assert_eq!(a.body, want);
        assert_eq!(a.body.len(), 282);
    }

    #[test]
    fn a_change_left_unsynced_past_the_timeout_is_unhealthy() {
        let h = ProxyHealth::new(Duration::from_secs(60));
        h.set_node_eligible(true);
        h.updated("IPv4", at(0, 0));
        h.queued("IPv4", at(5, 0));
        h.queued("IPv4", at(50, 0)); // the oldest pending change counts
        assert!(h.answer(true, at(64, 0), at(64, 0)).healthy);
        let a = h.answer(true, at(65, 0), at(65, 0));
        assert!(!a.healthy);
        let v: Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["lastUpdated"], go_time(&at(0, 0)));
        assert_eq!(v["status"]["IPv4"]["healthy"], false);
        h.updated("IPv4", at(66, 0));
        assert!(h.answer(true, at(67, 0), at(67, 0)).healthy);
    }

    #[test]
    fn starting_up_is_healthy_but_a_missing_node_is_not_eligible() {
        let h = ProxyHealth::new(Duration::from_secs(60));
        h.queued("IPv4", at(0, 0));
        let live = h.answer(false, at(1000, 0), at(1000, 0));
        assert!(live.healthy, "no sync yet: starting up");
        assert!(!live.body.contains("status"));
        let hz = h.answer(true, at(1000, 0), at(1000, 0));
        assert!(!hz.healthy);
        assert!(hz.body.contains("\"nodeEligible\":false"));
        assert!(
            hz.body
                .starts_with("{\"lastUpdated\":\"0001-01-01T00:00:00Z\""),
            "{}",
            hz.body
        );
    }

    #[test]
    fn node_eligibility() {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap();
        assert!(node_eligible(Some(&node)));
        assert!(!node_eligible(None));
        let tainted: Node = serde_json::from_value(json!({"metadata": {"name": "n"},
            "spec": {"taints": [{"key": TO_BE_DELETED_TAINT, "effect": "NoSchedule"}]}}))
        .unwrap();
        assert!(!node_eligible(Some(&tainted)));
        let deleting: Node = serde_json::from_value(json!({"metadata": {"name": "n",
            "deletionTimestamp": "2026-11-21T23:29:27Z"}}))
        .unwrap();
        assert!(!node_eligible(Some(&deleting)));
    }

    #[test]
    fn service_health_body_is_kube_proxys_byte_for_byte() {
        // 14-kube-proxy.txt: Content-Length: 125 for this answer.
        let body = service_health_body("default", "nginx-lb-local", 3, true);
        assert_eq!(body.len(), 125);
        assert_eq!(
            body,
            "{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"nginx-lb-local\"\n\t},\n\t\"localEndpoints\": 3,\n\t\"serviceProxyHealthy\": true\n}"
        );
    }
}
