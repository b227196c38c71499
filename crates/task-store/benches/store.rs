//! SqliteStore against a hand-written rusqlite loop running the same SQL on the same schema
//! with the same pragmas, in the same run: create, claim + complete and progress updates, from
//! one caller and from eight concurrent callers, and a fair claim from a 100 000-task backlog.
//! Prints ops/s and the store's share of the hand loop; then what SQLite alone spends on a
//! created task when 1, 20, 64 or 1,000 share a transaction.
//!
//! Run: `cargo bench -p task-store --bench store` (about 25 s once built). Results and how to
//! read them: `docs/benchmarks.md`, "Store (SQLite)".

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use task_core::NewTask;
use task_store::rusqlite::{params, Connection, TransactionBehavior};
use task_store::{ClaimRequest, Lease, SqliteStore, TaskStore};

/// Rounds per comparison; each round runs both sides once.
const ROUNDS: usize = 10;
/// Operations per side and round.
const CREATES: usize = 500;
const CLAIMS: usize = 200;
const PROGRESS_UPDATES: usize = 500;
/// Concurrent callers in the throughput runs (workers and request handlers call at once).
const CONCURRENT_CALLERS: usize = 8;
const BACKLOG: usize = 100_000;
/// Transaction sizes of the rows-per-transaction run, and the rows created at each size.
const ROWS_PER_TRANSACTION: [usize; 4] = [1, 20, 64, 1000];
const ROWS_PER_SIZE: usize = 60_000;
const BACKLOG_CLAIMS: usize = 100;

/// Every task column, as the store names them; a macro so that, like the store's, the hand
/// loop's statements are built at compile time and not formatted on every call.
macro_rules! columns {
    () => {
        "id, user_id, task_type, status, label, description, progress, total, result, error, \
         params, attempt, max_attempts, run_at, lease_owner, lease_token, lease_expires_at, \
         cancel_requested, version, created_at, updated_at, started_at, completed_at"
    };
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The hand-written side: one connection, the store's pragmas, cached statements, one
/// `BEGIN IMMEDIATE` transaction per operation, rows read into plain values.
struct Hand {
    conn: Connection,
    counter: u64,
}

impl Hand {
    fn open(path: &Path) -> Self {
        let conn = Connection::open(path).expect("open");
        conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .expect("wal");
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
        )
        .expect("pragmas");
        conn.set_db_config(
            task_store::rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .expect("QPSG");
        Self { conn, counter: 0 }
    }

    fn create(&mut self, user: &str) -> String {
        self.create_together(user, 1)
    }

    /// Creates `rows` tasks in one transaction, as the store's group commit does with the
    /// creations that arrive together; returns the last one's id.
    fn create_together(&mut self, user: &str, rows: usize) -> String {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        let mut id = String::new();
        for _ in 0..rows {
            id = insert(&tx, &mut self.counter, user);
        }
        tx.commit().expect("commit");
        id
    }

    fn claim_one(&mut self) -> Option<(String, String)> {
        self.counter += 1;
        let now = now_ms();
        let token = format!("{:032x}", self.counter);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        let rowid: Option<i64> = tx
            .prepare_cached(
                "SELECT rowid FROM background_tasks WHERE status = 'pending' AND run_at <= ?1 \
                 ORDER BY run_at, created_at, user_id, rowid LIMIT 1",
            )
            .expect("prepare")
            .query_row([now], |r| r.get(0))
            .ok();
        let claimed = rowid.map(|rowid| {
            // The store's claim statement: picked rows and their tokens bound as JSON.
            tx.prepare_cached(concat!(
                "UPDATE background_tasks SET status = 'processing', attempt = attempt + 1, \
                 progress = 0, started_at = ?2, completed_at = NULL, lease_owner = ?3, \
                 lease_token = picked.token, lease_expires_at = ?4, cancel_requested = 0, \
                 version = version + 1, updated_at = MAX(updated_at, ?2) \
                 FROM (SELECT value ->> 0 AS task_rowid, value ->> 1 AS token \
                       FROM json_each(?1)) AS picked \
                 WHERE background_tasks.rowid = picked.task_rowid AND status = 'pending' \
                 RETURNING ",
                columns!(),
                ", background_tasks.rowid"
            ))
            .expect("prepare")
            .query_row(
                params![
                    format!("[[{rowid},\"{token}\"]]"),
                    now,
                    "hand",
                    now + 30_000
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(15)?)),
            )
            .expect("claim")
        });
        tx.commit().expect("commit");
        claimed
    }

    fn complete(&mut self, id: &str, token: &str) {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        tx.prepare_cached(concat!(
            "UPDATE background_tasks SET status = 'completed', result = ?3, progress = total, \
             error = NULL, completed_at = ?4, lease_owner = NULL, lease_token = NULL, \
             lease_expires_at = NULL, version = version + 1, updated_at = MAX(updated_at, ?4) \
             WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 RETURNING ",
            columns!()
        ))
        .expect("prepare")
        .query_row(params![id, token, "{\"ok\":true}", now], |r| {
            r.get::<_, i64>(18)
        })
        .expect("complete");
        tx.commit().expect("commit");
    }

    fn progress(&mut self, id: &str, token: &str, progress: i64) {
        let now = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        tx.prepare_cached(concat!(
            "UPDATE background_tasks SET progress = ?3, description = COALESCE(?4, description), \
             version = version + 1, updated_at = MAX(updated_at, ?5) \
             WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 \
               AND ?3 >= progress AND ?3 <= total RETURNING ",
            columns!()
        ))
        .expect("prepare")
        .query_row(params![id, token, progress, "Working", now], |r| {
            r.get::<_, i64>(18)
        })
        .expect("progress");
        tx.commit().expect("commit");
    }
}

