//! [`TaskStore`] for [`PostgresStore`]. The hot worker writes (progress, complete, heartbeat)
//! are single guarded statements; when the guard matches no row, the locked slow path
//! ([`PostgresStore::modify`]) applies the shared rules, which either explain why (the same
//! error SQLite gives) or, if the task moved meanwhile, make the write.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use serde_json::Value;
use task_core::{Dependency, NewTask, NewWorkflow, Task, TaskId, TaskStatus, UnixMillis, Workflow};
use task_store::backend::clock::now_millis;
use task_store::backend::rules;
use task_store::{
    ChangeReceiver, ClaimRequest, CreateGuard, Failure, Guarded, GuardedWorkflow, IdempotencyClaim,
    Lease, ListQuery, Result, StatusCount, StoreError, TaskPage, TaskStore,
};

use crate::errors::{corrupt, map_db};
use crate::graph::{self, PgTx};
use crate::row::{get, task_from_row};
use crate::store::TaskParams;
use crate::{sql, PostgresStore};

impl PostgresStore {
    /// Inserts validated tasks in one transaction (pipelined) and publishes them.
    async fn insert_all(&self, tasks: Vec<Task>) -> Result<Vec<Task>> {
        if tasks.is_empty() {
            return Ok(tasks);
        }
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let insert = transaction
            .prepare_cached(&sql::INSERT_TASK)
            .await
            .map_err(map_db)?;
        let params: Vec<TaskParams<'_>> = tasks.iter().map(TaskParams::new).collect();
        let columns: Vec<_> = params.iter().map(TaskParams::all).collect();
        try_join_all(
            columns
                .iter()
                .map(|columns| transaction.execute(&insert, columns)),
        )
        .await
        .map_err(map_db)?;
        transaction.commit().await.map_err(map_db)?;
        for task in &tasks {
            self.committed(task);
        }
        Ok(tasks)
    }

    /// Runs a guarded fast-path statement for a leased write; `None` when the guard matched
    /// no row.
    async fn leased_fast_path(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Task>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(statement).await.map_err(map_db)?;
        let row = client.query_opt(&statement, params).await.map_err(map_db)?;
        row.map(|row| task_from_row(&row)).transpose()
    }
}

#[async_trait]
impl TaskStore for PostgresStore {
    async fn create(&self, new: NewTask) -> Result<Task> {
        if !new.depends_on.is_empty() {
            let mut created = self.create_many(vec![new]).await?;
            return created
                .pop()
                .ok_or_else(|| StoreError::Backend("the insert returned no task".to_owned()));
        }
        let task = rules::new_task(new, now_millis())?;
        let mut created = self.insert_all(vec![task]).await?;
        created
            .pop()
            .ok_or_else(|| StoreError::Backend("the insert returned no task".to_owned()))
    }

    async fn create_many(&self, new: Vec<NewTask>) -> Result<Vec<Task>> {
        let now = now_millis();
        if new.iter().any(|new| !new.depends_on.is_empty()) {
            let mut client = self.client().await?;
            let transaction = client.transaction().await.map_err(map_db)?;
            let mut graph = PgTx::new(&transaction);
            let created = graph.create_tasks(new, now).await?;
            let changed = graph.changed;
            self.commit(transaction, &changed).await?;
            return Ok(created);
        }
        let tasks = new
            .into_iter()
            .map(|new| rules::new_task(new, now))
            .collect::<Result<Vec<_>>>()?;
        self.insert_all(tasks).await
    }

    async fn create_workflow(&self, workflow: NewWorkflow) -> Result<(Workflow, Vec<Task>)> {
        let now = now_millis();
        workflow.plan()?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let mut graph = PgTx::new(&transaction);
        let created = graph.create_workflow(workflow, now).await?;
        let changed = graph.changed;
        self.commit(transaction, &changed).await?;
        Ok(created)
    }

    async fn get_workflow(&self, id: &str) -> Result<Workflow> {
        let client = self.client().await?;
        graph::workflow(&client, id).await
    }

