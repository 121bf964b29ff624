//! The traffic: HTTP/1.1 against the lab's echo server, from inside the client namespace (run
//! these futures with `Netns::block_on`). Two shapes: a new connection per request (what a
//! ClusterIP costs per connection: conntrack entry, DNAT) and requests on kept-alive
//! connections (the per-packet cost once a flow is established).
//!
//! A new connection per request is closed by the client with a RST (SO_LINGER 0) once the
//! response is read: no side keeps a TIME_WAIT socket and the nodes' conntrack entries go to
//! CLOSE (10 s) instead of TIME_WAIT (120 s). Each connection also takes its source address
//! in turn from a pool: with one client address, ~3,000 connections/s to one endpoint cycle
//! through the 28k ephemeral ports within seconds, and a reused 4-tuple meets the state its
//! predecessor left (the first version of this benchmark lost throughput round after round).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Default)]
pub struct Load {
    pub ok: u64,
    pub errors: u64,
    pub secs: f64,
    /// Per request, microseconds.
    pub latencies: Vec<u32>,
}

impl Load {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    /// The `q` quantile of the latencies in milliseconds (sorts in place).
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i] as f64 / 1000.0
    }

    /// Adds another measurement of the same shape (rates over the summed time).
    pub fn absorb(&mut self, other: Load) {
        self.secs += other.secs;
        self.merge(other);
    }

    fn merge(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
    }
}

async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let s = socket.connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn one_connection(source: IpAddr, addr: SocketAddr) -> std::io::Result<()> {
    let s = connect_from(source, addr).await?;
    let mut s = BufReader::new(s);
    keepalive_request(&mut s).await?;
    // A RST, not a FIN: nobody keeps TIME_WAIT state for this 4-tuple.
    s.get_ref().set_zero_linger()?;
    Ok(())
}

/// `concurrency` workers, each opening a new connection per request from the next address
/// of `sources`, for `duration`.
pub async fn connections(
    addr: SocketAddr,
    sources: &[IpAddr],
    concurrency: usize,
    duration: Duration,
) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let sources = sources.to_vec();
            tokio::spawn(async move {
                let mut l = Load::default();
                let mut next = w;
                while Instant::now() < deadline {
                    let source = sources[next % sources.len()];
                    next += concurrency;
                    let t = Instant::now();
                    match tokio::time::timeout(Duration::from_secs(2), one_connection(source, addr))
                        .await
                    {
                        Ok(Ok(())) => {
                            l.ok += 1;
                            l.latencies.push(t.elapsed().as_micros() as u32);
                        }
                        _ => l.errors += 1,
                    }
                }
                l
            })
        })
        .collect();
    let mut total = Load::default();
    for w in workers {
        total.merge(w.await.unwrap_or_default());
    }
    total.secs = start.elapsed().as_secs_f64();
    total
}

/// `concurrency` kept-alive connections (from `sources` in turn), one request in flight on
/// each, for `duration`.
pub async fn requests(
    addr: SocketAddr,
    sources: &[IpAddr],
    concurrency: usize,
    duration: Duration,
) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let source = sources[w % sources.len()];
            tokio::spawn(async move {
                let mut l = Load::default();
                let Ok(s) = connect_from(source, addr).await else {
                    l.errors += 1;
                    return l;
                };
                let mut s = BufReader::new(s);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match keepalive_request(&mut s).await {
                        Ok(()) => {
                            l.ok += 1;
                            l.latencies.push(t.elapsed().as_micros() as u32);
                        }
                        Err(_) => {
                            l.errors += 1;
                            break;
                        }
                    }
                }
                l
            })
        })
        .collect();
    let mut total = Load::default();
    for w in workers {
        total.merge(w.await.unwrap_or_default());
    }
    total.secs = start.elapsed().as_secs_f64();
    total
}

async fn keepalive_request(s: &mut BufReader<TcpStream>) -> std::io::Result<()> {
    s.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await?;
    let mut line = String::new();
    s.read_line(&mut line).await?;
    if !line.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("status {line:?}")));
    }
    let mut len = 0usize;
    loop {
        line.clear();
        if s.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(())
}
