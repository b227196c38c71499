//! [`RuntimeConfig`]: every knob of the worker runtime with its default, and the checks that
//! keep a configuration from contradicting itself.

use std::time::Duration;

use crate::{CleanerConfig, RescuerConfig, RuntimeError, TaskTypeConfig};

/// Tasks one worker runs at the same time unless configured otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How often an idle worker looks for tasks created by other processes.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long a claim or heartbeat keeps a task leased.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(30);
/// How often a running task's lease is renewed.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// How long a handler may take to stop after its task was cancelled.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown lets running handlers finish before it stops and releases them.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How many tasks of one user run at once across all workers sharing the database.
pub const DEFAULT_MAX_RUNNING_PER_USER: u32 = 2;
/// Tasks claimed beyond the free slots unless configured otherwise: none.
pub const DEFAULT_CLAIM_AHEAD: usize = 0;
/// The largest `claim_ahead` accepted: a local queue this long already holds far more tasks
/// than a worker can usefully keep from the others.
pub const MAX_CLAIM_AHEAD: usize = 100_000;

/// Everything the runtime can be told. Every field has a default ([`RuntimeConfig::default`]);
/// [`RuntimeConfig::validate`] (also run by `Runtime::start`) rejects contradictions.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// This worker's name, stored as `lease_owner` on the tasks it holds. Defaults to
    /// `<hostname>-<pid>-<6 random hex digits>`.
    pub worker_id: String,
    /// Tasks run at the same time; each claim asks for at most the free slots (plus
    /// `claim_ahead`). Defaults to 16.
    pub concurrency: usize,
    /// Tasks claimed beyond the free slots and held in a local queue, started as slots free
    /// (oldest claim first). A queued task is `processing` in the store: its lease is renewed
    /// while it waits, a cancel finishes it as cancelled without running it, shutdown releases
    /// it at once, and per-user fairness counts it as running. With a queue, the worker refills
    /// when half of it is free or when a slot is idle, so claims come in larger batches and
    /// handlers never wait for a claim; the cost is that the queued tasks are held by this
    /// worker while other workers may be idle, and a task created meanwhile with a higher
    /// priority starts after them. Defaults to 0 (claim only for free slots).
    pub claim_ahead: usize,
    /// How often an idle worker checks for due tasks it was not told about (tasks created by
    /// another process, or delays it did not see). One claim query per tick. Defaults to 250 ms.
    pub poll_interval: Duration,
    /// How long a claim or heartbeat leases a task; a worker silent for longer loses it to the
    /// rescuer. Defaults to 30 s.
    pub lease_duration: Duration,
    /// How often a running task's lease is renewed (and a cancel from another process
    /// noticed). Must be shorter than `lease_duration`. Defaults to 10 s.
    pub heartbeat_interval: Duration,
    /// How long a cancelled handler may take to return before its task is marked cancelled
    /// anyway and the handler is dropped. Defaults to 5 s.
    pub cancel_grace: Duration,
    /// How long shutdown waits for running handlers before it cancels them and releases their
    /// tasks for another worker. Defaults to 30 s.
    pub shutdown_grace: Duration,
    /// Per-user fairness: a user with this many running tasks gets no more until one
    /// finishes, and claims rotate across users. `None` turns fairness off (oldest first).
    /// Defaults to `Some(2)`.
    pub max_running_per_user: Option<u32>,
    /// Attempts, timeout and backoff of task types registered without their own config.
    /// Defaults to [`TaskTypeConfig::default`] (3 attempts, 10 min, backoff 2 s up to 5 min).
    pub default_task_type: TaskTypeConfig,
    /// The sweep that returns tasks of dead workers. Defaults to [`RescuerConfig::default`]
    /// (every 5 s).
    pub rescuer: RescuerConfig,
    /// The sweep that deletes old finished tasks. Defaults to [`CleanerConfig::default`]
    /// (every 10 min, 7 days retention, 500 per batch).
    pub cleaner: CleanerConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            worker_id: default_worker_id(),
            concurrency: DEFAULT_CONCURRENCY,
            claim_ahead: DEFAULT_CLAIM_AHEAD,
            poll_interval: DEFAULT_POLL_INTERVAL,
            lease_duration: DEFAULT_LEASE_DURATION,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            cancel_grace: DEFAULT_CANCEL_GRACE,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_running_per_user: Some(DEFAULT_MAX_RUNNING_PER_USER),
            default_task_type: TaskTypeConfig::default(),
            rescuer: RescuerConfig::default(),
            cleaner: CleanerConfig::default(),
        }
    }
}

impl RuntimeConfig {
    /// Checks every field and the rules between them.
    ///
    /// # Errors
    /// [`RuntimeError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        if self.worker_id.trim().is_empty() {
            return Err(RuntimeError::config("worker_id", "must not be empty"));
        }
        if self.concurrency == 0 {
            return Err(RuntimeError::config("concurrency", "must be at least 1"));
        }
        if self.claim_ahead > MAX_CLAIM_AHEAD {
            return Err(RuntimeError::config(
                "claim_ahead",
                "must be at most 100000",
            ));
        }
        for (field, value) in [
            ("poll_interval", self.poll_interval),
            ("lease_duration", self.lease_duration),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            if value.is_zero() {
                return Err(RuntimeError::config(field, "must be longer than zero"));
            }
        }
        for (field, value) in [
            ("poll_interval", self.poll_interval),
            ("lease_duration", self.lease_duration),
            ("heartbeat_interval", self.heartbeat_interval),
            ("cancel_grace", self.cancel_grace),
            ("shutdown_grace", self.shutdown_grace),
        ] {
            check_not_too_long(field, value)?;
        }
        if self.heartbeat_interval >= self.lease_duration {
            return Err(RuntimeError::config(
                "heartbeat_interval",
                "must be shorter than lease_duration, or leases expire between heartbeats",
            ));
        }
        if self.max_running_per_user == Some(0) {
            return Err(RuntimeError::config(
                "max_running_per_user",
                "must be at least 1 (use None to turn fairness off)",
            ));
        }
        self.default_task_type.validate("default_task_type")?;
        self.rescuer.validate()?;
        self.cleaner.validate()?;
        Ok(())
    }
}

