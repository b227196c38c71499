//! Guarded creation on Postgres: the idempotency record, the unique key's task and the new
//! task (with its parents, or a whole workflow) are read and written in one transaction. Concurrent requests with the same key are
//! serialised by transaction-scoped advisory locks on the key (always the idempotency key
//! first, then the unique key, so two requests never wait on each other in a cycle); the
//! second one then reads what the first committed.

use deadpool_postgres::Transaction;
use task_core::{NewTask, NewWorkflow, Task, TaskId};
use task_store::backend::clock::now_millis;
use task_store::guard::{
    self, CreateGuard, Decision, Guarded, GuardedWorkflow, IdempotencyClaim, StoredIdempotency,
    WorkflowDecision,
};
use task_store::{Result, StoreError};

use crate::errors::map_db;
use crate::graph::PgTx;
use crate::row::task_from_row;
use crate::{sql, PostgresStore};

const LOCK_KEY: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
const SELECT_KEY: &str = "SELECT fingerprint, task, created, created_at FROM idempotency_keys \
     WHERE user_id = $1 AND idem_key = $2";
const UPSERT_KEY: &str = "INSERT INTO idempotency_keys \
     (user_id, idem_key, fingerprint, task, created, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (user_id, idem_key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, \
     task = EXCLUDED.task, created = EXCLUDED.created, created_at = EXCLUDED.created_at";
const SELECT_UNIQUE: &str =
    "SELECT task_id FROM task_unique_keys WHERE user_id = $1 AND unique_key = $2";
const UPSERT_UNIQUE: &str = "INSERT INTO task_unique_keys (user_id, unique_key, task_id) \
     VALUES ($1, $2, $3) ON CONFLICT (user_id, unique_key) DO UPDATE SET task_id = EXCLUDED.task_id";

impl PostgresStore {
    /// [`task_store::TaskStore::create_guarded`]: the steps of
    /// [`task_store::backend::guarded::create_guarded`], with async reads.
    pub(crate) async fn create_guarded_task(
        &self,
        new: NewTask,
        guard: &CreateGuard,
    ) -> Result<Guarded> {
        guard.validate()?;
        let now = now_millis();
        let user = new.user_id.clone();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        if let Some(claim) = &guard.idempotency {
            lock(&transaction, "idempotency", &user, &claim.key).await?;
        }
        if let Some(key) = &guard.unique_key {
            lock(&transaction, "unique", &user, key).await?;
        }
        let stored_key = match &guard.idempotency {
            Some(claim) => read_key(&transaction, &user, &claim.key).await?,
            None => None,
        };
        let twin = match &guard.unique_key {
            Some(key) => read_twin(&transaction, &user, key).await?,
            None => None,
        };
        let mut graph = PgTx::new(&transaction);
        let (answer, created) = match guard::decide(guard, stored_key.as_ref(), twin.as_ref(), now)
        {
            Decision::Answer(answer) => return Ok(answer),
            Decision::ReturnTwin(twin) => (twin, false),
            Decision::Create => {
                let task = graph
                    .create_tasks(vec![new], now)
                    .await?
                    .pop()
                    .ok_or_else(|| StoreError::Backend("nothing was created".to_owned()))?;
                if let Some(key) = &guard.unique_key {
                    transaction
                        .execute(UPSERT_UNIQUE, &[&user, key, &task.id.as_str()])
                        .await
                        .map_err(map_db)?;
                }
                (task, true)
            }
        };
        if let Some(claim) = &guard.idempotency {
            let record = guard::record(claim, &answer, created, now);
            write_key(&transaction, &user, &claim.key, &record).await?;
        }
        let changed = graph.changed;
        self.commit(transaction, &changed).await?;
        Ok(if created {
            Guarded::Created(answer)
        } else {
            Guarded::Existing(answer)
        })
    }

