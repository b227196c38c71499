//! [`ProviderLimitStore`] for [`PostgresStore`]: the tables of the `providers` set. An
//! admission is one transaction that locks the key's `provider_gates` row (`FOR UPDATE`), so
//! instances sharing the schema take a key's slots one at a time: two never both take the last
//! one, and a minute's count never loses an increment.

use async_trait::async_trait;
use task_core::UnixMillis;
use task_store::backend::lease_token::new_lease_token;
use task_store::provider_limits::{
    decide, usage_of, window_of, Admission, AdmitRequest, GateState, ProviderKey, ProviderLease,
    ProviderLimitStore, ProviderUsage,
};
use task_store::Result;

use crate::errors::map_db;
use crate::row::get;
use crate::PostgresStore;

const ENSURE_GATE: &str = "INSERT INTO provider_gates (provider, model) VALUES ($1, $2) \
     ON CONFLICT (provider, model) DO NOTHING";

const LOCK_GATE: &str = "SELECT hold_until, window_start, window_requests, window_tokens \
     FROM provider_gates WHERE provider = $1 AND model = $2 FOR UPDATE";

const DROP_EXPIRED: &str =
    "DELETE FROM provider_leases WHERE provider = $1 AND model = $2 AND expires_at <= $3";

const COUNT_LEASES: &str = "SELECT COUNT(*), MIN(expires_at) FROM provider_leases \
     WHERE provider = $1 AND model = $2 AND expires_at > $3";

const SET_WINDOW: &str = "UPDATE provider_gates \
     SET window_start = $3, window_requests = $4, window_tokens = $5 \
     WHERE provider = $1 AND model = $2";

const INSERT_LEASE: &str = "INSERT INTO provider_leases (lease_id, provider, model, expires_at) \
     VALUES ($1, $2, $3, $4)";

const DELETE_LEASE: &str = "DELETE FROM provider_leases WHERE lease_id = $1";

/// Adds tokens to the minute `$3` in one statement (the row lock it takes orders it with
/// admissions), starting that minute's counts afresh if the row still holds an earlier one.
const ADD_TOKENS: &str = "INSERT INTO provider_gates \
     (provider, model, window_start, window_requests, window_tokens) VALUES ($1, $2, $3, 0, $4) \
     ON CONFLICT (provider, model) DO UPDATE SET \
     window_requests = CASE WHEN provider_gates.window_start = $3 \
       THEN provider_gates.window_requests ELSE 0 END, \
     window_tokens = CASE WHEN provider_gates.window_start = $3 \
       THEN provider_gates.window_tokens ELSE 0 END + $4, \
     window_start = $3";

const SET_HOLD: &str = "INSERT INTO provider_gates (provider, model, hold_until) \
     VALUES ($1, $2, $3) ON CONFLICT (provider, model) DO UPDATE SET \
     hold_until = GREATEST(COALESCE(provider_gates.hold_until, $3), $3)";

const ALL_GATES: &str = "SELECT g.provider, g.model, g.hold_until, g.window_start, \
     g.window_requests, g.window_tokens, \
     (SELECT COUNT(*) FROM provider_leases l WHERE l.provider = g.provider \
      AND l.model = g.model AND l.expires_at > $1) \
     FROM provider_gates g ORDER BY g.provider, g.model";

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl ProviderLimitStore for PostgresStore {
    async fn admit(&self, request: &AdmitRequest) -> Result<Admission> {
        let key = &request.key;
        let now = request.now;
        let id = new_lease_token()?;
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(map_db)?;
        transaction
            .execute(ENSURE_GATE, &[&key.provider, &key.model])
            .await
            .map_err(map_db)?;
        let row = transaction
            .query_one(LOCK_GATE, &[&key.provider, &key.model])
            .await
            .map_err(map_db)?;
        let (hold_until, window_start, requests, tokens): (Option<i64>, i64, i64, i64) =
            (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?, get(&row, 3)?);
        transaction
            .execute(DROP_EXPIRED, &[&key.provider, &key.model, &now])
            .await
            .map_err(map_db)?;
        let leases = transaction
            .query_one(COUNT_LEASES, &[&key.provider, &key.model, &now])
            .await
            .map_err(map_db)?;
        let (in_flight, earliest_expiry): (i64, Option<i64>) = (get(&leases, 0)?, get(&leases, 1)?);
        let state = GateState {
            hold_until,
            window_start,
            requests: to_u64(requests),
            tokens: to_u64(tokens),
            in_flight: to_u64(in_flight),
            earliest_expiry,
        }
        .at(now);
        if let Some(wait) = decide(&state, &request.caps, now) {
            // Dropping expired leases is worth keeping even when the call waits.
            transaction.commit().await.map_err(map_db)?;
            return Ok(wait);
        }
        let expires_at = now + request.lease_for_ms;
        transaction
            .execute(
                SET_WINDOW,
                &[
                    &key.provider,
                    &key.model,
                    &state.window_start,
                    &to_i64(state.requests + 1),
                    &to_i64(state.tokens),
                ],
            )
            .await
            .map_err(map_db)?;
        transaction
            .execute(INSERT_LEASE, &[&id, &key.provider, &key.model, &expires_at])
            .await
            .map_err(map_db)?;
        transaction.commit().await.map_err(map_db)?;
        Ok(Admission::Granted(ProviderLease {
            key: key.clone(),
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
        let client = self.client().await?;
        client
            .execute(DELETE_LEASE, &[&lease.id])
            .await
            .map_err(map_db)?;
        if tokens > 0 {
            let key = &lease.key;
            client
                .execute(
                    ADD_TOKENS,
                    &[&key.provider, &key.model, &window_of(now), &to_i64(tokens)],
                )
                .await
                .map_err(map_db)?;
        }
        Ok(())
    }

    async fn hold(&self, key: &ProviderKey, until: UnixMillis) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(SET_HOLD, &[&key.provider, &key.model, &until])
            .await
            .map_err(map_db)?;
        Ok(())
    }

    async fn provider_usage(&self, now: UnixMillis) -> Result<Vec<ProviderUsage>> {
        let client = self.client().await?;
        let rows = client.query(ALL_GATES, &[&now]).await.map_err(map_db)?;
        rows.iter()
            .map(|row| {
                let key = ProviderKey::new(get::<String>(row, 0)?, get::<String>(row, 1)?);
                let state = GateState {
                    hold_until: get(row, 2)?,
                    window_start: get(row, 3)?,
                    requests: to_u64(get(row, 4)?),
                    tokens: to_u64(get(row, 5)?),
                    in_flight: to_u64(get(row, 6)?),
                    earliest_expiry: None,
                };
                Ok(usage_of(key, state, now))
            })
            .collect()
    }
}