    async fn dependencies(&self, id: &TaskId) -> Result<Vec<Dependency>> {
        let client = self.client().await?;
        graph::dependencies(&client, id).await
    }

    async fn create_guarded(&self, new: NewTask, guard: CreateGuard) -> Result<Guarded> {
        self.create_guarded_task(new, &guard).await
    }

    async fn create_workflow_guarded(
        &self,
        workflow: NewWorkflow,
        claim: IdempotencyClaim,
    ) -> Result<GuardedWorkflow> {
        self.create_workflow_guarded_here(workflow, &claim).await
    }

    async fn get(&self, id: &TaskId) -> Result<Task> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&sql::GET_TASK)
            .await
            .map_err(map_db)?;
        let row = client
            .query_opt(&statement, &[&id.as_str()])
            .await
            .map_err(map_db)?
            .ok_or(StoreError::NotFound)?;
        task_from_row(&row)
    }

    async fn list(&self, query: &ListQuery) -> Result<TaskPage> {
        self.list_tasks(query).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Task>> {
        self.claim_tasks(request).await
    }

    async fn heartbeat(&self, lease: &Lease, lease_expires_at: UnixMillis) -> Result<Task> {
        // A renewal keeps the version, so it is neither notified nor published.
        let fast = self
            .leased_fast_path(
                &sql::HEARTBEAT,
                &[&lease.task_id.as_str(), &lease.token, &lease_expires_at],
            )
            .await?;
        match fast {
            Some(task) => Ok(task),
            None => {
                self.modify(&lease.task_id, StoreError::LeaseLost, |task| {
                    rules::heartbeat(task, lease, lease_expires_at).map(Some)
                })
                .await
            }
        }
    }

    async fn update_progress(
        &self,
        lease: &Lease,
        progress: i64,
        description: Option<String>,
    ) -> Result<Task> {
        let now = now_millis();
        // An invalid description goes straight to the rules, which check the lease first.
        if rules::validate_description(description.as_deref()).is_ok() {
            let fast = self
                .leased_fast_path(
                    &sql::PROGRESS,
                    &[
                        &lease.task_id.as_str(),
                        &lease.token,
                        &progress,
                        &description,
                        &now,
                    ],
                )
                .await?;
            if let Some(task) = fast {
                self.committed(&task);
                return Ok(task);
            }
        }
        self.modify(&lease.task_id, StoreError::LeaseLost, |task| {
            rules::update_progress(task, lease, progress, description, now).map(Some)
        })
        .await
    }

    async fn complete(&self, lease: &Lease, result: Value) -> Result<Task> {
        // Completions that arrive together share one transaction and statement
        // (`completions`); the guarded statement and the release of the children still
        // commit together.
        self.complete_in_group(lease, result).await
    }

    async fn fail(&self, lease: &Lease, failure: Failure) -> Result<Task> {
        let now = now_millis();
        self.modify(&lease.task_id, StoreError::LeaseLost, |task| {
            rules::fail(task, lease, failure, now).map(Some)
        })
        .await
    }

    async fn request_cancel(&self, id: &TaskId) -> Result<Task> {
        let now = now_millis();
        self.modify(id, StoreError::NotFound, |task| {
            rules::request_cancel(task, now)
        })
        .await
    }

    async fn cancel(&self, id: &TaskId, lease: Option<&Lease>) -> Result<Task> {
        let now = now_millis();
        let missing = match lease {
            Some(lease) if lease.task_id != *id => return Err(StoreError::LeaseLost),
            Some(_) => StoreError::LeaseLost,
            None => StoreError::NotFound,
        };
        self.modify(id, missing, |task| {
            rules::cancel(task, lease, now).map(Some)
        })
        .await
    }

    async fn retry(&self, id: &TaskId, run_at: Option<UnixMillis>) -> Result<Task> {
        let now = now_millis();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let mut graph = PgTx::new(&transaction);
        let task = graph.task(id).await?.ok_or(StoreError::NotFound)?;
        let next = graph.retry(&task, run_at, now).await?;
        graph.save(&next).await?;
        graph.propagate(task.status, &next, now).await?;
        let changed = graph.changed;
        self.commit(transaction, &changed).await?;
        Ok(next)
    }

    async fn release(&self, lease: &Lease) -> Result<Task> {
        let now = now_millis();
        self.modify(&lease.task_id, StoreError::LeaseLost, |task| {
            rules::release(task, lease, now).map(Some)
        })
        .await
    }

    async fn postpone(
        &self,
        lease: &Lease,
        until: UnixMillis,
        description: Option<String>,
    ) -> Result<Task> {
        let now = now_millis();
        self.modify(&lease.task_id, StoreError::LeaseLost, |task| {
            rules::postpone(task, lease, until, description, now).map(Some)
        })
        .await
    }

    async fn rescue_expired(&self, now: UnixMillis) -> Result<Vec<Task>> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let mut graph = PgTx::new(&transaction);
        let expired = graph.expired(now).await?;
        let mut rescued = Vec::with_capacity(expired.len());
        for task in &expired {
            let next = rules::rescue(task, now)?;
            graph.save(&next).await?;
            graph.propagate(task.status, &next, now).await?;
            rescued.push(next);
        }
        let changed = graph.changed;
        self.commit(transaction, &changed).await?;
        Ok(rescued)
    }

    async fn delete(&self, id: &TaskId) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let graph = PgTx::new(&transaction);
        let task = graph.task(id).await?.ok_or(StoreError::NotFound)?;
        graph.check_deletable(&task).await?;
        transaction
            .execute(sql::DELETE_TASK, &[&id.as_str()])
            .await
            .map_err(map_db)?;
        transaction.commit().await.map_err(map_db)?;
        self.committed_deletion(&task.id, &task.user_id, task.version);
        Ok(())
    }

    async fn purge_finished(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(sql::PURGE, &[&before, &limit])
            .await
            .map_err(map_db)?;
        let mut deleted = rows
            .iter()
            .map(|row| {
                let id: &str = get(row, 0)?;
                let id: TaskId = id.parse().map_err(|e| corrupt("task id", e))?;
                let user_id: String = get(row, 1)?;
                let version: i64 = get(row, 2)?;
                let order: (Option<i64>, i64) = (get(row, 3)?, get(row, 4)?);
                Ok((order, id, user_id, version))
            })
            .collect::<Result<Vec<_>>>()?;
        // RETURNING has no order; publish oldest first, as the other backends do.
        deleted.sort_by_key(|(order, ..)| *order);
        for (_, id, user_id, version) in &deleted {
            self.committed_deletion(id, user_id, *version);
        }
        Ok(deleted.len())
    }

    async fn count_unfinished(&self, user_id: &str) -> Result<u64> {
        let client = self.client().await?;
        let row = client
            .query_one(sql::COUNT_UNFINISHED, &[&user_id])
            .await
            .map_err(map_db)?;
        let count: i64 = get(&row, 0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn counts(&self) -> Result<Vec<StatusCount>> {
        let client = self.client().await?;
        let rows = client.query(sql::COUNTS, &[]).await.map_err(map_db)?;
        let mut counts: BTreeMap<(String, TaskStatus), u64> = BTreeMap::new();
        for row in &rows {
            let status: &str = get(row, 1)?;
            let status = status
                .parse::<TaskStatus>()
                .map_err(|e| corrupt("task status", e))?;
            let count: i64 = get(row, 2)?;
            counts.insert((get(row, 0)?, status), u64::try_from(count).unwrap_or(0));
        }
        Ok(counts
            .into_iter()
            .map(|((task_type, status), count)| StatusCount {
                task_type,
                status,
                count,
            })
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        // An instance whose listener is down misses other instances' changes, so its live
        // streams would go stale: it is not ready until the listener is back and re-synced.
        if !self.listener_connected() {
            return Err(StoreError::Unavailable(
                "the change listener is reconnecting".to_owned(),
            ));
        }
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await.map_err(map_db)?;
        Ok(())
    }

    fn subscribe(&self) -> ChangeReceiver {
        self.inner.publisher.subscribe()
    }
}
