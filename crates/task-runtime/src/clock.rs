//! Wall-clock time in the store's unit. Timers inside the runtime use tokio's monotonic clock;
//! only values written to or compared with the store use this.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use task_core::UnixMillis;

/// Milliseconds since the Unix epoch, now. A clock set before 1970 reads as 0.
pub(crate) fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `at + duration`, saturating instead of overflowing.
pub(crate) fn after(at: UnixMillis, duration: Duration) -> UnixMillis {
    at.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

/// `at - duration`, saturating instead of overflowing.
pub(crate) fn before(at: UnixMillis, duration: Duration) -> UnixMillis {
    at.saturating_sub(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}
