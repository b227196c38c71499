//! Completions that are ready together share one transaction and one statement.
//!
//! A completion used to cost its own transaction: `BEGIN`, the guarded `UPDATE`, the children
//! lookup and `COMMIT`, four round trips and one WAL flush per task, and most of the server's
//! CPU per drained task. Now `complete` joins a *group*: while one group is being written,
//! the completions that arrive wait together, and the next group completes them all with
//! one `UPDATE … FROM unnest(…) … RETURNING`, looks up in one query which of them have
//! children, releases those in the same transaction and commits once. The group size follows
//! the load: a lone completion goes out at once (the latency of the old path), 64 that end
//! together go out as one.
//!
//! Up to [`MAX_DRAINERS`] groups (and a quarter of the pool) are written at once, each on its
//! own connection, but another one starts only for [`SECOND_GROUP_AT`] completions or more: a
//! group's statement runs on one backend, and with one group in flight a fast drain was held to
//! that backend's pace while the machine stood partly idle (docs/benchmarks.md, "Round 6").
//! Concurrent groups name distinct tasks; two that release a shared child lock it in either
//! order, and a deadlock PostgreSQL breaks is `Busy` to the members of the group it rolls back,
//! which the runtime writes again.
//!
//! Fencing is the single statement's: a row changes only where its lease token matches. A
//! completion whose row did not match takes the old slow path alone afterwards
//! ([`PostgresStore::modify`], which explains why with the shared rule), and so does a task
//! named twice in one group (the statement could not tell which lease matched). A failure that
//! breaks the group's transaction is every member's error, as one write of theirs would have.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use task_core::sync::lock;
use task_core::{Task, TaskStatus, UnixMillis};
use task_store::backend::rules;
use task_store::{Lease, Result, StoreError};
use tokio::sync::oneshot;

use crate::errors::map_db;
use crate::graph::PgTx;
use crate::row::{get, task_from_row};
use crate::{sql, PostgresStore};

/// Which of the ids in `$1` are the parent of some task.
const WITH_CHILDREN: &str =
    "SELECT DISTINCT parent FROM task_dependencies WHERE parent = ANY($1::text[])";

struct Completion {
    lease: Lease,
    result: Value,
    now: UnixMillis,
    reply: oneshot::Sender<Result<Task>>,
}

/// Groups written at once at most, and at most a quarter of the pool's connections, so
/// completions never take a small pool from claims, heartbeats and the API.
const MAX_DRAINERS: usize = 4;
/// Completions waiting that are worth a second group in flight: fewer wait for the group
/// being written to commit and join the next one.
const SECOND_GROUP_AT: usize = 32;

/// The completions waiting for the next group.
pub(crate) struct Completions {
    pending: Mutex<Pending>,
    /// Groups written at once at most: [`MAX_DRAINERS`], or fewer for a small pool.
    max_drainers: usize,
}

#[derive(Default)]
struct Pending {
    group: Vec<Completion>,
    /// Tasks writing groups (at most [`MAX_DRAINERS`]); new completions wait for them.
    drainers: usize,
}

impl Pending {
    /// Whether the completions waiting make a group worth writing now: any number when no
    /// other group is in flight, else enough to pay for a second transaction.
    fn worth_a_group(&self, others_in_flight: usize) -> bool {
        !self.group.is_empty() && (others_in_flight == 0 || self.group.len() >= SECOND_GROUP_AT)
    }
}

impl Completions {
    /// The completions of a store whose pool holds `pool_size` connections.
    pub(crate) fn for_pool(pool_size: usize) -> Self {
        Self {
            pending: Mutex::default(),
            max_drainers: (pool_size / 4).clamp(1, MAX_DRAINERS),
        }
    }

    /// Queues `completion`; true when the caller must start a drainer for it.
    fn push(&self, completion: Completion) -> bool {
        let mut pending = lock(&self.pending);
        pending.group.push(completion);
        let start = pending.drainers < self.max_drainers && pending.worth_a_group(pending.drainers);
        if start {
            pending.drainers += 1;
        }
        start
    }

    /// The next group for a drainer, or `None` when it should end (and no longer counts):
    /// nothing waits, or too little for a second group while another drainer is busy (that
    /// one takes them when it is done).
    fn next_group(&self) -> Option<Vec<Completion>> {
        let mut pending = lock(&self.pending);
        if !pending.worth_a_group(pending.drainers - 1) {
            pending.drainers -= 1;
            return None;
        }
        Some(std::mem::take(&mut pending.group))
    }

