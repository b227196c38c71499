//! The supervisor of one attempt: waits for a handler slot when the task was claimed ahead
//! (renewing the lease, honouring a cancel and releasing the task when shutdown begins), runs
//! the handler on its own tokio task, renews the lease, enforces the timeout and the cancel
//! grace period, and writes the outcome (complete, retry, fail, cancel or release) with the
//! attempt's lease.
//!
//! The handler runs on a separate tokio task so that a handler which blocks its thread or
//! panics cannot stop the heartbeats or the grace timers, and so it can be dropped when it
//! ignores its cancellation token.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use task_core::Task;
use task_store::{Failure, StoreError};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::clock::{after, now_millis};
use crate::context::Attempt;
use crate::humanize::human_duration;
use crate::registry::TaskType;
use crate::shared::Shared;
use crate::slots::{Slot, Turn, Waiting};
use crate::{HandlerError, TaskContext, TaskTypeConfig};

/// Tries of a final write (complete, fail, cancel, release) while the store reports itself busy
/// or unreachable. After the last one the lease simply expires and the rescuer retries the task.
const WRITE_TRIES: u32 = 5;
/// The wait before the first repeated write; it doubles each time (20, 40, 80, 160 ms).
const WRITE_RETRY_WAIT: Duration = Duration::from_millis(20);

/// How an attempt ended, before anything is written.
enum Outcome {
    /// The handler returned.
    Returned(Result<Value, HandlerError>),
    /// The handler panicked; treated as a retryable error.
    Panicked(String),
    /// A heartbeat showed that another worker, a cancel or the rescuer owns the task now.
    LeaseLost,
    /// A cancel was requested and the handler did not return within the grace period.
    CancelGraceOver,
    /// The task type's time limit ran out.
    TimedOut(Duration),
    /// The shutdown grace period ran out (or the tokio runtime is going away).
    ShutDown,
    /// Shutdown began while the task waited for a slot: it never started.
    StoppedWhileQueued,
    /// A cancel was requested while the task waited for a slot: it never started.
    CancelledWhileQueued,
}

/// Runs one claimed attempt to its end and frees its slot.
pub(crate) async fn supervise(
    shared: Arc<Shared>,
    attempt: Arc<Attempt>,
    task_type: TaskType,
    turn: Turn,
) {
    // One heartbeat schedule from the claim on, queued or running, so the lease is renewed
    // every interval however long the task waited for its slot.
    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + shared.config.heartbeat_interval,
        shared.config.heartbeat_interval,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let slot = match turn {
        Turn::Now => shared.slots.held(),
        Turn::Queued(waiting) => match queued(&shared, &attempt, waiting, &mut heartbeat).await {
            Ok(slot) => slot,
            Err(outcome) => {
                settle(&shared, &attempt, &task_type.config, outcome).await;
                shared.unregister(&attempt.task.id);
                return;
            }
        },
    };
    let handler = Arc::clone(&task_type.handler);
    let ctx = TaskContext::new(Arc::clone(&attempt));
    let mut join = tokio::spawn(async move { handler.run(ctx).await });
    let timeout = task_type.config.timeout;
    let outcome = watch(&shared, &attempt, timeout, &mut join, &mut heartbeat).await;
    match outcome {
        Outcome::Returned(_)
        | Outcome::Panicked(_)
        | Outcome::StoppedWhileQueued
        | Outcome::CancelledWhileQueued => {}
        Outcome::LeaseLost => {
            // Nothing will be written, but a cooperative handler gets the cancel grace period
            // to wind down (and keeps its slot meanwhile) before it is dropped.
            attempt.token.cancel();
            if tokio::time::timeout(shared.config.cancel_grace, &mut join)
                .await
                .is_err()
            {
                join.abort();
            }
        }
        Outcome::CancelGraceOver | Outcome::TimedOut(_) | Outcome::ShutDown => {
            // The handler is still running: tell anything holding its token to stop, and
            // drop it.
            attempt.token.cancel();
            join.abort();
        }
    }
    // The handler is done (or dropped): its slot goes to the next queued task while the
    // outcome is written.
    drop(slot);
    settle(&shared, &attempt, &task_type.config, outcome).await;
    shared.unregister(&attempt.task.id);
}

/// Waits for a handler slot for a task claimed ahead, renewing its lease meanwhile. Returns
/// the slot, or the outcome when the task must end without starting: shutdown began (it is
/// released at once for another worker), a cancel was requested, or the lease was lost.
async fn queued<'a>(
    shared: &'a Shared,
    attempt: &Attempt,
    mut waiting: Waiting,
    heartbeat: &mut Interval,
) -> Result<Slot<'a>, Outcome> {
    let outcome = loop {
        // `biased`: once shutdown began or a cancel arrived, a slot handed over at the same
        // moment must not start the task.
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break Outcome::StoppedWhileQueued,
            _ = attempt.cancel_requested.cancelled() => break Outcome::CancelledWhileQueued,
            slot = shared.slots.wait(&mut waiting) => return Ok(slot),
            _ = heartbeat.tick() => {
                if let Some(outcome) = beat(shared, attempt).await {
                    break outcome;
                }
            }
        }
    };
    shared.slots.leave(waiting);
    Err(outcome)
}

