//! The agent's HTTP endpoints, kube-proxy's: `/metrics` and `/proxyMode` (127.0.0.1:10249),
//! `/healthz` and `/livez` (0.0.0.0:10256), and one server per `healthCheckNodePort` of a
//! Service with `externalTrafficPolicy: Local`, which load balancers probe to find the nodes
//! with local endpoints.

use crate::health::{service_health_body, ProxyHealth};
use crate::metrics::{render, wants_openmetrics, CodeLabel, ProxyMetrics};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Binds `addr` ("" disables; kube-proxy accepts the same). Returns the bound address.
pub async fn bind(addr: &str, what: &str) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    if addr.is_empty() {
        tracing::info!("{what} server disabled");
        return Ok(None);
    }
    let sa: SocketAddr = addr
        .parse()
        .map_err(|_| anyhow::anyhow!("{what} bind address {addr:?} is not IP:port"))?;
    let l = tokio::net::TcpListener::bind(sa)
        .await
        .map_err(|e| anyhow::anyhow!("binding the {what} server to {sa}: {e}"))?;
    Ok(Some(l))
}

fn json_response(code: StatusCode, body: String, extra: &[(&'static str, String)]) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(*k, v);
        }
    }
    (code, headers, body).into_response()
}

/// The data plane `/proxyMode` names: set by the data plane once it has synced, so a mode
/// switched by a ConfigMap edit shows there.
pub type ProxyMode = Arc<std::sync::RwLock<&'static str>>;

#[derive(Clone)]
struct MetricsState {
    registry: Arc<Registry>,
    mode: ProxyMode,
}

/// `/metrics` (Prometheus text, or OpenMetrics when asked), `/proxyMode`, and `/healthz`
/// answering `ok` as kube-proxy's metrics server does.
pub fn metrics_router(registry: Arc<Registry>, mode: ProxyMode) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State(s): State<MetricsState>, headers: HeaderMap| async move {
                    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                    let (text, ct) = render(&s.registry, wants_openmetrics(accept));
                    ([(header::CONTENT_TYPE, ct)], text)
                },
            ),
        )
        .route(
            "/proxyMode",
            get(|State(s): State<MetricsState>| async move {
                let mode: &'static str = *s.mode.read().unwrap_or_else(|e| e.into_inner());
                ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], mode)
            }),
        )
        .route(
            "/healthz",
            get(|| async { ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok") }),
        )
        .with_state(MetricsState { registry, mode })
}

#[derive(Clone)]
struct HealthState {
    health: Arc<ProxyHealth>,
    metrics: ProxyMetrics,
}

/// `/healthz` and `/livez` with kube-proxy's JSON and 200/503.
pub fn health_router(health: Arc<ProxyHealth>, metrics: ProxyMetrics) -> Router {
    async fn answer(s: HealthState, healthz: bool) -> Response {
        let now = chrono::Utc::now();
        let a = s.health.answer(healthz, now, chrono::Utc::now());
        let code = if a.healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let counter = if healthz {
            &s.metrics.healthz_total
        } else {
            &s.metrics.livez_total
        };
        counter
            .get_or_create(&CodeLabel {
                code: code.as_u16().to_string(),
            })
            .inc();
        json_response(code, a.body, &[])
    }
    Router::new()
        .route(
            "/healthz",
            get(|State(s): State<HealthState>| answer(s, true)),
        )
        .route(
            "/livez",
            get(|State(s): State<HealthState>| answer(s, false)),
        )
        .with_state(HealthState { health, metrics })
}

/// Serves `router` on `listener` until `shutdown`.
pub fn spawn_server(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let r = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server failed");
        }
    })
}

/// What one health-check node port answers for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceHealth {
    pub namespace: String,
    pub name: String,
    pub local_endpoints: usize,
}

struct Running {
    addresses: Vec<IpAddr>,
    current: Arc<Mutex<ServiceHealth>>,
    stop: CancellationToken,
}

/// The set of health-check node port servers, kept equal to what the last sync wanted.
pub struct ServiceHealthServers {
    health: Arc<ProxyHealth>,
    running: BTreeMap<u16, Running>,
    shutdown: CancellationToken,
}

impl ServiceHealthServers {
    pub fn new(health: Arc<ProxyHealth>, shutdown: CancellationToken) -> ServiceHealthServers {
        ServiceHealthServers {
            health,
            running: BTreeMap::new(),
            shutdown,
        }
    }

    /// The ports being served now.
    pub fn ports(&self) -> Vec<u16> {
        self.running.keys().copied().collect()
    }

