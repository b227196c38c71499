//! `serve`: the HTTP server and the worker runtime (running the quiz task types, and the test
//! task types on request) in one process, with graceful shutdown on SIGTERM or Ctrl-C.

use std::sync::Arc;

use ai_providers::Providers;
use anyhow::Context;
use quiz::{OfflineQuizResponder, QuestionStore, QuizHandlers, StoreGate};
use task_http::auth::accounts;
use task_http::{AppState, HttpConfig, PriceBook, TrustedProxy, DEFAULT_LISTEN_BACKLOG};
use task_runtime::testing::register_test_tasks;
use task_runtime::{
    Registry, RescuerConfig, RollupConfig, Rollups, Runtime, RuntimeConfig, SchedulerConfig,
    Schedules, SearchIndexConfig, SearchIndexer, SystemClock,
};
use task_store::{ProviderLimits, UserStore};
use tokio_util::sync::CancellationToken;

use crate::cli::{RateSetting, ServeArgs};
use crate::database::Database;

/// Runs until a shutdown signal, then stops accepting, ends live streams, lets the runtime
/// release its tasks and returns.
pub async fn run(database: Database, args: ServeArgs) -> anyhow::Result<()> {
    let signal = ShutdownSignal::listen()?;
    let Database {
        tasks,
        users,
        questions,
        events,
        schedules,
        analytics,
        providers,
    } = database;
    let provider_limits =
        ProviderLimits::new(args.provider_limits.clone()).context("invalid --provider-limit")?;
    let gate = StoreGate::new(Arc::clone(&providers), provider_limits.clone());
    let http_config = http_config(&args)?;
    let backlog = args.listen_backlog.unwrap_or(DEFAULT_LISTEN_BACKLOG);
    let listener = task_http::listen(args.addr, backlog)
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr().context("listener has no address")?;

    if let Some(admin) = accounts::ensure_first_admin(users.as_ref())
        .await
        .context("cannot create the first user")?
    {
        println!(
            "No users yet: created superuser \"{}\". Its API token (shown once):",
            accounts::FIRST_ADMIN_EMAIL
        );
        println!("{}", admin.secret());
        println!("Dashboard: http://{addr}/login");
    }

    // The quiz handlers write questions where `GET /api/questions` reads them: the same
    // database as the tasks.
    let mut registry = quiz_handlers(Arc::clone(&questions), Arc::clone(&users), Some(gate))?
        .with_event_log(Arc::clone(&events))
        .register(Registry::new());
    if args.test_tasks {
        registry = register_test_tasks(registry);
    }
    let task_types: Vec<String> = registry.task_types().map(str::to_owned).collect();
    let runtime_settings = runtime_config(&args);
    let attempt_caps: Vec<(String, i64)> = registry
        .attempt_caps(&runtime_settings.default_task_type)
        .map(|(task_type, cap)| (task_type.to_owned(), cap))
        .collect();
    // With `--workers 0` this process only serves HTTP; others sharing the database run tasks.
    let runtime = match args.workers {
        Some(0) => None,
        _ => Some(
            Runtime::start(Arc::clone(&tasks), registry, runtime_settings)
                .context("cannot start the worker runtime")?,
        ),
    };

    // Every instance runs the scheduler: the store's unique key per fire time makes each
    // firing happen once however many run it.
    let schedules = Schedules::new(
        Arc::clone(&tasks),
        schedules,
        Some(task_types.clone()),
        SchedulerConfig::default(),
        Arc::new(SystemClock),
    )
    .context("invalid scheduler settings")?;
    let scheduler_stop = CancellationToken::new();
    let scheduler = schedules.start(scheduler_stop.clone());
    // Old run records are maintenance, like old tasks: left to the processes that run workers.
    let run_cleaner = runtime
        .is_some()
        .then(|| schedules.start_run_cleaner(scheduler_stop.clone()));
    // Every instance indexes what it and others created (each batch moves the store's
    // watermark in its own transaction, so instances take turns), HTTP-only ones included.
    let search_indexer = SearchIndexer::new(Arc::clone(&tasks), search_index_config(&args))
        .context("invalid search index settings")?;
    let search_indexer_stop = CancellationToken::new();
    let search_indexer = search_indexer.start(search_indexer_stop.clone());
    let mut state = AppState::new(tasks, users, http_config, task_types)
        .context("invalid server settings")?
        .with_questions(questions)
        .with_attempt_caps(attempt_caps)
        .with_event_log(events)
        .with_schedules(schedules)
        .with_analytics(Arc::clone(&analytics))
        .with_provider_limits(providers, provider_limits);
    if let Some(path) = &args.prices {
        state = state.with_prices(PriceBook::watching(path).context("invalid --prices file")?);
    }
    // Every instance folds (folds take turns on the watermark, so each task is folded once),
    // including HTTP-only ones: the cleaner keeps finished tasks until they are folded.
    let rollups = Rollups::new(analytics, rollup_config(&args), Some(state.fold_observer()))
        .context("invalid rollup settings")?;
    let rollups_stop = CancellationToken::new();
    let rollups = rollups.start(rollups_stop.clone());
    tracing::info!(%addr, "tasklane listening");
    // On a signal the server and the runtime wind down side by side, so the total time is
    // the longer of their grace periods, not the sum.
    let stop = CancellationToken::new();
    let signal = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = signal.received() => stop.cancel(),
                () = stop.cancelled() => {}
            }
        }
    };
    let workers = {
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            scheduler_stop.cancel();
            // The scheduler stops between passes; a pass in flight commits or writes nothing.
            let _ = scheduler.await;
            if let Some(run_cleaner) = run_cleaner {
                let _ = run_cleaner.await;
            }
            rollups_stop.cancel();
            let _ = rollups.await;
            search_indexer_stop.cancel();
            let _ = search_indexer.await;
            if let Some(runtime) = runtime {
                runtime.shutdown().await;
            }
        }
    };
    let server = {
        let stop = stop.clone();
        async move {
            let served = task_http::serve(listener, state, stop.clone().cancelled_owned()).await;
            stop.cancel();
            served
        }
    };
    let (served, (), ()) = tokio::join!(server, workers, signal);
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// The quiz task types (`generation`, `validation`, `emoji-regeneration`) over the AI providers
/// configured in the environment (`OPENAI_API_KEY`, ...; the offline provider always works),
/// keeping questions in `questions`; with `gate`, every hosted provider call goes through it
/// (the shared provider limits and holds).
pub(crate) fn quiz_handlers(
    questions: Arc<dyn QuestionStore>,
    users: Arc<dyn UserStore>,
    gate: Option<StoreGate>,
) -> anyhow::Result<QuizHandlers> {
    let offline = OfflineQuizResponder::new().context("the built-in question bank is broken")?;
    let mut providers =
        Providers::from_env(Arc::new(offline)).context("invalid AI provider settings")?;
    if let Some(gate) = gate {
        providers = providers.with_gate(Arc::new(gate));
    }
    Ok(QuizHandlers::new(Arc::new(providers), questions, users))
}

