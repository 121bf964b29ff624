//! What a frontend (a listening address and port) serves: its service port's [`Balancer`] and
//! which pool of endpoints a client may use, by the traffic policies.

use crate::balancer::{Balancer, Pool};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// How traffic reaches a frontend, which decides the traffic policy that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A ClusterIP: internalTrafficPolicy.
    ClusterIp,
    /// A NodePort or external IP: externalTrafficPolicy.
    External,
    /// A load-balancer IP: externalTrafficPolicy, and loadBalancerSourceRanges.
    LoadBalancer,
}

#[derive(Clone)]
pub struct Route {
    pub balancer: Arc<Balancer>,
    pub kind: Kind,
    pub internal_local: bool,
    pub external_local: bool,
    /// Pod CIDRs and node addresses: their traffic to an externalTrafficPolicy Local frontend
    /// uses every endpoint, as kube-proxy short-circuits it (it would work nowhere else).
    pub short_circuit: Arc<(Vec<IpNet>, Vec<IpAddr>)>,
    /// loadBalancerSourceRanges (empty: everyone), checked on [`Kind::LoadBalancer`] only.
    pub source_ranges: Arc<Vec<IpNet>>,
}

impl Route {
    /// The endpoints a connection from `client` may use; `None` when loadBalancerSourceRanges
    /// keep it out (its connection is reset, its datagrams dropped).
    pub fn pool(&self, client: IpAddr) -> Option<Pool> {
        if self.kind == Kind::LoadBalancer
            && !self.source_ranges.is_empty()
            && !self.source_ranges.iter().any(|r| r.contains(&client))
        {
            return None;
        }
        let local = match self.kind {
            Kind::ClusterIp => self.internal_local,
            Kind::External | Kind::LoadBalancer => {
                let (cidrs, node_ips) = &*self.short_circuit;
                self.external_local
                    && !cidrs.iter().any(|c| c.contains(&client))
                    && !node_ips.contains(&client)
            }
        };
        Some(if local { Pool::Local } else { Pool::Cluster })
    }
}

/// A frontend's route, replaced in place when a new snapshot changes it (listeners and their
/// connections stay).
pub type SharedRoute = Arc<RwLock<Route>>;

pub fn current(route: &SharedRoute) -> Route {
    route.read().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(kind: Kind, internal_local: bool, external_local: bool, ranges: &[&str]) -> Route {
        Route {
            balancer: Arc::new(Balancer::new("x".into(), None)),
            kind,
            internal_local,
            external_local,
            short_circuit: Arc::new((
                vec!["10.42.0.0/16".parse().unwrap()],
                vec!["192.168.1.11".parse().unwrap()],
            )),
            source_ranges: Arc::new(ranges.iter().map(|r| r.parse().unwrap()).collect()),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn traffic_policies_choose_the_pool() {
        let lan = ip("192.168.1.101");
        assert_eq!(
            route(Kind::ClusterIp, false, true, &[]).pool(lan),
            Some(Pool::Cluster)
        );
        assert_eq!(
            route(Kind::ClusterIp, true, false, &[]).pool(lan),
            Some(Pool::Local)
        );
        let etp_local = route(Kind::External, false, true, &[]);
        assert_eq!(etp_local.pool(lan), Some(Pool::Local));
        // Pods and the node itself are short-circuited to every endpoint.
        assert_eq!(etp_local.pool(ip("10.42.2.10")), Some(Pool::Cluster));
        assert_eq!(etp_local.pool(ip("192.168.1.11")), Some(Pool::Cluster));
        assert_eq!(
            route(Kind::External, true, false, &[]).pool(lan),
            Some(Pool::Cluster)
        );
    }

    #[test]
    fn source_ranges_apply_to_load_balancer_ips_only() {
        let lb = route(Kind::LoadBalancer, false, false, &["192.168.1.0/28"]);
        assert_eq!(lb.pool(ip("192.168.1.5")), Some(Pool::Cluster));
        assert_eq!(lb.pool(ip("192.168.1.101")), None);
        let np = route(Kind::External, false, false, &["192.168.1.0/28"]);
        assert_eq!(np.pool(ip("192.168.1.101")), Some(Pool::Cluster));
        let open = route(Kind::LoadBalancer, false, false, &[]);
        assert_eq!(open.pool(ip("203.0.113.9")), Some(Pool::Cluster));
    }
}
