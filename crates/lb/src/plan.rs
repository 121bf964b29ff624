//! The reconciler's pure half: from the Services, pools, namespaces and nodes in the caches to
//! the ingress every LoadBalancer Service of ours should have, or why it waits. Keeps the
//! allocator and the ServiceLB ports between rounds (MetalLB's controller does the same), so
//! an address once given stays put while it remains valid, and a change to one Service is
//! decided for that Service alone ([`Planner::plan_service`]).

use crate::alloc::{AllocError, Allocator, Families, Port, SharingKey, SvcRequest};
use crate::pool::Pool;
use crate::servicelb::{self, LbNode, LbOutcome, LbService, Taken};
use k8s_openapi::api::core::v1::Service;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// `spec.loadBalancerIP`'s successor, comma-separated (one per family).
pub const ANN_LOAD_BALANCER_IPS: [&str; 2] = [
    "metallb.universe.tf/loadBalancerIPs",
    "metallb.io/loadBalancerIPs",
];
pub const ANN_ADDRESS_POOL: [&str; 2] = [
    "metallb.universe.tf/address-pool",
    "metallb.io/address-pool",
];
pub const ANN_ALLOW_SHARED_IP: [&str; 2] = [
    "metallb.universe.tf/allow-shared-ip",
    "metallb.io/allow-shared-ip",
];

/// Which LoadBalancer implementation serves a Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Pools for Services that some pool may serve; ServiceLB for the rest.
    #[default]
    Auto,
    /// Pools only (MetalLB): a Service no pool serves stays pending.
    Pools,
    /// ServiceLB for every Service (k3s).
    ServiceLb,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "pools" | "metallb" => Ok(Mode::Pools),
            "servicelb" => Ok(Mode::ServiceLb),
            _ => Err(format!(
                "unknown LoadBalancer mode {s:?} (auto, pools, servicelb)"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pool {
        pool: String,
        ips: Vec<IpAddr>,
    },
    ServiceLb {
        ips: Vec<IpAddr>,
        nodes: Vec<String>,
    },
    Pending(String),
}

impl Outcome {
    pub fn ips(&self) -> &[IpAddr] {
        match self {
            Outcome::Pool { ips, .. } | Outcome::ServiceLb { ips, .. } => ips,
            Outcome::Pending(_) => &[],
        }
    }
}

fn annotation<'a>(svc: &'a Service, names: &[&str]) -> Option<&'a str> {
    let a = svc.metadata.annotations.as_ref()?;
    names
        .iter()
        .find_map(|n| a.get(*n))
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
}

pub fn key_of(svc: &Service) -> String {
    format!(
        "{}/{}",
        svc.metadata.namespace.as_deref().unwrap_or_default(),
        svc.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Whether the controller with class `class` serves `svc`: a LoadBalancer Service with that
/// `loadBalancerClass` or none.
pub fn is_ours(svc: &Service, class: &str) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec
            .load_balancer_class
            .as_deref()
            .is_none_or(|c| c == class)
}

/// The addresses in `status.loadBalancer.ingress`.
pub fn status_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|ing| {
            ing.iter()
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The families from `spec.ipFamilies` (the API server fills it in from `ipFamilyPolicy`);
/// IPv4 when it is empty.
pub fn families(svc: &Service) -> Families {
    let spec = svc.spec.as_ref();
    let fams = spec.and_then(|s| s.ip_families.as_ref());
    match fams {
        Some(f) if !f.is_empty() => {
            let (v4, v6) = (f.iter().any(|f| f == "IPv4"), f.iter().any(|f| f == "IPv6"));
            Families {
                v4,
                v6,
                prefer_dual: v4
                    && v6
                    && spec.and_then(|s| s.ip_family_policy.as_deref()) == Some("PreferDualStack"),
                v6_first: f[0] == "IPv6",
            }
        }
        _ => Families::V4,
    }
}

pub fn ports(svc: &Service) -> Vec<Port> {
    let mut v: Vec<Port> = svc
        .spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| Port {
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            port: p.port,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The allocator's view of a Service.
pub fn request(svc: &Service, namespace_labels: Option<&BTreeMap<String, String>>) -> SvcRequest {
    let spec = svc.spec.as_ref();
    let backend = if spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local") {
        // labels.Set(selector).String(): sorted key=value pairs.
        spec.and_then(|s| s.selector.as_ref())
            .map(|sel| {
                sel.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    } else {
        String::new()
    };
    SvcRequest {
        key: key_of(svc),
        namespace: svc.metadata.namespace.clone().unwrap_or_default(),
        namespace_labels: namespace_labels.cloned().unwrap_or_default(),
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        families: families(svc),
        ports: ports(svc),
        sharing: SharingKey {
            sharing: annotation(svc, &ANN_ALLOW_SHARED_IP)
                .unwrap_or_default()
                .to_string(),
            backend,
        },
    }
}

/// The addresses a Service asks for: the `loadBalancerIPs` annotation, else the deprecated
/// `spec.loadBalancerIP`. Both at once is an error, as in MetalLB.
pub fn requested_ips(svc: &Service) -> Result<Vec<IpAddr>, AllocError> {
    let spec_ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let ann = annotation(svc, &ANN_LOAD_BALANCER_IPS);
    let (text, what) = match (ann, spec_ip) {
        (Some(_), Some(_)) => return Err(AllocError(
            "service can not have both spec.loadBalancerIP and metallb.universe.tf/loadBalancerIPs"
                .into(),
        )),
        (Some(a), None) => (a, "metallb.universe.tf/loadBalancerIPs"),
        (None, Some(s)) => (s, "spec.loadBalancerIP"),
        (None, None) => return Ok(vec![]),
    };
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| AllocError(format!("invalid {what} {:?}", s.trim())))
        })
        .collect()
}

/// The order MetalLB serves Services in: oldest first (the controller sorts a batch by it too).
pub(crate) fn creation(svc: &Service) -> String {
    svc.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .unwrap_or_default()
}

/// Configuration of the planner.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub class: String,
    pub mode: Mode,
}

#[derive(Debug)]
pub struct Planner {
    pub cfg: PlanConfig,
    pub alloc: Allocator,
    /// The ports ServiceLB gave: their holders keep them first.
    taken: Taken,
    /// Pools and nodes of the last whole round, for single-Service decisions in between.
    nodes: Vec<LbNode>,
    /// Work done: Services decided (one per Service in a whole round, one per
    /// `plan_service`), and whole rounds. Tests count them to show the work is linear.
    pub decided: u64,
    pub whole_rounds: u64,
}

/// What a change to one Service did.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceChange {
    /// Its outcome; None when it is not (or no longer) a LoadBalancer Service of ours.
    pub outcome: Option<Outcome>,
    /// It gave up an address or ServiceLB ports: a Service waiting for them may now fit,
    /// so everything should be looked at again (MetalLB reprocesses all after a delete).
    pub released: bool,
}

