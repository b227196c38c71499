//! Big histories (issue #21, target 5): the listings, searches and a fair claim on a table of
//! 1,000,000 tasks (90 % finished), through the stores' own methods, on SQLite and on
//! PostgreSQL, each timed in alternating rounds against a primary-key `get` (the baseline) in
//! the same run.
//!
//! The history is realistic in the ways that matter to the plans: 2,000 ordinary users and three
//! heavy ones (30 % of all tasks between them), quiz labels and descriptions in Swedish with
//! about forty topics ("10 frågor om Historia"), a rare topic (one task in 10,000) for the
//! search that finds few and a middling one (one in 400), JSON params, results of about 0.5 KB, failed and cancelled tasks
//! scattered over the year, unfinished tasks among the newest.
//!
//! The queries are the ones the HTTP listings send: `GET /api/tasks` and `getBackgroundTasks`
//! for a user (`userId` = the caller, 100 per page, the first page and a later one), the
//! superuser dashboard (`/superuser/tasks`: a status filter, a text search `q`, 100 per page),
//! and the runtime's claim (64, fairness on with the default 2 running per user), beside the
//! same claim of one task and, as the floor of both, the claims without fairness (the same rows
//! move to `processing`; only the pick differs).
//!
//! Run: `cargo bench -p task-postgres --bench history` (SQLite only), with
//! `TASKLANE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test` for PostgreSQL too.
//! `TASKLANE_BENCH_TASKS` (default 1,000,000) and `TASKLANE_BENCH_SAMPLES` (default 300 per
//! query) change the size; `TASKLANE_BENCH_ONLY=sqlite` or `postgres` runs one backend;
//! `TASKLANE_BENCH_KEEP=1` keeps the SQLite file and the PostgreSQL schema
//! (`tasklane_bench_history`) for `EXPLAIN`; `TASKLANE_BENCH_REUSE=1` measures a kept one again
//! without loading (the load takes minutes); `TASKLANE_BENCH_PROBES=claim` measures only the
//! probes whose name holds that text. On SQLite the loaded tasks are indexed for search as the
//! search indexer would, all but the newest `TASKLANE_BENCH_UNINDEXED` (default 5,000), which
//! searches read from the table. Results: `docs/benchmarks.md`, "Big histories".

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use task_core::{TaskId, TaskStatus};
use task_postgres::{PostgresConfig, PostgresStore};
use task_store::rusqlite::{params, Connection};
use task_store::{ClaimRequest, Lease, ListQuery, SqliteStore, TaskStore};
use tokio_postgres::NoTls;

const DEFAULT_TASKS: usize = 1_000_000;
const DEFAULT_SAMPLES: usize = 300;
/// Sampling one query stops after this long (with at least five samples).
const PROBE_BUDGET: Duration = Duration::from_secs(20);
const SCHEMA: &str = "tasklane_bench_history";
const ORDINARY_USERS: u64 = 2_000;
const HEAVY_USERS: [&str; 3] = [
    "heavy0@example.com",
    "heavy1@example.com",
    "heavy2@example.com",
];
/// Spread of the history: one year, ending now.
const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
const TOPICS: [&str; 40] = [
    "Historia",
    "Geografi",
    "Vetenskap",
    "Sport",
    "Musik",
    "Film",
    "Litteratur",
    "Konst",
    "Matematik",
    "Djur",
    "Mat och dryck",
    "Rymden",
    "Teknik",
    "Politik",
    "Religion",
    "Språk",
    "Mode",
    "Arkitektur",
    "Medicin",
    "Kemi",
    "Fysik",
    "Biologi",
    "Ekonomi",
    "Filosofi",
    "Mytologi",
    "Svensk historia",
    "Världskrigen",
    "Antiken",
    "Vikingatiden",
    "Kungahuset",
    "Datorspel",
    "Serier",
    "Teater",
    "Dans",
    "Fåglar",
    "Växter",
    "Hav och sjöar",
    "Fjällen",
    "Städer",
    "Uppfinningar",
];
/// One task in [`RARE_EVERY`] is about this topic: the search that finds few.
const RARE_TOPIC: &str = "Östersjöns fyrar";
const RARE_EVERY: u64 = 10_000;
/// One task in [`MIDDLING_EVERY`] is about this topic: a search between the two kinds.
const MIDDLING_TOPIC: &str = "Segelfartyg";
const MIDDLING_EVERY: u64 = 400;

