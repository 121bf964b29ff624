//! Benchmark (ignored by default): what user space costs, as ratios against the direct pod
//! address and the nftables data plane measured in the same run, on the same lab.
//!
//! ```sh
//! cargo test --release -p proxy-userspace --test bench -- --ignored --nocapture
//! ```
//!
//! One node, one pod on it, one LAN client routed via the node. Service A is programmed by the
//! nftables data plane (DNAT), Service B served by the userspace one; both have the pod as
//! their only endpoint. Each round measures the three paths in turn (order rotating per round):
//! bulk upload (MB/s), 1-byte round trips on one kept-alive connection (per second), and new
//! connections with one round trip each (per second). Root needed.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy_core::{ProxyConfig, Snapshot};
use proxy_userspace::UserspaceProxier;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use test_support::netlab::{Lab, Pod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUNDS: usize = 5;
const BULK_BYTES: usize = 256 << 20;
const ROUND_TRIPS: usize = 20_000;
const CONNECTIONS: usize = 1_500;

fn service(name: &str, ip: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"clusterIP": ip, "clusterIPs": [ip],
                 "ports": [{"name": "sink", "port": 7000, "protocol": "TCP"},
                           {"name": "pong", "port": 7001, "protocol": "TCP"}]},
    }))
    .unwrap()
}

fn slice(name: &str, pod: &Pod) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-x"), "namespace": "default",
                     "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [pod.ip.to_string()], "nodeName": pod.node}],
        "ports": [{"name": "sink", "port": 7000, "protocol": "TCP"},
                  {"name": "pong", "port": 7001, "protocol": "TCP"}],
    }))
    .unwrap()
}

/// Port 7000 swallows a stream and answers its length at EOF; 7001 echoes every read.
fn servers(lab: &Lab, pod: &Pod) {
    for port in [7000u16, 7001] {
        let l = pod
            .run(move || std::net::TcpListener::bind(("0.0.0.0", port)))
            .expect("bind");
        l.set_nonblocking(true).unwrap();
        lab.handle().spawn(async move {
            let l = tokio::net::TcpListener::from_std(l).expect("listener");
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let _ = s.set_nodelay(true);
                    let mut buf = vec![0u8; 64 << 10];
                    let mut total: u64 = 0;
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) if port == 7000 => total += n as u64,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    if port == 7000 {
                        let _ = s.write_all(&total.to_be_bytes()).await;
                    }
                });
            }
        });
    }
}

/// MB/s of a 256 MiB upload, counted by the server.
fn bulk(addr: SocketAddr) -> f64 {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    let chunk = vec![7u8; 64 << 10];
    let mut sent = 0;
    while sent < BULK_BYTES {
        s.write_all(&chunk).expect("write");
        sent += chunk.len();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut n = [0u8; 8];
    s.read_exact(&mut n).expect("count");
    assert_eq!(u64::from_be_bytes(n), BULK_BYTES as u64);
    BULK_BYTES as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// 1-byte round trips per second on one connection.
fn round_trips(addr: SocketAddr) -> f64 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let mut b = [0u8; 1];
    let start = Instant::now();
    for _ in 0..ROUND_TRIPS {
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
    }
    ROUND_TRIPS as f64 / start.elapsed().as_secs_f64()
}

/// New connections per second, each with one round trip, closed by the client with RST (no
/// TIME_WAIT piling up on the client's ports).
fn connections(addr: SocketAddr) -> f64 {
    let start = Instant::now();
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
    }
    CONNECTIONS as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore = "benchmark: cargo test --release -p proxy-userspace --test bench -- --ignored --nocapture"]
fn userspace_against_direct_and_nftables() {
    let lab = Lab::new();
    let n1 = lab.node("n1");
    let client = lab.client_via("c1", &n1);
    let pod = lab.pod(&n1, "p1");
    servers(&lab, &pod);
    let cfg = ProxyConfig {
        node_name: "n1".into(),
        node_ips: vec![n1.ip.into()],
        // No cluster-IPs check: the userspace Service's address is not in the nftables table.
        service_cidrs: vec![],
        ..ProxyConfig::default()
    };
    let (a, b) = (service("a", "10.43.0.60"), service("b", "10.43.0.61"));
    let (sa, sb) = (slice("a", &pod), slice("b", &pod));
    let nft_snap = Snapshot::build([&a], [&sa], &cfg);
    let us_snap = Snapshot::build([&b], [&sb], &cfg);
    let nft_cfg = cfg.clone();
    let mut nft = n1
        .run(move || {
            let mut p = proxy_nft::NftProxier::new(nft_cfg)?;
            p.sync(&nft_snap).map(|_| p)
        })
        .expect("nftables data plane");
    let runtime = n1.run(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    let handle = runtime.handle().clone();
    let us = n1
        .run(move || {
            let mut p = UserspaceProxier::new(cfg, handle, None)?;
            p.sync(&us_snap).map(|_| p)
        })
        .expect("userspace data plane");

    let paths: [(&str, std::net::IpAddr); 3] = [
        ("direct", pod.ip.into()),
        ("nftables", "10.43.0.60".parse().unwrap()),
        ("userspace", "10.43.0.61".parse().unwrap()),
    ];
    let mut results: Vec<[Vec<f64>; 3]> = (0..3).map(|_| Default::default()).collect();
    for round in 0..ROUNDS {
        for k in 0..3 {
            let i = (round + k) % 3;
            let ip = paths[i].1;
            let r = client.run(move || {
                [
                    bulk(SocketAddr::new(ip, 7000)),
                    round_trips(SocketAddr::new(ip, 7001)),
                    connections(SocketAddr::new(ip, 7001)),
                ]
            });
            for (m, v) in r.into_iter().enumerate() {
                results[i][m].push(v);
            }
        }
    }
    println!("medians of {ROUNDS} rounds (ratio to direct)");
    println!(
        "{:<10} {:>16} {:>22} {:>20}",
        "path", "bulk MB/s", "round trips/s", "connections/s"
    );
    let direct: Vec<f64> = results[0].iter().map(|v| median(v.clone())).collect();
    for (i, (name, _)) in paths.iter().enumerate() {
        let m: Vec<f64> = results[i].iter().map(|v| median(v.clone())).collect();
        println!(
            "{:<10} {:>9.0} ({:.2}) {:>15.0} ({:.2}) {:>13.0} ({:.2})",
            name,
            m[0],
            m[0] / direct[0],
            m[1],
            m[1] / direct[1],
            m[2],
            m[2] / direct[2]
        );
    }
    n1.run(move || {
        drop(us);
        let _ = nft.cleanup();
    });
    runtime.shutdown_background();
}
