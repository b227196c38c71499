//! Claiming: the oldest due tasks in one `FOR UPDATE SKIP LOCKED` statement, or a fair claim
//! (round-robin across users, a cap on each user's running tasks) under a per-schema advisory
//! lock so the caps hold across instances.

use std::collections::HashMap;

use task_core::{Task, TaskId, UnixMillis};
use task_store::backend::fair_claim::{FairPicker, Offer, Priority, OWN_CAPS_SQL};
use task_store::backend::lease_token::new_lease_token;
use task_store::backend::rules;
use task_store::{ClaimRequest, Result};

use deadpool_postgres::Transaction;

use crate::errors::{corrupt, map_db};
use crate::row::{get, task_from_row};
use crate::{sql, PostgresStore};

/// Due-index entries a fair claim reads before it switches to per-user lookups, on top of four
/// per task asked for (as SQLite's).
const WINDOW_BASE: usize = 128;

/// Where a task stands in due order: `(run_at, created_at, user_id, task_type, seq)`.
type DueKey = (UnixMillis, UnixMillis, String, String, i64);

/// A due task as the fair claim reads it.
struct Due {
    key: DueKey,
    id: TaskId,
}

impl Due {
    /// Reads `id, user_id, run_at, created_at, task_type, seq`.
    fn read(row: &tokio_postgres::Row) -> Result<Self> {
        let id: &str = get(row, 0)?;
        Ok(Self {
            id: id.parse().map_err(|e| corrupt("task id", e))?,
            key: (
                get(row, 2)?,
                get(row, 3)?,
                get(row, 1)?,
                get(row, 4)?,
                get(row, 5)?,
            ),
        })
    }

    fn user_id(&self) -> &str {
        &self.key.2
    }
}

impl PostgresStore {
    /// See [`task_store::TaskStore::claim`].
    pub(crate) async fn claim_tasks(&self, request: &ClaimRequest) -> Result<Vec<Task>> {
        rules::validate_claim(request)?;
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let claimed = match request.max_running_per_user {
            None => self.claim_oldest(request).await?,
            Some(max_running) => self.claim_fairly(request, max_running).await?,
        };
        for task in &claimed {
            self.committed(task);
        }
        Ok(claimed)
    }

    /// Without fairness: one statement ([`sql::CLAIM`]) for every priority band, highest
    /// first; concurrent claimers skip each other's rows.
    async fn claim_oldest(&self, request: &ClaimRequest) -> Result<Vec<Task>> {
        let tokens = new_tokens(request.limit)?;
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let bands: Vec<i16> = Priority::CLAIM_ORDER.iter().map(|p| p.rank()).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql::CLAIM).await.map_err(map_db)?;
        let rows = client
            .query(
                &statement,
                &[
                    &request.now,
                    &request.task_types,
                    &limit,
                    &request.worker_id,
                    &tokens,
                    &rules::lease_expiry(request),
                    &bands,
                ],
            )
            .await
            .map_err(map_db)?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let seq: i64 = get(row, crate::row::TASK_COLUMNS.len())?;
                Ok((task_from_row(row)?, seq))
            })
            .collect::<Result<Vec<(Task, i64)>>>()?;
        // RETURNING has no order; hand the tasks out bands first, each in due order, as the
        // other backends do.
        claimed.sort_by(|(a, a_seq), (b, b_seq)| {
            (
                std::cmp::Reverse(a.priority.rank()),
                a.run_at,
                a.created_at,
                &a.user_id,
                &a.task_type,
                a_seq,
            )
                .cmp(&(
                    std::cmp::Reverse(b.priority.rank()),
                    b.run_at,
                    b.created_at,
                    &b.user_id,
                    &b.task_type,
                    b_seq,
                ))
        });
        Ok(claimed.into_iter().map(|(task, _)| task).collect())
    }

    /// With fairness: under the schema's claim lock, counts running tasks per user, walks due
    /// tasks in due order through the shared [`FairPicker`] and claims the pick. The walk takes
    /// no row locks, so a task an unfair claimer took meanwhile drops out of the pick; another
    /// round then fills its place.
    async fn claim_fairly(&self, request: &ClaimRequest, max_running: u32) -> Result<Vec<Task>> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        let lock_name = format!("tasklane.claim.{}", self.inner.config.schema);
        transaction
            .execute(sql::FAIR_CLAIM_LOCK, &[&lock_name])
            .await
            .map_err(map_db)?;
        let mut claimed = Vec::new();
        for _ in 0..FAIR_ROUNDS {
            let wanted = request.limit - claimed.len();
            let picked = pick_fairly(&transaction, request, max_running, wanted).await?;
            if picked.is_empty() {
                break;
            }
            let round = claim_picked(&transaction, request, &picked).await?;
            let complete = round.len() == picked.len();
            claimed.extend(round);
            if complete || claimed.len() == request.limit {
                break;
            }
        }
        transaction.commit().await.map_err(map_db)?;
        Ok(claimed)
    }
}

/// Rounds of picking a fair claim makes before settling for fewer tasks than it could take.
const FAIR_ROUNDS: usize = 3;

