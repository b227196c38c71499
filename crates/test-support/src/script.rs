//! What the fake answers, request by request, and what it expects to be sent.

use serde_json::Value;

use crate::StreamPlan;

/// One scripted answer. The fake serves its script in order, one entry per well-formed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Scripted {
    /// The model "returns" this JSON; the fake wraps it in the provider's real success envelope
    /// (message content for OpenAI and Gemini, the forced tool's `input` for Anthropic).
    Success(Value),
    /// The model writes this plain text instead of the requested structure (no tool call for
    /// Anthropic), as a real model sometimes does.
    Text(String),
    /// An HTTP error status with the provider's real error envelope.
    Status(u16),
    /// HTTP 429. OpenAI and Anthropic carry the wait in a `Retry-After` header, Gemini in a
    /// `google.rpc.RetryInfo` detail of the body, as the real services do.
    RateLimited {
        /// The wait the provider asks for.
        retry_after_secs: u64,
    },
    /// Never answers; the request stays open until the client gives up and closes the connection.
    Hang,
    /// HTTP 200 with a body that is cut off in the middle of the JSON.
    Malformed,
    /// Exactly this status and body, with `content-type: application/json`.
    Raw(u16, String),
    /// This HTTP error status with the provider's error envelope whose message quotes the
    /// request's whole auth header (`Authorization: Bearer <key>`, or the key header), as a
    /// careless proxy or provider does: the client must keep the key out of what it reports.
    EchoCredentials(u16),
    /// A streamed answer played as `plan` says (pace, a cut or stall, garbage). Served to a
    /// request that asked for a stream; a request that did not gets `plan.answer` whole, as
    /// [`Scripted::Success`]. A streaming request scripted with [`Scripted::Success`] gets
    /// `StreamPlan::new(answer)`, and one scripted with [`Scripted::Text`] gets the text streamed.
    Stream(StreamPlan),
}

/// What the fake demands of every request, on top of the path, headers and official schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// How the API key must be sent. Defaults to [`ExpectedKey::Present`].
    pub api_key: ExpectedKey,
    /// The model every request must name (in the body, or in the path for Gemini). Defaults to
    /// `None`: any non-empty model is accepted.
    pub model: Option<String>,
}

/// The fake's demand on the auth header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ExpectedKey {
    /// Some non-empty key must be sent.
    #[default]
    Present,
    /// Exactly this key must be sent.
    Exactly(String),
    /// No auth header may be sent (a local OpenAI-compatible server without a key).
    Absent,
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// When the request arrived (its head and body read).
    pub received_at: std::time::Instant,
    /// The HTTP method.
    pub method: String,
    /// The path and, if any, the query string.
    pub path: String,
    /// All request headers.
    pub headers: http::HeaderMap,
    /// The body as JSON (`Value::Null` if it was not JSON, which is also a protocol violation).
    pub body: Value,
}

impl RecordedRequest {
    /// The value of header `name`, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
