//! The server's settings, each with a documented default, and their validation.

use std::time::Duration;

use http::HeaderName;
use task_store::Rate;

use crate::cidr::IpCidr;
use crate::HttpError;

/// Largest accepted request body; bigger ones get 413 without being read.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// Live streams one user may hold open at once.
pub const DEFAULT_MAX_SSE_PER_USER: usize = 32;
/// WebSocket subscriptions one user may hold open at once, over all their connections.
pub const DEFAULT_MAX_WS_SUBSCRIPTIONS_PER_USER: usize = 1000;
/// Unfinished (pending or processing) tasks one user may have before creation answers 429.
pub const DEFAULT_MAX_QUEUED_PER_USER: u64 = 100;
/// Connections served at once; further clients wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long one task stream watches a task before sending the `timeout` event.
pub const DEFAULT_MONITOR_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a client may take to send a request's headers (slowloris protection).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's whole body once its headers are in.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a response (an event stream above all) may wait for the client to accept a write
/// before the connection is closed.
pub const DEFAULT_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long graceful shutdown waits for open connections before dropping them.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a browser session made by `POST /api/login` lasts.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The `Retry-After` sent with 429 answers.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a valid token is remembered before the database is asked again.
pub const DEFAULT_AUTH_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most task ids one bulk request may name.
pub const MAX_BULK_IDS: usize = 1000;

/// Settings of the HTTP server. Every field has a default (see [`HttpConfig::default`]).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes. Defaults to 64 KiB ([`DEFAULT_BODY_LIMIT`]).
    pub body_limit: usize,
    /// Open live streams per user; one more gets 429. Defaults to 32
    /// ([`DEFAULT_MAX_SSE_PER_USER`]).
    pub max_sse_per_user: usize,
    /// Unfinished tasks per user; creating or retrying one more gets 429. Defaults to 100
    /// ([`DEFAULT_MAX_QUEUED_PER_USER`]).
    pub max_queued_per_user: u64,
    /// Connections served at once. Defaults to 10,000 ([`DEFAULT_MAX_CONNECTIONS`]); keep the
    /// process's open-file limit above it.
    pub max_connections: usize,
    /// How long a task stream lasts before its `timeout` event. Defaults to 5 minutes
    /// ([`DEFAULT_MONITOR_TIMEOUT`]).
    pub monitor_timeout: Duration,
    /// How often an idle SSE stream gets a `:` comment line, so proxies and browsers keep it
    /// open. Defaults to 15 s ([`crate::live::DEFAULT_KEEP_ALIVE`]).
    pub sse_keep_alive: Duration,
    /// How long a client may take to send request headers. Defaults to 10 s
    /// ([`DEFAULT_HEADER_READ_TIMEOUT`]).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's whole body; slower clients get 408 and
    /// the connection is closed. Defaults to 30 s ([`DEFAULT_BODY_READ_TIMEOUT`]).
    pub body_read_timeout: Duration,
    /// How long a response may wait for the client to accept a write (its socket buffer full:
    /// it stopped reading) before the connection is closed, freeing the stream's slot.
    /// Defaults to 30 s ([`DEFAULT_WRITE_STALL_TIMEOUT`]).
    pub write_stall_timeout: Duration,
    /// How long graceful shutdown waits for connections to finish before dropping them.
    /// Defaults to 10 s ([`DEFAULT_SHUTDOWN_GRACE`]).
    pub shutdown_grace: Duration,
    /// Lifetime of a browser session. Defaults to 7 days ([`DEFAULT_SESSION_TTL`]).
    pub session_ttl: Duration,
    /// Whether the session cookie carries `Secure` (set it when served over HTTPS). Defaults to
    /// `false`, so the cookie also works on `http://127.0.0.1`.
    pub secure_cookies: bool,
    /// `Retry-After` of 429 answers. Defaults to 5 s ([`DEFAULT_RETRY_AFTER`]).
    pub retry_after: Duration,
    /// How long a valid token is remembered, so busy clients do not cost a database read per
    /// request. A token revoked by another process (`task-http token revoke`) keeps working for
    /// at most this long; logout takes effect at once. Zero turns the cache off. Defaults to
    /// 5 s ([`DEFAULT_AUTH_CACHE_TTL`]).
    pub auth_cache_ttl: Duration,
    /// Identity taken from a header set by an authenticating reverse proxy. Defaults to `None`:
    /// such headers (the old `x-user-email`) are ignored.
    pub trusted_proxy: Option<TrustedProxy>,
    /// Subscriptions one user may hold open over `/api/ws` (all their connections together);
    /// one more is refused with an error message. Each WebSocket connection also counts as one
    /// live stream under `max_sse_per_user`. Defaults to 1,000
    /// ([`DEFAULT_MAX_WS_SUBSCRIPTIONS_PER_USER`]).
    pub max_ws_subscriptions_per_user: usize,
    /// Sustained task creations per user (a token bucket's refill rate); more get 429 with
    /// `"limit": "rate"`. `None` turns it off for users without a rate of their own. Defaults
    /// to 600/min ([`DEFAULT_CREATE_RATE`]).
    pub create_rate: Option<Rate>,
    /// Task creations per user allowed at once above the sustained rate (the bucket's size).
    /// Defaults to 100 ([`DEFAULT_CREATE_BURST`]).
    pub create_burst: u32,
}

