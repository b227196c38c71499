//! [`UserStore`] for [`SqliteStore`]: the `users` and `tokens` tables.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row};
use task_core::UnixMillis;

use super::error::{is_unique_violation, map_sqlite_error};
use super::SqliteStore;
use crate::backend::clock::now_millis;
use crate::backend::user_rules::{is_live, token_record, validate_email, validate_token};
use crate::users::{NewToken, Role, TokenKind, TokenRecord, User, UserStore};
use crate::{Result, StoreError, UserLimits};

const USER_COLUMNS: &str = "email, role, created_at";
const TOKEN_COLUMNS: &str = "id, user_email, kind, label, created_at, expires_at";

fn conversion(index: usize, what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        format!("unknown {what} {text:?}").into(),
    )
}

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(1)?;
    Ok(User {
        email: row.get(0)?,
        role: role
            .parse::<Role>()
            .map_err(|_| conversion(1, "role", &role))?,
        created_at: row.get(2)?,
    })
}

/// Reads a token selected with [`TOKEN_COLUMNS`] starting at column `first`.
fn token_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<TokenRecord> {
    let kind: String = row.get(first + 2)?;
    Ok(TokenRecord {
        id: row.get(first)?,
        user_email: row.get(first + 1)?,
        kind: kind
            .parse::<TokenKind>()
            .map_err(|_| conversion(first + 2, "token kind", &kind))?,
        label: row.get(first + 3)?,
        created_at: row.get(first + 4)?,
        expires_at: row.get(first + 5)?,
    })
}

fn select_user(conn: &Connection, email: &str) -> Result<Option<User>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
    ))
    .and_then(|mut statement| statement.query_row([email], user_from_row).optional())
    .map_err(map_sqlite_error)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, email: &str, role: Role) -> Result<User> {
        validate_email(email)?;
        let user = User {
            email: email.to_owned(),
            role,
            created_at: now_millis(),
        };
        self.write(move |conn, _changes| {
            let inserted = conn
                .prepare_cached("INSERT INTO users (email, role, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![
                        user.email,
                        user.role.as_str(),
                        user.created_at
                    ])
                });
            match inserted {
                Ok(_) => Ok(user),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                    "user {} already exists",
                    user.email
                ))),
                Err(e) => Err(map_sqlite_error(e)),
            }
        })
        .await
    }

    async fn get_user(&self, email: &str) -> Result<User> {
        let email = email.to_owned();
        self.read(move |conn| select_user(conn, &email)?.ok_or(StoreError::NotFound))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, rowid"
            ))
            .and_then(|mut statement| {
                statement
                    .query_map([], user_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_sqlite_error)
        })
        .await
    }

    async fn count_users(&self) -> Result<u64> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get::<_, i64>(0))
                .map(|count| u64::try_from(count).unwrap_or(0))
                .map_err(map_sqlite_error)
        })
        .await
    }

    async fn insert_token(&self, token: NewToken) -> Result<TokenRecord> {
        validate_token(&token)?;
        let record = token_record(&token, now_millis());
        self.write(move |conn, _changes| {
            if select_user(conn, &token.user_email)?.is_none() {
                return Err(StoreError::NotFound);
            }
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO tokens (id, user_email, hash, kind, label, created_at, expires_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut statement| {
                    statement.execute(rusqlite::params![
                        record.id,
                        record.user_email,
                        token.hash,
                        record.kind.as_str(),
                        record.label,
                        record.created_at,
                        record.expires_at,
                    ])
                });
            match inserted {
                Ok(_) => Ok(record),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
                    "a token with this id or secret already exists".to_owned(),
                )),
                Err(e) => Err(map_sqlite_error(e)),
            }
        })
        .await
    }

    async fn find_token(&self, hash: &str, now: UnixMillis) -> Result<Option<(User, TokenRecord)>> {
        let hash = hash.to_owned();
        self.read(move |conn| {
            let found = conn
                .prepare_cached(
                    "SELECT u.email, u.role, u.created_at, t.id, t.user_email, t.kind, t.label, \
                            t.created_at, t.expires_at \
                     FROM tokens t JOIN users u ON u.email = t.user_email WHERE t.hash = ?1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([hash], |row| {
                            Ok((user_from_row(row)?, token_from_row(row, 3)?))
                        })
                        .optional()
                })
                .map_err(map_sqlite_error)?;
            Ok(found.filter(|(_, record)| is_live(record, now)))
        })
        .await
    }

    async fn revoke_token(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn, _changes| {
            let deleted = conn
                .prepare_cached("DELETE FROM tokens WHERE id = ?1")
                .and_then(|mut statement| statement.execute([id]))
                .map_err(map_sqlite_error)?;
            if deleted == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        })
        .await
    }

    async fn get_user_limits(&self, email: &str) -> Result<UserLimits> {
        let email = email.to_owned();
        self.read(move |conn| {
            let columns = conn
                .prepare_cached(
                    "SELECT l.rate_count, l.rate_period_ms, l.burst, l.max_running, l.max_queued \
                     FROM users u LEFT JOIN user_limits l ON l.email = u.email WHERE u.email = ?1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([email], |row| {
                            Ok([
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                            ])
                        })
                        .optional()
                })
                .map_err(map_sqlite_error)?
                .ok_or(StoreError::NotFound)?;
            Ok(UserLimits::from_columns(columns)?)
        })
        .await
    }

    async fn set_user_limits(&self, email: &str, limits: UserLimits) -> Result<()> {
        limits.validate()?;
        let email = email.to_owned();
        self.write(move |conn, _changes| {
            if select_user(conn, &email)?.is_none() {
                return Err(StoreError::NotFound);
            }
            let [count, period, burst, running, queued] = limits.to_columns();
            conn.prepare_cached(
                "INSERT OR REPLACE INTO user_limits \
                 (email, rate_count, rate_period_ms, burst, max_running, max_queued) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(rusqlite::params![
                    email, count, period, burst, running, queued
                ])
            })
            .map(drop)
            .map_err(map_sqlite_error)
        })
        .await
    }

    async fn delete_token_by_hash(&self, hash: &str) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |conn, _changes| {
            conn.prepare_cached("DELETE FROM tokens WHERE hash = ?1")
                .and_then(|mut statement| statement.execute([hash]))
                .map(|_| ())
                .map_err(map_sqlite_error)
        })
        .await
    }

    async fn list_tokens(&self, email: &str) -> Result<Vec<TokenRecord>> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_email = ?1 \
                 ORDER BY created_at, rowid"
            ))
            .and_then(|mut statement| {
                statement
                    .query_map([email], |row| token_from_row(row, 0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_sqlite_error)
        })
        .await
    }
}
