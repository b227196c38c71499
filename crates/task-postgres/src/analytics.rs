//! [`AnalyticsStore`] for [`PostgresStore`]: the tables of the `analytics` set. A fold is one
//! transaction that locks the watermark row (so folds of several instances take turns and never
//! fold a task twice), reads the next finished tasks, and writes the summed rows and the new
//! watermark with one `unnest` statement each: a batch costs a handful of round trips however
//! many rows it touches.

use std::collections::BTreeMap;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use task_core::UnixMillis;
use task_store::analytics::{
    AnalyticsStore, Deltas, FailureRow, FoldedTask, LogHistogram, Resolution, RollupCounts,
    RollupKey, RollupQuery, RollupRow, RollupValues, Rollups, UserScope, Watermark, ALL_USERS,
};
use task_store::Result;
use tokio_postgres::Row;

use crate::errors::{corrupt, map_db};
use crate::row::{get, task_columns, task_from_row};
use crate::PostgresStore;

const KEY_COLUMNS: &str = "resolution, user_id, bucket_start, task_type, provider, model";
const VALUE_COLUMNS: &str = "completed, failed, cancelled, attempts, retries, timeouts, \
     input_tokens, output_tokens, wait_histogram, run_histogram";

async fn read_watermark(client: &impl GenericClient, lock: bool) -> Result<Option<Watermark>> {
    let sql = format!(
        "SELECT completed_at, task_id, folded FROM analytics_watermark WHERE id = 1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row = client.query_opt(&sql, &[]).await.map_err(map_db)?;
    row.map(|row| {
        Ok(Watermark {
            completed_at: get(&row, 0)?,
            task_id: get(&row, 1)?,
            folded: get(&row, 2)?,
        })
    })
    .transpose()
}

fn key_from_row(row: &Row) -> Result<RollupKey> {
    let resolution: &str = get(row, 0)?;
    Ok(RollupKey {
        resolution: resolution
            .parse::<Resolution>()
            .map_err(|e| corrupt("analytics resolution", e))?,
        user_id: get(row, 1)?,
        bucket_start: get(row, 2)?,
        task_type: get(row, 3)?,
        provider: get(row, 4)?,
        model: get(row, 5)?,
    })
}

fn counts_from_row(row: &Row, at: usize) -> Result<RollupCounts> {
    Ok(RollupCounts {
        completed: get(row, at)?,
        failed: get(row, at + 1)?,
        cancelled: get(row, at + 2)?,
        attempts: get(row, at + 3)?,
        retries: get(row, at + 4)?,
        timeouts: get(row, at + 5)?,
        input_tokens: get(row, at + 6)?,
        output_tokens: get(row, at + 7)?,
    })
}

/// The key columns of `keys` as parallel arrays, for `unnest`.
struct KeyArrays {
    resolution: Vec<&'static str>,
    user_id: Vec<String>,
    bucket_start: Vec<i64>,
    task_type: Vec<String>,
    provider: Vec<String>,
    model: Vec<String>,
}

impl KeyArrays {
    fn of<'a>(keys: impl Iterator<Item = &'a RollupKey>) -> KeyArrays {
        let mut arrays = KeyArrays {
            resolution: Vec::new(),
            user_id: Vec::new(),
            bucket_start: Vec::new(),
            task_type: Vec::new(),
            provider: Vec::new(),
            model: Vec::new(),
        };
        for key in keys {
            arrays.resolution.push(key.resolution.as_str());
            arrays.user_id.push(key.user_id.clone());
            arrays.bucket_start.push(key.bucket_start);
            arrays.task_type.push(key.task_type.clone());
            arrays.provider.push(key.provider.clone());
            arrays.model.push(key.model.clone());
        }
        arrays
    }
}

