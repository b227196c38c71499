//! What every request handler shares: the stores, the live hub, metrics, the task creator,
//! the per-user stream slots, the configuration and (when the server serves questions) the
//! question store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use quiz::QuestionStore;
use task_core::DEFAULT_MAX_ATTEMPTS;
use task_runtime::{FoldObserver, Schedules};
use task_store::{
    AnalyticsStore, ProviderLimitStore, ProviderLimits, TaskEventLog, TaskStore, UserStore,
};
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::creator::TaskCreator;
use crate::fold_metrics::FoldMetrics;
use crate::live::{LiveHub, SseConfig};
use crate::metrics::Metrics;
use crate::price_book::{default_prices, PriceBook};
use crate::rate_limit::{CreationLimits, LimitDefaults};
use crate::storage_health::StorageHealth;
use crate::stream_slots::StreamSlots;
use crate::task_counts::{TaskCounts, COUNTS_REFRESH_INTERVAL};
use crate::{ApiError, HttpConfig, HttpError};

/// The server's shared state. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
    questions: Option<Arc<dyn QuestionStore>>,
    attempt_caps: Arc<BTreeMap<String, i64>>,
    events: Option<Arc<dyn TaskEventLog>>,
    schedules: Option<Schedules>,
    analytics: Option<Arc<dyn AnalyticsStore>>,
    prices: Arc<PriceBook>,
    provider_limits: Option<(Arc<dyn ProviderLimitStore>, Arc<ProviderLimits>)>,
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
    ws_subscription_slots: StreamSlots,
    shutdown: CancellationToken,
    storage_health: StorageHealth,
    counts: Arc<TaskCounts>,
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
        let counts = TaskCounts::start(
            Arc::clone(&tasks),
            COUNTS_REFRESH_INTERVAL,
            shutdown.clone(),
        );
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
                ws_subscription_slots: StreamSlots::new(config.max_ws_subscriptions_per_user),
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
                storage_health: StorageHealth::default(),
                counts,
            }),
            questions: None,
            attempt_caps: Arc::default(),
            events: None,
            schedules: None,
            analytics: None,
            prices: Arc::new(PriceBook::fixed(default_prices())),
            provider_limits: None,
        })
    }

    /// Serves `GET /api/analytics` from `analytics`' rollups (which the host's rollup loop,
    /// `task_runtime::Rollups`, keeps up to date). Without it that endpoint answers 404.
    pub fn with_analytics(mut self, analytics: Arc<dyn AnalyticsStore>) -> Self {
        self.analytics = Some(analytics);
        self
    }

    /// Serves `GET /api/providers` (and the dashboard's provider holds) from `store`, showing
    /// `limits` (the ones the workers' gate enforces). Without it that endpoint answers 404.
    pub fn with_provider_limits(
        mut self,
        store: Arc<dyn ProviderLimitStore>,
        limits: ProviderLimits,
    ) -> Self {
        self.provider_limits = Some((store, Arc::new(limits)));
        self
    }

    /// The provider limits store and the configured limits, when the server shows them.
    pub fn provider_limits(&self) -> Option<(&Arc<dyn ProviderLimitStore>, &ProviderLimits)> {
        self.provider_limits
            .as_ref()
            .map(|(store, limits)| (store, limits.as_ref()))
    }

    /// The rollups, when the server serves analytics.
    pub fn analytics(&self) -> Option<&Arc<dyn AnalyticsStore>> {
        self.analytics.as_ref()
    }

    /// Prices analytics costs tokens with. Defaults to [`default_prices`].
    pub fn with_prices(mut self, prices: PriceBook) -> Self {
        self.prices = Arc::new(prices);
        self
    }

    /// The price table.
    pub fn prices(&self) -> &PriceBook {
        &self.prices
    }

    /// What the host passes to its rollup loop (`task_runtime::Rollups`) so that `/metrics`
    /// shows queue waits, run times, tokens and costs of the tasks it folds.
    pub fn fold_observer(&self) -> Arc<dyn FoldObserver> {
        Arc::new(FoldMetrics {
            metrics: Arc::clone(&self.inner.metrics),
            prices: Arc::clone(&self.prices),
        })
    }

    /// Sends the tasks' stored partial outputs from `events` on `GET /api/subscribeToTask` as
    /// `partial` events, replayed from `Last-Event-ID` and then live. Without a log the stream
    /// carries task updates only.
    pub fn with_event_log(mut self, events: Arc<dyn TaskEventLog>) -> Self {
        self.events = Some(events);
        self
    }

    /// The task event log, when the server streams partial outputs.
    pub fn events(&self) -> Option<&Arc<dyn TaskEventLog>> {
        self.events.as_ref()
    }

    /// Serves `GET /api/questions` from `questions`: the store the quiz handlers write to.
    /// Without one that endpoint answers 404 (the task-starting quiz endpoints need no store).
    pub fn with_questions(mut self, questions: Arc<dyn QuestionStore>) -> Self {
        self.questions = Some(questions);
        self
    }

    /// The most attempts the worker runtime gives a task of each type (its `TaskTypeConfig`'s
    /// `max_attempts`), so a creator asking for more is refused instead of silently capped.
    /// Types not named here are held only to the task model's own limit.
    pub fn with_attempt_caps(
        mut self,
        caps: impl IntoIterator<Item = (impl Into<String>, i64)>,
    ) -> Self {
        self.attempt_caps = Arc::new(caps.into_iter().map(|(t, n)| (t.into(), n)).collect());
        self
    }

    /// The attempts a new task of `task_type` gets: `requested` if given (refused above the
    /// type's cap), otherwise the task model's default lowered to the cap.
    ///
    /// # Errors
    /// 400 naming `max_attempts` when `requested` is above the type's cap.
    pub fn attempts_for(&self, task_type: &str, requested: Option<i64>) -> Result<i64, ApiError> {
        let cap = self.attempt_caps.get(task_type).copied();
        match (requested, cap) {
            (Some(requested), Some(cap)) if requested > cap => Err(ApiError::invalid_field(
                "max_attempts",
                format!("must be at most {cap} for task type {task_type:?}"),
            )),
            (Some(requested), _) => Ok(requested),
            (None, Some(cap)) => Ok(DEFAULT_MAX_ATTEMPTS.min(cap)),
            (None, None) => Ok(DEFAULT_MAX_ATTEMPTS),
        }
    }

    /// Serves `/api/schedules` through `schedules` (whose scheduler the host starts). Without
    /// it those endpoints answer 404.
    pub fn with_schedules(mut self, schedules: Schedules) -> Self {
        self.schedules = Some(schedules);
        self
    }

    /// The schedules, when the server serves them.
    pub fn schedules(&self) -> Option<&Schedules> {
        self.schedules.as_ref()
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

    /// The dashboard's task counts, counted again only after changes.
    pub(crate) fn counts(&self) -> &TaskCounts {
        &self.inner.counts
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

    pub(crate) fn storage_health(&self) -> &StorageHealth {
        &self.inner.storage_health
    }

    pub(crate) fn stream_slots(&self) -> &StreamSlots {
        &self.inner.stream_slots
    }

    /// The per-user cap on WebSocket subscriptions.
    pub(crate) fn ws_subscription_slots(&self) -> &StreamSlots {
        &self.inner.ws_subscription_slots
    }

    /// Cancelled when the server shuts down; ends every live stream.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}
