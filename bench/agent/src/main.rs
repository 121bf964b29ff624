//! Benchmark of the node agent (issue 5): HTTP connections/s and request latency through a
//! ClusterIP divided by the same straight to the pod IP, measured in the same run and
//! interleaved, at 1 and at N Services; the time from an API write to the rule being live
//! (p50/p99); the agent's full-sync time and memory at each scale. Prints a Markdown report.
//! See README.md for the method. Needs root (network namespaces).

mod load;
mod probe;

use anyhow::{bail, Context, Result};
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use test_support::netlab::{self, k8s, Lab, Netns, Node, Process};
use test_support::TestServer;

#[derive(Parser)]
#[command(
    about = "ClusterIP vs pod IP traffic and programming latency through `switchboard agent`"
)]
struct Args {
    /// The switchboard binary (default: next to this one).
    #[arg(long)]
    switchboard: Option<PathBuf>,
    /// Service counts to measure at, ascending (each is the total, the bench Service included).
    #[arg(long, value_delimiter = ',', default_value = "1,10000")]
    scales: Vec<usize>,
    /// Endpoints per filler Service.
    #[arg(long, default_value_t = 5)]
    endpoints: usize,
    /// Milliseconds per traffic measurement (one path, one shape, one round).
    #[arg(long, default_value_t = 500)]
    round_ms: u64,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Interleaved rounds (pod IP then ClusterIP, ClusterIP then pod IP, ...) per scale.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// API writes timed per scale for the programming latency.
    #[arg(long, default_value_t = 30)]
    changes: usize,
    /// API writes in flight while creating the filler Services.
    #[arg(long, default_value_t = 64)]
    create_concurrency: usize,
    /// Extra flags for `switchboard agent`.
    #[arg(long, allow_hyphen_values = true)]
    agent_flag: Vec<String>,
    /// RUST_LOG for the agent (its lines reach stderr with SWITCHBOARD_TEST_LOG set).
    #[arg(long, default_value = "warn")]
    agent_log: String,
}

/// Client source addresses per path for the traffic.
const SOURCES_PER_PATH: usize = 16;

