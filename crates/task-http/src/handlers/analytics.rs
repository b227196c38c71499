//! `GET /api/analytics`: what tasks cost, how long they waited and ran, and why they failed,
//! over a time range in minute, hour or day buckets, grouped by task type, user, provider or
//! model. Answered from the rollups (`task_store::analytics`), never from the tasks table, so a
//! month costs a few thousand rows. The superuser sees everyone (or one user, `?user=`); anyone
//! else sees their own tasks. JSON by default, CSV with `Accept: text/csv` or `?format=csv`.

use std::fmt::Write as _;

use http::header::ACCEPT;
use http::{Response, StatusCode};
use serde::Serialize;
use task_core::UnixMillis;
use task_store::analytics::{
    report, GroupBy, Report, Resolution, RollupQuery, Summary, UserScope, RELATIVE_ERROR,
};

use super::{listing_owner, now_millis, Ctx};
use crate::body::Body;
use crate::input::Query;
use crate::response::{ok, text};
use crate::ApiError;

/// The most buckets one answer holds (a day of minutes, two months of hours); a longer range
/// is cut to its last ones.
pub const MAX_BUCKETS: i64 = 1_500;
/// The range when none is given: the last 24 hours.
const DEFAULT_RANGE: i64 = 24 * 60 * 60 * 1000;
/// The latest time a range may name (the end of year 9999).
const MAX_TIME: i64 = 253_402_300_799_999;

/// The answer's JSON.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    from: UnixMillis,
    to: UnixMillis,
    bucket: &'static str,
    group_by: &'static str,
    user: Option<&'a str>,
    /// Every task finished up to this time (and folded) is counted; `null` before the first fold.
    folded_through: Option<UnixMillis>,
    /// The bound on the percentiles' relative error.
    relative_error: f64,
    #[serde(flatten)]
    report: &'a Report,
}

/// `GET /api/analytics`.
pub async fn analytics(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let identity = ctx.require().await?;
    let store = ctx
        .state
        .analytics()
        .cloned()
        .ok_or_else(|| ApiError::not_found("analytics are not enabled on this server"))?;
    let query = Query::parse(ctx.parts.uri.query())?.once_each()?;
    let resolution = match query.get("bucket") {
        None => Resolution::Hour,
        Some(raw) => raw
            .parse::<Resolution>()
            .map_err(|e| ApiError::invalid_field("bucket", e))?,
    };
    let group_by = match query.get("groupBy") {
        None => GroupBy::TaskType,
        Some(raw) => raw
            .parse::<GroupBy>()
            .map_err(|e| ApiError::invalid_field("groupBy", e))?,
    };
    let csv = match query.get("format") {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(ApiError::invalid_field("format", "must be json or csv")),
        None => wants_csv(&ctx.parts.headers),
    };
    let (from, to) = range(&query, resolution)?;
    let user = listing_owner(&identity, query.get("user"), "analytics")?;
    let users = match (&user, group_by) {
        (Some(user), _) => UserScope::User(user.clone()),
        (None, GroupBy::User) => UserScope::EachUser,
        (None, _) => UserScope::AllUsers,
    };
    let rollups = store
        .rollups(&RollupQuery {
            resolution,
            from,
            to,
            users,
        })
        .await?;
    let prices = ctx.state.prices().prices();
    let report = report(&rollups, group_by, &prices).map_err(ApiError::internal)?;
    if csv {
        return Ok(text(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            to_csv(&report),
        ));
    }
    Ok(ok(&Answer {
        from,
        to,
        bucket: resolution.as_str(),
        group_by: group_by.as_str(),
        user: user.as_deref(),
        folded_through: rollups
            .watermark
            .map(|m| m.completed_at)
            .filter(|at| *at != i64::MIN),
        relative_error: RELATIVE_ERROR,
        report: &report,
    }))
}

