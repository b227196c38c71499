//! [`ScheduleStore`] for [`PostgresStore`]: the `schedules` and `schedule_runs` tables
//! (migration `0004_schedules.sql`). A firing runs in one transaction: the run row is inserted
//! with `ON CONFLICT DO NOTHING` on the partial unique index (a second instance's insert waits
//! for the first's commit, then does nothing), then the task and the schedule's new
//! `fired_through`. So across any number of instances a fire time creates one task, and a
//! crash between the statements leaves none of them.

use async_trait::async_trait;
use task_core::{TaskId, TaskStatus, UnixMillis};
use task_store::backend::clock::now_millis;
use task_store::backend::{rules, schedule_rules};
use task_store::{
    Fired, Firing, Result, RunKind, Schedule, ScheduleRun, ScheduleSpec, ScheduleStore, StoreError,
};
use tokio_postgres::Row;

use crate::errors::{corrupt, map_db};
use crate::row::get;
use crate::store::TaskParams;
use crate::{sql, PostgresStore};

const SCHEDULE_COLUMNS: &str = "id, user_id, name, expression, timezone, task_type, params, \
     label, overlap, catch_up, paused, end_at, fired_through, version, created_at, updated_at";

const WRITE_SCHEDULE: &str = "INSERT INTO schedules (id, user_id, name, expression, timezone, \
     task_type, params, label, overlap, catch_up, paused, end_at, fired_through, version, \
     created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (id) DO UPDATE SET name = $3, expression = $4, timezone = $5, task_type = $6, \
     params = $7, label = $8, overlap = $9, catch_up = $10, paused = $11, end_at = $12, \
     fired_through = GREATEST(schedules.fired_through, $13), version = $14, updated_at = $16";

fn schedule_from_row(row: &Row) -> Result<Schedule> {
    let overlap: &str = get(row, 8)?;
    let catch_up: &str = get(row, 9)?;
    Ok(Schedule {
        id: get(row, 0)?,
        user_id: get(row, 1)?,
        spec: ScheduleSpec {
            name: get(row, 2)?,
            expression: get(row, 3)?,
            timezone: get(row, 4)?,
            task_type: get(row, 5)?,
            params: get(row, 6)?,
            label: get(row, 7)?,
            overlap: overlap.parse().map_err(|e| corrupt("overlap", e))?,
            catch_up: catch_up.parse().map_err(|e| corrupt("catch_up", e))?,
            paused: get(row, 10)?,
            end_at: get(row, 11)?,
        },
        fired_through: get(row, 12)?,
        version: get(row, 13)?,
        created_at: get(row, 14)?,
        updated_at: get(row, 15)?,
    })
}

fn run_from_row(row: &Row) -> Result<ScheduleRun> {
    let kind: &str = get(row, 2)?;
    let task_id: Option<&str> = get(row, 3)?;
    let status: Option<&str> = get(row, 4)?;
    Ok(ScheduleRun {
        schedule_id: get(row, 0)?,
        scheduled_at: get(row, 1)?,
        kind: kind
            .parse::<RunKind>()
            .map_err(|e| corrupt("run kind", e))?,
        task_id: task_id
            .map(|id| id.parse::<TaskId>().map_err(|e| corrupt("task id", e)))
            .transpose()?,
        task_status: status
            .map(|s| s.parse::<TaskStatus>().map_err(|e| corrupt("status", e)))
            .transpose()?,
        recorded_at: get(row, 5)?,
    })
}

/// Writes every column of `schedule` with [`WRITE_SCHEDULE`] (an insert, or an update that
/// never moves `fired_through` back: a firing elsewhere may have moved it since the read).
async fn write_schedule(
    client: &impl deadpool_postgres::GenericClient,
    schedule: &Schedule,
) -> Result<()> {
    let spec = &schedule.spec;
    let (overlap, catch_up) = (spec.overlap.as_str(), spec.catch_up.as_str());
    client
        .execute(
            WRITE_SCHEDULE,
            &[
                &schedule.id,
                &schedule.user_id,
                &spec.name,
                &spec.expression,
                &spec.timezone,
                &spec.task_type,
                &spec.params,
                &spec.label,
                &overlap,
                &catch_up,
                &spec.paused,
                &spec.end_at,
                &schedule.fired_through,
                &schedule.version,
                &schedule.created_at,
                &schedule.updated_at,
            ],
        )
        .await
        .map_err(map_db)?;
    Ok(())
}

#[async_trait]
impl ScheduleStore for PostgresStore {
    async fn create_schedule(&self, user_id: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let schedule = schedule_rules::new_schedule(user_id, spec, now_millis())?;
        write_schedule(&self.client().await?, &schedule).await?;
        Ok(schedule)
    }