struct Bench {
    args: Args,
    bin: PathBuf,
    server: TestServer,
    lab: Lab,
    node: Node,
    client: Netns,
    sources: Vec<IpAddr>,
    pod_ip: Ipv4Addr,
    agent: Option<Process>,
    kube: kube::Client,
    services: usize,
    probes: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = match &args.switchboard {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("switchboard"),
    };
    if !bin.exists() {
        bail!(
            "{} not found (build it: cargo build --release -p switchboard)",
            bin.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut b = rt.block_on(Bench::start(args, bin))?;
    let mut report = String::new();
    report += "# Agent benchmark\n\n";
    report += &format!(
        "{} ms per traffic measurement, {} concurrent connections, {} interleaved rounds per path, {} timed API writes per scale; filler Services have {} endpoints each.\n\n",
        b.args.round_ms, b.args.concurrency, b.args.rounds, b.args.changes, b.args.endpoints
    );
    let scales = b.args.scales.clone();
    for scale in scales {
        report += &rt.block_on(b.scale(scale))?;
    }
    println!("{report}");
    Ok(())
}

/// UTC time of day with microseconds, to line up with the agent's and server's log lines.
fn wall_clock(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_micros()
    )
}

/// Per-round lines only with SWITCHBOARD_TEST_LOG set.
fn progress_verbose(msg: &str) {
    if std::env::var_os("SWITCHBOARD_TEST_LOG").is_some() {
        progress(msg);
    }
}

fn progress(msg: &str) {
    eprintln!("[bench-agent] {msg}");
}

impl Bench {
    async fn start(args: Args, bin: PathBuf) -> Result<Bench> {
        std::env::set_var("NO_COLOR", "1");
        // The server as deployed: every controller and the LoadBalancer allocator on. The
        // bench's Services have no selector, so the EndpointSlices (the timed writes among them)
        // are the bench's own, as a controller of another system would write them; the
        // controllers still see and index every object. (Until session 3 they scanned every
        // slice per Service and the LoadBalancer one re-planned over all Services per change:
        // at 50k the API stopped answering, so the bench ran with both off.)
        let server = tokio::task::block_in_place(|| {
            TestServer::start_with(bin.to_str().unwrap(), &[])
        });
        let lab = Lab::new();
        // The echo pod on n1; the client is a pod on n2, where the measured agent runs: a
        // ClusterIP is DNATed at the client's node and crosses the LAN to n1 exactly as the
        // direct pod-IP traffic does. (A client off the cluster CIDR would be masqueraded too,
        // and one client address hammering one endpoint runs the SNAT port space out within
        // seconds: conntrack holds closed flows for 120 s.)
        let server_node = lab.node("n1");
        let node = lab.node("n2");
        let pod = lab.pod(&server_node, "p1");
        lab.http_echo(&pod, 80);
        let client = lab.pod(&node, "load").netns.clone();
        // Source addresses for the traffic (see load.rs): two disjoint pools, one per path,
        // swapped every round.
        let sources: Vec<IpAddr> = (0..2 * SOURCES_PER_PATH)
            .map(|i| IpAddr::V4(Ipv4Addr::new(10, 42, node.index, 200 + i as u8)))
            .collect();
        for ip in &sources {
            let out = client.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
            if !out.status.success() {
                bail!(
                    "adding {ip} to the client pod: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        tokio::task::block_in_place(|| {
            k8s::register_node(&server, &server_node);
            k8s::register_node(&server, &node);
            k8s::register_pod(&server, &pod, "default", &[("app", "bench")]);
        });
        let kc = Kubeconfig::read_from(&server.kubeconfig)?;
        let kube = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?,
        )?;
        let b = Bench {
            args,
            bin,
            server,
            lab,
            pod_ip: pod.ip,
            node,
            client,
            sources,
            agent: None,
            kube,
            services: 0,
            probes: 0,
        };
        // The measured Service: its EndpointSlice holds the real pod.
        b.service("bench", &[b.pod_ip]).await?;
        Ok(b)
    }

