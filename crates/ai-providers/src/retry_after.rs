//! How long a rate-limited provider asked us to wait, from the standard header or the
//! provider-specific hints.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Reads the wait from a 429 answer, most precise source first: `retry-after-ms` (sent by OpenAI),
/// `Retry-After` (seconds or an HTTP date), OpenAI's `x-ratelimit-reset-*` durations, Anthropic's
/// `anthropic-ratelimit-*-reset` timestamps, and Gemini's `google.rpc.RetryInfo` body detail.
pub(crate) fn retry_after(
    headers: &HeaderMap,
    body: &Value,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .or_else(|| header("retry-after").and_then(|v| parse_retry_after(v, now)))
        .or_else(|| {
            latest(
                ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
                    .into_iter()
                    .filter_map(|name| header(name).and_then(parse_go_duration)),
            )
        })
        .or_else(|| {
            latest(
                [
                    "anthropic-ratelimit-requests-reset",
                    "anthropic-ratelimit-tokens-reset",
                    "anthropic-ratelimit-input-tokens-reset",
                    "anthropic-ratelimit-output-tokens-reset",
                ]
                .into_iter()
                .filter_map(|name| header(name).and_then(|v| until_rfc3339(v, now))),
            )
        })
        .or_else(|| google_retry_delay(body))
}

/// `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past
/// means "now".
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is valid RFC 2822.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// OpenAI's reset headers use Go duration syntax: `1s`, `6m0s`, `20ms`, `1h2m3.5s`.
pub(crate) fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    let mut rest = value;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

fn until_rfc3339(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let at = DateTime::parse_from_rfc3339(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Gemini puts the wait in `error.details[]` as `{"@type": "...google.rpc.RetryInfo",
/// "retryDelay": "30s"}` (a protobuf Duration in JSON form).
fn google_retry_delay(body: &Value) -> Option<Duration> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .filter(|detail| {
            detail
                .get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|detail| {
            let delay = detail.get("retryDelay")?.as_str()?.strip_suffix('s')?;
            Duration::try_from_secs_f64(delay.parse().ok()?).ok()
        })
}

/// When several limits are exhausted, only the last reset lets the call through.
fn latest(waits: impl Iterator<Item = Duration>) -> Option<Duration> {
    waits.max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).single().unwrap()
    }

    fn check(headers: &[(&'static str, &str)], body: Value, expected: Option<Duration>) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        assert_eq!(
            retry_after(&map, &body, now()),
            expected,
            "headers {headers:?} body {body}"
        );
    }

    #[test]
    fn reads_each_source_in_order_of_precision() {
        let secs = Duration::from_secs;
        check(&[("retry-after", "7")], Value::Null, Some(secs(7)));
        check(
            &[("retry-after", "1.5")],
            Value::Null,
            Some(Duration::from_millis(1500)),
        );
        check(
            &[("retry-after", "Thu, 01 Jan 2026 12:00:30 GMT")],
            Value::Null,
            Some(secs(30)),
        );
        check(
            &[("retry-after", "Thu, 01 Jan 2026 11:00:00 GMT")],
            Value::Null,
            Some(secs(0)),
        );
        check(
            &[("retry-after-ms", "250"), ("retry-after", "7")],
            Value::Null,
            Some(Duration::from_millis(250)),
        );
        check(
            &[
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            Value::Null,
            Some(secs(360)),
        );
        check(
            &[("anthropic-ratelimit-requests-reset", "2026-01-01T12:00:05Z")],
            Value::Null,
            Some(secs(5)),
        );
        check(
            &[],
            json!({"error": {"details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}
            ]}}),
            Some(Duration::from_millis(12_500)),
        );
        check(&[("retry-after", "soon")], Value::Null, None);
        check(&[("retry-after", "-3")], Value::Null, None);
        check(&[], json!({"error": {"message": "slow down"}}), None);
    }

    #[test]
    fn go_durations() {
        for (text, expected) in [
            ("1s", Some(Duration::from_secs(1))),
            ("20ms", Some(Duration::from_millis(20))),
            ("1h2m3.5s", Some(Duration::from_millis(3_723_500))),
            ("", None),
            ("5", None),
            ("3d", None),
        ] {
            assert_eq!(parse_go_duration(text), expected, "{text:?}");
        }
    }
}
