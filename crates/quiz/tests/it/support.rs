//! Shared test tools: the backends, a runtime with the quiz handlers against fake providers,
//! valid and broken model answers, and waits on the change feed with a bounded timeout (never
//! a sleep).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_providers::{ApiKey, ProviderSettings, Providers, ProvidersConfig};
use quiz::{
    AgeGroup, Difficulty, MemoryQuestionStore, NewQuestion, OfflineQuizResponder, Provenance,
    QuestionStore, QuizHandlers, SqliteQuestionStore,
};
use serde_json::{json, Value};
use task_core::{NewTask, Task, TaskId, TaskStatus};
use task_runtime::{Backoff, Registry, Runtime, RuntimeConfig, RuntimeHandle, TaskTypeConfig};
use task_store::{
    MemoryStore, ProviderLimitStore, SqliteStore, TaskChange, TaskEventLog, TaskStore, UserStore,
};
use tempfile::TempDir;
use test_support::{FakeProvider, ProviderKind};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

/// The longest any test waits for something that should happen. Generous for a loaded 2-core
/// CI machine; a wait that expires fails the test.
pub const WAIT: Duration = Duration::from_secs(20);
/// The owner of the tasks the tests create.
pub const USER: &str = "ada@example.com";
/// The model name the fakes are configured with.
pub const MODEL: &str = "test-model";

/// The three stores a scenario works with, on one backend.
pub struct Stores {
    pub tasks: Arc<dyn TaskStore>,
    pub users: Arc<dyn UserStore>,
    pub questions: Arc<dyn QuestionStore>,
    /// The task store's event log.
    pub events: Arc<dyn TaskEventLog>,
    /// The task store's provider limits (shared slots, minute counts and holds).
    pub providers: Arc<dyn ProviderLimitStore>,
    pub(crate) _dir: Option<TempDir>,
    pub(crate) _schema: Option<test_support::postgres::TestSchema>,
}

pub fn memory() -> Stores {
    let store = Arc::new(MemoryStore::new());
    Stores {
        tasks: store.clone(),
        users: store.clone(),
        events: store.clone(),
        providers: store,
        questions: Arc::new(MemoryQuestionStore::new()),
        _dir: None,
        _schema: None,
    }
}

pub async fn sqlite() -> Stores {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("tasklane.db")).expect("open sqlite");
    store
        .apply_migrations(&[&quiz::SQLITE_MIGRATIONS])
        .await
        .expect("questions table");
    Stores {
        tasks: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        events: Arc::new(store.clone()),
        providers: Arc::new(store.clone()),
        questions: Arc::new(SqliteQuestionStore::new(store)),
        _dir: Some(dir),
        _schema: None,
    }
}

/// Runs each named scenario (an `async fn(Stores)`) once on the memory backends and once on
/// SQLite, as the tests `<scenario>::memory` and `<scenario>::sqlite`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario($crate::support::memory()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::support::sqlite().await).await
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// Like [`on_both_backends`], plus `<scenario>::postgres` on a fresh PostgreSQL schema (which
/// prints why and passes when `TASKLANE_TEST_POSTGRES` is unset).
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario($crate::support::memory()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::support::sqlite().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(stores) = $crate::postgres::postgres().await else {
                    return;
                };
                super::$scenario(stores).await
            }
        }
    )*};
}
pub(crate) use on_every_backend;

/// Provider settings: `fake` (if any) configured for its kind with a key, the offline
/// provider without delay, and `timeout` as the cap on one provider call.
pub fn providers(fake: Option<&FakeProvider>, timeout: Duration) -> Providers {
    providers_with(fake, timeout, ai_providers::DEFAULT_STREAM_IDLE_TIMEOUT)
}

