//! Controllers benchmark: how long a pod change takes to reach its EndpointSlice, with
//! `switchboard server` (a release build, its own controllers) at 1,000 and 10,000 pods. The
//! baseline, measured in the same run on the same server, is the pod write itself. See
//! README.md for the method and REPORT.md for results.

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Pod change -> EndpointSlice latency of switchboard's controllers")]
struct Args {
    /// The switchboard binary (a release build); default: next to this program.
    #[arg(long)]
    switchboard: Option<PathBuf>,
    /// Pod counts to measure, one fresh server each.
    #[arg(long, default_value = "1000,10000", value_delimiter = ',')]
    pods: Vec<usize>,
    /// Services (svc-0 selects every pod, svc-1..8 a shard each, the rest one pod each).
    #[arg(long, default_value_t = 100)]
    services: usize,
    /// Readiness flips measured per size.
    #[arg(long, default_value_t = 200)]
    flips: usize,
    /// Also (or, with `--pods ''`, only) measure convergence after creating this many
    /// Services with one pod each (0: skip).
    #[arg(long, default_value_t = 0)]
    scale_services: usize,
    /// How long the scale run may wait for convergence.
    #[arg(long, default_value_t = 1200)]
    scale_timeout_secs: u64,
}

const NS: &str = "bench";
const SHARDS: usize = 8;

/// A `switchboard server` child on an ephemeral port in a temporary directory; killed on drop.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(bin: &Path) -> Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench-controllers-")
            .tempdir()?;
        let mut child = Command::new(bin)
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn,switchboard=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("address=") {
                    let _ = tx.send(());
                } else if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("[switchboard] {line}");
                }
            }
        });
        let server = Server { child, dir };
        rx.recv_timeout(Duration::from_secs(60))
            .map_err(|_| anyhow!("switchboard did not start within 60 s"))?;
        Ok(server)
    }

    async fn client(&self) -> Result<Client> {
        let kc = kube::config::Kubeconfig::read_from(self.dir.path().join("kubeconfig"))?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
        Ok(Client::try_from(cfg)?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ip(i: usize) -> String {
    format!("10.{}.{}.{}", 42 + i / 65536, (i / 256) % 256, i % 256)
}

/// What Service `i` selects and how many pods that is.
fn selection(i: usize, pods_n: usize) -> (Value, usize) {
    match i {
        0 => (json!({"app": "bench"}), pods_n),
        i if i <= SHARDS => (
            json!({"app": "bench", "shard": format!("s{}", i - 1)}),
            pods_n / SHARDS,
        ),
        i => (json!({"app": "bench", "solo": format!("p{i}")}), 1),
    }
}

fn pod(i: usize, ready: bool) -> Result<Pod> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": format!("pod-{i}"), "labels": {"app": "bench", "shard": format!("s{}", i % SHARDS), "solo": format!("p{i}")}},
        "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": "registered", "ports": [{"containerPort": 80, "name": "http"}]}]},
        "status": {"phase": "Running", "podIP": ip(i), "podIPs": [{"ip": ip(i)}], "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))?)
}

async fn populate(client: &Client, pods_n: usize, services_n: usize) -> Result<()> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    // The namespace's `default` ServiceAccount comes from the serviceaccount controller; pod
    // admission waits for it briefly, so the first pod goes alone.
    pods.create(&PostParams::default(), &pod(0, true)?).await?;
    let results: Vec<Result<()>> = futures::stream::iter(1..pods_n)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(i, true)?).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let results: Vec<Result<()>> = futures::stream::iter(0..services_n)
        .map(|i| {
            let services = services.clone();
            async move {
                let (selector, _) = selection(i, pods_n);
                let svc: Service = serde_json::from_value(json!({"metadata": {"name": format!("svc-{i}")}, "spec": {"selector": selector, "ports": [{"name": "web", "port": 80, "targetPort": 80}]}}))?;
                services.create(&PostParams::default(), &svc).await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(())
}

/// Waits until every Service's slices hold exactly its pods, none over 100.
async fn converged(
    client: &Client,
    pods_n: usize,
    services_n: usize,
    limit: Duration,
) -> Result<()> {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let deadline = Instant::now() + limit;
    loop {
        let all = slices.list(&ListParams::default()).await?.items;
        let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for s in &all {
            if s.endpoints.len() > 100 {
                bail!(
                    "slice {:?} holds {} endpoints",
                    s.metadata.name,
                    s.endpoints.len()
                );
            }
            let svc = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"));
            if let Some(svc) = svc {
                let e = per.entry(svc.clone()).or_default();
                e.0 += s.endpoints.len();
                e.1 += 1;
            }
        }
        let ok = (0..services_n).all(|i| {
            let want = selection(i, pods_n).1;
            per.get(&format!("svc-{i}")) == Some(&(want, want.div_ceil(100)))
        });
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("slices did not converge within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// (ready, serving, terminating) of the endpoint with `address`.
fn conditions_of(s: &EndpointSlice, address: &str) -> Option<(bool, bool, bool)> {
    s.endpoints
        .iter()
        .find(|e| e.addresses.iter().any(|a| a == address))
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                c.ready.unwrap_or(false),
                c.serving.unwrap_or(false),
                c.terminating.unwrap_or(false),
            )
        })
}

/// A kube-rs watch on one Service's slices; each event stamped with its arrival.
fn watch_slices(
    client: &Client,
    service: &str,
) -> mpsc::UnboundedReceiver<(Instant, EndpointSlice)> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
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

async fn next_matching(
    rx: &mut mpsc::UnboundedReceiver<(Instant, EndpointSlice)>,
    pred: impl Fn(&EndpointSlice) -> bool,
) -> Result<Instant> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let (at, s) = rx.recv().await.ok_or_else(|| anyhow!("watch ended"))?;
            if pred(&s) {
                return Ok(at);
            }
        }
    })
    .await
    .map_err(|_| anyhow!("no matching slice event within 30 s"))?
}

