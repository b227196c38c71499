//! Scenario 4 (issue #16): how long a generated question takes from the provider to 100 SSE
//! subscribers of its task as a `partial` event. The fake OpenAI server streams 10 questions at
//! a fixed pace; the clock starts when the fake hands a question's last byte to its connection
//! (`FakeProvider::items_written`) and stops when a subscriber has parsed that question's
//! `partial` event: the provider client's stream parsing, the handler's checks, the append to
//! the event log (SQLite), the event feed, the live hub and the fan-out together.
//!
//! Baseline, same server and same run: a plain progress update to 100 subscribers of another
//! task, from before the store write to the parsed event (as in scenario 2), at the same
//! pace. Rounds alternate between the two, so load from other work falls on both alike.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_providers::{ApiKey, ProviderSettings, Providers, ProvidersConfig};
use quiz::{GenerationParams, OfflineQuizResponder, QuizHandlers, SqliteQuestionStore};
use serde_json::{json, Value};
use task_core::NewTask;
use task_http::auth::accounts::add_user;
use task_http::{serve, AppState};
use task_runtime::{Registry, Runtime, RuntimeConfig};
use task_store::{ClaimRequest, Lease, Role, SqliteStore, TaskStore};
use test_support::{Expectations, ExpectedKey, FakeProvider, ProviderKind, Scripted, StreamPlan};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinSet;

use crate::latency::Percentiles;
use crate::parser::{Item, Parser};
use crate::raw_stream::RawStream;
use crate::servers::{bench_config, USER};

const KEY: &str = "sk-bench-0001";
const MODEL: &str = "gpt-bench";
/// The task type of the baseline's task, which no worker runs: the bench writes its updates.
const BASELINE_TYPE: &str = "bench-baseline";

pub struct Result {
    /// Provider's last byte of a question → its `partial` event parsed by a subscriber.
    pub partial: Percentiles,
    /// Store write of a progress update → its `update` event parsed by a subscriber.
    pub update: Percentiles,
    pub rounds: usize,
}

/// `rounds` generations of `questions` questions streamed one every `pace`, each followed by
/// `questions` progress updates at the same pace, with `subscribers` on each task.
pub async fn run(subscribers: usize, questions: usize, pace: Duration, rounds: usize) -> Result {
    let bench = Bench::start(subscribers).await;
    let mut partial = Vec::new();
    let mut update = Vec::new();
    for _ in 0..rounds {
        partial.extend(bench.generation(subscribers, questions, pace).await);
        update.extend(bench.updates(subscribers, questions, pace).await);
    }
    let expected = rounds * subscribers * questions;
    Result {
        partial: Percentiles::of(partial, expected),
        update: Percentiles::of(update, expected),
        rounds,
    }
}

/// tasklane with the quiz handlers and the event log on SQLite, the fake provider it calls.
struct Bench {
    store: Arc<SqliteStore>,
    addr: SocketAddr,
    token: String,
    fake: FakeProvider,
    registry: Arc<dyn Fn() -> Registry + Send + Sync>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start(subscribers: usize) -> Bench {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("open SQLite"));
        store
            .apply_migrations(&[&quiz::SQLITE_MIGRATIONS])
            .await
            .expect("the questions table");
        let (_, token) = add_user(&*store, USER, Role::User)
            .await
            .expect("create the bench user");
        let expect = Expectations {
            api_key: ExpectedKey::Exactly(KEY.to_owned()),
            model: Some(MODEL.to_owned()),
        };
        let fake = FakeProvider::start_with(ProviderKind::OpenAi, expect, Vec::new()).await;
        let config = ProvidersConfig {
            openai: ProviderSettings {
                api_key: Some(ApiKey::new(KEY)),
                base_url: fake.base_url(),
                model: MODEL.to_owned(),
            },
            ..ProvidersConfig::default()
        };
        let responder = Arc::new(OfflineQuizResponder::new().expect("the offline bank"));
        let providers = Arc::new(Providers::new(&config, responder).expect("providers"));
        let questions: Arc<dyn quiz::QuestionStore> =
            Arc::new(SqliteQuestionStore::new((*store).clone()));
        let registry = {
            let (store, questions) = (store.clone(), questions.clone());
            Arc::new(move || {
                QuizHandlers::new(providers.clone(), questions.clone(), store.clone())
                    .with_event_log(store.clone())
                    .register(Registry::new())
            })
        };
        let task_types: Vec<String> = registry().task_types().map(str::to_owned).collect();
        let state = AppState::new(
            store.clone(),
            store.clone(),
            bench_config(subscribers),
            task_types,
        )
        .expect("a valid config")
        .with_event_log(store.clone())
        .with_questions(questions);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = serve(listener, state, async {
                let _ = stopped.await;
            })
            .await;
        });
        Bench {
            store,
            addr,
            token: token.secret().to_owned(),
            fake,
            registry,
            _stop: stop,
            _dir: dir,
        }
    }

    /// One generation followed by `subscribers`: the latency of each of its partials.
    async fn generation(
        &self,
        subscribers: usize,
        questions: usize,
        pace: Duration,
    ) -> Vec<Duration> {
        let answer = json!({"questions": (0..questions).map(question).collect::<Vec<_>>()});
        self.fake
            .push([Scripted::Stream(StreamPlan::new(answer).pace(pace))]);
        let written_before = self.fake.items_written().len();
        let params = GenerationParams::parse(&json!({
            "amount": questions, "category": format!("Bänk {written_before}"),
            "ageGroup": "adults", "difficulty": "medium", "provider": "openai"
        }))
        .expect("valid generation params");
        let task = self
            .store
            .create(NewTask::new(USER, quiz::GENERATION).with_params(params.to_json()))
            .await
            .expect("create the generation");
        // Everyone is subscribed before a worker exists to run the task.
        let path = format!("/api/subscribeToTask?taskId={}", task.id);
        let clients = subscribe(self.addr, &path, &self.token, subscribers, Watch::Partials).await;
        let runtime = Runtime::start(
            self.store.clone(),
            (self.registry)(),
            RuntimeConfig::default(),
        )
        .expect("start the runtime");
        let seen = join(clients).await;
        runtime.shutdown().await;
        let written = self.fake.items_written();
        let written = &written[written_before..];
        assert_eq!(written.len(), questions, "the fake wrote every question");
        seen.into_iter()
            .flatten()
            .map(|(index, at)| at.saturating_duration_since(written[index]))
            .collect()
    }

    /// `updates` progress updates of a task nobody else writes, followed by `subscribers`.
    async fn updates(&self, subscribers: usize, updates: usize, pace: Duration) -> Vec<Duration> {
        let task = self
            .store
            .create(NewTask::new(USER, BASELINE_TYPE))
            .await
            .expect("create");
        let claimed = self
            .store
            .claim(&ClaimRequest {
                worker_id: "bench".into(),
                limit: 1,
                task_types: vec![BASELINE_TYPE.into()],
                lease_for: Duration::from_secs(600),
                max_running_per_user: None,
                now: task.run_at + 1,
            })
            .await
            .expect("claim");
        let lease = Lease::of(&claimed[0]).expect("a lease");
        let path = format!("/api/subscribeToTask?taskId={}", task.id);
        let clients = subscribe(self.addr, &path, &self.token, subscribers, Watch::Updates).await;
        let mut sent: HashMap<usize, Instant> = HashMap::new();
        let mut ticks = tokio::time::interval(pace);
        for step in 0..updates {
            ticks.tick().await;
            let progress = 10 + step as i64;
            sent.insert(step, Instant::now());
            self.store
                .update_progress(&lease, progress, Some(format!("step {step}")))
                .await
                .expect("update");
        }
        ticks.tick().await;
        self.store
            .complete(&lease, json!({"ok": true}))
            .await
            .expect("complete");
        join(clients)
            .await
            .into_iter()
            .flatten()
            .filter_map(|(step, at)| Some(at.saturating_duration_since(*sent.get(&step)?)))
            .collect()
    }
}

