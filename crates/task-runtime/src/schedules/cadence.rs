//! When a schedule fires: its expression (a cron pattern or `every <interval>`) read in its IANA
//! time zone, turned into fire times in unix milliseconds.
//!
//! Cron patterns are parsed and stepped by the `croner` crate (5 fields, an optional leading
//! seconds field and an optional trailing year, `@hourly`/`@daily`/`@weekly`/`@monthly`/
//! `@yearly`, names of days and months); zones come from `chrono-tz` (the IANA database).
//! Daylight-saving transitions follow croner's documented rule: a fixed-time job whose time
//! falls into a spring-forward gap fires at the first valid time after the gap, and once (at
//! the first pass) when the autumn repeats its hour; wildcard and step jobs skip what the gap
//! removes and fire in both passes of a repeated hour. Intervals (`every 15m`) are plain
//! durations counted from the schedule's creation, so zones and DST do not touch them.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;
use task_core::UnixMillis;

use crate::ScheduleError;

/// The shortest interval an `every` expression may have. Shorter ones would be a busy loop
/// more than a schedule (and a cron pattern's finest step is one second too).
pub const MIN_SCHEDULE_INTERVAL: Duration = Duration::from_secs(1);

/// A parsed expression and zone.
#[derive(Debug, Clone)]
pub struct Cadence {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron { cron: Box<Cron>, zone: Tz },
    Every { interval: i64, anchor: UnixMillis },
}

fn invalid(field: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::invalid(field, reason)
}

/// Reads an IANA zone name (`UTC`, `Europe/Stockholm`).
///
/// # Errors
/// [`ScheduleError::Invalid`] for `timezone`, with chrono-tz's message.
pub fn parse_timezone(timezone: &str) -> Result<Tz, ScheduleError> {
    timezone.trim().parse::<Tz>().map_err(|e| {
        invalid(
            "timezone",
            format!(
                "{timezone:?} is not an IANA time zone name such as \"Europe/Stockholm\" ({e})"
            ),
        )
    })
}

/// Reads the `<interval>` of `every <interval>`: one or more `<number><unit>` groups, units
/// `s`, `m`, `h` and `d` (`15m`, `1h30m`).
fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an interval such as `every 15m` needs a length".to_owned());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            other => {
                return Err(format!(
                    "unknown interval unit {other:?} (use s, m, h or d, e.g. `every 15m`)"
                ))
            }
        };
        let count: u64 = digits
            .parse()
            .map_err(|_| format!("a number must come before the unit {c:?}"))?;
        digits.clear();
        total = count
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or("the interval is too long")?;
    }
    if !digits.is_empty() {
        return Err(format!("{digits:?} needs a unit (s, m, h or d)"));
    }
    Ok(Duration::from_secs(total))
}

