//! Wall-clock time in the unit every task timestamp uses: the one clock every crate reads, so
//! stores, the runtime, the quiz crate and the HTTP layer stamp and compare the same way.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::UnixMillis;

/// Milliseconds since the Unix epoch, now. A clock set before 1970 reads as 0 rather than
/// failing: timestamps only order and age tasks, so a wrong clock must not stop the service.
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_reads_after_this_code_was_written() {
        // 2026-01-01: a clock that reads earlier is broken or not milliseconds.
        assert!(now_millis() > 1_767_225_600_000);
    }
}
