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
use stats::{summarize, Summary};
use std::path::PathBuf;
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
    #[arg(long, default_value_t = 30)]
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
}

async fn run_switchboard(bin: &std::path::Path, w: &Workload) -> Result<Results> {
    eprintln!("switchboard ({}) ...", bin.display());
    let server = switchboard::Switchboard::start(bin)?;
    let creates = server.creates(w, "bench").await?;
    eprintln!("  {} creates in {:.2?}", creates.count, creates.elapsed);
    let lists = server.lists(w, "bench").await?;
    if lists.items != w.objects {
        bail!(
            "switchboard listed {} objects, expected {}",
            lists.items,
            w.objects
        );
    }
    let watch = server.watches(w, "bench-watch").await?;
    Ok(Results {
        creates,
        lists,
        watch,
    })
}

/// `size`: bytes per value, the size of the object switchboard stored for the same create.
async fn run_etcd(bin: &std::path::Path, w: &Workload, size: usize) -> Result<Results> {
    eprintln!("etcd ({}) ...", bin.display());
    let server = etcd::Etcd::start(bin).await?;
    let creates = server.creates(w, "bench", size).await?;
    eprintln!("  {} creates in {:.2?}", creates.count, creates.elapsed);
    let lists = server.lists(w, "bench").await?;
    if lists.items != w.objects {
        bail!("etcd returned {} keys, expected {}", lists.items, w.objects);
    }
    let watch = server.watches(w, "bench-watch", size).await?;
    Ok(Results {
        creates,
        lists,
        watch,
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
        bail!("{} not found: build it first with `cargo build --release -p switchboard`, or pass --switchboard", bin.display());
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

    let mut sb = Vec::new();
    let mut et = Vec::new();
    for round in 0..args.rounds.max(1) {
        eprintln!("round {} of {}", round + 1, args.rounds.max(1));
        // Alternate which system goes first, so neither always gets the cooler machine.
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
        "load average (1, 5, 15 min) {load_before} before, {} after",
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

type Figure<'a> = (String, Box<dyn Fn(&Results) -> f64 + 'a>, bool);

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
    let lat = |r: &Results| summarize(r.creates.latencies.clone());
    let lists = |r: &Results| summarize(r.lists.latencies.clone());
    let figures: Vec<Figure> = vec![
        (
            format!("creates/s, {} clients", w.clients),
            Box::new(|r: &Results| r.creates.per_sec()),
            true,
        ),
        (
            "create latency p50 (ms)".into(),
            Box::new(move |r: &Results| lat(r).p50),
            false,
        ),
        (
            "create latency p99 (ms)".into(),
            Box::new(move |r: &Results| lat(r).p99),
            false,
        ),
        (
            format!("list {} objects p50 (ms)", w.objects),
            Box::new(move |r: &Results| lists(r).p50),
            false,
        ),
        (
            format!("list {} objects p99 (ms)", w.objects),
            Box::new(move |r: &Results| lists(r).p99),
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
    println!("| measure | {name} | etcd | {name} / etcd | per round | goal met |");
    println!("|---|---:|---:|---:|---|:---:|");
    for (label, f, higher_is_better) in &figures {
        let sa = median(a.iter().map(f).collect());
        if b.is_empty() {
            println!("| {label} | {sa:.2} | - | - | - | - |");
            continue;
        }
        let sb = median(b.iter().map(f).collect());
        let r = sa / sb;
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
            "| {label} | {sa:.2} | {sb:.2} | {r:.2} | {} | {} |",
            rounds.join(" "),
            if ok { "yes" } else { "no" }
        );
    }
    println!();
    let detail = |who: &str, rs: &[Results]| {
        for (i, r) in rs.iter().enumerate() {
            let s: Summary = r.watch.from_ack;
            println!(
                "- {who}, round {}: {} creates in {:.2} s; list body {:.1} MiB; watch delivery max {:.2} ms (n = {}), after the writer's acknowledgement p50 {:.2} ms, p99 {:.2} ms",
                i + 1,
                r.creates.count,
                r.creates.elapsed.as_secs_f64(),
                r.lists.bytes as f64 / (1024.0 * 1024.0),
                r.watch.from_send.max,
                r.watch.from_send.n,
                s.p50,
                s.p99
            );
        }
    };
    detail(name, a);
    detail("etcd", b);
    println!("\nWatch delivery: from just before the write is sent to the moment each watcher has decoded the event.");
}
