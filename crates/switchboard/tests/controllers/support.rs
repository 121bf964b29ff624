//! Fixtures for the controller tests: a server with the controllers running (in the server
//! once it runs them itself, else in this process against it), kube-rs clients, pods
//! registered as backends, and a watch that timestamps what it sees.

use controllers::{Controllers, ControllersConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use test_support::TestServer;
use tokio::sync::mpsc;

/// The tests of this binary take turns: each starts a server and controllers on a 2-core
/// machine, and the latency test measures milliseconds.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A server plus controllers.
pub struct Cluster {
    pub server: TestServer,
    pub client: Client,
    /// The controllers this process runs (`None` when the server runs its own).
    pub controllers: Option<Controllers>,
    in_process: bool,
}

pub fn start_server() -> TestServer {
    // The server colours its log even when stderr is a pipe, which hides the `address=` that
    // TestServer waits for; NO_COLOR turns that off.
    std::env::set_var("NO_COLOR", "1");
    TestServer::start(env!("CARGO_BIN_EXE_switchboard"))
}

pub async fn client(server: &TestServer) -> Client {
    controllers::client_from_kubeconfig(&server.kubeconfig)
        .await
        .expect("client from the server's kubeconfig")
}

/// Test settings: kube-controller-manager's defaults, with a short resync so that the
/// missed-event test does not wait five minutes.
pub fn config() -> ControllersConfig {
    ControllersConfig {
        resync_period: Duration::from_secs(2),
        ..ControllersConfig::default()
    }
}

/// Whether the server runs the controllers itself: a Service in a scratch namespace gets its
/// placeholder EndpointSlice without us.
async fn server_runs_controllers(client: &Client) -> bool {
    create_namespace(client, "controllers-probe").await;
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "probe"}, "spec": {"selector": {"app": "probe"}, "ports": [{"port": 80}]}})).unwrap();
    Api::<Service>::namespaced(client.clone(), "controllers-probe")
        .create(&PostParams::default(), &svc)
        .await
        .expect("probe service");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "controllers-probe");
    // The server starts its controllers once their caches are synced, which under load takes a
    // few seconds; a short wait would misjudge and start a second set of controllers here. The
    // loop returns as soon as the slice appears, so a long bound costs nothing when it does.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if !slices
            .list(&ListParams::default())
            .await
            .expect("list slices")
            .items
            .is_empty()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

impl Cluster {
    pub async fn start() -> Cluster {
        Self::start_with(config()).await
    }

    pub async fn start_with(cfg: ControllersConfig) -> Cluster {
        let server = blocking(start_server);
        let client = client(&server).await;
        let in_process = !server_runs_controllers(&client).await;
        let controllers = in_process.then(|| Controllers::start(client.clone(), cfg));
        Cluster {
            server,
            client,
            controllers,
            in_process,
        }
    }

    /// Restarts the server (SIGTERM, start on the same data) and, when they run here, the
    /// controllers with a fresh state.
    pub async fn restart(&mut self) {
        if let Some(c) = self.controllers.take() {
            c.shutdown().await;
        }
        blocking(|| {
            self.server.stop();
            self.server.restart();
        });
        self.client = client(&self.server).await;
        if self.in_process {
            self.controllers = Some(Controllers::start(self.client.clone(), config()));
        }
    }

    pub fn writes(&self) -> Option<u64> {
        self.controllers
            .as_ref()
            .map(|c| c.stats().writes.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn slices(&self, ns: &str) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), ns)
    }
}

pub async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

/// `TestServer`'s start, stop and kill wait synchronously; inside the multi-threaded runtime
/// they must not stall the worker that drives the watchers.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// Fails the test instead of hanging it.
pub async fn within<T>(secs: u64, what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {secs} s"),
    }
}

/// Polls `f` until it returns `Some`, for at most `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A pod registered as a backend: labels, a node, a container port named `http`, and a
/// status with its IP and readiness (set on create; no kubelet runs).
pub fn pod(name: &str, labels: Value, ip: &str, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": "registered", "ports": [{"containerPort": 80, "name": "http"}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .unwrap()
}

pub fn service(name: &str, selector: Value, port: i32) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"selector": selector, "ports": [{"name": "web", "port": port, "targetPort": 80}]}})).unwrap()
}

/// Sets a pod's readiness through the status subresource, as the agent's prober will.
pub async fn set_ready(pods: &Api<Pod>, name: &str, ready: bool) {
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patching pod status");
}

/// A kube-rs watch on the slices of one Service that stamps each event with when it arrived.
pub fn watch_slices(
    client: &Client,
    ns: &str,
    service: &str,
) -> mpsc::UnboundedReceiver<(Instant, EndpointSlice)> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
    let cfg = watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) = ev {
                if tx.send((Instant::now(), s)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for a slice event satisfying `pred`; returns when it arrived.
pub async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<(Instant, EndpointSlice)>,
    what: &str,
    pred: impl Fn(&EndpointSlice) -> bool,
) -> Instant {
    within(10, what, async {
        loop {
            let (at, s) = rx.recv().await.expect("watch ended");
            if pred(&s) {
                return at;
            }
        }
    })
    .await
}

/// The endpoint of `ip` in a slice: (ready, serving, terminating).
pub fn conditions_of(s: &EndpointSlice, ip: &str) -> Option<(bool, bool, bool)> {
    s.endpoints
        .iter()
        .find(|e| e.addresses.iter().any(|a| a == ip))
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                c.ready.unwrap_or(false),
                c.serving.unwrap_or(false),
                c.terminating.unwrap_or(false),
            )
        })
}

/// p50 and p99 of durations, in milliseconds.
pub fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}
