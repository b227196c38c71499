//! The rescuer: a periodic sweep that returns tasks whose worker stopped heartbeating (crashed,
//! killed, partitioned) to `pending`, or fails them on their last attempt.
//!
//! Every runtime runs one. Sweeps from several processes are safe together because
//! `rescue_expired` changes each expired task in one transaction; a sweep that finds nothing
//! costs one indexed query.

use std::sync::Arc;
use std::time::Duration;

use task_core::TaskStatus;
use task_store::TaskStore;
use tokio_util::sync::CancellationToken;

use crate::clock::now_millis;
use crate::config::check_interval;
use crate::ticks::Ticks;
use crate::RuntimeError;

/// How often the rescuer sweeps unless configured otherwise.
pub const DEFAULT_RESCUE_INTERVAL: Duration = Duration::from_secs(5);

/// The rescuer's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RescuerConfig {
    /// Time between sweeps; the first runs at start, so tasks of a crashed previous run come
    /// back at once. A task is rescued at most this long after its lease expired.
    /// Defaults to 5 s.
    pub interval: Duration,
}

impl Default for RescuerConfig {
    fn default() -> Self {
        Self {
            interval: DEFAULT_RESCUE_INTERVAL,
        }
    }
}

impl RescuerConfig {
    /// Checks the values.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] for a zero interval or one over 365 days.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        check_interval("rescuer.interval", self.interval)
    }
}

/// Sweeps every `config.interval` until `stop` fires.
pub(crate) async fn run(store: Arc<dyn TaskStore>, config: RescuerConfig, stop: CancellationToken) {
    let mut ticks = Ticks::every(config.interval, stop);
    while ticks.tick().await {
        sweep(store.as_ref()).await;
    }
}

async fn sweep(store: &dyn TaskStore) {
    match store.rescue_expired(now_millis()).await {
        Ok(rescued) => {
            for task in rescued {
                if task.status == TaskStatus::Failed {
                    tracing::warn!(task_id = %task.id, attempt = task.attempt, "rescued: lease expired on the last attempt, failed");
                } else {
                    tracing::warn!(task_id = %task.id, attempt = task.attempt, "rescued: lease expired, back to pending");
                }
            }
        }
        // The next sweep tries again; an expired lease stays expired until then.
        Err(error) => tracing::warn!(%error, "rescuer sweep failed"),
    }
}
