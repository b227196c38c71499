//! The worker loop: claims due tasks up to the free slots (and the claim-ahead queue) and hands
//! each to a supervisor, which waits for a slot when the task was claimed ahead.
//!
//! It claims when it starts, when the feed shows a new due task, when a slot frees, when a
//! known delayed task falls due, and on the poll tick (for tasks it cannot hear about, such as
//! those created by another process). Each wake-up costs at most one claim query, whatever
//! number of tasks it brings.
//!
//! With a claim-ahead queue, another claim may start while earlier ones are still running
//! (up to [`MAX_CLAIMS_IN_FLIGHT`], each for at least half the queue): one claim statement runs
//! on one database backend, so on PostgreSQL a worker whose handlers finish faster than one
//! claim refills the queue was held to that backend's pace (a drain profile showed the claim
//! connection busy 80 % of the time and the machine a third idle; `docs/benchmarks.md`). Claims
//! in flight reserve the capacity they asked for, and their tasks start in the order the claims
//! were sent, so the queue keeps claim order.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use task_core::{Task, UnixMillis};
use task_store::{Lease, StoreError, MAX_CLAIM_LIMIT};
use tokio::time::{Instant, MissedTickBehavior};

use crate::clock::now_millis;
use crate::context::Attempt;
use crate::registry::TaskType;
use crate::shared::Shared;
use crate::slots::Turn;
use crate::supervisor;

/// Claims running at once at most when the worker has a claim-ahead queue; without one a
/// claim only fills idle slots, and one at a time does that. The half-queue rule bounds them
/// too: a worker of concurrency 64 with a queue of 512 has room for two or three.
const MAX_CLAIMS_IN_FLIGHT: usize = 4;

type ClaimFuture = Pin<Box<dyn Future<Output = (usize, Result<Vec<Task>, StoreError>)> + Send>>;

/// The claims sent and not yet answered, oldest first, and the capacity they reserve.
struct InFlight {
    claims: FuturesOrdered<ClaimFuture>,
    reserved: usize,
}

impl InFlight {
    fn send(&mut self, shared: &Arc<Shared>, limit: usize, now: UnixMillis) {
        let shared = Arc::clone(shared);
        self.reserved += limit;
        self.claims.push_back(Box::pin(async move {
            let request = shared.claim_request(limit, now);
            (limit, shared.store.claim(&request).await)
        }));
    }

    /// The oldest claim's answer; the capacity it reserved is free again (its tasks now hold
    /// their own).
    async fn next(&mut self) -> Option<Result<Vec<Task>, StoreError>> {
        let (limit, answer) = self.claims.next().await?;
        self.reserved -= limit;
        Some(answer)
    }
}

