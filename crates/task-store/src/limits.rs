//! Per-user limits (issue #19): a user's own creation rate, burst, running and queued caps,
//! stored beside the user. A limit left `None` falls back to the server's default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use task_core::CoreError;

/// A sustained rate: `count` events per `period_ms` milliseconds. Written `30/min`, `5/s`,
/// `1000/h` (also `sec`, `second`, `minute`, `hour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Events allowed per period; at least 1.
    pub count: u32,
    /// The period in milliseconds: 1,000, 60,000 or 3,600,000.
    pub period_ms: u32,
}

impl Rate {
    /// Events per second.
    pub fn per_second(self) -> f64 {
        f64::from(self.count) * 1000.0 / f64::from(self.period_ms)
    }

    /// Checks a rate read back from storage or built by hand.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] for a zero count or period.
    pub fn validate(self) -> Result<Self, CoreError> {
        if self.count == 0 || self.period_ms == 0 {
            return Err(invalid("rate", "must be at least 1 per period"));
        }
        Ok(self)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period_ms {
            1_000 => "s".to_owned(),
            60_000 => "min".to_owned(),
            3_600_000 => "h".to_owned(),
            other => format!("{other}ms"),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl FromStr for Rate {
    type Err = CoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const SHAPE: &str =
            "must look like 30/min, 5/s or 1000/h: a whole number from 1, a slash, and s, min or h";
        let (count, unit) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| invalid("rate", SHAPE))?;
        let count: i64 = count.trim().parse().map_err(|_| invalid("rate", SHAPE))?;
        if count < 1 {
            return Err(invalid(
                "rate",
                "must be at least 1 per period (zero or negative rates are not allowed)",
            ));
        }
        let count = u32::try_from(count).map_err(|_| invalid("rate", "is too large"))?;
        let period_ms = match unit.trim() {
            "s" | "sec" | "second" => 1_000,
            "m" | "min" | "minute" => 60_000,
            "h" | "hour" => 3_600_000,
            _ => return Err(invalid("rate", SHAPE)),
        };
        Ok(Self { count, period_ms })
    }
}

/// A user's own limits; `None` means "the server's default".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLimits {
    /// Sustained task creations.
    pub rate: Option<Rate>,
    /// Task creations allowed at once above the sustained rate (the bucket's size).
    pub burst: Option<u32>,
    /// Tasks running at once.
    pub max_running: Option<u32>,
    /// Unfinished (pending or processing) tasks.
    pub max_queued: Option<u64>,
}

impl UserLimits {
    /// Checks every set limit is at least 1.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] naming the first limit that is zero.
    pub fn validate(&self) -> Result<(), CoreError> {
        if let Some(rate) = self.rate {
            rate.validate()?;
        }
        if self.burst == Some(0) {
            return Err(invalid("burst", "must be at least 1"));
        }
        if self.max_running == Some(0) {
            return Err(invalid("max_running", "must be at least 1"));
        }
        if self.max_queued == Some(0) {
            return Err(invalid("max_queued", "must be at least 1"));
        }
        Ok(())
    }

    /// These limits with every limit `other` sets replaced by `other`'s.
    pub fn merged(self, other: UserLimits) -> Self {
        Self {
            rate: other.rate.or(self.rate),
            burst: other.burst.or(self.burst),
            max_running: other.max_running.or(self.max_running),
            max_queued: other.max_queued.or(self.max_queued),
        }
    }
}

/// The five stored columns (`rate_count`, `rate_period_ms`, `burst`, `max_running`,
/// `max_queued`), as every backend stores them.
pub type LimitColumns = [Option<i64>; 5];

impl UserLimits {
    /// The stored columns.
    pub fn to_columns(&self) -> LimitColumns {
        [
            self.rate.map(|r| i64::from(r.count)),
            self.rate.map(|r| i64::from(r.period_ms)),
            self.burst.map(i64::from),
            self.max_running.map(i64::from),
            self.max_queued.and_then(|q| i64::try_from(q).ok()),
        ]
    }

    /// Limits read back from the stored columns.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] when a stored value is out of range.
    pub fn from_columns(columns: LimitColumns) -> Result<Self, CoreError> {
        let [count, period, burst, running, queued] = columns;
        let narrow = |value: Option<i64>, field| {
            value
                .map(|v| u32::try_from(v).map_err(|_| invalid(field, "is out of range")))
                .transpose()
        };
        let rate = match (narrow(count, "rate")?, narrow(period, "rate")?) {
            (Some(count), Some(period_ms)) => Some(Rate { count, period_ms }.validate()?),
            _ => None,
        };
        let limits = Self {
            rate,
            burst: narrow(burst, "burst")?,
            max_running: narrow(running, "max_running")?,
            max_queued: queued
                .map(|v| u64::try_from(v).map_err(|_| invalid("max_queued", "is out of range")))
                .transpose()?,
        };
        limits.validate()?;
        Ok(limits)
    }
}

fn invalid(field: &'static str, reason: &str) -> CoreError {
    CoreError::InvalidField {
        field,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<(u32, u32)>) {
        let parsed = text.parse::<Rate>().ok().map(|r| (r.count, r.period_ms));
        assert_eq!(parsed, expected, "{text:?}");
    }

    #[test]
    fn rates_parse_and_print() {
        check("30/min", Some((30, 60_000)));
        check(" 5 / s ", Some((5, 1_000)));
        check("1000/h", Some((1000, 3_600_000)));
        check("0/min", None);
        check("-3/min", None);
        check("30", None);
        check("30/day", None);
        check("x/min", None);
        check("99999999999/s", None);
        assert_eq!("30/minute".parse::<Rate>().unwrap().to_string(), "30/min");
        assert!(("0/min".parse::<Rate>().unwrap_err().to_string()).contains("zero"));
    }

    #[test]
    fn zero_limits_are_refused_and_merging_keeps_unset_ones() {
        assert!(UserLimits {
            burst: Some(0),
            ..UserLimits::default()
        }
        .validate()
        .is_err());
        assert!(UserLimits {
            max_queued: Some(0),
            ..UserLimits::default()
        }
        .validate()
        .is_err());
        let old = UserLimits {
            burst: Some(3),
            max_queued: Some(7),
            ..UserLimits::default()
        };
        let new = old.merged(UserLimits {
            burst: Some(9),
            ..UserLimits::default()
        });
        assert_eq!((new.burst, new.max_queued), (Some(9), Some(7)));
    }
}
