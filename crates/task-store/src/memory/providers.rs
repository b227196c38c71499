//! [`ProviderLimitStore`] for [`MemoryStore`]: each key's state under the store's one lock, so
//! an admission reads and counts in one step, as the database backends do in one transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use task_core::UnixMillis;

use super::MemoryStore;
use crate::backend::lease_token::new_lease_token;
use crate::provider_limits::{
    decide, usage_of, window_of, Admission, AdmitRequest, GateState, ProviderKey, ProviderLease,
    ProviderLimitStore, ProviderUsage,
};
use crate::Result;

/// Every key's state.
pub(super) type Gates = BTreeMap<ProviderKey, Gate>;

/// One key's hold, minute counts and live leases (id → expiry).
#[derive(Debug, Default)]
pub(super) struct Gate {
    hold_until: Option<UnixMillis>,
    window_start: UnixMillis,
    requests: u64,
    tokens: u64,
    leases: BTreeMap<String, UnixMillis>,
}

impl Gate {
    fn state(&self, now: UnixMillis) -> GateState {
        let live = self.leases.values().filter(|&&e| e > now);
        GateState {
            hold_until: self.hold_until,
            window_start: self.window_start,
            requests: self.requests,
            tokens: self.tokens,
            in_flight: live.clone().count() as u64,
            earliest_expiry: live.min().copied(),
        }
        .at(now)
    }
}

#[async_trait]
impl ProviderLimitStore for MemoryStore {
    async fn admit(&self, request: &AdmitRequest) -> Result<Admission> {
        let id = new_lease_token()?;
        let now = request.now;
        let mut state = self.state();
        let gate = state.providers.entry(request.key.clone()).or_default();
        gate.leases.retain(|_, expires| *expires > now);
        let current = gate.state(now);
        if let Some(wait) = decide(&current, &request.caps, now) {
            return Ok(wait);
        }
        gate.window_start = current.window_start;
        gate.requests = current.requests + 1;
        gate.tokens = current.tokens;
        let expires_at = now + request.lease_for_ms;
        gate.leases.insert(id.clone(), expires_at);
        Ok(Admission::Granted(ProviderLease {
            key: request.key.clone(),
            id,
            expires_at,
        }))
    }

    async fn release_slot(
        &self,
        lease: &ProviderLease,
        tokens: u64,
        now: UnixMillis,
    ) -> Result<()> {
        let mut state = self.state();
        let gate = state.providers.entry(lease.key.clone()).or_default();
        gate.leases.remove(&lease.id);
        if window_of(now) != gate.window_start {
            gate.window_start = window_of(now);
            gate.requests = 0;
            gate.tokens = 0;
        }
        gate.tokens = gate.tokens.saturating_add(tokens);
        Ok(())
    }

    async fn hold(&self, key: &ProviderKey, until: UnixMillis) -> Result<()> {
        let mut state = self.state();
        let gate = state.providers.entry(key.clone()).or_default();
        gate.hold_until = Some(gate.hold_until.map_or(until, |held| held.max(until)));
        Ok(())
    }

    async fn provider_usage(&self, now: UnixMillis) -> Result<Vec<ProviderUsage>> {
        let state = self.state();
        Ok(state
            .providers
            .iter()
            .map(|(key, gate)| usage_of(key.clone(), gate.state(now), now))
            .collect())
    }
}
