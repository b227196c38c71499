//! Which due tasks a fair claim takes: round-robin across users, each user's oldest due task
//! first, no user above its limit of running tasks.
//!
//! Backends feed the due tasks in due order (oldest first) to a [`FairPicker`] and stop as soon
//! as it says it has seen enough, so a claim reads only a bounded number of rows.
//!
//! Priorities: a claim walks the priority bands highest first ([`Priority::CLAIM_ORDER`]), one
//! picker per band for what is left of the claim; [`FairPicker::finish_counted`] carries each
//! user's running count (plus what this claim gave them) into the next band, so the per-user cap
//! holds across bands. A user's flood of high tasks thus gets at most its cap of workers, and
//! the other users' normal tasks take the rest.

use std::collections::HashMap;

pub use task_core::Priority;

/// The users with a running cap of their own and that cap, for [`FairPicker::with_caps`]: the
/// same statement serves SQLite and PostgreSQL. `user_limits` holds a row only for a user whose
/// limits were set, so this reads those users alone.
pub const OWN_CAPS_SQL: &str =
    "SELECT email, max_running FROM user_limits WHERE max_running IS NOT NULL";

/// Whether feeding more tasks can still change the pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Keep feeding.
    More,
    /// The user of the offered task can take no more tasks in this claim; a backend may now
    /// skip that user's remaining rows.
    UserSaturated,
    /// The pick is final: later tasks cannot be part of it.
    Done,
}

struct UserPicks<K> {
    user_id: String,
    /// How many of this user's tasks the claim may take.
    room: usize,
    picks: Vec<K>,
}

/// Builds a fair claim from due tasks offered in due order.
///
/// Seeing users in due order means seeing them in the order of their oldest due task, which is
/// the round-robin order. Once `limit` users with room have been seen, the first round alone
/// fills the claim, so nothing after can change it.
pub struct FairPicker<K> {
    limit: usize,
    max_running: u64,
    /// Users' own caps (`UserLimits::max_running`), which replace `max_running` for them.
    caps: HashMap<String, u64>,
    running: HashMap<String, u64>,
    users: Vec<UserPicks<K>>,
    position: HashMap<String, usize>,
}

impl<K> FairPicker<K> {
    /// A picker for a claim of `limit` tasks where a user may have `max_running` processing
    /// tasks and already has `running[user]`.
    pub fn new(limit: usize, max_running: u32, running: HashMap<String, u64>) -> Self {
        Self {
            limit,
            max_running: u64::from(max_running),
            caps: HashMap::new(),
            running,
            users: Vec::new(),
            position: HashMap::new(),
        }
    }

    /// The same picker where each user in `caps` may have that many processing tasks instead
    /// of the claim's `max_running` (a user's own limit, higher or lower than the default).
    /// Backends read only the users who have one of their own (see [`OWN_CAPS_SQL`]), so the
    /// cost is the number of such users, not of all users.
    pub fn with_caps(mut self, caps: &HashMap<String, u32>) -> Self {
        self.caps = caps
            .iter()
            .map(|(user, cap)| (user.clone(), u64::from(*cap)))
            .collect();
        self
    }

    /// Whether `user_id` is at its running limit and can take nothing.
    pub fn is_capped(&self, user_id: &str) -> bool {
        self.room_for(user_id) == 0
    }

    /// How many users with a running count or a cap of their own can take nothing: a backend
    /// that reads users in pages meets at most this many before `limit` users with room.
    pub fn capped_count(&self) -> usize {
        let mut capped: Vec<&String> = self
            .running
            .keys()
            .chain(self.caps.keys())
            .filter(|user| self.is_capped(user))
            .collect();
        capped.sort_unstable();
        capped.dedup();
        capped.len()
    }

    /// Whether a task of `user_id` was offered and taken already.
    pub fn knows(&self, user_id: &str) -> bool {
        self.position.contains_key(user_id)
    }

    /// How many of `user_id`'s tasks this claim may take at most.
    pub fn room(&self, user_id: &str) -> usize {
        self.room_for(user_id)
    }

    /// The users seen so far that could take more tasks, and how many more.
    pub fn wanting(&self) -> Vec<(String, usize)> {
        self.users
            .iter()
            .filter(|user| user.picks.len() < user.room)
            .map(|user| (user.user_id.clone(), user.room - user.picks.len()))
            .collect()
    }

    /// Whether the pick is final.
    pub fn is_done(&self) -> bool {
        self.limit == 0 || self.users.len() >= self.limit
    }

    /// Offers the next due task, `key`, owned by `user_id`.
    pub fn offer(&mut self, user_id: &str, key: K) -> Offer {
        if self.is_done() {
            return Offer::Done;
        }
        let index = match self.position.get(user_id) {
            Some(&index) => index,
            None => {
                let room = self.room_for(user_id);
                if room == 0 {
                    return Offer::UserSaturated;
                }
                self.position.insert(user_id.to_owned(), self.users.len());
                self.users.push(UserPicks {
                    user_id: user_id.to_owned(),
                    room,
                    picks: Vec::new(),
                });
                self.users.len() - 1
            }
        };
        let user = &mut self.users[index];
        if user.picks.len() < user.room {
            user.picks.push(key);
        }
        if self.is_done() {
            Offer::Done
        } else if self.users[index].picks.len() >= self.users[index].room {
            Offer::UserSaturated
        } else {
            Offer::More
        }
    }

