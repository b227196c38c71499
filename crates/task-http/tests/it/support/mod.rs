//! The test harness: a real server on 127.0.0.1:0 over SQLite in a temp dir, with the worker
//! runtime running the `noop` and `sleep` test task types, three users, and helpers to make
//! tasks in a given state and wait (boundedly) for changes.

pub mod client;
pub mod flaky;
pub mod quiz_server;
pub mod sse;
pub mod sse_parser;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::Method;
use serde_json::{json, Value};
use task_core::{Task, TaskId};
use task_http::auth::accounts;
use task_http::{serve, AppState, HttpConfig, HttpError};
use task_runtime::testing::register_test_tasks;
use task_runtime::{
    Registry, RollupConfig, Rollups, Runtime, RuntimeConfig, RuntimeHandle, SchedulerConfig,
    Schedules, SystemClock,
};
use task_store::{Role, SqliteConfig, SqliteStore, TaskStore, UserStore};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::client::Call;
use self::flaky::Flaky;

/// A normal user.
pub const ALICE: &str = "alice@example.com";
/// Another normal user.
pub const BOB: &str = "bob@example.com";
/// A superuser.
pub const ROOT: &str = "root@example.com";
/// The longest any awaited condition may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How to start a test server.
pub struct Options {
    /// The server's settings.
    pub config: HttpConfig,
    /// Whether the worker runtime runs (off: tasks stay pending).
    pub runtime: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            config: HttpConfig::default(),
            runtime: true,
        }
    }
}

/// A running server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The store the server's task calls go through; [`Flaky::set_down`] breaks them.
    pub flaky: Arc<Flaky>,
    /// The SQLite store itself.
    pub store: Arc<SqliteStore>,
    /// Alice's API token.
    pub alice: String,
    /// Bob's API token.
    pub bob: String,
    /// The superuser's API token.
    pub root: String,
    /// The rollup loop's folding, run on demand by [`TestServer::fold`].
    pub(crate) rollups: Rollups,
    stop: CancellationToken,
    server: JoinHandle<Result<(), HttpError>>,
    runtime: Option<RuntimeHandle>,
    _dir: TempDir,
}

impl TestServer {
    /// A server with default settings and the runtime running.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// A server with `options`.
    pub async fn start_with(options: Options) -> Self {
        Self::start_with_store(options, SqliteConfig::default()).await
    }

