//! The per-user cap on open live streams: a stream holds a [`StreamSlot`] for as long as it
//! lives, and a user with every slot taken gets 429.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

// The map stays consistent even if a holder panicked (every update is a single step), so a
// poisoned lock is safe to keep using.
use task_core::sync::lock;

/// Counts open streams per user.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    open: Arc<Mutex<HashMap<String, usize>>>,
    max_per_user: usize,
}

impl StreamSlots {
    /// Allows `max_per_user` open streams per user.
    pub fn new(max_per_user: usize) -> Self {
        Self {
            open: Arc::default(),
            max_per_user,
        }
    }

    /// Takes a slot for `user`, or `None` when they already hold the maximum.
    pub fn try_acquire(&self, user: &str) -> Option<StreamSlot> {
        let mut open = lock(&self.open);
        let count = open.entry(user.to_owned()).or_default();
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            open: Arc::clone(&self.open),
            user: user.to_owned(),
        })
    }

    /// How many streams `user` holds open.
    #[cfg(test)]
    pub fn open_for(&self, user: &str) -> usize {
        lock(&self.open).get(user).copied().unwrap_or(0)
    }
}

/// A held slot; dropping it (when the stream ends) frees it.
#[derive(Debug)]
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_per_user_and_freed_on_drop() {
        let slots = StreamSlots::new(2);
        let a1 = slots.try_acquire("a").unwrap();
        let _a2 = slots.try_acquire("a").unwrap();
        assert!(slots.try_acquire("a").is_none());
        let _b = slots.try_acquire("b").unwrap();
        assert_eq!(slots.open_for("a"), 2);
        drop(a1);
        assert_eq!(slots.open_for("a"), 1);
        assert!(slots.try_acquire("a").is_some());
    }
}
