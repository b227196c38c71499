//! The command line: every setting is a flag with a `TASKLANE_*` environment twin. Defaults
//! are the libraries' (`HttpConfig::default()`, `RuntimeConfig::default()`); a flag left out
//! keeps them.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use task_store::{ProviderLimit, Rate};

/// tasklane: background tasks for long-running AI jobs, with live progress over SSE.
#[derive(Debug, Parser)]
#[command(name = "task-http", version)]
pub struct Cli {
    /// The database: a SQLite file path (created if missing) or a postgres:// URL.
    #[arg(
        long,
        env = "TASKLANE_DB",
        default_value = "./tasklane.db",
        global = true
    )]
    pub db: String,

    /// PostgreSQL only: the schema holding tasklane's tables, created if missing. Instances
    /// that share a schema share their tasks [default: public].
    #[arg(long, env = "TASKLANE_PG_SCHEMA", global = true)]
    pub pg_schema: Option<String>,

    /// Log format on stderr: `human` or `json`. The level comes from RUST_LOG (default `info`).
    #[arg(
        long,
        env = "TASKLANE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Human,
        global = true
    )]
    pub log_format: LogFormat,

    /// What to do; without a command, `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings of `serve` when no command is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the worker runtime (the default).
    Serve(Box<ServeArgs>),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage schedules (recurring tasks).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
}

/// `schedule ...`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule and print its id.
    Add {
        /// The owner's email (the tasks' `user_id`).
        #[arg(long)]
        user: String,
        /// A name for people.
        #[arg(long)]
        name: String,
        /// A cron expression (`0 6 * * *`, `*/10 * * * * *`, `@daily`) or `every 15m`.
        #[arg(long)]
        expression: String,
        /// The type of the tasks it creates.
        #[arg(long)]
        task_type: String,
        /// The IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// The tasks' params, a JSON object.
        #[arg(long)]
        params: Option<String>,
        /// The tasks' label.
        #[arg(long)]
        label: Option<String>,
        /// When the previous task is unfinished: `skip`, `allow` or `cancel-previous`.
        #[arg(long, default_value = "skip")]
        overlap: String,
        /// After downtime: `latest` (fire the most recent missed time) or `none`.
        #[arg(long, default_value = "latest")]
        catch_up: String,
    },
    /// List schedules (one user's with --user), tab-separated: id, user, paused, expression,
    /// zone, task type, next fire time, name.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Pause a schedule.
    Pause {
        /// The schedule's id.
        id: String,
    },
    /// Resume a paused schedule (times missed while paused are not fired).
    Resume {
        /// The schedule's id.
        id: String,
    },
    /// Delete a schedule (its tasks stay).
    Remove {
        /// The schedule's id.
        id: String,
    },
}

/// `user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print their first API token (alone, on the last line of stdout).
    Add {
        /// The user's email (their tasks' `user_id`).
        email: String,
        /// Let the user see and act on every user's tasks.
        #[arg(long)]
        superuser: bool,
    },
    /// List users.
    List,
    /// Show a user's own limits, or set some of them (the others are kept). Limits not set
    /// fall back to the server's defaults (`--create-rate`, `--create-burst`,
    /// `--max-queued-per-user`, `--max-running-per-user`).
    Limits {
        /// The user's email.
        email: String,
        /// Sustained task creations, like 30/min, 5/s or 1000/h.
        #[arg(long, allow_hyphen_values = true, value_parser = parse_rate)]
        rate: Option<Rate>,
        /// Task creations allowed at once above the sustained rate.
        #[arg(long, allow_hyphen_values = true, value_parser = parse_positive)]
        burst: Option<u32>,
        /// Tasks running at once (stored and shown; see operations.md).
        #[arg(long, allow_hyphen_values = true, value_parser = parse_positive)]
        max_running: Option<u32>,
        /// Unfinished (pending or processing) tasks.
        #[arg(long, allow_hyphen_values = true, value_parser = parse_positive)]
        max_queued: Option<u32>,
    },
}

