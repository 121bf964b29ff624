//! Is a Service live yet? Connection attempts from the client pod, one started every
//! millisecond without waiting for the earlier ones to finish.
//!
//! A Service without endpoints is REJECTed with an ICMP port unreachable, and the kernel
//! rate-limits those per destination host (`net.ipv4.icmp_ratelimit`, 1 s, burst 6): a client
//! that keeps knocking gets its first few SYNs refused and the rest silently dropped. A probe
//! that tries one connection at a time with a timeout therefore waits out that timeout on the
//! first silent SYN, whenever the rule goes live meanwhile (the 100 ms "floor" of the first
//! version of this benchmark). Overlapping attempts do not: the first SYN sent after the rule
//! is live is answered, whatever happened to the ones before it.

use futures::stream::{FuturesUnordered, StreamExt};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A new attempt this often.
const PACE: Duration = Duration::from_millis(1);
/// An attempt that is neither answered nor refused by then is given up (a dropped SYN would
/// be retransmitted after 1 s; the attempts started since cover that second).
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

/// What to wait for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// A connection is accepted (the Service has a live endpoint).
    Accepted,
    /// A connection is refused (the Service is programmed, without endpoints).
    Refused,
}

/// Attempts connections to `addr` until one ends as `until` wants; returns the instant that
/// attempt completed, or `None` after `limit`. Run inside the client namespace.
pub async fn wait(addr: SocketAddr, until: Until, limit: Duration) -> Option<Instant> {
    let start = Instant::now();
    let mut attempts = FuturesUnordered::new();
    let mut pace = tokio::time::interval(PACE);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            Some(r) = attempts.next(), if !attempts.is_empty() => {
                let done = match (until, r) {
                    (Until::Accepted, Ok(Ok(_stream))) => true,
                    (Until::Refused, Ok(Err(e))) => {
                        let e: &std::io::Error = &e;
                        e.kind() == ErrorKind::ConnectionRefused
                    }
                    _ => false,
                };
                if done {
                    return Some(Instant::now());
                }
            }
            _ = pace.tick() => {
                if start.elapsed() >= limit {
                    return None;
                }
                attempts.push(tokio::time::timeout(
                    ATTEMPT_TIMEOUT,
                    tokio::net::TcpStream::connect(addr),
                ));
            }
        }
    }
}
