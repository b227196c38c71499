//! Who is calling: a bearer token, a session cookie, or (only in trusted-proxy mode, only from
//! a trusted address) a proxy's identity header. Every other request is anonymous.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::request::Parts;
use task_core::Task;
use task_store::{Role, StoreError, TokenKind, TokenRecord, User, UserStore};

use crate::auth::cache::TokenCache;
use crate::auth::{accounts, secret, session};
use crate::config::{HttpConfig, TrustedProxy};
use crate::ApiError;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Bearer <api token>`.
    Bearer,
    /// The session cookie from `POST /api/login`. State-changing requests made this way must
    /// also pass the `Origin` check, since browsers attach cookies to cross-site requests.
    Session,
    /// A trusted proxy's identity header.
    Proxy,
}

impl AuthMethod {
    /// The name `/api/me` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Bearer => "bearer",
            AuthMethod::Session => "session",
            AuthMethod::Proxy => "proxy",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's email: the `user_id` of the tasks they own.
    pub email: String,
    /// What they may see.
    pub role: Role,
    /// How they authenticated.
    pub method: AuthMethod,
}

impl Identity {
    /// Whether the caller sees every user's tasks.
    pub fn is_superuser(&self) -> bool {
        self.role == Role::Superuser
    }

    /// Whether the caller may see (and act on) `task`. Callers answer 404 when not, so the
    /// existence of other users' tasks is never revealed.
    pub fn can_see(&self, task: &Task) -> bool {
        self.is_superuser() || task.user_id == self.email
    }
}

/// Identifies callers: looks tokens up (through a short-lived cache) and applies the
/// trusted-proxy rule.
pub struct Authenticator {
    users: Arc<dyn UserStore>,
    cache: TokenCache,
    trusted_proxy: Option<TrustedProxy>,
}

impl Authenticator {
    /// An authenticator over `users` with the cache and proxy settings of `config`.
    pub fn new(users: Arc<dyn UserStore>, config: &HttpConfig) -> Self {
        Self {
            users,
            cache: TokenCache::new(config.auth_cache_ttl),
            trusted_proxy: config.trusted_proxy.clone(),
        }
    }

    /// Identifies the caller of a request that arrived from `peer` at `now` (Unix ms).
    ///
    /// # Errors
    /// 401 for an `Authorization` header that is malformed or names no valid API token (a
    /// client that sends credentials wants to know they failed); 503/500 when the user store
    /// fails.
    pub async fn authenticate(
        &self,
        parts: &Parts,
        peer: IpAddr,
        now: i64,
    ) -> Result<Option<Identity>, ApiError> {
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or_else(ApiError::unauthorized)?;
            return match self.lookup(token, now).await? {
                Some((user, record)) if record.kind == TokenKind::Api => {
                    Ok(Some(identity(user, AuthMethod::Bearer)))
                }
                _ => Err(ApiError::unauthorized()),
            };
        }
        if let Some(cookie) = session::read_cookie(&parts.headers) {
            if let Some((user, record)) = self.lookup(cookie, now).await? {
                if record.kind == TokenKind::Session {
                    return Ok(Some(identity(user, AuthMethod::Session)));
                }
            }
        }
        match &self.trusted_proxy {
            Some(proxy) => proxy_identity(self.users.as_ref(), proxy, parts, peer).await,
            None => Ok(None),
        }
    }

    /// The user and token record of a secret, if it is valid at `now`.
    ///
    /// # Errors
    /// 503/500 when the user store fails.
    pub async fn lookup(
        &self,
        secret: &str,
        now: i64,
    ) -> Result<Option<(User, TokenRecord)>, ApiError> {
        let hash = secret::hash(secret);
        if let Some(found) = self.cache.get(&hash, now) {
            return Ok(Some(found));
        }
        let found = self.users.find_token(&hash, now).await?;
        if let Some((user, record)) = &found {
            self.cache.put(&hash, user, record);
        }
        Ok(found)
    }

    /// Forgets a secret from the cache (its session ended).
    pub fn forget(&self, secret: &str) {
        self.cache.forget(&secret::hash(secret));
    }
}

/// The user a trusted proxy vouches for. Users the database does not know get the `user` role;
/// a proxy can never make someone a superuser.
async fn proxy_identity(
    users: &dyn UserStore,
    proxy: &TrustedProxy,
    parts: &Parts,
    peer: IpAddr,
) -> Result<Option<Identity>, ApiError> {
    if !proxy.proxies.iter().any(|network| network.contains(peer)) {
        return Ok(None);
    }
    let Some(raw) = parts
        .headers
        .get(&proxy.header)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let email = accounts::normalize_email(raw)
        .map_err(|_| ApiError::invalid_field(proxy.header.as_str(), "is not a usable email"))?;
    let role = match users.get_user(&email).await {
        Ok(user) => user.role,
        Err(StoreError::NotFound) => Role::User,
        Err(error) => return Err(error.into()),
    };
    Ok(Some(Identity {
        email,
        role,
        method: AuthMethod::Proxy,
    }))
}

fn identity(user: User, method: AuthMethod) -> Identity {
    Identity {
        email: user.email,
        role: user.role,
        method,
    }
}

/// The token of a `Bearer <token>` header value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer tl_abc"), Some("tl_abc"));
        assert_eq!(bearer_token("bearer  tl_abc "), Some("tl_abc"));
        assert_eq!(bearer_token("Basic dXNlcg=="), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("tl_abc"), None);
    }
}