    /// A drainer ended early (a panic, or the runtime dropping it): true when nobody else
    /// drains and completions wait, so the caller must start a drainer in its place.
    fn drainer_lost(&self) -> bool {
        let mut pending = lock(&self.pending);
        pending.drainers -= 1;
        let replace = pending.drainers == 0 && !pending.group.is_empty();
        if replace {
            pending.drainers += 1;
        }
        replace
    }
}

impl PostgresStore {
    /// Completes `lease`'s task with `result` in the next group; returns once that group
    /// committed and its changes are published.
    pub(crate) async fn complete_in_group(&self, lease: &Lease, result: Value) -> Result<Task> {
        let (reply, answer) = oneshot::channel();
        let start = self.inner.completions.push(Completion {
            lease: lease.clone(),
            result,
            now: task_store::backend::clock::now_millis(),
            reply,
        });
        if start {
            // Detached: a caller that stops waiting does not stop its group.
            let store = self.clone();
            tokio::spawn(async move { store.drain_completions().await });
        }
        answer.await.map_err(|_| {
            StoreError::Backend("the completion stopped before it finished (a panic?)".to_owned())
        })?
    }

    async fn drain_completions(self) {
        let completions = Arc::clone(&self.inner.completions);
        let mut guard = DrainGuard {
            store: self.clone(),
            ended: false,
        };
        while let Some(group) = completions.next_group() {
            self.write_group(group).await;
        }
        guard.ended = true;
    }

    async fn write_group(&self, group: Vec<Completion>) {
        let mut seen = HashSet::new();
        let (first, again): (Vec<Completion>, Vec<Completion>) = group
            .into_iter()
            .partition(|c| seen.insert(c.lease.task_id.as_str().to_owned()));
        let mut unmatched = Vec::new();
        match self.complete_group(&first).await {
            Ok(outcomes) => {
                for (completion, outcome) in first.into_iter().zip(outcomes) {
                    match outcome {
                        Some(task) => {
                            let _ = completion.reply.send(Ok(task));
                        }
                        None => unmatched.push(completion),
                    }
                }
            }
            Err(error) => {
                for completion in first {
                    let _ = completion.reply.send(Err(error.clone()));
                }
            }
        }
        for completion in unmatched.into_iter().chain(again) {
            let Completion {
                lease,
                result,
                now,
                reply,
            } = completion;
            let outcome = self
                .modify(&lease.task_id, StoreError::LeaseLost, |task| {
                    rules::complete(task, &lease, result, now).map(Some)
                })
                .await;
            let _ = reply.send(outcome);
        }
    }

    /// Writes one group (distinct tasks) in one transaction and publishes it. Each outcome
    /// is the completed task, or `None` when its lease did not match.
    async fn complete_group(&self, group: &[Completion]) -> Result<Vec<Option<Task>>> {
        let ids: Vec<&str> = group.iter().map(|c| c.lease.task_id.as_str()).collect();
        let tokens: Vec<&str> = group.iter().map(|c| c.lease.token.as_str()).collect();
        let results: Vec<&Value> = group.iter().map(|c| &c.result).collect();
        let ats: Vec<i64> = group.iter().map(|c| c.now).collect();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let statement = transaction
            .prepare_cached(&sql::COMPLETE_GROUP)
            .await
            .map_err(map_db)?;
        let rows = transaction
            .query(&statement, &[&ids, &tokens, &results, &ats])
            .await
            .map_err(map_db)?;
        let mut completed: HashMap<String, Task> = rows
            .iter()
            .map(|row| task_from_row(row).map(|task| (task.id.as_str().to_owned(), task)))
            .collect::<Result<_>>()?;
        let parents: HashSet<String> = if completed.is_empty() {
            HashSet::new()
        } else {
            let done: Vec<&str> = completed.keys().map(String::as_str).collect();
            let lookup = transaction
                .prepare_cached(WITH_CHILDREN)
                .await
                .map_err(map_db)?;
            let rows = transaction.query(&lookup, &[&done]).await.map_err(map_db)?;
            rows.iter()
                .map(|row| get::<&str>(row, 0).map(str::to_owned))
                .collect::<Result<_>>()?
        };
        let mut graph = PgTx::new(&transaction);
        let mut outcomes = Vec::with_capacity(group.len());
        for completion in group {
            let Some(task) = completed.remove(completion.lease.task_id.as_str()) else {
                outcomes.push(None);
                continue;
            };
            graph.changed.push(task.clone());
            if parents.contains(task.id.as_str()) {
                graph
                    .propagate(TaskStatus::Processing, &task, completion.now)
                    .await?;
            }
            outcomes.push(Some(task));
        }
        let changed = std::mem::take(&mut graph.changed);
        drop(graph);
        self.commit(transaction, &changed).await?;
        Ok(outcomes)
    }
}