    /// Serves exactly `wanted` (port -> Service) on `addresses` (an unspecified address means
    /// every local one): new ports are bound, gone ones closed, counts updated in place. A port
    /// that cannot be bound is logged and tried again on the next sync.
    pub fn sync(&mut self, wanted: &BTreeMap<u16, ServiceHealth>, addresses: &[IpAddr]) {
        let gone: Vec<u16> = self
            .running
            .iter()
            .filter(|(port, r)| !wanted.contains_key(port) || r.addresses != addresses)
            .map(|(port, _)| *port)
            .collect();
        for port in gone {
            if let Some(r) = self.running.remove(&port) {
                r.stop.cancel();
            }
        }
        for (port, svc) in wanted {
            if let Some(r) = self.running.get(port) {
                *r.current.lock().unwrap_or_else(|e| e.into_inner()) = svc.clone();
                continue;
            }
            match self.start(*port, svc.clone(), addresses) {
                Ok(r) => {
                    tracing::info!(port, service = %format!("{}/{}", svc.namespace, svc.name), addresses = ?addresses, "serving health check node port");
                    self.running.insert(*port, r);
                }
                Err(e) => {
                    tracing::warn!(port, service = %format!("{}/{}", svc.namespace, svc.name), error = %e, "cannot serve health check node port; will retry")
                }
            }
        }
    }

    fn start(
        &self,
        port: u16,
        svc: ServiceHealth,
        addresses: &[IpAddr],
    ) -> anyhow::Result<Running> {
        // Bind every address first, so that a failure leaves nothing half-open.
        let mut listeners = Vec::new();
        for ip in addresses {
            let l = std::net::TcpListener::bind(SocketAddr::new(*ip, port))?;
            l.set_nonblocking(true)?;
            listeners.push(tokio::net::TcpListener::from_std(l)?);
        }
        let current = Arc::new(Mutex::new(svc));
        let stop = self.shutdown.child_token();
        let health = self.health.clone();
        let state = current.clone();
        // kube-proxy answers any path and method.
        let router = Router::new().fallback(move || {
            let health = health.clone();
            let state = state.clone();
            async move {
                let svc = state.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let healthy = health.healthy(chrono::Utc::now());
                let code = if svc.local_endpoints > 0 && healthy {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json_response(
                    code,
                    service_health_body(&svc.namespace, &svc.name, svc.local_endpoints, healthy),
                    &[(
                        "x-load-balancing-endpoint-weight",
                        svc.local_endpoints.to_string(),
                    )],
                )
            }
        });
        for l in listeners {
            spawn_server(l, router.clone(), stop.clone());
        }
        Ok(Running {
            addresses: addresses.to_vec(),
            current,
            stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let (head, body) = buf.split_once("\r\n\r\n").unwrap();
        let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, head.to_lowercase(), body.to_string())
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn health_check_node_port_answers_200_with_local_endpoints_and_503_without() {
        let health = Arc::new(ProxyHealth::new(Duration::from_secs(60)));
        let stop = CancellationToken::new();
        let mut servers = ServiceHealthServers::new(health, stop.clone());
        let port = free_port();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let svc = |n| ServiceHealth {
            namespace: "default".into(),
            name: "nginx-lb-local".into(),
            local_endpoints: n,
        };
        servers.sync(&BTreeMap::from([(port, svc(3))]), &[lo]);
        let (code, head, body) = get(SocketAddr::new(lo, port), "/").await;
        assert_eq!(code, 200);
        assert!(
            head.contains("x-load-balancing-endpoint-weight: 3"),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert_eq!(
            body,
            service_health_body("default", "nginx-lb-local", 3, true)
        );
        // The count changes in place; the port stays open.
        servers.sync(&BTreeMap::from([(port, svc(0))]), &[lo]);
        let (code, _, body) = get(SocketAddr::new(lo, port), "/any/path").await;
        assert_eq!(code, 503);
        assert!(body.contains("\"localEndpoints\": 0"));
        // A Service that no longer wants it closes the port.
        servers.sync(&BTreeMap::new(), &[lo]);
        assert!(servers.ports().is_empty());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(SocketAddr::new(lo, port))
            .await
            .is_ok()
        {
            assert!(tokio::time::Instant::now() < deadline, "port still open");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn a_port_in_use_is_retried_on_the_next_sync() {
        let health = Arc::new(ProxyHealth::new(Duration::from_secs(60)));
        let stop = CancellationToken::new();
        let mut servers = ServiceHealthServers::new(health, stop.clone());
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = squatter.local_addr().unwrap().port();
        let want = BTreeMap::from([(
            port,
            ServiceHealth {
                namespace: "ns".into(),
                name: "s".into(),
                local_endpoints: 1,
            },
        )]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        servers.sync(&want, &[lo]);
        assert!(servers.ports().is_empty());
        drop(squatter);
        servers.sync(&want, &[lo]);
        assert_eq!(servers.ports(), vec![port]);
        let (code, _, _) = get(SocketAddr::new(lo, port), "/").await;
        assert_eq!(code, 200);
        stop.cancel();
    }
}
