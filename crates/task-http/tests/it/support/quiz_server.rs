//! The quiz harness: a [`TestServer`] whose worker runtime runs the quiz task types over given
//! providers (the real clients, pointed at test-support's fake servers), with questions kept in
//! the same SQLite database and served by `GET /api/questions`; and a [`Gate`] that holds a
//! task at a chosen step, so a test can see each progress value arrive on its event stream
//! instead of hoping the stream is fast enough not to skip one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ai_providers::{
    AiProvider, ApiKey, JsonRequest, ProviderError, ProviderSettings, Providers, ProvidersConfig,
};
use async_trait::async_trait;
use quiz::{
    AgeGroup, Difficulty, NewQuestion, OfflineQuizResponder, Provenance, Question, QuestionId,
    QuestionPage, QuestionQuery, QuestionStore, QuizError, QuizHandlers, SqliteQuestionStore,
    ValidationStatus,
};
use serde_json::{json, Value};
use task_http::auth::accounts;
use task_http::{serve, AppState, HttpConfig};
use task_runtime::{Registry, RollupConfig, Rollups, Runtime, RuntimeConfig};
use task_store::{Role, SqliteStore, TaskStore, UserStore};
use test_support::{Expectations, ExpectedKey, FakeProvider, ProviderKind};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::flaky::Flaky;
use super::{TestServer, ALICE, BOB, ROOT};

/// The key the OpenAI provider is configured with; the fake demands exactly this one.
pub const OPENAI_KEY: &str = "sk-test-e2e-0001";
/// The model the OpenAI provider is configured with; the fake demands exactly this one.
pub const MODEL: &str = "gpt-test-e2e";
/// Cap on one provider call: long enough for any answering fake on a loaded machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A fake OpenAI server that demands [`OPENAI_KEY`] and [`MODEL`], answering from `script`.
pub async fn fake_openai(script: Vec<test_support::Scripted>) -> FakeProvider {
    let expect = Expectations {
        api_key: ExpectedKey::Exactly(OPENAI_KEY.to_owned()),
        model: Some(MODEL.to_owned()),
    };
    FakeProvider::start_with(ProviderKind::OpenAi, expect, script).await
}

/// The providers: OpenAI at `fake` (when given; otherwise OpenAI has no key), the offline
/// provider without delay, and no other keys.
pub fn providers(fake: Option<&FakeProvider>) -> Providers {
    let mut config = ProvidersConfig {
        offline_delay: Duration::ZERO,
        request_timeout: CALL_TIMEOUT,
        ..ProvidersConfig::default()
    };
    if let Some(fake) = fake {
        config.openai = ProviderSettings {
            api_key: Some(ApiKey::new(OPENAI_KEY)),
            base_url: fake.base_url(),
            model: MODEL.to_owned(),
        };
    }
    let responder = Arc::new(OfflineQuizResponder::new().expect("the offline bank loads"));
    Providers::new(&config, responder).expect("valid provider settings")
}

/// Asserts the fake saw only well-formed requests: each valid against the provider's official
/// request schema, with the right path, key and model.
pub fn assert_clean(fake: &FakeProvider) {
    assert_eq!(fake.schema_violations(), Vec::<String>::new());
    assert_eq!(fake.protocol_violations(), Vec::<String>::new());
}

/// A gate that lets one waiter through per [`Gate::open_once`].
#[derive(Debug)]
pub struct Gate {
    permits: Semaphore,
}

impl Gate {
    /// A gate that lets nobody through yet.
    pub fn closed() -> Arc<Self> {
        Arc::new(Self {
            permits: Semaphore::new(0),
        })
    }

    /// Lets the next waiter (or the next one to arrive) through.
    pub fn open_once(&self) {
        self.permits.add_permits(1);
    }

    async fn pass(&self) {
        self.permits
            .acquire()
            .await
            .expect("the gate's semaphore is never closed")
            .forget();
    }
}

/// `providers` with provider `name` behind `gate`: each call waits for its turn, then goes to
/// the real provider.
pub fn gate_provider(providers: Providers, name: &str, gate: Arc<Gate>) -> Providers {
    let inner = providers.get(name).expect("the provider is configured");
    providers.with_provider(Arc::new(GatedProvider { inner, gate }))
}

#[derive(Debug)]
struct GatedProvider {
    inner: Arc<dyn AiProvider>,
    gate: Arc<Gate>,
}

#[async_trait]
impl AiProvider for GatedProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn model(&self) -> &str {
        self.inner.model()
    }

    async fn generate_json(&self, request: &JsonRequest) -> Result<Value, ProviderError> {
        self.gate.pass().await;
        self.inner.generate_json(request).await
    }
}

/// A question store whose `existing_texts` and `insert_many` (the generation handler's reads
/// and writes around its provider calls) wait at a gate.
#[derive(Debug)]
struct GatedQuestions {
    inner: Arc<dyn QuestionStore>,
    gate: Arc<Gate>,
}

#[async_trait]
impl QuestionStore for GatedQuestions {
    async fn insert_many(&self, questions: Vec<NewQuestion>) -> Result<Vec<Question>, QuizError> {
        self.gate.pass().await;
        self.inner.insert_many(questions).await
    }

    async fn get_many(
        &self,
        ids: &[QuestionId],
        owner: Option<&str>,
    ) -> Result<Vec<Question>, QuizError> {
        self.inner.get_many(ids, owner).await
    }

