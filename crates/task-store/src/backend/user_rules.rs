//! Input checks for users and tokens, shared by the backends so they reject the same things.

use task_core::{CoreError, UnixMillis};

use crate::users::{NewToken, TokenRecord};
use crate::{Result, StoreError};

/// Longest accepted email (the limit of RFC 5321 paths).
const MAX_EMAIL_LEN: usize = 320;
/// Longest accepted token id, hash or label.
const MAX_TOKEN_FIELD_LEN: usize = 200;

fn invalid(field: &'static str, reason: &str) -> StoreError {
    StoreError::Invalid(CoreError::InvalidField {
        field,
        reason: reason.to_owned(),
    })
}

/// A user's email must be non-blank and of sane length.
pub fn validate_email(email: &str) -> Result<()> {
    if email.trim().is_empty() || email.chars().count() > MAX_EMAIL_LEN {
        return Err(invalid("email", "must be 1 to 320 characters"));
    }
    Ok(())
}

/// A token needs an id and a hash; its label must be short.
pub fn validate_token(token: &NewToken) -> Result<()> {
    let bad = |text: &str| text.trim().is_empty() || text.chars().count() > MAX_TOKEN_FIELD_LEN;
    if bad(&token.id) {
        return Err(invalid("id", "must be 1 to 200 characters"));
    }
    if bad(&token.hash) {
        return Err(invalid("hash", "must be 1 to 200 characters"));
    }
    if token
        .label
        .as_ref()
        .is_some_and(|label| label.chars().count() > MAX_TOKEN_FIELD_LEN)
    {
        return Err(invalid("label", "must be at most 200 characters"));
    }
    validate_email(&token.user_email)
}

/// The stored form of `token`, created at `now`.
pub fn token_record(token: &NewToken, now: UnixMillis) -> TokenRecord {
    TokenRecord {
        id: token.id.clone(),
        user_email: token.user_email.clone(),
        kind: token.kind,
        label: token.label.clone(),
        created_at: now,
        expires_at: token.expires_at,
    }
}

/// Whether a token is still valid at `now`: it expires at `expires_at` exactly.
pub fn is_live(record: &TokenRecord, now: UnixMillis) -> bool {
    record.expires_at.is_none_or(|at| now < at)
}
