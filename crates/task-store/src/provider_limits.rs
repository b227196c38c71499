//! Limits on calls to upstream providers, shared by every worker of every instance on one
//! database: at most N calls in flight, R calls and T tokens per minute per provider and model,
//! and a **hold** (a provider answered 429 or 503 with `Retry-After`) that keeps every caller
//! away until it ends.
//!
//! [`ProviderLimitStore`] is a trait of its own beside [`crate::TaskStore`] (as
//! [`crate::AnalyticsStore`] is); its tables are the `providers` migration set. The store knows
//! providers only as two strings, a name and a model: what a provider *is* stays in
//! ai-providers. Every backend makes an admission one atomic step (SQLite's writer, a row lock
//! on PostgreSQL, a mutex in memory) and decides it with the one pure rule, [`decide`], so the
//! backends cannot drift apart.
//!
//! - **Concurrency** is counted in *leases*: an admitted call holds a lease until it is released
//!   after the call, or until it expires (a worker that crashed mid-call frees its slot then).
//! - **Requests and tokens per minute** are counted in a fixed window per key: the wall-clock
//!   minute. A call is admitted while the window's requests are under R and its tokens under T;
//!   tokens are added when the call is released, from the provider's reported usage, so the token
//!   cap is checked against what calls already used (a call in flight is not counted yet).
//! - A refused caller is told the earliest moment worth trying again ([`Admission::Wait`]).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use task_core::{CoreError, UnixMillis};

use crate::Result;

/// Length of the per-minute window.
pub const WINDOW_MS: i64 = 60_000;

/// How long a caller refused for concurrency waits before trying again: a slot frees when a
/// call ends, which nobody can predict, so the caller re-checks soon (or when the oldest lease
/// expires, if that is sooner).
pub const CONCURRENCY_RECHECK_MS: i64 = 1_000;

/// Which provider and model a limit, a hold or a lease belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderKey {
    /// The provider's name, e.g. `openai`.
    pub provider: String,
    /// The model, e.g. `gpt-4o-mini`.
    pub model: String,
}

impl ProviderKey {
    /// The key of `provider` and `model`.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
        }
    }
}

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.model)
    }
}

/// The caps on one provider and model. `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderCaps {
    /// Calls in flight at once.
    pub concurrency: Option<u32>,
    /// Calls started per minute.
    pub requests_per_minute: Option<u32>,
    /// Tokens (input plus output, as the provider reported them) per minute.
    pub tokens_per_minute: Option<u64>,
}

impl ProviderCaps {
    /// Whether no cap is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Self::default()
    }
}

/// One configured limit: a provider, a model or every model (`*`), and its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLimit {
    /// The provider's name.
    pub provider: String,
    /// The model, or `None` for every model of the provider not named by a limit of its own.
    pub model: Option<String>,
    /// The caps; each model is counted on its own, also under a wildcard.
    pub caps: ProviderCaps,
}

const LIMIT_SHAPE: &str = "must look like PROVIDER:MODEL=concurrency=N,rpm=N,tpm=N \
     (MODEL may be *, at least one of the three, each a whole number from 1)";

fn invalid(reason: impl Into<String>) -> CoreError {
    CoreError::InvalidField {
        field: "provider limit",
        reason: reason.into(),
    }
}

impl FromStr for ProviderLimit {
    type Err = CoreError;

    /// Parses `openai:gpt-4o-mini=concurrency=4,rpm=60,tpm=100000` (or `openai:*=…`).
    fn from_str(text: &str) -> Result<Self, CoreError> {
        let (target, caps_text) = text
            .trim()
            .split_once('=')
            .ok_or_else(|| invalid(LIMIT_SHAPE))?;
        let (provider, model) = target.split_once(':').ok_or_else(|| invalid(LIMIT_SHAPE))?;
        let (provider, model) = (provider.trim(), model.trim());
        if provider.is_empty() || model.is_empty() {
            return Err(invalid(LIMIT_SHAPE));
        }
        let mut caps = ProviderCaps::default();
        for part in caps_text.split(',') {
            let (name, value) = part.split_once('=').ok_or_else(|| invalid(LIMIT_SHAPE))?;
            let name = name.trim();
            let value: i64 = value.trim().parse().map_err(|_| {
                invalid(format!(
                    "{name} must be a whole number from 1, not {value:?}"
                ))
            })?;
            if value < 1 {
                return Err(invalid(format!(
                    "{name} must be at least 1 (zero or negative limits are not allowed)"
                )));
            }
            let duplicate = match name {
                "concurrency" => caps
                    .concurrency
                    .replace(u32::try_from(value).map_err(|_| invalid("concurrency is too large"))?)
                    .is_some(),
                "rpm" => caps
                    .requests_per_minute
                    .replace(u32::try_from(value).map_err(|_| invalid("rpm is too large"))?)
                    .is_some(),
                "tpm" => caps
                    .tokens_per_minute
                    .replace(u64::try_from(value).map_err(|_| invalid("tpm is too large"))?)
                    .is_some(),
                other => {
                    return Err(invalid(format!(
                        "unknown limit {other:?}: the limits are concurrency, rpm and tpm"
                    )))
                }
            };
            if duplicate {
                return Err(invalid(format!("{name} is given twice")));
            }
        }
        Ok(Self {
            provider: provider.to_owned(),
            model: (model != "*").then(|| model.to_owned()),
            caps,
        })
    }
}

