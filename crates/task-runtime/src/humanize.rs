//! Short human forms of durations for task descriptions and errors ("4s", "1m 30s", "250ms").

use std::time::Duration;

/// Formats `duration` the way a progress line shows it: milliseconds below a second, whole
/// seconds below a minute (rounded up, so a wait is never under-stated), then minutes and
/// seconds, then hours and minutes.
pub(crate) fn human_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => match secs % 60 {
            0 => format!("{}m", secs / 60),
            rest => format!("{}m {rest}s", secs / 60),
        },
        _ => match (secs % 3_600) / 60 {
            0 => format!("{}h", secs / 3_600),
            minutes => format!("{}h {minutes}m", secs / 3_600),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(millis: u64, expected: &str) {
        assert_eq!(human_duration(Duration::from_millis(millis)), expected);
    }

    #[test]
    fn durations_read_naturally() {
        check(0, "0ms");
        check(250, "250ms");
        check(999, "999ms");
        check(1_000, "1s");
        check(3_200, "4s");
        check(4_000, "4s");
        check(59_000, "59s");
        check(60_000, "1m");
        check(90_000, "1m 30s");
        check(600_000, "10m");
        check(3_600_000, "1h");
        check(5_400_000, "1h 30m");
    }
}
