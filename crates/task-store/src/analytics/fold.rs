//! Folding finished tasks into rollup rows: what one task contributes ([`FoldedTask`]), the rows'
//! keys ([`RollupKey`], one per resolution and per user scope), and the pure sum every backend
//! runs ([`Deltas::of`]), so the three backends cannot count differently.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value;
use task_core::{Task, TaskId, TaskStatus, UnixMillis};

use super::histogram::LogHistogram;

/// The `user_id` of rollup rows that sum every user: emails never look like this, and
/// superuser queries not split by user read only these rows.
pub const ALL_USERS: &str = "*";

/// How long a rollup bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One UTC day.
    Day,
}

impl Resolution {
    /// Every resolution, finest first.
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The bucket length in milliseconds.
    pub const fn millis(self) -> i64 {
        match self {
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
            Resolution::Day => 86_400_000,
        }
    }

    /// The stored and query-string name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::Minute => "minute",
            Resolution::Hour => "hour",
            Resolution::Day => "day",
        }
    }

    /// The start of the bucket holding `at`.
    pub fn bucket_start(self, at: UnixMillis) -> UnixMillis {
        at.div_euclid(self.millis()) * self.millis()
    }
}

impl FromStr for Resolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "minute" => Ok(Resolution::Minute),
            "hour" => Ok(Resolution::Hour),
            "day" => Ok(Resolution::Day),
            other => Err(format!("unknown bucket {other:?}: use minute, hour or day")),
        }
    }
}

/// What analytics keeps of one finished task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedTask {
    /// The task.
    pub id: TaskId,
    /// Its type.
    pub task_type: String,
    /// Its owner.
    pub user_id: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: TaskStatus,
    /// The AI provider that ran it (the result's or the parameters' `provider`), `""` for none.
    pub provider: String,
    /// The model (the result's `model`), `""` when unknown.
    pub model: String,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When its last attempt started; `None` if it never ran.
    pub started_at: Option<UnixMillis>,
    /// When it finished: the fold order, with `id`.
    pub completed_at: UnixMillis,
    /// Attempts it took.
    pub attempt: i64,
    /// Its final error, for failed and cancelled tasks.
    pub error: Option<String>,
    /// Prompt tokens the result's `usage` reports (`inputTokens`).
    pub input_tokens: i64,
    /// Completion tokens the result's `usage` reports (`outputTokens`).
    pub output_tokens: i64,
}

impl FoldedTask {
    /// What analytics keeps of `task`; `None` unless it is finished.
    pub fn of(task: &Task) -> Option<FoldedTask> {
        let completed_at = task.completed_at?;
        if !task.status.is_terminal() {
            return None;
        }
        let result = task.result.as_ref();
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let provider = text(result.and_then(|r| r.get("provider")))
            .or_else(|| text(task.params.get("provider")))
            .unwrap_or_default();
        let model = text(result.and_then(|r| r.get("model"))).unwrap_or_default();
        let usage = result.and_then(|r| r.get("usage"));
        let tokens = |field: &str| {
            usage
                .and_then(|u| u.get(field))
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .max(0)
        };
        Some(FoldedTask {
            id: task.id.clone(),
            task_type: task.task_type.clone(),
            user_id: task.user_id.clone(),
            status: task.status,
            provider,
            model,
            created_at: task.created_at,
            started_at: task.started_at,
            completed_at,
            attempt: task.attempt,
            error: task.error.clone(),
            input_tokens: tokens("inputTokens"),
            output_tokens: tokens("outputTokens"),
        })
    }

    /// Created → last start, when it ran.
    pub fn queue_wait(&self) -> Option<i64> {
        self.started_at.map(|s| (s - self.created_at).max(0))
    }

    /// Last start → finished, when it ran.
    pub fn run_time(&self) -> Option<i64> {
        self.started_at.map(|s| (self.completed_at - s).max(0))
    }

    /// Whether it failed on its time limit (the runtime's "timed out after …").
    pub fn timed_out(&self) -> bool {
        self.status == TaskStatus::Failed
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("timed out"))
    }

    /// Its failure reason for ranking, for failed tasks: the error with digits replaced by `#`
    /// (so "after 30s" and "after 45s" rank together), cut to 120 characters.
    pub fn failure_reason(&self) -> Option<String> {
        if self.status != TaskStatus::Failed {
            return None;
        }
        Some(failure_reason(
            self.error.as_deref().unwrap_or("unknown error"),
        ))
    }
}

/// `error` as a rankable reason; see [`FoldedTask::failure_reason`].
pub fn failure_reason(error: &str) -> String {
    let mut reason = String::new();
    let mut last_was_digit = false;
    for c in error.trim().chars() {
        if c.is_ascii_digit() {
            if !last_was_digit {
                reason.push('#');
            }
            last_was_digit = true;
        } else {
            reason.push(c);
            last_was_digit = false;
        }
        if reason.chars().count() >= 120 {
            break;
        }
    }
    reason
}

/// A rollup row's key: the bucket and the group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    /// The bucket length.
    pub resolution: Resolution,
    /// The bucket start (a multiple of the length, UTC).
    pub bucket_start: UnixMillis,
    /// The task type.
    pub task_type: String,
    /// The owner, or [`ALL_USERS`].
    pub user_id: String,
    /// The provider, `""` for none.
    pub provider: String,
    /// The model, `""` when unknown.
    pub model: String,
}

