//! The Service controllers that kube-controller-manager runs, on kube-rs, so they work against
//! `switchboard server` or any conformant API server: endpoints, EndpointSlice,
//! EndpointSlice mirroring and a garbage collector for the slices they own; plus
//! [`probe::Prober`], the readiness prober the node agent runs for pods without a kubelet.
//! Start at [`run`] (or [`Controllers::start`]); the pure reconcilers are
//! [`endpoints::reconcile`], [`slices::reconcile`] and [`mirroring::reconcile`]. The crate
//! README has the theory.

pub mod endpoints;
pub mod events;
pub mod hints;
mod index;
pub mod mirroring;
pub mod pods;
pub mod probe;
pub mod queue;
mod runtime;
pub mod serviceaccounts;
pub mod slices;
pub mod topology;
pub mod trigger;

#[cfg(test)]
mod golden;

pub use runtime::{Controllers, Stats};

use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// What to run and how. [`ControllersConfig::default`] is kube-controller-manager's defaults.
#[derive(Debug, Clone)]
pub struct ControllersConfig {
    /// `--max-endpoints-per-slice` (100).
    pub max_endpoints_per_slice: usize,
    /// Endpoints per mirrored slice (upstream's `--mirroring-max-endpoints-per-subset`, 1000).
    pub mirroring_max_endpoints_per_slice: usize,
    /// Concurrent syncs (upstream: `--concurrent-service-endpoint-syncs` 5,
    /// `--concurrent-service-endpointslice-syncs` 5).
    pub workers: usize,
    /// Every Service is looked at again this often, in case an event was missed; only real
    /// differences are written. Zero turns it off.
    pub resync_period: Duration,
    /// Skip pods whose Node object does not exist, as upstream does. Off by default: standalone
    /// Switchboard has no Node objects until an agent registers its node.
    pub require_nodes: bool,
    /// The manager recorded in managedFields.
    pub field_manager: String,
    /// The controllers that run, by kube-controller-manager's names (`--controllers`):
    /// `endpoint`, `endpointslice`, `endpointslicemirroring`, `serviceaccount`.
    pub endpoints: bool,
    pub endpoint_slices: bool,
    pub mirroring: bool,
    pub service_accounts: bool,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        ControllersConfig {
            max_endpoints_per_slice: 100,
            mirroring_max_endpoints_per_slice: mirroring::MAX_ENDPOINTS_PER_SUBSET,
            workers: 5,
            resync_period: Duration::from_secs(300),
            require_nodes: false,
            field_manager: "kube-controller-manager".into(),
            endpoints: true,
            endpoint_slices: true,
            mirroring: true,
            service_accounts: true,
        }
    }
}

/// The controller names `--controllers` knows (kube-controller-manager's).
pub const CONTROLLER_NAMES: &[&str] = &[
    "endpoint",
    "endpointslice",
    "endpointslicemirroring",
    "serviceaccount",
];

impl ControllersConfig {
    /// Applies kube-controller-manager's `--controllers` list: `*` is every controller on by
    /// default, `name` turns one on, `-name` turns one off (e.g. `*,-serviceaccount`).
    pub fn with_controllers(mut self, list: &[String]) -> anyhow::Result<Self> {
        let mut enabled: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for item in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if item == "*" {
                enabled.extend(CONTROLLER_NAMES);
                continue;
            }
            let (on, name) = match item.strip_prefix('-') {
                Some(n) => (false, n),
                None => (true, item),
            };
            let Some(known) = CONTROLLER_NAMES.iter().find(|k| **k == name) else {
                anyhow::bail!(
                    "--controllers: unknown controller {name:?} (known: {})",
                    CONTROLLER_NAMES.join(", ")
                );
            };
            if on {
                enabled.insert(known);
            } else {
                enabled.remove(known);
            }
        }
        self.endpoints = enabled.contains("endpoint");
        self.endpoint_slices = enabled.contains("endpointslice");
        self.mirroring = enabled.contains("endpointslicemirroring");
        self.service_accounts = enabled.contains("serviceaccount");
        Ok(self)
    }
}

/// Runs the controllers until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    config: ControllersConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let controllers = Controllers::start(client, config);
    shutdown.await;
    controllers.shutdown().await;
    Ok(())
}

/// A client from a kubeconfig file (the server's own `DATA_DIR/kubeconfig`).
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(kube::Client::try_from(config)?)
}
