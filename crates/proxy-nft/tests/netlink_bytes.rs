//! The netlink encoder against nft itself: for every golden script (and a few diff-shaped
//! scripts), the messages `NftNetlink` sends must be byte for byte those `nft -f` sends, as
//! `nft --debug=mnl -c` prints them (header flags and sequence numbers aside).

mod common;
mod dispatch;

use common::*;
use dispatch::{DISPATCH, DISPATCH_CHURN};
use std::path::PathBuf;
use std::process::Command;

/// One message as nft printed it: type and bytes after the 16-byte netlink header.
#[derive(Debug, PartialEq, Eq)]
struct Printed {
    ty: u16,
    body: Vec<u8>,
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses `nft --debug=mnl` output into the messages of the batch (between BATCH_BEGIN and
/// BATCH_END).
fn parse_mnl(text: &str) -> Vec<Printed> {
    let text = strip_ansi(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut msgs: Vec<(usize, u16, Vec<u8>)> = Vec::new();
    let mut i = 0;
    let cell =
        |l: &str, n: usize| -> Option<String> { l.split('|').nth(n).map(|s| s.trim().to_string()) };
    while i < lines.len() {
        let l = lines[i];
        if l.contains("| message length |") {
            let len: usize = cell(l, 1).unwrap().parse().unwrap();
            let ty: u16 = cell(lines[i + 1], 1).unwrap().parse().unwrap();
            msgs.push((len, ty, Vec::new()));
            i += 4;
            continue;
        }
        if l.contains("|  extra header  |") || l.contains("|      data      |") {
            let hex = cell(l, 1).unwrap().replace(' ', "");
            let cur = &mut msgs.last_mut().unwrap().2;
            for k in 0..4 {
                cur.push(u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap());
            }
        } else if l.contains("|len |flags| type|") {
            let len: u16 = cell(l, 1).unwrap().parse().unwrap();
            let flags = cell(l, 2).unwrap();
            let mut ty: u16 = cell(l, 3).unwrap().parse().unwrap();
            if flags.starts_with('N') {
                ty |= 0x8000;
            }
            if flags.chars().nth(1) == Some('B') {
                ty |= 0x4000;
            }
            let cur = &mut msgs.last_mut().unwrap().2;
            cur.extend_from_slice(&len.to_ne_bytes());
            cur.extend_from_slice(&ty.to_ne_bytes());
        }
        i += 1;
    }
    let mut out = Vec::new();
    let mut started = false;
    for (len, ty, mut body) in msgs {
        match ty {
            16 => started = true,
            17 => started = false,
            _ if started => {
                body.truncate(len - 16);
                out.push(Printed { ty, body });
            }
            _ => {}
        }
    }
    out
}

fn nft_messages(ns: &Netns, script: &str) -> Vec<Printed> {
    let text = ns
        .nft_output(&["--debug=mnl", "-c", "-f", "-"], script)
        .unwrap_or_else(|e| panic!("nft -c rejected the script: {e}"));
    parse_mnl(&text)
}

/// Our messages without their netlink header (nft prints bodies only).
fn printed(msgs: Vec<Vec<u8>>) -> Vec<Printed> {
    msgs.into_iter()
        .map(|m| Printed {
            ty: u16::from_ne_bytes([m[4], m[5]]),
            body: m[16..].to_vec(),
        })
        .collect()
}

fn ours(script: &str) -> Vec<Printed> {
    printed(
        proxy_nft::netlink_messages(script)
            .unwrap_or_else(|e| panic!("encoder refused the script: {e}")),
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn compare(name: &str, ns: &Netns, script: &str) {
    let want = nft_messages(ns, script);
    let got = ours(script);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if w == g {
            continue;
        }
        let at = w
            .body
            .iter()
            .zip(&g.body)
            .position(|(a, b)| a != b)
            .unwrap_or(w.body.len().min(g.body.len()));
        let from = at.saturating_sub(32);
        panic!(
            "{name}: message {i} differs at byte {at} (lengths {} and {})\n nft: {} ...{}\nours: {} ...{}",
            w.body.len(),
            g.body.len(),
            w.ty & 0xff,
            hex(&w.body[from..(at + 64).min(w.body.len())]),
            g.ty & 0xff,
            hex(&g.body[from..(at + 64).min(g.body.len())]),
        );
    }
    assert_eq!(want.len(), got.len(), "{name}: number of messages");
}

/// The encoder writes what nft 1.0.6 (Debian bookworm) writes; another nft version may order
/// attributes or fill set userdata differently without the kernel state differing (that is
/// `netlink_kernel.rs`'s check). Other versions skip the byte comparison, saying so.
fn nft_is_the_reference_version() -> bool {
    let out = Command::new("nft").arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = v.starts_with("nftables v1.0.6 ");
    if !ok {
        eprintln!(
            "byte comparison skipped: {} is not nftables v1.0.6",
            v.trim()
        );
    }
    ok
}

fn goldens() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "nft") {
            out.push((
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
    out.sort();
    assert!(out.len() >= 10, "golden files missing");
    out
}

#[test]
fn every_golden_script_encodes_as_nft_does() {
    if !nft_is_the_reference_version() {
        return;
    }
    let ns = Netns::new();
    for (name, script) in goldens() {
        compare(&name, &ns, &script);
    }
}

/// (type, value) of the attributes in `b`, with the nested flag kept in the type.
fn attrs(mut b: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]);
        out.push((ty, b[4..len].to_vec()));
        let next = len.div_ceil(4) * 4;
        b = &b[next.min(b.len())..];
    }
    out
}

fn put(out: &mut Vec<u8>, ty: u16, v: &[u8]) {
    out.extend_from_slice(&((v.len() + 4) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(v);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Set ids zeroed (new sets, lookups, dynsets) or dropped (element lists). nft numbers every set of its
/// cache, so a transaction on an existing table carries ids of sets nft listed first; the
/// kernel looks sets up by name and uses an id only for a set created in the same batch
/// (compared exactly in the golden test above).
fn without_set_ids(p: Printed) -> Printed {
    let kind = p.ty & 0xff;
    let mut body = p.body[..4].to_vec();
    for (ty, v) in attrs(&p.body[4..]) {
        match (kind, ty & 0x3fff) {
            (12 | 14, 4) => continue,
            (9, 10) => put(&mut body, ty, &[0, 0, 0, 0]),
            (6, 4) => {
                let mut exprs = Vec::new();
                for (et, ev) in attrs(&v) {
                    let parts = attrs(&ev);
                    let name = String::from_utf8_lossy(&parts[0].1)
                        .trim_end_matches('\0')
                        .to_string();
                    let mut e = Vec::new();
                    put(&mut e, parts[0].0, &parts[0].1);
                    let mut data = Vec::new();
                    for (dt, dv) in attrs(&parts[1].1) {
                        let zero =
                            matches!((name.as_str(), dt & 0x3fff), ("lookup", 4) | ("dynset", 2));
                        put(&mut data, dt, if zero { &[0, 0, 0, 0] } else { &dv });
                    }
                    put(&mut e, parts[1].0, &data);
                    put(&mut exprs, et, &e);
                }
                put(&mut body, ty, &exprs);
            }
            _ => put(&mut body, ty, &v),
        }
    }
    Printed { ty: p.ty, body }
}

fn ours_after(base: &str, script: &str) -> Vec<Printed> {
    printed(
        proxy_nft::netlink_messages_after(base, script)
            .unwrap_or_else(|e| panic!("encoder refused the script: {e}")),
    )
}

/// The proxier's transactions for a sequence of snapshots, as a Fake backend records them.
fn transactions(snaps: &[proxy_core::Snapshot]) -> Vec<String> {
    let fake = proxy_nft::Fake::default();
    let mut p = proxy_nft::NftProxier::with_backends(cfg(), fake.clone(), fake.clone()).unwrap();
    for s in snaps {
        p.sync(s).unwrap();
    }
    let log = fake.0.lock().unwrap();
    log.scripts.clone()
}

#[test]
fn incremental_transactions_encode_as_nft_does() {
    if !nft_is_the_reference_version() {
        return;
    }
    use proxy_core::Scheduler;
    let web = || service("web", "10.43.0.20", &["10.42.0.11", "10.42.0.12"]);
    let mut moved = web();
    moved.endpoints[1] = endpoint("10.42.0.19", 8080, false);
    let mut affinity = web();
    affinity.affinity_timeout = Some(60);
    let mut affinity_longer = affinity.clone();
    affinity_longer.affinity_timeout = Some(120);
    let mut maglev = web();
    maglev.scheduler = Scheduler::Maglev;
    let mut node_port = web();
    node_port.node_port = Some(30080);
    let mut dual = web();
    dual.cluster_ips.push(ip("fd00:43::20"));
    dual.endpoints.push(endpoint("fd00:42::11", 8080, false));
    let other = service("other", "10.43.0.21", &["10.42.0.13"]);
    let scenarios: Vec<(&str, Vec<proxy_core::Snapshot>)> = vec![
        ("endpoint moves", vec![snapshot([web()]), snapshot([moved])]),
        (
            "service goes",
            vec![snapshot([web(), other.clone()]), snapshot([web()])],
        ),
        (
            "service comes",
            vec![snapshot([web()]), snapshot([web(), other])],
        ),
        (
            "affinity timeout changes (set re-declared)",
            vec![snapshot([affinity]), snapshot([affinity_longer])],
        ),
        (
            "scheduler becomes mh",
            vec![snapshot([web()]), snapshot([maglev.clone()])],
        ),
        (
            "mh becomes random",
            vec![snapshot([maglev]), snapshot([web()])],
        ),
        (
            "node port added",
            vec![snapshot([web()]), snapshot([node_port])],
        ),
        (
            "dual stack endpoint",
            vec![snapshot([web()]), snapshot([dual])],
        ),
        ("everything goes", vec![snapshot([web()]), snapshot([])]),
    ];
    for (name, snaps) in scenarios {
        let scripts = transactions(&snaps);
        let ns = Netns::new();
        // The first sync (both families) is the base the later ones apply to.
        let base: String = scripts
            .iter()
            .take_while(|s| s.contains("delete table"))
            .cloned()
            .collect();
        let n_base = scripts
            .iter()
            .take_while(|s| s.contains("delete table"))
            .count();
        ns.nft_apply(&base).unwrap();
        assert!(scripts.len() > n_base, "{name}: no incremental transaction");
        for script in &scripts[n_base..] {
            let want: Vec<Printed> = nft_messages(&ns, script)
                .into_iter()
                .map(without_set_ids)
                .collect();
            let got: Vec<Printed> = ours_after(&base, script)
                .into_iter()
                .map(without_set_ids)
                .collect();
            assert_eq!(
                want.len(),
                got.len(),
                "{name}: number of messages\n{script}"
            );
            for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                assert!(
                    w == g,
                    "{name}: message {i} differs\n nft: {}\nours: {}\n{script}",
                    hex(&w.body),
                    hex(&g.body)
                );
            }
        }
    }
}

/// Anonymous interval sets of addresses (`ip saddr != { … }`, what several cluster CIDRs of one
/// family render to), in both families, with and without a range starting at 0.
const ADDRESS_SETS: &str = "add table ip switchboard
add chain ip switchboard services
add rule ip switchboard services ip saddr != { 10.42.0.0/16, 10.45.0.0/16 } meta mark set meta mark | 0x00004000
add rule ip switchboard services ip daddr { 192.168.1.1, 10.0.0.0/12 } drop
add rule ip switchboard services ip daddr { 0.0.0.0/8, 10.45.0.0/16 } drop
add table ip6 switchboard
add chain ip6 switchboard services
add rule ip6 switchboard services ip6 saddr != { fd00:42::/56, fd00:45::1 } drop
add rule ip6 switchboard services ip6 daddr { ::/64, fd00::/8 } drop
";

#[test]
fn anonymous_address_sets_encode_as_nft_does() {
    if nft_is_the_reference_version() {
        let ns = Netns::new();
        compare("address sets", &ns, ADDRESS_SETS);
    }
    // What the encoder leaves to the CLI: ranges nft would merge or mark open.
    for odd in [
        "add rule ip switchboard services ip saddr { 10.42.0.0/16, 10.43.0.0/16 } drop\n",
        "add rule ip switchboard services ip saddr { 10.42.0.0/16, 10.42.1.0/24 } drop\n",
        "add rule ip switchboard services ip saddr { 10.42.0.0/16, 255.0.0.0/8 } drop\n",
    ] {
        assert!(proxy_nft::netlink_messages(odd).is_err(), "{odd}");
    }
}

#[test]
fn dispatch_layout_encodes_as_nft_does() {
    if !nft_is_the_reference_version() {
        return;
    }
    let ns = Netns::new();
    compare("dispatch layout", &ns, DISPATCH);
    // Its elements against the table in the kernel, with types read back by a fresh socket.
    ns.nft_apply(DISPATCH).unwrap();
    for script in DISPATCH_CHURN {
        let want: Vec<Printed> = nft_messages(&ns, script)
            .into_iter()
            .map(without_set_ids)
            .collect();
        let mut nl = proxy_nft::NftNetlink::in_netns(&ns.name).unwrap();
        let enc = nl
            .encode(script)
            .unwrap_or_else(|e| panic!("encoder refused the script: {e}"));
        let got: Vec<Printed> = printed(enc.messages().to_vec())
            .into_iter()
            .map(without_set_ids)
            .collect();
        assert_eq!(want.len(), got.len(), "number of messages\n{script}");
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert!(
                w == g,
                "message {i} differs\n nft: {}\nours: {}\n{script}",
                hex(&w.body),
                hex(&g.body)
            );
        }
    }
}
