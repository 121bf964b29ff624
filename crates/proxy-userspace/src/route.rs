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
    /// A NodePort, external IP or load-balancer IP: externalTrafficPolicy.
    External,
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
}

impl Route {
    /// The endpoints a connection from `client` may use.
    pub fn pool(&self, client: IpAddr) -> Pool {
        let local = match self.kind {
            Kind::ClusterIp => self.internal_local,
            Kind::External => {
                let (cidrs, node_ips) = &*self.short_circuit;
                self.external_local
                    && !cidrs.iter().any(|c| c.contains(&client))
                    && !node_ips.contains(&client)
            }
        };
        if local {
            Pool::Local
        } else {
            Pool::Cluster
        }
    }
}

/// A frontend's route, replaced in place when a new snapshot changes it (listeners and their
/// connections stay).
pub type SharedRoute = Arc<RwLock<Route>>;

pub fn current(route: &SharedRoute) -> Route {
    route.read().unwrap_or_else(|e| e.into_inner()).clone()
}
