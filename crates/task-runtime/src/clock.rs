//! Wall-clock time in the store's unit. Timers inside the runtime use tokio's monotonic clock;
//! only values written to or compared with the store use this.

use std::time::Duration;

use task_core::UnixMillis;

pub(crate) use task_core::now_millis;

/// `at + duration`, saturating instead of overflowing.
pub(crate) fn after(at: UnixMillis, duration: Duration) -> UnixMillis {
    at.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// `at - duration`, saturating instead of overflowing.
pub(crate) fn before(at: UnixMillis, duration: Duration) -> UnixMillis {
    at.saturating_sub(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}
