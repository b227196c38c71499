//! Provider settings, read from environment variables through a lookup function so tests never
//! touch the real environment.

use std::time::Duration;

use crate::{ApiKey, ProviderError};

/// OpenAI's API base; requests go to `{base}/chat/completions`.
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// The OpenAI model used when `OPENAI_MODEL` is unset.
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
/// Anthropic's API base; requests go to `{base}/v1/messages`.
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The Anthropic model used when `ANTHROPIC_MODEL` is unset.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// Gemini's API base; requests go to `{base}/v1beta/models/{model}:generateContent`.
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The Gemini model used when `GEMINI_MODEL` is unset.
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.5-flash";
/// How long the offline provider "thinks", so progress is visible in demos.
pub const DEFAULT_OFFLINE_DELAY: Duration = Duration::from_millis(2000);
/// Cap on one whole provider call, connecting and reading the body included. Generating a
/// long structured answer can take a minute or more.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Cap on opening the TCP/TLS connection; a provider that cannot be reached fails fast.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Key, base URL and model of one hosted provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// The API key; `None` leaves the provider unconfigured.
    pub api_key: Option<ApiKey>,
    /// The API base URL.
    pub base_url: String,
    /// The model to call.
    pub model: String,
}

/// An OpenAI-compatible server (a local model server, a gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompatibleSettings {
    /// The server's base URL, e.g. `http://127.0.0.1:11434/v1`; requests go to
    /// `{base}/chat/completions`.
    pub base_url: String,
    /// The key, if the server wants one; without it no `Authorization` header is sent.
    pub api_key: Option<ApiKey>,
    /// The model to call.
    pub model: String,
}

/// Settings of every provider.
///
/// `Default` gives the documented defaults with no keys: only the offline provider is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// `OPENAI_API_KEY`, `OPENAI_BASE_URL` (defaults to [`DEFAULT_OPENAI_BASE_URL`]),
    /// `OPENAI_MODEL` (defaults to [`DEFAULT_OPENAI_MODEL`]).
    pub openai: ProviderSettings,
    /// `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL` (defaults to [`DEFAULT_ANTHROPIC_BASE_URL`]),
    /// `ANTHROPIC_MODEL` (defaults to [`DEFAULT_ANTHROPIC_MODEL`]).
    pub anthropic: ProviderSettings,
    /// `GEMINI_API_KEY`, `GEMINI_BASE_URL` (defaults to [`DEFAULT_GEMINI_BASE_URL`]),
    /// `GEMINI_MODEL` (defaults to [`DEFAULT_GEMINI_MODEL`]).
    pub gemini: ProviderSettings,
    /// `OPENAI_COMPATIBLE_BASE_URL`, `OPENAI_COMPATIBLE_API_KEY` (optional) and
    /// `OPENAI_COMPATIBLE_MODEL` (required with a base URL). Defaults to `None`: not configured.
    pub openai_compatible: Option<CompatibleSettings>,
    /// `TASKLANE_OFFLINE_DELAY_MS`. Defaults to [`DEFAULT_OFFLINE_DELAY`].
    pub offline_delay: Duration,
    /// `TASKLANE_PROVIDER_TIMEOUT_SECS`: cap on a whole call. Defaults to [`DEFAULT_REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// `TASKLANE_PROVIDER_CONNECT_TIMEOUT_SECS`: cap on connecting. Defaults to
    /// [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// `TASKLANE_PROVIDER_STREAM_IDLE_SECS`: how long a streaming call waits for the next
    /// event (and for the response head) before it ends with a transient error. Defaults to
    /// [`crate::DEFAULT_STREAM_IDLE_TIMEOUT`].
    pub stream_idle_timeout: Duration,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            openai: ProviderSettings {
                api_key: None,
                base_url: DEFAULT_OPENAI_BASE_URL.to_owned(),
                model: DEFAULT_OPENAI_MODEL.to_owned(),
            },
            anthropic: ProviderSettings {
                api_key: None,
                base_url: DEFAULT_ANTHROPIC_BASE_URL.to_owned(),
                model: DEFAULT_ANTHROPIC_MODEL.to_owned(),
            },
            gemini: ProviderSettings {
                api_key: None,
                base_url: DEFAULT_GEMINI_BASE_URL.to_owned(),
                model: DEFAULT_GEMINI_MODEL.to_owned(),
            },
            openai_compatible: None,
            offline_delay: DEFAULT_OFFLINE_DELAY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            stream_idle_timeout: crate::DEFAULT_STREAM_IDLE_TIMEOUT,
        }
    }
}

impl ProvidersConfig {
    /// Reads the settings through `lookup` (pass `|name| std::env::var(name).ok()` for the real
    /// environment). Unset and blank variables take their defaults; a value that does not parse is
    /// an [`ProviderError::InvalidConfig`] naming the variable.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ProviderError> {
        let get = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let defaults = ProvidersConfig::default();
        let hosted = |prefix: &str, defaults: ProviderSettings| ProviderSettings {
            api_key: get(&format!("{prefix}_API_KEY")).map(ApiKey::new),
            base_url: get(&format!("{prefix}_BASE_URL")).unwrap_or(defaults.base_url),
            model: get(&format!("{prefix}_MODEL")).unwrap_or(defaults.model),
        };
        let openai_compatible = match get("OPENAI_COMPATIBLE_BASE_URL") {
            None => None,
            Some(base_url) => Some(CompatibleSettings {
                base_url,
                api_key: get("OPENAI_COMPATIBLE_API_KEY").map(ApiKey::new),
                model: get("OPENAI_COMPATIBLE_MODEL").ok_or_else(|| {
                    ProviderError::invalid_config(
                        "OPENAI_COMPATIBLE_MODEL",
                        "required when OPENAI_COMPATIBLE_BASE_URL is set",
                    )
                })?,
            }),
        };
        Ok(ProvidersConfig {
            openai: hosted("OPENAI", defaults.openai),
            anthropic: hosted("ANTHROPIC", defaults.anthropic),
            gemini: hosted("GEMINI", defaults.gemini),
            openai_compatible,
            offline_delay: match get("TASKLANE_OFFLINE_DELAY_MS") {
                Some(v) => Duration::from_millis(parse_number("TASKLANE_OFFLINE_DELAY_MS", &v, 0)?),
                None => defaults.offline_delay,
            },
            request_timeout: match get("TASKLANE_PROVIDER_TIMEOUT_SECS") {
                Some(v) => {
                    Duration::from_secs(parse_number("TASKLANE_PROVIDER_TIMEOUT_SECS", &v, 1)?)
                }
                None => defaults.request_timeout,
            },
            connect_timeout: match get("TASKLANE_PROVIDER_CONNECT_TIMEOUT_SECS") {
                Some(v) => Duration::from_secs(parse_number(
                    "TASKLANE_PROVIDER_CONNECT_TIMEOUT_SECS",
                    &v,
                    1,
                )?),
                None => defaults.connect_timeout,
            },
            stream_idle_timeout: match get("TASKLANE_PROVIDER_STREAM_IDLE_SECS") {
                Some(v) => {
                    Duration::from_secs(parse_number("TASKLANE_PROVIDER_STREAM_IDLE_SECS", &v, 1)?)
                }
                None => defaults.stream_idle_timeout,
            },
        })
    }
}

fn parse_number(setting: &str, value: &str, min: u64) -> Result<u64, ProviderError> {
    match value.parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(ProviderError::invalid_config(
            setting,
            format!("{value:?} is not a whole number of at least {min}"),
        )),
    }
}
