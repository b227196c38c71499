//! The input for creating a task, with the validation every backend applies before writing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CoreError, Dependency, Priority, UnixMillis, DEFAULT_TOTAL, MAX_DEPENDS_ON};

/// Attempts a task gets unless its creator or its task type says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i64 = 3;
/// Longest accepted `label`, in characters.
pub const MAX_LABEL_LEN: usize = 200;
/// Longest accepted `description`, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2000;
const MAX_USER_ID_LEN: usize = 320;
const MAX_TASK_TYPE_LEN: usize = 64;
const MAX_ATTEMPTS_LIMIT: i64 = 100;

/// A task to create. Build it with [`NewTask::new`] and the `with_*` methods; stores call
/// [`NewTask::validate`] before writing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    /// The owner.
    pub user_id: String,
    /// Which handler runs it: lowercase letters, digits, `-` and `_`.
    pub task_type: String,
    /// Short human title.
    pub label: Option<String>,
    /// Initial description.
    pub description: Option<String>,
    /// The handler's input.
    pub params: Value,
    /// Defaults to 100.
    pub total: i64,
    /// Defaults to [`DEFAULT_MAX_ATTEMPTS`].
    pub max_attempts: i64,
    /// Not before this time; `None` means as soon as possible.
    pub run_at: Option<UnixMillis>,
    /// Existing tasks of the same user it waits for; see `docs/state-machine.md`.
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    /// Which due tasks a claim takes first; defaults to [`Priority::Normal`].
    #[serde(default)]
    pub priority: Priority,
}

impl NewTask {
    /// A task of `task_type` for `user_id` with default total, attempts and no params.
    pub fn new(user_id: impl Into<String>, task_type: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            task_type: task_type.into(),
            label: None,
            description: None,
            params: Value::Object(Default::default()),
            total: DEFAULT_TOTAL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            run_at: None,
            depends_on: Vec::new(),
            priority: Priority::Normal,
        }
    }

    /// Sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the params.
    pub fn with_params(mut self, params: Value) -> Self {
        self.params = params;
        self
    }

    /// Sets the number of attempts.
    pub fn with_max_attempts(mut self, max_attempts: i64) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Delays the task until `run_at`.
    pub fn with_run_at(mut self, run_at: UnixMillis) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Sets the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Makes the task wait for `dependency`'s parent.
    pub fn depending_on(mut self, dependency: Dependency) -> Self {
        self.depends_on.push(dependency);
        self
    }

    /// Checks every field; the error names the first bad one.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`].
    pub fn validate(&self) -> Result<(), CoreError> {
        let invalid = |field, reason: &str| {
            Err(CoreError::InvalidField {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.user_id.trim().is_empty() || self.user_id.chars().count() > MAX_USER_ID_LEN {
            return invalid("user_id", "must be 1 to 320 characters");
        }
        let type_ok = !self.task_type.is_empty()
            && self.task_type.len() <= MAX_TASK_TYPE_LEN
            && self
                .task_type
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !type_ok {
            return invalid(
                "task_type",
                "must be 1 to 64 characters of a-z, 0-9, '-' and '_'",
            );
        }
        if self
            .label
            .as_ref()
            .is_some_and(|l| l.chars().count() > MAX_LABEL_LEN)
        {
            return invalid("label", "must be at most 200 characters");
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
        {
            return invalid("description", "must be at most 2000 characters");
        }
        if self.total < 1 {
            return invalid("total", "must be at least 1");
        }
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&self.max_attempts) {
            return invalid("max_attempts", "must be between 1 and 100");
        }
        if self.run_at.is_some_and(|t| t < 0) {
            return invalid("run_at", "must be a unix time in milliseconds");
        }
        if self.depends_on.len() > MAX_DEPENDS_ON {
            return invalid("depends_on", "must name at most 100 tasks");
        }
        let mut parents: Vec<&str> = self.depends_on.iter().map(|d| d.parent.as_str()).collect();
        parents.sort_unstable();
        if parents.windows(2).any(|pair| pair[0] == pair[1]) {
            return invalid("depends_on", "must not name a task twice");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(task: NewTask, bad_field: Option<&str>) {
        match (task.validate(), bad_field) {
            (Ok(()), None) => {}
            (Err(CoreError::InvalidField { field, .. }), Some(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected bad field {expected:?}"),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        let ok = NewTask::new("a@example.com", "generation");
        check(ok.clone(), None);
        check(NewTask::new(" ", "generation"), Some("user_id"));
        check(NewTask::new("a", "Generation"), Some("task_type"));
        check(NewTask::new("a", ""), Some("task_type"));
        check(NewTask::new("a", "x".repeat(65)), Some("task_type"));
        check(ok.clone().with_label("l".repeat(201)), Some("label"));
        check(
            ok.clone().with_description("d".repeat(2001)),
            Some("description"),
        );
        check(ok.clone().with_max_attempts(0), Some("max_attempts"));
        check(ok.clone().with_max_attempts(101), Some("max_attempts"));
        check(ok.clone().with_run_at(-5), Some("run_at"));
        let mut zero_total = ok.clone();
        zero_total.total = 0;
        check(zero_total, Some("total"));
        check(ok.with_label("l".repeat(200)).with_max_attempts(100), None);
    }
}