/// A valid question, distinct for each `i`, as the model writes it.
fn question(i: usize) -> Value {
    json!({
        "text": format!("Bänkfråga {i}: vad är {i} gånger tre?"),
        "options": [(3 * i).to_string(), (3 * i + 1).to_string(), (3 * i + 2).to_string(), (3 * i + 4).to_string()],
        "correctIndex": 0,
        "explanation": format!("{i} · 3 = {}.", 3 * i),
        "emoji": "🧮"
    })
}

/// Which events a subscriber times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// `partial` events, by index.
    Partials,
    /// `update` events with progress ≥ 10, by step (`progress - 10`).
    Updates,
}

/// Opens `count` streams (at most 100 connecting at once) and waits until each has its
/// snapshot; each reader yields `(n, when parsed)` for the events it times, until `complete`.
async fn subscribe(
    addr: SocketAddr,
    path: &str,
    token: &str,
    count: usize,
    watch: Watch,
) -> JoinSet<Vec<(usize, Instant)>> {
    let ready = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(100));
    let mut clients = JoinSet::new();
    for _ in 0..count {
        let (ready, connecting) = (ready.clone(), connecting.clone());
        let (path, token) = (path.to_owned(), token.to_owned());
        clients.spawn(async move {
            let permit = connecting.acquire_owned().await.expect("open semaphore");
            let mut stream = RawStream::open(addr, &path, &token).await;
            drop(permit);
            let mut buffer = vec![0u8; 16 * 1024];
            let mut parser = Parser::default();
            let mut seen = Vec::new();
            let mut announced = false;
            while let Some(payload) = stream.next(&mut buffer).await {
                let now = Instant::now();
                for item in parser.feed(&payload) {
                    let Item::Event(event) = item else { continue };
                    let data: Value = serde_json::from_str(&event.data).expect("JSON data");
                    match (watch, data["type"].as_str()) {
                        (_, Some("complete")) => return seen,
                        (Watch::Partials, Some("partial")) => {
                            seen.push((data["index"].as_u64().expect("an index") as usize, now));
                        }
                        (Watch::Updates, Some("update")) => {
                            let progress = data["task"]["progress"].as_i64().unwrap_or(0);
                            if progress >= 10 {
                                seen.push(((progress - 10) as usize, now));
                            }
                        }
                        _ => {}
                    }
                }
                // The first frame (`retry` and the snapshot) means "subscribed".
                if !announced {
                    announced = true;
                    ready.fetch_add(1, Ordering::Release);
                }
            }
            seen
        });
    }
    while ready.load(Ordering::Acquire) < count {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    clients
}

/// Every reader's findings, within a bound.
async fn join(mut clients: JoinSet<Vec<(usize, Instant)>>) -> Vec<Vec<(usize, Instant)>> {
    let mut all = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    while !clients.is_empty() {
        tokio::select! {
            joined = clients.join_next() => {
                if let Some(seen) = joined {
                    all.push(seen.expect("a reader task"));
                }
            }
            () = &mut deadline => panic!("subscribers did not finish within 60 s"),
        }
    }
    all
}
