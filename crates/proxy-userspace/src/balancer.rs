//! Endpoint choice for one service port in one IP family: the scheduler (random, rr, sh, mh,
//! lc), ClientIP session affinity, and the live count of active connections per endpoint that
//! `lc` reads. A [`Lease`] is one connection (or UDP session) on an endpoint: the count goes
//! down when it is dropped, so a connection that ends in any way stops counting.

use crate::metrics::{EndpointLabels, Metrics};
use prometheus_client::metrics::gauge::Gauge;
use proxy_core::{maglev, Scheduler};
use rand::Rng as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Which endpoints a connection may use: kube-proxy's "Cluster" or "Local" set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Cluster,
    Local,
}

/// The endpoints of one pool, in the snapshot's order (sorted by address and port).
#[derive(Debug, Default)]
struct Set {
    endpoints: Vec<SocketAddr>,
    /// The rr cursor: the index the next turn starts at.
    next: usize,
    /// mh: slot → index into `endpoints` (proxy_core's Maglev table over "ip:port" names).
    maglev: Vec<usize>,
}

impl Set {
    fn replace(&mut self, endpoints: Vec<SocketAddr>, scheduler: Scheduler) {
        if endpoints != self.endpoints || (scheduler == Scheduler::Maglev) == self.maglev.is_empty()
        {
            // The turn continues from the endpoint it was at, if it is still there.
            let at = self.endpoints.get(self.next).copied();
            self.next = at
                .and_then(|a| endpoints.iter().position(|e| *e == a))
                .unwrap_or(0);
            self.maglev = if scheduler == Scheduler::Maglev && !endpoints.is_empty() {
                let names: Vec<String> = endpoints.iter().map(|e| e.to_string()).collect();
                maglev::table(&names, maglev::table_size(names.len()))
            } else {
                Vec::new()
            };
            self.endpoints = endpoints;
        }
    }
}

/// One endpoint's active connections: the number `lc` compares, and its metric.
#[derive(Clone)]
struct Count {
    active: Arc<AtomicUsize>,
    gauge: Option<Gauge>,
}

struct Inner {
    scheduler: Scheduler,
    affinity_timeout: Option<Duration>,
    cluster: Set,
    local: Set,
    counts: HashMap<SocketAddr, Count>,
    /// Endpoints that left while connections to them were open: their metrics go once the
    /// last one ends (noticed at the next update).
    departed: HashMap<SocketAddr, Count>,
    /// ClientIP affinity: client → (endpoint, last use).
    affinity: HashMap<IpAddr, (SocketAddr, Instant)>,
}

/// The scheduler state of one service port in one family; shared by all its frontends
/// (ClusterIP, NodePorts, external and load-balancer IPs), so `lc` counts every connection
/// to an endpoint whichever way it came in.
pub struct Balancer {
    /// `namespace/name:port/protocol`, for metrics and logs.
    name: String,
    metrics: Option<Metrics>,
    inner: Mutex<Inner>,
}

/// One connection's claim on an endpoint; the endpoint's active count drops with it.
pub struct Lease {
    pub endpoint: SocketAddr,
    count: Count,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.count.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(g) = &self.count.gauge {
            g.dec();
        }
    }
}

