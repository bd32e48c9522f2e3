//! Latency percentiles, split into steady state and upgrade windows.

use std::fmt;
use std::time::Duration;

use hoist_testkit::hello::{RequestKind, Sample};

/// `[start, end)` offsets from the load's start: one upgrade or restart.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Duration,
    pub end: Duration,
    /// From the signal until the new process answered `GET /`.
    pub to_serving: Duration,
}

/// p50/p99/max of successful requests, and the number of failed ones.
#[derive(Debug, Default)]
pub struct Summary {
    pub requests: usize,
    pub failed: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    pub fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Summary {
        let mut latencies = Vec::new();
        let mut failed = 0;
        for sample in samples {
            if sample.ok {
                latencies.push(sample.latency);
            } else {
                failed += 1;
            }
        }
        latencies.sort_unstable();
        Summary {
            requests: latencies.len() + failed,
            failed,
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9} {:>7} {:>9} {:>9} {:>9}",
            self.requests,
            self.failed,
            millis(self.p50),
            millis(self.p99),
            millis(self.max)
        )
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
pub fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

pub fn millis(duration: Duration) -> String {
    format!("{:.2}ms", duration.as_secs_f64() * 1000.0)
}

/// Whether a request overlapped any window.
pub fn in_windows(sample: &Sample, windows: &[Window]) -> bool {
    let end = sample.start + sample.latency;
    windows
        .iter()
        .any(|w| sample.start < w.end && end > w.start)
}

/// Samples of `kind` after `warmup`, split into (steady, in windows).
pub fn split<'a>(
    samples: &'a [Sample],
    windows: &[Window],
    kind: RequestKind,
    warmup: Duration,
) -> (Vec<&'a Sample>, Vec<&'a Sample>) {
    samples
        .iter()
        .filter(|s| s.kind == kind && s.start >= warmup)
        .partition(|s| !in_windows(s, windows))
}