    /// [`FairPicker::finish`], plus the running counts the next band's picker starts from:
    /// the counts this picker was given, with the claim's tasks added to their users.
    pub fn finish_counted(mut self) -> (Vec<K>, HashMap<String, u64>) {
        let mut running = std::mem::take(&mut self.running);
        let limit = self.limit;
        let mut queues: Vec<(String, std::vec::IntoIter<K>)> = self
            .users
            .into_iter()
            .map(|u| (u.user_id, u.picks.into_iter()))
            .collect();
        let claim = round_robin(limit, &mut queues, |user| {
            *running.entry(user.to_owned()).or_default() += 1;
        });
        (claim, running)
    }

    /// The claim: round one takes each user's oldest task in the order users were seen, round
    /// two each user's second, and so on, up to `limit`.
    pub fn finish(self) -> Vec<K> {
        let mut queues: Vec<std::vec::IntoIter<K>> = self
            .users
            .into_iter()
            .map(|u| u.picks.into_iter())
            .collect();
        let mut claim = Vec::with_capacity(self.limit);
        while claim.len() < self.limit {
            let before = claim.len();
            for queue in &mut queues {
                if claim.len() == self.limit {
                    break;
                }
                if let Some(key) = queue.next() {
                    claim.push(key);
                }
            }
            if claim.len() == before {
                break;
            }
        }
        claim
    }

    fn room_for(&self, user_id: &str) -> usize {
        let running = self.running.get(user_id).copied().unwrap_or(0);
        let cap = self.caps.get(user_id).copied().unwrap_or(self.max_running);
        let room = cap.saturating_sub(running);
        usize::try_from(room).unwrap_or(usize::MAX).min(self.limit)
    }
}

/// Takes one key per user per round, in user order, up to `limit`; `taken` hears the user of
/// each key taken.
fn round_robin<K>(
    limit: usize,
    queues: &mut [(String, std::vec::IntoIter<K>)],
    mut taken: impl FnMut(&str),
) -> Vec<K> {
    let mut claim = Vec::with_capacity(limit);
    while claim.len() < limit {
        let before = claim.len();
        for (user, queue) in queues.iter_mut() {
            if claim.len() == limit {
                break;
            }
            if let Some(key) = queue.next() {
                taken(user);
                claim.push(key);
            }
        }
        if claim.len() == before {
            break;
        }
    }
    claim
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_finish_carries_running_counts_to_the_next_band() {
        let mut high = FairPicker::new(3, 2, HashMap::from([("b".to_owned(), 1)]));
        for (user, key) in [("a", 1), ("a", 2), ("a", 3), ("b", 4)] {
            high.offer(user, key);
        }
        let (claim, running) = high.finish_counted();
        assert_eq!(claim, [1, 4, 2]);
        assert_eq!(
            running,
            HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 2)])
        );
        // Both users are at their cap, so the next band gives them nothing.
        let mut normal = FairPicker::new(1, 2, running);
        assert_eq!(normal.offer("a", 5), Offer::UserSaturated);
        assert_eq!(normal.offer("c", 6), Offer::Done);
        assert_eq!(normal.finish(), [6]);
    }

    fn check(
        limit: usize,
        max_running: u32,
        running: &[(&str, u64)],
        due: &[(&str, u32)],
        expected: &[u32],
    ) {
        let running = running.iter().map(|(u, n)| (u.to_string(), *n)).collect();
        let mut picker = FairPicker::new(limit, max_running, running);
        for (user, key) in due {
            if picker.offer(user, *key) == Offer::Done {
                break;
            }
        }
        assert_eq!(picker.finish(), expected);
    }

    #[test]
    fn round_robin_in_order_of_each_users_oldest_task() {
        let due = [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("b", 6)];
        check(4, 2, &[], &due, &[1, 4, 5, 2]);
        check(10, 2, &[], &due, &[1, 4, 5, 2, 6]);
        check(10, 5, &[], &due, &[1, 4, 5, 2, 6, 3]);
        check(2, 5, &[], &due, &[1, 4]);
    }

    #[test]
    fn users_at_their_limit_get_nothing() {
        let due = [("a", 1), ("a", 2), ("b", 3), ("b", 4)];
        check(4, 2, &[("a", 2)], &due, &[3, 4]);
        check(4, 2, &[("a", 1), ("b", 2)], &due, &[1]);
        check(0, 2, &[], &due, &[]);
    }

    #[test]
    fn offers_report_saturation_and_completion() {
        let mut picker = FairPicker::new(3, 2, HashMap::from([("c".to_owned(), 2)]));
        assert_eq!(picker.offer("a", 1), Offer::More);
        assert_eq!(picker.wanting(), [("a".to_owned(), 1)]);
        assert_eq!(picker.offer("a", 2), Offer::UserSaturated);
        assert!(picker.wanting().is_empty());
        assert!(picker.knows("a") && !picker.knows("b"));
        assert!(picker.is_capped("c") && !picker.is_capped("b"));
        assert_eq!(picker.capped_count(), 1);
        assert_eq!(picker.room("b"), 2);
        assert_eq!(picker.offer("c", 9), Offer::UserSaturated, "capped");
        assert_eq!(picker.offer("b", 3), Offer::More);
        assert_eq!(picker.offer("d", 4), Offer::Done);
        assert_eq!(picker.offer("e", 5), Offer::Done);
        assert_eq!(picker.finish(), [1, 3, 4]);
    }

    #[test]
    fn a_limit_reached_by_users_is_final() {
        let mut picker = FairPicker::new(2, 1, HashMap::new());
        assert_eq!(picker.offer("a", 1), Offer::UserSaturated);
        assert_eq!(picker.offer("b", 2), Offer::Done);
        assert_eq!(picker.offer("c", 3), Offer::Done);
        assert_eq!(picker.finish(), [1, 2]);
    }
}
