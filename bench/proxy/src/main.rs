//! Data-plane benchmark. For each size (Services × 5 endpoints) it builds the Services and
//! EndpointSlices, then inside a fresh network namespace measures: the cold full sync, the
//! incremental sync after one endpoint changes (what the agent does: the changed slice goes
//! into a `SnapshotTracker`, the proxier renders and diffs only that port), and, as the baseline in
//! the same run, a naive full reload of the same ruleset (render everything, `nft -f` the whole
//! table: kube-proxy's full sync) and a read-back of the table (`nft -j list table`, which a
//! proxier that does not keep its own model pays on every sync). Each size runs in its own
//! process so that its peak memory is its own.
//!
//! The proxier uses the default backend (`NftAuto`: nf_tables netlink, one batch per
//! transaction). A second table compares it with the `nft -f` CLI in the same run: a second
//! proxier on the CLI, in its own namespace, goes through the same snapshots, its syncs
//! interleaved with the first one's so that both see the same machine load.
//!
//! Run: `cargo run --release -p bench-proxy -- [SIZES...]` (default 1000 10000 50000), as root.

mod fixtures;

use fixtures::{config, objects, rss_kib, slice, ENDPOINTS};
use proxy_core::{IpFamily, Snapshot, SnapshotTracker};
use proxy_nft::{ConntrackCli, NftAuto, NftCli, NftProxier};
use std::process::Command;
use std::time::{Duration, Instant};

const INCREMENTAL_RUNS: usize = 21;
const BASELINE_RUNS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--one" {
        one(args[2].parse().expect("size"));
        return;
    }
    let sizes: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(|a| a.parse().expect("size")).collect()
    } else {
        vec![1000, 10000, 50000]
    };
    let mut main_rows = Vec::new();
    let mut backend_rows = Vec::new();
    for n in sizes {
        let out = Command::new(&args[0])
            .args(["--one", &n.to_string()])
            .output()
            .expect("run one size");
        if !out.status.success() {
            eprintln!("size {n} failed: {}", String::from_utf8_lossy(&out.stderr));
            continue;
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(r) = line.strip_prefix("BACKENDS ") {
                backend_rows.push(r.to_string());
            } else {
                main_rows.push(line.to_string());
            }
        }
    }
    println!("| services | endpoints | build snapshot | full sync (cold) | incremental sync p50 / p95 (script bytes; p50 of its parts: tracker update, render+diff, nft) | naive full reload p50 | ratio | read back table | peak RSS | RSS after the incremental syncs |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in main_rows {
        println!("{r}");
    }
    println!();
    println!("| services | cold full sync apply: netlink / nft CLI (ratio) | incremental apply p50: netlink / nft CLI (ratio) | incremental apply p95: netlink / nft CLI | scripts sent via netlink / CLI fallback | netlink one-element transaction p50: plain / goto verdict |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in backend_rows {
        println!("{r}");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p95(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 95 / 100).min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn nft_in(ns: &str, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("nft");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write script");
    }
    drop(input);
    assert!(child.wait().expect("nft").success(), "nft {args:?} failed");
}

/// What the kernel alone costs per transaction on this table: one netlink batch adding and one
/// deleting an element of `cluster-ips` (no verdict), against the same with a `goto` element in
/// `service-ips`, which makes the kernel re-validate every chain reachable from the base chains
/// (with the dispatch layout the fixtures' Services have no chains: the graph is small).
fn kernel_floor(ns: &str) -> (Duration, Duration) {
    use proxy_nft::Nft;
    let mut nl = proxy_nft::NftNetlink::in_netns(ns).expect("netlink socket");
    let t = "ip switchboard";
    let mut plain = Vec::new();
    let mut verdict = Vec::new();
    for i in 0..7 {
        let script = format!("add element {t} cluster-ips {{ 10.111.0.{i} }}\n");
        let start = Instant::now();
        nl.apply(&script).expect("plain element");
        plain.push(start.elapsed());
        nl.apply(&format!(
            "delete element {t} cluster-ips {{ 10.111.0.{i} }}\n"
        ))
        .expect("plain element");
        let script = format!(
            "add element {t} service-ips {{ 10.111.0.{i} . tcp . 80 : goto reject-chain }}\n"
        );
        let start = Instant::now();
        nl.apply(&script).expect("verdict element");
        verdict.push(start.elapsed());
        nl.apply(&format!(
            "delete element {t} service-ips {{ 10.111.0.{i} . tcp . 80 }}\n"
        ))
        .expect("verdict element");
    }
    (median(plain), median(verdict))
}

fn netns(name: String) -> Ns {
    assert!(Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip")
        .success());
    Ns(name)
}

