//! Claiming: the oldest due tasks in one `FOR UPDATE SKIP LOCKED` statement, or a fair claim
//! (round-robin across users, a cap on each user's running tasks) under a per-schema advisory
//! lock so the caps hold across instances, reading the users in order from their heads
//! (`background_task_heads`, kept by triggers).

use std::collections::{HashMap, HashSet};

use task_core::{Task, TaskId, UnixMillis};
use task_store::backend::fair_claim::{FairPicker, Offer, Priority, OWN_CAPS_SQL};
use task_store::backend::lease_token::new_lease_token;
use task_store::backend::rules;
use task_store::{ClaimRequest, Result};

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::errors::{corrupt, map_db};
use crate::row::{get, task_from_row};
use crate::{sql, PostgresStore};

/// Where a task stands in due order: `(run_at, created_at, user_id, task_type, seq)`.
type DueKey = (UnixMillis, UnixMillis, String, String, i64);

/// A due task as the fair claim reads it, and as its picker holds it: the user goes with the
/// id so that a picked task's head can be found through the heads' key.
#[derive(Clone)]
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
            // Claims are left out of the heads' trigger (migration 0012): the heads naming
            // the tasks just taken move to their groups' next pending tasks here, once per
            // group.
            let taken: Vec<&str> = round.iter().map(|task| task.id.as_str()).collect();
            if !taken.is_empty() {
                repair_heads(&transaction, sql::DROP_CLAIMED_HEADS, &[&taken]).await?;
            }
            let complete = round.len() == picked.len();
            if !complete {
                let taken: HashSet<&TaskId> = round.iter().map(|task| &task.id).collect();
                let (missed, owners): (Vec<&str>, Vec<&str>) = picked
                    .iter()
                    .filter(|due| !taken.contains(&due.id))
                    .map(|due| (due.id.as_str(), due.user_id()))
                    .unzip();
                repair_heads(&transaction, sql::DROP_STALE_HEADS, &[&missed, &owners]).await?;
            }
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
) -> Result<Vec<Due>> {
    let running_per_user = transaction
        .prepare_cached(sql::RUNNING_PER_USER)
        .await
        .map_err(map_db)?;
    let own_caps = transaction
        .prepare_cached(OWN_CAPS_SQL)
        .await
        .map_err(map_db)?;
    let mut running: HashMap<String, u64> = transaction
        .query(&running_per_user, &[])
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
        .query(&own_caps, &[])
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

/// Heads a fair claim reads per page beyond the claim's size and the capped users it may meet.
const HEADS_SLACK: usize = 32;

/// One priority band of a fair claim of `limit` tasks, offered to `picker`.
///
/// As on SQLite: the band's due heads (each user's oldest pending task per task type) are read
/// in due order and offered to the [`FairPicker`] until it has `limit` users, which meets the
/// users in the order of their oldest due task without reading anyone's backlog. A page holds
/// enough heads for `limit` users past every capped one, so one page settles the claim unless
/// users have heads of several types. When every head was offered and users have room for
/// more, one more query reads their next due tasks (fewer than `limit` users, one index seek
/// each).
async fn pick_band(
    transaction: &Transaction<'_>,
    request: &ClaimRequest,
    priority: i16,
    limit: usize,
    mut picker: FairPicker<Due>,
) -> Result<FairPicker<Due>> {
    let page = limit + picker.capped_count() + HEADS_SLACK;
    let statement = transaction
        .prepare_cached(sql::FAIR_HEADS)
        .await
        .map_err(map_db)?;
    // Each user's first head offered: where its further tasks start.
    let mut oldest: HashMap<String, DueKey> = HashMap::new();
    let mut after: DueKey = (i64::MIN, i64::MIN, String::new(), String::new(), 0);
    loop {
        let rows = transaction
            .query(
                &statement,
                &[
                    &request.now,
                    &request.task_types,
                    &i64::try_from(page).unwrap_or(i64::MAX),
                    &priority,
                    &after.0,
                    &after.1,
                    &after.2,
                    &after.3,
                ],
            )
            .await
            .map_err(map_db)?;
        for row in &rows {
            let due = Due::read(row)?;
            after = due.key.clone();
            // A later head of a user already met is one of its younger tasks of another type;
            // the per-user read below takes those in due order.
            if picker.knows(due.user_id()) {
                continue;
            }
            if picker.offer(due.user_id(), due.clone()) == Offer::Done {
                return Ok(picker);
            }
            if picker.knows(due.user_id()) {
                oldest.insert(due.user_id().to_owned(), due.key);
            }
        }
        if rows.len() < page {
            break;
        }
    }

    let wanting: Vec<(String, usize)> = picker
        .wanting()
        .into_iter()
        .filter(|(user, _)| oldest.contains_key(user))
        .collect();
    if wanting.is_empty() {
        return Ok(picker);
    }
    let mut users = Vec::with_capacity(wanting.len());
    let (mut run_at, mut created_at, mut task_type, mut seq) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut wanted = 0;
    for (user, room) in &wanting {
        let key = &oldest[user];
        users.push(user.as_str());
        run_at.push(key.0);
        created_at.push(key.1);
        task_type.push(key.3.as_str());
        seq.push(key.4);
        wanted = wanted.max(*room);
    }
    let statement = transaction
        .prepare_cached(sql::FAIR_NEXT)
        .await
        .map_err(map_db)?;
    transaction
        .batch_execute(&format!("SET LOCAL {}", sql::FAIR_NEXT_PLANNER))
        .await
        .map_err(map_db)?;
    let rows = transaction
        .query(
            &statement,
            &[
                &request.now,
                &request.task_types,
                &users,
                &run_at,
                &created_at,
                &task_type,
                &seq,
                &i64::try_from(wanted).unwrap_or(i64::MAX),
                &priority,
            ],
        )
        .await
        .map_err(map_db)?;
    transaction
        .batch_execute("RESET enable_bitmapscan")
        .await
        .map_err(map_db)?;
    // Rows come in due order per user; the picker caps each user at its room.
    for row in &rows {
        let due = Due::read(row)?;
        picker.offer(&due.key.2.clone(), due);
    }
    Ok(picker)
}

/// Runs `drop` (a statement that deletes heads and returns their groups: naming tasks just
/// claimed, or picked, not claimed and no longer pending there) and gives each dropped group its
/// oldest pending task as head, or none.
async fn repair_heads(
    transaction: &Transaction<'_>,
    drop: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<()> {
    let drop = transaction.prepare_cached(drop).await.map_err(map_db)?;
    let rows = transaction.query(&drop, params).await.map_err(map_db)?;
    refill_heads(transaction, &rows).await
}

/// Gives each group among `rows` (`user_id, priority, task_type`) its oldest pending task as
/// head, or none.
async fn refill_heads(transaction: &Transaction<'_>, rows: &[tokio_postgres::Row]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut users: Vec<String> = Vec::with_capacity(rows.len());
    let mut priorities: Vec<i16> = Vec::with_capacity(rows.len());
    let mut types: Vec<String> = Vec::with_capacity(rows.len());
    for row in rows {
        users.push(get(row, 0)?);
        priorities.push(get(row, 1)?);
        types.push(get(row, 2)?);
    }
    let refill = transaction
        .prepare_cached(sql::REFILL_HEADS)
        .await
        .map_err(map_db)?;
    transaction
        .execute(&refill, &[&users, &priorities, &types])
        .await
        .map_err(map_db)?;
    Ok(())
}

/// Claims the picked tasks that are still due, in the pick's order.
async fn claim_picked(
    transaction: &Transaction<'_>,
    request: &ClaimRequest,
    picked: &[Due],
) -> Result<Vec<Task>> {
    let ids: Vec<&str> = picked.iter().map(|due| due.id.as_str()).collect();
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
    Ok(picked
        .iter()
        .filter_map(|due| by_id.remove(&due.id))
        .collect())
}

/// `count` fresh lease tokens.
fn new_tokens(count: usize) -> Result<Vec<String>> {
    (0..count).map(|_| new_lease_token()).collect()
}