/// [`providers`] with `idle` as the stream idle timeout.
pub fn providers_with(fake: Option<&FakeProvider>, timeout: Duration, idle: Duration) -> Providers {
    let mut config = ProvidersConfig {
        offline_delay: Duration::ZERO,
        request_timeout: timeout,
        stream_idle_timeout: idle,
        ..ProvidersConfig::default()
    };
    if let Some(fake) = fake {
        let settings = ProviderSettings {
            api_key: Some(ApiKey::new("test-key")),
            base_url: fake.base_url(),
            model: MODEL.to_owned(),
        };
        match fake.kind() {
            ProviderKind::OpenAi => config.openai = settings,
            ProviderKind::Anthropic => config.anthropic = settings,
            ProviderKind::Gemini => config.gemini = settings,
        }
    }
    let responder = Arc::new(OfflineQuizResponder::new().expect("offline bank"));
    Providers::new(&config, responder).expect("providers")
}

/// A call cap long enough for any answering fake on a slow machine.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a runtime running the quiz handlers with fast retries.
pub fn start(stores: &Stores, providers: Providers) -> RuntimeHandle {
    let handlers = QuizHandlers::new(
        Arc::new(providers),
        Arc::clone(&stores.questions),
        Arc::clone(&stores.users),
    )
    .with_event_log(Arc::clone(&stores.events))
    .with_task_config(TaskTypeConfig {
        backoff: Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(40),
        },
        ..TaskTypeConfig::default()
    });
    let config = RuntimeConfig {
        poll_interval: Duration::from_millis(50),
        cancel_grace: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(2),
        ..RuntimeConfig::default()
    };
    Runtime::start(
        Arc::clone(&stores.tasks),
        handlers.register(Registry::new()),
        config,
    )
    .expect("start runtime")
}

/// Creates a task of `task_type` for `user` with `params`.
pub async fn create(stores: &Stores, user: &str, task_type: &str, params: Value) -> Task {
    stores
        .tasks
        .create(NewTask::new(user, task_type).with_params(params))
        .await
        .expect("create task")
}

/// Waits until task `id` satisfies `done`, watching the change feed.
pub async fn wait_for(
    store: &dyn TaskStore,
    id: &TaskId,
    what: &str,
    done: impl Fn(&Task) -> bool,
) -> Task {
    task_store::testkit::wait_for_task(store, id, WAIT, what, done).await
}

/// Waits until task `id` has finished (completed, failed or cancelled).
pub async fn finished(store: &dyn TaskStore, id: &TaskId) -> Task {
    wait_for(store, id, &format!("{id} to finish"), |task| {
        task.status.is_terminal()
    })
    .await
}

/// Waits for `id` to finish and asserts it completed.
pub async fn completed(store: &dyn TaskStore, id: &TaskId) -> Task {
    let task = finished(store, id).await;
    assert_eq!(
        task.status,
        TaskStatus::Completed,
        "error: {:?}",
        task.error
    );
    task
}

/// Every state tasks went through, as seen on the feed from the moment of the call.
pub struct History {
    seen: Arc<Mutex<Vec<Task>>>,
    recorded: Arc<Notify>,
    _collector: tokio::task::JoinHandle<()>,
}

