//! Memory by stage, without the kernel: the RSS the objects take, then what a
//! `SnapshotTracker` fed all of them adds, then what an `NftProxier` (on the in-memory `Fake`
//! backend) adds after its first, full sync and after 20 one-endpoint syncs, and the process's
//! peak. RSS deltas include what the allocator keeps after freeing (the full sync's whole table
//! and script are transient). Also the time of those incremental syncs, CPU only.
//!
//! Then what the agent's other components add for the same objects: the DNS server's own
//! copy of the objects (its reflector stores) and its compiled zone, and the L2 announcer's
//! copy (its stores). Objects here carry no managedFields (the components drop them).
//!
//! Run: `cargo run --release -p bench-proxy --example memory -- 10000`

#[path = "../src/fixtures.rs"]
mod fixtures;

use fixtures::{config, objects, rss_kib, slice, ENDPOINTS};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy_core::SnapshotTracker;
use proxy_nft::{Fake, NftProxier};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10000, |a| a.parse().expect("size"));
    let cfg = config();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let r0 = rss_kib("VmRSS:");
    let (services, slices) = objects(n);
    let r1 = rss_kib("VmRSS:");
    let mut tracker = SnapshotTracker::from_objects(cfg.clone(), &services, &slices);
    let r2 = rss_kib("VmRSS:");
    let fake = Fake::default();
    let mut proxier = NftProxier::with_backends(cfg, fake.clone(), fake.clone()).expect("proxier");
    proxier.sync(tracker.snapshot()).expect("full sync");
    fake.0.lock().expect("fake").scripts.clear();
    let r3 = rss_kib("VmRSS:");
    let mut times: Vec<(Duration, Duration)> = Vec::new();
    for r in 0..21 {
        let i = (r * 7919) % n;
        let changed = slice(n, i, Some((i, r % ENDPOINTS)));
        let t = Instant::now();
        tracker.apply_slice(&changed);
        let report = proxier.sync(tracker.snapshot()).expect("sync");
        times.push((t.elapsed(), report.render));
        fake.0.lock().expect("fake").scripts.clear();
    }
    let r4 = rss_kib("VmRSS:");
    // The components' stores hold their own deserialized objects (Arc'd per object).
    let copy = || -> (Vec<Arc<Service>>, Vec<Arc<EndpointSlice>>) {
        let (s, e) = objects(n);
        (
            s.into_iter().map(Arc::new).collect(),
            e.into_iter().map(Arc::new).collect(),
        )
    };
    let dns_stores = copy();
    let r5 = rss_kib("VmRSS:");
    let zone = dns::Zone::build(
        &dns::ZoneConfig::default(),
        dns_stores.0.iter().map(|s| s.as_ref()),
        dns_stores.1.iter().map(|s| s.as_ref()),
    );
    let r6 = rss_kib("VmRSS:");
    let announce_stores = copy();
    let r7 = rss_kib("VmRSS:");
    times.sort();
    println!(
        "| {n} | {:.0} MiB | +{:.0} MiB | +{:.0} MiB | {:.0} MiB | {:.0} MiB | {:.2} ms ({:.2} ms) | +{:.0} + {:.0} MiB | +{:.0} MiB | {:.0} MiB |",
        mib(r1 - r0),
        mib(r2 - r1),
        mib(r3.saturating_sub(r2)),
        mib(r4),
        mib(rss_kib("VmHWM:")),
        times[10].0.as_secs_f64() * 1000.0,
        times[10].1.as_secs_f64() * 1000.0,
        mib(r5.saturating_sub(r4)),
        mib(r6.saturating_sub(r5)),
        mib(r7.saturating_sub(r6)),
        mib(r7),
    );
    drop((zone, dns_stores, announce_stores));
}