impl fmt::Display for ProviderLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}=",
            self.provider,
            self.model.as_deref().unwrap_or("*")
        )?;
        let mut parts = Vec::new();
        if let Some(n) = self.caps.concurrency {
            parts.push(format!("concurrency={n}"));
        }
        if let Some(n) = self.caps.requests_per_minute {
            parts.push(format!("rpm={n}"));
        }
        if let Some(n) = self.caps.tokens_per_minute {
            parts.push(format!("tpm={n}"));
        }
        write!(f, "{}", parts.join(","))
    }
}

/// Every configured limit; a model's own limit wins over its provider's wildcard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderLimits {
    limits: Vec<ProviderLimit>,
}

impl ProviderLimits {
    /// The limits, checked: the same provider and model twice is an error.
    ///
    /// # Errors
    /// [`CoreError::InvalidField`] naming the duplicate.
    pub fn new(limits: Vec<ProviderLimit>) -> Result<Self, CoreError> {
        for (i, limit) in limits.iter().enumerate() {
            if limits[..i]
                .iter()
                .any(|l| l.provider == limit.provider && l.model == limit.model)
            {
                return Err(invalid(format!(
                    "{}:{} is limited twice",
                    limit.provider,
                    limit.model.as_deref().unwrap_or("*")
                )));
            }
        }
        Ok(Self { limits })
    }

    /// The configured limits, in the order given.
    pub fn limits(&self) -> &[ProviderLimit] {
        &self.limits
    }

    /// Whether no limit is configured.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// The caps on `provider`'s `model`: its own limit, else the provider's wildcard, else none.
    pub fn caps_for(&self, provider: &str, model: &str) -> ProviderCaps {
        let own = self
            .limits
            .iter()
            .find(|l| l.provider == provider && l.model.as_deref() == Some(model));
        let wildcard = || {
            self.limits
                .iter()
                .find(|l| l.provider == provider && l.model.is_none())
        };
        own.or_else(wildcard).map(|l| l.caps).unwrap_or_default()
    }
}

/// A request to start one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmitRequest {
    /// Which provider and model.
    pub key: ProviderKey,
    /// Its caps.
    pub caps: ProviderCaps,
    /// How long the lease lasts if the caller never releases it (a crash); longer than any call.
    pub lease_for_ms: i64,
    /// The caller's clock.
    pub now: UnixMillis,
}

/// Why a call may not start yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// The provider asked every caller to wait (a 429 or 503 with `Retry-After`).
    Hold,
    /// The cap on calls in flight is reached.
    Concurrency,
    /// This minute's calls are used up.
    Requests,
    /// This minute's tokens are used up.
    Tokens,
}

impl WaitReason {
    /// A stable name: `hold`, `concurrency`, `rpm` or `tpm`.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::Hold => "hold",
            WaitReason::Concurrency => "concurrency",
            WaitReason::Requests => "rpm",
            WaitReason::Tokens => "tpm",
        }
    }
}

/// The answer to an [`AdmitRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The call may start; release the lease when it ends.
    Granted(ProviderLease),
    /// The call may not start before `until`.
    Wait {
        /// The earliest moment worth trying again.
        until: UnixMillis,
        /// Which limit refused.
        reason: WaitReason,
    },
}

/// A started call's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderLease {
    /// Which provider and model.
    pub key: ProviderKey,
    /// The lease's random id.
    pub id: String,
    /// When the slot frees by itself if the lease is never released.
    pub expires_at: UnixMillis,
}