/// Default sustained task creations per user: 600 a minute.
pub const DEFAULT_CREATE_RATE: Rate = Rate {
    count: 600,
    period_ms: 60_000,
};
/// Default burst of task creations per user.
pub const DEFAULT_CREATE_BURST: u32 = 100;

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            max_sse_per_user: DEFAULT_MAX_SSE_PER_USER,
            max_queued_per_user: DEFAULT_MAX_QUEUED_PER_USER,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            monitor_timeout: DEFAULT_MONITOR_TIMEOUT,
            sse_keep_alive: crate::live::DEFAULT_KEEP_ALIVE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            write_stall_timeout: DEFAULT_WRITE_STALL_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            session_ttl: DEFAULT_SESSION_TTL,
            secure_cookies: false,
            retry_after: DEFAULT_RETRY_AFTER,
            auth_cache_ttl: DEFAULT_AUTH_CACHE_TTL,
            trusted_proxy: None,
            max_ws_subscriptions_per_user: DEFAULT_MAX_WS_SUBSCRIPTIONS_PER_USER,
            create_rate: Some(DEFAULT_CREATE_RATE),
            create_burst: DEFAULT_CREATE_BURST,
        }
    }
}

impl HttpConfig {
    /// Checks that every limit is usable.
    ///
    /// # Errors
    /// [`HttpError::InvalidConfig`] naming the first bad setting.
    pub fn validate(&self) -> Result<(), HttpError> {
        let invalid = |setting: &'static str, reason: &str| {
            Err(HttpError::InvalidConfig {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.body_limit == 0 {
            return invalid("body_limit", "must be at least 1 byte");
        }
        if self.max_sse_per_user == 0 {
            return invalid("max_sse_per_user", "must be at least 1");
        }
        if self.max_ws_subscriptions_per_user == 0 {
            return invalid("max_ws_subscriptions_per_user", "must be at least 1");
        }
        if self.max_queued_per_user == 0 {
            return invalid("max_queued_per_user", "must be at least 1");
        }
        if self.create_burst == 0 {
            return invalid("create_burst", "must be at least 1");
        }
        if let Some(rate) = self.create_rate {
            if rate.validate().is_err() {
                return invalid("create_rate", "must be at least 1 per period");
            }
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if self.monitor_timeout.is_zero() {
            return invalid("monitor_timeout", "must be longer than zero");
        }
        if self.sse_keep_alive < crate::live::MIN_KEEP_ALIVE {
            return invalid("sse_keep_alive", "must be at least 10 ms");
        }
        if self.header_read_timeout.is_zero() {
            return invalid("header_read_timeout", "must be longer than zero");
        }
        if self.body_read_timeout.is_zero() {
            return invalid("body_read_timeout", "must be longer than zero");
        }
        if self.write_stall_timeout.is_zero() {
            return invalid("write_stall_timeout", "must be longer than zero");
        }
        if self.session_ttl.is_zero() {
            return invalid("session_ttl", "must be longer than zero");
        }
        if let Some(proxy) = &self.trusted_proxy {
            if proxy.proxies.is_empty() {
                return invalid(
                    "trusted_proxy",
                    "must name at least one proxy address or network",
                );
            }
        }
        Ok(())
    }
}

/// Trusted-proxy mode: a request arriving from one of `proxies` that carries `header` is taken
/// to be from the user that header names. From any other address the header is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxy {
    /// The header the proxy sets, e.g. `x-user-email`.
    pub header: HeaderName,
    /// The proxies' addresses or networks.
    pub proxies: Vec<IpCidr>,
}

impl TrustedProxy {
    /// Parses a header name and a comma-separated list of addresses/CIDR networks, as the
    /// binary's flags give them.
    ///
    /// # Errors
    /// [`HttpError::InvalidConfig`] for a bad header name, address or network.
    pub fn parse(header: &str, proxies: &str) -> Result<Self, HttpError> {
        let header = HeaderName::from_bytes(header.trim().as_bytes()).map_err(|_| {
            HttpError::InvalidConfig {
                setting: "trusted_proxy_header",
                reason: format!("{header:?} is not a valid header name"),
            }
        })?;
        let proxies = proxies
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<IpCidr>, _>>()?;
        let parsed = Self { header, proxies };
        if parsed.proxies.is_empty() {
            return Err(HttpError::InvalidConfig {
                setting: "trusted_proxies",
                reason: "must name at least one proxy address or network".to_owned(),
            });
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = HttpConfig::default();
        config.validate().unwrap();
        assert_eq!(config.body_limit, 65_536);
        assert_eq!(config.max_sse_per_user, 32);
        assert_eq!(config.max_queued_per_user, 100);
        assert_eq!(config.monitor_timeout, Duration::from_secs(300));
        assert!(config.trusted_proxy.is_none());
    }

    #[test]
    fn zero_limits_are_rejected_by_name() {
        let check = |config: HttpConfig, expected: &str| match config.validate() {
            Err(HttpError::InvalidConfig { setting, .. }) => assert_eq!(setting, expected),
            other => panic!("{other:?}"),
        };
        check(
            HttpConfig {
                body_limit: 0,
                ..HttpConfig::default()
            },
            "body_limit",
        );
        check(
            HttpConfig {
                max_connections: 0,
                ..HttpConfig::default()
            },
            "max_connections",
        );
        check(
            HttpConfig {
                monitor_timeout: Duration::ZERO,
                ..HttpConfig::default()
            },
            "monitor_timeout",
        );
    }

    #[test]
    fn trusted_proxy_parses_flags() {
        let proxy = TrustedProxy::parse("X-User-Email", "10.0.0.0/8, 127.0.0.1").unwrap();
        assert_eq!(proxy.header.as_str(), "x-user-email");
        assert_eq!(proxy.proxies.len(), 2);
        assert!(TrustedProxy::parse("bad header", "10.0.0.1").is_err());
        assert!(TrustedProxy::parse("x-user-email", " , ").is_err());
        assert!(TrustedProxy::parse("x-user-email", "10.0.0.0/33").is_err());
    }
}