/// The ids a fair claim of `limit` tasks takes now: the priority bands highest first, each in
/// round-robin order, with each user's running count carried from band to band.
async fn pick_fairly(
    transaction: &Transaction<'_>,
    request: &ClaimRequest,
    max_running: u32,
    limit: usize,
) -> Result<Vec<TaskId>> {
    let mut running: HashMap<String, u64> = transaction
        .query(sql::RUNNING_PER_USER, &[])
        .await
        .map_err(map_db)?
        .iter()
        .map(|row| {
            let user: String = get(row, 0)?;
            let count: i64 = get(row, 1)?;
            Ok((user, u64::try_from(count).unwrap_or(0)))
        })
        .collect::<Result<_>>()?;
    // Users' own running caps (`UserLimits::max_running`): only users whose limits were set.
    let caps: HashMap<String, u32> = transaction
        .query(OWN_CAPS_SQL, &[])
        .await
        .map_err(map_db)?
        .iter()
        .map(|row| {
            let user: String = get(row, 0)?;
            let cap: i64 = get(row, 1)?;
            Ok((user, u32::try_from(cap).unwrap_or(u32::MAX)))
        })
        .collect::<Result<_>>()?;
    let mut picked = Vec::with_capacity(limit);
    for priority in Priority::CLAIM_ORDER {
        let wanted = limit - picked.len();
        if wanted == 0 {
            break;
        }
        let picker =
            FairPicker::new(wanted, max_running, std::mem::take(&mut running)).with_caps(&caps);
        let picker = pick_band(transaction, request, priority.rank(), wanted, picker).await?;
        let (band, counts) = picker.finish_counted();
        picked.extend(band);
        running = counts;
    }
    Ok(picked)
}

/// One priority band of a fair claim of `limit` tasks, offered to `picker`.
///
/// As on SQLite: a window of the due index streams into the [`FairPicker`], which settles the
/// claim whenever the window holds `limit` users or every due task. Otherwise a few users with
/// big backlogs filled the window, and one more query walks the users with unfinished tasks
/// (one index seek each) with their next due tasks after the window, so a claim never scans a
/// backlog.
async fn pick_band(
    transaction: &Transaction<'_>,
    request: &ClaimRequest,
    priority: i16,
    limit: usize,
    mut picker: FairPicker<TaskId>,
) -> Result<FairPicker<TaskId>> {
    let window = WINDOW_BASE + 4 * limit;
    let statement = transaction
        .prepare_cached(sql::FAIR_WINDOW)
        .await
        .map_err(map_db)?;
    let rows = transaction
        .query(
            &statement,
            &[
                &request.now,
                &request.task_types,
                &i64::try_from(window).unwrap_or(i64::MAX),
                &priority,
            ],
        )
        .await
        .map_err(map_db)?;
    let mut last = None;
    for row in &rows {
        let due = Due::read(row)?;
        if picker.offer(due.user_id(), due.id.clone()) == Offer::Done {
            return Ok(picker);
        }
        last = Some(due.key);
    }
    let Some(position) = last.filter(|_| rows.len() == window) else {
        // Every due task was offered.
        return Ok(picker);
    };

    let statement = transaction
        .prepare_cached(sql::FAIR_PER_USER)
        .await
        .map_err(map_db)?;
    let rows = transaction
        .query(
            &statement,
            &[
                &request.now,
                &request.task_types,
                &position.0,
                &position.1,
                &position.2,
                &position.3,
                &position.4,
                &i64::try_from(limit).unwrap_or(i64::MAX),
                &priority,
            ],
        )
        .await
        .map_err(map_db)?;
    // Rows come in due order per user; users may interleave.
    let mut per_user: Vec<Vec<Due>> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let due = Due::read(row)?;
        match index_of.get(due.user_id()) {
            Some(&index) => per_user[index].push(due),
            None => {
                index_of.insert(due.user_id().to_owned(), per_user.len());
                per_user.push(vec![due]);
            }
        }
    }
    // Users already seen may take more, from after the window; the picker caps each at its
    // room. Users not seen yet come after all seen ones, in the order of their oldest due task.
    let mut unseen = Vec::new();
    for mut tasks in per_user {
        let user_id = tasks[0].user_id().to_owned();
        if picker.knows(&user_id) {
            for due in tasks {
                picker.offer(&user_id, due.id);
            }
        } else if !picker.is_capped(&user_id) {
            tasks.truncate(picker.room(&user_id));
            unseen.push(tasks);
        }
    }
    unseen.sort_by(|a, b| a[0].key.cmp(&b[0].key));
    for due in unseen.into_iter().flatten() {
        if picker.offer(due.user_id(), due.id.clone()) == Offer::Done {
            break;
        }
    }
    Ok(picker)
}

/// Claims the picked tasks that are still due, in the pick's order.
async fn claim_picked(
    transaction: &Transaction<'_>,
    request: &ClaimRequest,
    picked: &[TaskId],
) -> Result<Vec<Task>> {
    let ids: Vec<&str> = picked.iter().map(TaskId::as_str).collect();
    let tokens = new_tokens(picked.len())?;
    let statement = transaction
        .prepare_cached(&sql::CLAIM_PICKED)
        .await
        .map_err(map_db)?;
    let rows = transaction
        .query(
            &statement,
            &[
                &request.now,
                &request.worker_id,
                &rules::lease_expiry(request),
                &ids,
                &tokens,
            ],
        )
        .await
        .map_err(map_db)?;
    let mut by_id: HashMap<TaskId, Task> = rows
        .iter()
        .map(|row| task_from_row(row).map(|task| (task.id.clone(), task)))
        .collect::<Result<_>>()?;
    Ok(picked.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// `count` fresh lease tokens.
fn new_tokens(count: usize) -> Result<Vec<String>> {
    (0..count).map(|_| new_lease_token()).collect()
}
