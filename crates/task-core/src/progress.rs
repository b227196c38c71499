//! Progress rules (`0 <= progress <= total`, never backwards within an attempt) and the
//! conventional phase bands handlers report against.

use crate::CoreError;

/// The `total` of a task unless its creator says otherwise: progress is a percentage.
pub const DEFAULT_TOTAL: i64 = 100;

/// Checks a progress report against the rules: within `0..=total` and not below `current`.
/// An equal value is allowed, so a handler may change only its description.
///
/// # Errors
/// [`CoreError::ProgressOutOfRange`] or [`CoreError::ProgressRegressed`].
pub fn check_progress(current: i64, requested: i64, total: i64) -> Result<i64, CoreError> {
    if !(0..=total).contains(&requested) {
        return Err(CoreError::ProgressOutOfRange {
            progress: requested,
            total,
        });
    }
    if requested < current {
        return Err(CoreError::ProgressRegressed { current, requested });
    }
    Ok(requested)
}

/// The conventional phases of an AI task and the share of the progress bar each one owns, so
/// that "3 of 10 questions parsed" becomes the right overall percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// 0–10 %: validating input, building the prompt.
    Preparing,
    /// 10–30 %: the request to the AI provider is under way.
    RequestSent,
    /// 30–70 %: the answer arrived and is being parsed and checked.
    Parsing,
    /// 70–100 %: results are being saved.
    Saving,
}

impl Phase {
    /// The phase's band as percentages `(start, end)`.
    pub const fn band(self) -> (i64, i64) {
        match self {
            Phase::Preparing => (0, 10),
            Phase::RequestSent => (10, 30),
            Phase::Parsing => (30, 70),
            Phase::Saving => (70, 100),
        }
    }

    /// Overall progress on a task whose total is `total` when `done` of `of` units of this phase
    /// are finished. `done` is clamped to `of`; `of == 0` counts as the phase's start.
    pub fn progress(self, done: u64, of: u64, total: i64) -> i64 {
        let (start, end) = self.band();
        let within = if of == 0 {
            0
        } else {
            let done = done.min(of) as i128;
            ((end - start) as i128 * done / of as i128) as i64
        };
        let percent = start + within;
        (percent as i128 * total.max(0) as i128 / 100) as i64
    }

    /// Progress at the start of the phase.
    pub fn start(self, total: i64) -> i64 {
        self.progress(0, 1, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(current: i64, requested: i64, total: i64, expected: Result<i64, CoreError>) {
        assert_eq!(check_progress(current, requested, total), expected);
    }

    #[test]
    fn progress_rules() {
        check(0, 0, 100, Ok(0));
        check(0, 100, 100, Ok(100));
        check(30, 30, 100, Ok(30));
        check(30, 70, 100, Ok(70));
        check(
            0,
            101,
            100,
            Err(CoreError::ProgressOutOfRange {
                progress: 101,
                total: 100,
            }),
        );
        check(
            0,
            -1,
            100,
            Err(CoreError::ProgressOutOfRange {
                progress: -1,
                total: 100,
            }),
        );
        check(
            70,
            30,
            100,
            Err(CoreError::ProgressRegressed {
                current: 70,
                requested: 30,
            }),
        );
    }

    #[test]
    fn phases_map_onto_their_bands() {
        assert_eq!(Phase::Preparing.start(100), 0);
        assert_eq!(Phase::RequestSent.start(100), 10);
        assert_eq!(Phase::Parsing.progress(0, 10, 100), 30);
        assert_eq!(Phase::Parsing.progress(3, 10, 100), 42);
        assert_eq!(Phase::Parsing.progress(10, 10, 100), 70);
        assert_eq!(Phase::Parsing.progress(99, 10, 100), 70, "clamped");
        assert_eq!(Phase::Saving.progress(1, 2, 100), 85);
        assert_eq!(Phase::Saving.progress(2, 2, 100), 100);
        assert_eq!(Phase::Saving.progress(1, 2, 1000), 850, "scaled to total");
        assert_eq!(Phase::RequestSent.progress(5, 0, 100), 10);
    }
}
