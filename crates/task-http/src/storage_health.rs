//! What requests have learnt about the storage lately, for `/readyz`. A full disk leaves reads
//! (and so the readiness ping) working while every write fails, so the ping alone would keep
//! sending traffic to an instance that can create nothing. Requests whose store call failed as
//! unavailable mark the storage degraded; `/readyz` answers 503 while that is recent, and
//! recovers by itself: a later successful write clears it at once, and without writes it
//! lapses after [`DEGRADED_HOLD`] (a write that fails again marks it anew).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one storage failure keeps `/readyz` at 503 when no write succeeds after it.
pub const DEGRADED_HOLD: Duration = Duration::from_secs(10);

/// The time of the last storage failure not yet followed by a successful write.
#[derive(Debug, Default)]
pub(crate) struct StorageHealth {
    failed_at: Mutex<Option<Instant>>,
}

impl StorageHealth {
    /// A store call failed because the storage is unavailable or busy past its timeout.
    pub(crate) fn failed(&self) {
        *self.lock() = Some(Instant::now());
    }

    /// A write went through: the storage takes writes again.
    pub(crate) fn wrote(&self) {
        let mut failed_at = self.lock();
        if failed_at.is_some() {
            tracing::info!("storage accepts writes again");
            *failed_at = None;
        }
    }

    /// Whether a storage failure happened within [`DEGRADED_HOLD`] with no write since.
    pub(crate) fn degraded(&self) -> bool {
        self.lock().is_some_and(|at| at.elapsed() < DEGRADED_HOLD)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // The value is a plain timestamp; a panic elsewhere cannot leave it half-written.
        self.failed_at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_degrades_until_a_write() {
        let health = StorageHealth::default();
        assert!(!health.degraded());
        health.failed();
        assert!(health.degraded());
        health.wrote();
        assert!(!health.degraded());
        *health.lock() = Some(Instant::now() - DEGRADED_HOLD);
        assert!(!health.degraded(), "a failure lapses after the hold");
    }
}
