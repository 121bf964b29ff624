//! The failover benchmark (bench/lb runs it): kill the announcing node N times and time from
//! the kill to the client's first successful request, with gratuitous ARP (Switchboard's
//! default) and, as the baseline measured in the same run, without it (the client finds the
//! new owner only when its neighbour entry fails and it asks again).

use crate::l2::{until_success, L2Lab, NO_GRATUITOUS};
use crate::support::external_ip;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The node that answers for the address once requests succeed and the answer has stayed the
/// same for longer than a lease duration plus the announcement repeats.
fn stable_owner(l: &L2Lab) -> usize {
    let vip = l.vip();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no stable owner");
        if until_success(l, vip, 80, Instant::now(), Duration::from_secs(20)).is_none() {
            continue;
        }
        let Some(a) = l.announcing_node(vip) else {
            continue;
        };
        std::thread::sleep(Duration::from_millis(2500));
        if until_success(l, vip, 80, Instant::now(), Duration::from_secs(5)).is_some()
            && l.announcing_node(vip) == Some(a)
        {
            return a;
        }
    }
}

fn failovers(gratuitous: bool, kills: usize) -> Vec<Duration> {
    let flags: &[&str] = if gratuitous { &[] } else { &[NO_GRATUITOUS] };
    let mut l = L2Lab::start_with(&[], flags);
    l.apply_pool_and_advertisement();
    l.apply_service("web", 80);
    external_ip(&l.server, "default", "web", |c| c != "<pending>");
    let mut times = Vec::new();
    // LB_BENCH_TCPDUMP=1 records the ARP traffic the client sees, to explain the numbers.
    let dump = std::env::var("LB_BENCH_TCPDUMP").is_ok().then(|| {
        let mut c = l.client.command("tcpdump");
        c.args(["-l", "-n", "-e", "-tt", "-i", "eth0", "arp"]);
        l.client.spawn(c)
    });
    for k in 0..kills {
        let owner = stable_owner(&l);
        // The client's neighbour entry for the address at the kill (state and ages), for the
        // report: it decides how the client can notice the move.
        let neigh = l
            .client
            .exec(&["ip", "-s", "neigh", "show", &l.vip().to_string()]);
        eprintln!(
            "before kill {k}: {}",
            String::from_utf8_lossy(&neigh.stdout).trim()
        );
        let t0 = Instant::now();
        l.kill_node(owner);
        let (took, _) = until_success(&l, l.vip(), 80, t0, Duration::from_secs(120))
            .expect("no recovery within 120 s");
        let neigh = l
            .client
            .exec(&["ip", "-s", "neigh", "show", &l.vip().to_string()]);
        eprintln!(
            "after recovery {k}: {}",
            String::from_utf8_lossy(&neigh.stdout).trim()
        );
        let new_owner = l.announcing_node(l.vip());
        assert!(
            new_owner.is_some_and(|n| n != owner),
            "kill {k}: the address did not move"
        );
        eprintln!(
            "gratuitous={gratuitous} kill {k}: {} -> {}: {took:?}",
            l.nodes[owner].name,
            l.nodes[new_owner.unwrap()].name
        );
        times.push(took);
        if dump.is_some() {
            eprintln!(
                "kill {k} at {:?} since the epoch",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    - took
            );
        }
        l.revive_node(owner);
    }
    if let Some(d) = dump {
        eprintln!("client ARP traffic:\n{}", d.log());
    }
    times
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    // Nearest rank: the smallest sample with at least q of the samples at or below it.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn summary(name: &str, mut t: Vec<Duration>) -> String {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{name}: n={} p50={:.0}ms p99={:.0}ms max={:.0}ms min={:.0}ms all=[{}]",
        t.len(),
        ms(quantile(&t, 0.5)),
        ms(quantile(&t, 0.99)),
        ms(*t.last().unwrap()),
        ms(t[0]),
        t.iter()
            .map(|d| format!("{:.0}", ms(*d)))
            .collect::<Vec<_>>()
            .join(",")
    )
}

#[test]
#[ignore = "benchmark: run by bench/lb/run.sh"]
fn bench_failover() {
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let load_before = load();
    let kills = env_usize("LB_BENCH_KILLS", 20);
    let baseline_kills = env_usize("LB_BENCH_BASELINE_KILLS", 5);
    let ours = failovers(true, kills);
    let mut report = vec![summary(
        "switchboard (lease 100/500 ms, gratuitous ARP)",
        ours.clone(),
    )];
    if baseline_kills > 0 {
        let base = failovers(false, baseline_kills);
        let med = |mut v: Vec<Duration>| {
            v.sort();
            quantile(&v, 0.5)
        };
        let ratio = med(base.clone()).as_secs_f64() / med(ours).as_secs_f64();
        report.push(summary("baseline (same election, no gratuitous ARP)", base));
        report.push(format!("median ratio baseline/switchboard: {ratio:.1}x"));
    }
    report.push(format!(
        "load average before: {load_before}; after: {} (2 cores)",
        load()
    ));
    for line in &report {
        println!("{line}");
    }
    if let Ok(path) = std::env::var("LB_BENCH_OUT") {
        std::fs::write(path, report.join("\n") + "\n").unwrap();
    }
}
