//! Completions that are ready together share one statement.
//!
//! A drain finishes its tasks in waves: the 64 tasks one claim brought end at about the same
//! time, and their `complete` calls reach the writer together. Each used to be a job of its
//! own in the writer's batch (a savepoint, a guarded `UPDATE … RETURNING`, a children lookup).
//! Now a completion joins a *group*: the first one of a wave queues one writer job, and every
//! completion that arrives before that job starts joins it. The job completes the whole group
//! with one `UPDATE … FROM json_each(?) … RETURNING`, the leases bound as one JSON array, and
//! releases the waiting children of everything it completed with one more statement
//! ([`RELEASE_CHILDREN`]): each child counts down by its number of parents in the group, so a
//! fan-in child that several of the group's tasks feed is written once per group, not once per
//! parent, and a fan-out parent's thousands of children are one statement, not a read and a
//! write per child through [`graph::GraphTx`] (about 50 µs of CPU per child on a loaded
//! machine, most of a 10,000-node workflow's drain: `docs/benchmarks.md`, "Workflows").
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

/// Releases the waiting children of the tasks named in the JSON array `?1`, which this group
/// has just completed: each child waits for as many parents fewer as it has in the array, and
/// at none it becomes `pending`, due no earlier than `?2`. The child is written (and published)
/// once, with one version per parent it counted down, as the rule applied parent by parent
/// leaves it and as a backend that completes one at a time (PostgreSQL, memory) numbers it.
///
/// This is [`graph::after_parent_finished`] for a `completed` parent, in one statement. A
/// completed parent satisfies every edge (`task_core::edge_satisfied`), so a completion never
/// cancels a child and the release never goes further down the graph: the rule needs no
/// walk, only the count. In SQLite every `SET` expression reads the row as it was, so
/// `status` and `run_at` compare the old `waiting_for`. `+status` keeps the planner off the
/// partial index of waiting tasks (which, without statistics, it could take to scan every
/// waiting task per group): each child is one primary-key seek. A task without children costs
/// one seek in `task_dependencies`'s primary key and writes nothing.
const RELEASE_CHILDREN: &str = concat!(
    "UPDATE background_tasks SET \
       status = CASE WHEN waiting_for <= released.parents THEN 'pending' ELSE 'waiting' END, \
       waiting_for = MAX(waiting_for - released.parents, 0), \
       run_at = CASE WHEN waiting_for <= released.parents THEN MAX(run_at, ?2) ELSE run_at END, \
       version = version + MIN(released.parents, waiting_for), updated_at = MAX(updated_at, ?2) \
     FROM (SELECT child, COUNT(*) AS parents FROM task_dependencies \
           WHERE parent IN (SELECT value FROM json_each(?1)) GROUP BY child) AS released \
     WHERE background_tasks.id = released.child AND +status = 'waiting' \
     RETURNING ",
    task_columns!()
);

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
    let mut outcomes: Vec<Option<Result<Task>>> = group.iter().map(|_| None).collect();
    let mut finished = Vec::new();
    let mut latest = 0;
    for i in first {
        let completion = &group[i];
        let Some(task) = completed.remove(completion.lease.task_id.as_str()) else {
            outcomes[i] = Some(explain(conn, completion));
            continue;
        };
        changes.push(TaskChange::Upserted(Arc::new(task.clone())));
        latest = latest.max(completion.now);
        finished.push(Value::String(task.id.as_str().to_owned()));
        outcomes[i] = Some(Ok(task));
    }
    if !finished.is_empty() {
        release_children(conn, &Value::Array(finished), latest, changes)?;
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

/// Releases the waiting children of the just completed tasks `ids` (a JSON array), with
/// [`RELEASE_CHILDREN`], and records each released child's change.
fn release_children(
    conn: &Connection,
    ids: &Value,
    now: UnixMillis,
    changes: &mut Vec<TaskChange>,
) -> Result<()> {
    let mut statement = conn
        .prepare_cached(RELEASE_CHILDREN)
        .map_err(map_sqlite_error)?;
    let released = statement
        .query_map(rusqlite::params![ids.to_string(), now], task_from_row)
        .map_err(map_sqlite_error)?;
    for child in released {
        let child = child.map_err(map_sqlite_error)?;
        changes.push(TaskChange::Upserted(Arc::new(child)));
    }
    Ok(())
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
