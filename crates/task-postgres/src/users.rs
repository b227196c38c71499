//! [`UserStore`] for [`PostgresStore`]: users and tokens on the same database as the tasks.

use async_trait::async_trait;
use task_core::UnixMillis;
use task_store::backend::clock::now_millis;
use task_store::backend::user_rules::{token_record, validate_email, validate_token};
use task_store::{
    LimitColumns, NewToken, Result, Role, StoreError, TokenRecord, User, UserLimits, UserStore,
};
use tokio_postgres::error::SqlState;

use crate::errors::map_db;
use crate::row::{get, kind_as_str, token_from_row, user_from_row};
use crate::PostgresStore;

const CREATE_USER: &str = "INSERT INTO users (email, role, created_at) VALUES ($1, $2, $3) \
     ON CONFLICT (email) DO NOTHING RETURNING email, role, created_at";
const GET_USER: &str = "SELECT email, role, created_at FROM users WHERE email = $1";
const LIST_USERS: &str = "SELECT email, role, created_at FROM users ORDER BY created_at, seq";
const COUNT_USERS: &str = "SELECT count(*) FROM users";
const INSERT_TOKEN: &str = "INSERT INTO tokens (id, user_email, hash, kind, label, created_at, \
     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// A live token (`$1` hash, `$2` now) with its user: it expires at `expires_at` exactly.
const FIND_TOKEN: &str = "SELECT u.email, u.role, u.created_at, t.id, t.user_email, t.kind, \
     t.label, t.created_at, t.expires_at FROM tokens t JOIN users u ON u.email = t.user_email \
     WHERE t.hash = $1 AND (t.expires_at IS NULL OR $2 < t.expires_at)";
const REVOKE_TOKEN: &str = "DELETE FROM tokens WHERE id = $1";
const DELETE_TOKEN_BY_HASH: &str = "DELETE FROM tokens WHERE hash = $1";
const LIST_TOKENS: &str = "SELECT id, user_email, kind, label, created_at, expires_at \
     FROM tokens WHERE user_email = $1 ORDER BY created_at, seq";

const GET_LIMITS: &str = "SELECT l.rate_count, l.rate_period_ms, l.burst, l.max_running, \
     l.max_queued FROM users u LEFT JOIN user_limits l ON l.email = u.email WHERE u.email = $1";
/// Inserts nothing when the user does not exist (the `SELECT` finds no row).
const SET_LIMITS: &str = "INSERT INTO user_limits \
     (email, rate_count, rate_period_ms, burst, max_running, max_queued) \
     SELECT email, $2, $3, $4, $5, $6 FROM users WHERE email = $1 \
     ON CONFLICT (email) DO UPDATE SET rate_count = EXCLUDED.rate_count, \
     rate_period_ms = EXCLUDED.rate_period_ms, burst = EXCLUDED.burst, \
     max_running = EXCLUDED.max_running, max_queued = EXCLUDED.max_queued";

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, email: &str, role: Role) -> Result<User> {
        validate_email(email)?;
        let client = self.client().await?;
        let row = client
            .query_opt(CREATE_USER, &[&email, &role.as_str(), &now_millis()])
            .await
            .map_err(map_db)?
            .ok_or_else(|| StoreError::Conflict(format!("user {email} already exists")))?;
        user_from_row(&row)
    }

    async fn get_user(&self, email: &str) -> Result<User> {
        let client = self.client().await?;
        let row = client
            .query_opt(GET_USER, &[&email])
            .await
            .map_err(map_db)?
            .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let client = self.client().await?;
        let rows = client.query(LIST_USERS, &[]).await.map_err(map_db)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> Result<u64> {
        let client = self.client().await?;
        let row = client.query_one(COUNT_USERS, &[]).await.map_err(map_db)?;
        let count: i64 = get(&row, 0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn insert_token(&self, token: NewToken) -> Result<TokenRecord> {
        validate_token(&token)?;
        let record = token_record(&token, now_millis());
        let client = self.client().await?;
        let inserted = client
            .execute(
                INSERT_TOKEN,
                &[
                    &record.id,
                    &record.user_email,
                    &token.hash,
                    &kind_as_str(record.kind),
                    &record.label,
                    &record.created_at,
                    &record.expires_at,
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(record),
            Err(error) => Err(token_conflict(&error, &record.id).unwrap_or_else(|| map_db(error))),
        }
    }

    async fn find_token(&self, hash: &str, now: UnixMillis) -> Result<Option<(User, TokenRecord)>> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(FIND_TOKEN, &[&hash, &now])
            .await
            .map_err(map_db)?
        else {
            return Ok(None);
        };
        Ok(Some((user_from_row(&row)?, token_from_row(&row, 3)?)))
    }

    async fn revoke_token(&self, id: &str) -> Result<()> {
        let client = self.client().await?;
        match client.execute(REVOKE_TOKEN, &[&id]).await.map_err(map_db)? {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    async fn get_user_limits(&self, email: &str) -> Result<UserLimits> {
        let client = self.client().await?;
        let row = client
            .query_opt(GET_LIMITS, &[&email])
            .await
            .map_err(map_db)?
            .ok_or(StoreError::NotFound)?;
        let mut columns: LimitColumns = [None; 5];
        for (index, column) in columns.iter_mut().enumerate() {
            *column = get(&row, index)?;
        }
        Ok(UserLimits::from_columns(columns)?)
    }

    async fn set_user_limits(&self, email: &str, limits: UserLimits) -> Result<()> {
        limits.validate()?;
        let [count, period, burst, running, queued] = limits.to_columns();
        let client = self.client().await?;
        let written = client
            .execute(
                SET_LIMITS,
                &[&email, &count, &period, &burst, &running, &queued],
            )
            .await
            .map_err(map_db)?;
        if written == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_token_by_hash(&self, hash: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(DELETE_TOKEN_BY_HASH, &[&hash])
            .await
            .map_err(map_db)?;
        Ok(())
    }

    async fn list_tokens(&self, email: &str) -> Result<Vec<TokenRecord>> {
        let client = self.client().await?;
        let rows = client.query(LIST_TOKENS, &[&email]).await.map_err(map_db)?;
        rows.iter().map(|row| token_from_row(row, 0)).collect()
    }
}

/// The errors SQLite gives for a token insert that breaks a key: an unknown user is
/// `NotFound`, a taken id or hash is `Conflict`.
fn token_conflict(error: &tokio_postgres::Error, id: &str) -> Option<StoreError> {
    let db = error.as_db_error()?;
    match (db.code(), db.constraint()) {
        (&SqlState::FOREIGN_KEY_VIOLATION, _) => Some(StoreError::NotFound),
        (&SqlState::UNIQUE_VIOLATION, Some("tokens_pkey")) => {
            Some(StoreError::Conflict(format!("token id {id} is taken")))
        }
        (&SqlState::UNIQUE_VIOLATION, _) => {
            Some(StoreError::Conflict("token hash is taken".to_owned()))
        }
        _ => None,
    }
}
