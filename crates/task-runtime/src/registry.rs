//! The [`Registry`] of handlers by task type, and the per-type policy ([`TaskTypeConfig`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use task_core::{CoreError, NewTask, DEFAULT_MAX_ATTEMPTS};

use crate::config::check_not_too_long;
use crate::{Backoff, Handler, RuntimeError};

/// How long one attempt may run unless its task type says otherwise.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Retry and time limits for one task type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskTypeConfig {
    /// Attempts before a retryable error becomes final. A task gets the smaller of this and its
    /// own `max_attempts` (set by its creator), because the store ends a task once its own
    /// count is used up. Defaults to 3.
    pub max_attempts: i64,
    /// How long one attempt may run before it is stopped and the task fails with "timed out
    /// after …". Defaults to 10 min.
    pub timeout: Duration,
    /// The wait before a retry when the handler did not name one. Defaults to full-jitter
    /// exponential backoff from 2 s, capped at 5 min.
    pub backoff: Backoff,
}

impl Default for TaskTypeConfig {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            timeout: DEFAULT_TASK_TIMEOUT,
            backoff: Backoff::default(),
        }
    }
}

impl TaskTypeConfig {
    /// Checks the values; `field` prefixes the names in the error.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self, field: &str) -> Result<(), RuntimeError> {
        if self.max_attempts < 1 {
            return Err(RuntimeError::config(
                format!("{field}.max_attempts"),
                "must be at least 1",
            ));
        }
        if self.timeout.is_zero() {
            return Err(RuntimeError::config(
                format!("{field}.timeout"),
                "must be longer than zero",
            ));
        }
        if self.backoff.base.is_zero() {
            return Err(RuntimeError::config(
                format!("{field}.backoff.base"),
                "must be longer than zero",
            ));
        }
        check_not_too_long(&format!("{field}.timeout"), self.timeout)?;
        check_not_too_long(&format!("{field}.backoff.cap"), self.backoff.cap)?;
        if self.backoff.cap < self.backoff.base {
            return Err(RuntimeError::config(
                format!("{field}.backoff.cap"),
                "must not be shorter than backoff.base",
            ));
        }
        Ok(())
    }
}

/// Handlers by task type, built before the runtime starts:
/// `Registry::new().register("noop", handler).register_with("generation", other, config)`.
#[derive(Default, Clone)]
pub struct Registry {
    entries: Vec<(String, Arc<dyn Handler>, Option<TaskTypeConfig>)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("task_types", &self.task_types().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs tasks of `task_type` with `handler` under the runtime's default
    /// [`TaskTypeConfig`].
    pub fn register(mut self, task_type: impl Into<String>, handler: Arc<dyn Handler>) -> Self {
        self.entries.push((task_type.into(), handler, None));
        self
    }

    /// Runs tasks of `task_type` with `handler` under its own `config`.
    pub fn register_with(
        mut self,
        task_type: impl Into<String>,
        handler: Arc<dyn Handler>,
        config: TaskTypeConfig,
    ) -> Self {
        self.entries.push((task_type.into(), handler, Some(config)));
        self
    }

    /// The registered task types, in registration order.
    pub fn task_types(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _, _)| name.as_str())
    }

    /// Each registered type's attempt cap: its own `max_attempts`, or `default`'s for a type
    /// registered without a config (pass the runtime's `default_task_type`). The HTTP edge
    /// refuses creations asking for more, since the runtime would silently give fewer.
    pub fn attempt_caps<'a>(
        &'a self,
        default: &'a TaskTypeConfig,
    ) -> impl Iterator<Item = (&'a str, i64)> + 'a {
        self.entries.iter().map(move |(name, _, config)| {
            (
                name.as_str(),
                config.as_ref().unwrap_or(default).max_attempts,
            )
        })
    }

    /// Checks every entry and fills in the default config.
    pub(crate) fn resolve(
        self,
        default: &TaskTypeConfig,
    ) -> Result<HashMap<String, TaskType>, RuntimeError> {
        if self.entries.is_empty() {
            return Err(RuntimeError::NoHandlers);
        }
        let mut resolved = HashMap::with_capacity(self.entries.len());
        for (name, handler, config) in self.entries {
            if let Err(error) = NewTask::new("registry", name.as_str()).validate() {
                let reason = match error {
                    CoreError::InvalidField { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(RuntimeError::InvalidTaskType { name, reason });
            }
            let config = config.unwrap_or(*default);
            config.validate(&format!("task type {name:?}"))?;
            if resolved.contains_key(&name) {
                return Err(RuntimeError::DuplicateTaskType(name));
            }
            resolved.insert(name, TaskType { handler, config });
        }
        Ok(resolved)
    }
}

/// A registered task type after validation.
#[derive(Clone)]
pub(crate) struct TaskType {
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) config: TaskTypeConfig,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_fn;
    use serde_json::json;

    fn noop() -> Arc<dyn Handler> {
        handler_fn(|_| async { Ok(json!(null)) })
    }

    fn check(registry: Registry, expected: Result<Vec<&str>, RuntimeError>) {
        let result = registry.resolve(&TaskTypeConfig::default()).map(|types| {
            let mut names: Vec<String> = types.into_keys().collect();
            names.sort();
            names
        });
        let expected = expected.map(|names| names.into_iter().map(String::from).collect());
        assert_eq!(result, expected);
    }

    #[test]
    fn registry_rejects_bad_entries() {
        check(Registry::new(), Err(RuntimeError::NoHandlers));
        check(
            Registry::new().register("b", noop()).register("a", noop()),
            Ok(vec!["a", "b"]),
        );
        check(
            Registry::new().register("a", noop()).register("a", noop()),
            Err(RuntimeError::DuplicateTaskType("a".into())),
        );
        check(
            Registry::new().register("Bad Name", noop()),
            Err(RuntimeError::InvalidTaskType {
                name: "Bad Name".into(),
                reason: "must be 1 to 64 characters of a-z, 0-9, '-' and '_'".into(),
            }),
        );
        let zero_attempts = TaskTypeConfig {
            max_attempts: 0,
            ..TaskTypeConfig::default()
        };
        check(
            Registry::new().register_with("a", noop(), zero_attempts),
            Err(RuntimeError::config(
                "task type \"a\".max_attempts",
                "must be at least 1",
            )),
        );
    }
}