/// What a key's stored state looks like to [`decide`]: read in the admission's atomic step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateState {
    /// The hold's end, if any (past holds are ignored).
    pub hold_until: Option<UnixMillis>,
    /// The start of the minute the counts below belong to.
    pub window_start: UnixMillis,
    /// Calls started in that minute.
    pub requests: u64,
    /// Tokens reported in that minute.
    pub tokens: u64,
    /// Leases not yet expired.
    pub in_flight: u64,
    /// The earliest expiry among them.
    pub earliest_expiry: Option<UnixMillis>,
}

/// The start of the minute `now` falls in.
pub fn window_of(now: UnixMillis) -> UnixMillis {
    now - now.rem_euclid(WINDOW_MS)
}

impl GateState {
    /// The state as of `now`: a count of an earlier minute is zero now.
    pub fn at(mut self, now: UnixMillis) -> Self {
        let window = window_of(now);
        if self.window_start != window {
            self.window_start = window;
            self.requests = 0;
            self.tokens = 0;
        }
        self
    }
}

/// The one admission rule every backend applies to the state it read atomically: a hold first,
/// then concurrency, then requests and tokens per minute. `None` admits the call (the backend
/// then counts one request in `state.window_start`'s window and stores a lease).
pub fn decide(state: &GateState, caps: &ProviderCaps, now: UnixMillis) -> Option<Admission> {
    if let Some(until) = state.hold_until.filter(|&until| until > now) {
        return Some(Admission::Wait {
            until,
            reason: WaitReason::Hold,
        });
    }
    if let Some(cap) = caps.concurrency {
        if state.in_flight >= u64::from(cap) {
            let recheck = now + CONCURRENCY_RECHECK_MS;
            let until = state.earliest_expiry.map_or(recheck, |e| e.min(recheck));
            return Some(Admission::Wait {
                until: until.max(now + 1),
                reason: WaitReason::Concurrency,
            });
        }
    }
    let next_window = window_of(now) + WINDOW_MS;
    if let Some(cap) = caps.requests_per_minute {
        if state.requests >= u64::from(cap) {
            return Some(Admission::Wait {
                until: next_window,
                reason: WaitReason::Requests,
            });
        }
    }
    if let Some(cap) = caps.tokens_per_minute {
        if state.tokens >= cap {
            return Some(Admission::Wait {
                until: next_window,
                reason: WaitReason::Tokens,
            });
        }
    }
    None
}

/// One provider and model's current use, for operators (`GET /api/providers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUsage {
    /// Which provider and model.
    pub key: ProviderKey,
    /// Calls in flight (leases not expired).
    pub in_flight: u64,
    /// The current minute's start.
    pub window_start: UnixMillis,
    /// Calls started this minute.
    pub requests: u64,
    /// Tokens reported this minute.
    pub tokens: u64,
    /// The end of a hold still in force.
    pub hold_until: Option<UnixMillis>,
}

/// Storage for provider limits: leases, per-minute counts and holds, shared by every instance
/// on the database.
#[async_trait]
pub trait ProviderLimitStore: Send + Sync {
    /// Admits one call or says until when to wait, in one atomic step (two instances asking at
    /// once never both take the last slot). Expired leases of the key are dropped first.
    async fn admit(&self, request: &AdmitRequest) -> Result<Admission>;

    /// Ends a call: frees its slot and adds `tokens` to the minute of `now`. Releasing a lease
    /// that expired (or was released) only adds the tokens.
    async fn release_slot(&self, lease: &ProviderLease, tokens: u64, now: UnixMillis)
        -> Result<()>;

    /// Holds every call of `key` back until `until`. A later hold wins; an earlier one changes
    /// nothing.
    async fn hold(&self, key: &ProviderKey, until: UnixMillis) -> Result<()>;

    /// Every key the store has seen, with its use as of `now`, sorted by key.
    async fn provider_usage(&self, now: UnixMillis) -> Result<Vec<ProviderUsage>>;
}