async fn watch(
    shared: &Shared,
    attempt: &Attempt,
    timeout: Duration,
    join: &mut JoinHandle<Result<Value, HandlerError>>,
    heartbeat: &mut Interval,
) -> Outcome {
    let config = &shared.config;
    let time_limit = tokio::time::sleep(timeout);
    tokio::pin!(time_limit);
    let mut grace_until: Option<Instant> = None;
    loop {
        tokio::select! {
            joined = &mut *join => return outcome_of(joined),
            _ = attempt.cancel_requested.cancelled(), if grace_until.is_none() => {
                tracing::info!(task_id = %attempt.task.id, grace = ?config.cancel_grace, "cancel requested; stopping the handler");
                attempt.token.cancel();
                grace_until = Some(Instant::now() + config.cancel_grace);
            }
            _ = tokio::time::sleep_until(grace_until.unwrap_or_else(Instant::now)), if grace_until.is_some() => {
                return Outcome::CancelGraceOver;
            }
            _ = &mut time_limit => return Outcome::TimedOut(timeout),
            _ = shared.hard_stop.cancelled() => return Outcome::ShutDown,
            _ = heartbeat.tick() => {
                if let Some(outcome) = beat(shared, attempt).await {
                    return outcome;
                }
            }
        }
    }
}