    /// [`task_store::TaskStore::create_workflow_guarded`]: the steps of
    /// [`task_store::backend::guarded::create_workflow_guarded`], with async reads.
    pub(crate) async fn create_workflow_guarded_here(
        &self,
        workflow: NewWorkflow,
        claim: &IdempotencyClaim,
    ) -> Result<GuardedWorkflow> {
        CreateGuard {
            idempotency: Some(claim.clone()),
            unique_key: None,
        }
        .validate()?;
        workflow.plan()?;
        let now = now_millis();
        let user = workflow.user_id.clone();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        lock(&transaction, "idempotency", &user, &claim.key).await?;
        let stored_key = read_key(&transaction, &user, &claim.key).await?;
        match guard::decide_workflow(claim, stored_key.as_ref(), now) {
            WorkflowDecision::Replay(id) => Ok(GuardedWorkflow::Replayed(
                crate::graph::workflow(&transaction, &id).await?,
            )),
            WorkflowDecision::KeyReused => Ok(GuardedWorkflow::KeyReused),
            WorkflowDecision::Create => {
                let mut graph = PgTx::new(&transaction);
                let (record, tasks) = graph.create_workflow(workflow, now).await?;
                let first = tasks
                    .first()
                    .ok_or_else(|| StoreError::Backend("a workflow without nodes".to_owned()))?;
                let key = guard::record(claim, first, true, now);
                write_key(&transaction, &user, &claim.key, &key).await?;
                let changed = graph.changed;
                self.commit(transaction, &changed).await?;
                Ok(GuardedWorkflow::Created(record, tasks))
            }
        }
    }
}

async fn write_key(
    transaction: &Transaction<'_>,
    user: &str,
    key: &str,
    record: &StoredIdempotency,
) -> Result<()> {
    let snapshot = serde_json::to_string(&record.task)
        .map_err(|e| StoreError::Backend(format!("encoding an idempotency record: {e}")))?;
    transaction
        .execute(
            UPSERT_KEY,
            &[
                &user,
                &key,
                &record.fingerprint,
                &snapshot,
                &record.created,
                &record.created_at,
            ],
        )
        .await
        .map(drop)
        .map_err(map_db)
}

async fn lock(transaction: &Transaction<'_>, kind: &str, user: &str, key: &str) -> Result<()> {
    // The parts are joined with a byte that cannot start a UTF-8 sequence of an email, so two
    // different (user, key) pairs never spell the same lock name.
    let name = format!("tasklane.{kind}\u{1f}{user}\u{1f}{key}");
    transaction
        .execute(LOCK_KEY, &[&name])
        .await
        .map(drop)
        .map_err(map_db)
}

async fn read_key(
    transaction: &Transaction<'_>,
    user: &str,
    key: &str,
) -> Result<Option<StoredIdempotency>> {
    let row = transaction
        .query_opt(SELECT_KEY, &[&user, &key])
        .await
        .map_err(map_db)?;
    row.map(|row| {
        let task: String = row.try_get(1).map_err(map_db)?;
        Ok(StoredIdempotency {
            fingerprint: row.try_get(0).map_err(map_db)?,
            task: serde_json::from_str(&task)
                .map_err(|e| StoreError::Backend(format!("a stored idempotency record: {e}")))?,
            created: row.try_get(2).map_err(map_db)?,
            created_at: row.try_get(3).map_err(map_db)?,
        })
    })
    .transpose()
}

async fn read_twin(transaction: &Transaction<'_>, user: &str, key: &str) -> Result<Option<Task>> {
    let Some(row) = transaction
        .query_opt(SELECT_UNIQUE, &[&user, &key])
        .await
        .map_err(map_db)?
    else {
        return Ok(None);
    };
    let id: String = row.try_get(0).map_err(map_db)?;
    let id = id
        .parse::<TaskId>()
        .map_err(|e| StoreError::Backend(format!("a stored unique key: {e}")))?;
    let statement = transaction
        .prepare_cached(&sql::GET_TASK)
        .await
        .map_err(map_db)?;
    transaction
        .query_opt(&statement, &[&id.as_str()])
        .await
        .map_err(map_db)?
        .map(|row| task_from_row(&row))
        .transpose()
}
