//! Per-user limits on task creation (issue #19): a token bucket per user (a sustained rate
//! and a burst), and each user's queue cap, with the user's own limits from the user store
//! taking precedence over the server's defaults.
//!
//! A user's own limits are read from the store at most once per [`LIMITS_CACHE_TTL`] per
//! user, so a change made with `task-http user limits` takes effect within that time and a
//! creation does not cost a database read. The buckets live in this process: with several
//! server instances each enforces the rate on its own share of the requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use task_store::{Rate, StoreError, UserLimits, UserStore};

use crate::ApiError;

/// How long a user's own limits are trusted before they are read again.
pub const LIMITS_CACHE_TTL: Duration = Duration::from_secs(5);
/// Users remembered at most; beyond it, entries whose bucket is full again are dropped.
const MAX_USERS: usize = 10_000;

/// The limits that apply to one user: their own where set, the server's otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EffectiveLimits {
    /// Sustained creations (`"30/min"`); `None`: not rate limited.
    #[serde(serialize_with = "rate_text")]
    pub rate: Option<Rate>,
    /// Creations allowed at once above the sustained rate.
    pub burst: u32,
    /// Unfinished tasks.
    pub max_queued: u64,
    /// The user's own cap on running tasks; `None`: the worker runtime's default.
    pub max_running: Option<u32>,
}

fn rate_text<S: serde::Serializer>(rate: &Option<Rate>, serializer: S) -> Result<S::Ok, S::Error> {
    match rate {
        Some(rate) => serializer.serialize_str(&rate.to_string()),
        None => serializer.serialize_none(),
    }
}

/// The server's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitDefaults {
    /// Sustained creations per user; `None` turns rate limiting off for users without a rate
    /// of their own.
    pub rate: Option<Rate>,
    /// The bucket's size.
    pub burst: u32,
    /// Unfinished tasks per user.
    pub max_queued: u64,
}

impl LimitDefaults {
    fn apply(&self, own: &UserLimits) -> EffectiveLimits {
        EffectiveLimits {
            rate: own.rate.or(self.rate),
            burst: own.burst.unwrap_or(self.burst),
            max_queued: own.max_queued.unwrap_or(self.max_queued),
            max_running: own.max_running,
        }
    }
}

/// A token bucket: `tokens` refill at the rate up to `burst`; a creation takes one.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: Rate, burst: u32, now: Instant) -> Result<(), Duration> {
        let per_second = rate.per_second();
        let capacity = f64::from(burst);
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

#[derive(Debug)]
struct Entry {
    limits: EffectiveLimits,
    read_at: Instant,
    bucket: Bucket,
}

/// The per-user creation limits of one server.
pub struct CreationLimits {
    defaults: LimitDefaults,
    users: Arc<dyn UserStore>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl CreationLimits {
    /// Limits with `defaults`, reading users' own limits from `users`.
    pub fn new(defaults: LimitDefaults, users: Arc<dyn UserStore>) -> Self {
        Self {
            defaults,
            users,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The limits that apply to `user` now.
    ///
    /// # Errors
    /// The store's error when the user's own limits cannot be read.
    pub async fn effective(&self, user: &str) -> Result<EffectiveLimits, ApiError> {
        let own = match self.users.get_user_limits(user).await {
            Ok(own) => own,
            // A user known only to an authenticating proxy has no row, so no limits of
            // their own.
            Err(StoreError::NotFound) => UserLimits::default(),
            Err(error) => return Err(error.into()),
        };
        Ok(self.defaults.apply(&own))
    }

    /// Takes one creation from `user`'s bucket. Returns the user's limits (the queue cap
    /// applies next).
    ///
    /// # Errors
    /// 429 with `Retry-After` and `"limit": "rate"` when the bucket is empty.
    pub async fn admit(&self, user: &str) -> Result<EffectiveLimits, ApiError> {
        let now = Instant::now();
        let cached = self
            .lock()
            .get(user)
            .filter(|entry| now.saturating_duration_since(entry.read_at) < LIMITS_CACHE_TTL)
            .map(|entry| entry.limits);
        let limits = match cached {
            Some(limits) => limits,
            None => self.effective(user).await?,
        };
        let mut entries = self.lock();
        // Looked up by `&str` first: the common case (a known user) allocates nothing.
        if !entries.contains_key(user) {
            if entries.len() >= MAX_USERS {
                entries.retain(|_, entry| entry.bucket.tokens < f64::from(entry.limits.burst));
            }
            entries.insert(
                user.to_owned(),
                Entry {
                    limits,
                    read_at: now,
                    bucket: Bucket {
                        tokens: f64::from(limits.burst),
                        at: now,
                    },
                },
            );
        }
        let Some(entry) = entries.get_mut(user) else {
            return Ok(limits);
        };
        if cached.is_none() {
            entry.limits = limits;
            entry.read_at = now;
        }
        let Some(rate) = limits.rate else {
            return Ok(limits);
        };
        match entry.bucket.take(rate, limits.burst, now) {
            Ok(()) => Ok(limits),
            Err(wait) => Err(ApiError::rate_limited(
                format!(
                    "rate limit reached: at most {rate} task creations per user, in bursts of at \
                     most {}",
                    limits.burst
                ),
                wait,
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, period_ms: u32) -> Rate {
        Rate { count, period_ms }
    }

    #[test]
    fn a_bucket_allows_the_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket {
            tokens: 3.0,
            at: start,
        };
        let per_second = rate(2, 1_000);
        for _ in 0..3 {
            assert!(bucket.take(per_second, 3, start).is_ok());
        }
        let wait = bucket.take(per_second, 3, start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        assert!(bucket.take(per_second, 3, later).is_ok());
        assert!(bucket.take(per_second, 3, later).is_err());
        // A long pause refills only up to the burst.
        let much_later = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(bucket.take(per_second, 3, much_later).is_ok());
        }
        assert!(bucket.take(per_second, 3, much_later).is_err());
    }

    #[tokio::test]
    async fn own_limits_win_over_defaults() {
        use task_store::{MemoryStore, Role};
        let store = Arc::new(MemoryStore::new());
        store
            .create_user("a@example.com", Role::User)
            .await
            .unwrap();
        store
            .set_user_limits(
                "a@example.com",
                UserLimits {
                    burst: Some(1),
                    max_queued: Some(7),
                    ..UserLimits::default()
                },
            )
            .await
            .unwrap();
        let limits = CreationLimits::new(
            LimitDefaults {
                rate: Some(rate(1, 60_000)),
                burst: 5,
                max_queued: 100,
            },
            store,
        );
        let own = limits.admit("a@example.com").await.unwrap();
        assert_eq!((own.burst, own.max_queued), (1, 7));
        let refused = limits.admit("a@example.com").await.unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::TOO_MANY_REQUESTS);
        // A user without a row gets the defaults.
        for _ in 0..5 {
            limits.admit("proxy-user@example.com").await.unwrap();
        }
        assert!(limits.admit("proxy-user@example.com").await.is_err());
    }
}
