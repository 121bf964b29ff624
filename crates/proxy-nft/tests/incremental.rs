//! Incremental syncs against a real kernel: whatever sequence of snapshots is applied as
//! differences, the kernel ends up with exactly what a full load of the last snapshot gives;
//! and a restarted proxier adopts the table instead of deleting it.

mod common;

use common::*;
use proptest::prelude::*;
use proxy_core::{IpFamily, ServicePort, Snapshot};
use proxy_nft::{ConntrackCli, NftCli, NftProxier};
use serde_json::Value;

/// `nft -j list table` of both families, made comparable: no handles, elements sorted,
/// objects sorted (rule order within a chain kept).
fn canonical(ns: &Netns) -> Vec<String> {
    let mut out = Vec::new();
    for fam in ["ip", "ip6"] {
        let Ok(json) = ns.try_sh(&format!("nft -j list table {fam} switchboard")) else {
            out.push(format!("{fam}: no table"));
            continue;
        };
        let v: Value = serde_json::from_str(&json).unwrap();
        for mut item in v["nftables"].as_array().unwrap().clone() {
            if item.get("metainfo").is_some() {
                continue;
            }
            strip_handles(&mut item);
            for kind in ["set", "map"] {
                if let Some(elems) = item
                    .get_mut(kind)
                    .and_then(|s| s.get_mut("elem"))
                    .and_then(|e| e.as_array_mut())
                {
                    elems.sort_by_key(|e| e.to_string());
                }
            }
            out.push(item.to_string());
        }
    }
    // Rules keep their order (the "rule" objects of one chain appear in order, and sort is stable
    // on the chain name prefix only).
    out.sort_by_key(|s| sort_key(s));
    out
}

fn sort_key(s: &str) -> String {
    let v: Value = serde_json::from_str(s).unwrap();
    if let Some(r) = v.get("rule") {
        format!("rule {} {}", r["family"], r["chain"])
    } else {
        s.to_string()
    }
}

fn strip_handles(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("handle");
            for (_, x) in m.iter_mut() {
                strip_handles(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_handles),
        _ => {}
    }
}

fn full_load(ns: &Netns, snap: &Snapshot) {
    for t in proxy_nft::render(snap, &cfg()) {
        ns.nft_apply(&t.full_script()).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_incremental_syncs_equals_a_full_load_of_the_last(
        steps in proptest::collection::vec(proptest::collection::vec(svc_spec(), 5), 2..5)
    ) {
        let incremental = Netns::new();
        let reference = Netns::new();
        let mut p = NftProxier::with_backends(cfg(), NftCli::in_netns(&incremental.name), ConntrackCli::in_netns(&incremental.name)).unwrap();
        for (i, specs) in steps.iter().enumerate() {
            let snap = build(specs);
            let report = p.sync(&snap).unwrap();
            prop_assert_eq!(report.full, i == 0, "only the first sync is full: {:?}", report);
            prop_assert!(report.partial_failure.is_none());
            full_load(&reference, &snap);
            prop_assert_eq!(canonical(&incremental), canonical(&reference), "after step {}", i);
        }
    }
}

#[test]
fn changing_one_endpoint_applies_only_data_elements_and_matches_a_full_load() {
    let ns = Netns::new();
    let reference = Netns::new();
    let mut p = NftProxier::with_backends(
        cfg(),
        NftCli::in_netns(&ns.name),
        ConntrackCli::in_netns(&ns.name),
    )
    .unwrap();
    let mut ports: Vec<ServicePort> = (0..50)
        .map(|i| {
            service(
                &format!("svc{i}"),
                &format!("10.43.1.{i}"),
                &["10.42.0.11", "10.42.0.12"],
            )
        })
        .collect();
    p.sync(&snapshot(ports.clone())).unwrap();
    ports[7].endpoints[1] = endpoint("10.42.0.99", 8080, false);
    let snap = snapshot(ports);
    let r = p.sync(&snap).unwrap();
    assert!(!r.full);
    // Dispatched by the shared maps: no chain changes, only elements (the slot's new
    // endpoint replaces the old one; the new endpoint's hairpin element).
    assert_eq!(r.changes.chains_changed, 0, "{r:?}");
    assert_eq!((r.changes.chains_added, r.changes.chains_deleted), (0, 0));
    assert_eq!(
        (r.changes.elements_added, r.changes.elements_deleted),
        (2, 1),
        "slot 1 of svc7 and the hairpin of the new endpoint: {r:?}"
    );
    full_load(&reference, &snap);
    assert_eq!(canonical(&ns), canonical(&reference));
}

#[test]
fn a_restarted_proxier_adopts_the_table_and_keeps_affinity_entries() {
    let ns = Netns::new();
    let mut sp = service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.12"]);
    sp.affinity_timeout = Some(600);
    // rr: a Service with a chain of its own (random ones are dispatched by the shared maps).
    let mut stale = service("gone", "10.43.0.21", &["10.42.0.13"]);
    stale.scheduler = proxy_core::Scheduler::RoundRobin;
    let mut first = NftProxier::with_backends(
        cfg(),
        NftCli::in_netns(&ns.name),
        ConntrackCli::in_netns(&ns.name),
    )
    .unwrap();
    first.sync(&snapshot([sp.clone(), stale])).unwrap();
    // A client's affinity, as the packet path would have recorded it.
    ns.sh("nft add element ip switchboard 'affinity-default/web/tcp/http__10.42.0.11/8080' '{ 10.42.0.10 timeout 600s }'");
    drop(first);

    let mut second = NftProxier::with_backends(
        cfg(),
        NftCli::in_netns(&ns.name),
        ConntrackCli::in_netns(&ns.name),
    )
    .unwrap();
    let snap = snapshot([sp]);
    let r = second.sync(&snap).unwrap();
    assert!(r.adopted && !r.full, "{r:?}");
    assert_eq!(
        r.changes.chains_deleted, 1,
        "the stale service's chain goes: {r:?}"
    );
    let listing =
        ns.sh("nft list set ip switchboard 'affinity-default/web/tcp/http__10.42.0.11/8080'");
    assert!(
        listing.contains("10.42.0.10"),
        "affinity entry kept:\n{listing}"
    );
    // Apart from that entry, the table is what a full load gives.
    ns.sh("nft flush set ip switchboard 'affinity-default/web/tcp/http__10.42.0.11/8080'");
    let reference = Netns::new();
    full_load(&reference, &snap);
    assert_eq!(canonical(&ns), canonical(&reference));
    // And from now on syncs are differences again.
    let r = second.sync(&snap).unwrap();
    assert!(r.unchanged && !r.adopted);
    let _ = IpFamily::V4;
}

#[test]
fn changing_the_affinity_timeout_recreates_the_sets_in_one_transaction() {
    let ns = Netns::new();
    let reference = Netns::new();
    let mut p = NftProxier::with_backends(
        cfg(),
        NftCli::in_netns(&ns.name),
        ConntrackCli::in_netns(&ns.name),
    )
    .unwrap();
    let mut sp = service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.12"]);
    sp.affinity_timeout = Some(60);
    p.sync(&snapshot([sp.clone()])).unwrap();
    sp.affinity_timeout = Some(120);
    let snap = snapshot([sp]);
    let r = p.sync(&snap).unwrap();
    assert!(!r.full && r.partial_failure.is_none(), "{r:?}");
    full_load(&reference, &snap);
    assert_eq!(canonical(&ns), canonical(&reference));
}
