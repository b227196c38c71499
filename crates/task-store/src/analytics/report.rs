//! Turning rollup rows into answers: rows summed per bucket and group, success rates,
//! percentiles from the summed histograms, and costs from a [`Prices`] table (applied when
//! asked, so a corrected price also corrects the past).

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use task_core::UnixMillis;

use super::histogram::DenseHistogram;
use super::{RollupCounts, RollupKey, Rollups};

/// What a report's rows are split by (besides the bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One group: everything.
    Nothing,
    /// Per task type.
    TaskType,
    /// Per user.
    User,
    /// Per provider.
    Provider,
    /// Per provider and model (`provider/model`).
    Model,
}

impl GroupBy {
    /// The query-string name.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupBy::Nothing => "none",
            GroupBy::TaskType => "type",
            GroupBy::User => "user",
            GroupBy::Provider => "provider",
            GroupBy::Model => "model",
        }
    }

    fn group_of(self, key: &RollupKey) -> String {
        match self {
            GroupBy::Nothing => "all".to_owned(),
            GroupBy::TaskType => key.task_type.clone(),
            GroupBy::User => key.user_id.clone(),
            GroupBy::Provider => key.provider.clone(),
            GroupBy::Model => model_name(&key.provider, &key.model),
        }
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(GroupBy::Nothing),
            "type" => Ok(GroupBy::TaskType),
            "user" => Ok(GroupBy::User),
            "provider" => Ok(GroupBy::Provider),
            "model" => Ok(GroupBy::Model),
            other => Err(format!(
                "unknown groupBy {other:?}: use none, type, user, provider or model"
            )),
        }
    }
}

fn model_name(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

/// One model's price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Price {
    /// Per million prompt tokens.
    pub input_per_million: f64,
    /// Per million completion tokens.
    pub output_per_million: f64,
}

/// Prices per `provider/model`; `provider/*` prices a provider's other models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prices(pub BTreeMap<String, Price>);

impl Prices {
    /// The price of `model` at `provider`, if the table has one.
    pub fn of(&self, provider: &str, model: &str) -> Option<Price> {
        self.0
            .get(&model_name(provider, model))
            .or_else(|| self.0.get(&model_name(provider, "*")))
            .copied()
    }

    /// Checks that every price is a finite, non-negative number.
    ///
    /// # Errors
    /// A message naming the first bad entry.
    pub fn validate(&self) -> Result<(), String> {
        for (name, price) in &self.0 {
            if !name.contains('/') {
                return Err(format!("price {name:?} must be named provider/model"));
            }
            for value in [price.input_per_million, price.output_per_million] {
                if !value.is_finite() || value < 0.0 {
                    return Err(format!("price {name:?} must be a number ≥ 0"));
                }
            }
        }
        Ok(())
    }
}

/// Percentiles of a duration, in milliseconds (`None` when nothing was measured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(histogram: &DenseHistogram) -> Percentiles {
        Percentiles {
            p50: histogram.quantile(0.50),
            p95: histogram.quantile(0.95),
            p99: histogram.quantile(0.99),
        }
    }
}

/// One group's numbers, in one bucket or over the whole range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// The bucket start (absent in totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket_start: Option<UnixMillis>,
    /// The group (`all` when not grouped).
    pub group: String,
    /// Tasks that completed.
    pub completed: i64,
    /// Tasks that failed.
    pub failed: i64,
    /// Tasks that were cancelled.
    pub cancelled: i64,
    /// Completed out of completed + failed (cancellations are the user's choice, not a
    /// failure); `None` when neither happened.
    pub success_rate: Option<f64>,
    /// Attempts taken.
    pub attempts: i64,
    /// Attempts beyond the first.
    pub retries: i64,
    /// Failures on the time limit.
    pub timeouts: i64,
    /// Queue wait (created → started) percentiles, ms.
    pub wait_ms: Percentiles,
    /// Run time (started → finished) percentiles, ms.
    pub run_ms: Percentiles,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Estimated cost in US dollars of the tokens whose model has a price.
    pub cost_usd: f64,
}

/// A failure reason and how often it ended a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureCount {
    /// The reason.
    pub reason: String,
    /// Failed tasks.
    pub count: i64,
}

