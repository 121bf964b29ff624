//! Fixtures for the controller tests: a server (which runs the controllers itself), kube-rs
//! clients, pods registered as backends, a watch that timestamps what it sees, and bounded
//! waits so that a stalled server fails a test instead of hanging the suite.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};
use std::future::Future;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use test_support::TestServer;
use tokio::sync::mpsc;

/// The tests of this binary take turns: each starts a server on a 2-core machine, and the
/// latency test measures milliseconds. Waiting for the turn is bounded too: a test that hangs
/// makes the next one fail with a message instead of the whole run hanging.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    within(900, "waiting for the other controller tests", SERIAL.lock()).await
}

/// Runs a test body on its own 2-worker runtime, and gives the runtime at most 10 s to shut
/// down. `#[tokio::test]` waits without bound for the runtime's threads when it drops it; the
/// latency test hung once in CI and again here after its body had finished ("latency: done"
/// printed, the test never reported), i.e. in that shutdown.
pub fn run_test<F: Future<Output = ()>>(body: F) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime");
    rt.block_on(body);
    rt.shutdown_timeout(Duration::from_secs(10));
}

/// A `switchboard server`, which runs the controllers, and a client of it.
pub struct Cluster {
    pub server: TestServer,
    pub client: Client,
}

pub async fn client(server: &TestServer) -> Client {
    controllers::client_from_kubeconfig(&server.kubeconfig)
        .await
        .expect("client from the server's kubeconfig")
}

/// Waits until the server's controllers act: a Service in a scratch namespace gets its
/// placeholder EndpointSlice. They start once their caches are synced, which under load takes
/// a few seconds; the loop returns as soon as the slice appears.
async fn wait_for_controllers(client: &Client) {
    create_namespace(client, "controllers-probe").await;
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "probe"}, "spec": {"selector": {"app": "probe"}, "ports": [{"port": 80}]}})).unwrap();
    match Api::<Service>::namespaced(client.clone(), "controllers-probe")
        .create(&PostParams::default(), &svc)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("probe service: {e}"),
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "controllers-probe");
    eventually(60, "the server's controllers to start", || async {
        let l = slices.list(&ListParams::default()).await.ok()?;
        (!l.items.is_empty()).then_some(())
    })
    .await;
}

impl Cluster {
    pub async fn start() -> Cluster {
        Self::start_with_flags(&[]).await
    }

    /// With extra `switchboard server` flags (e.g. `--controllers=*,-serviceaccount`).
    pub async fn start_with_flags(flags: &[&str]) -> Cluster {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let server = tokio::task::spawn_blocking(move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            TestServer::start_with(env!("CARGO_BIN_EXE_switchboard"), &flags)
        })
        .await
        .expect("starting the server");
        let client = client(&server).await;
        within(
            90,
            "waiting for the controllers",
            wait_for_controllers(&client),
        )
        .await;
        Cluster { server, client }
    }

    /// Restarts the server (SIGTERM, start on the same data), controllers included.
    pub async fn restart(&mut self) {
        // TestServer's stop (20 s) and start (60 s) are bounded.
        blocking(|| {
            self.server.stop();
            self.server.restart();
        });
        self.client = client(&self.server).await;
        within(
            90,
            "waiting for the controllers",
            wait_for_controllers(&self.client),
        )
        .await;
    }

    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn slices(&self, ns: &str) -> Api<EndpointSlice> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// A bash script with KUBECONFIG, TOKEN and API set as in the reference transcripts
    /// (`TestServer::bash`), killed after `secs`: kubectl waits forever on a stalled server.
    pub async fn bash(&self, script: &str, secs: u64) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg("-o")
            .arg("pipefail")
            .arg("-c")
            .arg(script)
            .env("KUBECONFIG", &self.server.kubeconfig)
            .env("KUBECACHEDIR", self.server.data_dir().join("kubecache"))
            .env("TOKEN", &self.server.token)
            .env("API", self.server.url())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so that a timeout ends kubectl too.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("running bash");
        let pid = child.id();
        let run = tokio::task::spawn_blocking(move || child.wait_with_output());
        match tokio::time::timeout(Duration::from_secs(secs), run).await {
            Ok(out) => out.expect("join").expect("bash output"),
            Err(_) => {
                // Our own child's process group, by its id.
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg("--")
                    .arg(format!("-{pid}"))
                    .status();
                panic!("command did not finish within {secs} s:\n{script}");
            }
        }
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