impl Balancer {
    pub fn new(name: String, metrics: Option<Metrics>) -> Balancer {
        Balancer {
            name,
            metrics,
            inner: Mutex::new(Inner {
                scheduler: Scheduler::Random,
                affinity_timeout: None,
                cluster: Set::default(),
                local: Set::default(),
                counts: HashMap::new(),
                departed: HashMap::new(),
                affinity: HashMap::new(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every write is one field).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a new snapshot's view of the service port. Counts of endpoints that stay are kept
    /// (their connections go on); endpoints that left are forgotten once their last lease ends.
    pub fn update(
        &self,
        scheduler: Scheduler,
        affinity_timeout: Option<Duration>,
        cluster: Vec<SocketAddr>,
        local: Vec<SocketAddr>,
    ) {
        let mut inner = self.lock();
        inner.scheduler = scheduler;
        inner.affinity_timeout = affinity_timeout;
        inner.cluster.replace(cluster, scheduler);
        inner.local.replace(local, scheduler);
        let Inner {
            cluster,
            local,
            counts,
            departed,
            affinity,
            ..
        } = &mut *inner;
        let present = |e: &SocketAddr| cluster.endpoints.contains(e) || local.endpoints.contains(e);
        let gone: Vec<SocketAddr> = counts.keys().filter(|e| !present(e)).copied().collect();
        for e in gone {
            if let Some(c) = counts.remove(&e) {
                departed.insert(e, c);
            }
        }
        // An endpoint that came back takes its open connections' count with it.
        let back: Vec<SocketAddr> = departed.keys().filter(|e| present(e)).copied().collect();
        for e in back {
            if let Some(c) = departed.remove(&e) {
                counts.insert(e, c);
            }
        }
        departed.retain(|e, c| {
            let open = c.active.load(Ordering::Relaxed) > 0;
            if !open {
                self.forget_metrics(e);
            }
            open
        });
        for e in cluster.endpoints.iter().chain(&local.endpoints) {
            if !counts.contains_key(e) {
                let gauge = self.metrics.as_ref().map(|m| {
                    m.active
                        .get_or_create(&EndpointLabels::new(&self.name, e))
                        .clone()
                });
                counts.insert(
                    *e,
                    Count {
                        active: Arc::new(AtomicUsize::new(0)),
                        gauge,
                    },
                );
            }
        }
        let now = Instant::now();
        let timeout = affinity_timeout.unwrap_or_default();
        affinity.retain(|_, (e, t)| present(e) && now.duration_since(*t) < timeout);
    }

    /// Drops the label sets of `endpoint`, so that endpoint churn does not grow `/metrics`.
    fn forget_metrics(&self, endpoint: &SocketAddr) {
        if let Some(m) = &self.metrics {
            let l = EndpointLabels::new(&self.name, endpoint);
            m.active.remove(&l);
            m.connections.remove(&l);
            m.dial_failures.remove(&l);
        }
    }

    /// Whether `endpoint` is still in `pool` (a UDP session re-picks when it is not).
    pub fn serves(&self, pool: Pool, endpoint: SocketAddr) -> bool {
        let inner = self.lock();
        let set = match pool {
            Pool::Cluster => &inner.cluster,
            Pool::Local => &inner.local,
        };
        set.endpoints.contains(&endpoint)
    }

    /// Whether `pool` has no endpoint at all.
    pub fn is_empty(&self, pool: Pool) -> bool {
        let inner = self.lock();
        match pool {
            Pool::Cluster => inner.cluster.endpoints.is_empty(),
            Pool::Local => inner.local.endpoints.is_empty(),
        }
    }

    /// Active connections per endpoint, in the cluster pool's order then the local-only ones.
    pub fn active(&self) -> Vec<(SocketAddr, usize)> {
        let inner = self.lock();
        let mut out: Vec<(SocketAddr, usize)> = Vec::new();
        for e in inner.cluster.endpoints.iter().chain(&inner.local.endpoints) {
            if !out.iter().any(|(o, _)| o == e) {
                let n = inner
                    .counts
                    .get(e)
                    .map_or(0, |c| c.active.load(Ordering::Relaxed));
                out.push((*e, n));
            }
        }
        out
    }

    /// Picks an endpoint of `pool` for a new connection from `client`, skipping `tried` (endpoints
    /// that refused this connection already), and counts the connection on it until the lease is
    /// dropped. `None` when no endpoint is left.
    pub fn pick(&self, pool: Pool, client: IpAddr, tried: &[SocketAddr]) -> Option<Lease> {
        let mut inner = self.lock();
        let now = Instant::now();
        let Inner {
            scheduler,
            affinity_timeout,
            cluster,
            local,
            counts,
            affinity,
            ..
        } = &mut *inner;
        let set = match pool {
            Pool::Cluster => cluster,
            Pool::Local => local,
        };
        let usable = |e: &SocketAddr| !tried.contains(e);
        if !set.endpoints.iter().any(usable) {
            return None;
        }
        // ClientIP affinity first, as IPVS persistence and kube-proxy's affinity map: a client
        // keeps its endpoint while it has used it within the timeout. After a failed dial the
        // affinity is not followed (kube-proxy resets it then).
        let sticky = affinity_timeout.and_then(|timeout| {
            let (e, t) = affinity.get(&client)?;
            (now.duration_since(*t) < timeout && set.endpoints.contains(e) && usable(e))
                .then_some(*e)
        });
        let chosen = match sticky {
            Some(e) => e,
            None => choose(*scheduler, set, counts, client, tried),
        };
        if affinity_timeout.is_some() {
            affinity.insert(client, (chosen, now));
        }
        let count = counts.get(&chosen).cloned().unwrap_or_else(|| Count {
            active: Arc::new(AtomicUsize::new(0)),
            gauge: None,
        });
        count.active.fetch_add(1, Ordering::Relaxed);
        if let Some(g) = &count.gauge {
            g.inc();
        }
        if let Some(m) = &self.metrics {
            m.connections
                .get_or_create(&EndpointLabels::new(&self.name, &chosen))
                .inc();
        }
        Some(Lease {
            endpoint: chosen,
            count,
        })
    }

    /// Counts a failed dial of `endpoint` (metrics only).
    pub fn dial_failed(&self, endpoint: SocketAddr) {
        if let Some(m) = &self.metrics {
            m.dial_failures
                .get_or_create(&EndpointLabels::new(&self.name, &endpoint))
                .inc();
        }
    }
}

impl Drop for Balancer {
    /// The service port is gone: so are its metrics.
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        let endpoints: Vec<SocketAddr> = inner
            .counts
            .keys()
            .chain(inner.departed.keys())
            .copied()
            .collect();
        for e in endpoints {
            self.forget_metrics(&e);
        }
    }
}

/// The scheduler's choice among the endpoints of `set` not in `tried` (at least one is left).
fn choose(
    scheduler: Scheduler,
    set: &mut Set,
    counts: &HashMap<SocketAddr, Count>,
    client: IpAddr,
    tried: &[SocketAddr],
) -> SocketAddr {
    let eps = &set.endpoints;
    let n = eps.len();
    let usable = |i: usize| !tried.contains(&eps[i]);
    match scheduler {
        Scheduler::Random => {
            let candidates: Vec<usize> = (0..n).filter(|i| usable(*i)).collect();
            eps[candidates[rand::rng().random_range(0..candidates.len())]]
        }
        Scheduler::RoundRobin => {
            // Strict turn: the next endpoint after the last one chosen.
            let start = set.next % n;
            let i = (0..n)
                .map(|k| (start + k) % n)
                .find(|i| usable(*i))
                .expect("one endpoint is usable");
            set.next = (i + 1) % n;
            eps[i]
        }
        Scheduler::SourceHash => {
            // A failed endpoint passes its clients on to the next one in order.
            let start = (client_hash(client) % n as u64) as usize;
            let i = (0..n)
                .map(|k| (start + k) % n)
                .find(|i| usable(*i))
                .expect("one endpoint is usable");
            eps[i]
        }
        Scheduler::Maglev => {
            let m = set.maglev.len();
            let start = (client_hash(client) % m as u64) as usize;
            // The next slots of the table belong to other endpoints in Maglev's own balance.
            let i = (0..m)
                .map(|k| set.maglev[(start + k) % m])
                .find(|i| usable(*i))
                .expect("one endpoint is usable");
            eps[i]
        }
        Scheduler::LeastConnection => {
            // IPVS lc: the fewest active connections; on a tie the first in order (IPVS walks
            // its destination list and keeps the first minimum). Only active connections are
            // counted: user space sees no TIME_WAIT ("inactive") connections of its own.
            let active = |i: usize| {
                counts
                    .get(&eps[i])
                    .map_or(0, |c| c.active.load(Ordering::Relaxed))
            };
            let mut best: Option<(usize, usize)> = None;
            for i in (0..n).filter(|i| usable(*i)) {
                let a = active(i);
                if best.is_none_or(|(_, b)| a < b) {
                    best = Some((i, a));
                }
            }
            eps[best.expect("one endpoint is usable").0]
        }
    }
}

/// proxy-core's hash of the address bytes (FNV-1a, splitmix64 finish): stable across runs and
/// nodes, so a client maps to the same endpoint on every node with the same endpoints.
fn client_hash(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => proxy_core::maglev::hash(0, &a.octets()),
        IpAddr::V6(a) => proxy_core::maglev::hash(0, &a.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: u8) -> Vec<SocketAddr> {
        (0..n)
            .map(|i| SocketAddr::from(([10, 42, 1, 10 + i], 80)))
            .collect()
    }

    fn balancer(s: Scheduler, n: u8) -> Balancer {
        let b = Balancer::new("default/web:http/tcp".into(), None);
        b.update(s, None, eps(n), vec![]);
        b
    }

    fn client(i: u8) -> IpAddr {
        IpAddr::from([192, 168, 0, i])
    }

    #[test]
    fn rr_is_a_strict_turn_and_survives_an_update() {
        let b = balancer(Scheduler::RoundRobin, 3);
        let picks: Vec<SocketAddr> = (0..7)
            .map(|_| b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint)
            .collect();
        let e = eps(3);
        assert_eq!(picks, vec![e[0], e[1], e[2], e[0], e[1], e[2], e[0]]);
        // The next turn is e[1]; removing e[0] keeps it.
        b.update(Scheduler::RoundRobin, None, e[1..].to_vec(), vec![]);
        let next: Vec<SocketAddr> = (0..3)
            .map(|_| b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint)
            .collect();
        assert_eq!(next, vec![e[1], e[2], e[1]]);
    }

    #[test]
    fn lc_picks_the_fewest_active_and_breaks_ties_by_order() {
        let b = balancer(Scheduler::LeastConnection, 3);
        let e = eps(3);
        // Six held connections spread two per endpoint, in order.
        let mut held: Vec<Lease> = (0..6)
            .map(|_| b.pick(Pool::Cluster, client(1), &[]).unwrap())
            .collect();
        let order: Vec<SocketAddr> = held.iter().map(|l| l.endpoint).collect();
        assert_eq!(order, vec![e[0], e[1], e[2], e[0], e[1], e[2]]);
        assert_eq!(b.active(), vec![(e[0], 2), (e[1], 2), (e[2], 2)]);
        // Both connections of e[1] end: the next two go there, then the tie goes to e[0].
        held.retain(|l| l.endpoint != e[1]);
        assert_eq!(b.active(), vec![(e[0], 2), (e[1], 0), (e[2], 2)]);
        let a = b.pick(Pool::Cluster, client(2), &[]).unwrap();
        let c = b.pick(Pool::Cluster, client(3), &[]).unwrap();
        let d = b.pick(Pool::Cluster, client(4), &[]).unwrap();
        assert_eq!((a.endpoint, c.endpoint, d.endpoint), (e[1], e[1], e[0]));
        drop((a, c, d));
        drop(held);
        assert_eq!(b.active(), vec![(e[0], 0), (e[1], 0), (e[2], 0)]);
    }

    #[test]
    fn lc_counts_survive_an_update_for_endpoints_that_stay() {
        let b = balancer(Scheduler::LeastConnection, 2);
        let e = eps(3);
        let _l0 = b.pick(Pool::Cluster, client(1), &[]).unwrap();
        let _l1 = b.pick(Pool::Cluster, client(1), &[]).unwrap();
        let _l2 = b.pick(Pool::Cluster, client(1), &[]).unwrap();
        assert_eq!(b.active(), vec![(e[0], 2), (e[1], 1)]);
        // A third endpoint arrives: it has none, so it takes the next connection.
        b.update(Scheduler::LeastConnection, None, e.clone(), vec![]);
        assert_eq!(b.active(), vec![(e[0], 2), (e[1], 1), (e[2], 0)]);
        let l3 = b.pick(Pool::Cluster, client(1), &[]).unwrap();
        assert_eq!(l3.endpoint, e[2]);
    }

    #[test]
    fn metrics_of_departed_endpoints_go_once_their_connections_end() {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let text = |r: &prometheus_client::registry::Registry| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, r).unwrap();
            out
        };
        let e = eps(2);
        let b = Balancer::new("default/web:http/tcp".into(), Some(metrics));
        b.update(Scheduler::RoundRobin, None, e.clone(), vec![]);
        let held = b.pick(Pool::Cluster, client(1), &[]).unwrap();
        assert_eq!(held.endpoint, e[0]);
        let gauge = format!(
            "switchboard_userspace_active_connections{{service_port=\"default/web:http/tcp\",endpoint=\"{}\"}} 1",
            e[0]
        );
        assert!(text(&registry).contains(&gauge), "{}", text(&registry));
        // e[0] leaves with its connection open: its series stay while it lasts.
        b.update(Scheduler::RoundRobin, None, e[1..].to_vec(), vec![]);
        assert!(text(&registry).contains(&gauge));
        drop(held);
        b.update(Scheduler::RoundRobin, None, e[1..].to_vec(), vec![]);
        let after = text(&registry);
        assert!(!after.contains(&e[0].to_string()), "{after}");
        assert!(after.contains(&e[1].to_string()), "{after}");
        drop(b);
        assert!(!text(&registry).contains(&e[1].to_string()));
    }

    #[test]
    fn a_failed_dial_moves_to_another_endpoint_until_none_is_left() {
        for s in [
            Scheduler::Random,
            Scheduler::RoundRobin,
            Scheduler::SourceHash,
            Scheduler::Maglev,
            Scheduler::LeastConnection,
        ] {
            let b = balancer(s, 3);
            let mut tried = Vec::new();
            for _ in 0..3 {
                let l = b.pick(Pool::Cluster, client(9), &tried).unwrap();
                assert!(!tried.contains(&l.endpoint), "{s}: {tried:?}");
                tried.push(l.endpoint);
            }
            assert!(b.pick(Pool::Cluster, client(9), &tried).is_none(), "{s}");
        }
    }

    #[test]
    fn source_hashes_keep_a_client_on_one_endpoint() {
        for s in [Scheduler::SourceHash, Scheduler::Maglev] {
            let b = balancer(s, 3);
            let mut seen = std::collections::HashSet::new();
            for c in 1..=50 {
                let first = b.pick(Pool::Cluster, client(c), &[]).unwrap().endpoint;
                for _ in 0..3 {
                    assert_eq!(
                        b.pick(Pool::Cluster, client(c), &[]).unwrap().endpoint,
                        first
                    );
                }
                seen.insert(first);
            }
            assert_eq!(seen.len(), 3, "{s}: 50 clients spread over every endpoint");
        }
    }

    #[test]
    fn client_ip_affinity_holds_within_the_timeout_and_ends_with_the_endpoint() {
        let b = Balancer::new("x".into(), None);
        let e = eps(3);
        b.update(
            Scheduler::RoundRobin,
            Some(Duration::from_secs(60)),
            e.clone(),
            vec![],
        );
        let first = b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint;
        for _ in 0..5 {
            assert_eq!(
                b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint,
                first
            );
        }
        // Another client takes the next turn.
        assert_ne!(
            b.pick(Pool::Cluster, client(2), &[]).unwrap().endpoint,
            first
        );
        let rest: Vec<SocketAddr> = e.iter().copied().filter(|x| *x != first).collect();
        b.update(
            Scheduler::RoundRobin,
            Some(Duration::from_secs(60)),
            rest.clone(),
            vec![],
        );
        assert!(rest.contains(&b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint));
        // A zero timeout (affinity off) never sticks.
        b.update(Scheduler::RoundRobin, None, e.clone(), vec![]);
        let a = b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint;
        let c = b.pick(Pool::Cluster, client(1), &[]).unwrap().endpoint;
        assert_ne!(a, c);
    }

    #[test]
    fn the_local_pool_is_separate() {
        let b = Balancer::new("x".into(), None);
        let e = eps(3);
        b.update(Scheduler::RoundRobin, None, e.clone(), vec![e[2]]);
        for _ in 0..3 {
            assert_eq!(b.pick(Pool::Local, client(1), &[]).unwrap().endpoint, e[2]);
        }
        assert!(b.pick(Pool::Local, client(1), &[e[2]]).is_none());
        b.update(Scheduler::RoundRobin, None, e.clone(), vec![]);
        assert!(b.is_empty(Pool::Local));
        assert!(!b.is_empty(Pool::Cluster));
    }
}
