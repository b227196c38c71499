//! Two task types for trying out, testing and benchmarking a runtime without real work (the
//! tasklane binary's `--test-tasks` registers them): `noop` completes at once; `sleep` (`{"ms":N,"steps":K}`) reports K progress
//! steps spread over N milliseconds and stops promptly when cancelled.

use std::sync::Arc;
use std::time::Duration;

use crate::{Handler, HandlerError, Registry, TaskContext};
use async_trait::async_trait;
use serde_json::{json, Value};

/// The task type that completes at once.
pub const NOOP_TASK_TYPE: &str = "noop";
/// The task type that sleeps in steps.
pub const SLEEP_TASK_TYPE: &str = "sleep";
/// `ms` of a `sleep` task unless given.
pub const DEFAULT_SLEEP_MS: u64 = 1000;
/// `steps` of a `sleep` task unless given.
pub const DEFAULT_SLEEP_STEPS: u64 = 10;
/// Longest accepted `ms`: one hour.
const MAX_SLEEP_MS: u64 = 3_600_000;
/// Most accepted `steps`.
const MAX_SLEEP_STEPS: u64 = 1000;

/// Adds `noop` and `sleep` to `registry`.
pub fn register_test_tasks(registry: Registry) -> Registry {
    registry
        .register(NOOP_TASK_TYPE, Arc::new(Noop))
        .register(SLEEP_TASK_TYPE, Arc::new(Sleep))
}

/// Completes at once with `{"ok":true}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

#[async_trait]
impl Handler for Noop {
    async fn run(&self, _ctx: TaskContext) -> Result<Value, HandlerError> {
        Ok(json!({ "ok": true }))
    }
}

/// Sleeps `ms` milliseconds in `steps` equal parts, reporting progress after each.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleep;

#[async_trait]
impl Handler for Sleep {
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let ms = param(ctx.params(), "ms", DEFAULT_SLEEP_MS, MAX_SLEEP_MS)?;
        let steps = param(ctx.params(), "steps", DEFAULT_SLEEP_STEPS, MAX_SLEEP_STEPS)?;
        let cancelled = ctx.cancellation();
        let total = ctx.task().total;
        let parts = steps.max(1);
        let pause = Duration::from_millis(ms) / u32::try_from(parts).unwrap_or(u32::MAX);
        for step in 1..=parts {
            tokio::select! {
                () = cancelled.cancelled() => return Err(HandlerError::Cancelled),
                () = tokio::time::sleep(pause) => {}
            }
            if steps > 0 {
                let progress = total.saturating_mul(step as i64) / parts as i64;
                ctx.progress(progress, format!("Step {step} of {steps}"))
                    .await?;
            }
        }
        Ok(json!({ "slept_ms": ms, "steps": steps }))
    }
}

/// A non-negative integer parameter with a default and an upper bound.
fn param(params: &Value, name: &str, default: u64, max: u64) -> Result<u64, HandlerError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value.as_u64().filter(|n| *n <= max).ok_or_else(|| {
            HandlerError::permanent(format!(
                "invalid params.{name}: must be a whole number from 0 to {max}"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_default_and_are_bounded() {
        let params = json!({"ms": 50, "steps": "3", "big": 5_000_000});
        assert_eq!(param(&params, "ms", 1, 100).unwrap(), 50);
        assert_eq!(param(&params, "missing", 7, 100).unwrap(), 7);
        assert!(param(&params, "steps", 1, 100).is_err());
        assert!(param(&params, "big", 1, MAX_SLEEP_MS).is_err());
        assert!(param(&json!({"ms": -1}), "ms", 1, 100).is_err());
    }
}
