//! The one error type of ai-providers. The variant is the retry policy: the runtime matches on it
//! (through [`ProviderError::is_retryable`] and [`ProviderError::retry_after`]), never on text.

use std::time::Duration;

/// A provider call failed, or a provider could not be set up.
///
/// Messages never contain API keys. Messages quoted from a provider are cut to a few hundred
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider is known but has no API key (for `openai-compatible`: no base URL). Permanent.
    #[error("API key not configured for provider: {provider}")]
    NotConfigured {
        /// The provider's name, e.g. `openai`.
        provider: String,
    },
    /// No provider has this name. Permanent.
    #[error("unknown AI provider: {provider:?}")]
    UnknownProvider {
        /// The name that was asked for.
        provider: String,
    },
    /// The provider rejected the key (HTTP 401 or 403). Permanent: retrying with the same key fails
    /// the same way.
    #[error("{provider} rejected the credentials: {message}")]
    Unauthorized {
        /// The provider's name.
        provider: String,
        /// The status and the provider's own message.
        message: String,
    },
    /// The provider asked us to slow down (HTTP 429, or 503 with `Retry-After`). Retryable, after
    /// `retry_after` if the provider said how long.
    #[error("{provider} rate limit reached{}", match retry_after {
        Some(wait) => format!(", retry after {wait:?}"),
        None => String::new(),
    })]
    RateLimited {
        /// The provider's name.
        provider: String,
        /// How long the provider asked us to wait, from `Retry-After` or a provider-specific hint.
        retry_after: Option<Duration>,
    },
    /// A failure that may pass on its own: HTTP 5xx or 408, a timeout, a refused or reset
    /// connection. Retryable.
    #[error("{provider} is temporarily unavailable: {message}")]
    Transient {
        /// The provider's name.
        provider: String,
        /// What failed.
        message: String,
    },
    /// The provider answered, but not with usable JSON: a malformed body, a refusal, text instead
    /// of JSON, output cut off at the token limit, or JSON that does not fit the requested schema.
    /// Retryable, because model output differs from call to call.
    #[error("{provider} returned unusable output: {message}")]
    InvalidOutput {
        /// The provider's name.
        provider: String,
        /// What was wrong with the output.
        message: String,
    },
    /// The provider refused the request for good (HTTP 400, 404, other 4xx, an exhausted quota), or
    /// the request itself is invalid. Permanent.
    #[error("{provider} rejected the request: {message}")]
    Permanent {
        /// The provider's name.
        provider: String,
        /// The status and the provider's own message, or what is wrong with the request.
        message: String,
    },
    /// A setting (an environment variable or a config field) has an invalid value.
    #[error("invalid setting {setting}: {message}")]
    InvalidConfig {
        /// The environment variable or field name.
        setting: String,
        /// What is wrong with the value (never the value itself, which may be a key).
        message: String,
    },
}

impl ProviderError {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Transient { .. }
                | ProviderError::InvalidOutput { .. }
        )
    }

    /// How long the provider asked us to wait before retrying, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn transient(provider: &str, message: impl Into<String>) -> Self {
        ProviderError::Transient {
            provider: provider.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid_output(provider: &str, message: impl Into<String>) -> Self {
        ProviderError::InvalidOutput {
            provider: provider.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn permanent(provider: &str, message: impl Into<String>) -> Self {
        ProviderError::Permanent {
            provider: provider.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn invalid_config(setting: &str, message: impl Into<String>) -> Self {
        ProviderError::InvalidConfig {
            setting: setting.to_owned(),
            message: message.into(),
        }
    }
}

/// Longest provider-supplied text kept in an error message.
pub(crate) const MAX_QUOTED_LEN: usize = 300;

/// Makes provider-supplied text fit to quote: every configured API key redacted (before the
/// cut, so no part of a key survives it), then cut so one odd answer cannot flood task
/// records and logs.
pub(crate) fn truncate(text: &str) -> String {
    let text = crate::secret::redact(text);
    let text = text.trim();
    if text.len() <= MAX_QUOTED_LEN {
        return text.to_owned();
    }
    let mut end = MAX_QUOTED_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
