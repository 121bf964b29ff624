//! The netlink encoder against nft itself: for every golden script (and a few diff-shaped
//! scripts), the messages `NftNetlink` sends must be byte for byte those `nft -f` sends, as
//! `nft --debug=mnl -c` prints them (header flags and sequence numbers aside).

mod common;

use common::Netns;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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
    use std::io::Write;
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.name,
            "nft",
            "--debug=mnl",
            "-c",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft -c rejected the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    parse_mnl(&text)
}

fn ours(script: &str) -> Vec<Printed> {
    proxy_nft::netlink_messages(script)
        .unwrap_or_else(|e| panic!("encoder refused the script: {e}"))
        .into_iter()
        .map(|m| Printed {
            ty: u16::from_ne_bytes([m[4], m[5]]),
            body: m[16..].to_vec(),
        })
        .collect()
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
    let ns = Netns::new();
    for (name, script) in goldens() {
        compare(&name, &ns, &script);
    }
}