/// Inserts one pending task with the store's statement; returns its id.
fn insert(conn: &Connection, counter: &mut u64, user: &str) -> String {
    *counter += 1;
    let now = now_ms();
    let id = format!("task_{now}_{:020x}", *counter);
    conn.prepare_cached(concat!(
        "INSERT INTO background_tasks (",
        columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
         ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
    ))
    .expect("prepare")
    .execute(params![
        id,
        user,
        "bench",
        "pending",
        None::<String>,
        None::<String>,
        0,
        100,
        None::<String>,
        None::<String>,
        "{}",
        0,
        3,
        now,
        None::<String>,
        None::<String>,
        None::<i64>,
        false,
        1,
        now,
        now,
        None::<i64>,
        None::<i64>,
    ])
    .expect("insert");
    id
}

fn claim_request(limit: usize, fair: Option<u32>) -> ClaimRequest {
    ClaimRequest {
        worker_id: "bench".into(),
        limit,
        task_types: Vec::new(),
        lease_for: Duration::from_secs(30),
        max_running_per_user: fair,
        now: now_ms(),
    }
}

/// Runs `rounds` rounds of both sides, alternating which goes first so both see the same
/// machine noise, and prints ops/s of each and the store's share of the hand loop.
async fn compare<H, S, F>(name: &str, ops_per_round: usize, mut hand: H, mut store: S)
where
    H: FnMut(usize) -> Duration,
    S: FnMut(usize) -> F,
    F: Future<Output = Duration>,
{
    let (mut hand_total, mut store_total) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (hand_time, store_time) = if round % 2 == 0 {
            let hand_time = hand(round);
            (hand_time, store(round).await)
        } else {
            let store_time = store(round).await;
            (hand(round), store_time)
        };
        hand_total += hand_time;
        store_total += store_time;
        ratios.push(hand_time.as_secs_f64() / store_time.as_secs_f64());
    }
    let ops = (ops_per_round * ROUNDS) as f64;
    let store_rate = ops / store_total.as_secs_f64();
    let hand_rate = ops / hand_total.as_secs_f64();
    ratios.sort_by(f64::total_cmp);
    println!(
        "{name:<34} store {store_rate:>7.0} ops/s   hand loop {hand_rate:>7.0} ops/s   \
         ratio {:>4.0}%   (median round {:>4.0}%)",
        100.0 * store_rate / hand_rate,
        100.0 * ratios[ratios.len() / 2],
    );
}

