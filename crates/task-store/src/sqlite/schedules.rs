//! [`ScheduleStore`] for [`SqliteStore`]: the `schedules` and `schedule_runs` tables
//! (migration `0004_schedules.sql`). A firing inserts its run row (the partial unique index is
//! the exactly-once key), the task and the schedule's new `fired_through` in one writer
//! operation, so they commit together or not at all.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row};
use task_core::{TaskId, TaskStatus, UnixMillis};

use super::error::map_sqlite_error;
use super::rows::{insert_task, json_text};
use super::SqliteStore;
use crate::backend::clock::now_millis;
use crate::backend::{rules, schedule_rules};
use crate::schedules::{Fired, Firing, RunKind, Schedule, ScheduleRun, ScheduleSpec};
use crate::{Result, ScheduleStore, StoreError, TaskChange};

const SCHEDULE_COLUMNS: &str = "id, user_id, name, expression, timezone, task_type, params, \
     label, overlap, catch_up, paused, end_at, fired_through, version, created_at, updated_at";

fn conversion(
    index: usize,
    error: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(error))
}

fn schedule_from_row(row: &Row<'_>) -> rusqlite::Result<Schedule> {
    let params: String = row.get(6)?;
    let overlap: String = row.get(8)?;
    let catch_up: String = row.get(9)?;
    Ok(Schedule {
        id: row.get(0)?,
        user_id: row.get(1)?,
        spec: ScheduleSpec {
            name: row.get(2)?,
            expression: row.get(3)?,
            timezone: row.get(4)?,
            task_type: row.get(5)?,
            params: serde_json::from_str(&params).map_err(|e| conversion(6, e))?,
            label: row.get(7)?,
            overlap: overlap.parse().map_err(|e| conversion(8, e))?,
            catch_up: catch_up.parse().map_err(|e| conversion(9, e))?,
            paused: row.get(10)?,
            end_at: row.get(11)?,
        },
        fired_through: row.get(12)?,
        version: row.get(13)?,
        created_at: row.get(14)?,
        updated_at: row.get(15)?,
    })
}

fn select_schedule(conn: &Connection, id: &str) -> Result<Option<Schedule>> {
    conn.prepare_cached(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?1"
    ))
    .and_then(|mut statement| statement.query_row([id], schedule_from_row).optional())
    .map_err(map_sqlite_error)
}

/// Writes every column of `schedule`: an insert for a new one, a replace for an update.
fn write_schedule(conn: &Connection, schedule: &Schedule) -> Result<()> {
    let spec = &schedule.spec;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO schedules ({SCHEDULE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))
    .and_then(|mut statement| {
        statement.execute(rusqlite::params![
            schedule.id,
            schedule.user_id,
            spec.name,
            spec.expression,
            spec.timezone,
            spec.task_type,
            json_text(&spec.params).map_err(|e| conversion(6, e))?,
            spec.label,
            spec.overlap.as_str(),
            spec.catch_up.as_str(),
            spec.paused,
            spec.end_at,
            schedule.fired_through,
            schedule.version,
            schedule.created_at,
            schedule.updated_at,
        ])
    })
    .map_err(map_sqlite_error)?;
    Ok(())
}

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<ScheduleRun> {
    let kind: String = row.get(2)?;
    let task_id: Option<String> = row.get(3)?;
    let status: Option<String> = row.get(4)?;
    Ok(ScheduleRun {
        schedule_id: row.get(0)?,
        scheduled_at: row.get(1)?,
        kind: kind.parse::<RunKind>().map_err(|e| conversion(2, e))?,
        task_id: task_id
            .map(|id| id.parse::<TaskId>().map_err(|e| conversion(3, e)))
            .transpose()?,
        task_status: status
            .map(|s| s.parse::<TaskStatus>().map_err(|e| conversion(4, e)))
            .transpose()?,
        recorded_at: row.get(5)?,
    })
}