/// `token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create another API token for a user and print it (alone, on the last line of stdout).
    Create {
        /// The user's email.
        email: String,
        /// A note to tell tokens apart ("ci", "laptop").
        #[arg(long)]
        label: Option<String>,
    },
    /// Revoke a token (or end a session) by its id, as `token list` shows it.
    Revoke {
        /// The token's public id (`tok_...` or `ses_...`).
        id: String,
    },
    /// List a user's tokens and sessions (ids and dates, never secrets).
    List {
        /// The user's email.
        email: String,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TASKLANE_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Connections the kernel queues before they are accepted, capped by
    /// `net.core.somaxconn`; holds a reconnect storm after a restart [default: 4096].
    #[arg(long, env = "TASKLANE_LISTEN_BACKLOG")]
    pub listen_backlog: Option<u32>,

    /// Unfinished tasks per user before creating more answers 429 [default: 100].
    #[arg(long, env = "TASKLANE_MAX_QUEUED_PER_USER")]
    pub max_queued_per_user: Option<u64>,

    /// Sustained task creations per user (token bucket), like 600/min, 10/s or 1000/h, or
    /// `off`; more answer 429 [default: 600/min].
    #[arg(long, env = "TASKLANE_CREATE_RATE", value_parser = parse_rate_or_off)]
    pub create_rate: Option<RateSetting>,

    /// Task creations per user allowed at once above the sustained rate [default: 100].
    #[arg(long, env = "TASKLANE_CREATE_BURST", value_parser = parse_positive)]
    pub create_burst: Option<u32>,

    /// Open live (SSE) streams per user before more answer 429 [default: 32].
    #[arg(long, env = "TASKLANE_MAX_SSE_PER_USER")]
    pub max_sse_per_user: Option<usize>,

    /// WebSocket subscriptions per user, over all their `/api/ws` connections [default: 1000].
    #[arg(long, env = "TASKLANE_MAX_WS_SUBSCRIPTIONS_PER_USER")]
    pub max_ws_subscriptions_per_user: Option<usize>,

    /// Connections served at once [default: 10000].
    #[arg(long, env = "TASKLANE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// How long a task stream lasts before its `timeout` event, e.g. `300s`, `5m` [default: 5m].
    #[arg(long, env = "TASKLANE_MONITOR_TIMEOUT", value_parser = parse_duration)]
    pub monitor_timeout: Option<Duration>,

    /// How often an idle SSE stream gets a keep-alive comment [default: 15s].
    #[arg(long, env = "TASKLANE_SSE_KEEP_ALIVE", value_parser = parse_duration)]
    pub sse_keep_alive: Option<Duration>,

    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "TASKLANE_BODY_LIMIT")]
    pub body_limit: Option<usize>,

    /// How long a client may take to send request headers [default: 10s].
    #[arg(long, env = "TASKLANE_HEADER_READ_TIMEOUT", value_parser = parse_duration)]
    pub header_read_timeout: Option<Duration>,

    /// How long a client may take to send a request's whole body; slower ones get 408
    /// [default: 30s].
    #[arg(long, env = "TASKLANE_BODY_READ_TIMEOUT", value_parser = parse_duration)]
    pub body_read_timeout: Option<Duration>,

    /// How long a response may wait for the client to accept data before the connection is
    /// closed [default: 30s].
    #[arg(long, env = "TASKLANE_WRITE_STALL_TIMEOUT", value_parser = parse_duration)]
    pub write_stall_timeout: Option<Duration>,

    /// How long shutdown waits for open connections, and for running tasks before releasing
    /// them [default: 10s for connections, 30s for tasks].
    #[arg(long, env = "TASKLANE_SHUTDOWN_GRACE", value_parser = parse_duration)]
    pub shutdown_grace: Option<Duration>,

    /// Lifetime of a browser session [default: 7d].
    #[arg(long, env = "TASKLANE_SESSION_TTL", value_parser = parse_duration)]
    pub session_ttl: Option<Duration>,

    /// How long a valid token is remembered before the database is asked again; a token
    /// revoked by `token revoke` stops working within this time. `0s` turns it off [default: 5s].
    #[arg(long, env = "TASKLANE_AUTH_CACHE_TTL", value_parser = parse_duration)]
    pub auth_cache_ttl: Option<Duration>,

    /// Mark the session cookie `Secure` (set when serving over HTTPS).
    #[arg(long, env = "TASKLANE_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Trusted-proxy mode: the header an authenticating proxy sets to the user's email
    /// (e.g. `x-user-email`). Needs --trusted-proxies.
    #[arg(
        long,
        env = "TASKLANE_TRUSTED_PROXY_HEADER",
        requires = "trusted_proxies"
    )]
    pub trusted_proxy_header: Option<String>,

    /// Trusted-proxy mode: comma-separated proxy addresses or CIDR networks whose identity
    /// header is believed. Needs --trusted-proxy-header.
    #[arg(
        long,
        env = "TASKLANE_TRUSTED_PROXIES",
        requires = "trusted_proxy_header"
    )]
    pub trusted_proxies: Option<String>,

    /// Also register the `noop` and `sleep` task types (for trying things out and benchmarks).
    #[arg(long, env = "TASKLANE_TEST_TASKS")]
    pub test_tasks: bool,

    /// A JSON price table for analytics costs, `{"provider/model": {"inputPerMillion": 0.15,
    /// "outputPerMillion": 0.6}}`, re-read when the file changes [default: built-in list
    /// prices of the default models].
    #[arg(long, env = "TASKLANE_PRICES")]
    pub prices: Option<std::path::PathBuf>,

    /// How often finished tasks are folded into the analytics rollups [default: 5s].
    #[arg(long, env = "TASKLANE_ROLLUP_INTERVAL", value_parser = parse_duration)]
    pub rollup_interval: Option<Duration>,

    /// How long after finishing a task is folded, so its commit has surely landed [default: 10s].
    #[arg(long, env = "TASKLANE_ROLLUP_SETTLE", value_parser = parse_duration)]
    pub rollup_settle: Option<Duration>,

    /// How often new tasks are added to the search index (SQLite; searches read the ones not
    /// indexed yet directly) [default: 1s].
    #[arg(long, env = "TASKLANE_SEARCH_INDEX_INTERVAL", value_parser = parse_duration)]
    pub search_index_interval: Option<Duration>,

    /// Tasks this process runs at once [default: 16]. `0` runs no workers and no maintenance
    /// (rescuer, cleaner): the process only serves HTTP, and another process sharing the
    /// database runs the tasks.
    #[arg(long, env = "TASKLANE_WORKERS")]
    pub workers: Option<usize>,

    /// Tasks claimed beyond the free worker slots and queued locally (leased, heartbeated,
    /// cancellable, released at shutdown), so a busy worker claims in larger batches [default:
    /// 0]. Raises throughput under a backlog; queued tasks wait on this process even when
    /// another is idle.
    #[arg(long, env = "TASKLANE_CLAIM_AHEAD")]
    pub claim_ahead: Option<usize>,

    /// How long a claim or heartbeat leases a task; a worker silent for longer (a crashed
    /// process) loses its tasks to the rescuer [default: 30s].
    #[arg(long, env = "TASKLANE_LEASE", value_parser = parse_duration)]
    pub lease: Option<Duration>,

    /// How often running tasks' leases are renewed; must be shorter than --lease [default: 10s,
    /// or a third of --lease when only that is given].
    #[arg(long, env = "TASKLANE_HEARTBEAT_INTERVAL", value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,

    /// How often the rescuer looks for tasks whose lease expired [default: 5s].
    #[arg(long, env = "TASKLANE_RESCUE_INTERVAL", value_parser = parse_duration)]
    pub rescue_interval: Option<Duration>,

    /// Running tasks per user across all workers; 0 turns per-user fairness off [default: 2].
    #[arg(long, env = "TASKLANE_MAX_RUNNING_PER_USER")]
    pub max_running_per_user: Option<u32>,

    /// A limit on calls to one AI provider and model, shared by every worker of every instance
    /// on the database: `PROVIDER:MODEL=concurrency=N,rpm=N,tpm=N` (at least one of the three;
    /// concurrency = calls in flight, rpm = calls per minute, tpm = tokens per minute as the
    /// provider reports them). MODEL `*` applies to every model of the provider without a limit
    /// of its own (each model counted on its own). Repeat the flag for more; in the environment
    /// separate them with `;`. A task over a limit is delayed, not failed, and keeps its attempt
    /// [default: no limits; a provider's 429 with Retry-After still holds every worker back].
    #[arg(
        long = "provider-limit",
        env = "TASKLANE_PROVIDER_LIMITS",
        value_delimiter = ';',
        value_parser = parse_provider_limit
    )]
    pub provider_limits: Vec<ProviderLimit>,
}