/// Hands the waiting completions to a new drainer if this one ends early (a panic, or the
/// runtime dropping it), so no caller is left waiting for a group that never comes.
struct DrainGuard {
    store: PostgresStore,
    /// The drainer ended normally: `next_group` already stopped counting it.
    ended: bool,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if !self.ended && self.store.inner.completions.drainer_lost() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let store = self.store.clone();
                handle.spawn(async move { store.drain_completions().await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use task_core::TaskId;

    fn completion() -> Completion {
        Completion {
            lease: Lease {
                task_id: TaskId::generate(0).expect("an id"),
                token: "token".to_owned(),
            },
            result: Value::Null,
            now: 0,
            reply: oneshot::channel().0,
        }
    }

    #[test]
    fn a_lone_completion_starts_a_group_at_once() {
        let completions = Completions::for_pool(16);
        assert!(
            completions.push(completion()),
            "no group in flight: start one"
        );
        assert!(
            !completions.push(completion()),
            "one is starting: wait for it"
        );
        assert_eq!(completions.next_group().map(|g| g.len()), Some(2));
        assert!(
            completions.next_group().is_none(),
            "nothing left: the drainer ends"
        );
        assert!(
            completions.push(completion()),
            "no drainer any more: start one"
        );
    }

    #[test]
    fn a_second_group_goes_out_only_for_enough_completions() {
        let completions = Completions::for_pool(16);
        assert!(completions.push(completion()));
        let first = completions.next_group().expect("the first group");
        assert_eq!(first.len(), 1);
        // The first group is being written: the next ones wait, until there are enough to pay
        // for a transaction of their own.
        for _ in 1..SECOND_GROUP_AT {
            assert!(!completions.push(completion()));
        }
        assert!(completions.push(completion()), "enough for a second group");
        assert_eq!(
            completions.next_group().map(|g| g.len()),
            Some(SECOND_GROUP_AT)
        );
        // Two drainers: a few completions are left to the one that finishes first …
        assert!(!completions.push(completion()));
        assert!(
            completions.next_group().is_none(),
            "too few for a second group"
        );
        // … which takes any number once it is the only one.
        assert_eq!(completions.next_group().map(|g| g.len()), Some(1));
        assert!(completions.next_group().is_none());
        assert_eq!(lock(&completions.pending).drainers, 0);
    }

    #[test]
    fn groups_in_flight_are_capped() {
        let completions = Completions::for_pool(16);
        let mut started = 0;
        for _ in 0..SECOND_GROUP_AT * (MAX_DRAINERS + 2) {
            if completions.push(completion()) {
                started += 1;
                assert!(completions.next_group().is_some());
            }
        }
        assert_eq!(started, MAX_DRAINERS);
    }

    #[test]
    fn a_small_pool_gets_fewer_groups_in_flight() {
        for (pool_size, most) in [(1, 1), (4, 1), (8, 2), (16, 4), (64, 4)] {
            let completions = Completions::for_pool(pool_size);
            let mut started = 0;
            for _ in 0..SECOND_GROUP_AT * (MAX_DRAINERS + 2) {
                if completions.push(completion()) {
                    started += 1;
                    assert!(completions.next_group().is_some());
                }
            }
            assert_eq!(started, most, "pool of {pool_size}");
        }
    }

    #[test]
    fn a_lost_drainer_is_replaced_only_when_nobody_else_drains() {
        let completions = Completions::for_pool(16);
        assert!(completions.push(completion()));
        assert!(!completions.push(completion()));
        assert!(completions.drainer_lost(), "the only drainer: replace it");
        assert_eq!(lock(&completions.pending).drainers, 1);
        assert_eq!(completions.next_group().map(|g| g.len()), Some(2));
        // A second drainer starts beside this one, then this one is lost: the other drains.
        for _ in 0..SECOND_GROUP_AT {
            completions.push(completion());
        }
        assert_eq!(lock(&completions.pending).drainers, 2);
        assert!(!completions.drainer_lost(), "another drainer is at work");
        assert_eq!(
            completions.next_group().map(|g| g.len()),
            Some(SECOND_GROUP_AT)
        );
        assert!(completions.next_group().is_none());
        assert_eq!(lock(&completions.pending).drainers, 0);
    }
}