    async fn get_schedule(&self, id: &str) -> Result<Schedule> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(map_db)?
            .ok_or(StoreError::NotFound)?;
        schedule_from_row(&row)
    }

    async fn list_schedules(&self, user_id: Option<&str>) -> Result<Vec<Schedule>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM schedules \
                     WHERE $1::text IS NULL OR user_id = $1 ORDER BY created_at, id"
                ),
                &[&user_id],
            )
            .await
            .map_err(map_db)?;
        rows.iter().map(schedule_from_row).collect()
    }

    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let row = transaction
            .query_opt(
                &format!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .await
            .map_err(map_db)?
            .ok_or(StoreError::NotFound)?;
        let next = schedule_rules::updated_schedule(&schedule_from_row(&row)?, spec, now_millis())?;
        write_schedule(&transaction, &next).await?;
        transaction.commit().await.map_err(map_db)?;
        Ok(next)
    }

    async fn delete_schedule(&self, id: &str) -> Result<()> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let deleted = transaction
            .execute("DELETE FROM schedules WHERE id = $1", &[&id])
            .await
            .map_err(map_db)?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        transaction
            .execute("DELETE FROM schedule_runs WHERE schedule_id = $1", &[&id])
            .await
            .map_err(map_db)?;
        transaction.commit().await.map_err(map_db)
    }

    async fn fire_schedule(&self, firing: Firing) -> Result<Fired> {
        let now = now_millis();
        let schedule = self.get_schedule(&firing.schedule_id).await?;
        schedule_rules::check_firing(&schedule, &firing)?;
        let task = firing
            .task
            .clone()
            .map(|new| rules::new_task(new, now))
            .transpose()?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let recorded = transaction
            .execute(
                "INSERT INTO schedule_runs (schedule_id, scheduled_at, kind, task_id, recorded_at) \
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM schedules WHERE id = $1) \
                 ON CONFLICT (schedule_id, scheduled_at) WHERE kind <> 'manual' DO NOTHING",
                &[
                    &firing.schedule_id,
                    &firing.scheduled_at,
                    &firing.kind.as_str(),
                    &task.as_ref().map(|t| t.id.as_str()),
                    &now,
                ],
            )
            .await
            .map_err(map_db)?;
        if recorded == 0 {
            // Either another instance recorded this time, or the schedule was deleted since
            // the read above; the second is `NotFound`, as if the read had come later.
            drop(transaction);
            self.get_schedule(&firing.schedule_id).await?;
            return Ok(Fired::AlreadyFired);
        }
        transaction
            .execute(
                "UPDATE schedules SET fired_through = GREATEST(fired_through, $2) WHERE id = $1",
                &[
                    &firing.schedule_id,
                    &firing.fired_through_after(schedule.fired_through),
                ],
            )
            .await
            .map_err(map_db)?;
        if let Some(task) = &task {
            let params = TaskParams::new(task);
            transaction
                .execute(sql::INSERT_TASK.as_str(), &params.all())
                .await
                .map_err(map_db)?;
        }
        transaction.commit().await.map_err(map_db)?;
        Ok(match task {
            Some(task) => {
                self.committed(&task);
                Fired::Created(Box::new(task))
            }
            None => Fired::Recorded,
        })
    }

    async fn schedule_runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>> {
        self.runs_where(id, limit, "").await
    }

    async fn schedule_task_runs(&self, id: &str, limit: usize) -> Result<Vec<ScheduleRun>> {
        self.runs_where(id, limit, "AND r.task_id IS NOT NULL")
            .await
    }

    async fn purge_schedule_runs(&self, before: UnixMillis, limit: usize) -> Result<usize> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // The condition is `backend::schedule_rules::run_is_purgeable`'s. Driven by the
        // schedules, so each one's old runs are a range of `idx_schedule_runs_recent`.
        let deleted = client
            .execute(
                "DELETE FROM schedule_runs WHERE ctid = ANY(ARRAY( \
                 SELECT r.ctid FROM schedules s \
                 JOIN schedule_runs r ON r.schedule_id = s.id AND r.scheduled_at < $1 \
                 LEFT JOIN background_tasks t ON t.id = r.task_id \
                 WHERE t.id IS NULL OR t.status IN ('completed', 'failed', 'cancelled') \
                 LIMIT $2))",
                &[&before, &limit],
            )
            .await
            .map_err(map_db)?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

impl PostgresStore {
    /// The newest `limit` runs of schedule `id` that also meet `condition` (SQL on `r`).
    async fn runs_where(
        &self,
        id: &str,
        limit: usize,
        condition: &'static str,
    ) -> Result<Vec<ScheduleRun>> {
        schedule_rules::check_runs_limit(limit)?;
        self.get_schedule(id).await?;
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT r.schedule_id, r.scheduled_at, r.kind, r.task_id, t.status, \
                     r.recorded_at \
                     FROM schedule_runs r LEFT JOIN background_tasks t ON t.id = r.task_id \
                     WHERE r.schedule_id = $1 {condition} \
                     ORDER BY r.scheduled_at DESC, r.recorded_at DESC LIMIT $2"
                ),
                &[&id, &(limit as i64)],
            )
            .await
            .map_err(map_db)?;
        rows.iter().map(run_from_row).collect()
    }
}