/// Parses a `--provider-limit`, e.g. `openai:gpt-4o-mini=concurrency=4,rpm=60,tpm=100000`.
pub fn parse_provider_limit(text: &str) -> Result<ProviderLimit, String> {
    text.parse::<ProviderLimit>()
        .map_err(|e| format!("{text:?}: {e}"))
}

/// `--create-rate`: a rate, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateSetting {
    /// No rate limit for users without one of their own.
    Off,
    /// This rate.
    Limit(Rate),
}

/// Parses a rate such as `30/min`; zero and negative rates are refused.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    text.parse::<Rate>().map_err(|e| format!("{text:?}: {e}"))
}

/// Parses `off` or a rate.
pub fn parse_rate_or_off(text: &str) -> Result<RateSetting, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(RateSetting::Off);
    }
    parse_rate(text).map(RateSetting::Limit)
}

/// Parses a whole number of at least 1.
pub fn parse_positive(text: &str) -> Result<u32, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => u32::try_from(n).map_err(|_| format!("{text:?} is too large")),
        Ok(_) => Err(format!(
            "{text:?} must be at least 1 (zero or negative limits are not allowed)"
        )),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// Parses `250ms`, `30s`, `5m`, `2h`, `7d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 30s, 5m, 2h or 7d"))?;
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60 * 1000,
        "h" => 60 * 60 * 1000,
        "d" => 24 * 60 * 60 * 1000,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}; use ms, s, m, h or d"
            ))
        }
    };
    number
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_with_clear_errors() {
        assert_eq!(parse_rate("30/min").unwrap().to_string(), "30/min");
        assert!(parse_rate("0/min").unwrap_err().contains("zero"));
        assert!(parse_rate("thirty").unwrap_err().contains("30/min"));
        assert_eq!(parse_rate_or_off("off"), Ok(RateSetting::Off));
        assert_eq!(parse_positive("10"), Ok(10));
        assert!(parse_positive("0").unwrap_err().contains("at least 1"));
        assert!(parse_positive("-4").unwrap_err().contains("at least 1"));
        assert!(parse_positive("ten")
            .unwrap_err()
            .contains("not a whole number"));
    }

    #[test]
    fn provider_limits_parse_with_clear_errors() {
        let limit =
            parse_provider_limit("openai:gpt-4o-mini=concurrency=4,rpm=60,tpm=100000").unwrap();
        assert_eq!(limit.caps.concurrency, Some(4));
        assert_eq!(parse_provider_limit("openai:*=rpm=5").unwrap().model, None);
        assert!(parse_provider_limit("openai:*=rpm=0")
            .unwrap_err()
            .contains("at least 1"));
        assert!(parse_provider_limit("openai=rpm=5")
            .unwrap_err()
            .contains("PROVIDER:MODEL"));
        let cli = Cli::try_parse_from([
            "task-http",
            "serve",
            "--provider-limit",
            "openai:*=concurrency=2",
            "--provider-limit",
            "gemini:gemini-2.0-flash=tpm=1000",
        ])
        .unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve")
        };
        assert_eq!(args.provider_limits.len(), 2);
        let refused = Cli::try_parse_from([
            "task-http",
            "serve",
            "--provider-limit",
            "openai:gpt=concurrency=-1",
        ])
        .unwrap_err()
        .to_string();
        assert!(refused.contains("at least 1"), "{refused}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn serve_is_the_default_and_flags_parse() {
        let cli =
            Cli::try_parse_from(["task-http", "--addr", "127.0.0.1:0", "--test-tasks"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.serve.test_tasks);
        let cli =
            Cli::try_parse_from(["task-http", "user", "add", "a@b.se", "--superuser"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::User(UserCommand::Add {
                superuser: true,
                ..
            }))
        ));
        assert!(
            Cli::try_parse_from(["task-http", "--trusted-proxy-header", "x-user-email"]).is_err()
        );
        let cli = Cli::try_parse_from([
            "task-http",
            "--db",
            "postgres://db/tasklane",
            "--pg-schema",
            "tenant_a",
            "serve",
            "--workers",
            "0",
            "--lease",
            "2s",
            "--rescue-interval",
            "250ms",
            "--claim-ahead",
            "100",
        ])
        .unwrap();
        assert_eq!(cli.pg_schema.as_deref(), Some("tenant_a"));
        let Some(Command::Serve(serve)) = cli.command else {
            panic!("serve")
        };
        assert_eq!(serve.workers, Some(0));
        assert_eq!(serve.lease, Some(Duration::from_secs(2)));
        assert_eq!(serve.heartbeat_interval, None);
        assert_eq!(serve.rescue_interval, Some(Duration::from_millis(250)));
        assert_eq!(serve.claim_ahead, Some(100));
    }
}
