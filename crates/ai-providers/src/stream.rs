//! What a streaming call gives back besides the answer: the token usage from the provider's
//! final usage report, and the per-chunk idle timeout that ends a stalled stream.

use std::time::Duration;

use serde_json::Value;

/// How long a streaming call waits for the next event before giving up with
/// [`crate::ProviderError::Transient`]. A model that is writing sends a chunk every few hundred
/// milliseconds at most; a silence this long is a stalled connection, not a slow model.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Tokens a call consumed, as the provider reported them. A field is `None` when the provider
/// did not report it (a compatible server without usage, the offline provider).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens (OpenAI `prompt_tokens`, Anthropic `input_tokens`, Gemini
    /// `promptTokenCount`).
    pub input_tokens: Option<u64>,
    /// Output tokens (OpenAI `completion_tokens`, Anthropic `output_tokens`, Gemini
    /// `candidatesTokenCount`).
    pub output_tokens: Option<u64>,
}

impl TokenUsage {
    /// The usage as JSON for a task result: `{"inputTokens": …, "outputTokens": …}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
        })
    }
}

/// The end of a streaming call: the whole answer, checked against the request's schema as
/// [`crate::AiProvider::generate_json`] checks it, and the usage if the provider reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Streamed {
    /// The answer.
    pub answer: Value,
    /// The final usage report, if any.
    pub usage: Option<TokenUsage>,
}

/// Where a streaming call delivers the answer's JSON text as it grows: every piece in order, so
/// that their concatenation is the answer's text. Called on the task that polls the call.
pub type TextSink<'a> = dyn FnMut(&str) + Send + 'a;

/// Reads a number from a usage report.
pub(crate) fn count(report: &Value, pointer: &str) -> Option<u64> {
    report.pointer(pointer).and_then(Value::as_u64)
}
