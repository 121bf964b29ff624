//! `NftNetlink` against the kernel: every golden script, and the incremental transactions the
//! proxier writes for changing snapshots, applied through netlink in one network namespace and
//! through `nft -f` in another must list (`nft list ruleset`) identically. A failing batch
//! changes nothing; a construct the encoder does not know goes through the CLI in `NftAuto`.

mod common;
mod dispatch;

use common::*;
use dispatch::{DISPATCH, DISPATCH_CHURN};
use proptest::prelude::*;
use proxy_nft::{ConntrackCli, Nft, NftAuto, NftCli, NftNetlink, NftProxier};
use std::path::PathBuf;

/// `nft list ruleset` with the elements of each `elements = { ... }` sorted: the kernel's hash
/// sets list in an order that depends on a per-set random seed, not on how they were filled.
fn ruleset(ns: &Netns) -> String {
    let text = ns.sh("nft list ruleset");
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if let Some(start) = l.find("elements = { ") {
            let mut body = l[start + "elements = { ".len()..].to_string();
            while !body.trim_end().ends_with('}') {
                body.push(' ');
                body.push_str(lines.next().expect("closing brace").trim());
            }
            let body = body.trim_end().trim_end_matches('}').trim();
            let mut items: Vec<&str> = body.split(',').map(|s| s.trim()).collect();
            items.sort();
            out.push_str(&l[..start]);
            out.push_str(&format!("elements = {{ {} }}\n", items.join(", ")));
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn goldens() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nft"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 10, "golden files missing");
    out
}

#[test]
fn every_golden_script_lists_the_same_through_netlink_and_nft() {
    let via_netlink = Netns::new();
    let via_cli = Netns::new();
    let mut nl = NftNetlink::in_netns(&via_netlink.name).unwrap();
    for (name, script) in goldens() {
        nl.apply(&script)
            .unwrap_or_else(|e| panic!("{name}: netlink: {e}"));
        via_cli.nft_apply(&script).unwrap();
        let (a, b) = (ruleset(&via_netlink), ruleset(&via_cli));
        assert!(
            a.contains("table ip switchboard"),
            "{name}: nothing listed:\n{a}"
        );
        assert_eq!(a, b, "{name}: listings differ");
        // Element data too (the listing above prints it; a second script must also agree).
        for ns in [&via_netlink, &via_cli] {
            ns.sh("nft delete table ip switchboard");
            let _ = ns.try_sh("nft delete table ip6 switchboard");
        }
    }
}

#[test]
fn anonymous_address_sets_list_the_same_through_netlink_and_nft() {
    let via_netlink = Netns::new();
    let via_cli = Netns::new();
    let script = "add table ip switchboard
add chain ip switchboard services
add rule ip switchboard services ip saddr != { 10.42.0.0/16, 10.45.0.0/16 } meta mark set meta mark | 0x00004000
add rule ip switchboard services ip daddr { 192.168.1.1, 10.0.0.0/12 } drop
add table ip6 switchboard
add chain ip6 switchboard services
add rule ip6 switchboard services ip6 saddr != { fd00:42::/56, fd00:45::1 } drop
add rule ip6 switchboard services ip6 daddr { ::/64, fd00::/8 } drop
";
    NftNetlink::in_netns(&via_netlink.name)
        .unwrap()
        .apply(script)
        .unwrap();
    via_cli.nft_apply(script).unwrap();
    let listed = ruleset(&via_netlink);
    assert!(
        listed.contains("ip saddr != { 10.42.0.0/16, 10.45.0.0/16 }"),
        "{listed}"
    );
    assert_eq!(listed, ruleset(&via_cli));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() })]

    /// The proxier's own transactions (full first, then differences), through netlink and
    /// through the CLI, leave the same ruleset after every step.
    #[test]
    fn incremental_transactions_list_the_same_through_netlink_and_nft(
        steps in proptest::collection::vec(proptest::collection::vec(svc_spec(), 5), 2..5)
    ) {
        let a = Netns::new();
        let b = Netns::new();
        let nl = NftNetlink::in_netns(&a.name).unwrap();
        let mut pa = NftProxier::with_backends(cfg(), nl, ConntrackCli::in_netns(&a.name)).unwrap();
        let mut pb = NftProxier::with_backends(cfg(), NftCli::in_netns(&b.name), ConntrackCli::in_netns(&b.name)).unwrap();
        for (i, specs) in steps.iter().enumerate() {
            let snap = build(specs);
            let ra = pa.sync(&snap).unwrap();
            let rb = pb.sync(&snap).unwrap();
            prop_assert!(ra.partial_failure.is_none(), "step {}: {:?}", i, ra.partial_failure);
            prop_assert_eq!(ra.full, rb.full);
            prop_assert_eq!(ruleset(&a), ruleset(&b), "after step {}", i);
        }
    }
}

#[test]
fn a_restarted_proxier_refills_an_adopted_table_through_netlink() {
    // The first sync after adoption adds elements to sets this process never declared: their
    // types are read back from the kernel (GETSET).
    let a = Netns::new();
    let b = Netns::new();
    let mut sp = service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.12"]);
    sp.node_port = Some(30080);
    let first = snapshot([sp.clone(), service("gone", "10.43.0.21", &["10.42.0.13"])]);
    for ns in [&a, &b] {
        let mut p = NftProxier::with_backends(
            cfg(),
            NftCli::in_netns(&ns.name),
            ConntrackCli::in_netns(&ns.name),
        )
        .unwrap();
        p.sync(&first).unwrap();
    }
    sp.endpoints.push(endpoint("10.42.0.14", 8080, false));
    let second = snapshot([sp]);
    let mut pa = NftProxier::with_backends(
        cfg(),
        NftNetlink::in_netns(&a.name).unwrap(),
        ConntrackCli::in_netns(&a.name),
    )
    .unwrap();
    let mut pb = NftProxier::with_backends(
        cfg(),
        NftCli::in_netns(&b.name),
        ConntrackCli::in_netns(&b.name),
    )
    .unwrap();
    let ra = pa.sync(&second).unwrap();
    pb.sync(&second).unwrap();
    assert!(
        ra.adopted && !ra.full && ra.partial_failure.is_none(),
        "{ra:?}"
    );
    assert_eq!(ruleset(&a), ruleset(&b));
}

