//! What every request handler shares: the stores, the live hub, metrics, the task creator,
//! the per-user stream slots, the configuration and (when the server serves questions) the
//! question store.

use std::collections::BTreeSet;
use std::sync::Arc;

use quiz::QuestionStore;
use task_store::{TaskStore, UserStore};
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::creator::TaskCreator;
use crate::live::{LiveHub, SseConfig};
use crate::metrics::Metrics;
use crate::rate_limit::{CreationLimits, LimitDefaults};
use crate::stream_slots::StreamSlots;
use crate::{HttpConfig, HttpError};

/// The server's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    questions: Option<Arc<dyn QuestionStore>>,
}

struct Inner {
    tasks: Arc<dyn TaskStore>,
    users: Arc<dyn UserStore>,
    authenticator: Authenticator,
    config: HttpConfig,
    sse: SseConfig,
    task_types: BTreeSet<String>,
    hub: Arc<LiveHub>,
    metrics: Arc<Metrics>,
    creator: TaskCreator,
    stream_slots: StreamSlots,
    shutdown: CancellationToken,
}

impl AppState {
    /// Validates `config` and starts the live hub on the current tokio
    /// runtime. `task_types` are the types `POST /api/tasks` accepts: the ones the worker
    /// runtime has handlers for.
    ///
    /// # Errors
    /// [`HttpError::InvalidConfig`] for an unusable setting.
    pub fn new(
        tasks: Arc<dyn TaskStore>,
        users: Arc<dyn UserStore>,
        config: HttpConfig,
        task_types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, HttpError> {
        config.validate()?;
        let shutdown = CancellationToken::new();
        let hub = LiveHub::start(Arc::clone(&tasks), shutdown.clone());
        let metrics = Metrics::new(Arc::clone(&tasks));
        metrics.track_live(&hub);
        let limits = CreationLimits::new(
            LimitDefaults {
                rate: config.create_rate,
                burst: config.create_burst,
                max_queued: config.max_queued_per_user,
            },
            Arc::clone(&users),
        );
        let creator = TaskCreator::new(Arc::clone(&tasks), limits, config.retry_after);
        let sse = SseConfig {
            monitor_timeout: config.monitor_timeout,
            keep_alive: config.sse_keep_alive,
            ..SseConfig::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                stream_slots: StreamSlots::new(config.max_sse_per_user),
                authenticator: Authenticator::new(Arc::clone(&users), &config),
                tasks,
                users,
                config,
                sse,
                task_types: task_types.into_iter().map(Into::into).collect(),
                hub,
                metrics,
                creator,
                shutdown,
            }),
            questions: None,
        })
    }

    /// Serves `GET /api/questions` from `questions`: the store the quiz handlers write to.
    /// Without one that endpoint answers 404 (the task-starting quiz endpoints need no store).
    pub fn with_questions(mut self, questions: Arc<dyn QuestionStore>) -> Self {
        self.questions = Some(questions);
        self
    }

    /// The task store.
    pub fn tasks(&self) -> &Arc<dyn TaskStore> {
        &self.inner.tasks
    }

    /// The question store, when the server serves questions.
    pub fn questions(&self) -> Option<&Arc<dyn QuestionStore>> {
        self.questions.as_ref()
    }

    /// The user store.
    pub fn users(&self) -> &Arc<dyn UserStore> {
        &self.inner.users
    }

    /// Identifies callers.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// Settings of the live streams.
    pub fn sse(&self) -> &SseConfig {
        &self.inner.sse
    }

    /// Whether `POST /api/tasks` accepts `task_type`.
    pub fn accepts_task_type(&self, task_type: &str) -> bool {
        self.inner.task_types.contains(task_type)
    }

    /// The task types `POST /api/tasks` accepts.
    pub fn task_types(&self) -> impl Iterator<Item = &str> {
        self.inner.task_types.iter().map(String::as_str)
    }

    /// The live hub feeding SSE streams.
    pub fn hub(&self) -> &Arc<LiveHub> {
        &self.inner.hub
    }

    /// Request and task metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub(crate) fn creator(&self) -> &TaskCreator {
        &self.inner.creator
    }

    pub(crate) fn stream_slots(&self) -> &StreamSlots {
        &self.inner.stream_slots
    }

    /// Cancelled when the server shuts down; ends every live stream.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}