impl History {
    pub fn record(store: &dyn TaskStore) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let recorded = Arc::new(Notify::new());
        let wake = Arc::clone(&recorded);
        let mut feed = store.subscribe();
        let collector = tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(TaskChange::Upserted(task)) => {
                        sink.lock().unwrap().push((*task).clone());
                        wake.notify_waiters();
                    }
                    Ok(TaskChange::Deleted { .. }) => {}
                    Err(RecvError::Lagged(missed)) => panic!("history missed {missed} changes"),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Self {
            seen,
            recorded,
            _collector: collector,
        }
    }

    /// Waits (at most 5 s) until the collector has recorded a final state of task `id`: the
    /// test may learn that the task finished before this collector task has drained the feed.
    async fn settled(&self, id: &TaskId) {
        let finished = || {
            self.seen
                .lock()
                .unwrap()
                .iter()
                .any(|t| &t.id == id && t.status.is_terminal())
        };
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                // Created before the check, so a state recorded in between still wakes it.
                let next = self.recorded.notified();
                if finished() {
                    return;
                }
                next.await;
            }
        })
        .await
        .expect("the history records the task's final state within 5 s");
    }

    /// The recorded states of task `id`, in commit order, once its final state is recorded.
    pub async fn of(&self, id: &TaskId) -> Vec<Task> {
        self.settled(id).await;
        self.recorded_of(id)
    }

    fn recorded_of(&self, id: &TaskId) -> Vec<Task> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|t| &t.id == id)
            .cloned()
            .collect()
    }

    /// `(progress, description)` of every progress report on `id` (states while processing,
    /// after the claim's 0), with repeats of the same pair collapsed, once its final state is
    /// recorded.
    pub async fn progress(&self, id: &TaskId) -> Vec<(i64, String)> {
        let mut steps: Vec<(i64, String)> = Vec::new();
        for task in self.of(id).await {
            if task.status != TaskStatus::Processing || task.progress == 0 {
                continue;
            }
            let step = (task.progress, task.description.clone().unwrap_or_default());
            if steps.last() != Some(&step) {
                steps.push(step);
            }
        }
        steps
    }
}

/// Asserts the fake saw only well-formed requests: each valid against the provider's official
/// schema, with the right path, key and model.
pub fn assert_clean(fake: &FakeProvider) {
    assert_eq!(
        fake.schema_violations(),
        Vec::<String>::new(),
        "schema violations"
    );
    assert_eq!(
        fake.protocol_violations(),
        Vec::<String>::new(),
        "protocol violations"
    );
}

/// The user message of the fake's `n`th request (0-based), whatever the wire format.
pub fn prompt_of(fake: &FakeProvider, n: usize) -> String {
    let request = &fake.requests()[n];
    request.body.to_string()
}

/// A valid generated question, distinct for each `i`.
pub fn question(i: usize) -> Value {
    json!({
        "text": format!("Testfråga {i}: vad är {i} plus ett?"),
        "options": [format!("{}", i + 1), format!("{}", i + 2), format!("{}", i + 3), format!("{}", i + 4)],
        "correctIndex": 0,
        "explanation": format!("{i} + 1 = {}.", i + 1),
        "emoji": "🔢"
    })
}

/// `{"questions": [...]}` with valid questions `range`.
pub fn questions(range: std::ops::Range<usize>) -> Value {
    json!({ "questions": range.map(question).collect::<Vec<_>>() })
}

/// Generation params for `amount` questions from `provider`.
pub fn generation_params(amount: usize, provider: &str) -> Value {
    json!({
        "amount": amount,
        "category": "Testkategori",
        "ageGroup": "adults",
        "difficulty": "medium",
        "provider": provider,
    })
}

/// Stores `count` questions owned by `user` in `category`, numbered from `start`.
pub async fn seed_questions(
    stores: &Stores,
    user: &str,
    category: &str,
    start: usize,
    count: usize,
) -> Vec<quiz::Question> {
    let new = (start..start + count)
        .map(|i| NewQuestion {
            user_id: user.to_owned(),
            text: format!("Sparad fråga {i}: vad är {i} plus ett?"),
            options: [
                format!("{}", i + 1),
                format!("{}", i + 2),
                format!("{}", i + 3),
                format!("{}", i + 4),
            ],
            correct_index: 0,
            explanation: format!("{i} + 1 = {}.", i + 1),
            emoji: "🔢".to_owned(),
            category: category.to_owned(),
            age_group: AgeGroup::Adults,
            difficulty: Difficulty::Medium,
            language: "sv".to_owned(),
            provenance: Provenance {
                task_id: None,
                provider: "test".into(),
                model: "m".into(),
            },
        })
        .collect();
    stores
        .questions
        .insert_many(new)
        .await
        .expect("seed questions")
}
