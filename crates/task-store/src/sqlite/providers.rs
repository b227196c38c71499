//! [`ProviderLimitStore`] for [`SqliteStore`]: the tables of the `providers` set. An admission
//! is one writer operation: the writer's transaction holds SQLite's write lock (`BEGIN
//! IMMEDIATE`), so reading the key's state and counting the call are one step for every
//! process on the file, and two instances never both take the last slot.

use async_trait::async_trait;
use rusqlite::{params, Connection};
use task_core::UnixMillis;

use super::error::map_sqlite_error;
use super::SqliteStore;
use crate::backend::lease_token::new_lease_token;
use crate::provider_limits::{
    decide, usage_of, window_of, Admission, AdmitRequest, GateState, ProviderKey, ProviderLease,
    ProviderLimitStore, ProviderUsage,
};
use crate::Result;

const ENSURE_GATE: &str = "INSERT OR IGNORE INTO provider_gates (provider, model) VALUES (?1, ?2)";

const SELECT_GATE: &str = "SELECT hold_until, window_start, window_requests, window_tokens \
     FROM provider_gates WHERE provider = ?1 AND model = ?2";

const DROP_EXPIRED: &str =
    "DELETE FROM provider_leases WHERE provider = ?1 AND model = ?2 AND expires_at <= ?3";

const COUNT_LEASES: &str = "SELECT COUNT(*), MIN(expires_at) FROM provider_leases \
     WHERE provider = ?1 AND model = ?2 AND expires_at > ?3";

const SET_WINDOW: &str = "UPDATE provider_gates \
     SET window_start = ?3, window_requests = ?4, window_tokens = ?5 \
     WHERE provider = ?1 AND model = ?2";

const INSERT_LEASE: &str = "INSERT INTO provider_leases (lease_id, provider, model, expires_at) \
     VALUES (?1, ?2, ?3, ?4)";

const DELETE_LEASE: &str = "DELETE FROM provider_leases WHERE lease_id = ?1";

/// Adds tokens to the minute `?3`, starting that minute's counts afresh if the row still
/// holds an earlier one.
const ADD_TOKENS: &str = "UPDATE provider_gates SET \
     window_requests = CASE WHEN window_start = ?3 THEN window_requests ELSE 0 END, \
     window_tokens = CASE WHEN window_start = ?3 THEN window_tokens ELSE 0 END + ?4, \
     window_start = ?3 \
     WHERE provider = ?1 AND model = ?2";

const SET_HOLD: &str = "UPDATE provider_gates \
     SET hold_until = MAX(COALESCE(hold_until, ?3), ?3) WHERE provider = ?1 AND model = ?2";

const ALL_GATES: &str = "SELECT g.provider, g.model, g.hold_until, g.window_start, \
     g.window_requests, g.window_tokens, \
     (SELECT COUNT(*) FROM provider_leases l WHERE l.provider = g.provider \
      AND l.model = g.model AND l.expires_at > ?1) \
     FROM provider_gates g ORDER BY g.provider, g.model";

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads `key`'s state as of `now` (the gate row must exist).
fn read_state(conn: &Connection, key: &ProviderKey, now: UnixMillis) -> Result<GateState> {
    let (hold_until, window_start, requests, tokens): (Option<i64>, i64, i64, i64) = conn
        .prepare_cached(SELECT_GATE)
        .and_then(|mut s| {
            s.query_row(params![key.provider, key.model], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
        })
        .map_err(map_sqlite_error)?;
    let (in_flight, earliest_expiry): (i64, Option<i64>) = conn
        .prepare_cached(COUNT_LEASES)
        .and_then(|mut s| {
            s.query_row(params![key.provider, key.model, now], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
        })
        .map_err(map_sqlite_error)?;
    Ok(GateState {
        hold_until,
        window_start,
        requests: to_u64(requests),
        tokens: to_u64(tokens),
        in_flight: to_u64(in_flight),
        earliest_expiry,
    }
    .at(now))
}

fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(map_sqlite_error)
}

#[async_trait]
impl ProviderLimitStore for SqliteStore {
    async fn admit(&self, request: &AdmitRequest) -> Result<Admission> {
        let request = request.clone();
        let id = new_lease_token()?;
        self.write(move |conn, _changes| {
            let key = &request.key;
            let now = request.now;
            execute(conn, ENSURE_GATE, params![key.provider, key.model])?;
            execute(conn, DROP_EXPIRED, params![key.provider, key.model, now])?;
            let state = read_state(conn, key, now)?;
            if let Some(wait) = decide(&state, &request.caps, now) {
                return Ok(wait);
            }
            execute(
                conn,
                SET_WINDOW,
                params![
                    key.provider,
                    key.model,
                    state.window_start,
                    to_i64(state.requests + 1),
                    to_i64(state.tokens)
                ],
            )?;
            let expires_at = now + request.lease_for_ms;
            execute(
                conn,
                INSERT_LEASE,
                params![id, key.provider, key.model, expires_at],
            )?;
            Ok(Admission::Granted(ProviderLease {
                key: key.clone(),
                id,
                expires_at,
            }))
        })
        .await
    }

    async fn release_slot(
        &self,
        lease: &ProviderLease,
        tokens: u64,
        now: UnixMillis,
    ) -> Result<()> {
        let lease = lease.clone();
        self.write(move |conn, _changes| {
            execute(conn, DELETE_LEASE, params![lease.id])?;
            if tokens > 0 {
                let key = &lease.key;
                execute(conn, ENSURE_GATE, params![key.provider, key.model])?;
                execute(
                    conn,
                    ADD_TOKENS,
                    params![key.provider, key.model, window_of(now), to_i64(tokens)],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn hold(&self, key: &ProviderKey, until: UnixMillis) -> Result<()> {
        let key = key.clone();
        self.write(move |conn, _changes| {
            execute(conn, ENSURE_GATE, params![key.provider, key.model])?;
            execute(conn, SET_HOLD, params![key.provider, key.model, until])?;
            Ok(())
        })
        .await
    }

    async fn provider_usage(&self, now: UnixMillis) -> Result<Vec<ProviderUsage>> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(ALL_GATES).map_err(map_sqlite_error)?;
            let rows = statement
                .query_map(params![now], |row| {
                    let key = ProviderKey::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?);
                    let state = GateState {
                        hold_until: row.get(2)?,
                        window_start: row.get(3)?,
                        requests: to_u64(row.get(4)?),
                        tokens: to_u64(row.get(5)?),
                        in_flight: to_u64(row.get(6)?),
                        earliest_expiry: None,
                    };
                    Ok(usage_of(key, state, now))
                })
                .map_err(map_sqlite_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sqlite_error)
        })
        .await
    }
}
