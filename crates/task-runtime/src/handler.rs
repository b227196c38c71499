//! The [`Handler`] trait that runs one task type, and [`handler_fn`] for closures.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::{HandlerError, TaskContext};

/// Runs tasks of one type. The returned value becomes the task's `result`; an error is
/// retried, failed or acknowledged as a cancel according to its variant.
///
/// A handler should report progress through [`TaskContext::progress`] and stop soon after
/// [`TaskContext::cancellation`] fires, returning [`HandlerError::Cancelled`]. One that does not
/// is dropped when the cancel grace period or its timeout runs out.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of a task.
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError>;
}

/// A handler made from an async closure, for handlers without state of their own:
/// `handler_fn(|ctx| async move { Ok(json!({"echo": ctx.params().clone()})) })`.
pub fn handler_fn<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    Arc::new(FnHandler(f))
}

struct FnHandler<F>(F);

#[async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        (self.0)(ctx).await
    }
}
