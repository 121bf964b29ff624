//! When to sync: kube-proxy's `BoundedFrequencyRunner` as a pure state machine.
//!
//! A change *requests* a sync. A requested sync runs at once if the token bucket (refilled at
//! one token per `min_interval`, holding at most `burst`) has a token, else as soon as it has
//! one; every request that arrives meanwhile is folded into that one run. Without any request
//! a sync still runs `max_interval` after the last one (the periodic resync), and a failed sync
//! is retried after the delay the caller gives. The state machine takes the time as an argument,
//! so tests drive it with a fake clock; the agent's loop sleeps until the instant it returns.

use std::time::{Duration, Instant};

/// What the loop should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Sync now (a token has been taken).
    Run(Reason),
    /// Nothing to do before this instant (or before another request).
    At(Instant),
}

/// Why a sync runs (a requested one also covers a due resync).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Requested,
    Retry,
    Periodic,
}

#[derive(Debug)]
pub struct Runner {
    min_interval: Duration,
    max_interval: Duration,
    burst: u32,
    tokens: f64,
    refilled_at: Instant,
    last_run: Instant,
    requested: bool,
    retry_at: Option<Instant>,
}

impl Runner {
    /// kube-proxy runs its proxier with `burst` 2. The periodic clock starts at `now`.
    pub fn new(min_interval: Duration, max_interval: Duration, burst: u32, now: Instant) -> Runner {
        let burst = burst.max(1);
        Runner {
            min_interval,
            max_interval,
            burst,
            tokens: burst as f64,
            refilled_at: now,
            last_run: now,
            requested: false,
            retry_at: None,
        }
    }

    /// A change arrived: sync as soon as the bounds allow.
    pub fn request(&mut self) {
        self.requested = true;
    }

    /// Whether a requested sync is waiting.
    pub fn pending(&self) -> bool {
        self.requested
    }

    /// New bounds (a ConfigMap edit); tokens already earned are kept.
    pub fn set_intervals(&mut self, min_interval: Duration, max_interval: Duration, now: Instant) {
        self.refill(now);
        self.min_interval = min_interval;
        self.max_interval = max_interval;
    }

    fn refill(&mut self, now: Instant) {
        if self.min_interval.is_zero() {
            self.tokens = self.burst as f64;
        } else {
            let earned = now
                .saturating_duration_since(self.refilled_at)
                .as_secs_f64()
                / self.min_interval.as_secs_f64();
            self.tokens = (self.tokens + earned).min(self.burst as f64);
        }
        self.refilled_at = now;
    }

    /// Decides at `now`. On `Run` the caller must sync and then call [`Runner::done`].
    pub fn next(&mut self, now: Instant) -> Next {
        self.refill(now);
        let periodic_at = self.last_run + self.max_interval;
        let reason = if self.requested {
            Some(Reason::Requested)
        } else if self.retry_at.is_some_and(|t| t <= now) {
            Some(Reason::Retry)
        } else if periodic_at <= now {
            Some(Reason::Periodic)
        } else {
            None
        };
        match reason {
            Some(reason) if self.tokens >= 1.0 => {
                self.tokens -= 1.0;
                self.requested = false;
                self.retry_at = None;
                Next::Run(reason)
            }
            Some(_) => {
                // The earliest instant the bucket holds a whole token again.
                let wait = self.min_interval.mul_f64(1.0 - self.tokens);
                Next::At(now + wait.max(Duration::from_micros(1)))
            }
            None => Next::At(self.retry_at.map_or(periodic_at, |r| r.min(periodic_at))),
        }
    }