/// SplitMix64: reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn hex20(&mut self) -> String {
        format!("{:016x}{:04x}", self.next(), self.next() & 0xffff)
    }
}

/// One generated task row, in the columns both schemas share.
struct Row {
    id: String,
    user_id: String,
    task_type: &'static str,
    status: &'static str,
    label: String,
    description: String,
    progress: i64,
    result: Option<String>,
    created_at: i64,
    updated_at: i64,
    completed_at: Option<i64>,
    error: Option<String>,
    params: String,
    attempt: i64,
    run_at: i64,
    lease_owner: Option<String>,
    lease_token: Option<String>,
    lease_expires_at: Option<i64>,
    started_at: Option<i64>,
    waiting_for: i64,
}

fn user_of(rng: &mut Rng) -> String {
    let pick = rng.below(100);
    if pick < 30 {
        HEAVY_USERS[(pick % 3) as usize].to_owned()
    } else {
        format!("user{}@example.com", rng.below(ORDINARY_USERS))
    }
}

/// The `index`-th oldest of `total` tasks.
fn generate(rng: &mut Rng, index: usize, total: usize, now: i64) -> Row {
    let start = now - YEAR_MS;
    let created_at = start + (YEAR_MS as f64 * index as f64 / total as f64) as i64;
    let id = format!("task_{created_at}_{}", rng.hex20());
    let user_id = user_of(rng);
    let kind = rng.below(100);
    let task_type = match kind {
        0..80 => "generation",
        80..95 => "validation",
        _ => "emoji-regeneration",
    };
    let topic = if rng.below(RARE_EVERY) == 0 {
        RARE_TOPIC
    } else if rng.below(MIDDLING_EVERY) == 0 {
        MIDDLING_TOPIC
    } else {
        // Skewed: the first topics are asked for more often.
        let a = rng.below(TOPICS.len() as u64);
        let b = rng.below(TOPICS.len() as u64);
        TOPICS[a.min(b) as usize]
    };
    let amount = 5 + rng.below(16) as i64;
    let label = match task_type {
        "generation" => format!("{amount} frågor om {topic}"),
        "validation" => format!("Validera {amount} frågor om {topic}"),
        _ => format!("Nya emojis för {amount} frågor om {topic}"),
    };
    let difficulty = ["easy", "medium", "hard"][rng.below(3) as usize];
    let params = json!({
        "category": topic,
        "amount": amount,
        "provider": "openai",
        "model": "gpt-4o-mini",
        "difficulty": difficulty,
        "language": "sv",
    })
    .to_string();
    // The newest 15 % hold every unfinished task: two in three of them are unfinished.
    let recent = index * 100 >= total * 85;
    let unfinished = recent && rng.below(3) < 2;
    let status = if unfinished {
        match rng.below(200) {
            0 => "processing",
            1 => "waiting",
            _ => "pending",
        }
    } else {
        match rng.below(100) {
            0..94 => "completed",
            94..98 => "failed",
            _ => "cancelled",
        }
    };
    let duration = 2_000 + rng.below(60_000) as i64;
    let mut row = Row {
        id,
        user_id,
        task_type,
        status,
        label,
        description: String::new(),
        progress: 0,
        result: None,
        created_at,
        updated_at: created_at,
        completed_at: None,
        error: None,
        params,
        attempt: 0,
        run_at: created_at,
        lease_owner: None,
        lease_token: None,
        lease_expires_at: None,
        started_at: None,
        waiting_for: 0,
    };
    match status {
        "completed" => {
            let ids: Vec<String> = (0..amount.min(10))
                .map(|_| format!("q_{created_at}_{}", rng.hex20()))
                .collect();
            row.description = format!("Klar: {amount} frågor om {topic} sparade");
            row.progress = 100;
            row.result = Some(
                json!({
                    "questionIds": ids,
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "usage": {"inputTokens": 1200 + rng.below(800), "outputTokens": 2400 + rng.below(1600)},
                    "durationMs": duration,
                })
                .to_string(),
            );
            row.attempt = 1;
            row.started_at = Some(created_at + 50);
            row.completed_at = Some(created_at + duration);
            row.updated_at = created_at + duration;
        }
        "failed" => {
            row.description = "Misslyckades efter 3 försök".to_owned();
            row.error = Some("provider timeout after 60 s (openai, gpt-4o-mini)".to_owned());
            row.progress = 30;
            row.attempt = 3;
            row.started_at = Some(created_at + 50);
            row.completed_at = Some(created_at + duration);
            row.updated_at = created_at + duration;
        }
        "cancelled" => {
            row.description = "Avbruten av användaren".to_owned();
            row.completed_at = Some(created_at + 1_000);
            row.updated_at = created_at + 1_000;
        }
        "processing" => {
            row.description = format!("Genererar fråga 3 av {amount} om {topic}");
            row.progress = 30;
            row.attempt = 1;
            row.started_at = Some(created_at + 50);
            row.lease_owner = Some("worker-1".to_owned());
            row.lease_token = Some(rng.hex20());
            row.lease_expires_at = Some(now + YEAR_MS);
        }
        "waiting" => {
            row.description = "Väntar på föregående uppgift".to_owned();
            row.waiting_for = 1;
        }
        _ => row.description = "Väntar på en arbetare".to_owned(),
    }
    row
}

