//! Account management: creating users and their tokens, browser sessions, and the first admin
//! on an empty database. The binary's `user` and `token` commands and `POST /api/login` call
//! these; secrets leave this module once, in an [`IssuedToken`].

use std::fmt;
use std::time::Duration;

use task_store::{NewToken, Role, StoreError, TokenKind, TokenRecord, User, UserStore};

use crate::auth::secret;
use crate::HttpError;

/// The superuser `serve` creates when it starts on a database without users.
pub const FIRST_ADMIN_EMAIL: &str = "admin";
/// Longest accepted email, as in RFC 5321.
const MAX_EMAIL_LEN: usize = 320;

/// A freshly made token: its stored record and the secret, which exists nowhere else. `Debug`
/// never prints the secret.
pub struct IssuedToken {
    /// The stored record (public id, owner, kind, expiry).
    pub record: TokenRecord,
    secret: String,
}

impl IssuedToken {
    /// The secret to hand to its owner, once.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The canonical form of an email used as an identity: trimmed and lowercase.
///
/// # Errors
/// [`HttpError::InvalidEmail`] when empty, longer than 320 characters, or containing
/// whitespace or control characters.
pub fn normalize_email(raw: &str) -> Result<String, HttpError> {
    let email = raw.trim().to_lowercase();
    let usable = !email.is_empty()
        && email.chars().count() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if usable {
        Ok(email)
    } else {
        Err(HttpError::InvalidEmail(raw.chars().take(80).collect()))
    }
}

/// Creates a user with `role` and a first API token for them.
///
/// # Errors
/// [`HttpError::InvalidEmail`], or the store's error (`Conflict` when the user exists).
pub async fn add_user(
    users: &dyn UserStore,
    email: &str,
    role: Role,
) -> Result<(User, IssuedToken), HttpError> {
    let email = normalize_email(email)?;
    let user = users.create_user(&email, role).await?;
    let token = create_api_token(users, &email, None).await?;
    tracing::info!(user = %user.email, role = role.as_str(), token_id = %token.record.id, "user created");
    Ok((user, token))
}

/// Creates another API token for an existing user.
///
/// # Errors
/// [`HttpError::InvalidEmail`], or the store's `NotFound` when there is no such user.
pub async fn create_api_token(
    users: &dyn UserStore,
    email: &str,
    label: Option<String>,
) -> Result<IssuedToken, HttpError> {
    let email = normalize_email(email)?;
    issue(users, &email, TokenKind::Api, label, None).await
}

/// Starts a browser session for `email`, valid for `ttl` from `now`.
///
/// # Errors
/// The store's error, or [`HttpError::Random`].
pub async fn create_session(
    users: &dyn UserStore,
    email: &str,
    ttl: Duration,
    now: i64,
) -> Result<IssuedToken, HttpError> {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    issue(
        users,
        email,
        TokenKind::Session,
        None,
        Some(now.saturating_add(ttl_ms)),
    )
    .await
}

/// On a database without users, creates the `admin` superuser and returns its first token;
/// otherwise does nothing. Two servers starting at once cannot both create it: the loser sees
/// `Conflict` and returns `None`.
///
/// # Errors
/// The store's error.
pub async fn ensure_first_admin(users: &dyn UserStore) -> Result<Option<IssuedToken>, HttpError> {
    if users.count_users().await? > 0 {
        return Ok(None);
    }
    match add_user(users, FIRST_ADMIN_EMAIL, Role::Superuser).await {
        Ok((_, token)) => Ok(Some(token)),
        Err(HttpError::Store(StoreError::Conflict(_))) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn issue(
    users: &dyn UserStore,
    email: &str,
    kind: TokenKind,
    label: Option<String>,
    expires_at: Option<i64>,
) -> Result<IssuedToken, HttpError> {
    let (secret_prefix, id_prefix) = match kind {
        TokenKind::Api => (secret::API_TOKEN_PREFIX, "tok_"),
        TokenKind::Session => (secret::SESSION_PREFIX, "ses_"),
    };
    let secret = secret::new_secret(secret_prefix)?;
    let record = users
        .insert_token(NewToken {
            id: secret::new_public_id(id_prefix)?,
            user_email: email.to_owned(),
            hash: secret::hash(&secret),
            kind,
            label,
            expires_at,
        })
        .await?;
    Ok(IssuedToken { record, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_rejected() {
        assert_eq!(
            normalize_email("  Anna@Example.COM ").unwrap(),
            "anna@example.com"
        );
        assert_eq!(normalize_email("admin").unwrap(), "admin");
        for bad in ["", "   ", "a b@c.d", "a\u{7}@b", &"x".repeat(321)] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
