//! Graceful deletion of pods, as kube-apiserver's pod strategy (`CheckGracefulDelete`) and
//! `rest.BeforeDelete` do it: a pod on a node is not removed by DELETE but marked with
//! `deletionTimestamp` (now + grace period) and `deletionGracePeriodSeconds`, so endpoints see
//! it terminating. In Kubernetes the kubelet finishes the deletion once the containers stopped;
//! Switchboard has no kubelet, so [`run`] finishes it when the grace period has passed (the
//! same DELETE with `gracePeriodSeconds: 0` a kubelet would send).

use crate::server::Shared;
use chrono::{DateTime, Utc};
use model::meta;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

/// What a DELETE does to a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodDelete {
    /// Remove it (or, with finalizers, mark it with grace period 0): the generic path.
    Now,
    /// Already terminating with a grace period no longer than asked: nothing changes.
    Pending,
    /// Mark it terminating: these `deletionTimestamp` and `deletionGracePeriodSeconds`.
    Mark { timestamp: String, grace: i64 },
}

fn grace_of(pod: &Value) -> Option<i64> {
    meta::metadata(pod).and_then(|m| m.get("deletionGracePeriodSeconds")).and_then(Value::as_i64)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The decision for deleting `pod` with the client's `gracePeriodSeconds` (`requested`).
pub fn decide(pod: &Value, requested: Option<i64>, now: DateTime<Utc>) -> PodDelete {
    if let Some(ts) = meta::deletion_timestamp(pod) {
        // Already terminating: only a shorter grace period changes anything; a stored period
        // of 0 (or none) means an earlier delete did not finish, so finish it.
        let existing = grace_of(pod).unwrap_or(0);
        if existing == 0 {
            return PodDelete::Now;
        }
        return match requested {
            Some(p) if p < existing => {
                let p = p.max(0);
                if p == 0 {
                    return PodDelete::Now;
                }
                let start = parse_time(ts).unwrap_or(now) - chrono::Duration::seconds(existing);
                PodDelete::Mark { timestamp: meta::format_time(start + chrono::Duration::seconds(p)), grace: p }
            }
            _ => PodDelete::Pending,
        };
    }
    // CheckGracefulDelete: the client's period, else the pod's terminationGracePeriodSeconds;
    // an unscheduled pod (no kubelet will ever run it) and a finished one go at once.
    let spec_grace = pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
    let mut period = requested.unwrap_or(spec_grace).max(0);
    let node = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        period = 0;
    }
    if matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Failed" | "Succeeded")) {
        period = 0;
    }
    if period == 0 {
        return PodDelete::Now;
    }
    PodDelete::Mark { timestamp: meta::format_time(now + chrono::Duration::seconds(period)), grace: period }
}

/// `pod` marked as `decision` says (generation moves, as in `BeforeDelete`).
pub fn mark(pod: &Value, timestamp: &str, grace: i64) -> Value {
    let mut marked = pod.clone();
    let first = meta::deletion_timestamp(pod).is_none();
    meta::set_meta(&mut marked, "deletionTimestamp", json!(timestamp));
    meta::set_meta(&mut marked, "deletionGracePeriodSeconds", json!(grace));
    if first {
        if let Some(g) = meta::metadata(pod).and_then(|m| m.get("generation")).and_then(Value::as_i64) {
            meta::set_meta(&mut marked, "generation", json!(g + 1));
        }
    }
    marked
}

/// When the kubelet's part would be done: the pod's `deletionTimestamp`.
fn due(pod: &Value) -> Option<DateTime<Utc>> {
    meta::deletion_timestamp(pod).and_then(parse_time)
}

/// Finishes graceful deletions: pods marked terminating at start (a restart does not forget
/// them) and every storage key sent on `rx`, each deleted once its `deletionTimestamp` passed.
pub async fn run(state: Shared, mut rx: mpsc::UnboundedReceiver<String>) {
    let pods = model::lookup("", "v1", "pods").expect("pods are served");
    for obj in state.store.list(&pods.key_prefix(), None, None).items.into_iter().map(|o| o.value) {
        if meta::deletion_timestamp(&obj).is_some() {
            spawn_finish(state.clone(), crate::read::key_of(pods, &obj));
        }
    }
    while let Some(key) = rx.recv().await {
        spawn_finish(state.clone(), key);
    }
}

fn spawn_finish(state: Shared, key: String) {
    let pods = model::lookup("", "v1", "pods").expect("pods are served");
    tokio::spawn(async move {
        loop {
            let Some(current) = state.store.get(&key).map(|o| o.value) else { return };
            let Some(at) = due(&current) else { return };
            let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if !wait.is_zero() {
                // A shorter period sent later wakes its own task; this one checks again then.
                tokio::time::sleep(wait).await;
                continue;
            }
            match crate::write::delete_one(&state, pods, &current, false, Some(0)).await {
                Ok(Some(_)) => return,
                Ok(None) => continue,
                Err(e) if e.code == 404 || e.code == 409 => return,
                Err(e) => {
                    tracing::warn!(pod = %key, error = %e.message, "finishing a graceful pod deletion failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_time(s).unwrap()
    }

    fn pod(node: &str) -> Value {
        json!({"metadata": {"name": "p", "generation": 1}, "spec": {"nodeName": node, "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}})
    }

    #[test]
    fn a_pod_on_a_node_is_marked_for_its_termination_grace_period() {
        let now = t("2026-11-21T23:27:02Z");
        assert_eq!(decide(&pod("node1"), None, now), PodDelete::Mark { timestamp: "2026-11-21T23:27:32Z".into(), grace: 30 });
        assert_eq!(decide(&pod("node1"), Some(5), now), PodDelete::Mark { timestamp: "2026-11-21T23:27:07Z".into(), grace: 5 });
        let marked = mark(&pod("node1"), "2026-11-21T23:27:32Z", 30);
        assert_eq!(marked["metadata"]["generation"], 2);
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    }

    #[test]
    fn unscheduled_finished_and_forced_pods_go_at_once() {
        let now = Utc::now();
        assert_eq!(decide(&pod(""), None, now), PodDelete::Now);
        assert_eq!(decide(&pod("node1"), Some(0), now), PodDelete::Now);
        let mut done = pod("node1");
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!(decide(&done, None, now), PodDelete::Now);
    }

    #[test]
    fn a_terminating_pod_only_gets_shorter_periods() {
        let terminating = mark(&pod("node1"), "2026-11-21T23:27:32Z", 30);
        let now = t("2026-11-21T23:27:10Z");
        assert_eq!(decide(&terminating, None, now), PodDelete::Pending);
        assert_eq!(decide(&terminating, Some(60), now), PodDelete::Pending);
        // Shortened from the original start (23:27:02), not from now.
        assert_eq!(decide(&terminating, Some(10), now), PodDelete::Mark { timestamp: "2026-11-21T23:27:12Z".into(), grace: 10 });
        assert_eq!(decide(&terminating, Some(0), now), PodDelete::Now);
        let stuck = mark(&pod("node1"), "2026-11-21T23:27:32Z", 0);
        assert_eq!(decide(&stuck, None, now), PodDelete::Now);
    }
}
