//! UDP frontends: one session per client address, each with its own socket connected to the
//! endpoint picked for that client. Datagrams from the client go out on the session socket;
//! replies come back through the frontend's socket, so the client sees them from the address
//! and port it sent to. A session ends after `idle` without traffic either way, or when its
//! endpoint leaves the pool (the next datagram picks again, like the conntrack flush of the
//! nftables data plane).

use crate::balancer::{Balancer, Lease};
use crate::route::{self, SharedRoute};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::task::{AbortHandle, JoinSet};

const MAX_DATAGRAM: usize = 65_535;

struct Session {
    id: u64,
    endpoint: SocketAddr,
    balancer: Arc<Balancer>,
    upstream: Arc<UdpSocket>,
    /// Milliseconds since the frontend's epoch at the last datagram either way.
    last: Arc<AtomicU64>,
    task: AbortHandle,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

fn lock(s: &Sessions) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Session>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn serve(socket: UdpSocket, route: SharedRoute, idle: Duration) {
    let socket = Arc::new(socket);
    let sessions: Sessions = Arc::default();
    // Session tasks die with the frontend (this task owns them).
    let mut tasks = JoinSet::new();
    let epoch = Instant::now();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        while tasks.try_join_next().is_some() {}
        let r = route::current(&route);
        let Some(pool) = r.pool(client.ip()) else {
            continue;
        };
        let now_ms = epoch.elapsed().as_millis() as u64;
        let existing = {
            let mut s = lock(&sessions);
            match s.get(&client) {
                Some(sess)
                    if Arc::ptr_eq(&sess.balancer, &r.balancer)
                        && r.balancer.serves(pool, sess.endpoint) =>
                {
                    sess.last.store(now_ms, Ordering::Relaxed);
                    Some(sess.upstream.clone())
                }
                Some(_) => {
                    let old = s.remove(&client).expect("present");
                    old.task.abort();
                    None
                }
                None => None,
            }
        };
        let upstream = match existing {
            Some(u) => u,
            None => {
                let Some(lease) = r.balancer.pick(pool, client.ip(), &[]) else {
                    // No endpoint: dropped, as nftables drops what it cannot deliver.
                    continue;
                };
                let upstream = match connect(lease.endpoint).await {
                    Ok(u) => Arc::new(u),
                    Err(e) => {
                        tracing::debug!(endpoint = %lease.endpoint, error = %e, "UDP session socket failed");
                        r.balancer.dial_failed(lease.endpoint);
                        continue;
                    }
                };
                next_id += 1;
                let last = Arc::new(AtomicU64::new(now_ms));
                let endpoint = lease.endpoint;
                let task = tasks.spawn(replies(
                    ReplyContext {
                        id: next_id,
                        client,
                        frontend: socket.clone(),
                        upstream: upstream.clone(),
                        sessions: sessions.clone(),
                        last: last.clone(),
                        epoch,
                        idle,
                    },
                    lease,
                ));
                lock(&sessions).insert(
                    client,
                    Session {
                        id: next_id,
                        endpoint,
                        balancer: r.balancer.clone(),
                        upstream: upstream.clone(),
                        last,
                        task,
                    },
                );
                upstream
            }
        };
        if let Err(e) = upstream.send(&buf[..n]).await {
            tracing::debug!(client = %client, error = %e, "UDP send to the endpoint failed");
        }
    }
}

async fn connect(endpoint: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: IpAddr = match endpoint {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let s = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    s.connect(endpoint).await?;
    Ok(s)
}

struct ReplyContext {
    id: u64,
    client: SocketAddr,
    frontend: Arc<UdpSocket>,
    upstream: Arc<UdpSocket>,
    sessions: Sessions,
    last: Arc<AtomicU64>,
    epoch: Instant,
    idle: Duration,
}

/// Sends the endpoint's replies to the client until the session is idle for `idle`; the lease
/// (the endpoint's active count) lives as long as the session.
async fn replies(cx: ReplyContext, lease: Lease) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let now = cx.epoch.elapsed().as_millis() as u64;
        let since = Duration::from_millis(now.saturating_sub(cx.last.load(Ordering::Relaxed)));
        if since >= cx.idle {
            break;
        }
        match tokio::time::timeout(cx.idle - since, cx.upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                cx.last
                    .store(cx.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
                if let Err(e) = cx.frontend.send_to(&buf[..n], cx.client).await {
                    tracing::debug!(client = %cx.client, error = %e, "UDP reply failed");
                }
            }
            // ICMP port unreachable from the endpoint: end the session so the next datagram
            // picks again.
            Ok(Err(e)) => {
                tracing::debug!(endpoint = %lease.endpoint, error = %e, "UDP session ended");
                break;
            }
            Err(_) => {}
        }
    }
    let mut s = lock(&cx.sessions);
    if s.get(&cx.client).is_some_and(|sess| sess.id == cx.id) {
        s.remove(&cx.client);
    }
}