/// The measured queries, each a closure over the store; built once per backend so both backends
/// run the same list.
#[derive(Clone)]
enum Probe {
    /// `GET /api/tasks?userId=<caller>` (or `getBackgroundTasks`): one user's newest 100.
    UserFirstPage(UserKind),
    /// The same user's third page (a cursor from the second).
    UserLaterPage(UserKind),
    /// The dashboard's status filter: `GET /api/tasks?status=<s>&limit=100`.
    Status(TaskStatus),
    /// The dashboard's search: `GET /api/tasks?q=<needle>&limit=100`, for everyone or one user.
    Search(&'static str, Option<UserKind>),
    /// A worker's claim of `limit`, fairness on (2 running per user) or off; the claimed tasks
    /// are completed again untimed. The claim without fairness is the fair one's floor: the
    /// same rows change, only the pick differs.
    Claim { limit: usize, fair: bool },
}

#[derive(Clone, Copy)]
enum UserKind {
    Ordinary,
    Heavy,
}

impl Probe {
    fn name(&self) -> String {
        let user = |kind: &UserKind| match kind {
            UserKind::Ordinary => "ordinary user",
            UserKind::Heavy => "heavy user",
        };
        match self {
            Probe::UserFirstPage(kind) => format!("user listing, 100, {}", user(kind)),
            Probe::UserLaterPage(kind) => format!("user listing, 3rd page, {}", user(kind)),
            Probe::Status(status) => format!("superuser, status={status}"),
            Probe::Search(needle, None) => format!("superuser, q={needle:?}"),
            Probe::Search(needle, Some(kind)) => format!("{}, q={needle:?}", user(kind)),
            Probe::Claim { limit, fair } => {
                format!("{} claim of {limit}", if *fair { "fair" } else { "plain" })
            }
        }
    }
}

fn probes() -> Vec<Probe> {
    vec![
        Probe::UserFirstPage(UserKind::Ordinary),
        Probe::UserFirstPage(UserKind::Heavy),
        Probe::UserLaterPage(UserKind::Heavy),
        Probe::Status(TaskStatus::Failed),
        Probe::Status(TaskStatus::Cancelled),
        Probe::Status(TaskStatus::Pending),
        Probe::Status(TaskStatus::Processing),
        Probe::Status(TaskStatus::Waiting),
        Probe::Search("historia", None),
        Probe::Search("ÖSTERSJÖNS FYRAR", None),
        Probe::Search("segelfartyg", None),
        Probe::Search("zebrafink", None),
        Probe::Search("historia", Some(UserKind::Heavy)),
        Probe::Search("östersjöns fyrar", Some(UserKind::Ordinary)),
        // The fair claims first: on PostgreSQL an unfair claim leaves the heads of the tasks it
        // took for a fair claim to repair (migration 0012), which the fair claims after it
        // would pay for.
        Probe::Claim {
            limit: 64,
            fair: true,
        },
        Probe::Claim {
            limit: 1,
            fair: true,
        },
        Probe::Claim {
            limit: 64,
            fair: false,
        },
        Probe::Claim {
            limit: 1,
            fair: false,
        },
    ]
}

fn pick_user(rng: &mut Rng, kind: UserKind) -> String {
    match kind {
        UserKind::Ordinary => format!("user{}@example.com", rng.below(ORDINARY_USERS)),
        UserKind::Heavy => HEAVY_USERS[rng.below(3) as usize].to_owned(),
    }
}

/// Runs `probe` once, timed; setup (a cursor) and cleanup (releasing claimed tasks) untimed.
/// Returns the time and, for a claim, how many tasks it took.
async fn run_probe(store: &dyn TaskStore, probe: &Probe, rng: &mut Rng) -> (Duration, usize) {
    let page = |user_id: Option<String>| ListQuery {
        user_id,
        limit: 100,
        ..ListQuery::default()
    };
    match probe {
        Probe::UserFirstPage(kind) => {
            let query = page(Some(pick_user(rng, *kind)));
            (timed(store.list(&query)).await.1, 0)
        }
        Probe::UserLaterPage(kind) => {
            let mut query = page(Some(pick_user(rng, *kind)));
            for _ in 0..2 {
                let next = store.list(&query).await.expect("list").next;
                query.after = next.or(query.after.clone());
            }
            (timed(store.list(&query)).await.1, 0)
        }
        Probe::Status(status) => {
            let query = ListQuery {
                statuses: vec![*status],
                ..page(None)
            };
            (timed(store.list(&query)).await.1, 0)
        }
        Probe::Search(needle, kind) => {
            let query = ListQuery {
                search: Some((*needle).to_owned()),
                ..page(kind.map(|kind| pick_user(rng, kind)))
            };
            (timed(store.list(&query)).await.1, 0)
        }
        Probe::Claim { limit, fair } => {
            let request = ClaimRequest {
                worker_id: "bench".to_owned(),
                limit: *limit,
                task_types: vec![
                    "generation".to_owned(),
                    "validation".to_owned(),
                    "emoji-regeneration".to_owned(),
                ],
                lease_for: Duration::from_secs(300),
                max_running_per_user: fair.then_some(2),
                now: task_core::now_millis(),
            };
            let (claimed, elapsed) = timed(store.claim(&request)).await;
            // Given back, not completed: every sample then claims from the same backlog (a
            // completed task would leave it, and 300 claims of 64 would use it up).
            for task in &claimed {
                let lease = Lease::of(task).expect("a claimed task holds a lease");
                store.release(&lease).await.expect("release");
            }
            (elapsed, claimed.len())
        }
    }
}

async fn timed<T, F>(work: F) -> (T, Duration)
where
    F: std::future::Future<Output = task_store::Result<T>>,
{
    let start = Instant::now();
    let out = work.await.expect("the store answers");
    (out, start.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Each probe `samples` times, each sample right after a baseline `get` of a random task (the
/// two alternate, so load from other processes falls on both); prints p50/p99 of both.
async fn measure(backend: &str, store: &dyn TaskStore, ids: &[TaskId], samples: usize) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n{backend}: {} tasks, {samples} samples per query, load average {}",
        ids.len(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("| query | p50 ms | p99 ms | max ms | baseline get p50 / p99 ms | rows | samples |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut rng = Rng(7);
    // `TASKLANE_BENCH_PROBES=claim` measures only the probes whose name holds that text.
    let wanted = std::env::var("TASKLANE_BENCH_PROBES").unwrap_or_default();
    for probe in probes()
        .into_iter()
        .filter(|probe| probe.name().contains(wanted.as_str()))
    {
        let mut times = Vec::with_capacity(samples);
        let mut baseline = Vec::with_capacity(samples);
        let mut fewest_claimed = usize::MAX;
        // Warm the page cache and the statement caches first.
        for _ in 0..3 {
            run_probe(store, &probe, &mut rng).await;
        }
        let began = Instant::now();
        for _ in 0..samples {
            // A query that misses by far would take the whole run: a few samples tell.
            if began.elapsed() > PROBE_BUDGET && times.len() >= 5 {
                break;
            }
            let id = &ids[rng.below(ids.len() as u64) as usize];
            let (_, base) = timed(store.get(id)).await;
            baseline.push(base);
            let (time, claimed) = run_probe(store, &probe, &mut rng).await;
            times.push(time);
            fewest_claimed = fewest_claimed.min(claimed);
        }
        let rows = match probe {
            // A claim's rows: the fewest tasks a sample took (a claim that finds nothing due
            // is fast and measures nothing).
            Probe::Claim { .. } => fewest_claimed,
            _ => rows_of(store, &probe, &mut Rng(11)).await,
        };
        times.sort();
        baseline.sort();
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.3} / {:.3} | {rows} | {} |",
            probe.name(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().expect("samples")),
            ms(percentile(&baseline, 0.5)),
            ms(percentile(&baseline, 0.99)),
            times.len(),
        );
    }
}

/// How many tasks one run of a listing probe returns (a claim: 0, counted while it runs).
async fn rows_of(store: &dyn TaskStore, probe: &Probe, rng: &mut Rng) -> usize {
    let query = match probe {
        Probe::Status(status) => ListQuery {
            statuses: vec![*status],
            ..ListQuery::default()
        },
        Probe::Search(needle, kind) => ListQuery {
            search: Some((*needle).to_owned()),
            user_id: kind.map(|kind| pick_user(rng, kind)),
            ..ListQuery::default()
        },
        Probe::UserFirstPage(kind) | Probe::UserLaterPage(kind) => ListQuery {
            user_id: Some(pick_user(rng, *kind)),
            ..ListQuery::default()
        },
        Probe::Claim { .. } => return 0,
    };
    store.list(&query).await.map(|p| p.tasks.len()).unwrap_or(0)
}

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let tasks = setting("TASKLANE_BENCH_TASKS", DEFAULT_TASKS);
    let samples = setting("TASKLANE_BENCH_SAMPLES", DEFAULT_SAMPLES);
    let only = std::env::var("TASKLANE_BENCH_ONLY").unwrap_or_default();
    let reuse = std::env::var("TASKLANE_BENCH_REUSE").is_ok_and(|v| v == "1");
    let keep = reuse || std::env::var("TASKLANE_BENCH_KEEP").is_ok_and(|v| v == "1");
    let now = task_core::now_millis();
    if only.is_empty() || only == "sqlite" {
        sqlite(tasks, samples, now, keep, reuse).await;
    }
    if only.is_empty() || only == "postgres" {
        match std::env::var("TASKLANE_TEST_POSTGRES") {
            Ok(url) => postgres(&url, tasks, samples, now, keep, reuse).await,
            Err(_) => println!("\npostgres: skipped, TASKLANE_TEST_POSTGRES is not set"),
        }
    }
}

async fn sqlite(tasks: usize, samples: usize, now: i64, keep: bool, reuse: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = if keep {
        std::env::temp_dir().join("tasklane-history.db")
    } else {
        dir.path().join("history.db")
    };
    if reuse && path.exists() {
        let store = Arc::new(SqliteStore::open(&path).expect("reopen"));
        index_for_search(store.as_ref()).await;
        let ids = kept_ids_sqlite(&path);
        measure("sqlite", store.as_ref(), &ids, samples).await;
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    // The store creates the schema; the rows go in through one plain connection, as a restore
    // would, since a million creations through the store's API would take most of the run.
    drop(SqliteStore::open(&path).expect("open"));
    let started = Instant::now();
    let ids = load_sqlite(&path, tasks, now);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "sqlite: loaded {tasks} tasks in {:.1} s, file {:.0} MB ({})",
        started.elapsed().as_secs_f64(),
        size as f64 / 1e6,
        path.display()
    );
    let store = Arc::new(SqliteStore::open(&path).expect("reopen"));
    index_for_search(store.as_ref()).await;
    measure("sqlite", store.as_ref(), &ids, samples).await;
}

/// Indexes the loaded tasks for search as the search indexer would (batches of its default
/// size), all but the newest `TASKLANE_BENCH_UNINDEXED` (default 5,000): searches then also
/// read those from the table, as they read the tasks created since the indexer's last pass
/// (5,000 is what one second of creation at the HTTP bench's rate leaves).
async fn index_for_search(store: &SqliteStore) {
    // task-runtime's `DEFAULT_SEARCH_INDEX_BATCH_SIZE` (this crate does not depend on it).
    let batch = 500;
    // 0 is a valid setting here (index everything), which `setting` would refuse.
    let unindexed = std::env::var("TASKLANE_BENCH_UNINDEXED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let (started, mut indexed) = (Instant::now(), 0);
    let pending: usize = store
        .with_connection(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM background_tasks WHERE rowid > \
                 (SELECT indexed_through FROM background_tasks_search_watermark)",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("count the unindexed tasks")
        .try_into()
        .unwrap_or(0);
    let mut left = pending.saturating_sub(unindexed);
    while left > 0 {
        let done = store
            .index_search(batch.min(left))
            .await
            .expect("index for search");
        if done == 0 {
            break;
        }
        indexed += done;
        left -= done;
    }
    println!(
        "sqlite: indexed {indexed} tasks for search in {:.1} s ({:.0} a second), {} left above \
         the watermark",
        started.elapsed().as_secs_f64(),
        indexed as f64 / started.elapsed().as_secs_f64().max(1e-9),
        pending - indexed
    );
}

/// The ids of a kept file's tasks.
fn kept_ids_sqlite(path: &Path) -> Vec<TaskId> {
    let conn = Connection::open(path).expect("open");
    let mut statement = conn
        .prepare("SELECT id FROM background_tasks")
        .expect("prepare");
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))
        .expect("read ids")
        .map(|id| id.expect("an id").parse().expect("a task id"))
        .collect();
    ids
}

fn load_sqlite(path: &Path, tasks: usize, now: i64) -> Vec<TaskId> {
    let mut conn = Connection::open(path).expect("open");
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
        .expect("pragmas");
    let mut rng = Rng(42);
    let mut ids = Vec::with_capacity(tasks);
    let tx = conn.transaction().expect("begin");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO background_tasks (id, user_id, task_type, status, label, description, \
                 progress, total, result, created_at, updated_at, completed_at, error, params, \
                 attempt, max_attempts, run_at, lease_owner, lease_token, lease_expires_at, \
                 cancel_requested, version, started_at, waiting_for, priority) VALUES (?1, ?2, ?3, \
                 ?4, ?5, ?6, ?7, 100, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 3, ?15, ?16, ?17, ?18, 0, \
                 1, ?19, ?20, 1)",
            )
            .expect("prepare");
        for index in 0..tasks {
            let row = generate(&mut rng, index, tasks, now);
            insert
                .execute(params![
                    row.id,
                    row.user_id,
                    row.task_type,
                    row.status,
                    row.label,
                    row.description,
                    row.progress,
                    row.result,
                    row.created_at,
                    row.updated_at,
                    row.completed_at,
                    row.error,
                    row.params,
                    row.attempt,
                    row.run_at,
                    row.lease_owner,
                    row.lease_token,
                    row.lease_expires_at,
                    row.started_at,
                    row.waiting_for,
                ])
                .expect("insert");
            ids.push(row.id.parse().expect("a task id"));
        }
    }
    tx.commit().expect("commit");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    ids
}