/// Runs `op(caller, i)` for `i` in `0..ops / callers` on each of `callers` concurrent tasks
/// (inline when there is one caller) and returns the elapsed time.
async fn concurrently<F, Fut>(callers: usize, ops: usize, op: F) -> Duration
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = Instant::now();
    if callers == 1 {
        for i in 0..ops {
            op(0, i).await;
        }
        return started.elapsed();
    }
    let mut set = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let op = op.clone();
        set.spawn(async move {
            for i in 0..ops / callers {
                op(caller, i).await;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("caller finished");
    }
    started.elapsed()
}

fn fresh(dir: &Path, name: &str) -> (SqliteStore, Hand) {
    let store_path = dir.join(format!("{name}-store.db"));
    let hand_path = dir.join(format!("{name}-hand.db"));
    let store = SqliteStore::open(&store_path).expect("open store");
    // The hand loop gets the same schema, made by the same migrations.
    drop(SqliteStore::open(&hand_path).expect("create hand db"));
    (store, Hand::open(&hand_path))
}

fn label(what: &str, callers: usize) -> String {
    if callers == 1 {
        what.to_owned()
    } else {
        format!("{what} ({callers} callers)")
    }
}

async fn bench_create(dir: &Path, callers: usize) {
    let (store, mut hand) = fresh(dir, &format!("create-{callers}"));
    compare(
        &label("create", callers),
        CREATES,
        |_| {
            let started = Instant::now();
            for _ in 0..CREATES {
                hand.create("u@example.com");
            }
            started.elapsed()
        },
        |_| {
            let store = store.clone();
            concurrently(callers, CREATES, move |_, _| {
                let store = store.clone();
                async move {
                    store
                        .create(NewTask::new("u@example.com", "bench"))
                        .await
                        .expect("create");
                }
            })
        },
    )
    .await;
}

async fn bench_claim_complete(dir: &Path, callers: usize) {
    let (store, mut hand) = fresh(dir, &format!("claim-{callers}"));
    let batch: Vec<NewTask> = (0..CLAIMS * ROUNDS)
        .map(|_| NewTask::new("u@example.com", "bench"))
        .collect();
    store.create_many(batch).await.expect("seed");
    for _ in 0..CLAIMS * ROUNDS {
        hand.create("u@example.com");
    }
    compare(
        &label("claim + complete", callers),
        CLAIMS,
        |_| {
            let started = Instant::now();
            for _ in 0..CLAIMS {
                let (id, token) = hand.claim_one().expect("due task");
                hand.complete(&id, &token);
            }
            started.elapsed()
        },
        |_| {
            let store = store.clone();
            concurrently(callers, CLAIMS, move |_, _| {
                let store = store.clone();
                async move {
                    let task = store
                        .claim(&claim_request(1, None))
                        .await
                        .expect("claim")
                        .pop()
                        .expect("due task");
                    let lease = Lease::of(&task).expect("lease");
                    store
                        .complete(&lease, json!({"ok": true}))
                        .await
                        .expect("complete");
                }
            })
        },
    )
    .await;
}

async fn bench_progress(dir: &Path, callers: usize) {
    let (store, mut hand) = fresh(dir, &format!("progress-{callers}"));
    let per_caller = PROGRESS_UPDATES / callers;
    let total = (per_caller * ROUNDS) as i64 + 1;
    let mut leases = Vec::new();
    for _ in 0..callers {
        let mut new = NewTask::new("u@example.com", "bench");
        new.total = total;
        store.create(new).await.expect("create");
        let task = store
            .claim(&claim_request(1, None))
            .await
            .expect("claim")
            .remove(0);
        leases.push(Lease::of(&task).expect("lease"));
    }
    let leases = Arc::new(leases);
    hand.create("u@example.com");
    let hand_total = (PROGRESS_UPDATES * ROUNDS) as i64 + 1;
    hand.conn
        .execute("UPDATE background_tasks SET total = ?1", [hand_total])
        .expect("total");
    let (id, token) = hand.claim_one().expect("claim");

    compare(
        &label("progress update", callers),
        PROGRESS_UPDATES,
        |round| {
            let first = (round * PROGRESS_UPDATES + 1) as i64;
            let started = Instant::now();
            for step in first..first + PROGRESS_UPDATES as i64 {
                hand.progress(&id, &token, step);
            }
            started.elapsed()
        },
        |round| {
            let store = store.clone();
            let leases = Arc::clone(&leases);
            concurrently(callers, PROGRESS_UPDATES, move |caller, i| {
                let store = store.clone();
                let leases = Arc::clone(&leases);
                async move {
                    let step = (round * per_caller + i + 1) as i64;
                    store
                        .update_progress(&leases[caller], step, Some("Working".into()))
                        .await
                        .expect("progress");
                }
            })
        },
    )
    .await;
}

/// Where the single-caller gap comes from: the hand loop's progress update run behind the
/// same hand-off to a blocking thread that the store makes (`spawn_blocking`), next to the
/// store. Their ratio is the store's own overhead; the rest of the gap is the hand-off.
async fn bench_hand_off(dir: &Path) {
    let (store, mut hand) = fresh(dir, "hand-off");
    let total = (PROGRESS_UPDATES * ROUNDS) as i64 + 1;
    let mut new = NewTask::new("u@example.com", "bench");
    new.total = total;
    store.create(new).await.expect("create");
    let task = store
        .claim(&claim_request(1, None))
        .await
        .expect("claim")
        .remove(0);
    let lease = Lease::of(&task).expect("lease");
    hand.create("u@example.com");
    hand.conn
        .execute("UPDATE background_tasks SET total = ?1", [total])
        .expect("total");
    let (id, token) = hand.claim_one().expect("claim");
    let hand = Arc::new(std::sync::Mutex::new(hand));

    let (mut behind_total, mut store_total) = (Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        let first = (round * PROGRESS_UPDATES + 1) as i64;
        let started = Instant::now();
        for step in first..first + PROGRESS_UPDATES as i64 {
            let (hand, id, token) = (Arc::clone(&hand), id.clone(), token.clone());
            tokio::task::spawn_blocking(move || {
                hand.lock().expect("hand").progress(&id, &token, step);
            })
            .await
            .expect("hand-off");
        }
        behind_total += started.elapsed();
        let started = Instant::now();
        for step in first..first + PROGRESS_UPDATES as i64 {
            store
                .update_progress(&lease, step, Some("Working".into()))
                .await
                .expect("progress");
        }
        store_total += started.elapsed();
    }
    let ops = (PROGRESS_UPDATES * ROUNDS) as f64;
    println!(
        "{:<34} store {:>7.0} ops/s   hand loop behind spawn_blocking {:>7.0} ops/s   ratio {:>4.0}%",
        "progress update (same hand-off)",
        ops / store_total.as_secs_f64(),
        ops / behind_total.as_secs_f64(),
        100.0 * behind_total.as_secs_f64() / store_total.as_secs_f64(),
    );
}

/// One user's 100 000-task backlog ahead of 50 other users' tasks. The store's fair claim of 10
/// (at most 2 running per user) must not scan the backlog; it is timed next to the hand loop's
/// plain "oldest due first" claim of 10 on the same database.
async fn bench_backlog(dir: &Path) {
    let path = dir.join("backlog.db");
    let store = SqliteStore::open(&path).expect("open");
    let base = now_ms() - 10_000_000;
    for chunk in 0..(BACKLOG / 10_000) {
        let batch: Vec<NewTask> = (0..10_000)
            .map(|i| {
                NewTask::new("heavy@example.com", "bench")
                    .with_run_at(base + (chunk * 10_000 + i) as i64)
            })
            .collect();
        store.create_many(batch).await.expect("seed");
    }
    let others: Vec<NewTask> = (0..BACKLOG_CLAIMS * 10)
        .map(|i| {
            NewTask::new(format!("user{}@example.com", i % 50), "bench")
                .with_run_at(base + (BACKLOG + i) as i64)
        })
        .collect();
    store.create_many(others).await.expect("seed others");
    let mut hand = Hand::open(&path);

    let mut fair_time = Duration::ZERO;
    let mut hand_time = Duration::ZERO;
    for _ in 0..BACKLOG_CLAIMS {
        let started = Instant::now();
        let fair = store
            .claim(&claim_request(10, Some(2)))
            .await
            .expect("fair claim");
        fair_time += started.elapsed();
        assert!(
            fair.iter()
                .filter(|t| t.user_id == "heavy@example.com")
                .count()
                <= 2,
            "the heavy user is held to its limit"
        );
        assert!(fair.len() == 10, "other users fill the claim");
        // Finish what was claimed, so users stay below their limit.
        for task in &fair {
            let lease = Lease::of(task).expect("lease");
            store.complete(&lease, json!(null)).await.expect("complete");
        }
        let started = Instant::now();
        let plain: Vec<(String, String)> = (0..10).filter_map(|_| hand.claim_one()).collect();
        hand_time += started.elapsed();
        for (id, token) in plain {
            hand.complete(&id, &token);
        }
    }
    let per_claim = |total: Duration| total.as_secs_f64() * 1e6 / BACKLOG_CLAIMS as f64;
    println!(
        "claim of 10 with a {BACKLOG}-task backlog: store fair claim {:>6.0} µs   \
         hand loop oldest-first claim {:>6.0} µs   ({BACKLOG_CLAIMS} claims each)",
        per_claim(fair_time),
        per_claim(hand_time),
    );
}

/// SQLite's own cost of a created task by how many share a transaction: the hand loop alone,
/// in one thread, with no hand-off. Under load the store's writer commits the creations that
/// arrived together; this shows how much of a creation's cost is the commit.
fn bench_rows_per_transaction(dir: &Path) {
    let (_store, mut hand) = fresh(dir, "rows-per-transaction");
    for rows in ROWS_PER_TRANSACTION {
        // The same number of rows for every size, so the table grows alike.
        let transactions = (ROWS_PER_SIZE / rows).max(1);
        let started = Instant::now();
        for _ in 0..transactions {
            hand.create_together("u@example.com", rows);
        }
        let per_row = started.elapsed() / (transactions * rows) as u32;
        println!(
            "create, {rows:>4} per transaction (hand loop)   {:>6.1} µs per task",
            per_row.as_secs_f64() * 1e6
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    // Both sides run inside a task on a runtime worker, where the server's handlers and the
    // workers call the store.
    runtime.block_on(async move {
        tokio::spawn(async move {
            for callers in [1, CONCURRENT_CALLERS] {
                bench_create(&path, callers).await;
                bench_claim_complete(&path, callers).await;
                bench_progress(&path, callers).await;
            }
            bench_hand_off(&path).await;
            bench_backlog(&path).await;
            bench_rows_per_transaction(&path);
        })
        .await
        .expect("benchmarks ran");
    });
}
