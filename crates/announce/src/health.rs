//! Node health from Leases: each agent renews `kube-node-lease/switchboard-l2-<node>`; a node
//! is healthy while its lease's renewTime has changed within the lease duration, measured on
//! the observer's own monotonic clock (as client-go's leader election does), so clock skew
//! between nodes does not matter.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Lease names: this prefix plus the node name (kubelet's own lease is just the node name).
pub const LEASE_PREFIX: &str = "switchboard-l2-";
/// Our lease duration in milliseconds (leaseDurationSeconds only counts whole seconds).
pub const ANN_DURATION_MS: &str = "switchboard.io/lease-duration-ms";
/// Label on our leases, so agents watch only them.
pub const LEASE_LABEL: &str = "switchboard.io/l2-lease";

#[derive(Debug, Default)]
pub struct LeaseTracker {
    /// node -> (last renewTime seen, when it changed, its duration)
    seen: HashMap<String, (String, Instant, Duration)>,
}

impl LeaseTracker {
    pub fn observe(&mut self, node: &str, renew_time: &str, duration: Duration, now: Instant) {
        match self.seen.get_mut(node) {
            Some((t, at, d)) => {
                if t != renew_time {
                    *t = renew_time.to_string();
                    *at = now;
                }
                *d = duration;
            }
            None => {
                self.seen
                    .insert(node.to_string(), (renew_time.to_string(), now, duration));
            }
        }
    }

    /// A node whose lease object is gone is forgotten.
    pub fn retain(&mut self, present: &BTreeSet<String>) {
        self.seen.retain(|n, _| present.contains(n));
    }

    pub fn healthy(&self, now: Instant) -> BTreeSet<String> {
        self.seen
            .iter()
            .filter(|(_, (_, at, d))| now.saturating_duration_since(*at) < *d)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_that_stops_changing_expires_after_its_duration() {
        let t0 = Instant::now();
        let d = Duration::from_millis(600);
        let mut t = LeaseTracker::default();
        t.observe("n1", "r1", d, t0);
        t.observe("n2", "r1", d, t0);
        assert_eq!(t.healthy(t0 + Duration::from_millis(100)).len(), 2);
        // n1 renews, n2 does not (the same renewTime seen again is no renewal).
        t.observe("n1", "r2", d, t0 + Duration::from_millis(500));
        t.observe("n2", "r1", d, t0 + Duration::from_millis(500));
        let h = t.healthy(t0 + Duration::from_millis(700));
        assert!(h.contains("n1") && !h.contains("n2"));
        t.retain(&BTreeSet::from(["n2".to_string()]));
        assert!(t.healthy(t0 + Duration::from_millis(700)).is_empty());
    }
}
