//! What kube-proxy knows, without the I/O: [`Snapshot::build`] folds core/v1 Services and
//! discovery/v1 EndpointSlices into service ports with their endpoints categorised the way
//! kube-proxy's `CategorizeEndpoints` does, plus what the agent needs besides rules (health-check
//! node ports, slice trigger times). Data planes (`proxy-nft`) render a [`Snapshot`]; start there.

mod categorize;
pub mod maglev;
mod snapshot;

pub use categorize::{categorize, Categorized, Hint, Hints};
pub use snapshot::{
    service_key, slice_key, Endpoint, HealthCheck, ServiceName, ServicePort, ServicePortName,
    Skipped, SliceName, Snapshot, SnapshotTracker, SOURCE_RANGES_ANNOTATION,
    TRIGGER_TIME_ANNOTATION,
};

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The per-Service annotation that picks a [`Scheduler`] for that Service only.
pub const SCHEDULER_ANNOTATION: &str = "switchboard.dev/scheduler";

/// How the data plane is set up on this node (kube-proxy's KubeProxyConfiguration, the part that
/// matters to the rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// This node's name: endpoints whose `nodeName` equals it are local.
    pub node_name: String,
    /// This node's zone, its `topology.kubernetes.io/zone` label ("" without one): endpoints
    /// hinted for it are preferred (topology-aware routing, see [`categorize`]).
    pub zone: String,
    /// This node's addresses (both families).
    pub node_ips: Vec<IpAddr>,
    /// CIDRs whose node addresses accept NodePort traffic; empty means the node IPs. A `/0`
    /// means every local address of that family (kube-proxy's `--nodeport-addresses 0.0.0.0/0`).
    pub nodeport_addresses: Vec<IpNet>,
    /// Pod CIDRs: traffic to a ClusterIP from outside them is masqueraded, and pod traffic
    /// short-circuits externalTrafficPolicy Local.
    pub cluster_cidrs: Vec<IpNet>,
    /// Service CIDRs: traffic to an unallocated address in them is dropped, like kube-proxy's
    /// `cluster-ips-check`. Empty: no such rule.
    pub service_cidrs: Vec<IpNet>,
    /// Masquerade every packet sent to a Service (kube-proxy `--masquerade-all`).
    pub masquerade_all: bool,
    /// The scheduler of Services without the [`SCHEDULER_ANNOTATION`].
    pub scheduler: Scheduler,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            node_name: String::new(),
            zone: String::new(),
            node_ips: Vec::new(),
            nodeport_addresses: Vec::new(),
            cluster_cidrs: vec!["10.42.0.0/16".parse().expect("valid CIDR")],
            service_cidrs: vec!["10.43.0.0/16".parse().expect("valid CIDR")],
            masquerade_all: false,
            scheduler: Scheduler::Random,
        }
    }
}

impl ProxyConfig {
    /// The node addresses of `family` that accept NodePort traffic, or `None` when every local
    /// address of that family does (a `/0` in `nodeport_addresses`).
    pub fn nodeport_ips(&self, family: IpFamily) -> Option<Vec<IpAddr>> {
        let of_family: Vec<&IpNet> = self
            .nodeport_addresses
            .iter()
            .filter(|n| IpFamily::of(&n.addr()) == family)
            .collect();
        if of_family.iter().any(|n| n.prefix_len() == 0) {
            return None;
        }
        let mut ips: Vec<IpAddr> = self
            .node_ips
            .iter()
            .filter(|ip| IpFamily::of(ip) == family)
            .filter(|ip| {
                self.nodeport_addresses.is_empty() || of_family.iter().any(|n| n.contains(*ip))
            })
            .copied()
            .collect();
        ips.sort();
        ips.dedup();
        Some(ips)
    }
}

/// IPv4 or IPv6: each family gets its own table, as kube-proxy runs one proxier per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub const ALL: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

    pub fn of(ip: &IpAddr) -> IpFamily {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

/// The transport protocol of a service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The Kubernetes spelling, `TCP`, `UDP`, `SCTP`; `None` for anything else.
    pub fn from_k8s(s: &str) -> Option<Protocol> {
        match s {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lower-case name nftables and chain names use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a new connection picks one of a service port's endpoints (IPVS's scheduler names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheduler {
    /// A uniformly random endpoint per connection (kube-proxy's only behaviour).
    #[default]
    Random,
    /// Endpoints in turn.
    RoundRobin,
    /// A hash of the client address: one client always reaches the same endpoint while the
    /// endpoint set is unchanged.
    SourceHash,
    /// Consistent hashing of the client address over a lookup table ([`maglev::table`], IPVS's
    /// name; the fill is rendezvous hashing, not Maglev's): removing or adding an endpoint moves
    /// only the clients of that endpoint.
    Maglev,
    /// The endpoint with the fewest connections. nftables cannot count per endpoint when it
    /// chooses, so the nftables data plane treats it as `Random` (see proxy-nft's README).
    LeastConnection,
}

impl Scheduler {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheduler::Random => "random",
            Scheduler::RoundRobin => "rr",
            Scheduler::SourceHash => "sh",
            Scheduler::Maglev => "mh",
            Scheduler::LeastConnection => "lc",
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheduler {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Scheduler::Random),
            "rr" => Ok(Scheduler::RoundRobin),
            "sh" => Ok(Scheduler::SourceHash),
            "mh" => Ok(Scheduler::Maglev),
            "lc" => Ok(Scheduler::LeastConnection),
            other => Err(format!(
                "unknown scheduler {other:?}: expected one of random, rr, sh, mh, lc"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_names_round_trip() {
        for s in ["random", "rr", "sh", "mh", "lc"] {
            assert_eq!(s.parse::<Scheduler>().unwrap().to_string(), s);
        }
        assert!("wrr".parse::<Scheduler>().is_err());
    }

    #[test]
    fn nodeport_ips_are_node_ips_in_the_configured_cidrs() {
        let cfg = ProxyConfig {
            node_ips: vec![
                "172.30.0.10".parse().unwrap(),
                "10.0.0.5".parse().unwrap(),
                "fd00::5".parse().unwrap(),
            ],
            nodeport_addresses: vec!["172.30.0.0/24".parse().unwrap()],
            ..ProxyConfig::default()
        };
        assert_eq!(
            cfg.nodeport_ips(IpFamily::V4),
            Some(vec!["172.30.0.10".parse().unwrap()])
        );
        assert_eq!(cfg.nodeport_ips(IpFamily::V6), Some(vec![]));
        let all = ProxyConfig {
            nodeport_addresses: vec!["0.0.0.0/0".parse().unwrap()],
            ..cfg.clone()
        };
        assert_eq!(all.nodeport_ips(IpFamily::V4), None);
        let default = ProxyConfig {
            nodeport_addresses: vec![],
            ..cfg
        };
        assert_eq!(default.nodeport_ips(IpFamily::V4).unwrap().len(), 2);
        assert_eq!(default.nodeport_ips(IpFamily::V6).unwrap().len(), 1);
    }
}