fn http_config(args: &ServeArgs) -> anyhow::Result<HttpConfig> {
    let defaults = HttpConfig::default();
    let trusted_proxy = match (&args.trusted_proxy_header, &args.trusted_proxies) {
        (Some(header), Some(proxies)) => Some(TrustedProxy::parse(header, proxies)?),
        _ => None,
    };
    let config = HttpConfig {
        body_limit: args.body_limit.unwrap_or(defaults.body_limit),
        max_sse_per_user: args.max_sse_per_user.unwrap_or(defaults.max_sse_per_user),
        max_queued_per_user: args
            .max_queued_per_user
            .unwrap_or(defaults.max_queued_per_user),
        max_connections: args.max_connections.unwrap_or(defaults.max_connections),
        monitor_timeout: args.monitor_timeout.unwrap_or(defaults.monitor_timeout),
        sse_keep_alive: args.sse_keep_alive.unwrap_or(defaults.sse_keep_alive),
        header_read_timeout: args
            .header_read_timeout
            .unwrap_or(defaults.header_read_timeout),
        body_read_timeout: args.body_read_timeout.unwrap_or(defaults.body_read_timeout),
        write_stall_timeout: args
            .write_stall_timeout
            .unwrap_or(defaults.write_stall_timeout),
        shutdown_grace: args.shutdown_grace.unwrap_or(defaults.shutdown_grace),
        session_ttl: args.session_ttl.unwrap_or(defaults.session_ttl),
        secure_cookies: args.secure_cookies,
        auth_cache_ttl: args.auth_cache_ttl.unwrap_or(defaults.auth_cache_ttl),
        trusted_proxy,
        max_ws_subscriptions_per_user: args
            .max_ws_subscriptions_per_user
            .unwrap_or(defaults.max_ws_subscriptions_per_user),
        create_rate: match args.create_rate {
            None => defaults.create_rate,
            Some(RateSetting::Off) => None,
            Some(RateSetting::Limit(rate)) => Some(rate),
        },
        create_burst: args.create_burst.unwrap_or(defaults.create_burst),
        ..defaults
    };
    config.validate()?;
    Ok(config)
}

fn search_index_config(args: &ServeArgs) -> SearchIndexConfig {
    let defaults = SearchIndexConfig::default();
    SearchIndexConfig {
        interval: args.search_index_interval.unwrap_or(defaults.interval),
        ..defaults
    }
}

fn rollup_config(args: &ServeArgs) -> RollupConfig {
    let defaults = RollupConfig::default();
    RollupConfig {
        interval: args.rollup_interval.unwrap_or(defaults.interval),
        settle: args.rollup_settle.unwrap_or(defaults.settle),
        ..defaults
    }
}

fn runtime_config(args: &ServeArgs) -> RuntimeConfig {
    let defaults = RuntimeConfig::default();
    RuntimeConfig {
        concurrency: args.workers.unwrap_or(defaults.concurrency),
        claim_ahead: args.claim_ahead.unwrap_or(defaults.claim_ahead),
        shutdown_grace: args.shutdown_grace.unwrap_or(defaults.shutdown_grace),
        max_running_per_user: match args.max_running_per_user {
            None => defaults.max_running_per_user,
            Some(0) => None,
            Some(n) => Some(n),
        },
        lease_duration: args.lease.unwrap_or(defaults.lease_duration),
        // A lease given alone keeps the default ratio: three heartbeats per lease.
        heartbeat_interval: match (args.heartbeat_interval, args.lease) {
            (Some(interval), _) => interval,
            (None, Some(lease)) => lease / 3,
            (None, None) => defaults.heartbeat_interval,
        },
        rescuer: RescuerConfig {
            interval: args.rescue_interval.unwrap_or(defaults.rescuer.interval),
        },
        ..defaults
    }
}

/// Ctrl-C and SIGTERM, listened for from the moment this is created: a signal that arrives
/// while the server is still starting is not lost (and does not kill the process unhandled).
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn listen() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes on the first signal.
    async fn received(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("Ctrl-C received"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received"),
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            if tokio::signal::ctrl_c().await.is_ok() {
                tracing::info!("Ctrl-C received");
            }
        }
    }
}
