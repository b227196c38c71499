//! Wall-clock time in the unit every task timestamp uses.

use std::time::{SystemTime, UNIX_EPOCH};

use task_core::UnixMillis;

/// Milliseconds since the Unix epoch. A clock set before 1970 reads as 0 rather than failing:
/// timestamps only order and age tasks, so a wrong clock must not stop the service.
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
