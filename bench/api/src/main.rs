//! `bench-api`: creates/s with concurrent clients, full-list latency and watch delivery latency
//! of `switchboard server`, with a single-member etcd on the same machine measured in the same
//! run as the baseline, and the ratios between them. See bench/README.md.

mod etcd;
mod process;
mod stats;
mod switchboard;
mod workload;

use anyhow::{bail, Result};
use clap::Parser;
use process::{Cpu, CpuMeter};
use stats::summarize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use workload::{CreateRun, ListRun, WatchResult, Workload};

#[derive(Parser)]
#[command(about = "Switchboard API benchmark with an etcd baseline from the same run")]
struct Args {
    /// The switchboard binary (a release build); default: next to this program.
    #[arg(long)]
    switchboard: Option<PathBuf>,
    /// The etcd binary (Debian: `apt-get install etcd-server`).
    #[arg(long, default_value = "etcd")]
    etcd: PathBuf,
    /// Skip the etcd baseline (no ratios then).
    #[arg(long)]
    no_etcd: bool,
    /// Measure only the etcd baseline.
    #[arg(long, conflicts_with = "no_etcd")]
    no_switchboard: bool,
    /// Concurrent writers in the create phase.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Objects created, then listed.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Bytes of payload per ConfigMap (the stored object is a little larger).
    #[arg(long, default_value_t = 1000)]
    payload: usize,
    /// Timed full lists.
    #[arg(long, default_value_t = 100)]
    lists: usize,
    /// Concurrent watchers.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Timed writes delivered to every watcher.
    #[arg(long, default_value_t = 200)]
    events: usize,
    /// Milliseconds between two timed writes.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Rounds (each starts fresh servers); figures are medians over rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

struct Results {
    creates: CreateRun,
    lists: ListRun,
    watch: WatchResult,
    /// CPU used in each phase: creates, lists, watch.
    cpu: [Cpu; 3],
}

async fn run_switchboard(bin: &Path, w: &Workload) -> Result<Results> {
    eprintln!("switchboard ({}) ...", bin.display());
    let server = switchboard::Switchboard::start(bin)?;
    let m = CpuMeter::start(server.pid());
    let creates = server.creates(w, "bench").await?;
    let c0 = m.stop();
    eprintln!("  {} creates in {:.2?}", creates.count, creates.elapsed);
    let m = CpuMeter::start(server.pid());
    let lists = server.lists(w, "bench").await?;
    let c1 = m.stop();
    if lists.items != w.objects {
        bail!(
            "switchboard listed {} objects, expected {}",
            lists.items,
            w.objects
        );
    }
    let m = CpuMeter::start(server.pid());
    let watch = server.watches(w, "bench-watch").await?;
    let c2 = m.stop();
    Ok(Results {
        creates,
        lists,
        watch,
        cpu: [c0, c1, c2],
    })
}

/// `size`: bytes per value, the size of the object switchboard stored for the same create.
async fn run_etcd(bin: &Path, w: &Workload, size: usize) -> Result<Results> {
    eprintln!("etcd ({}) ...", bin.display());
    let server = etcd::Etcd::start(bin).await?;
    let m = CpuMeter::start(server.pid());
    let creates = server.creates(w, "bench", size).await?;
    let c0 = m.stop();
    eprintln!("  {} creates in {:.2?}", creates.count, creates.elapsed);
    let m = CpuMeter::start(server.pid());
    let lists = server.lists(w, "bench").await?;
    let c1 = m.stop();
    if lists.items != w.objects {
        bail!("etcd returned {} keys, expected {}", lists.items, w.objects);
    }
    let m = CpuMeter::start(server.pid());
    let watch = server.watches(w, "bench-watch", size).await?;
    let c2 = m.stop();
    Ok(Results {
        creates,
        lists,
        watch,
        cpu: [c0, c1, c2],
    })
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    process::clean_up_on_interrupt();
    let bin = match &args.switchboard {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("switchboard"),
    };
    if !args.no_switchboard && !bin.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release -p switchboard`, or pass --switchboard",
            bin.display()
        );
    }
    let w = Workload {
        clients: args.clients,
        objects: args.objects,
        payload_bytes: args.payload,
        lists: args.lists,
        watchers: args.watchers,
        events: args.events,
        interval: Duration::from_millis(args.interval_ms),
    };
    eprintln!("workload: {w:?}");
    let load_before = load_average();

    let rounds = args.rounds.max(1);
    let mut sb = Vec::new();
    let mut et = Vec::new();
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        // Alternate which system goes first, so neither always gets the quieter machine.
        let sb_first = round % 2 == 0;
        if sb_first && !args.no_switchboard {
            sb.push(run_switchboard(&bin, &w).await?);
        }
        if !args.no_etcd {
            let size = sb
                .last()
                .map_or(w.payload_bytes + 400, |r: &Results| r.creates.object_bytes);
            et.push(run_etcd(&args.etcd, &w, size).await?);
        }
        if !sb_first && !args.no_switchboard {
            sb.push(run_switchboard(&bin, &w).await?);
        }
    }

    let load = format!(
        "Load average (1, 5, 15 min): {load_before} before, {} after",
        load_average()
    );
    match (sb.is_empty(), et.is_empty()) {
        (false, _) => print_report(&w, &load, "switchboard", &sb, &et),
        (true, false) => print_report(&w, &load, "etcd", &et, &[]),
        (true, true) => {}
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// (label, the figure from one round, whether higher is better)
type Figure = (String, Box<dyn Fn(&Results) -> f64>, bool);

fn print_report(w: &Workload, load: &str, name: &str, a: &[Results], b: &[Results]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## {name} vs etcd, same machine ({cores} cores), same run\n");
    println!(
        "{} ConfigMaps with {} B of payload ({name} stores {} B per object; etcd gets values of that size), {} concurrent writers; {} timed full lists; {} watchers x {} writes, {} ms apart. {} round(s); each figure is the median over rounds. {load}.\n",
        w.objects,
        w.payload_bytes,
        a[0].creates.object_bytes,
        w.clients,
        w.lists,
        w.watchers,
        w.events,
        w.interval.as_millis(),
        a.len(),
    );
    let figures: Vec<Figure> = vec![
        (
            format!("creates/s, {} clients", w.clients),
            Box::new(|r: &Results| r.creates.per_sec()),
            true,
        ),
        (
            "create latency p50 (ms)".into(),
            Box::new(|r: &Results| summarize(r.creates.latencies.clone()).p50),
            false,
        ),
        (
            "create latency p99 (ms)".into(),
            Box::new(|r: &Results| summarize(r.creates.latencies.clone()).p99),
            false,
        ),
        (
            format!("list {} objects p50 (ms)", w.objects),
            Box::new(|r: &Results| summarize(r.lists.latencies.clone()).p50),
            false,
        ),
        (
            format!("list {} objects p99 (ms)", w.objects),
            Box::new(|r: &Results| summarize(r.lists.latencies.clone()).p99),
            false,
        ),
        (
            format!("watch delivery p50 (ms), {} watchers", w.watchers),
            Box::new(|r: &Results| r.watch.from_send.p50),
            false,
        ),
        (
            format!("watch delivery p99 (ms), {} watchers", w.watchers),
            Box::new(|r: &Results| r.watch.from_send.p99),
            false,
        ),
    ];
    table(name, &figures, a, b);

    // The list phase also makes one untimed warm-up list; the watch phase one untimed write.
    let (creates, lists, deliveries) = (
        w.objects as f64,
        w.lists as f64 + 1.0,
        (w.watchers * (w.events + 1)) as f64,
    );
    let cpu: Vec<Figure> = vec![
        (
            "server CPU per create (ms)".into(),
            Box::new(move |r: &Results| 1e3 * r.cpu[0].server / creates),
            false,
        ),
        (
            "client CPU per create (ms)".into(),
            Box::new(move |r: &Results| 1e3 * r.cpu[0].client / creates),
            false,
        ),
        (
            "server CPU per full list (ms)".into(),
            Box::new(move |r: &Results| 1e3 * r.cpu[1].server / lists),
            false,
        ),
        (
            "client CPU per full list (ms)".into(),
            Box::new(move |r: &Results| 1e3 * r.cpu[1].client / lists),
            false,
        ),
        (
            "server CPU per watch event delivered (µs)".into(),
            Box::new(move |r: &Results| 1e6 * r.cpu[2].server / deliveries),
            false,
        ),
        (
            "client CPU per watch event delivered (µs)".into(),
            Box::new(move |r: &Results| 1e6 * r.cpu[2].client / deliveries),
            false,
        ),
    ];
    println!("\nCPU time (user + system, from /proc) per operation: less disturbed by other load on the machine than wall time, and it shows where the time goes.\n");
    table(name, &cpu, a, b);

    println!();
    for (who, rs) in [(name, a), ("etcd", b)] {
        for (i, r) in rs.iter().enumerate() {
            println!(
                "- {who}, round {}: {} creates in {:.2} s; list body {:.1} MiB; watch delivery max {:.2} ms (n = {}), measured from the writer's acknowledgement p50 {:.2} ms, p99 {:.2} ms",
                i + 1,
                r.creates.count,
                r.creates.elapsed.as_secs_f64(),
                r.lists.bytes as f64 / (1024.0 * 1024.0),
                r.watch.from_send.max,
                r.watch.from_send.n,
                r.watch.from_ack.p50,
                r.watch.from_ack.p99
            );
        }
    }
    println!("\nWatch delivery: from just before the write is sent to the moment each watcher has decoded the event.");
}

fn table(name: &str, figures: &[Figure], a: &[Results], b: &[Results]) {
    println!("| measure | {name} | etcd | {name} / etcd | per round | goal met |");
    println!("|---|---:|---:|---:|---|:---:|");
    for (label, f, higher_is_better) in figures {
        let fa = median(a.iter().map(f).collect());
        if b.is_empty() {
            println!("| {label} | {fa:.2} | - | - | - | - |");
            continue;
        }
        let fb = median(b.iter().map(f).collect());
        let r = fa / fb;
        let rounds: Vec<String> = a
            .iter()
            .zip(b)
            .map(|(x, y)| format!("{:.2}", f(x) / f(y)))
            .collect();
        let ok = if *higher_is_better {
            r >= 1.0
        } else {
            r <= 1.0
        };
        println!(
            "| {label} | {fa:.2} | {fb:.2} | {r:.2} | {} | {} |",
            rounds.join(" "),
            if ok { "yes" } else { "no" }
        );
    }
}
