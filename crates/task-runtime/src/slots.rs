//! Handler slots: at most `concurrency` handlers run at once, and tasks claimed ahead of the
//! free slots wait for one in the order they were claimed.
//!
//! A semaphore would bound the handlers too, but its waiters queue in the order their futures
//! are first polled, which for supervisors spawned on several threads is not the claim order.
//! Here the worker loop takes each task's turn synchronously while it starts the claimed
//! tasks, so the queue is the claim order, and a freed slot goes straight to the oldest
//! waiter still queued.

use std::collections::VecDeque;
use std::sync::Mutex;

use task_core::sync::lock;
use tokio::sync::oneshot;

pub(crate) struct Slots {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Tasks claimed ahead, oldest first; a sender whose receiver is gone (the task was
    /// cancelled or released while queued) is skipped.
    waiting: VecDeque<oneshot::Sender<()>>,
}

/// A task's turn, taken when it is claimed.
pub(crate) enum Turn {
    /// A slot was free: the task starts at once.
    Now,
    /// Every slot is busy: the task waits in the queue until a slot is handed to it.
    Queued(Waiting),
}

/// A place in the queue.
pub(crate) struct Waiting(oneshot::Receiver<()>);

/// A held slot; dropping it hands the slot to the oldest waiter, or frees it.
pub(crate) struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

impl Slots {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: concurrency,
                waiting: VecDeque::new(),
            }),
        }
    }

    /// Takes a slot, or a place at the end of the queue.
    pub(crate) fn take(&self) -> Turn {
        let mut state = lock(&self.state);
        if state.free > 0 {
            state.free -= 1;
            Turn::Now
        } else {
            let (handed, waiting) = oneshot::channel();
            state.waiting.push_back(handed);
            Turn::Queued(Waiting(waiting))
        }
    }

    /// Whether a slot is idle now, so a task claimed now would start at once.
    pub(crate) fn any_free(&self) -> bool {
        lock(&self.state).free > 0
    }

    /// The slot of a task that took [`Turn::Now`].
    pub(crate) fn held(&self) -> Slot<'_> {
        Slot(self)
    }

    /// Waits for the slot handed to `waiting`.
    pub(crate) async fn wait<'a>(&'a self, waiting: &mut Waiting) -> Slot<'a> {
        match (&mut waiting.0).await {
            Ok(()) => Slot(self),
            // Senders are dropped unsent only with `self`, which outlives every waiter.
            Err(_) => std::future::pending().await,
        }
    }

    /// Leaves the queue without starting; a slot handed over meanwhile is passed on.
    pub(crate) fn leave(&self, mut waiting: Waiting) {
        waiting.0.close();
        if waiting.0.try_recv().is_ok() {
            self.give_back();
        }
    }

    fn give_back(&self) {
        let mut state = lock(&self.state);
        while let Some(next) = state.waiting.pop_front() {
            if next.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(turn: Turn) -> Waiting {
        match turn {
            Turn::Queued(waiting) => waiting,
            Turn::Now => panic!("expected to wait"),
        }
    }

    #[tokio::test]
    async fn slots_go_to_the_waiters_in_claim_order() {
        let slots = Slots::new(1);
        assert!(matches!(slots.take(), Turn::Now));
        let first_slot = slots.held();
        let mut second = queued(slots.take());
        let third = queued(slots.take());
        let mut fourth = queued(slots.take());
        assert!(!slots.any_free());
        drop(first_slot);
        let second_slot = slots.wait(&mut second).await;
        // The third leaves the queue: its turn is skipped.
        slots.leave(third);
        drop(second_slot);
        let fourth_slot = slots.wait(&mut fourth).await;
        assert!(!slots.any_free());
        drop(fourth_slot);
        assert!(slots.any_free());
    }

    #[tokio::test]
    async fn a_slot_handed_to_a_leaving_waiter_is_passed_on() {
        let slots = Slots::new(1);
        assert!(matches!(slots.take(), Turn::Now));
        let held = slots.held();
        let leaving = queued(slots.take());
        let mut next = queued(slots.take());
        drop(held);
        slots.leave(leaving);
        drop(slots.wait(&mut next).await);
        assert!(slots.any_free());
    }
}