/// The runs [`ScheduleStore::purge_schedule_runs`] deletes, at most `?2` of them: fired before
/// `?1`, their task finished or gone (`backend::schedule_rules::run_is_purgeable`). Driven by
/// the schedules, so each one's old runs are a range of `idx_schedule_runs_recent`, however
/// many newer runs there are (`CROSS JOIN` keeps that order: without statistics the planner
/// would rather scan every run).
pub(crate) const PURGE_RUNS: &str = "DELETE FROM schedule_runs WHERE rowid IN ( \
     SELECT r.rowid FROM schedules s \
     CROSS JOIN schedule_runs r ON r.schedule_id = s.id AND r.scheduled_at < ?1 \
     LEFT JOIN background_tasks t ON t.id = r.task_id \
     WHERE t.id IS NULL OR t.status IN ('completed', 'failed', 'cancelled') \
     LIMIT ?2)";

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn create_schedule(&self, user_id: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let schedule = schedule_rules::new_schedule(user_id, spec, now_millis())?;
        self.write_one_statement(move |conn, _| {
            write_schedule(conn, &schedule)?;
            Ok(schedule)
        })
        .await
    }

    async fn get_schedule(&self, id: &str) -> Result<Schedule> {
        let id = id.to_owned();
        self.read(move |conn| select_schedule(conn, &id)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list_schedules(&self, user_id: Option<&str>) -> Result<Vec<Schedule>> {
        let user_id = user_id.map(str::to_owned);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules \
                 WHERE ?1 IS NULL OR user_id = ?1 ORDER BY created_at, id"
            );
            let mut statement = conn.prepare_cached(&sql).map_err(map_sqlite_error)?;
            let rows = statement
                .query_map([user_id], schedule_from_row)
                .map_err(map_sqlite_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sqlite_error)
        })
        .await
    }

    async fn update_schedule(&self, id: &str, spec: ScheduleSpec) -> Result<Schedule> {
        let id = id.to_owned();
        self.write(move |conn, _| {
            let stored = select_schedule(conn, &id)?.ok_or(StoreError::NotFound)?;
            let next = schedule_rules::updated_schedule(&stored, spec, now_millis())?;
            write_schedule(conn, &next)?;
            Ok(next)
        })
        .await
    }

    async fn delete_schedule(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn, _| {
            let deleted = conn
                .execute("DELETE FROM schedules WHERE id = ?1", [&id])
                .map_err(map_sqlite_error)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            conn.execute("DELETE FROM schedule_runs WHERE schedule_id = ?1", [&id])
                .map_err(map_sqlite_error)?;
            Ok(())
        })
        .await
    }

    async fn fire_schedule(&self, firing: Firing) -> Result<Fired> {
        self.write(move |conn, changes| {
            let now = now_millis();
            let schedule =
                select_schedule(conn, &firing.schedule_id)?.ok_or(StoreError::NotFound)?;
            schedule_rules::check_firing(&schedule, &firing)?;
            let task = firing
                .task
                .clone()
                .map(|new| rules::new_task(new, now))
                .transpose()?;
            let recorded = conn
                .prepare_cached(
                    "INSERT INTO schedule_runs \
                     (schedule_id, scheduled_at, kind, task_id, recorded_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (schedule_id, scheduled_at) WHERE kind <> 'manual' DO NOTHING",
                )
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![
                        firing.schedule_id,
                        firing.scheduled_at,
                        firing.kind.as_str(),
                        task.as_ref().map(|t| t.id.as_str()),
                        now,
                    ])
                })
                .map_err(map_sqlite_error)?;
            if recorded == 0 {
                return Ok(Fired::AlreadyFired);
            }
            conn.execute(
                "UPDATE schedules SET fired_through = ?2 WHERE id = ?1",
                rusqlite::params![
                    firing.schedule_id,
                    firing.fired_through_after(schedule.fired_through)
                ],
            )
            .map_err(map_sqlite_error)?;
            let Some(task) = task else {
                return Ok(Fired::Recorded);
            };
            insert_task(conn, &task)?;
            changes.push(TaskChange::Upserted(Arc::new(task.clone())));
            Ok(Fired::Created(Box::new(task)))
        })
        .await
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
        self.write(move |conn, _| {
            conn.prepare_cached(PURGE_RUNS)
                .and_then(|mut statement| statement.execute(rusqlite::params![before, limit]))
                .map_err(map_sqlite_error)
        })
        .await
    }
}

impl SqliteStore {
    /// The newest `limit` runs of schedule `id` that also meet `condition` (SQL on `r`).
    async fn runs_where(
        &self,
        id: &str,
        limit: usize,
        condition: &'static str,
    ) -> Result<Vec<ScheduleRun>> {
        schedule_rules::check_runs_limit(limit)?;
        let id = id.to_owned();
        self.read(move |conn| {
            if select_schedule(conn, &id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT r.schedule_id, r.scheduled_at, r.kind, r.task_id, t.status, \
                     r.recorded_at FROM schedule_runs r \
                     LEFT JOIN background_tasks t ON t.id = r.task_id \
                     WHERE r.schedule_id = ?1 {condition} \
                     ORDER BY r.scheduled_at DESC, r.recorded_at DESC LIMIT ?2"
                ))
                .map_err(map_sqlite_error)?;
            let rows = statement
                .query_map(rusqlite::params![id, limit as i64], run_from_row)
                .map_err(map_sqlite_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sqlite_error)
        })
        .await
    }
}
