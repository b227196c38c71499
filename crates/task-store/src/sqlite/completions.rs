//! Completions that are ready together share one statement.
//!
//! A drain finishes its tasks in waves: the 64 tasks one claim brought end at about the same
//! time, and their `complete` calls reach the writer together. Each used to be a job of its
//! own in the writer's batch (a savepoint, a guarded `UPDATE … RETURNING`, a children lookup).
//! Now a completion joins a *group*: the first one of a wave queues one writer job, and every
//! completion that arrives before that job starts joins it. The job completes the whole group
//! with one `UPDATE … FROM json_each(?) … RETURNING`, the leases bound as one JSON array, and
//! looks up in one query which of the completed tasks have children to release. Those children
//! are released after the whole group (`graph::propagate_finished`), so a fan-in child that
//! several of the group's tasks feed is read and rewritten once per group, not once per parent.
//!
//! Fencing is the per-row statement's: a row changes only where its lease token still
//! matches. A completion whose row did not match is explained alone, by the shared rule on the
//! stored task (lease lost, already finished, …), exactly as the single statement did. The
//! group runs in one savepoint when it shares the transaction with other jobs, so a failure
//! that breaks the group (an error while releasing children) undoes the group alone and every
//! member gets that error. Changes are recorded in the group's order: the completed tasks, then
//! what they released, so a released child always follows its parents on the feed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use task_core::sync::lock;
use task_core::{Task, TaskStatus, UnixMillis};
use tokio::sync::oneshot;

use super::error::map_sqlite_error;
use super::graph::SqliteTx;
use super::rows::{select_task, task_columns, task_from_row};
use super::writer::{execute, Job, Ran, Writer};
use crate::backend::graph;
use crate::backend::rules;
use crate::{Lease, Result, StoreError, TaskChange};

/// Completes every row named in the JSON array `?1` of `[id, token, result text, now]` whose
/// lease still matches.
const COMPLETE_GROUP: &str = concat!(
    "UPDATE background_tasks SET status = 'completed', result = done.result, \
     progress = total, error = NULL, completed_at = done.at, lease_owner = NULL, \
     lease_token = NULL, lease_expires_at = NULL, version = version + 1, \
     updated_at = MAX(updated_at, done.at) \
     FROM (SELECT value ->> 0 AS done_id, value ->> 1 AS token, value ->> 2 AS result, \
                  value ->> 3 AS at \
           FROM json_each(?1)) AS done \
     WHERE background_tasks.id = done.done_id AND status = 'processing' \
       AND lease_token = done.token \
     RETURNING ",
    task_columns!()
);

/// One completion, for a task named twice in a group.
const COMPLETE_ONE: &str = concat!(
    "UPDATE background_tasks SET status = 'completed', result = ?3, \
     progress = total, error = NULL, completed_at = ?4, lease_owner = NULL, \
     lease_token = NULL, lease_expires_at = NULL, version = version + 1, \
     updated_at = MAX(updated_at, ?4) \
     WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 \
     RETURNING ",
    task_columns!()
);

/// Which of the ids in the JSON array `?1` are the parent of some task, off the primary key
/// of `task_dependencies`.
const WITH_CHILDREN: &str = "SELECT DISTINCT parent FROM task_dependencies \
     WHERE parent IN (SELECT value FROM json_each(?1))";

/// One caller's completion, waiting for its group.
struct Completion {
    lease: Lease,
    result: Value,
    result_text: String,
    now: UnixMillis,
    reply: oneshot::Sender<Result<Task>>,
}

/// The completions waiting for the writer job that will run them.
#[derive(Default)]
pub(super) struct Completions {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    group: Vec<Completion>,
    /// A writer job is queued that has not taken the group yet.
    queued: bool,
}

impl Completions {
    /// Completes `lease`'s task with `result`, in the next group the writer runs; returns once
    /// that group committed and its changes are published.
    pub(super) async fn complete(
        self: &Arc<Self>,
        writer: &Arc<Writer>,
        lease: Lease,
        result: Value,
        result_text: String,
        now: UnixMillis,
    ) -> Result<Task> {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut pending = lock(&self.pending);
            pending.group.push(Completion {
                lease,
                result,
                result_text,
                now,
                reply,
            });
            !std::mem::replace(&mut pending.queued, true)
        };
        if first {
            writer.submit(Box::new(GroupJob {
                completions: Arc::clone(self),
            }));
        }
        answer.await.map_err(|_| {
            StoreError::Backend("the completion stopped before it finished (a panic?)".to_owned())
        })?
    }

    /// Takes the group; later completions start the next one.
    fn take(&self) -> Vec<Completion> {
        let mut pending = lock(&self.pending);
        pending.queued = false;
        std::mem::take(&mut pending.group)
    }
}

/// The writer job of one group.
struct GroupJob {
    completions: Arc<Completions>,
}