    async fn list(&self, query: &QuestionQuery) -> Result<QuestionPage, QuizError> {
        self.inner.list(query).await
    }

    async fn existing_texts(&self, category: &str) -> Result<HashSet<String>, QuizError> {
        self.gate.pass().await;
        self.inner.existing_texts(category).await
    }

    async fn update_verdict(
        &self,
        id: &QuestionId,
        status: ValidationStatus,
        notes: Option<String>,
    ) -> Result<Question, QuizError> {
        self.inner.update_verdict(id, status, notes).await
    }

    async fn update_emoji(&self, id: &QuestionId, emoji: &str) -> Result<Question, QuizError> {
        self.inner.update_emoji(id, emoji).await
    }
}

/// How to start a [`QuizServer`].
#[derive(Default)]
pub struct QuizOptions {
    /// When set, the generation handler waits at this gate before reading a category's
    /// existing questions and before saving new ones.
    pub gate: Option<Arc<Gate>>,
    /// The server's settings.
    pub config: HttpConfig,
}

/// A running server with the quiz task types.
pub struct QuizServer {
    /// The server, its users and its store.
    pub server: TestServer,
    /// The question store the handlers write and `GET /api/questions` reads (ungated).
    pub questions: Arc<dyn QuestionStore>,
}

impl QuizServer {
    /// A server whose quiz handlers call `providers`.
    pub async fn start(providers: Providers) -> Self {
        Self::start_with(providers, QuizOptions::default()).await
    }

    /// A server whose quiz handlers call `providers`, set up as `options` say.
    pub async fn start_with(providers: Providers, options: QuizOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("tasklane.db")).unwrap());
        store
            .apply_migrations(&[&quiz::SQLITE_MIGRATIONS])
            .await
            .unwrap();
        let flaky = Arc::new(Flaky::new(store.clone()));
        let users: Arc<dyn UserStore> = store.clone();
        let mut tokens = Vec::new();
        for (email, role) in [
            (ALICE, Role::User),
            (BOB, Role::User),
            (ROOT, Role::Superuser),
        ] {
            let (_, token) = accounts::add_user(users.as_ref(), email, role)
                .await
                .unwrap();
            tokens.push(token.secret().to_owned());
        }
        let questions: Arc<dyn QuestionStore> =
            Arc::new(SqliteQuestionStore::new((*store).clone()));
        let handler_questions = match options.gate {
            Some(gate) => Arc::new(GatedQuestions {
                inner: Arc::clone(&questions),
                gate,
            }),
            None => Arc::clone(&questions),
        };
        let registry =
            QuizHandlers::new(Arc::new(providers), handler_questions, Arc::clone(&users))
                .register(Registry::new());
        let task_types: Vec<String> = registry.task_types().map(str::to_owned).collect();
        let config = RuntimeConfig {
            poll_interval: Duration::from_millis(50),
            shutdown_grace: Duration::from_millis(200),
            ..RuntimeConfig::default()
        };
        let tasks: Arc<dyn TaskStore> = store.clone();
        let runtime = Runtime::start(tasks, registry, config).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tasks: Arc<dyn TaskStore> = flaky.clone();
        let state = AppState::new(tasks, users, options.config, task_types)
            .unwrap()
            .with_questions(Arc::clone(&questions))
            .with_analytics(store.clone());
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
        let server = tokio::spawn(serve(listener, state, stop.clone().cancelled_owned()));
        let [alice, bob, root] = <[String; 3]>::try_from(tokens).unwrap();
        Self {
            server: TestServer {
                addr,
                flaky,
                store,
                alice,
                bob,
                root,
                rollups,
                stop,
                server,
                runtime: Some(runtime),
                _dir: dir,
            },
            questions,
        }
    }

    /// Stores `count` valid questions owned by `owner` in `category` (numbered from `start`,
    /// so texts never repeat), oldest first.
    pub async fn seed(
        &self,
        owner: &str,
        category: &str,
        difficulty: Difficulty,
        start: usize,
        count: usize,
    ) -> Vec<Question> {
        let new = (start..start + count)
            .map(|i| NewQuestion {
                user_id: owner.to_owned(),
                text: format!("Sparad fråga {i}: vad är {i} plus ett?"),
                options: [i + 1, i + 2, i + 3, i + 4].map(|n| n.to_string()),
                correct_index: 0,
                explanation: format!("{i} + 1 = {}.", i + 1),
                emoji: "🔢".to_owned(),
                category: category.to_owned(),
                age_group: AgeGroup::Adults,
                difficulty,
                language: "sv".to_owned(),
                provenance: Provenance {
                    task_id: None,
                    provider: "seed".to_owned(),
                    model: "seed".to_owned(),
                },
            })
            .collect();
        self.questions.insert_many(new).await.unwrap()
    }
}

/// A valid generated question, distinct for each `i`, as a model returns it.
pub fn generated_question(i: usize) -> Value {
    json!({
        "text": format!("Genererad fråga {i}: vad är {i} gånger två?"),
        "options": [(2 * i).to_string(), (2 * i + 1).to_string(), (2 * i + 2).to_string(), (2 * i + 3).to_string()],
        "correctIndex": 0,
        "explanation": format!("{i} · 2 = {}.", 2 * i),
        "emoji": "🧮"
    })
}

/// `{"questions":[...]}` with valid questions `range`.
pub fn generated_questions(range: std::ops::Range<usize>) -> Value {
    json!({ "questions": range.map(generated_question).collect::<Vec<_>>() })
}
