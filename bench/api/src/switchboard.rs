//! The system under test: `switchboard server` (a release build) over HTTPS, driven with
//! kube-rs clients built from the kubeconfig it writes, sending raw JSON as any client does.

use crate::process::Server;
use crate::stats::ms;
use crate::workload::{CreateRun, ListRun, WatchResult, WatchRun, Workload};
use anyhow::{anyhow, bail, Context, Result};
use futures::AsyncBufReadExt;
use kube::api::{ListParams, PostParams, WatchParams};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Switchboard {
    server: Server,
    kubeconfig: PathBuf,
}

impl Switchboard {
    pub fn start(bin: &Path) -> Result<Switchboard> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench-")
            .tempdir()?;
        let mut child = Command::new(bin)
            .arg("server")
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--listen")
            .arg("127.0.0.1:0")
            // Only the line that says where it listens; no per-request logging in a benchmark.
            .env("RUST_LOG", "warn,switchboard=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let server = Server::new(child, dir);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("address=")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                {
                    let _ = tx.send(addr.to_string());
                } else if line.contains("WARN") || line.contains("ERROR") {
                    eprintln!("[switchboard] {line}");
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(60))
            .map_err(|_| anyhow!("switchboard did not report a listen address within 60 s"))?;
        let kubeconfig = server.dir().join("kubeconfig");
        Ok(Switchboard { server, kubeconfig })
    }

    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// A new client with its own connection pool.
    pub async fn client(&self) -> Result<Client> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    async fn clients(&self, n: usize) -> Result<Vec<Client>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.client().await?);
        }
        Ok(out)
    }
}

fn configmaps(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

fn configmap_body(ns: &str, name: &str, payload: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {"payload": payload},
    }))
    .unwrap()
}

async fn create_namespace(c: &Client, ns: &str) -> Result<()> {
    let body = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )?;
    let req =
        kube::core::Request::new("/api/v1/namespaces").create(&PostParams::default(), body)?;
    c.request_text(req)
        .await
        .with_context(|| format!("creating namespace {ns}"))?;
    Ok(())
}

/// One create; returns the acknowledged object's size in bytes.
async fn create(c: &Client, ns: &str, name: &str, payload: &str) -> Result<usize> {
    let req = kube::core::Request::new(configmaps(ns))
        .create(&PostParams::default(), configmap_body(ns, name, payload))?
        .map(Body::from);
    let resp = c.send(req).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await?;
    if status != 201 {
        bail!(
            "create {ns}/{name}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes.len())
}

impl Switchboard {
    pub async fn creates(&self, w: &Workload, ns: &str) -> Result<CreateRun> {
        let admin = self.client().await?;
        create_namespace(&admin, ns).await?;
        let clients = self.clients(w.clients).await?;
        // Open every connection (TCP + TLS) before the clock starts, as long-running clients have.
        for c in &clients {
            c.request_text(
                kube::core::Request::new(configmaps(ns)).list(&ListParams::default().limit(1))?,
            )
            .await?;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in clients {
            let (next, ns, payload, n) = (next.clone(), ns.to_string(), w.payload(), w.objects);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut bytes = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>((lat, bytes));
                    }
                    let t = Instant::now();
                    bytes += create(&c, &ns, &format!("cm-{i:06}"), &payload).await?;
                    lat.push(ms(t.elapsed()));
                }
            }));
        }
        let mut latencies = Vec::new();
        let mut bytes = 0;
        for t in tasks {
            let (l, b) = t.await??;
            latencies.extend(l);
            bytes += b;
        }
        let elapsed = started.elapsed();
        Ok(CreateRun {
            count: latencies.len(),
            elapsed,
            latencies,
            object_bytes: bytes / w.objects.max(1),
        })
    }

    /// Full lists (no limit, JSON) of the namespace the creates filled; timed until the last
    /// byte of the body has arrived.
    pub async fn lists(&self, w: &Workload, ns: &str) -> Result<ListRun> {
        let c = self.client().await?;
        let mut latencies = Vec::new();
        let mut bytes = 0;
        let mut items = 0;
        for i in 0..=w.lists {
            let req = kube::core::Request::new(configmaps(ns))
                .list(&ListParams::default())?
                .map(Body::from);
            let t = Instant::now();
            let resp = c.send(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect_bytes().await?;
            let took = ms(t.elapsed());
            if status != 200 {
                bail!("list: {status} {}", String::from_utf8_lossy(&body));
            }
            if i == 0 {
                // The first list warms the connection and is checked, not timed.
                let v: Value = serde_json::from_slice(&body)?;
                items = v["items"].as_array().map_or(0, |a| a.len());
                bytes = body.len();
                continue;
            }
            latencies.push(took);
        }
        Ok(ListRun {
            items,
            bytes,
            latencies,
        })
    }

    pub async fn watches(&self, w: &Workload, ns: &str) -> Result<WatchResult> {
        let admin = self.client().await?;
        create_namespace(&admin, ns).await?;
        let list: Value = admin
            .request(
                kube::core::Request::new(configmaps(ns)).list(&ListParams::default().limit(1))?,
            )
            .await?;
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .ok_or_else(|| anyhow!("list without resourceVersion"))?
            .to_string();

        let run = WatchRun::new(w);
        let mut tasks = Vec::new();
        for _ in 0..w.watchers {
            let c = self.client().await?;
            let (rv, ns, run) = (rv.clone(), ns.to_string(), run.clone());
            tasks.push(tokio::spawn(async move {
                let req = kube::core::Request::new(configmaps(&ns))
                    .watch(&WatchParams::default().timeout(290), &rv)?;
                let mut lines = c.request_stream(req).await?.lines();
                let mut seen = vec![None; run.events];
                let mut left = run.events + 1;
                while left > 0 {
                    let Some(line) = futures::StreamExt::next(&mut lines).await else {
                        bail!("watch ended early")
                    };
                    let now = Instant::now();
                    let ev: Value = serde_json::from_str(&line?)?;
                    let name = ev["object"]["metadata"]["name"].as_str().unwrap_or("");
                    if name == "ready" {
                        run.ready.fetch_add(1, Ordering::Relaxed);
                        left -= 1;
                    } else if let Some(i) = name
                        .strip_prefix("w-")
                        .and_then(|i| i.parse::<usize>().ok())
                    {
                        if seen[i].replace(now).is_none() {
                            left -= 1;
                        }
                    }
                }
                Ok::<_, anyhow::Error>(seen)
            }));
        }
        let payload = w.payload();
        run.drive(tasks, |name| {
            let (admin, payload, ns) = (admin.clone(), payload.clone(), ns.to_string());
            async move { create(&admin, &ns, &name, &payload).await.map(|_| ()) }
        })
        .await
    }
}
