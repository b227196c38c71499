//! One trait over OpenAI, Anthropic, Gemini, OpenAI-compatible servers and an offline provider,
//! with typed, retry-aware errors.
//!
//! Callers build a [`Providers`] registry once (from the environment or a [`ProvidersConfig`]),
//! pick a provider by name and call [`AiProvider::generate_json`] with a [`JsonRequest`]: a prompt
//! and the JSON Schema the answer must fit. Every provider returns a value checked against that
//! schema, or a [`ProviderError`] whose variant says whether and when to retry.
//!
//! [`AiProvider::stream_json`] asks for the same answer as a stream: every hosted provider reads
//! its vendor's server-sent events, hands each piece of the answer's JSON text to the caller as
//! it arrives, and returns the checked answer with the provider's final [`TokenUsage`]. A stream
//! silent for longer than [`ProvidersConfig::stream_idle_timeout`] ends with a transient error.
//!
//! [`Providers::with_gate`] puts every hosted provider behind a [`ProviderGate`]: caps on calls
//! in flight and per minute, and a hold after a provider's 429 that every caller respects.
//!
//! **Invariant: API keys never appear in logs, errors, results or `Debug` output.** They live in
//! [`ApiKey`] and in header values marked sensitive.

mod anthropic;
mod anthropic_stream;
mod config;
mod error;
mod events;
mod gate;
mod gemini;
mod gemini_stream;
mod http;
mod offline;
mod openai;
mod openai_compatible;
mod openai_stream;
mod output;
mod provider;
mod registry;
mod request;
mod retry_after;
mod secret;
mod stream;

pub use anthropic::{ANTHROPIC, ANTHROPIC_VERSION};
pub use config::{
    CompatibleSettings, ProviderSettings, ProvidersConfig, DEFAULT_ANTHROPIC_BASE_URL,
    DEFAULT_ANTHROPIC_MODEL, DEFAULT_CONNECT_TIMEOUT, DEFAULT_GEMINI_BASE_URL,
    DEFAULT_GEMINI_MODEL, DEFAULT_OFFLINE_DELAY, DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MODEL,
    DEFAULT_REQUEST_TIMEOUT,
};
pub use error::ProviderError;
pub use gate::{GatePass, GatedProvider, ProviderGate};
pub use gemini::GEMINI;
pub use offline::{offline_seed, OfflineProvider, OfflineResponder, OFFLINE};
pub use openai::OPENAI;
pub use openai_compatible::OPENAI_COMPATIBLE;
pub use provider::AiProvider;
pub use registry::{Providers, KNOWN_PROVIDERS};
pub use request::{JsonRequest, DEFAULT_MAX_OUTPUT_TOKENS, MAX_SCHEMA_NAME_LEN};
pub use secret::{redact, ApiKey, REDACTED};
pub use stream::{Streamed, TextSink, TokenUsage, DEFAULT_STREAM_IDLE_TIMEOUT};