    /// A sync finished at `now`; on failure it is tried again after `retry` (sooner if a
    /// change requests it).
    pub fn done(&mut self, now: Instant, retry: Option<Duration>) {
        self.last_run = now;
        self.retry_at = retry.map(|d| now + d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A fake clock: the runner is driven the way the agent's loop drives it, with every sync
    /// taking `sync_cost`, and requests arriving at the given offsets.
    struct Sim {
        runner: Runner,
        t0: Instant,
        now: Instant,
        runs: Vec<(Duration, Reason)>,
        sync_cost: Duration,
    }

    impl Sim {
        fn new(min: Duration, max: Duration) -> Sim {
            let t0 = Instant::now();
            Sim {
                runner: Runner::new(min, max, 2, t0),
                t0,
                now: t0,
                runs: vec![],
                sync_cost: 5 * MS,
            }
        }

        /// Runs the loop until `until`, delivering requests at their offsets.
        fn run(&mut self, requests: &[Duration], until: Duration) {
            let mut reqs: Vec<Instant> = requests.iter().map(|d| self.t0 + *d).collect();
            reqs.sort();
            let end = self.t0 + until;
            let mut next_req = 0;
            loop {
                // Requests that arrived up to now (including during the last sync).
                while next_req < reqs.len() && reqs[next_req] <= self.now {
                    self.runner.request();
                    next_req += 1;
                }
                match self.runner.next(self.now) {
                    Next::Run(reason) => {
                        self.runs.push((self.now - self.t0, reason));
                        self.now += self.sync_cost;
                        self.runner.done(self.now, None);
                    }
                    Next::At(t) => {
                        let wake = match reqs.get(next_req) {
                            Some(r) if *r < t => *r,
                            _ => t,
                        };
                        if wake > end {
                            break;
                        }
                        assert!(wake >= self.now, "the runner never asks to go back in time");
                        self.now = wake;
                    }
                }
            }
        }

        fn times(&self) -> Vec<u64> {
            self.runs
                .iter()
                .map(|(d, _)| d.as_millis() as u64)
                .collect()
        }
    }

    #[test]
    fn a_single_change_after_quiet_runs_at_once() {
        let mut s = Sim::new(1000 * MS, 30_000 * MS);
        s.run(&[10_000 * MS], 11_000 * MS);
        assert_eq!(s.times(), vec![10_000]);
        assert_eq!(s.runs[0].1, Reason::Requested);
    }

    #[test]
    fn a_burst_of_changes_is_coalesced() {
        let mut s = Sim::new(1000 * MS, 30_000 * MS);
        // 200 changes over 100 ms.
        let reqs: Vec<Duration> = (0..200).map(|i| 5_000 * MS + i * MS / 2).collect();
        s.run(&reqs, 7_000 * MS);
        // Two runs from the burst allowance while changes keep coming, then one more once a
        // token is back, covering everything that arrived in between.
        assert_eq!(s.times(), vec![5_000, 5_005, 6_000], "{:?}", s.runs);
    }

    #[test]
    fn steady_changes_run_at_most_once_per_min_interval() {
        let mut s = Sim::new(1000 * MS, 30_000 * MS);
        let reqs: Vec<Duration> = (0..1000).map(|i| i * 10 * MS).collect(); // 10 s of changes
        s.run(&reqs, 12_000 * MS);
        let t = s.times();
        // Beyond the burst of two, runs are at least min_interval apart.
        for w in t.windows(3) {
            // (A few microseconds of float rounding aside.)
            assert!(w[2] - w[0] >= 999, "{t:?}");
        }
        assert!(t.len() <= 12, "{t:?}");
        // The last change (9.99 s) is covered by a run after it.
        assert!(*t.last().unwrap() >= 9_990, "{t:?}");
    }

    #[test]
    fn zero_min_interval_runs_every_change() {
        let mut s = Sim::new(Duration::ZERO, 30_000 * MS);
        let reqs: Vec<Duration> = (0..10).map(|i| 100 * MS + i * 20 * MS).collect();
        s.run(&reqs, 1_000 * MS);
        assert_eq!(s.times().len(), 10, "{:?}", s.runs);
    }

    #[test]
    fn resyncs_periodically_without_changes() {
        let mut s = Sim::new(1000 * MS, 30_000 * MS);
        s.run(&[], 95_000 * MS);
        assert_eq!(s.times(), vec![30_000, 60_005, 90_010]);
        assert!(s.runs.iter().all(|(_, r)| *r == Reason::Periodic));
    }

    #[test]
    fn a_change_pushes_the_periodic_resync_back() {
        let mut s = Sim::new(1000 * MS, 30_000 * MS);
        s.run(&[20_000 * MS], 45_000 * MS);
        assert_eq!(s.times(), vec![20_000]);
    }

    #[test]
    fn a_failed_sync_is_retried() {
        let t0 = Instant::now();
        let mut r = Runner::new(1000 * MS, 30_000 * MS, 2, t0);
        r.request();
        assert_eq!(r.next(t0), Next::Run(Reason::Requested));
        r.done(t0 + 5 * MS, Some(2_000 * MS));
        assert_eq!(r.next(t0 + 10 * MS), Next::At(t0 + 2_005 * MS));
        assert_eq!(r.next(t0 + 2_005 * MS), Next::Run(Reason::Retry));
        r.done(t0 + 2_010 * MS, None);
        assert_eq!(r.next(t0 + 2_010 * MS), Next::At(t0 + 32_010 * MS));
    }

    #[test]
    fn shorter_min_interval_applies_at_once() {
        let t0 = Instant::now();
        let mut r = Runner::new(10_000 * MS, 30_000 * MS, 1, t0);
        r.request();
        assert!(matches!(r.next(t0), Next::Run(_)));
        r.done(t0, None);
        r.request();
        assert_eq!(r.next(t0), Next::At(t0 + 10_000 * MS));
        r.set_intervals(100 * MS, 30_000 * MS, t0 + 50 * MS);
        // The 0.5% of a token earned in 50 ms at the old rate is kept; the rest comes at the new.
        let Next::At(t) = r.next(t0 + 50 * MS) else {
            panic!("not yet")
        };
        assert!(t > t0 + 140 * MS && t <= t0 + 150 * MS, "{:?}", t - t0);
        assert!(matches!(r.next(t0 + 150 * MS), Next::Run(_)));
    }
}
