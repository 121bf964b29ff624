//! Malformed packets over UDP and TCP: the server never crashes and keeps answering.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use crate::support::*;

fn query(name: &str) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        m.push(l.len() as u8);
        m.extend(l.bytes());
    }
    m.extend([0, 0, 1, 0, 1]);
    m
}

/// Malformed inputs of every kind worth naming, plus pseudo-random ones.
fn corpus() -> Vec<Vec<u8>> {
    let good = query("kubernetes.default.svc.cluster.local");
    let mut v: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        good[..5].to_vec(),
        good[..12].to_vec(),
        good[..good.len() - 3].to_vec(),
        // A label pointer to itself, and one pointing forward.
        [&good[..12], &[0xC0, 12, 0, 1, 0, 1][..]].concat(),
        [&good[..12], &[0xC0, 200, 0, 1, 0, 1][..]].concat(),
        // A label longer than the packet, and one of 64+ (reserved bits).
        [&good[..12], &[60, b'a', b'b'][..]].concat(),
        [&good[..12], &[0x80, b'a', 0, 0, 1, 0, 1][..]].concat(),
        // A name of 300 bytes.
        [
            &good[..12],
            &[63u8; 1][..],
            &[b'a'; 63][..],
            &[63u8; 1][..],
            &[b'a'; 63][..],
            &[63u8; 1][..],
            &[b'a'; 63][..],
            &[63u8; 1][..],
            &[b'a'; 63][..],
            &[63u8; 1][..],
            &[b'a'; 63][..],
            &[0, 0, 1, 0, 1][..],
        ]
        .concat(),
    ];
    // Huge counts with nothing behind them.
    for at in [4, 6, 8, 10] {
        let mut m = good.clone();
        m[at] = 0xFF;
        m[at + 1] = 0xFF;
        v.push(m);
    }
    // An additional-record count of 1 and a truncated OPT.
    let mut m = good.clone();
    m[11] = 1;
    m.extend([0, 0, 41, 4]);
    v.push(m);
    // A response (QR set): must be ignored, not answered.
    let mut m = good.clone();
    m[2] |= 0x80;
    v.push(m);
    // Pseudo-random bytes (xorshift, fixed seed: the same inputs every run).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for len in (0..1500).step_by(7) {
        let mut p = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            p.push(x as u8);
        }
        v.push(p);
    }
    // Random bytes after a valid header and a valid-looking start.
    for i in 0..200 {
        let mut m = good.clone();
        let at = 12 + i % (good.len() - 12);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m[at] = x as u8;
        v.push(m);
    }
    v
}

#[test]
fn malformed_packets_leave_the_server_answering() {
    let _s = serial();
    let c = DnsCluster::start(None);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for p in corpus() {
        sock.send_to(&p, c.addr).unwrap();
    }
    // A response to a response would start a loop between two servers.
    let mut buf = [0u8; 2048];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        assert_eq!(buf[2] & 0x80, 0x80, "only responses come back");
        assert!(n >= 12);
    }
    // TCP: garbage with plausible and absurd length prefixes, then a half-sent message.
    for p in corpus().into_iter().take(40) {
        let mut s = TcpStream::connect(c.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut framed = (p.len() as u16).to_be_bytes().to_vec();
        framed.extend(&p);
        let _ = s.write_all(&framed);
        let _ = s.read(&mut buf);
    }
    let mut s = TcpStream::connect(c.addr).unwrap();
    let _ = s.write_all(&[0xFF, 0xFF, 1, 2, 3]);
    drop(s);
    // Still answering, over both transports.
    assert_eq!(
        c.short("kubernetes.default.svc.cluster.local", "A").len(),
        1
    );
    assert_eq!(
        c.dig(&["+tcp", "+short", "kubernetes.default.svc.cluster.local"])
            .lines()
            .count(),
        1
    );
}
