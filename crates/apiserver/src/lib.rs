//! Switchboard's Kubernetes API server: discovery, OpenAPI, and every verb on every served
//! resource over HTTPS, on the `store` crate. Generic over kinds (objects are JSON values typed
//! by the `schema` crate); kind-specific rules plug in as [`admission::Admission`].
//! Start at [`Server::start`]; a request flows `serve` → `server::dispatch` → `read`/`write`/`watch`.


pub use model::admission;
pub mod bootstrap;
pub mod decode;
pub mod defaults;
pub mod discovery;
pub mod graceful;
pub mod ipaddresses;
pub mod namespaces;
pub mod negotiate;
pub mod openapi;
pub mod pki;
pub mod read;
pub mod render;
pub mod request;
pub mod serve;
pub mod server;
pub mod strategy;
pub mod watch;
pub mod write;

use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Service CIDRs (IPv4 and/or IPv6); the first address of the first is the `kubernetes` Service's.
    pub service_cidrs: Vec<String>,
    /// NodePort range, `30000-32767`.
    pub node_port_range: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./switchboard-data"),
            listen: "0.0.0.0:6443".parse().unwrap(),
            service_cidrs: vec!["10.43.0.0/16".to_string()],
            node_port_range: "30000-32767".to_string(),
        }
    }
}

/// A running server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub state: server::Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl Server {
    /// Opens the store, creates credentials and bootstrap objects, and starts serving.
    pub async fn start(config: Config) -> Result<Server> {
        let service_config = services::ServiceConfig::new(
            config.service_cidrs.clone(),
            services::parse_node_port_range(&config.node_port_range).map_err(|e| anyhow::anyhow!("--service-node-port-range: {e}"))?,
        )
        .map_err(|e| anyhow::anyhow!("service configuration: {e}"))?;
        let kubernetes_ip = service_config.kubernetes_service_ip().map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?;
        let pki = pki::Pki::load_or_create(&config.data_dir, &[kubernetes_ip])?;
        let store = Arc::new(store::Store::open(&config.data_dir).await.context("opening the store")?);
        let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let host = if local_addr.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { local_addr.ip() };
        let url_host = match host {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let kubeconfig = pki.write_kubeconfig(&format!("https://{url_host}:{}", local_addr.port()))?;
        let cidrs: Vec<String> = service_config.cidrs().map_err(|e| anyhow::anyhow!("--service-cidr: {e}"))?.iter().map(|c| c.to_string()).collect();
        bootstrap::run(&store, kubernetes_ip, local_addr.port(), &cidrs).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;

        let services_res = model::lookup("", "v1", "services").expect("services are served");
        let existing = store.list(&services_res.namespace_prefix(None), None, None).items.into_iter().map(|o| o.value.as_ref().clone());
        let (service_admission, repair_events) =
            services::ServiceAdmission::new(service_config, existing).map_err(|e| anyhow::anyhow!("service configuration: {e}"))?;
        bootstrap::record_events(&store, repair_events).await;

        let (ns_tx, ns_rx) = tokio::sync::mpsc::unbounded_channel();
        let (pod_tx, pod_rx) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(server::ApiServer {
            store,
            admin_token: pki.admin_token.clone(),
            server_address: format!("{url_host}:{}", local_addr.port()),
            admission: vec![
                Arc::new(defaults::BuiltinDefaults),
                Arc::new(service_admission),
                Arc::new(ipaddresses::IpAddressAdmission),
            ],
            namespace_deleted: ns_tx,
            pod_deleting: pod_tx,
        });
        tokio::spawn(namespaces::run(state.clone(), ns_rx));
        tokio::spawn(graceful::run(state.clone(), pod_rx));
        tokio::spawn(ipaddresses::run(state.store.clone()));
        let router = axum::Router::new().fallback(server::dispatch).with_state(state.clone());
        let tls = serve::tls_config(&pki.ca_pem, &pki.server_cert_pem, &pki.server_key_pem)?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve::serve_tls(listener, tls, router, async move {
            let _ = rx.await;
        }));
        Ok(Server { local_addr, kubeconfig, state, shutdown: Some(tx), task })
    }

    /// Stops accepting, closes connections, and waits for the store to finish writing.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await.context("server task")??;
        Ok(())
    }
}
