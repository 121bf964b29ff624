//! What is measured, the same way for both systems: the parameters, the results, and the
//! watch-latency driver (one paced writer, many watchers, receipt time minus send time).

use crate::stats::{ms, summarize, Summary};
use anyhow::{anyhow, bail, Result};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

#[derive(Clone, Debug)]
pub struct Workload {
    /// Concurrent writers for the create phase.
    pub clients: usize,
    /// Objects created (and then listed).
    pub objects: usize,
    /// Bytes of `data.payload` in each ConfigMap.
    pub payload_bytes: usize,
    /// Timed full lists.
    pub lists: usize,
    pub watchers: usize,
    /// Writes whose delivery to every watcher is timed.
    pub events: usize,
    /// Pause between two timed writes (the writer also waits for each acknowledgement).
    pub interval: Duration,
}

impl Workload {
    pub fn payload(&self) -> String {
        // Printable and varied, so compression-like shortcuts don't flatter anyone.
        (0..self.payload_bytes)
            .map(|i| (b'a' + ((i * 7 + i / 26) % 26) as u8) as char)
            .collect()
    }
}

pub struct CreateRun {
    pub count: usize,
    pub elapsed: Duration,
    /// Per create, milliseconds.
    pub latencies: Vec<f64>,
    /// Average size of a stored object as the server returns it.
    pub object_bytes: usize,
}

impl CreateRun {
    pub fn per_sec(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
    }
}

pub struct ListRun {
    pub items: usize,
    pub bytes: usize,
    pub latencies: Vec<f64>,
}

pub struct WatchResult {
    /// Receipt by a watcher minus the instant just before the write was sent, per (watcher, write).
    pub from_send: Summary,
    /// Receipt minus the instant the write's acknowledgement arrived; negative when the event
    /// reached the watcher before the writer had its answer.
    pub from_ack: Summary,
}

/// Shared between the watcher tasks and the driver.
#[derive(Clone)]
pub struct WatchRun {
    pub events: usize,
    pub watchers: usize,
    pub interval: Duration,
    /// Watchers that have seen the `ready` object, so their stream is certainly open.
    pub ready: Arc<AtomicUsize>,
}

/// What a watcher task returns: when it received `w-{i}`, for each i.
pub type Receipts = Vec<Option<Instant>>;

impl WatchRun {
    pub fn new(w: &Workload) -> WatchRun {
        WatchRun {
            events: w.events,
            watchers: w.watchers,
            interval: w.interval,
            ready: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Writes `ready`, waits until every watcher has it, then makes the timed writes `w-{i}`
    /// one at a time and collects every watcher's receipts.
    pub async fn drive<F, Fut>(
        self,
        tasks: Vec<JoinHandle<Result<Receipts>>>,
        write: F,
    ) -> Result<WatchResult>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        write("ready".into()).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.ready.load(Ordering::Relaxed) < self.watchers {
            if Instant::now() > deadline || tasks.iter().any(|t| t.is_finished()) {
                bail!(
                    "only {} of {} watchers started",
                    self.ready.load(Ordering::Relaxed),
                    self.watchers
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut sent = Vec::with_capacity(self.events);
        let mut acked = Vec::with_capacity(self.events);
        for i in 0..self.events {
            let t = Instant::now();
            write(format!("w-{i:05}")).await?;
            sent.push(t);
            acked.push(Instant::now());
            tokio::time::sleep(self.interval).await;
        }
        let mut from_send = Vec::new();
        let mut from_ack = Vec::new();
        for t in tasks {
            let receipts = tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .map_err(|_| anyhow!("a watcher did not get every event within 60 s"))???;
            for (i, r) in receipts.into_iter().enumerate() {
                let r = r.ok_or_else(|| anyhow!("a watcher missed w-{i}"))?;
                from_send.push(ms(r.duration_since(sent[i])));
                from_ack.push(if r >= acked[i] {
                    ms(r - acked[i])
                } else {
                    -ms(acked[i] - r)
                });
            }
        }
        Ok(WatchResult {
            from_send: summarize(from_send),
            from_ack: summarize(from_ack),
        })
    }
}
