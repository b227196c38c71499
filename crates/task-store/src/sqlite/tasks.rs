//! [`TaskStore`] for [`SqliteStore`].
//!
//! The hot worker writes (heartbeat, progress, complete) are single guarded `UPDATE … RETURNING`
//! statements; when the guard matches no row, the shared rules explain why (lease lost,
//! progress out of range, …). The rarer transitions read the row, apply the shared rules and
//! write it back, all inside one `BEGIN IMMEDIATE` transaction.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use task_core::{Dependency, NewTask, NewWorkflow, Task, TaskId, TaskStatus, UnixMillis, Workflow};

use super::error::map_sqlite_error;
use super::graph::SqliteTx;
use super::rows::{insert_task, json_text, select_task, task_columns, task_from_row};
use super::{claim, list, search_index, SqliteStore};
use crate::backend::clock::now_millis;
use crate::backend::graph::{self, GraphTx};
use crate::backend::guarded;
use crate::backend::rules;
use crate::{
    ChangeReceiver, ClaimRequest, CreateGuard, Failure, Guarded, GuardedWorkflow, IdempotencyClaim,
    Lease, ListQuery, Result, StatusCount, StoreError, TaskChange, TaskPage, TaskStore,
};

/// Deletes the oldest finished tasks; SQLite reads them off the `completed_at` index. Once
/// analytics folding has begun, only tasks the fold watermark has passed.
pub(super) const PURGE_FINISHED: &str = "DELETE FROM background_tasks WHERE rowid IN ( \
         SELECT rowid FROM background_tasks \
         WHERE completed_at < ?1 AND status IN ('completed', 'failed', 'cancelled') \
         AND completed_at < coalesce((SELECT completed_at FROM analytics_watermark), ?1) \
         ORDER BY completed_at, rowid LIMIT ?2) \
     RETURNING id, user_id";

/// Spelled like the partial index's condition, so SQLite uses that index.
// Two counts, so each half can use an index of its own: the partial index of pending and
// processing tasks, and for the (few) waiting tasks whatever index a status filter has. One
// `status IN ('waiting', 'pending', 'processing')` would imply neither partial index and
// read the user's whole history instead.
pub(super) const COUNT_UNFINISHED: &str = "SELECT \
     (SELECT COUNT(*) FROM background_tasks \
      WHERE status IN ('pending', 'processing') AND user_id = ?1) + \
     (SELECT COUNT(*) FROM background_tasks WHERE status = 'waiting' AND user_id = ?1)";

/// Tasks per type and status, read from idx_background_tasks_type_status alone, in its order
/// (`created_at >= 0` holds for every task; it names that partial index's condition).
pub(super) const COUNTS: &str = "SELECT task_type, status, COUNT(*) FROM background_tasks \
     WHERE created_at >= 0 GROUP BY task_type, status";

/// Processing tasks whose lease ran out, off the lease-expiry index, in its order (expiry, then
/// user: migration `0013_running_per_user`).
pub(super) const EXPIRED_LEASES: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM background_tasks WHERE status = 'processing' AND lease_expires_at < ?1 \
     ORDER BY lease_expires_at, user_id, rowid"
);

fn upserted(task: &Task) -> TaskChange {
    TaskChange::Upserted(Arc::new(task.clone()))
}

/// Reads task `id`, applies `change`, writes the result, carries it to the task's children
/// (see `backend::graph`) and records every change for publishing. A missing task fails with
/// `missing`. It may write several rows, so it runs in a savepoint ([`SqliteStore::write`]).
fn read_modify_write(
    conn: &Connection,
    id: &TaskId,
    missing: StoreError,
    changes: &mut Vec<TaskChange>,
    change: impl FnOnce(&Task) -> Result<Task>,
) -> Result<Task> {
    let task = select_task(conn, id)?.ok_or(missing)?;
    let next = change(&task)?;
    let mut tx = SqliteTx { conn, changes };
    tx.save(&next)?;
    graph::propagate(&mut tx, task.status, &next, next.updated_at)?;
    Ok(next)
}

