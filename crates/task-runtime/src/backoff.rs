//! Exponential backoff with full jitter, the wait before a retryable failure runs again.
//!
//! Full jitter (a uniformly random wait between zero and the exponential ceiling) spreads the
//! retries of many tasks that failed together, e.g. on one provider outage, instead of sending
//! them back in lock-step.

use std::time::Duration;

/// The first retry waits up to this long unless the task type says otherwise.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(2);
/// No retry waits longer than this unless the task type says otherwise.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(5 * 60);

/// How long to wait before retrying: the `n`-th retry (n = 1 after the first failed attempt)
/// waits a uniformly random time in `[0, min(cap, base · 2^(n-1))]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait. Defaults to 2 s.
    pub base: Duration,
    /// The largest ceiling any retry gets. Defaults to 5 min.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: DEFAULT_BACKOFF_BASE,
            cap: DEFAULT_BACKOFF_CAP,
        }
    }
}

impl Backoff {
    /// The exponential ceiling for the `retry`-th retry, before jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// A random wait for the `retry`-th retry.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_at(retry, random_unit())
    }

    /// The wait for the `retry`-th retry when the jitter draw is `unit` (in `[0, 1]`).
    fn delay_at(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A uniform draw from `[0, 1)`. Jitter needs no cryptographic strength, but the OS generator
/// is already a dependency and is called only once per failed attempt; if it is unavailable
/// the full ceiling is used, which is the plain exponential backoff.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retry: u32, unit: f64, expected_ms: u64) {
        let backoff = Backoff::default();
        assert_eq!(
            backoff.delay_at(retry, unit),
            Duration::from_millis(expected_ms),
            "retry {retry}, unit {unit}"
        );
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        check(1, 1.0, 2_000);
        check(2, 1.0, 4_000);
        check(3, 1.0, 8_000);
        check(3, 0.5, 4_000);
        check(3, 0.0, 0);
        check(8, 1.0, 256_000);
        check(9, 1.0, 300_000);
        check(1_000, 1.0, 300_000);
        check(0, 1.0, 2_000);
    }

    #[test]
    fn random_delays_stay_within_the_ceiling() {
        let backoff = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(25),
        };
        for retry in 1..6 {
            for _ in 0..50 {
                assert!(backoff.delay(retry) <= backoff.ceiling(retry));
            }
        }
        assert_eq!(backoff.ceiling(3), Duration::from_millis(25));
    }
}
