//! Analytics queries over a month of history: 1,000,000 finished tasks written straight into a
//! SQLite file (30 days, 50 users, 3 task types, 3 provider/models, varied waits and run
//! times), folded into rollups by `fold_finished` (timed: the rollup loop's throughput), then
//! the 30-day questions timed against a baseline measured in the same run and alternating with
//! it: a plain read of one task by primary key (`TaskStore::get`).
//!
//! Timed queries (each `rollups` + `report`, as `GET /api/analytics` runs them):
//! - all users, 30 days by day, grouped by task type;
//! - all users, 30 days by hour (720 buckets), grouped by provider;
//! - one user, 30 days by day.
//!
//! Run: `cargo bench -p task-store --bench analytics` (a few minutes: most of it loading and
//! folding). Results: `docs/benchmarks.md`, "Analytics".

use std::time::{Duration, Instant};

use task_core::{TaskId, UnixMillis};
use task_store::analytics::{report, GroupBy, Prices, Resolution, RollupQuery, UserScope};
use task_store::rusqlite::params;
use task_store::{AnalyticsStore, SqliteStore, TaskStore};

const TASKS: usize = 1_000_000;
const DAYS: i64 = 30;
const USERS: u64 = 50;
const ROUNDS: usize = 10;
const QUERIES_PER_ROUND: usize = 50;
const FOLD_BATCH: usize = 5_000;
const INSERT_BATCH: usize = 20_000;
const DAY: i64 = 86_400_000;

struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Writes `TASKS` finished tasks, evenly over the `DAYS` before `end`. Returns one task's id
/// for the baseline read.
async fn load(store: &SqliteStore, end: UnixMillis) -> TaskId {
    let start = end - DAYS * DAY;
    let step = (DAYS * DAY) / TASKS as i64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0;
    let mut some_id = None;
    while written < TASKS {
        let mut rows = Vec::with_capacity(INSERT_BATCH);
        for n in written..(written + INSERT_BATCH).min(TASKS) {
            let completed = start + n as i64 * step;
            let wait_scale = 10u64.pow(1 + rng.below(5) as u32);
            let wait = rng.below(wait_scale) as i64;
            let run_scale = 10u64.pow(2 + rng.below(4) as u32);
            let run = 200 + rng.below(run_scale) as i64;
            let created = completed - run - wait;
            let id = TaskId::generate(created).expect("id");
            let task_type = ["generation", "validation", "emoji-regeneration"][n % 3];
            let (provider, model) = [
                ("openai", "gpt-4o-mini"),
                ("anthropic", "claude-sonnet-4-5"),
                ("gemini", "gemini-2.5-flash"),
            ][rng.below(3) as usize];
            let (status, error, result) = match rng.below(20) {
                0 => ("failed", Some("timed out after 10m".to_owned()), None),
                1 => ("failed", Some(format!("{provider} answered 503")), None),
                2 => ("cancelled", Some("Task was cancelled".to_owned()), None),
                _ => (
                    "completed",
                    None,
                    Some(format!(
                        r#"{{"provider":"{provider}","model":"{model}","usage":{{"inputTokens":{},"outputTokens":{}}}}}"#,
                        500 + rng.below(1500),
                        200 + rng.below(3000)
                    )),
                ),
            };
            let user = format!("user{}@example.com", rng.below(USERS));
            let attempt = 1 + i64::from(rng.below(10) == 0);
            some_id.get_or_insert_with(|| id.clone());
            rows.push((
                id.to_string(),
                user,
                task_type,
                status,
                result,
                error,
                provider,
                attempt,
                created,
                created + wait,
                completed,
            ));
        }
        written += rows.len();
        store
            .with_write_transaction(move |conn| {
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO background_tasks (id, user_id, task_type, status, progress, \
                         total, result, error, params, attempt, max_attempts, run_at, version, \
                         created_at, updated_at, started_at, completed_at) VALUES \
                         (?1, ?2, ?3, ?4, 100, 100, ?5, ?6, ?7, ?8, 3, ?9, 3, ?9, ?11, ?10, ?11)",
                    )
                    .map_err(task_store::map_sqlite_error)?;
                for (
                    id,
                    user,
                    task_type,
                    status,
                    result,
                    error,
                    provider,
                    attempt,
                    created,
                    started,
                    completed,
                ) in rows
                {
                    let params_json = format!(r#"{{"provider":"{provider}"}}"#);
                    insert
                        .execute(params![
                            id,
                            user,
                            task_type,
                            status,
                            result,
                            error,
                            params_json,
                            attempt,
                            created,
                            started,
                            completed
                        ])
                        .map_err(task_store::map_sqlite_error)?;
                }
                Ok(())
            })
            .await
            .expect("insert");
    }
    some_id.expect("tasks")
}

