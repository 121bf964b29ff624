//! The data plane's own metrics, registered into the agent's Registry (`switchboard_userspace_*`):
//! active connections per endpoint (what `lc` decides on), connections and failed dials.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;

/// `service_port="default/web:http/tcp", endpoint="10.42.1.10:80"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub service_port: String,
    pub endpoint: String,
}

impl EndpointLabels {
    pub fn new(service_port: &str, endpoint: &SocketAddr) -> Self {
        EndpointLabels {
            service_port: service_port.to_string(),
            endpoint: endpoint.to_string(),
        }
    }
}

/// Cheap to clone: every metric is shared.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Open TCP connections and live UDP sessions per endpoint.
    pub active: Family<EndpointLabels, Gauge>,
    /// Connections (and UDP sessions) scheduled to each endpoint.
    pub connections: Family<EndpointLabels, Counter>,
    /// Dials to an endpoint that failed (the connection then tries the next endpoint).
    pub dial_failures: Family<EndpointLabels, Counter>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics::default();
        registry.register(
            "switchboard_userspace_active_connections",
            "Open TCP connections and UDP sessions per endpoint (what the lc scheduler compares)",
            m.active.clone(),
        );
        registry.register(
            "switchboard_userspace_connections",
            "Connections and UDP sessions the userspace data plane sent to each endpoint",
            m.connections.clone(),
        );
        registry.register(
            "switchboard_userspace_dial_failures",
            "Dials to an endpoint that failed; the connection went on to the next endpoint",
            m.dial_failures.clone(),
        );
        m
    }
}