/// A [`ProviderUsage`] from a key's stored state, as of `now`.
pub fn usage_of(key: ProviderKey, state: GateState, now: UnixMillis) -> ProviderUsage {
    let state = state.at(now);
    ProviderUsage {
        key,
        in_flight: state.in_flight,
        window_start: state.window_start,
        requests: state.requests,
        tokens: state.tokens,
        hold_until: state.hold_until.filter(|&until| until > now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(text: &str, expected: Result<&str, &str>) {
        match (text.parse::<ProviderLimit>(), expected) {
            (Ok(limit), Ok(shown)) => assert_eq!(limit.to_string(), shown, "{text}"),
            (Err(error), Err(part)) => {
                assert!(error.to_string().contains(part), "{text}: {error}")
            }
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn limits_parse_and_reject_bad_input() {
        check_parse(
            "openai:gpt-4o-mini=concurrency=4,rpm=60,tpm=100000",
            Ok("openai:gpt-4o-mini=concurrency=4,rpm=60,tpm=100000"),
        );
        check_parse("openai:*=rpm=10", Ok("openai:*=rpm=10"));
        check_parse(
            " anthropic:* = concurrency = 2 ",
            Ok("anthropic:*=concurrency=2"),
        );
        check_parse("openai=rpm=1", Err("must look like"));
        check_parse("openai:gpt", Err("must look like"));
        check_parse(":gpt=rpm=1", Err("must look like"));
        check_parse("openai:gpt=rpm", Err("must look like"));
        check_parse("openai:gpt=rpm=0", Err("at least 1"));
        check_parse("openai:gpt=tpm=-5", Err("at least 1"));
        check_parse("openai:gpt=rpm=abc", Err("whole number"));
        check_parse("openai:gpt=burst=3", Err("unknown limit"));
        check_parse("openai:gpt=rpm=1,rpm=2", Err("twice"));
        check_parse("openai:gpt=concurrency=99999999999", Err("too large"));
    }

    #[test]
    fn a_models_own_limit_wins_over_the_wildcard() {
        let limits = ProviderLimits::new(vec![
            "openai:*=rpm=10".parse().unwrap(),
            "openai:gpt-4o=concurrency=1".parse().unwrap(),
        ])
        .unwrap();
        assert_eq!(limits.caps_for("openai", "gpt-4o").concurrency, Some(1));
        assert_eq!(
            limits.caps_for("openai", "gpt-4o").requests_per_minute,
            None
        );
        assert_eq!(
            limits.caps_for("openai", "o3").requests_per_minute,
            Some(10)
        );
        assert!(limits.caps_for("gemini", "x").is_unlimited());
        let twice = ProviderLimits::new(vec![
            "openai:*=rpm=10".parse().unwrap(),
            "openai:*=rpm=11".parse().unwrap(),
        ]);
        assert!(twice.unwrap_err().to_string().contains("twice"));
    }

    fn check_decide(state: GateState, caps: ProviderCaps, expected: Option<(i64, WaitReason)>) {
        let now = 120_500;
        let got = decide(&state.at(now), &caps, now).map(|a| match a {
            Admission::Wait { until, reason } => (until, reason),
            Admission::Granted(_) => unreachable!(),
        });
        assert_eq!(got, expected, "{state:?} {caps:?}");
    }

    #[test]
    fn decisions_follow_hold_then_concurrency_then_minute() {
        let caps = ProviderCaps {
            concurrency: Some(2),
            requests_per_minute: Some(3),
            tokens_per_minute: Some(100),
        };
        let fresh = GateState::default();
        check_decide(fresh, caps, None);
        let held = GateState {
            hold_until: Some(125_000),
            ..fresh
        };
        check_decide(held, caps, Some((125_000, WaitReason::Hold)));
        let ended = GateState {
            hold_until: Some(120_000),
            ..fresh
        };
        check_decide(ended, caps, None);
        let busy = GateState {
            in_flight: 2,
            earliest_expiry: Some(200_000),
            ..fresh
        };
        check_decide(busy, caps, Some((121_500, WaitReason::Concurrency)));
        let expiring = GateState {
            earliest_expiry: Some(120_900),
            ..busy
        };
        check_decide(expiring, caps, Some((120_900, WaitReason::Concurrency)));
        let counted = GateState {
            window_start: 120_000,
            requests: 3,
            ..fresh
        };
        check_decide(counted, caps, Some((180_000, WaitReason::Requests)));
        let last_minute = GateState {
            window_start: 60_000,
            ..counted
        };
        check_decide(last_minute, caps, None);
        let spent = GateState {
            window_start: 120_000,
            tokens: 100,
            ..fresh
        };
        check_decide(spent, caps, Some((180_000, WaitReason::Tokens)));
        check_decide(spent, ProviderCaps::default(), None);
    }
}