/// Claims and starts tasks until shutdown begins.
pub(crate) async fn run(shared: Arc<Shared>) {
    let poll_interval = shared.config.poll_interval;
    let most_in_flight = if shared.config.claim_ahead > 0 {
        MAX_CLAIMS_IN_FLIGHT
    } else {
        1
    };
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut in_flight = InFlight {
        claims: FuturesOrdered::new(),
        reserved: 0,
    };
    // After a failed claim: no claim is sent before then, so a failing database does not turn
    // every wake-up into a query storm.
    let mut paused_until: Option<Instant> = None;
    // A reason to claim arrived (or the worker just started) and has not been acted on yet:
    // with the most claims in flight it waits for one of them to be answered.
    let mut wanted = true;
    loop {
        if shared.stop.is_cancelled() {
            // A claim already sent may have committed: its tasks are started (and released by
            // their supervisors, which see the shutdown) rather than left leased to nobody.
            while let Some(answer) = in_flight.next().await {
                if let Ok(tasks) = answer {
                    start_all(&shared, tasks);
                }
            }
            return;
        }
        if wanted && paused_until.is_none() && in_flight.claims.len() < most_in_flight {
            wanted = false;
            let now = now_millis();
            shared.forget_due_until(now);
            let free = shared.free_capacity().saturating_sub(in_flight.reserved);
            if shared.worth_claiming(free, in_flight.claims.len()) {
                // A store refuses larger claims; a worker with more capacity than that (a long
                // claim-ahead queue) fills it over several claims.
                in_flight.send(&shared, free.min(MAX_CLAIM_LIMIT), now);
                // The periodic check is for idle time: the next one is a full interval away.
                poll.reset();
            }
        }
        loop {
            let due = shared.next_due().map(instant_of);
            tokio::select! {
                _ = shared.stop.cancelled() => break,
                Some(answer) = in_flight.next(), if !in_flight.claims.is_empty() => {
                    match answer {
                        Ok(tasks) => start_all(&shared, tasks),
                        Err(error) => {
                            tracing::warn!(%error, "claim failed; retrying after the poll interval");
                            paused_until = Some(Instant::now() + poll_interval);
                        }
                    }
                    // An answer is no reason to claim again (it may have brought fewer tasks
                    // than asked because there are no more), only a chance to act on a reason
                    // that came while the most claims were in flight.
                    if wanted {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(paused_until.unwrap_or_else(Instant::now)), if paused_until.is_some() => {
                    paused_until = None;
                    wanted = true;
                    break;
                }
                _ = shared.wake.notified() => {
                    wanted = true;
                    break;
                }
                _ = poll.tick() => {
                    wanted = true;
                    break;
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    wanted = true;
                    break;
                }
                _ = shared.due_changed.notified() => continue,
            }
        }
    }
}

/// The monotonic instant just after wall-clock time `at`. One extra millisecond makes sure
/// the claim's `now` has reached `at` when the timer fires.
fn instant_of(at: UnixMillis) -> Instant {
    let wait = at.saturating_sub(now_millis()).saturating_add(1).max(0);
    Instant::now() + Duration::from_millis(wait.unsigned_abs())
}

/// Starts a claim's tasks. Every attempt is registered and takes its turn before any
/// supervisor runs, so the worker counts the whole claim as held from the moment the first of
/// its tasks starts.
fn start_all(shared: &Arc<Shared>, tasks: Vec<Task>) {
    let ready: Vec<_> = tasks
        .into_iter()
        .filter_map(|task| prepare(shared, task))
        .collect();
    for (attempt, task_type, turn) in ready {
        shared.tracker.spawn(supervisor::supervise(
            Arc::clone(shared),
            attempt,
            task_type,
            turn,
        ));
    }
}

/// Registers a claimed task's attempt and takes its turn for a slot; `None` (after handing the
/// task back) when it cannot run here.
fn prepare(shared: &Arc<Shared>, task: Task) -> Option<(Arc<Attempt>, TaskType, Turn)> {
    let Some(lease) = Lease::of(&task) else {
        tracing::error!(task_id = %task.id, "claimed task carries no lease token; the rescuer will return it");
        return None;
    };
    let Some(task_type) = shared.types.get(&task.task_type).cloned() else {
        // The claim asked only for registered types; a store that ignored the filter gets the
        // task back at once rather than holding it until the lease expires.
        tracing::error!(task_id = %task.id, task_type = %task.task_type, "claimed a task type with no handler; releasing it");
        let store = Arc::clone(&shared.store);
        shared.tracker.spawn(async move {
            if let Err(error) = store.release(&lease).await {
                tracing::warn!(task_id = %lease.task_id, %error, "release failed");
            }
        });
        return None;
    };
    tracing::info!(
        task_id = %task.id,
        task_type = %task.task_type,
        user_id = %task.user_id,
        attempt = task.attempt,
        "claimed"
    );
    let attempt = Arc::new(Attempt::new(task, lease, Arc::clone(&shared.store)));
    shared.register(Arc::clone(&attempt));
    // Taken here, in claim order, so tasks claimed ahead start oldest first.
    let turn = shared.slots.take();
    Some((attempt, task_type, turn))
}