fn outcome_of(joined: Result<Result<Value, HandlerError>, JoinError>) -> Outcome {
    match joined {
        Ok(result) => Outcome::Returned(result),
        Err(error) if error.is_panic() => Outcome::Panicked(panic_message(error.into_panic())),
        // Only a tokio runtime that is shutting down cancels the handler's task from outside.
        Err(_) => Outcome::ShutDown,
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Renews the lease. Returns the outcome when the attempt must end.
async fn beat(shared: &Shared, attempt: &Attempt) -> Option<Outcome> {
    let until = after(now_millis(), shared.config.lease_duration);
    match shared.store.heartbeat(&attempt.lease, until).await {
        Ok(task) => {
            tracing::debug!(task_id = %task.id, lease_expires_at = until, "heartbeat");
            if task.cancel_requested {
                attempt.cancel_requested.cancel();
            }
            None
        }
        Err(StoreError::LeaseLost | StoreError::NotFound) => {
            tracing::warn!(task_id = %attempt.task.id, "heartbeat refused: lease lost; stopping the handler");
            attempt.lose_lease();
            Some(Outcome::LeaseLost)
        }
        Err(error) => {
            // The lease is still valid until it expires; the next beat tries again.
            tracing::warn!(task_id = %attempt.task.id, %error, "heartbeat failed");
            None
        }
    }
}

/// Writes the attempt's outcome. Nothing is written once the lease is known to be lost.
async fn settle(shared: &Shared, attempt: &Attempt, config: &TaskTypeConfig, outcome: Outcome) {
    let task = &attempt.task;
    if attempt.is_closed() || matches!(outcome, Outcome::LeaseLost) {
        tracing::warn!(task_id = %task.id, attempt = task.attempt, "attempt abandoned: lease lost, nothing written");
        return;
    }
    // From here on the handler (or a clone of its context) may not write progress.
    attempt.close();
    let store = shared.store.as_ref();
    let lease = &attempt.lease;
    let cancel_requested = attempt.cancel_requested.is_cancelled();
    match outcome {
        Outcome::LeaseLost => {}
        // The cancel of a task that never started is fenced by its lease like any other.
        Outcome::CancelledWhileQueued => {
            if write(task, "cancel", || store.cancel(&task.id, Some(lease)))
                .await
                .is_some()
            {
                tracing::info!(task_id = %task.id, "cancelled before it started");
            }
        }
        Outcome::CancelGraceOver => {
            if write(task, "cancel", || store.cancel(&task.id, None))
                .await
                .is_some()
            {
                tracing::info!(task_id = %task.id, "cancelled: the handler ignored the cancel and was dropped");
            }
        }
        // A requested cancel wins over every other ending: the user asked for the task to stop.
        _ if cancel_requested => {
            if write(task, "cancel", || store.cancel(&task.id, Some(lease)))
                .await
                .is_some()
            {
                tracing::info!(task_id = %task.id, "cancelled");
            }
        }
        Outcome::ShutDown => {
            if write(task, "release", || store.release(lease))
                .await
                .is_some()
            {
                tracing::info!(task_id = %task.id, "released: shutdown grace over, another worker may take it");
            }
        }
        Outcome::StoppedWhileQueued => {
            if write(task, "release", || store.release(lease))
                .await
                .is_some()
            {
                tracing::info!(task_id = %task.id, "released: shutdown began before it started, another worker may take it");
            }
        }
        Outcome::TimedOut(limit) => {
            let error = format!("timed out after {}", human_duration(limit));
            fail(task, store, lease, Failure::permanent(error)).await;
        }
        Outcome::Returned(Ok(value)) => {
            if write(task, "complete", || store.complete(lease, value.clone()))
                .await
                .is_some()
            {
                tracing::info!(task_id = %task.id, attempt = task.attempt, "completed");
            }
        }
        Outcome::Returned(Err(HandlerError::Retryable { message, after })) => {
            retry_or_fail(task, store, lease, config, message, after).await;
        }
        Outcome::Returned(Err(HandlerError::Permanent { message })) => {
            fail(task, store, lease, Failure::permanent(message)).await;
        }
        Outcome::Returned(Err(HandlerError::Postponed { waiting_for, after })) => {
            postpone(task, store, lease, &waiting_for, after).await;
        }
        Outcome::Returned(Err(HandlerError::Cancelled)) => {
            let error = "handler stopped as cancelled, but no cancel was requested";
            fail(task, store, lease, Failure::permanent(error)).await;
        }
        Outcome::Panicked(message) => {
            let message = format!("handler panicked: {message}");
            retry_or_fail(task, store, lease, config, message, None).await;
        }
    }
}

/// Holds the task back until `after` from now without using an attempt.
async fn postpone(
    task: &Task,
    store: &dyn task_store::TaskStore,
    lease: &task_store::Lease,
    waiting_for: &str,
    delay: Duration,
) {
    let until = after(now_millis(), delay);
    let description = format!(
        "waiting for {waiting_for} (rate limited until {} UTC)",
        clock_time(until)
    );
    if let Some(stored) = write(task, "postpone", || {
        store.postpone(lease, until, Some(description.clone()))
    })
    .await
    {
        tracing::info!(
            task_id = %task.id,
            waiting_for,
            run_at = stored.run_at,
            "postponed without using an attempt"
        );
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn clock_time(at: task_core::UnixMillis) -> String {
    let seconds = at.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Schedules the next attempt when one is left, else fails the task.
async fn retry_or_fail(
    task: &Task,
    store: &dyn task_store::TaskStore,
    lease: &task_store::Lease,
    config: &TaskTypeConfig,
    message: String,
    after_hint: Option<Duration>,
) {
    let max_attempts = task.max_attempts.min(config.max_attempts);
    if task.attempt >= max_attempts {
        fail(task, store, lease, Failure::permanent(message)).await;
        return;
    }
    let retry = u32::try_from(task.attempt).unwrap_or(u32::MAX);
    let delay = after_hint.unwrap_or_else(|| config.backoff.delay(retry));
    let description = format!(
        "Retrying in {} (attempt {}/{max_attempts})",
        human_duration(delay),
        task.attempt + 1
    );
    let failure = Failure {
        error: message,
        retry_at: Some(after(now_millis(), delay)),
        retry_description: Some(description),
    };
    if let Some(stored) = write(task, "fail", || store.fail(lease, failure.clone())).await {
        tracing::info!(
            task_id = %task.id,
            attempt = task.attempt,
            retry_in = %human_duration(delay),
            run_at = stored.run_at,
            error = %failure.error,
            "retry scheduled"
        );
    }
}

async fn fail(
    task: &Task,
    store: &dyn task_store::TaskStore,
    lease: &task_store::Lease,
    failure: Failure,
) {
    if write(task, "fail", || store.fail(lease, failure.clone()))
        .await
        .is_some()
    {
        tracing::warn!(task_id = %task.id, attempt = task.attempt, error = %failure.error, "failed");
    }
}

/// Runs a final write, repeating it while the store is momentarily busy or unreachable.
/// Returns the stored task, or `None` when the write was refused or kept failing (then the
/// lease expires and the rescuer takes over).
async fn write<F, Fut>(task: &Task, what: &'static str, mut op: F) -> Option<Task>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Task, StoreError>>,
{
    let mut wait = WRITE_RETRY_WAIT;
    for round in 1..=WRITE_TRIES {
        match op().await {
            Ok(stored) => return Some(stored),
            Err(StoreError::LeaseLost) => {
                tracing::warn!(task_id = %task.id, what, "refused: lease lost, nothing written");
                return None;
            }
            Err(error @ (StoreError::Busy | StoreError::Unavailable(_))) if round < WRITE_TRIES => {
                tracing::debug!(task_id = %task.id, what, %error, "store busy; repeating the write");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(error) => {
                tracing::error!(task_id = %task.id, what, %error, "write failed; the rescuer will return the task once its lease expires");
                return None;
            }
        }
    }
    None
}
