//! A short-lived memory of valid tokens, so a busy client's every request does not cost a
//! database read. Only successful lookups are remembered (a new token works at once); logout
//! forgets its session here at once; a token revoked by another process keeps working for at
//! most the cache's time to live.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use task_store::{TokenRecord, User};

/// Tokens remembered at most; when full, stale entries are dropped first, then everything.
const MAX_ENTRIES: usize = 10_000;

/// Valid tokens by hash, each remembered for `ttl`.
#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    user: User,
    record: TokenRecord,
    stored: Instant,
}

impl TokenCache {
    /// A cache keeping entries for `ttl`; a zero `ttl` turns it off.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The remembered user and token for `hash`, if fresh and not expired at `now` (Unix ms).
    pub fn get(&self, hash: &str, now: i64) -> Option<(User, TokenRecord)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let entry = entries.get(hash)?;
        let fresh = entry.stored.elapsed() < self.ttl;
        let unexpired = entry.record.expires_at.is_none_or(|at| at > now);
        (fresh && unexpired).then(|| (entry.user.clone(), entry.record.clone()))
    }

    /// Remembers a valid token.
    pub fn put(&self, hash: &str, user: &User, record: &TokenRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, entry| entry.stored.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            hash.to_owned(),
            Entry {
                user: user.clone(),
                record: record.clone(),
                stored: Instant::now(),
            },
        );
    }

    /// Forgets a token (logout).
    pub fn forget(&self, hash: &str) {
        self.lock().remove(hash);
    }

    /// Entries are replaced whole, so a panic elsewhere cannot leave one half-written and a
    /// poisoned lock is safe to keep using.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        task_core::sync::lock(&self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use task_store::{Role, TokenKind};

    fn token(expires_at: Option<i64>) -> (User, TokenRecord) {
        let user = User {
            email: "a@example.com".into(),
            role: Role::User,
            created_at: 0,
        };
        let record = TokenRecord {
            id: "tok_1".into(),
            user_email: user.email.clone(),
            kind: TokenKind::Api,
            label: None,
            created_at: 0,
            expires_at,
        };
        (user, record)
    }

    #[test]
    fn remembers_forgets_and_respects_expiry() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let (user, record) = token(None);
        assert!(cache.get("h", 0).is_none());
        cache.put("h", &user, &record);
        assert_eq!(cache.get("h", 0).unwrap().0, user);
        cache.forget("h");
        assert!(cache.get("h", 0).is_none());

        let (user, expiring) = token(Some(1_000));
        cache.put("e", &user, &expiring);
        assert!(cache.get("e", 999).is_some());
        assert!(
            cache.get("e", 1_000).is_none(),
            "expired tokens are not served"
        );
    }

    #[test]
    fn zero_ttl_turns_the_cache_off() {
        let cache = TokenCache::new(Duration::ZERO);
        let (user, record) = token(None);
        cache.put("h", &user, &record);
        assert!(cache.get("h", 0).is_none());
    }
}