/// Adds `deltas` to the stored rows inside `transaction`.
async fn add_deltas(transaction: &impl GenericClient, deltas: &Deltas) -> Result<()> {
    if deltas.rows.is_empty() {
        return Ok(());
    }
    let keys = KeyArrays::of(deltas.rows.keys());
    let existing = transaction
        .query(
            &format!(
                "SELECT r.{}, {} FROM analytics_rollups r \
                 JOIN unnest($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], \
                 $6::text[]) AS k(resolution, user_id, bucket_start, task_type, provider, model) \
                 USING ({KEY_COLUMNS}) FOR UPDATE OF r",
                KEY_COLUMNS.replace(", ", ", r."),
                VALUE_COLUMNS
            ),
            &[
                &keys.resolution,
                &keys.user_id,
                &keys.bucket_start,
                &keys.task_type,
                &keys.provider,
                &keys.model,
            ],
        )
        .await
        .map_err(map_db)?;
    let mut merged: BTreeMap<RollupKey, RollupValues> = deltas.rows.clone();
    for row in &existing {
        let key = key_from_row(row)?;
        let wait: &[u8] = get(row, 14)?;
        let run: &[u8] = get(row, 15)?;
        let stored = RollupValues {
            counts: counts_from_row(row, 6)?,
            wait: LogHistogram::decode(wait).map_err(|e| corrupt("analytics histogram", e))?,
            run: LogHistogram::decode(run).map_err(|e| corrupt("analytics histogram", e))?,
        };
        if let Some(values) = merged.get_mut(&key) {
            values.merge(&stored);
        }
    }
    let keys = KeyArrays::of(merged.keys());
    let column = |f: fn(&RollupCounts) -> i64| -> Vec<i64> {
        merged.values().map(|v| f(&v.counts)).collect()
    };
    let waits: Vec<Vec<u8>> = merged.values().map(|v| v.wait.encode()).collect();
    let runs: Vec<Vec<u8>> = merged.values().map(|v| v.run.encode()).collect();
    transaction
        .execute(
            &format!(
                "INSERT INTO analytics_rollups ({KEY_COLUMNS}, {VALUE_COLUMNS}) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], \
                 $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], \
                 $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::bytea[], $16::bytea[]) \
                 ON CONFLICT ({KEY_COLUMNS}) DO UPDATE SET completed = EXCLUDED.completed, \
                 failed = EXCLUDED.failed, cancelled = EXCLUDED.cancelled, \
                 attempts = EXCLUDED.attempts, retries = EXCLUDED.retries, \
                 timeouts = EXCLUDED.timeouts, input_tokens = EXCLUDED.input_tokens, \
                 output_tokens = EXCLUDED.output_tokens, \
                 wait_histogram = EXCLUDED.wait_histogram, run_histogram = EXCLUDED.run_histogram"
            ),
            &[
                &keys.resolution,
                &keys.user_id,
                &keys.bucket_start,
                &keys.task_type,
                &keys.provider,
                &keys.model,
                &column(|c| c.completed),
                &column(|c| c.failed),
                &column(|c| c.cancelled),
                &column(|c| c.attempts),
                &column(|c| c.retries),
                &column(|c| c.timeouts),
                &column(|c| c.input_tokens),
                &column(|c| c.output_tokens),
                &waits,
                &runs,
            ],
        )
        .await
        .map_err(map_db)?;
    if !deltas.failures.is_empty() {
        let keys = KeyArrays::of(deltas.failures.keys().map(|(key, _)| key));
        let reasons: Vec<&str> = deltas.failures.keys().map(|(_, r)| r.as_str()).collect();
        let counts: Vec<i64> = deltas.failures.values().copied().collect();
        transaction
            .execute(
                &format!(
                    "INSERT INTO analytics_failures ({KEY_COLUMNS}, reason, count) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[], \
                     $5::text[], $6::text[], $7::text[], $8::int8[]) \
                     ON CONFLICT ({KEY_COLUMNS}, reason) \
                     DO UPDATE SET count = analytics_failures.count + EXCLUDED.count"
                ),
                &[
                    &keys.resolution,
                    &keys.user_id,
                    &keys.bucket_start,
                    &keys.task_type,
                    &keys.provider,
                    &keys.model,
                    &reasons,
                    &counts,
                ],
            )
            .await
            .map_err(map_db)?;
    }
    Ok(())
}

/// The `WHERE` clause selecting `query`'s rows; `$1`–`$4` are resolution, from, to, user.
fn selection(query: &RollupQuery) -> (&'static str, String) {
    match &query.users {
        UserScope::AllUsers => ("user_id = $4", ALL_USERS.to_owned()),
        UserScope::User(user) => ("user_id = $4", user.clone()),
        UserScope::EachUser => ("user_id <> $4", ALL_USERS.to_owned()),
    }
}

