//! [`StoreGate`]: ai-providers' [`ProviderGate`] over task-store's [`ProviderLimitStore`], so
//! that provider limits and holds are shared by every worker of every instance on one database.
//!
//! It lives here because the quiz crate is the one that already uses both sides (it calls the
//! providers and stores through task-store); ai-providers stays free of storage, and task-store
//! free of providers. A refusal becomes [`ProviderError::RateLimited`] with the wait, which the
//! handlers turn into [`task_runtime::HandlerError::Postponed`]: the task is delayed, not
//! failed, and keeps its attempt.

use std::sync::Arc;
use std::time::Duration;

use ai_providers::{GatePass, ProviderError, ProviderGate, TokenUsage};
use async_trait::async_trait;
use task_core::now_millis;
use task_store::{
    Admission, AdmitRequest, ProviderKey, ProviderLease, ProviderLimitStore, ProviderLimits,
};

/// How long a call's slot stays taken if its worker never gives it back (a crash mid-call).
/// Longer than any call (the request timeout is minutes at most), so a live call never loses its
/// slot. Defaults to 10 minutes.
pub const DEFAULT_PROVIDER_LEASE: Duration = Duration::from_secs(600);

/// A [`ProviderGate`] that enforces `limits` through a shared [`ProviderLimitStore`].
#[derive(Clone)]
pub struct StoreGate {
    store: Arc<dyn ProviderLimitStore>,
    limits: ProviderLimits,
    lease_for: Duration,
}

impl std::fmt::Debug for StoreGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGate")
            .field("limits", &self.limits)
            .field("lease_for", &self.lease_for)
            .finish_non_exhaustive()
    }
}

impl StoreGate {
    /// A gate enforcing `limits` (and every provider's holds) through `store`, each slot
    /// leased for [`DEFAULT_PROVIDER_LEASE`].
    pub fn new(store: Arc<dyn ProviderLimitStore>, limits: ProviderLimits) -> Self {
        Self {
            store,
            limits,
            lease_for: DEFAULT_PROVIDER_LEASE,
        }
    }

    /// The same gate with slots leased for `lease_for`.
    pub fn with_lease(mut self, lease_for: Duration) -> Self {
        self.lease_for = lease_for;
        self
    }

    /// The limits this gate enforces.
    pub fn limits(&self) -> &ProviderLimits {
        &self.limits
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl ProviderGate for StoreGate {
    async fn enter(&self, provider: &str, model: &str) -> Result<GatePass, ProviderError> {
        let now = now_millis();
        let request = AdmitRequest {
            key: ProviderKey::new(provider, model),
            caps: self.limits.caps_for(provider, model),
            lease_for_ms: millis(self.lease_for),
            now,
        };
        match self.store.admit(&request).await {
            Ok(Admission::Granted(lease)) => Ok(GatePass {
                provider: lease.key.provider,
                model: lease.key.model,
                id: lease.id,
                expires_at: lease.expires_at,
            }),
            Ok(Admission::Wait { until, reason }) => {
                tracing::debug!(
                    provider,
                    model,
                    reason = reason.as_str(),
                    until,
                    "provider call held back"
                );
                let wait = u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1);
                Err(ProviderError::RateLimited {
                    provider: provider.to_owned(),
                    retry_after: Some(Duration::from_millis(wait)),
                })
            }
            Err(error) => Err(ProviderError::Transient {
                provider: provider.to_owned(),
                message: format!("provider limits could not be checked: {error}"),
            }),
        }
    }

    async fn leave(&self, pass: GatePass, usage: Option<TokenUsage>) {
        let tokens = usage.map_or(0, |u| {
            u.input_tokens
                .unwrap_or(0)
                .saturating_add(u.output_tokens.unwrap_or(0))
        });
        let lease = ProviderLease {
            key: ProviderKey::new(pass.provider, pass.model),
            id: pass.id,
            expires_at: pass.expires_at,
        };
        if let Err(error) = self.store.release_slot(&lease, tokens, now_millis()).await {
            // The slot frees when its lease expires; the tokens go uncounted.
            tracing::warn!(key = %lease.key, %error, "could not release a provider slot");
        }
    }

    async fn hold(&self, provider: &str, model: &str, wait: Duration) {
        let key = ProviderKey::new(provider, model);
        let until = now_millis().saturating_add(millis(wait));
        match self.store.hold(&key, until).await {
            Ok(()) => {
                tracing::info!(%key, until, "provider asked to wait: holding every call back")
            }
            Err(error) => tracing::warn!(%key, %error, "could not record a provider hold"),
        }
    }
}
