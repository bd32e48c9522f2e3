//! Poll timing: the regular interval ± jitter, a random first offset (so a fleet started
//! together does not poll in step), and exponential backoff with a cap and jitter after
//! errors. Also [`ConditionLog`], which logs a failing condition once when it starts,
//! once when it changes and once when it clears — not on every poll.

use std::time::Duration;

use rand::Rng;

/// Computes the delay before each poll of one watch.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    jitter: Duration,
    cap: Duration,
    failures: u32,
}

impl Schedule {
    /// `interval ± jitter` normally; after errors `interval · 2^(n-1)`, capped at `cap`
    /// (never below `interval`), with ±25 % jitter.
    pub fn new(interval: Duration, jitter: Duration, cap: Duration) -> Self {
        Self {
            interval,
            jitter: jitter.min(interval),
            cap: cap.max(interval),
            failures: 0,
        }
    }

    /// Random offset in `[0, interval)` for the first poll.
    pub fn first_delay(&self, rng: &mut impl Rng) -> Duration {
        let nanos = self.interval.as_nanos().min(u64::MAX as u128) as u64;
        Duration::from_nanos(rng.random_range(0..nanos.max(1)))
    }

    /// Number of consecutive failures recorded.
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Delay after a successful poll (resets the backoff).
    pub fn after_success(&mut self, rng: &mut impl Rng) -> Duration {
        self.failures = 0;
        let base = self.interval.as_secs_f64();
        let jitter = self.jitter.as_secs_f64();
        let offset = if jitter > 0.0 {
            rng.random_range(-jitter..=jitter)
        } else {
            0.0
        };
        Duration::from_secs_f64((base + offset).max(0.001))
    }

    /// Delay after a failed poll (grows exponentially up to the cap).
    pub fn after_failure(&mut self, rng: &mut impl Rng) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let exponent = (self.failures - 1).min(30);
        let raw = self.interval.as_secs_f64() * f64::from(1u32 << exponent.min(30));
        let capped = raw.min(self.cap.as_secs_f64());
        let factor = rng.random_range(0.75..=1.25);
        Duration::from_secs_f64((capped * factor).min(self.cap.as_secs_f64()).max(0.001))
    }
}

/// Logs transitions of a condition (e.g. "S3 unreachable") instead of every occurrence.
#[derive(Debug, Default)]
pub struct ConditionLog {
    current: Option<String>,
    repeats: u64,
}

/// What [`ConditionLog`] decided for an observation.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    /// Same as before: do not log.
    Unchanged,
    /// A failure started, or changed kind: log it.
    Failing,
    /// It cleared after `occurrences` failed polls: log the recovery.
    Recovered {
        /// The condition that cleared.
        condition: String,
        /// How many consecutive failures there were.
        occurrences: u64,
    },
}

impl ConditionLog {
    /// Records a failure of kind `kind` (a short, stable description without volatile
    /// details). Returns [`Transition::Failing`] when it should be logged.
    pub fn failing(&mut self, kind: &str) -> Transition {
        if self.current.as_deref() == Some(kind) {
            self.repeats += 1;
            Transition::Unchanged
        } else {
            self.current = Some(kind.to_owned());
            self.repeats = 1;
            Transition::Failing
        }
    }

    /// Records a success. Returns [`Transition::Recovered`] when a failure just cleared.
    pub fn ok(&mut self) -> Transition {
        match self.current.take() {
            Some(condition) => Transition::Recovered {
                condition,
                occurrences: std::mem::take(&mut self.repeats),
            },
            None => Transition::Unchanged,
        }
    }

    /// True while a failure is active.
    #[cfg(test)]
    pub fn is_failing(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn success_delay_stays_within_jitter() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut schedule = Schedule::new(
            Duration::from_secs(10),
            Duration::from_secs(2),
            Duration::from_secs(300),
        );
        let delays: Vec<Duration> = (0..200).map(|_| schedule.after_success(&mut rng)).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(8) && *d <= Duration::from_secs(12))
        );
        assert!(
            delays.iter().any(|d| *d < Duration::from_secs(9)),
            "jitter is used"
        );
        assert!(
            delays.iter().any(|d| *d > Duration::from_secs(11)),
            "jitter is used"
        );
    }

    #[test]
    fn first_delay_spreads_over_the_interval() {
        let mut rng = StdRng::seed_from_u64(1);
        let schedule = Schedule::new(
            Duration::from_secs(10),
            Duration::ZERO,
            Duration::from_secs(60),
        );
        let delays: Vec<Duration> = (0..200).map(|_| schedule.first_delay(&mut rng)).collect();
        assert!(delays.iter().all(|d| *d < Duration::from_secs(10)));
        assert!(delays.iter().any(|d| *d < Duration::from_secs(2)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(8)));
    }

    #[test]
    fn failures_back_off_exponentially_to_the_cap_and_reset() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut schedule = Schedule::new(
            Duration::from_secs(1),
            Duration::ZERO,
            Duration::from_secs(20),
        );
        let delays: Vec<f64> = (0..10)
            .map(|_| schedule.after_failure(&mut rng).as_secs_f64())
            .collect();
        // 1, 2, 4, 8, 16, 20, 20… each ±25 %, never above the cap.
        assert!((0.75..=1.25).contains(&delays[0]), "{delays:?}");
        assert!((3.0..=5.0).contains(&delays[2]), "{delays:?}");
        assert!(delays[4] >= 12.0, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= 20.0), "{delays:?}");
        assert!(delays[9] >= 15.0, "{delays:?}");
        assert_eq!(schedule.failures(), 10);
        let after = schedule.after_success(&mut rng);
        assert_eq!(schedule.failures(), 0);
        assert!(after <= Duration::from_secs(1));
    }

    #[test]
    fn condition_logs_only_transitions() {
        let mut log = ConditionLog::default();
        assert_eq!(log.ok(), Transition::Unchanged);
        assert_eq!(log.failing("unreachable"), Transition::Failing);
        assert_eq!(log.failing("unreachable"), Transition::Unchanged);
        assert_eq!(log.failing("unreachable"), Transition::Unchanged);
        assert!(log.is_failing());
        assert_eq!(log.failing("access denied"), Transition::Failing);
        assert_eq!(
            log.ok(),
            Transition::Recovered {
                condition: "access denied".into(),
                occurrences: 1
            }
        );
        assert_eq!(log.ok(), Transition::Unchanged);
        assert!(!log.is_failing());
    }
}