/// Runs a guarded `UPDATE … RETURNING` for `lease`. When the guard matched no row, `rule` (the
/// same change as a shared rule) is applied to the stored task to say why.
fn guarded_update(
    conn: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    lease: &Lease,
    rule: impl FnOnce(&Task) -> Result<Task>,
) -> Result<Task> {
    let updated = conn
        .prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, task_from_row).optional())
        .map_err(map_sqlite_error)?;
    if let Some(task) = updated {
        return Ok(task);
    }
    let stored = select_task(conn, &lease.task_id)?.ok_or(StoreError::LeaseLost)?;
    match rule(&stored) {
        Err(error) => Err(error),
        Ok(_) => Err(StoreError::Backend(format!(
            "task {} matched no row although the rules allow the change",
            lease.task_id
        ))),
    }
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create(&self, new: NewTask) -> Result<Task> {
        if !new.depends_on.is_empty() {
            let mut created = self.create_many(vec![new]).await?;
            return created
                .pop()
                .ok_or_else(|| StoreError::Backend("nothing was created".to_owned()));
        }
        let task = rules::new_task(new, now_millis())?;
        self.write_one_statement(move |conn, changes| {
            insert_task(conn, &task)?;
            changes.push(upserted(&task));
            Ok(task)
        })
        .await
    }

    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>> {
        let now = now_millis();
        if new.iter().any(|new| !new.depends_on.is_empty()) {
            return self
                .write(move |conn, changes| {
                    graph::create_tasks(&mut SqliteTx { conn, changes }, new, now)
                })
                .await;
        }
        let tasks = new
            .into_iter()
            .map(|new| rules::new_task(new, now))
            .collect::<Result<Vec<_>>>()?;
        if tasks.is_empty() {
            return Ok(tasks);
        }
        self.write(move |conn, changes| {
            for task in &tasks {
                insert_task(conn, task)?;
                changes.push(upserted(task));
            }
            Ok(tasks)
        })
        .await
    }

    async fn create_workflow(&self, workflow: NewWorkflow) -> Result<(Workflow, Vec<Task>)> {
        let now = now_millis();
        workflow.plan()?;
        self.write(move |conn, changes| {
            graph::create_workflow(&mut SqliteTx { conn, changes }, workflow, now)
        })
        .await
    }

    async fn get_workflow(&self, id: &str) -> Result<Workflow> {
        let id = id.to_owned();
        self.read(move |conn| super::graph::workflow(conn, &id))
            .await
    }

    async fn dependencies(&self, id: &TaskId) -> Result<Vec<Dependency>> {
        let id = id.clone();
        self.read(move |conn| super::graph::dependencies(conn, &id))
            .await
    }

    async fn create_guarded(&self, new: NewTask, guard: CreateGuard) -> Result<Guarded> {
        // Without a key there is nothing to look up or record: a plain creation, whose single
        // INSERT needs no savepoint in a shared commit (in the HTTP creation bench's profile,
        // every `POST /api/tasks` paid the savepoint's sub-journal page copies).
        if guard.idempotency.is_none() && guard.unique_key.is_none() {
            return self.create(new).await.map(Guarded::Created);
        }
        let now = now_millis();
        self.write(move |conn, changes| {
            guarded::create_guarded(&mut SqliteTx { conn, changes }, new, &guard, now)
        })
        .await
    }

    async fn create_workflow_guarded(
        &self,
        workflow: NewWorkflow,
        claim: IdempotencyClaim,
    ) -> Result<GuardedWorkflow> {
        let now = now_millis();
        workflow.plan()?;
        self.write(move |conn, changes| {
            guarded::create_workflow_guarded(&mut SqliteTx { conn, changes }, workflow, &claim, now)
        })
        .await
    }

    async fn get(&self, id: &TaskId) -> Result<Task> {
        let id = id.clone();
        self.read(move |conn| select_task(conn, &id)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage> {
        query.validate()?;
        let query = query.clone();
        self.read(move |conn| list::list(conn, &query)).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Task>> {
        rules::validate_claim(request)?;
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let request = request.clone();
        self.write_one_statement(move |conn, changes| claim::claim(conn, &request, changes))
            .await
    }

    async fn heartbeat(&self, lease: &Lease, lease_expires_at: UnixMillis) -> Result<Task> {
        let lease = lease.clone();
        // A renewal is bookkeeping: committed, but not versioned and not published.
        self.write_one_statement(move |conn, _changes| {
            guarded_update(
                conn,
                concat!(
                    "UPDATE background_tasks SET lease_expires_at = ?3 \
                     WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 \
                     RETURNING ",
                    task_columns!()
                ),
                rusqlite::params![lease.task_id.as_str(), lease.token, lease_expires_at],
                &lease,
                |task| rules::heartbeat(task, &lease, lease_expires_at),
            )
        })
        .await
    }

    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> Result<Task> {
        rules::validate_description(description.as_deref())?;
        let lease = lease.clone();
        let now = now_millis();
        self.write_one_statement(move |conn, changes| {
            let task = guarded_update(
                conn,
                concat!(
                    "UPDATE background_tasks SET progress = ?3, \
                     description = COALESCE(?4, description), version = version + 1, \
                     updated_at = MAX(updated_at, ?5) \
                     WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 \
                       AND ?3 >= progress AND ?3 <= total \
                     RETURNING ",
                    task_columns!()
                ),
                rusqlite::params![
                    lease.task_id.as_str(),
                    lease.token,
                    progress,
                    description,
                    now
                ],
                &lease,
                |task| rules::update_progress(task, &lease, progress, description.clone(), now),
            )?;
            changes.push(upserted(&task));
            Ok(task)
        })
        .await
    }

    async fn complete(&self, lease: &Lease, result: Value) -> Result<Task> {
        // Completions that reach the writer together share one statement (`completions`).
        let result_text = json_text(&result)?;
        let inner = &self.inner;
        inner
            .completions
            .complete(
                &inner.writer,
                lease.clone(),
                result,
                result_text,
                now_millis(),
            )
            .await
    }

    async fn fail(&self, lease: &Lease, failure: Failure) -> Result<Task> {
        let lease = lease.clone();
        let now = now_millis();
        self.write(move |conn, changes| {
            read_modify_write(
                conn,
                &lease.task_id,
                StoreError::LeaseLost,
                changes,
                |task| rules::fail(task, &lease, failure, now),
            )
        })
        .await
    }

    async fn request_cancel(&self, id: &TaskId) -> Result<Task> {
        let id = id.clone();
        let now = now_millis();
        self.write(move |conn, changes| {
            let task = select_task(conn, &id)?.ok_or(StoreError::NotFound)?;
            match rules::request_cancel(&task, now)? {
                Some(next) => {
                    let mut tx = SqliteTx { conn, changes };
                    tx.save(&next)?;
                    graph::propagate(&mut tx, task.status, &next, now)?;
                    Ok(next)
                }
                None => Ok(task),
            }
        })
        .await
    }

    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> Result<Task> {
        if lease.is_some_and(|lease| lease.task_id != *id) {
            return Err(StoreError::LeaseLost);
        }
        let id = id.clone();
        let lease = lease.cloned();
        let now = now_millis();
        self.write(move |conn, changes| {
            let missing = if lease.is_some() {
                StoreError::LeaseLost
            } else {
                StoreError::NotFound
            };
            read_modify_write(conn, &id, missing, changes, |task| {
                rules::cancel(task, lease.as_ref(), now)
            })
        })
        .await
    }

    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> Result<Task> {
        let id = id.clone();
        let now = now_millis();
        self.write(move |conn, changes| {
            let task = select_task(conn, &id)?.ok_or(StoreError::NotFound)?;
            let mut tx = SqliteTx { conn, changes };
            let next = graph::retry(&mut tx, &task, run_at, now)?;
            tx.save(&next)?;
            graph::propagate(&mut tx, task.status, &next, now)?;
            Ok(next)
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<Task> {
        let lease = lease.clone();
        let now = now_millis();
        self.write(move |conn, changes| {
            read_modify_write(
                conn,
                &lease.task_id,
                StoreError::LeaseLost,
                changes,
                |task| rules::release(task, &lease, now),
            )
        })
        .await
    }

    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> Result<Task> {
        let lease = lease.clone();
        let now = now_millis();
        self.write(move |conn, changes| {
            read_modify_write(
                conn,
                &lease.task_id,
                StoreError::LeaseLost,
                changes,
                |task| rules::postpone(task, &lease, until, description, now),
            )
        })
        .await
    }

    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>> {
        self.write(move |conn, changes| {
            let expired = conn
                .prepare_cached(EXPIRED_LEASES)
                .and_then(|mut statement| {
                    statement
                        .query_map([now], task_from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sqlite_error)?;
            let mut rescued = Vec::with_capacity(expired.len());
            let mut tx = SqliteTx { conn, changes };
            for task in &expired {
                let next = rules::rescue(task, now)?;
                tx.save(&next)?;
                graph::propagate(&mut tx, task.status, &next, now)?;
                rescued.push(next);
            }
            Ok(rescued)
        })
        .await
    }

    async fn delete(&self, id: &TaskId) -> Result<()> {
        let id = id.clone();
        self.write(move |conn, changes| {
            let task = select_task(conn, &id)?.ok_or(StoreError::NotFound)?;
            graph::check_deletable(&mut SqliteTx { conn, changes }, &task)?;
            conn.prepare_cached("DELETE FROM background_tasks WHERE id = ?1")
                .and_then(|mut statement| statement.execute([id.as_str()]))
                .map_err(map_sqlite_error)?;
            changes.push(TaskChange::Deleted {
                id: task.id,
                user_id: task.user_id,
            });
            Ok(())
        })
        .await
    }

    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(move |conn, changes| {
            let deleted = conn
                .prepare_cached(PURGE_FINISHED)
                .and_then(|mut statement| {
                    statement
                        .query_map(rusqlite::params![before, limit], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sqlite_error)?;
            for (id, user_id) in &deleted {
                let id = id.parse::<TaskId>().map_err(|e| {
                    StoreError::Backend(format!("stored task id is malformed: {e}"))
                })?;
                changes.push(TaskChange::Deleted {
                    id,
                    user_id: user_id.clone(),
                });
            }
            Ok(deleted.len())
        })
        .await
    }

    async fn count_unfinished(&self, user_id: &str) -> Result<u64> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(COUNT_UNFINISHED)
                .and_then(|mut statement| {
                    statement.query_row([user_id], |row| row.get::<_, i64>(0))
                })
                .map(|count| u64::try_from(count).unwrap_or(0))
                .map_err(map_sqlite_error)
        })
        .await
    }

    async fn counts(&self) -> Result<Vec<StatusCount>> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(COUNTS)
                .and_then(|mut statement| {
                    statement
                        .query_map([], |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, i64>(2)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_sqlite_error)?;
            let mut counts = rows
                .into_iter()
                .map(|(task_type, status, count)| {
                    Ok(StatusCount {
                        task_type,
                        status: status.parse::<TaskStatus>()?,
                        count: u64::try_from(count).unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            counts.sort_by(|a, b| (&a.task_type, a.status).cmp(&(&b.task_type, b.status)));
            Ok(counts)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(map_sqlite_error)
        })
        .await
    }

    async fn index_search(&self, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        // Not a change of any task: nothing is versioned or published.
        self.write(move |conn, _changes| search_index::index_batch(conn, limit))
            .await
    }

    fn subscribe(&self) -> ChangeReceiver {
        self.feed().subscribe()
    }
}