#[async_trait]
impl AnalyticsStore for PostgresStore {
    async fn fold_finished(&self, until: UnixMillis, limit: usize) -> Result<Vec<FoldedTask>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let start = Watermark::start();
        // Waits for a concurrent first fold to commit, then does nothing.
        transaction
            .execute(
                "INSERT INTO analytics_watermark (id, completed_at, task_id, folded) \
                 VALUES (1, $1, $2, 0) ON CONFLICT (id) DO NOTHING",
                &[&start.completed_at, &start.task_id],
            )
            .await
            .map_err(map_db)?;
        let mark = read_watermark(&transaction, true).await?.unwrap_or(start);
        // The batch's upper bound, read off the `completed_at` index in index order: sorting the
        // whole unfolded range by `(completed_at, id)` on every fold would cost the history.
        let end: Option<i64> = transaction
            .query_opt(
                "SELECT completed_at FROM background_tasks \
                 WHERE completed_at IS NOT NULL AND completed_at > $1 AND completed_at <= $2 \
                 ORDER BY completed_at LIMIT 1 OFFSET $3",
                &[&mark.completed_at, &until, &(limit - 1)],
            )
            .await
            .map_err(map_db)?
            .map(|row| get(&row, 0))
            .transpose()?;
        let until = end.unwrap_or(until);
        let rows = transaction
            .query(
                &format!(
                    "SELECT {} FROM background_tasks \
                     WHERE completed_at IS NOT NULL \
                     AND status IN ('completed', 'failed', 'cancelled') \
                     AND completed_at >= $1 AND (completed_at > $1 OR id COLLATE \"C\" > $2) \
                     AND completed_at <= $3 ORDER BY completed_at, id COLLATE \"C\" LIMIT $4",
                    task_columns("")
                ),
                &[&mark.completed_at, &mark.task_id, &until, &limit],
            )
            .await
            .map_err(map_db)?;
        let mut folded = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(task) = FoldedTask::of(&task_from_row(row)?) {
                folded.push(task);
            }
        }
        add_deltas(&transaction, &Deltas::of(&folded)).await?;
        let next = mark.advanced(&folded);
        transaction
            .execute(
                "UPDATE analytics_watermark SET completed_at = $1, task_id = $2, folded = $3 \
                 WHERE id = 1",
                &[&next.completed_at, &next.task_id, &next.folded],
            )
            .await
            .map_err(map_db)?;
        transaction.commit().await.map_err(map_db)?;
        Ok(folded)
    }

    async fn watermark(&self) -> Result<Option<Watermark>> {
        let client = self.client().await?;
        read_watermark(&client, false).await
    }

    async fn rollups(&self, query: &RollupQuery) -> Result<Rollups> {
        let client = self.client().await?;
        let (filter, user) = selection(query);
        let resolution = query.resolution.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&resolution, &query.from, &query.to, &user];
        let rows = client
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS}, {VALUE_COLUMNS} FROM analytics_rollups \
                     WHERE resolution = $1 AND {filter} AND bucket_start >= $2 \
                     AND bucket_start < $3 ORDER BY {KEY_COLUMNS}"
                ),
                &params,
            )
            .await
            .map_err(map_db)?
            .iter()
            .map(|row| {
                Ok(RollupRow {
                    key: key_from_row(row)?,
                    counts: counts_from_row(row, 6)?,
                    wait: get::<Vec<u8>>(row, 14)?,
                    run: get::<Vec<u8>>(row, 15)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let failures = client
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS}, reason, count FROM analytics_failures \
                     WHERE resolution = $1 AND {filter} AND bucket_start >= $2 \
                     AND bucket_start < $3 ORDER BY {KEY_COLUMNS}, reason"
                ),
                &params,
            )
            .await
            .map_err(map_db)?
            .iter()
            .map(|row| {
                Ok(FailureRow {
                    key: key_from_row(row)?,
                    reason: get(row, 6)?,
                    count: get(row, 7)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Rollups {
            rows,
            failures,
            watermark: read_watermark(&client, false).await?,
        })
    }

    async fn prune_rollups(&self, resolution: Resolution, before: UnixMillis) -> Result<u64> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        // Taking the fold lock keeps a fold from writing back a row read before the delete.
        read_watermark(&transaction, true).await?;
        let resolution = resolution.as_str();
        let deleted = transaction
            .execute(
                "DELETE FROM analytics_rollups WHERE resolution = $1 AND bucket_start < $2",
                &[&resolution, &before],
            )
            .await
            .map_err(map_db)?;
        transaction
            .execute(
                "DELETE FROM analytics_failures WHERE resolution = $1 AND bucket_start < $2",
                &[&resolution, &before],
            )
            .await
            .map_err(map_db)?;
        transaction.commit().await.map_err(map_db)?;
        Ok(deleted)
    }
}
