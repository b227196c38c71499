//! Completions that are ready together share one transaction and one statement.
//!
//! A completion used to cost its own transaction: `BEGIN`, the guarded `UPDATE`, the children
//! lookup and `COMMIT`, four round trips and one WAL flush per task, and most of the server's
//! CPU per drained task. Now `complete` joins a *group*: while one group is being written,
//! the completions that arrive wait together, and the next group completes them all with
//! one `UPDATE … FROM unnest(…) … RETURNING`, looks up in one query which of them have
//! children, releases those in the same transaction and commits once. One group is in flight
//! per store at a time, so the group size follows the load: a lone completion goes out at
//! once (the latency of the old path), 64 that end together go out as one.
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

/// The completions waiting for the next group.
#[derive(Default)]
pub(crate) struct Completions {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    group: Vec<Completion>,
    /// A task is writing groups; new completions wait for it.
    draining: bool,
}

impl Completions {
    /// The next group, or `None` (and no drainer any more) when nothing waits.
    fn next_group(&self) -> Option<Vec<Completion>> {
        let mut pending = lock(&self.pending);
        if pending.group.is_empty() {
            pending.draining = false;
            return None;
        }
        Some(std::mem::take(&mut pending.group))
    }
}

impl PostgresStore {
    /// Completes `lease`'s task with `result` in the next group; returns once that group
    /// committed and its changes are published.
    pub(crate) async fn complete_in_group(&self, lease: &Lease, result: Value) -> Result<Task> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut pending = lock(&self.inner.completions.pending);
            pending.group.push(Completion {
                lease: lease.clone(),
                result,
                now: task_store::backend::clock::now_millis(),
                reply,
            });
            !std::mem::replace(&mut pending.draining, true)
        };
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
        let _guard = DrainGuard {
            store: self.clone(),
        };
        while let Some(group) = completions.next_group() {
            self.write_group(group).await;
        }
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
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        let restart = {
            let mut pending = lock(&self.store.inner.completions.pending);
            pending.draining = !pending.group.is_empty();
            pending.draining
        };
        if restart {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let store = self.store.clone();
                handle.spawn(async move { store.drain_completions().await });
            }
        }
    }
}