/// `from` and `to` (Unix ms), widened to whole buckets and cut to the last [`MAX_BUCKETS`]; the
/// last 24 hours by default.
fn range(query: &Query, resolution: Resolution) -> Result<(UnixMillis, UnixMillis), ApiError> {
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        let value = query.parse_value::<i64>(key, "a time in Unix milliseconds")?;
        match value {
            Some(at) if !(0..=MAX_TIME).contains(&at) => Err(ApiError::invalid_field(
                key,
                format!("must be between 0 and {MAX_TIME}"),
            )),
            other => Ok(other),
        }
    };
    let to = time("to")?.unwrap_or_else(now_millis);
    let from = time("from")?.unwrap_or(to.saturating_sub(DEFAULT_RANGE).max(0));
    if from >= to {
        // No time lies between them: an empty answer, as for any range without tasks.
        let at = resolution.bucket_start(to);
        return Ok((at, at));
    }
    let width = resolution.millis();
    let from = resolution.bucket_start(from);
    let to = resolution.bucket_start(to - 1) + width;
    // A longer range keeps its last `MAX_BUCKETS` buckets; the answer's `from` says so.
    let from = from.max(to - MAX_BUCKETS * width);
    Ok((from, to))
}

/// Whether the client asked for CSV over JSON.
fn wants_csv(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().unwrap_or("").trim() == "text/csv")
}

/// The series as CSV (RFC 4180): a header line, then one line per bucket and group.
fn to_csv(report: &Report) -> String {
    let mut out = String::from(
        "bucketStart,group,completed,failed,cancelled,successRate,attempts,retries,timeouts,\
         waitP50Ms,waitP95Ms,waitP99Ms,runP50Ms,runP95Ms,runP99Ms,inputTokens,outputTokens,\
         costUsd\r\n",
    );
    for summary in &report.series {
        csv_line(&mut out, summary);
    }
    out
}

fn csv_line(out: &mut String, s: &Summary) {
    let number = |value: Option<f64>| value.map(|v| format!("{v:.3}")).unwrap_or_default();
    let _ = write!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.6}\r\n",
        s.bucket_start.unwrap_or_default(),
        csv_field(&s.group),
        s.completed,
        s.failed,
        s.cancelled,
        s.success_rate
            .map(|r| format!("{r:.4}"))
            .unwrap_or_default(),
        s.attempts,
        s.retries,
        s.timeouts,
        number(s.wait_ms.p50),
        number(s.wait_ms.p95),
        number(s.wait_ms.p99),
        number(s.run_ms.p50),
        number(s.run_ms.p95),
        number(s.run_ms.p99),
        s.input_tokens,
        s.output_tokens,
        s.cost_usd,
    );
}

/// A text field, quoted when it holds a comma, quote or line break. A leading `=`, `+`, `-` or
/// `@` is prefixed with `'` so a spreadsheet shows the text instead of running it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_range(query: &str, resolution: Resolution, expected: Result<(i64, i64), &str>) {
        let query = Query::parse(Some(query)).unwrap();
        match (range(&query, resolution), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(error), Err(field)) => assert!(error.message().contains(field), "{error:?}"),
            (got, want) => panic!("{got:?} vs {want:?}"),
        }
    }

    #[test]
    fn ranges_are_whole_buckets_and_bounded() {
        let hour = 3_600_000;
        check_range("from=1&to=7200000", Resolution::Hour, Ok((0, 2 * hour)));
        check_range(
            "from=3600000&to=3600001",
            Resolution::Hour,
            Ok((hour, 2 * hour)),
        );
        check_range("from=5&to=5", Resolution::Hour, Ok((0, 0)));
        check_range("from=7200001&to=5", Resolution::Hour, Ok((0, 0)));
        check_range("from=-1&to=5", Resolution::Hour, Err("from"));
        check_range("from=x", Resolution::Hour, Err("from"));
        check_range(
            "from=0&to=2592000000",
            Resolution::Minute,
            Ok((2_592_000_000 - 1_500 * 60_000, 2_592_000_000)),
        );
        check_range(
            "from=0&to=2592000000",
            Resolution::Hour,
            Ok((0, 720 * hour)),
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("gen"), "gen");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn accept_headers_choose_csv() {
        let mut headers = http::HeaderMap::new();
        assert!(!wants_csv(&headers));
        headers.insert(ACCEPT, "application/json, text/csv;q=0.5".parse().unwrap());
        assert!(wants_csv(&headers));
    }
}