struct Sample {
    /// Sending the status PATCH to its acknowledgement: the baseline.
    write: Duration,
    /// Sending the status PATCH to the slice event.
    slice: Duration,
}

/// Flips pod-42's readiness `flips` times (it is in svc-0, its shard svc-3, and svc-42).
async fn flips(client: &Client, n: usize) -> Result<Vec<Sample>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let target = ip(42);
    let mut rx = watch_slices(client, "svc-42");
    next_matching(&mut rx, |s| {
        conditions_of(s, &target) == Some((true, true, false))
    })
    .await?;
    let mut out = Vec::with_capacity(n);
    for round in 0..n {
        let ready = round % 2 == 1;
        let patch = json!({"status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
        let sent = Instant::now();
        pods.patch_status("pod-42", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let acked = Instant::now();
        let seen = next_matching(&mut rx, |s| {
            conditions_of(s, &target) == Some((ready, ready, false))
        })
        .await?;
        out.push(Sample {
            write: acked - sent,
            slice: seen.saturating_duration_since(sent),
        });
        // Let the other two Services' writes (svc-0's 1,000-address Endpoints among them)
        // finish, so that each flip starts from a quiet server, as a human or prober would.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(out)
}

/// The scale run: `n` pods, then `n` Services each selecting one of them (`solo=qI` next to a
/// shared `app=scale`, as a deployment per Service would look), then the wait until every
/// Service's slice holds its pod. Meanwhile a probe reads one object every 500 ms: how long
/// the API stops answering while the controllers work.
async fn scale(client: &Client, n: usize, limit: Duration) -> Result<String> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}}))?;
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.create(&PostParams::default(), &ns).await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let scale_pod = |i: usize| -> Result<Pod> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": format!("q-{i}"), "labels": {"app": "scale", "solo": format!("q{i}")}},
            "spec": {"nodeName": "node1", "containers": [{"name": "app", "image": "registered", "ports": [{"containerPort": 80}]}]},
            "status": {"phase": "Running", "podIP": ip(i), "podIPs": [{"ip": ip(i)}], "conditions": [{"type": "Ready", "status": "True"}]},
        }))?)
    };
    pods.create(&PostParams::default(), &scale_pod(0)?).await?;
    let t0 = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(1..n)
        .map(|i| {
            let pods = pods.clone();
            let p = scale_pod(i);
            async move {
                pods.create(&PostParams::default(), &p?).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let pods_took = t0.elapsed();
    // Every Service whose slice holds one endpoint, from a watch opened before the Services.
    let (tx, mut done) = mpsc::unbounded_channel::<String>();
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NS);
    let watch = tokio::spawn(async move {
        let mut stream = watcher::watcher(slices, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            if let Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) = ev {
                let svc = s
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .cloned();
                if let (Some(svc), 1) = (svc, s.endpoints.len()) {
                    if tx.send(svc).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // (worst answer time so far, start of the GET in flight).
    let probe_state = Arc::new(Mutex::new((Duration::ZERO, None::<Instant>)));
    let (probe_ns, ps) = (namespaces.clone(), probe_state.clone());
    let probe = tokio::spawn(async move {
        loop {
            let t = Instant::now();
            ps.lock().unwrap().1 = Some(t);
            let _ = probe_ns.get(NS).await;
            {
                let mut g = ps.lock().unwrap();
                g.0 = g.0.max(t.elapsed());
                g.1 = None;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    let t1 = Instant::now();
    let creating = futures::stream::iter(0..n)
        .map(|i| {
            let services = services.clone();
            async move {
                let svc: Service = serde_json::from_value(json!({"metadata": {"name": format!("svc-{i}")}, "spec": {"selector": {"app": "scale", "solo": format!("q{i}")}, "ports": [{"name": "web", "port": 80, "targetPort": 80}]}}))?;
                services.create(&PostParams::default(), &svc).await?;
                Ok::<(), anyhow::Error>(())
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>();
    let mut seen = std::collections::HashSet::new();
    let mut creating = std::pin::pin!(creating);
    let mut created: Option<Duration> = None;
    let deadline = tokio::time::Instant::now() + limit;
    let converged = loop {
        tokio::select! {
            r = &mut creating, if created.is_none() => {
                r.into_iter().collect::<Result<Vec<()>>>()?;
                created = Some(t1.elapsed());
            }
            svc = done.recv() => {
                let Some(svc) = svc else { bail!("slice watch ended") };
                seen.insert(svc);
                if seen.len() == n && created.is_some() {
                    break Some(t1.elapsed());
                }
            }
            _ = tokio::time::sleep_until(deadline) => break None,
        }
    };
    watch.abort();
    probe.abort();
    // The worst GET, counting one still waiting now.
    let worst = {
        let g = probe_state.lock().unwrap();
        g.0.max(g.1.map(|t| t.elapsed()).unwrap_or_default())
    };
    let created = created.map_or("not done".to_string(), |c| {
        format!("{:.1} s", c.as_secs_f64())
    });
    Ok(match converged {
        Some(c) => format!(
            "| {n} | {:.1} s | {created} | {:.1} s | {:.2} s |",
            pods_took.as_secs_f64(),
            c.as_secs_f64(),
            worst.as_secs_f64(),
        ),
        None => format!(
            "| {n} | {:.1} s | {created} | not within {} s ({} of {n} Services) | {:.2} s |",
            pods_took.as_secs_f64(),
            limit.as_secs(),
            seen.len(),
            worst.as_secs_f64(),
        ),
    })
}

fn percentile(v: &[Duration], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.switchboard {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("switchboard"),
    };
    // `--pods 0`: no latency run (only the scale run).
    let sizes: Vec<usize> = args.pods.iter().copied().filter(|p| *p != 0).collect();
    if sizes.iter().any(|p| p % SHARDS != 0 || *p <= 100) {
        bail!("--pods: each count must be a multiple of {SHARDS} above 100");
    }
    if !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p switchboard`, or pass --switchboard",
            bin.display()
        );
    }
    if !sizes.is_empty() {
        println!("| pods | Services | populate + converge | pod write (baseline) p50 | p99 | pod change -> EndpointSlice p50 | p99 | ratio p50 |");
        println!("|---|---|---|---|---|---|---|---|");
    }
    for &pods_n in &sizes {
        let server = Server::start(&bin)?;
        let client = server.client().await?;
        let started = Instant::now();
        populate(&client, pods_n, args.services).await?;
        converged(&client, pods_n, args.services, Duration::from_secs(900)).await?;
        let synced = started.elapsed();
        // The first full pass is over when nothing changes for a while.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let samples = flips(&client, args.flips).await?;
        let writes: Vec<Duration> = samples.iter().map(|s| s.write).collect();
        let slices: Vec<Duration> = samples.iter().map(|s| s.slice).collect();
        let (w50, w99) = (percentile(&writes, 0.5), percentile(&writes, 0.99));
        let (s50, s99) = (percentile(&slices, 0.5), percentile(&slices, 0.99));
        println!(
            "| {pods_n} | {} | {:.1} s | {w50:.1} ms | {w99:.1} ms | {s50:.1} ms | {s99:.1} ms | {:.2} |",
            args.services,
            synced.as_secs_f64(),
            s50 / w50
        );
    }
    if args.scale_services > 0 {
        let server = Server::start(&bin)?;
        let client = server.client().await?;
        let row = scale(
            &client,
            args.scale_services,
            Duration::from_secs(args.scale_timeout_secs),
        )
        .await?;
        println!();
        println!("| Services (1 pod each) | pods created in | Services created in | every slice filled after (from first Service) | slowest GET meanwhile |");
        println!("|---|---|---|---|---|");
        println!("{row}");
    }
    Ok(())
}
