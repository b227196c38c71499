//! Wall-clock time in the unit every task timestamp uses.
//!
//! A copy of `task_store`'s crate-private `clock` module, kept identical so every backend
//! behaves the same; once task-store exports it, this file goes.

use std::time::{SystemTime, UNIX_EPOCH};

use task_core::UnixMillis;

/// Milliseconds since the Unix epoch. A clock set before 1970 reads as 0 rather than failing:
/// timestamps only order and age tasks, so a wrong clock must not stop the service.
pub(crate) fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