#[test]
fn a_failing_batch_changes_nothing_and_names_the_command() {
    let ns = Netns::new();
    let mut nl = NftNetlink::in_netns(&ns.name).unwrap();
    let (_, golden) = goldens()
        .into_iter()
        .find(|(n, _)| n == "cluster_ip.nft")
        .unwrap();
    nl.apply(&golden).unwrap();
    let before = ruleset(&ns);
    let bad = "add element ip switchboard cluster-ips { 10.43.9.9 }\n\
               flush chain ip switchboard services\n\
               add rule ip switchboard services goto no-such-chain\n\
               add element ip switchboard service-ips { 10.43.9.9 . tcp . 80 : goto services }\n";
    let err = nl.apply(bad).unwrap_err().to_string();
    assert!(
        err.contains("add rule ip switchboard services goto no-such-chain"),
        "the failing command is named: {err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(
        !err.contains("add element"),
        "only the failing command: {err}"
    );
    assert_eq!(ruleset(&ns), before, "nothing of the batch applied");
    // The socket stays usable.
    nl.apply("add element ip switchboard cluster-ips { 10.43.9.9 }\n")
        .unwrap();
    assert!(ruleset(&ns).contains("10.43.9.9"));
}

#[test]
fn unknown_syntax_is_refused_by_netlink_and_applied_by_the_cli_in_auto() {
    let ns = Netns::new();
    let (_, golden) = goldens()
        .into_iter()
        .find(|(n, _)| n == "cluster_ip.nft")
        .unwrap();
    let odd = "add rule ip switchboard services tcp dport 80 counter accept\n";
    let mut nl = NftNetlink::in_netns(&ns.name).unwrap();
    nl.apply(&golden).unwrap();
    let err = nl.apply(odd).unwrap_err().to_string();
    assert!(err.contains("unsupported"), "{err}");
    assert!(err.contains("tcp dport 80"), "names the command: {err}");

    let mut auto = NftAuto::in_netns(&ns.name);
    assert!(auto.has_netlink());
    auto.apply(odd).unwrap();
    assert_eq!(auto.counts().get(), (0, 1));
    assert!(ruleset(&ns).contains("tcp dport 80 counter packets 0 bytes 0 accept"));
    // Scripts it understands still go through netlink, also after a fallback.
    auto.apply("add element ip switchboard cluster-ips { 10.43.9.10 }\n")
        .unwrap();
    assert_eq!(auto.counts().get(), (1, 1));
    assert!(ruleset(&ns).contains("10.43.9.10"));
}

/// `nft -j list ruleset` with every element list sorted (hash sets list in a per-set random
/// order).
fn ruleset_json(ns: &Netns) -> serde_json::Value {
    fn sort_elems(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if let (true, serde_json::Value::Array(a)) = (k == "elem", &mut *x) {
                        a.sort_by_key(|e| e.to_string());
                    }
                    sort_elems(x);
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(sort_elems),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(&ns.sh("nft -j list ruleset")).unwrap();
    sort_elems(&mut v);
    v
}

#[test]
fn dispatch_layout_lists_the_same_through_netlink_and_nft() {
    let via_netlink = Netns::new();
    let via_cli = Netns::new();
    NftNetlink::in_netns(&via_netlink.name)
        .unwrap()
        .apply(DISPATCH)
        .unwrap();
    via_cli.nft_apply(DISPATCH).unwrap();
    let listed = ruleset(&via_netlink);
    // nft prints the declaration back from the userdata we wrote, and the elements from the
    // bytes (the numgen slot in host order).
    for want in [
        "typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport",
        "typeof meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport",
        "10.43.0.20 . tcp . 80 . 1 : 10.42.0.12 . 8080",
        "udp . 30053 . 2 : 10.42.0.13 . 53",
        "dnat ip to ip daddr . meta l4proto . th dport . jhash ip saddr mod 3 seed 0x5b0a7d map @service-endpoints",
        "dnat ip6 to meta l4proto . th dport . numgen random mod 3 map @nodeport-endpoints",
    ] {
        assert!(listed.contains(want), "{want} not in\n{listed}");
    }
    assert_eq!(listed, ruleset(&via_cli));
    assert_eq!(ruleset_json(&via_netlink), ruleset_json(&via_cli));
    // Endpoint churn from a process that did not create the table (types read with GETSET).
    for script in DISPATCH_CHURN {
        NftNetlink::in_netns(&via_netlink.name)
            .unwrap()
            .apply(script)
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        via_cli.nft_apply(script).unwrap();
        assert_eq!(ruleset(&via_netlink), ruleset(&via_cli), "after\n{script}");
        assert_eq!(
            ruleset_json(&via_netlink),
            ruleset_json(&via_cli),
            "after\n{script}"
        );
    }
    assert!(ruleset(&via_netlink).contains("udp . 30053 . 15 : 10.42.0.13 . 53"));
}
