//! [`AnalyticsStore`] for [`SqliteStore`]: the tables of the `analytics` set. A fold reads its
//! batch on a reader (off the `completed_at` index), sums it outside any lock, and then, in one
//! writer operation, checks the watermark is still the one it read from, adds the sums to the
//! rows and moves the watermark: the writer is held only for the row updates, and a fold that
//! raced another (a second process on the same file) starts over instead of counting twice.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use task_core::UnixMillis;

use super::error::map_sqlite_error;
use super::rows::{task_columns, task_from_row};
use super::SqliteStore;
use crate::analytics::{
    AnalyticsStore, Deltas, FailureRow, FoldedTask, LogHistogram, Resolution, RollupCounts,
    RollupKey, RollupQuery, RollupRow, RollupValues, Rollups, UserScope, Watermark, ALL_USERS,
};
use crate::{Result, StoreError};

/// The `completed_at` of the `?3`-th finished task after time `?1` (by `?2`): the batch's upper
/// bound. Read off the `completed_at` index alone, in index order, so it costs the batch's
/// length however long the history; `ORDER BY completed_at, id` over the whole range would sort
/// every unfolded row on each fold.
const BATCH_END: &str = "SELECT completed_at FROM background_tasks \
     WHERE completed_at IS NOT NULL AND completed_at > ?1 AND completed_at <= ?2 \
     ORDER BY completed_at LIMIT 1 OFFSET ?3";

/// The next finished tasks after the watermark `(?1, ?2)`, finished by `?3`, in fold order.
/// `completed_at >= ?1` alone bounds the index range; the `OR` only settles ties.
const NEXT_FINISHED: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM background_tasks \
     WHERE completed_at IS NOT NULL AND status IN ('completed', 'failed', 'cancelled') \
     AND completed_at >= ?1 AND (completed_at > ?1 OR id > ?2) AND completed_at <= ?3 \
     ORDER BY completed_at, id LIMIT ?4"
);

const SELECT_WATERMARK: &str =
    "SELECT completed_at, task_id, folded FROM analytics_watermark WHERE id = 1";

const KEY_COLUMNS: &str = "resolution, user_id, bucket_start, task_type, provider, model";

const VALUE_COLUMNS: &str = "completed, failed, cancelled, attempts, retries, timeouts, \
     input_tokens, output_tokens, wait_histogram, run_histogram";

fn read_watermark(conn: &Connection) -> Result<Option<Watermark>> {
    conn.prepare_cached(SELECT_WATERMARK)
        .and_then(|mut s| {
            s.query_row([], |row| {
                Ok(Watermark {
                    completed_at: row.get(0)?,
                    task_id: row.get(1)?,
                    folded: row.get(2)?,
                })
            })
            .optional()
        })
        .map_err(map_sqlite_error)
}

fn damaged(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored analytics {what} is damaged: {error}"))
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<(String, RollupKey)> {
    let resolution: String = row.get(0)?;
    Ok((
        resolution.clone(),
        RollupKey {
            resolution: Resolution::Minute,
            user_id: row.get(1)?,
            bucket_start: row.get(2)?,
            task_type: row.get(3)?,
            provider: row.get(4)?,
            model: row.get(5)?,
        },
    ))
}

fn parse_key((resolution, mut key): (String, RollupKey)) -> Result<RollupKey> {
    key.resolution = resolution.parse().map_err(|e| damaged("resolution", e))?;
    Ok(key)
}

fn counts_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<RollupCounts> {
    Ok(RollupCounts {
        completed: row.get(at)?,
        failed: row.get(at + 1)?,
        cancelled: row.get(at + 2)?,
        attempts: row.get(at + 3)?,
        retries: row.get(at + 4)?,
        timeouts: row.get(at + 5)?,
        input_tokens: row.get(at + 6)?,
        output_tokens: row.get(at + 7)?,
    })
}

/// Adds `values` to the row at `key` (creating it).
fn add_row(conn: &Connection, key: &RollupKey, values: &RollupValues) -> Result<()> {
    let existing = conn
        .prepare_cached(&format!(
            "SELECT {VALUE_COLUMNS} FROM analytics_rollups WHERE resolution = ?1 \
             AND user_id = ?2 AND bucket_start = ?3 AND task_type = ?4 AND provider = ?5 \
             AND model = ?6"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    key.resolution.as_str(),
                    key.user_id,
                    key.bucket_start,
                    key.task_type,
                    key.provider,
                    key.model
                ],
                |row| {
                    Ok((
                        counts_from_row(row, 0)?,
                        row.get::<_, Vec<u8>>(8)?,
                        row.get::<_, Vec<u8>>(9)?,
                    ))
                },
            )
            .optional()
        })
        .map_err(map_sqlite_error)?;
    let mut merged = values.clone();
    if let Some((counts, wait, run)) = existing {
        merged.merge(&RollupValues {
            counts,
            wait: LogHistogram::decode(&wait).map_err(|e| damaged("histogram", e))?,
            run: LogHistogram::decode(&run).map_err(|e| damaged("histogram", e))?,
        });
    }
    let c = &merged.counts;
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO analytics_rollups ({KEY_COLUMNS}, {VALUE_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            key.resolution.as_str(),
            key.user_id,
            key.bucket_start,
            key.task_type,
            key.provider,
            key.model,
            c.completed,
            c.failed,
            c.cancelled,
            c.attempts,
            c.retries,
            c.timeouts,
            c.input_tokens,
            c.output_tokens,
            merged.wait.encode(),
            merged.run.encode(),
        ])
    })
    .map_err(map_sqlite_error)?;
    Ok(())
}

