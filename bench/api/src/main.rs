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
}

struct Results {
    creates: CreateRun,
    lists: ListRun,
    watch: WatchResult,
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

    let sb = if args.no_switchboard {
        None
    } else {
        eprintln!("switchboard ({}) ...", bin.display());
        let server = switchboard::Switchboard::start(&bin)?;
        let creates = server.creates(&w, "bench").await?;
        eprintln!("  {} creates in {:.2?}", creates.count, creates.elapsed);
        let lists = server.lists(&w, "bench").await?;
        eprintln!(
            "  {} lists of {} objects",
            lists.latencies.len(),
            lists.items
        );
        let watch = server.watches(&w, "bench-watch").await?;
        eprintln!("  {} watchers x {} events", w.watchers, w.events);
        if lists.items != w.objects {
            bail!(
                "switchboard listed {} objects, expected {}",
                lists.items,
                w.objects
            );
        }
        Some(Results {
            creates,
            lists,
            watch,
        })
    };

    let et = if args.no_etcd {
        None
    } else {
        eprintln!("etcd ({}) ...", args.etcd.display());
        let server = etcd::Etcd::start(&args.etcd).await?;
        // The size of the object switchboard stored, or an estimate of it.
        let size = sb
            .as_ref()
            .map_or(w.payload_bytes + 300, |r| r.creates.object_bytes);
        let creates = server.creates(&w, "bench", size).await?;
        eprintln!("  {} creates in {:.2?}", creates.count, creates.elapsed);
        let lists = server.lists(&w, "bench").await?;
        let watch = server.watches(&w, "bench-watch", size).await?;
        if lists.items != w.objects {
            bail!("etcd returned {} keys, expected {}", lists.items, w.objects);
        }
        Some(Results {
            creates,
            lists,
            watch,
        })
    };

    match (&sb, &et) {
        (Some(sb), et) => print_report(&w, "switchboard", sb, et.as_ref()),
        (None, Some(et)) => print_report(&w, "etcd", et, None),
        (None, None) => {}
    }
    Ok(())
}

fn print_report(w: &Workload, name: &str, sb: &Results, et: Option<&Results>) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## {name} vs etcd, same machine ({cores} cores), same run\n");
    println!(
        "{} ConfigMaps with {} B of payload ({name} stores {} B per object; etcd gets values of that size), {} concurrent writers; {} timed full lists; {} watchers x {} writes, {} ms apart.\n",
        w.objects, w.payload_bytes, sb.creates.object_bytes, w.clients, w.lists, w.watchers, w.events, w.interval.as_millis()
    );
    println!("| measure | {name} | etcd | {name} / etcd | goal met |");
    println!("|---|---:|---:|---:|:---:|");
    let row = |name: &str, s: f64, e: Option<f64>, higher_is_better: bool| {
        let (ev, ratio, ok) = match e {
            Some(e) => {
                let r = s / e;
                let ok = if higher_is_better { r >= 1.0 } else { r <= 1.0 };
                (
                    format!("{e:.2}"),
                    format!("{r:.2}"),
                    if ok { "yes" } else { "no" }.to_string(),
                )
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!("| {name} | {s:.2} | {ev} | {ratio} | {ok} |");
    };
    let lat = |r: &Results| summarize(r.creates.latencies.clone());
    let lists = |r: &Results| summarize(r.lists.latencies.clone());
    let e = |f: &dyn Fn(&Results) -> f64| et.map(f);
    row(
        &format!("creates/s, {} clients", w.clients),
        sb.creates.per_sec(),
        e(&|r| r.creates.per_sec()),
        true,
    );
    row(
        "create latency p50 (ms)",
        lat(sb).p50,
        e(&|r| lat(r).p50),
        false,
    );
    row(
        "create latency p99 (ms)",
        lat(sb).p99,
        e(&|r| lat(r).p99),
        false,
    );
    row(
        &format!("list {} objects p50 (ms)", w.objects),
        lists(sb).p50,
        e(&|r| lists(r).p50),
        false,
    );
    row(
        &format!("list {} objects p99 (ms)", w.objects),
        lists(sb).p99,
        e(&|r| lists(r).p99),
        false,
    );
    row(
        &format!("watch delivery p50 (ms), {} watchers", w.watchers),
        sb.watch.from_send.p50,
        e(&|r| r.watch.from_send.p50),
        false,
    );
    row(
        &format!("watch delivery p99 (ms), {} watchers", w.watchers),
        sb.watch.from_send.p99,
        e(&|r| r.watch.from_send.p99),
        false,
    );
    println!();
    let detail = |name: &str, r: &Results| {
        let s: Summary = r.watch.from_ack;
        println!(
            "- {name}: list body {:.1} MiB; watch delivery max {:.2} ms (n = {}); after the writer's acknowledgement p50 {:.2} ms, p99 {:.2} ms",
            r.lists.bytes as f64 / (1024.0 * 1024.0),
            r.watch.from_send.max,
            r.watch.from_send.n,
            s.p50,
            s.p99
        );
    };
    detail(name, sb);
    if let Some(et) = et {
        detail("etcd", et);
    }
    println!("\nWatch delivery: from just before the write is sent to the moment each watcher has decoded the event.");
}
