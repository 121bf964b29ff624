//! The agent's flags for the announcer (flattened into `switchboard agent`'s flags).

use crate::AnnounceConfig;
use std::time::Duration;

/// `100ms`, `1s`, `1.5s`, `2m` (the Go duration forms people use for these).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
    };
    if !(n.is_finite() && n >= 0.0) {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(n * scale))
}

/// L2 announcement of LoadBalancer IPs (MetalLB layer-2 mode).
#[derive(clap::Args, Clone, Debug)]
pub struct AnnounceArgs {
    /// Do not answer ARP/NDP for LoadBalancer IPs on this node
    #[arg(long)]
    pub no_l2_announcements: bool,
    /// How often this node renews its L2 Lease
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub l2_lease_renew_interval: Duration,
    /// A node whose L2 Lease has not been renewed for this long loses its addresses to the next
    /// node (failover takes about this long; keep it several renew intervals)
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub l2_lease_duration: Duration,
    /// Namespace of the L2 Leases (named switchboard-l2-NODE)
    #[arg(long, default_value = "kube-node-lease")]
    pub l2_lease_namespace: String,
    /// The loadBalancerClass whose Services are announced (and Services without a class)
    #[arg(long, default_value = lb::DEFAULT_CLASS)]
    pub l2_load_balancer_class: String,
    /// Do not send gratuitous ARP / unsolicited NA on takeover (only to measure what they buy:
    /// clients then keep the dead node's MAC until their neighbour entry expires)
    #[arg(long, hide = true)]
    pub l2_no_gratuitous: bool,
}

impl Default for AnnounceArgs {
    fn default() -> Self {
        let c = AnnounceConfig::new("");
        AnnounceArgs {
            no_l2_announcements: false,
            l2_lease_renew_interval: c.renew_interval,
            l2_lease_duration: c.lease_duration,
            l2_lease_namespace: c.lease_namespace,
            l2_load_balancer_class: c.class,
            l2_no_gratuitous: false,
        }
    }
}

impl AnnounceArgs {
    pub fn enabled(&self) -> bool {
        !self.no_l2_announcements
    }

    /// The settings for `node`; refuses a duration that is not longer than the renew interval.
    pub fn config(&self, node: &str) -> anyhow::Result<AnnounceConfig> {
        if self.l2_lease_duration <= self.l2_lease_renew_interval {
            anyhow::bail!(
                "--l2-lease-duration ({:?}) must be longer than --l2-lease-renew-interval ({:?})",
                self.l2_lease_duration,
                self.l2_lease_renew_interval
            );
        }
        let mut c = AnnounceConfig::new(node);
        c.renew_interval = self.l2_lease_renew_interval;
        c.lease_duration = self.l2_lease_duration;
        c.lease_namespace = self.l2_lease_namespace.clone();
        c.class = self.l2_load_balancer_class.clone();
        c.gratuitous = !self.l2_no_gratuitous;
        // The election runs often enough that expiry is noticed within a few percent of the
        // lease duration.
        c.check_interval = (self.l2_lease_duration / 20).max(Duration::from_millis(5));
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn duration_must_exceed_the_renew_interval() {
        let a = AnnounceArgs {
            l2_lease_duration: Duration::from_millis(100),
            ..Default::default()
        };
        assert!(a.config("n1").is_err());
        let c = AnnounceArgs::default().config("n1").unwrap();
        assert_eq!(c.check_interval, Duration::from_millis(25));
    }
}