/// The sums of one rollup row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupCounts {
    /// Tasks that completed.
    pub completed: i64,
    /// Tasks that failed for good.
    pub failed: i64,
    /// Tasks that were cancelled.
    pub cancelled: i64,
    /// Attempts the tasks took, together.
    pub attempts: i64,
    /// Attempts beyond each task's first.
    pub retries: i64,
    /// Failed tasks whose last attempt hit its time limit.
    pub timeouts: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
}

impl RollupCounts {
    /// Adds `other`.
    pub fn add(&mut self, other: &RollupCounts) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.attempts += other.attempts;
        self.retries += other.retries;
        self.timeouts += other.timeouts;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }

    /// Finished tasks.
    pub fn finished(&self) -> i64 {
        self.completed + self.failed + self.cancelled
    }
}

/// One rollup row's values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupValues {
    /// The sums.
    pub counts: RollupCounts,
    /// Queue waits (created → started), in ms.
    pub wait: LogHistogram,
    /// Run times (started → finished), in ms.
    pub run: LogHistogram,
}

impl RollupValues {
    /// Adds `other`.
    pub fn merge(&mut self, other: &RollupValues) {
        self.counts.add(&other.counts);
        self.wait.merge(&other.wait);
        self.run.merge(&other.run);
    }
}

/// What a batch of finished tasks adds to the rollups: rows and failure-reason counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deltas {
    /// Added values per row.
    pub rows: BTreeMap<RollupKey, RollupValues>,
    /// Added failure counts per row and reason.
    pub failures: BTreeMap<(RollupKey, String), i64>,
}

impl Deltas {
    /// Sums `tasks` into every resolution, once per user and once for [`ALL_USERS`].
    pub fn of<'a>(tasks: impl IntoIterator<Item = &'a FoldedTask>) -> Deltas {
        let mut deltas = Deltas::default();
        for task in tasks {
            let mut one = RollupValues::default();
            let counts = &mut one.counts;
            match task.status {
                TaskStatus::Completed => counts.completed = 1,
                TaskStatus::Failed => counts.failed = 1,
                _ => counts.cancelled = 1,
            }
            counts.attempts = task.attempt.max(0);
            counts.retries = (task.attempt - 1).max(0);
            counts.timeouts = i64::from(task.timed_out());
            counts.input_tokens = task.input_tokens;
            counts.output_tokens = task.output_tokens;
            if let Some(wait) = task.queue_wait() {
                one.wait.record(wait);
            }
            if let Some(run) = task.run_time() {
                one.run.record(run);
            }
            let reason = task.failure_reason();
            for resolution in Resolution::ALL {
                for user in [task.user_id.as_str(), ALL_USERS] {
                    let key = RollupKey {
                        resolution,
                        bucket_start: resolution.bucket_start(task.completed_at),
                        task_type: task.task_type.clone(),
                        user_id: user.to_owned(),
                        provider: task.provider.clone(),
                        model: task.model.clone(),
                    };
                    if let Some(reason) = &reason {
                        *deltas
                            .failures
                            .entry((key.clone(), reason.clone()))
                            .or_default() += 1;
                    }
                    deltas.rows.entry(key).or_default().merge(&one);
                }
            }
        }
        deltas
    }
}

/// How far folding has come: every finished task ordered at or before `(completed_at,
/// task_id)` is in the rollups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The last folded task's finish time.
    pub completed_at: UnixMillis,
    /// The last folded task's id (ties on `completed_at` are ordered by id).
    pub task_id: String,
    /// Tasks folded since analytics began.
    pub folded: i64,
}

impl Watermark {
    /// The starting point: nothing folded.
    pub fn start() -> Watermark {
        Watermark {
            completed_at: i64::MIN,
            task_id: String::new(),
            folded: 0,
        }
    }

    /// Whether `task` comes after this mark in fold order.
    pub fn is_before(&self, completed_at: UnixMillis, task_id: &str) -> bool {
        (self.completed_at, self.task_id.as_str()) < (completed_at, task_id)
    }

    /// The mark after folding `tasks` (in fold order).
    pub fn advanced(&self, tasks: &[FoldedTask]) -> Watermark {
        match tasks.last() {
            Some(last) => Watermark {
                completed_at: last.completed_at,
                task_id: last.id.to_string(),
                folded: self.folded + tasks.len() as i64,
            },
            None => self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_hide_numbers() {
        assert_eq!(failure_reason("timed out after 30s"), "timed out after #s");
        assert_eq!(failure_reason("  HTTP 429 in 1.5 s "), "HTTP # in #.# s");
        assert_eq!(failure_reason(&"x".repeat(500)).len(), 120);
    }

    #[test]
    fn buckets_start_on_utc_boundaries() {
        assert_eq!(
            Resolution::Hour.bucket_start(3_600_000 * 5 + 17),
            3_600_000 * 5
        );
        assert_eq!(Resolution::Day.bucket_start(-1), -86_400_000);
        assert_eq!("hour".parse::<Resolution>(), Ok(Resolution::Hour));
        assert!("week".parse::<Resolution>().is_err());
    }
}
