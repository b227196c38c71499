//! Task creation under the per-user limits: the creation rate ([`CreationLimits`]) and the
//! queue cap.
//!
//! Each request takes a token from its owner's rate limit, then reserves a place in its owner's queue ([`QueueLedger`]), then creates its task
//! with one `create` call. Concurrent creations still share transactions: the SQLite store's
//! writer commits everything queued while its previous commit ran as one group. An earlier
//! version collected requests in a batcher task of its own first; that added a task hand-off
//! and a wait for the whole batch to every request, and the store groups them anyway.

use std::sync::Arc;
use std::time::Duration;

use task_core::{NewTask, Task};
use task_store::{CreateGuard, Guarded, TaskStore};
use tokio::sync::Mutex;

use crate::idempotency::{self, Answer};
use crate::queue_ledger::QueueLedger;
use crate::rate_limit::CreationLimits;
use crate::ApiError;

/// Creates tasks (already validated by the caller), subject to each owner's queue limit.
/// Cheap to clone; clones share the ledger.
#[derive(Clone)]
pub struct TaskCreator {
    store: Arc<dyn TaskStore>,
    ledger: Arc<Mutex<QueueLedger>>,
    limits: Arc<CreationLimits>,
    retry_after: Duration,
}

impl TaskCreator {
    /// A creator holding each user to `limits` (their creation rate and queue cap); a full
    /// queue is answered with 429 and `retry_after`.
    pub fn new(store: Arc<dyn TaskStore>, limits: CreationLimits, retry_after: Duration) -> Self {
        Self {
            store,
            ledger: Arc::new(Mutex::new(QueueLedger::new())),
            limits: Arc::new(limits),
            retry_after,
        }
    }

    /// The per-user limits this creator applies.
    pub fn limits(&self) -> &CreationLimits {
        &self.limits
    }

    /// Takes a creation from `user`'s rate limit and reserves a place in their queue; a `true`
    /// reservation must be settled.
    async fn admit(&self, user: &str) -> Result<(), ApiError> {
        let limits = self.limits.admit(user).await?;
        let reserved = self
            .ledger
            .lock()
            .await
            .reserve(self.store.as_ref(), user, limits.max_queued)
            .await?;
        if !reserved {
            return Err(ApiError::queue_full(limits.max_queued, self.retry_after));
        }
        Ok(())
    }

    /// Creates `new` if its owner's queue has room.
    ///
    /// # Errors
    /// 429 when the owner creates faster than their rate limit or has too many unfinished
    /// tasks; the store's errors otherwise.
    pub async fn create(&self, new: NewTask) -> Result<Task, ApiError> {
        let user = new.user_id.clone();
        self.admit(&user).await?;
        let created = self.store.create(new).await;
        self.ledger.lock().await.settle(&user, created.is_ok());
        created.map_err(ApiError::from)
    }

    /// Creates `new` subject to `guard` (an idempotency key, a unique key) if its owner's queue
    /// has room; the store decides atomically whether an earlier answer stands instead.
    ///
    /// # Errors
    /// 429 when the owner has too many unfinished tasks; 422 for an idempotency key reused
    /// with another request; the store's errors otherwise.
    pub async fn create_guarded(
        &self,
        new: NewTask,
        guard: CreateGuard,
    ) -> Result<Answer, ApiError> {
        let user = new.user_id.clone();
        self.admit(&user).await?;
        let outcome = self.store.create_guarded(new, guard).await;
        let created = matches!(outcome, Ok(Guarded::Created(_)));
        self.ledger.lock().await.settle(&user, created);
        idempotency::settle(outcome?)
    }
}