    fn spawn_agent(&self) -> Process {
        let kubeconfig = self.lab.kubeconfig_for(&self.node, &self.server);
        let mut cmd = self.node.command(&self.bin);
        cmd.arg("agent")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "--node-name",
                &self.node.name,
                "--cluster-cidr",
                netlab::CLUSTER_CIDR,
            ])
            .args(&self.args.agent_flag)
            .env("RUST_LOG", &self.args.agent_log)
            .env("NO_COLOR", "1");
        self.node.spawn(cmd)
    }

    /// The agent's current and peak RSS (VmRSS, VmHWM). The process is `ip netns exec`, which
    /// execs the agent in place, so the pid is the agent's.
    fn agent_memory_mib(&self) -> (Option<f64>, Option<f64>) {
        let Some(pid) = self.agent.as_ref().map(|a| a.id()) else {
            return (None, None);
        };
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| -> Option<f64> {
            let kb: f64 = status
                .lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// A selectorless Service `name` on port 80 and its EndpointSlice with `ips`; returns the
    /// ClusterIP. The slice is written only when `ips` is not empty.
    async fn service(&self, name: &str, ips: &[Ipv4Addr]) -> Result<Ipv4Addr> {
        let svcs: Api<Service> = Api::namespaced(self.kube.clone(), "default");
        let svc: Service = serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"ports": [{"port": 80, "targetPort": 80, "protocol": "TCP"}]}}),
        )?;
        let created = svcs
            .create(&PostParams::default(), &svc)
            .await
            .with_context(|| format!("creating Service {name}"))?;
        let ip = created
            .spec
            .and_then(|s| s.cluster_ip)
            .context("no clusterIP")?
            .parse()?;
        if !ips.is_empty() {
            self.slice(name, ips).await?;
        }
        Ok(ip)
    }

    async fn slice(&self, name: &str, ips: &[Ipv4Addr]) -> Result<()> {
        let slices: Api<EndpointSlice> = Api::namespaced(self.kube.clone(), "default");
        let endpoints: Vec<_> = ips
            .iter()
            .map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}}))
            .collect();
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"port": 80, "protocol": "TCP"}],
        }))?;
        slices
            .create(&PostParams::default(), &slice)
            .await
            .with_context(|| format!("creating EndpointSlice {name}-1"))?;
        Ok(())
    }

    /// Connects from the client to `addr` until it is accepted; when the accepted attempt
    /// completed. See `probe` for why attempts overlap.
    fn wait_live(&self, addr: SocketAddr, limit: Duration) -> Result<Instant> {
        match self
            .client
            .block_on(probe::wait(addr, probe::Until::Accepted, limit))
        {
            Some(at) => Ok(at),
            None => bail!("{addr} not live within {limit:?}"),
        }
    }

    /// Waits until connections to `addr` are refused (the Service is programmed, without
    /// endpoints).
    fn wait_refused(&self, addr: SocketAddr, limit: Duration) -> Result<()> {
        match self
            .client
            .block_on(probe::wait(addr, probe::Until::Refused, limit))
        {
            Some(_) => Ok(()),
            None => bail!("{addr} never refused within {limit:?}"),
        }
    }

    fn fake_endpoints(&self, i: usize) -> Vec<Ipv4Addr> {
        // Addresses in n1's pod CIDR nobody has; the filler Services are never used.
        (0..self.args.endpoints)
            .map(|k| Ipv4Addr::new(10, 42, 1, 100 + ((i + k) % 150) as u8))
            .collect()
    }

    async fn fill_to(&mut self, total: usize) -> Result<()> {
        // The bench Service and the probes so far count towards the total.
        let need = total.saturating_sub(self.services + self.probes + 1);
        if need == 0 {
            return Ok(());
        }
        progress(&format!("creating {need} Services with EndpointSlices"));
        let start = self.services;
        let this = &*self;
        let mut stream = futures::stream::iter(start..start + need)
            .map(|i| async move {
                this.service(&format!("fill-{i}"), &this.fake_endpoints(i))
                    .await
            })
            .buffer_unordered(this.args.create_concurrency);
        let t = Instant::now();
        while let Some(r) = stream.next().await {
            r?;
        }
        drop(stream);
        self.services += need;
        progress(&format!("created in {:.1} s", t.elapsed().as_secs_f64()));
        Ok(())
    }

    fn new_probe(&mut self) -> String {
        self.probes += 1;
        format!("probe-{}", self.probes)
    }

    async fn scale(&mut self, scale: usize) -> Result<String> {
        let mut out = format!(
            "## {scale} Service{}\n\n",
            if scale == 1 { "" } else { "s" }
        );
        // The filler is written while no agent runs (an agent re-syncing thousands of Services
        // while they are created only slows both down on two cores); the agent started next
        // then has everything to program at once: its full sync.
        if let Some(mut a) = self.agent.take() {
            a.terminate(Duration::from_secs(10));
        }
        self.fill_to(scale).await?;
        let bench_ip: IpAddr = Api::<Service>::namespaced(self.kube.clone(), "default")
            .get("bench")
            .await?
            .spec
            .and_then(|s| s.cluster_ip)
            .context("bench clusterIP")?
            .parse()?;

        // Full sync: from a fresh agent's start to a Service written last being live (process
        // start, the initial lists, the first sync of everything).
        let name = self.new_probe();
        let ip = self.service(&name, &[self.pod_ip]).await?;
        let t = Instant::now();
        self.agent = Some(self.spawn_agent());
        let live = tokio::task::block_in_place(|| {
            self.wait_live(SocketAddr::new(ip.into(), 80), Duration::from_secs(900))
        })?;
        let full_sync = live - t;
        progress(&format!("{scale} Services: full sync {full_sync:?}"));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss, peak) = self.agent_memory_mib();
        out += &format!(
            "- Full sync: agent start to all {scale} Services live (process start, initial lists, first sync): **{:.2} s**; agent RSS 3 s later {}, peak RSS {}\n",
            full_sync.as_secs_f64(),
            mib(rss),
            mib(peak),
        );

        out += &self.traffic(bench_ip).await;
        out += &self.programming_latency().await?;
        eprintln!("{out}");
        Ok(out)
    }

    /// Connections/s and kept-alive requests through the ClusterIP against the pod IP,
    /// interleaved: each round runs both paths, in the order A B then B A, so that drift over
    /// the run (other work on the machine) falls on both alike.
    async fn traffic(&self, cluster_ip: IpAddr) -> String {
        let direct = SocketAddr::new(self.pod_ip.into(), 80);
        let via = SocketAddr::new(cluster_ip, 80);
        let (secs, conc) = (
            Duration::from_millis(self.args.round_ms),
            self.args.concurrency,
        );
        let mut conns = [load::Load::default(), load::Load::default()];
        let mut reqs = [load::Load::default(), load::Load::default()];
        let (mut conn_ratios, mut req_ratios) = (Vec::new(), Vec::new());
        let (mut both_conn, mut both_req, mut both_errors) = (Vec::new(), Vec::new(), 0);
        for round in 0..self.args.rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut c_round = [0.0; 2];
            let mut r_round = [0.0; 2];
            for k in order {
                let addr = [direct, via][k];
                // The pools swap every round: no path keeps the same source addresses.
                let pool = (k + round) % 2;
                let sources =
                    self.sources[pool * SOURCES_PER_PATH..(pool + 1) * SOURCES_PER_PATH].to_vec();
                let s2 = sources.clone();
                let c = tokio::task::block_in_place(|| {
                    self.client
                        .block_on(async move { load::connections(addr, &s2, conc, secs).await })
                });
                let r = tokio::task::block_in_place(|| {
                    self.client
                        .block_on(async move { load::requests(addr, &sources, conc, secs).await })
                });
                progress_verbose(&format!(
                    "round {round} {}: {:.0} conn/s, {:.0} req/s",
                    if k == 0 { "pod IP" } else { "ClusterIP" },
                    c.per_sec(),
                    r.per_sec()
                ));
                c_round[k] = c.per_sec();
                r_round[k] = r.per_sec();
                conns[k].absorb(c);
                reqs[k].absorb(r);
            }
            conn_ratios.push(c_round[1] / c_round[0]);
            req_ratios.push(r_round[1] / r_round[0]);
            // Both paths at the same time, half the connections each: whatever else the machine
            // does at that moment falls on both.
            let (pa, pb) = (
                self.sources[..SOURCES_PER_PATH].to_vec(),
                self.sources[SOURCES_PER_PATH..].to_vec(),
            );
            let (sa, sb) = if round % 2 == 0 { (pa, pb) } else { (pb, pa) };
            let half = conc.div_ceil(2);
            let (c0, c1, r0, r1) = tokio::task::block_in_place(|| {
                self.client.block_on(async move {
                    let (c0, c1) = tokio::join!(
                        load::connections(direct, &sa, half, secs),
                        load::connections(via, &sb, half, secs)
                    );
                    let (r0, r1) = tokio::join!(
                        load::requests(direct, &sa, half, secs),
                        load::requests(via, &sb, half, secs)
                    );
                    (c0, c1, r0, r1)
                })
            });
            both_conn.push(c1.per_sec() / c0.per_sec());
            both_req.push(r1.per_sec() / r0.per_sec());
            both_errors += c0.errors + c1.errors + r0.errors + r1.errors;
        }
        let mut out = String::new();
        out += "\n| | pod IP (baseline) | ClusterIP | ClusterIP / pod IP (all rounds) | per-round ratio: median [p25-p75] (min-max) |\n|---|---|---|---|---|\n";
        let (c0, c1) = (conns[0].per_sec(), conns[1].per_sec());
        out += &format!(
            "| new connection per request: conn/s | {c0:.0} | {c1:.0} | **{:.3}** | {} |\n",
            c1 / c0,
            spread(&mut conn_ratios)
        );
        for (what, q) in [("p50", 0.5), ("p99", 0.99)] {
            let (l0, l1) = (conns[0].quantile_ms(q), conns[1].quantile_ms(q));
            out += &format!(
                "| … connection + request latency {what} (ms) | {l0:.3} | {l1:.3} | {:.3} | |\n",
                l1 / l0
            );
        }
        let (r0, r1) = (reqs[0].per_sec(), reqs[1].per_sec());
        out += &format!(
            "| kept-alive connections: req/s | {r0:.0} | {r1:.0} | **{:.3}** | {} |\n",
            r1 / r0,
            spread(&mut req_ratios)
        );
        for (what, q) in [("p50", 0.5), ("p99", 0.99)] {
            let (l0, l1) = (reqs[0].quantile_ms(q), reqs[1].quantile_ms(q));
            out += &format!(
                "| … request latency {what} (ms) | {l0:.3} | {l1:.3} | {:.3} | |\n",
                l1 / l0
            );
        }
        out += &format!(
            "| errors (conn / kept-alive) | {} / {} | {} / {} | | |\n\n",
            conns[0].errors, reqs[0].errors, conns[1].errors, reqs[1].errors
        );
        out += &format!(
            "- Both paths at once (half the connections each, {} rounds, {} errors), ClusterIP / pod IP per round, median [p25-p75] (min-max): new connection per request **{}**; kept-alive requests **{}**\n\n",
            both_conn.len(),
            both_errors,
            spread(&mut both_conn),
            spread(&mut both_req)
        );
        out
    }

    /// Programming latency: a Service without endpoints is programmed (connections refused),
    /// then after a quiet 1.2 s (past a 1 s minSyncPeriod) its EndpointSlice is written and
    /// the client connects until one is accepted.
    async fn programming_latency(&mut self) -> Result<String> {
        let mut lat = Vec::new();
        for i in 0..self.args.changes {
            let name = self.new_probe();
            let ip = self.service(&name, &[]).await?;
            let addr = SocketAddr::new(ip.into(), 80);
            tokio::task::block_in_place(|| self.wait_refused(addr, Duration::from_secs(120)))?;
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let (t0, wall0) = (Instant::now(), std::time::SystemTime::now());
            self.slice(&name, &[self.pod_ip]).await?;
            let acked = t0.elapsed();
            let live =
                tokio::task::block_in_place(|| self.wait_live(addr, Duration::from_secs(120)))?;
            let l = live - t0;
            if i == 0 || self.args.agent_log != "warn" {
                progress(&format!(
                    "change {i} ({name}) written at {}, live after {l:?} (API acknowledged after {acked:?})",
                    wall_clock(wall0)
                ));
            }
            lat.push(l);
        }
        if lat.is_empty() {
            return Ok(String::new());
        }
        lat.sort();
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        Ok(format!(
            "- Programming latency, EndpointSlice write to first accepted connection ({} writes): **p50 {:.1} ms, p99 {:.1} ms**, max {:.1} ms\n\n",
            lat.len(),
            q(0.5),
            q(0.99),
            lat.last().unwrap().as_secs_f64() * 1000.0
        ))
    }
}

fn mib(v: Option<f64>) -> String {
    v.map(|m| format!("{m:.1} MiB"))
        .unwrap_or_else(|| "n/a".into())
}

/// "median [p25-p75] (min-max)" of per-round ratios.
fn spread(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "{:.3} [{:.3}-{:.3}] ({:.3}-{:.3})",
        q(0.5),
        q(0.25),
        q(0.75),
        v[0],
        v[v.len() - 1]
    )
}
