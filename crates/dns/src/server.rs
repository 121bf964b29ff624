//! Sockets. UDP is served by one blocking OS thread per address (a `recv_from` / `send_to`
//! loop with no async machinery between the kernel and `answer::respond`); queries that need
//! the network (forwarding, ExternalName targets) are handed to the async runtime, which
//! replies on the same socket. TCP is async: length-prefixed messages, several per
//! connection, idle connections closed.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::answer::{respond, Action, Transport};
use crate::forward::{self, Forwarder};
use crate::metrics::Metrics;
use crate::wire::Question;
use crate::zone::Zone;

/// State shared by every socket: the current zone (swapped whole), the forwarder, metrics.
pub struct Shared {
    pub zone: ArcSwap<Zone>,
    pub forwarder: Forwarder,
    pub metrics: Metrics,
    pub stop: AtomicBool,
}

const TCP_IDLE: Duration = Duration::from_secs(10);
const MAX_TCP_CONNECTIONS: usize = 1024;

/// Runs the network part of a query that could not be answered from the zone.
async fn slow_path(
    shared: &Shared,
    req: &[u8],
    action: Action,
    t: Transport,
    out: &mut Vec<u8>,
) -> Option<u16> {
    let q: Box<Question>;
    match action {
        Action::Forward(question) => {
            q = question;
            let c = if shared.forwarder.upstreams().is_empty() {
                None
            } else {
                shared.forwarder.resolve(q.name(), q.qtype, q.qclass).await
            };
            forward::reply(req, &q, c.as_deref(), t, out);
        }
        Action::Chase {
            question,
            cname_rr,
            target,
        } => {
            q = question;
            let c = shared.forwarder.resolve(&target, q.qtype, q.qclass).await;
            forward::reply_chase(req, &q, &cname_rr, c.as_deref(), t, out);
        }
        Action::Reply | Action::Drop => return None,
    }
    Some(q.qtype)
}

fn rcode_of(out: &[u8]) -> u16 {
    out.get(3).map(|b| (b & 0x0F) as u16).unwrap_or(0)
}

/// The UDP loop of one socket. Returns when `shared.stop` is set (checked between reads,
/// which time out every 200 ms).
pub fn serve_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>, rt: tokio::runtime::Handle) {
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    let mut rotation = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here (ECONNREFUSED); keep serving.
                tracing::debug!(error = %e, "udp receive");
                continue;
            }
        };
        let start = Instant::now();
        rotation = rotation.wrapping_add(1);
        let zone = shared.zone.load();
        let (action, outcome) = respond(&zone, &buf[..n], Transport::Udp, rotation, &mut out);
        drop(zone);
        match action {
            Action::Reply => {
                let _ = sock.send_to(&out, peer);
                shared.metrics.query(outcome.qtype, outcome.rcode);
                shared
                    .metrics
                    .latency
                    .observe(start.elapsed().as_secs_f64());
            }
            Action::Drop => {}
            slow => {
                let req = buf[..n].to_vec();
                let (sock, shared) = (sock.clone(), shared.clone());
                rt.spawn(async move {
                    let mut out = Vec::with_capacity(512);
                    if let Some(qtype) =
                        slow_path(&shared, &req, slow, Transport::Udp, &mut out).await
                    {
                        // A UDP send does not block in practice (the socket buffer drains to
                        // the NIC); doing it here keeps one socket for both paths.
                        let _ = sock.send_to(&out, peer);
                        shared.metrics.query(qtype, rcode_of(&out));
                        shared
                            .metrics
                            .latency
                            .observe(start.elapsed().as_secs_f64());
                    }
                });
            }
        }
    }
}

/// Accepts TCP connections until shutdown.
pub async fn serve_tcp(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let Ok((stream, _peer)) = listener.accept().await else {
            continue;
        };
        // At the limit, the oldest client is not dropped; the new one waits (RFC 7766 allows
        // either). The semaphore keeps a flood of connections from exhausting descriptors.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp_connection(stream, &shared).await;
        });
    }
}

async fn tcp_connection(mut stream: tokio::net::TcpStream, shared: &Shared) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(4096);
    let mut rotation = 0usize;
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(l)) => l as usize,
            _ => return Ok(()),
        };
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf[..len])).await??;
        let start = Instant::now();
        rotation = rotation.wrapping_add(1);
        let (action, outcome) = {
            let zone = shared.zone.load();
            respond(&zone, &buf[..len], Transport::Tcp, rotation, &mut out)
        };
        let qtype = match action {
            Action::Reply => outcome.qtype,
            Action::Drop => continue,
            slow => match slow_path(shared, &buf[..len], slow, Transport::Tcp, &mut out).await {
                Some(t) => t,
                None => continue,
            },
        };
        let mut framed = Vec::with_capacity(out.len() + 2);
        framed.extend((out.len() as u16).to_be_bytes());
        framed.extend_from_slice(&out);
        stream.write_all(&framed).await?;
        shared.metrics.query(qtype, rcode_of(&out));
        shared
            .metrics
            .latency
            .observe(start.elapsed().as_secs_f64());
    }
}

/// Binds UDP and TCP on the same address; with port 0, the UDP socket's port is used for
/// TCP too (retried a few times in case that TCP port is taken).
pub fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, std::net::TcpListener)> {
    let mut last = None;
    for _ in 0..8 {
        let udp = UdpSocket::bind(addr)?;
        let tcp_addr = SocketAddr::new(addr.ip(), udp.local_addr()?.port());
        match std::net::TcpListener::bind(tcp_addr) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap())
}