fn add_failure(conn: &Connection, key: &RollupKey, reason: &str, count: i64) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO analytics_failures ({KEY_COLUMNS}, reason, count) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT DO UPDATE SET count = count + excluded.count"
    ))
    .and_then(|mut s| {
        s.execute(params![
            key.resolution.as_str(),
            key.user_id,
            key.bucket_start,
            key.task_type,
            key.provider,
            key.model,
            reason,
            count
        ])
    })
    .map_err(map_sqlite_error)?;
    Ok(())
}

/// The `WHERE` clause and parameters selecting `query`'s rows.
fn selection(query: &RollupQuery) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut args = vec![
        Value::Text(query.resolution.as_str().to_owned()),
        Value::Integer(query.from),
        Value::Integer(query.to),
    ];
    let user = match &query.users {
        UserScope::AllUsers => {
            args.push(Value::Text(ALL_USERS.to_owned()));
            "user_id = ?4"
        }
        UserScope::User(user) => {
            args.push(Value::Text(user.clone()));
            "user_id = ?4"
        }
        UserScope::EachUser => {
            args.push(Value::Text(ALL_USERS.to_owned()));
            "user_id <> ?4"
        }
    };
    (
        format!("resolution = ?1 AND {user} AND bucket_start >= ?2 AND bucket_start < ?3"),
        args,
    )
}

fn read_rollups(conn: &Connection, query: &RollupQuery) -> Result<Rollups> {
    let (filter, args) = selection(query);
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, {VALUE_COLUMNS} FROM analytics_rollups WHERE {filter} \
             ORDER BY {KEY_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok((
                    key_from_row(row)?,
                    counts_from_row(row, 6)?,
                    row.get::<_, Vec<u8>>(14)?,
                    row.get::<_, Vec<u8>>(15)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sqlite_error)?
        .into_iter()
        .map(|(key, counts, wait, run)| {
            Ok(RollupRow {
                key: parse_key(key)?,
                counts,
                wait,
                run,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let failures = conn
        .prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, reason, count FROM analytics_failures WHERE {filter} \
             ORDER BY {KEY_COLUMNS}, reason"
        ))
        .and_then(|mut s| {
            s.query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok((key_from_row(row)?, row.get(6)?, row.get(7)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_sqlite_error)?
        .into_iter()
        .map(|(key, reason, count)| {
            Ok(FailureRow {
                key: parse_key(key)?,
                reason,
                count,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Rollups {
        rows,
        failures,
        watermark: read_watermark(conn)?,
    })
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn fold_finished(&self, until: UnixMillis, limit: usize) -> Result<Vec<FoldedTask>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        loop {
            let (mark, tasks) = self
                .read(move |conn| {
                    let mark = read_watermark(conn)?;
                    let from = mark.clone().unwrap_or_else(Watermark::start);
                    // Ties at the watermark's time plus `limit` tasks after it fill a batch.
                    let end: Option<i64> = conn
                        .prepare_cached(BATCH_END)
                        .and_then(|mut s| {
                            s.query_row(params![from.completed_at, until, limit - 1], |row| {
                                row.get(0)
                            })
                            .optional()
                        })
                        .map_err(map_sqlite_error)?;
                    let end = end.unwrap_or(until);
                    let tasks = conn
                        .prepare_cached(NEXT_FINISHED)
                        .and_then(|mut s| {
                            s.query_map(
                                params![from.completed_at, from.task_id, end, limit],
                                task_from_row,
                            )?
                            .collect::<rusqlite::Result<Vec<_>>>()
                        })
                        .map_err(map_sqlite_error)?;
                    Ok((mark, tasks))
                })
                .await?;
            let folded: Vec<FoldedTask> = tasks.iter().filter_map(FoldedTask::of).collect();
            let deltas = Deltas::of(&folded);
            let next = mark
                .clone()
                .unwrap_or_else(Watermark::start)
                .advanced(&folded);
            let applied = self
                .write(move |conn, _changes| {
                    if read_watermark(conn)? != mark {
                        return Ok(false);
                    }
                    for (key, values) in &deltas.rows {
                        add_row(conn, key, values)?;
                    }
                    for ((key, reason), count) in &deltas.failures {
                        add_failure(conn, key, reason, *count)?;
                    }
                    conn.prepare_cached(
                        "INSERT OR REPLACE INTO analytics_watermark \
                         (id, completed_at, task_id, folded) VALUES (1, ?1, ?2, ?3)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![next.completed_at, next.task_id, next.folded])
                    })
                    .map_err(map_sqlite_error)?;
                    Ok(true)
                })
                .await?;
            if applied {
                return Ok(folded);
            }
        }
    }

    async fn watermark(&self) -> Result<Option<Watermark>> {
        self.read(read_watermark).await
    }

    async fn rollups(&self, query: &RollupQuery) -> Result<Rollups> {
        let query = query.clone();
        self.read(move |conn| read_rollups(conn, &query)).await
    }

    async fn prune_rollups(&self, resolution: Resolution, before: UnixMillis) -> Result<u64> {
        self.write(move |conn, _changes| {
            let mut deleted = 0;
            for table in ["analytics_rollups", "analytics_failures"] {
                let count = conn
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE resolution = ?1 AND bucket_start < ?2"
                    ))
                    .and_then(|mut s| s.execute(params![resolution.as_str(), before]))
                    .map_err(map_sqlite_error)?;
                if table == "analytics_rollups" {
                    deleted = count as u64;
                }
            }
            Ok(deleted)
        })
        .await
    }
}
