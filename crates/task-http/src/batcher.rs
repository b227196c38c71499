//! Group commit for task creation: concurrent create requests are collected while the previous
//! transaction commits and written together with one `create_many`, so the database sees one
//! transaction per batch instead of one per request. The per-user queue limit is applied here
//! too, per user per batch (through [`QueueLedger`]), so concurrent requests of one process
//! cannot race past it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use task_core::{NewTask, Task};
use task_store::{StoreError, TaskStore};
use tokio::sync::{mpsc, oneshot};

use crate::queue_ledger::QueueLedger;
use crate::ApiError;

/// Create requests waiting for the batcher before senders wait for room.
const QUEUE_CAPACITY: usize = 4096;

/// Limits the batcher applies.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most creations per transaction.
    pub max_batch: usize,
    /// Unfinished tasks a user may have.
    pub max_queued_per_user: u64,
    /// `Retry-After` for a full queue.
    pub retry_after: Duration,
}

struct Job {
    new: NewTask,
    reply: oneshot::Sender<Result<Task, ApiError>>,
}

/// A handle for creating tasks through the batcher. Cheap to clone; the batcher stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct TaskCreator {
    sender: mpsc::Sender<Job>,
}

impl TaskCreator {
    /// Starts the batcher on the current tokio runtime.
    pub fn start(store: Arc<dyn TaskStore>, limits: BatchLimits) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(store, receiver, limits));
        Self { sender }
    }

    /// Creates a task (already validated by the caller), subject to the owner's queue limit.
    ///
    /// # Errors
    /// 429 when the owner has too many unfinished tasks; the store's errors otherwise.
    pub async fn create(&self, new: NewTask) -> Result<Task, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Job { new, reply })
            .await
            .map_err(|_| ApiError::internal("the task creation batcher has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the task creation batcher dropped a request"))?
    }
}

async fn run(store: Arc<dyn TaskStore>, mut receiver: mpsc::Receiver<Job>, limits: BatchLimits) {
    let mut ledger = QueueLedger::new(limits.max_queued_per_user);
    let mut jobs = Vec::with_capacity(limits.max_batch);
    // `recv_many` waits for the first request, then takes every one already queued: under load
    // the queue fills while the previous batch commits, so batches grow exactly when it pays.
    // One pass of the scheduler (`yield_now`) then lets connections whose requests are already
    // parsed join the batch; it adds no timer and next to no delay when the server is idle.
    while receiver.recv_many(&mut jobs, limits.max_batch).await > 0 {
        tokio::task::yield_now().await;
        while jobs.len() < limits.max_batch {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let batch = std::mem::replace(&mut jobs, Vec::with_capacity(limits.max_batch));
        commit(store.as_ref(), batch, &limits, &mut ledger).await;
    }
}

/// Admits what fits under each user's limit, writes it in one transaction and answers every
/// request of the batch.
async fn commit(
    store: &dyn TaskStore,
    batch: Vec<Job>,
    limits: &BatchLimits,
    ledger: &mut QueueLedger,
) {
    let mut wanted: HashMap<String, u64> = HashMap::new();
    for job in &batch {
        *wanted.entry(job.new.user_id.clone()).or_default() += 1;
    }
    let mut room: HashMap<String, Result<u64, StoreError>> = HashMap::new();
    for (user, count) in wanted {
        let left = ledger.room(store, &user, count).await;
        room.insert(user, left);
    }
    let mut admitted = Vec::with_capacity(batch.len());
    for job in batch {
        match room.get_mut(&job.new.user_id) {
            Some(Ok(left)) if *left > 0 => {
                *left -= 1;
                admitted.push(job);
            }
            Some(Ok(_)) => {
                let _ = job.reply.send(Err(queue_full(limits)));
            }
            Some(Err(error)) => {
                let _ = job.reply.send(Err(error.clone().into()));
            }
            None => {
                let _ = job.reply.send(Err(ApiError::internal(
                    "queue limit bookkeeping lost a user",
                )));
            }
        }
    }
    if admitted.is_empty() {
        return;
    }
    let news: Vec<NewTask> = admitted.iter().map(|job| job.new.clone()).collect();
    match store.create_many(news).await {
        Ok(tasks) if tasks.len() == admitted.len() => {
            for (job, task) in admitted.into_iter().zip(tasks) {
                ledger.record(&task.user_id, 1);
                let _ = job.reply.send(Ok(task));
            }
        }
        Ok(tasks) => {
            let cause = format!(
                "create_many returned {} tasks for {} inputs",
                tasks.len(),
                admitted.len()
            );
            for job in admitted {
                let _ = job.reply.send(Err(ApiError::internal(&cause)));
            }
        }
        Err(error) if admitted.len() > 1 && !is_database_down(&error) => {
            // One bad input must not fail its neighbours: write them one by one so each
            // request gets its own answer.
            tracing::warn!(%error, size = admitted.len(), "batch insert failed; retrying one by one");
            for job in admitted {
                let result = store.create(job.new).await.map_err(ApiError::from);
                if let Ok(task) = &result {
                    ledger.record(&task.user_id, 1);
                }
                let _ = job.reply.send(result);
            }
        }
        Err(error) => {
            for job in admitted {
                let _ = job.reply.send(Err(error.clone().into()));
            }
        }
    }
}

fn is_database_down(error: &StoreError) -> bool {
    matches!(error, StoreError::Busy | StoreError::Unavailable(_))
}

fn queue_full(limits: &BatchLimits) -> ApiError {
    ApiError::queue_full(limits.max_queued_per_user, limits.retry_after)
}