/// Runs `op` `QUERIES_PER_ROUND` times, adding each duration to `samples`.
async fn sample<F: std::future::Future<Output = ()>>(
    samples: &mut Vec<Duration>,
    mut op: impl FnMut() -> F,
) {
    for _ in 0..QUERIES_PER_ROUND {
        let started = Instant::now();
        op().await;
        samples.push(started.elapsed());
    }
}

fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqliteStore::open(dir.path().join("analytics.db")).expect("open");
    let end = task_core::now_millis();

    let started = Instant::now();
    let probe = load(&store, end).await;
    println!(
        "loaded {TASKS} finished tasks in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut folded = 0;
    loop {
        let batch = store.fold_finished(end, FOLD_BATCH).await.expect("fold");
        folded += batch.len();
        if batch.len() < FOLD_BATCH {
            break;
        }
    }
    let took = started.elapsed();
    assert_eq!(folded, TASKS);
    println!(
        "folded {folded} tasks in {:.1} s ({:.0} tasks/s, batches of {FOLD_BATCH})",
        took.as_secs_f64(),
        folded as f64 / took.as_secs_f64()
    );
    let rows: i64 = store
        .with_connection(|conn| {
            conn.query_row("SELECT count(*) FROM analytics_rollups", [], |r| r.get(0))
                .map_err(task_store::map_sqlite_error)
        })
        .await
        .expect("count");
    println!("rollup rows (all resolutions, per user and summed): {rows}");

    let from = Resolution::Day.bucket_start(end - DAYS * DAY);
    let to = Resolution::Day.bucket_start(end) + DAY;
    let prices = Prices::default();
    let queries: [(&str, RollupQuery, GroupBy); 3] = [
        (
            "30 days by day, all users, by type",
            RollupQuery {
                resolution: Resolution::Day,
                from,
                to,
                users: UserScope::AllUsers,
            },
            GroupBy::TaskType,
        ),
        (
            "30 days by hour, all users, by provider",
            RollupQuery {
                resolution: Resolution::Hour,
                from,
                to,
                users: UserScope::AllUsers,
            },
            GroupBy::Provider,
        ),
        (
            "30 days by day, one user",
            RollupQuery {
                resolution: Resolution::Day,
                from,
                to,
                users: UserScope::User("user7@example.com".to_owned()),
            },
            GroupBy::TaskType,
        ),
    ];
    // Sanity: the month's totals are every task.
    let month = store.rollups(&queries[0].1).await.expect("rollups");
    let month = report(&month, GroupBy::Nothing, &prices).expect("report");
    let total = month.totals[0].completed + month.totals[0].failed + month.totals[0].cancelled;
    assert_eq!(total as usize, TASKS);

    let mut baseline = Vec::new();
    let mut timed: Vec<Vec<Duration>> = vec![Vec::new(); queries.len()];
    for _ in 0..ROUNDS {
        sample(&mut baseline, || async {
            store.get(&probe).await.expect("get");
        })
        .await;
        for (i, (_, query, group_by)) in queries.iter().enumerate() {
            let store = &store;
            let prices = &prices;
            sample(&mut timed[i], || async move {
                let rollups = store.rollups(query).await.expect("rollups");
                std::hint::black_box(report(&rollups, *group_by, prices).expect("report"));
            })
            .await;
        }
    }
    let base_p50 = quantile(&mut baseline, 0.5);
    let base_p99 = quantile(&mut baseline, 0.99);
    println!(
        "baseline TaskStore::get by id: p50 {} p99 {} ({} samples)",
        ms(base_p50),
        ms(base_p99),
        baseline.len()
    );
    for (i, (name, query, _)) in queries.iter().enumerate() {
        let rows = store.rollups(query).await.expect("rollups").rows.len();
        let p50 = quantile(&mut timed[i], 0.5);
        let p99 = quantile(&mut timed[i], 0.99);
        println!(
            "{name} ({rows} rows): p50 {} p99 {} = {:.1}x the baseline's p99",
            ms(p50),
            ms(p99),
            p99.as_secs_f64() / base_p99.as_secs_f64()
        );
    }
}