    /// A server with `options` over a SQLite store with `store`'s settings.
    pub async fn start_with_store(options: Options, store: SqliteConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(SqliteStore::open_with(dir.path().join("tasklane.db"), store).unwrap());
        let flaky = Arc::new(Flaky::new(store.clone()));
        let users: Arc<dyn UserStore> = store.clone();
        let token = |email: &'static str, role| {
            let users = users.clone();
            async move {
                let (_, token) = accounts::add_user(users.as_ref(), email, role)
                    .await
                    .unwrap();
                token.secret().to_owned()
            }
        };
        let alice = token(ALICE, Role::User).await;
        let bob = token(BOB, Role::User).await;
        let root = token(ROOT, Role::Superuser).await;
        let registry = register_test_tasks(Registry::new());
        let task_types: Vec<String> = registry.task_types().map(str::to_owned).collect();
        let attempt_caps: Vec<(String, i64)> = registry
            .attempt_caps(&RuntimeConfig::default().default_task_type)
            .map(|(task_type, cap)| (task_type.to_owned(), cap))
            .collect();
        let runtime = options.runtime.then(|| {
            let tasks: Arc<dyn TaskStore> = store.clone();
            // Running `sleep` tasks are cut off quickly when a test shuts the server down.
            let config = RuntimeConfig {
                shutdown_grace: Duration::from_millis(200),
                ..RuntimeConfig::default()
            };
            Runtime::start(tasks, registry, config).unwrap()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<dyn TaskStore> = flaky.clone();
        let schedules = Schedules::new(
            store.clone(),
            store.clone(),
            Some(task_types.clone()),
            SchedulerConfig::default(),
            Arc::new(SystemClock),
        )
        .unwrap();
        let state = AppState::new(tasks, users, options.config, task_types)
            .unwrap()
            .with_attempt_caps(attempt_caps)
            .with_schedules(schedules.clone())
            // As the binary does: task streams carry the stored partial outputs.
            .with_event_log(store.clone())
            .with_analytics(store.clone())
            .with_provider_limits(store.clone(), provider_limits());
        let rollups = Rollups::new(
            store.clone(),
            RollupConfig {
                settle: Duration::ZERO,
                ..RollupConfig::default()
            },
            Some(state.fold_observer()),
        )
        .unwrap();
        let stop = CancellationToken::new();
        schedules.start(stop.clone());
        let server = tokio::spawn(serve(listener, state, stop.clone().cancelled_owned()));
        Self {
            addr,
            flaky,
            store,
            alice,
            bob,
            root,
            rollups,
            stop,
            server,
            runtime,
            _dir: dir,
        }
    }

    /// Folds every finished task into the analytics rollups, as the rollup loop does, and
    /// returns how many it folded.
    pub async fn fold(&self) -> usize {
        self.rollups.fold_due().await.unwrap()
    }

    /// A request to `path`.
    pub fn call(&self, method: Method, path: &str) -> Call {
        Call::new(self.addr, method, path)
    }

    /// A GET request.
    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    /// A POST request.
    pub fn post(&self, path: &str) -> Call {
        self.call(Method::POST, path)
    }

    /// Creates a task through `POST /api/tasks` as the owner of `token`.
    pub async fn create(&self, token: &str, body: Value) -> Task {
        let answer = self
            .post("/api/tasks")
            .bearer(token)
            .json(&body)
            .send()
            .await;
        answer.expect(201);
        serde_json::from_value(answer.json()).unwrap()
    }

    /// A task that stays `pending` (due in an hour).
    pub async fn pending_task(&self, token: &str) -> Task {
        let run_at = now_millis() + 3_600_000;
        self.create(token, json!({"task_type": "noop", "run_at": run_at}))
            .await
    }

    /// A `completed` task.
    pub async fn completed_task(&self, token: &str) -> Task {
        let task = self.create(token, json!({"task_type": "noop"})).await;
        self.wait_for(&task.id, |t| t.status.as_str() == "completed")
            .await
    }

    /// A `cancelled` task.
    pub async fn cancelled_task(&self, token: &str) -> Task {
        let task = self.pending_task(token).await;
        self.post(&format!("/api/tasks/{}/cancel", task.id))
            .bearer(token)
            .send()
            .await
            .expect(200);
        self.wait_for(&task.id, |t| t.status.as_str() == "cancelled")
            .await
    }

    /// A task that is `processing` (a long `sleep`).
    pub async fn running_task(&self, token: &str) -> Task {
        let task = self
            .create(
                token,
                json!({"task_type": "sleep", "params": {"ms": 60_000, "steps": 1}}),
            )
            .await;
        self.wait_for(&task.id, |t| t.status.as_str() == "processing")
            .await
    }

    /// Waits (at most [`WAIT`]) until the task satisfies `done`, watching the change feed.
    pub async fn wait_for(&self, id: &TaskId, done: impl Fn(&Task) -> bool) -> Task {
        let what = format!("task {id} to reach the expected state");
        task_store::testkit::wait_for_task(self.store.as_ref(), id, WAIT, &what, done).await
    }

    /// Shuts the server down and returns how long `serve` took to return.
    pub async fn shutdown(self) -> Duration {
        let started = Instant::now();
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.server)
            .await
            .expect("serve did not return in time")
            .unwrap()
            .unwrap();
        let took = started.elapsed();
        if let Some(runtime) = self.runtime {
            runtime.shutdown().await;
        }
        took
    }

    /// Starts shutting down without waiting.
    pub fn begin_shutdown(&self) {
        self.stop.cancel();
    }
}

/// The ids of `tasks` in the order listings use: newest first by `created_at`, then by `id`
/// (tasks created in the same millisecond are ordered by id, not by creation).
pub fn newest_first(tasks: &[Task]) -> Vec<String> {
    let mut sorted: Vec<&Task> = tasks.iter().collect();
    sorted.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    sorted.iter().map(|task| task.id.to_string()).collect()
}

pub use task_core::now_millis;

/// The provider limits the test servers show: `openai:*=concurrency=2,rpm=60`.
pub fn provider_limits() -> task_store::ProviderLimits {
    task_store::ProviderLimits::new(vec!["openai:*=concurrency=2,rpm=60".parse().unwrap()]).unwrap()
}
