//! The DNS server's metrics, registered into the agent's registry under `switchboard_dns_`:
//! queries by type and rcode, request latency, forwarding cache hits and misses, forwarded
//! queries, and the size of the compiled zone.
//!
//! The per-query counters are resolved once per (type, rcode) pair and then kept as handles,
//! so the hot path is one atomic add, not a label-map lookup.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::wire::rtype;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub r#type: String,
    pub rcode: String,
}

const TYPES: [(u16, &str); 11] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::SRV, "SRV"),
    (rtype::PTR, "PTR"),
    (rtype::TXT, "TXT"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (rtype::NS, "NS"),
    (rtype::MX, "MX"),
    (rtype::ANY, "ANY"),
    (0, "other"),
];

const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
    (u16::MAX, "other"),
];

#[derive(Clone)]
pub struct Metrics {
    queries: Family<QueryLabels, Counter>,
    handles: Arc<[OnceLock<Counter>; TYPES.len() * RCODES.len()]>,
    pub latency: Histogram,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub forwarded: Counter,
    pub zone_names: Gauge,
    pub zone_builds: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            queries: Family::default(),
            handles: Arc::new(std::array::from_fn(|_| OnceLock::new())),
            // 10 µs to 2 s: answers from memory land in the first buckets, forwarded ones later.
            latency: Histogram::new([
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025, 0.1, 0.5,
                2.0,
            ]),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            forwarded: Counter::default(),
            zone_names: Gauge::default(),
            zone_builds: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("switchboard_dns");
        r.register(
            "queries",
            "DNS queries answered, by query type and response code",
            self.queries.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from receiving a query to having its response ready",
            self.latency.clone(),
        );
        r.register(
            "cache_hits",
            "Forwarded names answered from the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "cache_misses",
            "Forwarded names not in the cache",
            self.cache_misses.clone(),
        );
        r.register(
            "forwarded_queries",
            "Queries sent to upstream resolvers",
            self.forwarded.clone(),
        );
        r.register(
            "zone_names",
            "Names in the compiled cluster zone",
            self.zone_names.clone(),
        );
        r.register(
            "zone_builds",
            "Times the cluster zone was recompiled",
            self.zone_builds.clone(),
        );
    }

    /// Counts one answered query.
    #[inline]
    pub fn query(&self, qtype: u16, rcode: u16) {
        let t = TYPES
            .iter()
            .position(|(v, _)| *v == qtype)
            .unwrap_or(TYPES.len() - 1);
        let r = RCODES
            .iter()
            .position(|(v, _)| *v == rcode)
            .unwrap_or(RCODES.len() - 1);
        self.handles[t * RCODES.len() + r]
            .get_or_init(|| {
                self.queries
                    .get_or_create(&QueryLabels {
                        r#type: TYPES[t].1.into(),
                        rcode: RCODES[r].1.into(),
                    })
                    .clone()
            })
            .inc();
    }
}