fn one(n: usize) {
    let ns = netns(format!("sbbench-{}-{n}", std::process::id()));
    // The same proxier driven through the nft CLI, for the backend comparison.
    let cli_ns = netns(format!("sbbench-{}-{n}-cli", std::process::id()));
    let cfg = config();
    let (services, slices) = objects(n);
    let t = Instant::now();
    let snap = Snapshot::build(&services, &slices, &cfg);
    let build = t.elapsed();
    assert_eq!(snap.service_ports.len(), n);
    drop(snap);
    // The agent's path: a tracker fed every object once (first sync), then only changes.
    let mut tracker = SnapshotTracker::from_objects(cfg.clone(), &services, &slices);

    let nft = NftAuto::in_netns(&ns.0);
    assert!(nft.has_netlink(), "no netlink socket in {}", ns.0);
    let counts = nft.counts();
    let mut proxier = NftProxier::with_backends(cfg.clone(), nft, ConntrackCli::in_netns(&ns.0))
        .expect("proxier");
    let mut cli = NftProxier::with_backends(
        cfg.clone(),
        NftCli::in_netns(&cli_ns.0),
        ConntrackCli::in_netns(&cli_ns.0),
    )
    .expect("proxier");
    let t = Instant::now();
    let report = proxier.sync(tracker.snapshot()).expect("full sync");
    let full = t.elapsed();
    assert!(report.full);
    let full_apply = report.apply;
    let report = cli.sync(tracker.snapshot()).expect("full sync (CLI)");
    assert!(report.full);
    let cli_full_apply = report.apply;

    // Incremental: one endpoint of one Service changes; the agent updates the tracker with that
    // slice and syncs.
    let mut incremental = Vec::new();
    let mut building = Vec::new();
    let mut rendering = Vec::new();
    let mut applying = Vec::new();
    let mut cli_applying = Vec::new();
    let mut bytes = 0;
    for r in 0..INCREMENTAL_RUNS {
        let changed = slice(n, (r * 7919) % n, Some(((r * 7919) % n, r % ENDPOINTS)));
        let t = Instant::now();
        tracker.apply_slice(&changed);
        let snap = tracker.snapshot();
        building.push(t.elapsed());
        let report = proxier.sync(snap).expect("incremental sync");
        incremental.push(t.elapsed());
        rendering.push(report.render);
        applying.push(report.apply);
        assert!(!report.full && !report.unchanged, "{report:?}");
        bytes = report.script_bytes;
        let cli_report = cli.sync(snap).expect("incremental sync (CLI)");
        assert!(
            !cli_report.full && cli_report.script_bytes == bytes,
            "{cli_report:?}"
        );
        cli_applying.push(cli_report.apply);
    }
    let (via_netlink, via_cli) = counts.get();
    drop(cli);
    drop(cli_ns);
    let (plain, verdict) = kernel_floor(&ns.0);
    let rss_steady = rss_kib("VmRSS:");
    let last = tracker.snapshot().clone();

    // Baseline: the same change applied as a naive full reload of the whole table.
    let mut naive = Vec::new();
    for _ in 0..BASELINE_RUNS {
        let t = Instant::now();
        let table = proxy_nft::render_family(&last, &cfg, IpFamily::V4);
        nft_in(&ns.0, &["-f", "-"], Some(&table.full_script()));
        naive.push(t.elapsed());
    }
    let mut readback = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        nft_in(&ns.0, &["-j", "list", "table", "ip", "switchboard"], None);
        readback.push(t.elapsed());
    }
    let inc = median(incremental.clone());
    let naive50 = median(naive);
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-9);
    let (nl50, cli50) = (median(applying.clone()), median(cli_applying.clone()));
    println!(
        "BACKENDS | {n} | {} / {} ({:.1}x) | {} / {} ({:.1}x) | {} / {} | {via_netlink} / {via_cli} | {} / {} |",
        ms(full_apply),
        ms(cli_full_apply),
        ratio(full_apply, cli_full_apply),
        ms(nl50),
        ms(cli50),
        ratio(nl50, cli50),
        ms(p95(applying.clone())),
        ms(p95(cli_applying)),
        ms(plain),
        ms(verdict),
    );
    println!(
        "| {n} | {} | {} | {} | {} / {} ({bytes} B; {}, {}, {}) | {} | {:.0}x | {} | {} MiB | {} MiB |",
        n * ENDPOINTS,
        ms(build),
        ms(full),
        ms(inc),
        ms(p95(incremental)),
        ms(median(building)),
        ms(median(rendering)),
        ms(median(applying)),
        ms(naive50),
        naive50.as_secs_f64() / inc.as_secs_f64(),
        ms(median(readback)),
        rss_kib("VmHWM:") / 1024,
        rss_steady / 1024,
    );
}
