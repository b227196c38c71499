//! The worker loop: claims due tasks up to the free slots (and the claim-ahead queue) and hands
//! each to a supervisor, which waits for a slot when the task was claimed ahead.
//!
//! It claims when it starts, when the feed shows a new due task, when a slot frees, when a
//! known delayed task falls due, and on the poll tick (for tasks it cannot hear about, such as
//! those created by another process). Each wake-up costs at most one claim query, whatever
//! number of tasks it brings.

use std::sync::Arc;
use std::time::Duration;

use task_core::{Task, UnixMillis};
use task_store::Lease;
use tokio::time::{Instant, MissedTickBehavior};

use crate::clock::now_millis;
use crate::context::Attempt;
use crate::shared::Shared;
use crate::supervisor;

/// Claims and starts tasks until shutdown begins.
pub(crate) async fn run(shared: Arc<Shared>) {
    let poll_interval = shared.config.poll_interval;
    let mut poll = tokio::time::interval(poll_interval);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if shared.stop.is_cancelled() {
            return;
        }
        let now = now_millis();
        shared.forget_due_until(now);
        let free = shared.free_capacity();
        if shared.worth_claiming(free) {
            match shared.store.claim(&shared.claim_request(free, now)).await {
                Ok(tasks) => {
                    for task in tasks {
                        start(&shared, task);
                    }
                }
                Err(error) => {
                    // A failing database must not turn every wake-up into a query storm.
                    tracing::warn!(%error, "claim failed; retrying after the poll interval");
                    tokio::select! {
                        _ = shared.stop.cancelled() => return,
                        _ = tokio::time::sleep(poll_interval) => continue,
                    }
                }
            }
            // The periodic check is for idle time: the next one is a full interval away.
            poll.reset();
        }
        loop {
            let due = shared.next_due().map(instant_of);
            tokio::select! {
                _ = shared.stop.cancelled() => return,
                _ = shared.wake.notified() => break,
                _ = poll.tick() => break,
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => break,
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

fn start(shared: &Arc<Shared>, task: Task) {
    let Some(lease) = Lease::of(&task) else {
        tracing::error!(task_id = %task.id, "claimed task carries no lease token; the rescuer will return it");
        return;
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
        return;
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
    shared.tracker.spawn(supervisor::supervise(
        Arc::clone(shared),
        attempt,
        task_type,
        turn,
    ));
}