impl Cadence {
    /// Parses `expression` in `timezone`; `anchor` (the schedule's creation) is where an
    /// interval counts from, rounded down to a whole second.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] naming `expression` (with croner's message, or why the
    /// interval is wrong, including one under [`MIN_SCHEDULE_INTERVAL`]) or `timezone`.
    pub fn parse(
        expression: &str,
        timezone: &str,
        anchor: UnixMillis,
    ) -> Result<Self, ScheduleError> {
        let zone = parse_timezone(timezone)?;
        let trimmed = expression.trim();
        let interval = trimmed
            .strip_prefix("every ")
            .or_else(|| trimmed.strip_prefix("EVERY "));
        if let Some(interval) = interval {
            let interval = parse_interval(interval).map_err(|e| invalid("expression", e))?;
            if interval < MIN_SCHEDULE_INTERVAL {
                return Err(invalid(
                    "expression",
                    format!(
                        "the interval must be at least {} s",
                        MIN_SCHEDULE_INTERVAL.as_secs()
                    ),
                ));
            }
            let interval = i64::try_from(interval.as_millis())
                .map_err(|_| invalid("expression", "the interval is too long"))?;
            return Ok(Self {
                kind: Kind::Every {
                    interval,
                    anchor: anchor.div_euclid(1000) * 1000,
                },
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(trimmed)
            .map_err(|e| invalid("expression", e.to_string()))?;
        Ok(Self {
            kind: Kind::Cron {
                cron: Box::new(cron),
                zone,
            },
        })
    }

    fn in_zone(zone: Tz, at: UnixMillis) -> Option<DateTime<Tz>> {
        Utc.timestamp_millis_opt(at)
            .single()
            .map(|utc| utc.with_timezone(&zone))
    }

    /// The first fire time strictly after `at`; `None` when there is none (a pattern that
    /// never matches again, or a time beyond croner's range).
    pub fn next_after(&self, at: UnixMillis) -> Option<UnixMillis> {
        match &self.kind {
            Kind::Cron { cron, zone } => {
                let start = Self::in_zone(*zone, at)?;
                cron.find_next_occurrence(&start, false)
                    .ok()
                    .map(|next| next.timestamp_millis())
            }
            Kind::Every { interval, anchor } => {
                let steps = if at < *anchor {
                    1
                } else {
                    (at - anchor) / interval + 1
                };
                anchor.checked_add(steps.checked_mul(*interval)?)
            }
        }
    }

    /// The last fire time at or before `at`; `None` when there is none.
    pub fn latest_at_or_before(&self, at: UnixMillis) -> Option<UnixMillis> {
        match &self.kind {
            Kind::Cron { cron, zone } => {
                let start = Self::in_zone(*zone, at)?;
                cron.find_previous_occurrence(&start, true)
                    .ok()
                    .map(|previous| previous.timestamp_millis())
            }
            Kind::Every { interval, anchor } => {
                let steps = (at - anchor).div_euclid(*interval);
                (steps >= 1).then(|| anchor + steps * interval)
            }
        }
    }

    /// Up to `count` fire times after `at`, none after `end_at`.
    pub fn upcoming(
        &self,
        at: UnixMillis,
        count: usize,
        end_at: Option<UnixMillis>,
    ) -> Vec<UnixMillis> {
        let mut times = Vec::with_capacity(count);
        let mut cursor = at;
        while times.len() < count {
            match self.next_after(cursor) {
                Some(next) if end_at.is_none_or(|end| next <= end) => {
                    times.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        times
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix milliseconds of an RFC 3339 time.
    pub(crate) fn at(rfc3339: &str) -> UnixMillis {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("an RFC 3339 time")
            .timestamp_millis()
    }

    /// RFC 3339 in UTC, for readable failures.
    fn utc(millis: UnixMillis) -> String {
        Utc.timestamp_millis_opt(millis)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// The next `count` fire times of `expression` in `zone` after `from`, in UTC.
    fn check(expression: &str, zone: &str, from: &str, expected: &[&str]) {
        let cadence = Cadence::parse(expression, zone, at(from)).expect("parses");
        let got: Vec<String> = cadence
            .upcoming(at(from), expected.len(), None)
            .into_iter()
            .map(utc)
            .collect();
        assert_eq!(got, expected, "{expression} in {zone} after {from}");
    }

    fn check_error(expression: &str, zone: &str, field: &str, reason_part: &str) {
        match Cadence::parse(expression, zone, 0) {
            Err(ScheduleError::Invalid { field: got, reason }) => {
                assert_eq!(got, field, "{expression:?} {zone:?}: {reason}");
                assert!(
                    reason.contains(reason_part),
                    "{expression:?} {zone:?}: {reason:?} lacks {reason_part:?}"
                );
            }
            other => panic!("{expression:?} {zone:?}: {other:?}"),
        }
    }

    #[test]
    fn minute_boundaries() {
        // Five fields: second 0 of each matching minute, never the start itself.
        check(
            "* * * * *",
            "UTC",
            "2026-12-06T14:59:59.999Z",
            &["2026-12-06T15:00:00.000Z", "2026-12-06T15:01:00.000Z"],
        );
        check(
            "* * * * *",
            "UTC",
            "2026-12-06T15:00:00.000Z",
            &["2026-12-06T15:01:00.000Z"],
        );
        check(
            "*/15 * * * *",
            "UTC",
            "2026-12-31T23:50:00.500Z",
            &["2027-01-01T00:00:00.000Z", "2027-01-01T00:15:00.000Z"],
        );
        // Six fields: the first is seconds.
        check(
            "* * * * * *",
            "UTC",
            "2026-12-06T15:00:00.250Z",
            &["2026-12-06T15:00:01.000Z", "2026-12-06T15:00:02.000Z"],
        );
        check(
            "@hourly",
            "UTC",
            "2026-12-06T15:00:00.000Z",
            &["2026-12-06T16:00:00.000Z"],
        );
        check(
            "0 6 * * *",
            "Europe/Stockholm",
            "2026-12-06T05:00:00.000Z",
            &["2026-12-07T05:00:00.000Z"],
        );
        check(
            "@daily",
            "Europe/Stockholm",
            "2026-07-01T12:00:00Z",
            &["2026-07-01T22:00:00.000Z"],
        );
    }

    #[test]
    fn spring_forward_gap_in_stockholm() {
        // On 2026-03-29 Stockholm's clocks jump from 02:00 to 03:00 (01:00 UTC). A fixed time
        // inside the gap fires at the first valid time after it, 03:00 CEST, that day only.
        check(
            "30 2 * * *",
            "Europe/Stockholm",
            "2026-03-28T12:00:00Z",
            &["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
        );
        // A wildcard job loses the times the gap removes: 01:45 CET, then 03:00 CEST.
        check(
            "*/15 * * * *",
            "Europe/Stockholm",
            "2026-03-29T00:40:00Z",
            &[
                "2026-03-29T00:45:00.000Z",
                "2026-03-29T01:00:00.000Z",
                "2026-03-29T01:15:00.000Z",
            ],
        );
    }

    #[test]
    fn autumn_repeat_in_stockholm() {
        // On 2026-10-25 03:00 CEST becomes 02:00 CET (01:00 UTC): 02:00–03:00 happens twice. A
        // fixed time in it fires once, at its first pass (02:30 CEST = 00:30 UTC).
        check(
            "30 2 * * *",
            "Europe/Stockholm",
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"],
        );
        // A wildcard job fires in both passes.
        check(
            "30 * * * *",
            "Europe/Stockholm",
            "2026-10-24T23:45:00Z",
            &[
                "2026-10-25T00:30:00.000Z",
                "2026-10-25T01:30:00.000Z",
                "2026-10-25T02:30:00.000Z",
            ],
        );
    }

    #[test]
    fn intervals_count_from_the_anchor() {
        let cadence = Cadence::parse("every 15m", "UTC", 1_000_500).unwrap();
        // The anchor is rounded down to a whole second.
        assert_eq!(cadence.next_after(1_000_500), Some(1_900_000));
        assert_eq!(cadence.next_after(1_900_000), Some(2_800_000));
        assert_eq!(cadence.next_after(0), Some(1_900_000));
        assert_eq!(cadence.latest_at_or_before(1_899_999), None);
        assert_eq!(cadence.latest_at_or_before(2_799_999), Some(1_900_000));
        assert_eq!(
            Cadence::parse("every 1h30m", "UTC", 0)
                .unwrap()
                .next_after(0),
            Some(5_400_000)
        );
        assert_eq!(
            Cadence::parse("every 1s", "UTC", 0)
                .unwrap()
                .upcoming(0, 3, Some(2_000)),
            [1_000, 2_000]
        );
    }

    #[test]
    fn latest_is_inclusive_and_tz_aware() {
        let cadence = Cadence::parse("0 6 * * *", "Europe/Stockholm", 0).unwrap();
        assert_eq!(
            cadence.latest_at_or_before(at("2026-12-06T05:00:00Z")),
            Some(at("2026-12-06T05:00:00Z"))
        );
        assert_eq!(
            cadence.latest_at_or_before(at("2026-12-06T04:59:59.999Z")),
            Some(at("2026-12-05T05:00:00Z"))
        );
    }

    #[test]
    fn bad_input_names_the_field_and_says_why() {
        check_error("every 5w", "UTC", "expression", "unknown interval unit 'w'");
        check_error(
            "every 500ms",
            "UTC",
            "expression",
            "a number must come before",
        );
        check_error("every 0s", "UTC", "expression", "at least 1 s");
        check_error("every", "UTC", "expression", "");
        check_error("every 15", "UTC", "expression", "needs a unit");
        check_error("61 * * * *", "UTC", "expression", "");
        check_error("* * *", "UTC", "expression", "");
        check_error("@sometimes", "UTC", "expression", "");
        check_error("0 6 * * *", "Mars/Olympus", "timezone", "");
        check_error("0 6 * * *", "", "timezone", "");
        assert!(Cadence::parse("0 0 6 * * MON-FRI", "America/New_York", 0).is_ok());
        assert!(Cadence::parse("@weekly", "Asia/Tokyo", 0).is_ok());
    }
}
