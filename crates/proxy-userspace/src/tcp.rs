//! TCP frontends: accept, pick an endpoint, dial it (the next endpoint when a dial fails, as
//! kube-proxy's userspace mode did), then copy both directions until both are done. A
//! half-close is passed on: EOF from one side shuts down writing towards the other.

use crate::route::{self, SharedRoute};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// Dial timeouts of the successive attempts of one connection (kube-proxy's userspace proxy
/// used 250 ms, 500 ms, 1 s, 2 s; a little more here, as a loaded node answers SYNs late).
const DIAL_TIMEOUTS: [Duration; 4] = [
    Duration::from_millis(1000),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
    Duration::from_millis(2000),
];
/// At most this many endpoints are tried for one connection.
const MAX_ATTEMPTS: usize = 8;

pub async fn serve(listener: TcpListener, route: SharedRoute) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                let r = route::current(&route);
                tokio::spawn(async move { proxy(client, peer, r).await });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn proxy(mut client: TcpStream, peer: SocketAddr, route: route::Route) {
    let Some(pool) = route.pool(peer.ip()) else {
        let _ = client.set_zero_linger();
        return;
    };
    let balancer = &route.balancer;
    let mut tried: Vec<SocketAddr> = Vec::new();
    for attempt in 0..MAX_ATTEMPTS {
        let Some(lease) = balancer.pick(pool, peer.ip(), &tried) else {
            break;
        };
        let timeout = DIAL_TIMEOUTS[attempt.min(DIAL_TIMEOUTS.len() - 1)];
        match tokio::time::timeout(timeout, TcpStream::connect(lease.endpoint)).await {
            Ok(Ok(mut upstream)) => {
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    Ok(_) => {}
                    Err(e) => tracing::debug!(
                        service_port = balancer.name(),
                        endpoint = %lease.endpoint,
                        client = %peer,
                        error = %e,
                        "connection ended with an error"
                    ),
                }
                // The lease (and the endpoint's active count) ends here, with the connection.
                drop(lease);
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(service_port = balancer.name(), endpoint = %lease.endpoint, error = %e, "dial failed; trying the next endpoint")
            }
            Err(_) => {
                tracing::debug!(service_port = balancer.name(), endpoint = %lease.endpoint, timeout = ?timeout, "dial timed out; trying the next endpoint")
            }
        }
        balancer.dial_failed(lease.endpoint);
        tried.push(lease.endpoint);
    }
    // No endpoint (left): reset the connection, as kube-proxy's REJECT would refuse it.
    let _ = client.set_zero_linger();
}
