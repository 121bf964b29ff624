//! The traffic: HTTP/1.1 against the lab's echo server, from inside the client namespace (run
//! these futures with `Netns::block_on`). Two shapes: a new connection per request (what a
//! ClusterIP costs per connection: conntrack entry, DNAT, masquerade) and requests on kept-alive
//! connections (the per-packet cost once a flow is established).

use std::net::SocketAddr;
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

    fn merge(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
    }
}

async fn one_connection(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await?;
    let mut buf = Vec::with_capacity(256);
    s.read_to_end(&mut buf).await?;
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other("not a 200"));
    }
    Ok(())
}

/// `concurrency` workers, each opening a new connection per request, for `duration`.
pub async fn connections(addr: SocketAddr, concurrency: usize, duration: Duration) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(async move {
                let mut l = Load::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match tokio::time::timeout(Duration::from_secs(2), one_connection(addr)).await {
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

/// `concurrency` kept-alive connections, one request in flight on each, for `duration`.
pub async fn requests(addr: SocketAddr, concurrency: usize, duration: Duration) -> Load {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(async move {
                let mut l = Load::default();
                let Ok(s) = TcpStream::connect(addr).await else {
                    l.errors += 1;
                    return l;
                };
                let _ = s.set_nodelay(true);
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