impl Planner {
    pub fn new(cfg: PlanConfig) -> Self {
        Planner {
            cfg,
            alloc: Allocator::new(),
            taken: Taken::default(),
            nodes: Vec::new(),
            decided: 0,
            whole_rounds: 0,
        }
    }

    /// Decides one changed (or deleted: `svc` None) Service against what the others hold,
    /// with the pools and nodes of the last whole round. A Service that is not a
    /// LoadBalancer of ours and held nothing costs two map lookups.
    pub fn plan_service(
        &mut self,
        key: &str,
        svc: Option<&Service>,
        namespace_labels: Option<&BTreeMap<String, String>>,
    ) -> ServiceChange {
        let Some(svc) = svc.filter(|s| is_ours(s, &self.cfg.class)) else {
            let released = self.alloc.unassign(key) | self.taken.release(key);
            return ServiceChange {
                outcome: None,
                released,
            };
        };
        self.decided += 1;
        let req = request(svc, namespace_labels);
        let before_ips = self.alloc.allocation(key).map(|(_, ips)| ips.to_vec());
        let before_lb = self.taken.held(key).cloned();
        let pool = if self.cfg.mode == Mode::ServiceLb {
            None
        } else {
            self.pool_outcome(svc, &req)
        };
        let outcome = match pool {
            Some(o) => {
                self.taken.release(key);
                o
            }
            None => {
                self.alloc.unassign(key);
                self.taken.release(key);
                let eligible = servicelb::eligible_nodes(&self.nodes);
                match self.taken.place(&eligible, &lb_service(svc)) {
                    LbOutcome::Ingress { ips, nodes } => Outcome::ServiceLb { ips, nodes },
                    LbOutcome::Pending(r) => Outcome::Pending(r),
                }
            }
        };
        let after_ips = self.alloc.allocation(key).map(|(_, ips)| ips.to_vec());
        // Gave up an address, or ServiceLB ports on some node.
        let released = before_ips.is_some_and(|b| Some(&b) != after_ips.as_ref())
            || before_lb.is_some_and(|(nodes, ports)| {
                self.taken.held(key).is_none_or(|(n, p)| {
                    !nodes.iter().all(|x| n.contains(x)) || !ports.iter().all(|x| p.contains(x))
                })
            });
        ServiceChange {
            outcome: Some(outcome),
            released,
        }
    }

