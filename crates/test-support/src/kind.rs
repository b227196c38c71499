//! The three wire formats the fake speaks, and what each one expects of a request.

/// Which provider's wire format the fake speaks. OpenAI-compatible servers speak [`ProviderKind::OpenAi`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// `POST /v1/chat/completions` with `Authorization: Bearer`.
    OpenAi,
    /// `POST /v1/messages` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// `POST /v1beta/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`) with
    /// `x-goog-api-key`.
    Gemini,
}

impl ProviderKind {
    /// All kinds, for tests that check each one.
    pub const ALL: [ProviderKind; 3] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
    ];

    /// A short lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// The path prefix the real service's base URL carries, so `base_url()` can be used exactly like
    /// the real default base (OpenAI's default base ends in `/v1`; the others have no path).
    pub(crate) fn base_path(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "/v1",
            ProviderKind::Anthropic | ProviderKind::Gemini => "",
        }
    }

    pub(crate) fn request_schema_file(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai-chat-request.schema.json",
            ProviderKind::Anthropic => "anthropic-messages-request.schema.json",
            ProviderKind::Gemini => "gemini-generate-request.schema.json",
        }
    }

    pub(crate) fn response_schema_file(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai-chat-response.schema.json",
            ProviderKind::Anthropic => "anthropic-messages-response.schema.json",
            ProviderKind::Gemini => "gemini-generate-response.schema.json",
        }
    }

    pub(crate) fn stream_schema_file(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai-chat-stream-chunk.schema.json",
            ProviderKind::Anthropic => "anthropic-messages-stream-event.schema.json",
            ProviderKind::Gemini => "gemini-generate-response.schema.json",
        }
    }

    /// The header that carries the API key.
    pub fn auth_header(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "authorization",
            ProviderKind::Anthropic => "x-api-key",
            ProviderKind::Gemini => "x-goog-api-key",
        }
    }

    /// Turns the auth header's value into the key it carries (`None` if the value is malformed).
    pub(crate) fn key_from_auth_header(self, value: &str) -> Option<String> {
        match self {
            ProviderKind::OpenAi => value.strip_prefix("Bearer ").map(str::to_owned),
            ProviderKind::Anthropic | ProviderKind::Gemini => Some(value.to_owned()),
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