/// A rollup query's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Per bucket and group, by bucket then group.
    pub series: Vec<Summary>,
    /// Per group over the whole range, by group.
    pub totals: Vec<Summary>,
    /// Failure reasons, most frequent first.
    pub failures: Vec<FailureCount>,
    /// `provider/model`s that used tokens but have no price (their cost counts as 0).
    pub unpriced: Vec<String>,
}

#[derive(Default)]
struct Accumulator {
    counts: RollupCounts,
    wait: DenseHistogram,
    run: DenseHistogram,
    cost: f64,
}

impl Accumulator {
    fn summary(&self, bucket_start: Option<UnixMillis>, group: String) -> Summary {
        let c = &self.counts;
        let decided = c.completed + c.failed;
        Summary {
            bucket_start,
            group,
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            success_rate: (decided > 0).then(|| c.completed as f64 / decided as f64),
            attempts: c.attempts,
            retries: c.retries,
            timeouts: c.timeouts,
            wait_ms: Percentiles::of(&self.wait),
            run_ms: Percentiles::of(&self.run),
            input_tokens: c.input_tokens,
            output_tokens: c.output_tokens,
            cost_usd: self.cost,
        }
    }
}

/// Sums `rollups` per bucket and `group_by` group, and over the range.
///
/// # Errors
/// A message when a stored histogram is damaged.
pub fn report(rollups: &Rollups, group_by: GroupBy, prices: &Prices) -> Result<Report, String> {
    let mut series: BTreeMap<(UnixMillis, String), Accumulator> = BTreeMap::new();
    let mut totals: BTreeMap<String, Accumulator> = BTreeMap::new();
    let mut unpriced = std::collections::BTreeSet::new();
    for row in &rollups.rows {
        let group = group_by.group_of(&row.key);
        let tokens = row.counts.input_tokens + row.counts.output_tokens;
        let cost = match prices.of(&row.key.provider, &row.key.model) {
            Some(price) => {
                (row.counts.input_tokens as f64 * price.input_per_million
                    + row.counts.output_tokens as f64 * price.output_per_million)
                    / 1_000_000.0
            }
            None => {
                if tokens > 0 {
                    unpriced.insert(model_name(&row.key.provider, &row.key.model));
                }
                0.0
            }
        };
        for accumulator in [
            series
                .entry((row.key.bucket_start, group.clone()))
                .or_default(),
            totals.entry(group).or_default(),
        ] {
            accumulator.counts.add(&row.counts);
            accumulator.wait.add_encoded(&row.wait)?;
            accumulator.run.add_encoded(&row.run)?;
            accumulator.cost += cost;
        }
    }
    let mut reasons: BTreeMap<&str, i64> = BTreeMap::new();
    for failure in &rollups.failures {
        *reasons.entry(failure.reason.as_str()).or_default() += failure.count;
    }
    let mut failures: Vec<FailureCount> = reasons
        .into_iter()
        .map(|(reason, count)| FailureCount {
            reason: reason.to_owned(),
            count,
        })
        .collect();
    failures.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    Ok(Report {
        series: series
            .into_iter()
            .map(|((bucket, group), acc)| acc.summary(Some(bucket), group))
            .collect(),
        totals: totals
            .into_iter()
            .map(|(group, acc)| acc.summary(None, group))
            .collect(),
        failures,
        unpriced: unpriced.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use task_core::{TaskId, TaskStatus};

    use super::*;
    use crate::analytics::{Deltas, FoldedTask, Resolution, RollupRow, ALL_USERS, RELATIVE_ERROR};

    /// Generated tasks spread over three types and three days, with waits and run times from
    /// zero to hours.
    fn generated(count: usize) -> Vec<FoldedTask> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        (0..count)
            .map(|n| {
                let created: i64 = 1_700_000_000_000 + next(3 * 86_400_000) as i64;
                let wait_scale = 10u64.pow(1 + next(6) as u32);
                let wait = next(wait_scale) as i64;
                let run_scale = 10u64.pow(1 + next(7) as u32);
                let run = next(run_scale) as i64;
                let status = match next(10) {
                    0 => TaskStatus::Cancelled,
                    1 | 2 => TaskStatus::Failed,
                    _ => TaskStatus::Completed,
                };
                FoldedTask {
                    id: TaskId::generate(created).expect("id"),
                    task_type: ["gen", "check", "emoji"][n % 3].to_owned(),
                    user_id: format!("user{}", next(5)),
                    status,
                    provider: "openai".to_owned(),
                    model: "m".to_owned(),
                    created_at: created,
                    started_at: Some(created + wait),
                    completed_at: created + wait + run,
                    attempt: 1 + next(3) as i64,
                    error: (status == TaskStatus::Failed).then(|| "boom".to_owned()),
                    input_tokens: next(1000) as i64,
                    output_tokens: next(1000) as i64,
                }
            })
            .collect()
    }

    fn nearest_rank(values: &mut [i64], quantile: f64) -> f64 {
        values.sort_unstable();
        let rank = ((quantile * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1] as f64
    }

    fn check(got: Option<f64>, values: &mut [i64], quantile: f64) {
        let truth = nearest_rank(values, quantile);
        let got = got.expect("measured");
        assert!(
            (got - truth).abs() <= RELATIVE_ERROR * truth + 1e-9,
            "p{quantile}: {got} vs {truth}"
        );
    }

    #[test]
    fn reports_match_brute_force_on_generated_tasks() {
        let tasks = generated(20_000);
        let deltas = Deltas::of(&tasks);
        let rollups = Rollups {
            rows: deltas
                .rows
                .iter()
                .filter(|(key, _)| key.resolution == Resolution::Hour && key.user_id == ALL_USERS)
                .map(|(key, values)| RollupRow {
                    key: key.clone(),
                    counts: values.counts,
                    wait: values.wait.encode(),
                    run: values.run.encode(),
                })
                .collect(),
            ..Rollups::default()
        };
        let prices = Prices(BTreeMap::from([(
            "openai/*".to_owned(),
            Price {
                input_per_million: 3.0,
                output_per_million: 15.0,
            },
        )]));
        let answer = report(&rollups, GroupBy::TaskType, &prices).expect("report");
        assert_eq!(answer.totals.len(), 3);
        for total in &answer.totals {
            let group: Vec<&FoldedTask> = tasks
                .iter()
                .filter(|t| t.task_type == total.group)
                .collect();
            let count = |status| group.iter().filter(|t| t.status == status).count() as i64;
            assert_eq!(total.completed, count(TaskStatus::Completed));
            assert_eq!(total.failed, count(TaskStatus::Failed));
            assert_eq!(total.cancelled, count(TaskStatus::Cancelled));
            assert_eq!(total.attempts, group.iter().map(|t| t.attempt).sum::<i64>());
            let input: i64 = group.iter().map(|t| t.input_tokens).sum();
            let output: i64 = group.iter().map(|t| t.output_tokens).sum();
            assert_eq!((total.input_tokens, total.output_tokens), (input, output));
            let cost = (input as f64 * 3.0 + output as f64 * 15.0) / 1e6;
            assert!((total.cost_usd - cost).abs() < 1e-9);
            let mut waits: Vec<i64> = group.iter().filter_map(|t| t.queue_wait()).collect();
            let mut runs: Vec<i64> = group.iter().filter_map(|t| t.run_time()).collect();
            for (quantile, wait, run) in [
                (0.50, total.wait_ms.p50, total.run_ms.p50),
                (0.95, total.wait_ms.p95, total.run_ms.p95),
                (0.99, total.wait_ms.p99, total.run_ms.p99),
            ] {
                check(wait, &mut waits, quantile);
                check(run, &mut runs, quantile);
            }
        }
        // Per hour, too: every bucket's percentiles against its own tasks.
        for summary in answer.series.iter().take(200) {
            let bucket = summary.bucket_start.expect("bucket");
            let mut runs: Vec<i64> = tasks
                .iter()
                .filter(|t| {
                    t.task_type == summary.group
                        && Resolution::Hour.bucket_start(t.completed_at) == bucket
                })
                .filter_map(FoldedTask::run_time)
                .collect();
            check(summary.run_ms.p95, &mut runs, 0.95);
        }
        assert!(answer.unpriced.is_empty());
    }
}