    /// One round over everything. Services that are not LoadBalancers of our class are absent
    /// from the answer, and lose what they held.
    pub fn plan(
        &mut self,
        pools: Vec<Pool>,
        services: &[&Service],
        namespace_labels: &BTreeMap<String, BTreeMap<String, String>>,
        nodes: &[LbNode],
    ) -> BTreeMap<String, Outcome> {
        self.whole_rounds += 1;
        self.alloc.set_pools(pools);
        self.nodes = nodes.to_vec();
        let ours: BTreeMap<String, &Service> = services
            .iter()
            .filter(|s| is_ours(s, &self.cfg.class))
            .map(|s| (key_of(s), *s))
            .collect();
        let stale: Vec<String> = self
            .alloc
            .services()
            .filter(|k| !ours.contains_key(*k))
            .map(String::from)
            .collect();
        for k in stale {
            self.alloc.unassign(&k);
        }
        // Services that hold an address go first, so a newcomer asking for the same address
        // (or filling the pool) cannot take it from them; then the older before the newer.
        let mut order: Vec<&Service> = ours.values().copied().collect();
        order.sort_by_key(|s| {
            let k = key_of(s);
            let holds = self.alloc.allocation(&k).is_some() || !status_ips(s).is_empty();
            (!holds, creation(s), k)
        });
        let mut out = BTreeMap::new();
        let mut to_servicelb: Vec<&Service> = Vec::new();
        for svc in order {
            self.decided += 1;
            let req = request(svc, namespace_labels.get(&req_ns(svc)));
            if self.cfg.mode == Mode::ServiceLb {
                self.alloc.unassign(&req.key);
                to_servicelb.push(svc);
                continue;
            }
            match self.pool_outcome(svc, &req) {
                Some(o) => {
                    out.insert(req.key.clone(), o);
                }
                None => to_servicelb.push(svc),
            }
        }
        to_servicelb.sort_by_key(|s| {
            let k = key_of(s);
            (!self.taken.holds(&k), creation(s), k)
        });
        let lb: Vec<LbService> = to_servicelb.iter().map(|s| lb_service(s)).collect();
        let (placed, taken) = servicelb::plan_taken(nodes, &lb);
        self.taken = taken;
        for (k, o) in placed {
            let o = match o {
                LbOutcome::Ingress { ips, nodes } => Outcome::ServiceLb { ips, nodes },
                LbOutcome::Pending(r) => Outcome::Pending(r),
            };
            out.insert(k, o);
        }
        out
    }

    /// The pool answer for one Service, or None when no pool could ever serve it (then
    /// ServiceLB does, in `Mode::Auto`).
    fn pool_outcome(&mut self, svc: &Service, req: &SvcRequest) -> Option<Outcome> {
        let pending = |e: AllocError| {
            Some(Outcome::Pending(format!(
                "Failed to allocate IP for {:?}: {e}",
                req.key
            )))
        };
        let wanted = match requested_ips(svc) {
            Ok(w) => w,
            Err(e) => {
                self.alloc.unassign(&req.key);
                return pending(e);
            }
        };
        let wanted_pool = annotation(svc, &ANN_ADDRESS_POOL).map(String::from);
        // Keep what the Service has, if it still is what it asks for and still valid.
        let current = match self.alloc.allocation(&req.key) {
            Some((_, ips)) => ips.to_vec(),
            None => status_ips(svc),
        };
        if !current.is_empty() {
            let same_set = |a: &[IpAddr], b: &[IpAddr]| {
                let (x, y): (BTreeSet<_>, BTreeSet<_>) = (a.iter().collect(), b.iter().collect());
                x == y
            };
            let pool_ok = match &wanted_pool {
                Some(p) => self
                    .alloc
                    .pool(p)
                    .is_some_and(|p| current.iter().all(|ip| p.contains(*ip))),
                None => true,
            };
            if (wanted.is_empty() || same_set(&wanted, &current))
                && pool_ok
                && self.alloc.assign(req, &current).is_ok()
            {
                // PreferDualStack that got one family: the other once its pool has one.
                let current = if wanted.is_empty() {
                    self.alloc.add_missing_family(req).unwrap_or(current)
                } else {
                    current
                };
                let pool = self
                    .alloc
                    .allocation(&req.key)
                    .map(|(p, _)| p.to_string())
                    .unwrap_or_default();
                return Some(Outcome::Pool { pool, ips: current });
            }
            self.alloc.unassign(&req.key);
        }
        let result = if !wanted.is_empty() {
            self.alloc.assign(req, &wanted).map(|_| wanted)
        } else if let Some(p) = &wanted_pool {
            self.alloc.allocate_from_pool(req, p)
        } else {
            if self.cfg.mode == Mode::Auto && self.alloc.candidate_pools(req).is_empty() {
                return None;
            }
            self.alloc.allocate(req)
        };
        match result {
            Ok(ips) => {
                let pool = self
                    .alloc
                    .allocation(&req.key)
                    .map(|(p, _)| p.to_string())
                    .unwrap_or_default();
                Some(Outcome::Pool { pool, ips })
            }
            Err(e) => pending(e),
        }
    }
}

fn lb_service(svc: &Service) -> LbService {
    LbService {
        key: key_of(svc),
        families: families(svc),
        ports: ports(svc),
    }
}

fn req_ns(svc: &Service) -> String {
    svc.metadata.namespace.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests;