/// The longest duration any timer setting accepts. Deadlines are computed by adding settings
/// to the current instant, which must not overflow; a year is far beyond any sensible value.
pub(crate) const MAX_SETTING: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Rejects a duration longer than [`MAX_SETTING`].
pub(crate) fn check_not_too_long(field: &str, value: Duration) -> Result<(), RuntimeError> {
    if value > MAX_SETTING {
        return Err(RuntimeError::config(field, "must be at most 365 days"));
    }
    Ok(())
}

/// Rejects a zero duration (a retention, a settle time).
pub(crate) fn check_positive(field: &str, value: Duration) -> Result<(), RuntimeError> {
    if value.is_zero() {
        return Err(RuntimeError::config(field, "must be longer than zero"));
    }
    Ok(())
}

/// Rejects a maintenance loop's interval that is zero (a busy loop) or over [`MAX_SETTING`].
pub(crate) fn check_interval(field: &str, value: Duration) -> Result<(), RuntimeError> {
    check_positive(field, value)?;
    check_not_too_long(field, value)
}

/// Rejects a batch size of zero, which would make a loop's pass do nothing forever.
pub(crate) fn check_batch_size(field: &str, value: usize) -> Result<(), RuntimeError> {
    if value == 0 {
        return Err(RuntimeError::config(field, "must be at least 1"));
    }
    Ok(())
}

/// `<hostname>-<pid>-<random>`: readable in `lease_owner`, and unique even when two runtimes
/// share a process (tests) or a pid is reused in a container.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let mut random = [0u8; 3];
    // Without OS randomness the pid alone still separates processes on one host.
    let _ = getrandom::getrandom(&mut random);
    let suffix: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{host}-{}-{suffix}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(change: impl FnOnce(&mut RuntimeConfig), bad_field: Option<&str>) {
        let mut config = RuntimeConfig::default();
        change(&mut config);
        match (config.validate(), bad_field) {
            (Ok(()), None) => {}
            (Err(RuntimeError::InvalidConfig { field, .. }), Some(expected)) => {
                assert_eq!(field, expected)
            }
            (other, expected) => panic!("{other:?}, expected bad field {expected:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = RuntimeConfig::default();
        assert_eq!(config.concurrency, 16);
        assert_eq!(config.claim_ahead, 0);
        assert_eq!(config.poll_interval, Duration::from_millis(250));
        assert_eq!(config.lease_duration, Duration::from_secs(30));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(config.cancel_grace, Duration::from_secs(5));
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
        assert_eq!(config.max_running_per_user, Some(2));
        assert_eq!(config.default_task_type.max_attempts, 3);
        assert_eq!(config.default_task_type.timeout, Duration::from_secs(600));
        let pid = format!("-{}-", std::process::id());
        assert!(config.worker_id.contains(&pid), "{}", config.worker_id);
        assert_ne!(config.worker_id, RuntimeConfig::default().worker_id);
    }

    #[test]
    fn validation_names_the_bad_field() {
        check(|_| {}, None);
        check(|c| c.worker_id = " ".into(), Some("worker_id"));
        check(|c| c.concurrency = 0, Some("concurrency"));
        check(|c| c.claim_ahead = 100, None);
        check(|c| c.claim_ahead = usize::MAX, Some("claim_ahead"));
        check(|c| c.poll_interval = Duration::ZERO, Some("poll_interval"));
        check(
            |c| c.lease_duration = Duration::ZERO,
            Some("lease_duration"),
        );
        check(
            |c| c.heartbeat_interval = c.lease_duration,
            Some("heartbeat_interval"),
        );
        check(
            |c| c.max_running_per_user = Some(0),
            Some("max_running_per_user"),
        );
        check(|c| c.max_running_per_user = None, None);
        check(
            |c| c.default_task_type.timeout = Duration::ZERO,
            Some("default_task_type.timeout"),
        );
        check(
            |c| c.rescuer.interval = Duration::ZERO,
            Some("rescuer.interval"),
        );
        check(|c| c.cleaner.batch_size = 0, Some("cleaner.batch_size"));
        check(
            |c| c.cleaner.retention = Duration::ZERO,
            Some("cleaner.retention"),
        );
        check(|c| c.cancel_grace = Duration::ZERO, None);
        check(|c| c.cancel_grace = Duration::MAX, Some("cancel_grace"));
        check(
            |c| c.default_task_type.backoff.cap = Duration::MAX,
            Some("default_task_type.backoff.cap"),
        );
        check(
            |c| c.rescuer.interval = Duration::MAX,
            Some("rescuer.interval"),
        );
    }
}
