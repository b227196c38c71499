//! Users, roles and API/session tokens. Tokens are stored only as hashes; creating and hashing
//! them is the caller's job (the HTTP layer), so this crate never sees a secret.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use task_core::UnixMillis;

use std::str::FromStr;

use task_core::CoreError;

use crate::{Result, UserLimits};

/// What a user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and acts on their own tasks only.
    User,
    /// Sees and acts on every task.
    Superuser,
}

impl Role {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Superuser => "superuser",
        }
    }
}

impl FromStr for Role {
    type Err = CoreError;

    /// Parses the stored name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "superuser" => Ok(Role::Superuser),
            _ => Err(CoreError::InvalidField {
                field: "role",
                reason: "must be \"user\" or \"superuser\"".to_owned(),
            }),
        }
    }
}

/// A person or service that owns tasks. `email` is the id tasks are filed under (`user_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique; the `user_id` of their tasks.
    pub email: String,
    /// What they may see.
    pub role: Role,
    /// When the user was created.
    pub created_at: UnixMillis,
}

/// Whether a token is a long-lived API token or a browser session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Created by an operator, used as `Authorization: Bearer`.
    Api,
    /// Created by `POST /api/login`, carried in a cookie, ends at logout or expiry.
    Session,
}

impl TokenKind {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Session => "session",
        }
    }
}

impl FromStr for TokenKind {
    type Err = CoreError;

    /// Parses the stored name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api" => Ok(TokenKind::Api),
            "session" => Ok(TokenKind::Session),
            _ => Err(CoreError::InvalidField {
                field: "kind",
                reason: "must be \"api\" or \"session\"".to_owned(),
            }),
        }
    }
}

/// A token to store. `hash` is the SHA-256 of the secret, hex-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// A short public id for listing and revoking (not secret).
    pub id: String,
    /// The owner.
    pub user_email: String,
    /// Hash of the secret.
    pub hash: String,
    /// API token or session.
    pub kind: TokenKind,
    /// Optional note ("ci", "laptop").
    pub label: Option<String>,
    /// Not valid after this time; `None` means until revoked.
    pub expires_at: Option<UnixMillis>,
}

/// A stored token, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// Public id.
    pub id: String,
    /// The owner.
    pub user_email: String,
    /// API token or session.
    pub kind: TokenKind,
    /// Optional note.
    pub label: Option<String>,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When it stops being valid.
    pub expires_at: Option<UnixMillis>,
}

/// Users and tokens. Object-safe: use it as `Arc<dyn UserStore>`.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates a user; `Conflict` if the email exists. Emails are compared as given (callers
    /// normalise them).
    async fn create_user(&self, email: &str, role: Role) -> Result<User>;
    /// One user; `NotFound` if absent.
    async fn get_user(&self, email: &str) -> Result<User>;
    /// All users, oldest first.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// How many users exist (to create the first admin on an empty database).
    async fn count_users(&self) -> Result<u64>;
    /// Stores a token; `NotFound` if the user does not exist, `Conflict` if the id is taken.
    async fn insert_token(&self, token: NewToken) -> Result<TokenRecord>;
    /// The user and token with this hash, if the token exists and has not expired at `now`.
    async fn find_token(&self, hash: &str, now: UnixMillis) -> Result<Option<(User, TokenRecord)>>;
    /// Deletes a token by its public id; `NotFound` if absent.
    async fn revoke_token(&self, id: &str) -> Result<()>;
    /// Deletes a token by its hash (logout); absent tokens are not an error.
    async fn delete_token_by_hash(&self, hash: &str) -> Result<()>;
    /// The user's own limits (all `None` when none were set); `NotFound` if the user does not
    /// exist.
    async fn get_user_limits(&self, email: &str) -> Result<UserLimits>;
    /// Replaces the user's own limits (checked by [`UserLimits::validate`]); `NotFound` if the
    /// user does not exist.
    async fn set_user_limits(&self, email: &str, limits: UserLimits) -> Result<()>;
    /// A user's tokens, oldest first.
    async fn list_tokens(&self, email: &str) -> Result<Vec<TokenRecord>>;
}
