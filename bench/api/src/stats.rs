//! Percentiles over latency samples, in milliseconds.

/// Nearest-rank percentiles of one set of samples.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summarize(mut ms: Vec<f64>) -> Summary {
    if ms.is_empty() {
        return Summary {
            n: 0,
            p50: f64::NAN,
            p99: f64::NAN,
            max: f64::NAN,
        };
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let rank =
        |p: f64| ms[(((p / 100.0) * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    Summary {
        n: ms.len(),
        p50: rank(50.0),
        p99: rank(99.0),
        max: ms[ms.len() - 1],
    }
}

pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn nearest_rank_percentiles() {
        let s = summarize((1..=100).map(f64::from).collect());
        assert_eq!((s.p50, s.p99, s.max), (50.0, 99.0, 100.0));
        let s = summarize(vec![3.0]);
        assert_eq!((s.p50, s.p99), (3.0, 3.0));
    }
}