impl Job for GroupJob {
    fn run(self: Box<Self>, conn: &Connection, savepoint: bool) -> Result<Ran, StoreError> {
        let group = self.completions.take();
        if group.is_empty() {
            return Ok(Ran::nothing());
        }
        if savepoint {
            execute(conn, "SAVEPOINT completions")?;
        }
        let mut changes = Vec::new();
        match complete_group(conn, &group, &mut changes) {
            Ok(outcomes) => {
                if savepoint {
                    execute(conn, "RELEASE completions")?;
                }
                let succeeded = outcomes.iter().any(Result::is_ok);
                Ok(Ran {
                    succeeded,
                    changes,
                    answer: Box::new(move |commit_error| {
                        for (completion, outcome) in group.into_iter().zip(outcomes) {
                            let outcome = match (&commit_error, outcome) {
                                (Some(error), Ok(_)) => Err(error.clone()),
                                (_, outcome) => outcome,
                            };
                            // A caller that stopped waiting does not need the answer.
                            let _ = completion.reply.send(outcome);
                        }
                    }),
                })
            }
            Err(error) => {
                if savepoint {
                    execute(conn, "ROLLBACK TO completions")?;
                    execute(conn, "RELEASE completions")?;
                } else if conn.is_autocommit() {
                    // SQLite rolled back the whole transaction (a full disk, say).
                    answer_all(group, &error);
                    return Err(error);
                }
                Ok(Ran {
                    succeeded: false,
                    changes: Vec::new(),
                    answer: Box::new(move |_| answer_all(group, &error)),
                })
            }
        }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        answer_all(self.completions.take(), &error);
    }
}

fn answer_all(group: Vec<Completion>, error: &StoreError) {
    for completion in group {
        let _ = completion.reply.send(Err(error.clone()));
    }
}

/// Runs the group's statement and releases the children of what it completed. The outer
/// `Err` is a failure that breaks the whole group; the inner ones are per completion.
fn complete_group(
    conn: &Connection,
    group: &[Completion],
    changes: &mut Vec<TaskChange>,
) -> Result<Vec<Result<Task>>> {
    // A task named twice (a stale worker and the current one, say) is completed by one
    // statement per row after the group, in arrival order: inside the group's statement the
    // returned row could not tell which of the two leases matched.
    let mut seen = HashSet::new();
    let (first, again): (Vec<usize>, Vec<usize>) =
        (0..group.len()).partition(|&i| seen.insert(group[i].lease.task_id.as_str()));
    let rows = Value::Array(
        first
            .iter()
            .map(|&i| {
                let c = &group[i];
                serde_json::json!([
                    c.lease.task_id.as_str(),
                    c.lease.token,
                    c.result_text,
                    c.now
                ])
            })
            .collect(),
    );
    let mut completed: HashMap<String, Task> = conn
        .prepare_cached(COMPLETE_GROUP)
        .and_then(|mut statement| {
            statement
                .query_map([rows.to_string()], task_from_row)?
                .map(|task| task.map(|task| (task.id.as_str().to_owned(), task)))
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(map_sqlite_error)?;
    let parents = with_children(conn, completed.keys())?;
    let mut outcomes: Vec<Option<Result<Task>>> = group.iter().map(|_| None).collect();
    let mut finished_parents = Vec::new();
    let mut latest = 0;
    for i in first {
        let completion = &group[i];
        let Some(task) = completed.remove(completion.lease.task_id.as_str()) else {
            outcomes[i] = Some(explain(conn, completion));
            continue;
        };
        changes.push(TaskChange::Upserted(Arc::new(task.clone())));
        if parents.contains(task.id.as_str()) {
            latest = latest.max(completion.now);
            finished_parents.push((TaskStatus::Processing, task.clone()));
        }
        outcomes[i] = Some(Ok(task));
    }
    if !finished_parents.is_empty() {
        // A fan-in child shared by several of the group's tasks is written once.
        let mut tx = SqliteTx {
            conn,
            changes: &mut *changes,
        };
        graph::propagate_finished(&mut tx, &finished_parents, latest)?;
    }
    for i in again {
        outcomes[i] = Some(complete_one(conn, &group[i], changes)?);
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// One completion with its own guarded statement; the outer `Err` breaks the group, as in
/// [`complete_group`].
fn complete_one(
    conn: &Connection,
    completion: &Completion,
    changes: &mut Vec<TaskChange>,
) -> Result<Result<Task>> {
    let lease = &completion.lease;
    let updated = conn
        .prepare_cached(COMPLETE_ONE)
        .and_then(|mut statement| {
            statement
                .query_row(
                    rusqlite::params![
                        lease.task_id.as_str(),
                        lease.token,
                        completion.result_text,
                        completion.now
                    ],
                    task_from_row,
                )
                .optional()
        })
        .map_err(map_sqlite_error)?;
    let Some(task) = updated else {
        return Ok(explain(conn, completion));
    };
    changes.push(TaskChange::Upserted(Arc::new(task.clone())));
    let mut tx = SqliteTx { conn, changes };
    graph::propagate(&mut tx, TaskStatus::Processing, &task, completion.now)?;
    Ok(Ok(task))
}

/// The ids among `ids` that have children.
fn with_children<'a>(
    conn: &Connection,
    ids: impl Iterator<Item = &'a String>,
) -> Result<HashSet<String>> {
    let ids = Value::Array(ids.map(|id| Value::String(id.clone())).collect());
    conn.prepare_cached(WITH_CHILDREN)
        .and_then(|mut statement| {
            statement
                .query_map([ids.to_string()], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(map_sqlite_error)
}

/// Why a completion's row did not match: the shared rule applied to the stored task.
fn explain(conn: &Connection, completion: &Completion) -> Result<Task> {
    let lease = &completion.lease;
    let stored = select_task(conn, &lease.task_id)?.ok_or(StoreError::LeaseLost)?;
    match rules::complete(&stored, lease, completion.result.clone(), completion.now) {
        Err(error) => Err(error),
        Ok(_) => Err(StoreError::Backend(format!(
            "task {} matched no row although the rules allow the change",
            lease.task_id
        ))),
    }
}