async fn postgres(url: &str, tasks: usize, samples: usize, now: i64, keep: bool, reuse: bool) {
    let (admin, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to the bench server");
    tokio::spawn(connection);
    if reuse {
        let kept = admin
            .query(&format!("SELECT id FROM {SCHEMA}.background_tasks"), &[])
            .await;
        if let Ok(rows) = kept {
            let ids: Vec<TaskId> = rows
                .iter()
                .map(|row| row.get::<_, String>(0).parse().expect("a task id"))
                .collect();
            let store = PostgresStore::connect(url, PostgresConfig::with_schema(SCHEMA))
                .await
                .expect("connect the store");
            measure("postgres", &store, &ids, samples).await;
            return;
        }
    }
    admin
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        .await
        .expect("drop the bench schema");
    let store = PostgresStore::connect(url, PostgresConfig::with_schema(SCHEMA))
        .await
        .expect("connect the store");
    let started = Instant::now();
    let ids = load_postgres(&admin, tasks, now).await;
    println!(
        "\npostgres: loaded {tasks} tasks in {:.1} s (then VACUUM ANALYZE, as autovacuum would)",
        started.elapsed().as_secs_f64()
    );
    measure("postgres", &store, &ids, samples).await;
    if !keep {
        drop(store);
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            .await
            .expect("drop the bench schema");
    }
}

async fn load_postgres(admin: &tokio_postgres::Client, tasks: usize, now: i64) -> Vec<TaskId> {
    const BATCH: usize = 5_000;
    let insert = admin
        .prepare(&format!(
            "INSERT INTO {SCHEMA}.background_tasks (id, user_id, task_type, status, label, \
             description, progress, total, result, created_at, updated_at, completed_at, error, \
             params, attempt, max_attempts, run_at, lease_owner, lease_token, lease_expires_at, \
             cancel_requested, version, started_at, waiting_for, priority) \
             SELECT id, user_id, task_type, status, label, description, progress, 100, \
             result::jsonb, created_at, updated_at, completed_at, error, params::jsonb, attempt, \
             3, run_at, lease_owner, lease_token, lease_expires_at, false, 1, started_at, \
             waiting_for, 1 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::int8[], $8::text[], $9::int8[], $10::int8[], \
             $11::int8[], $12::text[], $13::text[], $14::int8[], $15::int8[], $16::text[], \
             $17::text[], $18::int8[], $19::int8[], $20::int8[]) AS t(id, user_id, task_type, \
             status, label, description, progress, result, created_at, updated_at, \
             completed_at, error, params, attempt, run_at, lease_owner, lease_token, \
             lease_expires_at, started_at, waiting_for)"
        ))
        .await
        .expect("prepare the load");
    let mut rng = Rng(42);
    let mut ids = Vec::with_capacity(tasks);
    let mut index = 0;
    while index < tasks {
        let rows: Vec<Row> = (index..(index + BATCH).min(tasks))
            .map(|i| generate(&mut rng, i, tasks, now))
            .collect();
        index += rows.len();
        macro_rules! column {
            ($field:ident) => {
                rows.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
            };
        }
        let (id, user_id, label, description) = (
            column!(id),
            column!(user_id),
            column!(label),
            column!(description),
        );
        let task_type: Vec<&str> = rows.iter().map(|r| r.task_type).collect();
        let status: Vec<&str> = rows.iter().map(|r| r.status).collect();
        let (progress, result, created_at, updated_at, completed_at) = (
            column!(progress),
            column!(result),
            column!(created_at),
            column!(updated_at),
            column!(completed_at),
        );
        let (error, params, attempt, run_at, lease_owner, lease_token) = (
            column!(error),
            column!(params),
            column!(attempt),
            column!(run_at),
            column!(lease_owner),
            column!(lease_token),
        );
        let (lease_expires_at, started_at, waiting_for) = (
            column!(lease_expires_at),
            column!(started_at),
            column!(waiting_for),
        );
        admin
            .execute(
                &insert,
                &[
                    &id,
                    &user_id,
                    &task_type,
                    &status,
                    &label,
                    &description,
                    &progress,
                    &result,
                    &created_at,
                    &updated_at,
                    &completed_at,
                    &error,
                    &params,
                    &attempt,
                    &run_at,
                    &lease_owner,
                    &lease_token,
                    &lease_expires_at,
                    &started_at,
                    &waiting_for,
                ],
            )
            .await
            .expect("load a batch");
        ids.extend(
            rows.iter()
                .map(|r| r.id.parse::<TaskId>().expect("a task id")),
        );
    }
    admin
        // VACUUM also moves the GIN indexes' pending entries (`fastupdate`) into the indexes,
        // which a search would otherwise scan one by one.
        .batch_execute(&format!("VACUUM ANALYZE {SCHEMA}.background_tasks"))
        .await
        .expect("vacuum analyze");
    ids
}
