//! What a caller asks a provider for: a system and a user prompt, and the JSON Schema the answer
//! must fit.

use serde_json::Value;

use crate::ProviderError;

/// Output token budget used by [`JsonRequest::new`].
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4096;
/// Longest schema name the providers accept (OpenAI's `json_schema.name`, Anthropic's tool name).
pub const MAX_SCHEMA_NAME_LEN: usize = 64;

/// A request for one JSON object that fits `schema`.
///
/// The schema must be in the subset every provider accepts: an object at the root, and for
/// OpenAI's strict mode every property listed in `required` with `additionalProperties: false`.
/// Whatever a provider returns is checked against `schema` before it reaches the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonRequest {
    /// Instructions for the model (the system message).
    pub system: String,
    /// The task itself (the user message).
    pub prompt: String,
    /// A name for the schema: letters, digits, `_` and `-`, at most 64 characters. It names
    /// OpenAI's response format and Anthropic's forced tool.
    pub schema_name: String,
    /// The JSON Schema the answer must fit; its root must be `{"type": "object", ...}`.
    pub schema: Value,
    /// Upper bound on output tokens.
    pub max_output_tokens: u32,
    /// Structured parameters for the offline provider (and its seed); real providers ignore it.
    pub hints: Value,
}

impl JsonRequest {
    /// A request with [`DEFAULT_MAX_OUTPUT_TOKENS`] and no hints.
    pub fn new(
        system: impl Into<String>,
        prompt: impl Into<String>,
        schema_name: impl Into<String>,
        schema: Value,
    ) -> Self {
        JsonRequest {
            system: system.into(),
            prompt: prompt.into(),
            schema_name: schema_name.into(),
            schema,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            hints: Value::Null,
        }
    }

    /// Sets the hints for the offline provider.
    pub fn with_hints(mut self, hints: Value) -> Self {
        self.hints = hints;
        self
    }

    /// Sets the output token budget.
    pub fn with_max_output_tokens(mut self, max_output_tokens: u32) -> Self {
        self.max_output_tokens = max_output_tokens;
        self
    }

    /// Checks the request is one every provider accepts, so a bad request fails the same way on
    /// all of them (and offline) instead of only against one vendor's API.
    pub fn validate(&self, provider: &str) -> Result<(), ProviderError> {
        let problem = if self.prompt.trim().is_empty() {
            Some("the prompt is empty".to_owned())
        } else if self.schema_name.is_empty()
            || self.schema_name.len() > MAX_SCHEMA_NAME_LEN
            || !self
                .schema_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Some(format!(
                "schema name {:?} must be 1 to {MAX_SCHEMA_NAME_LEN} letters, digits, '_' or '-'",
                self.schema_name
            ))
        } else if self.schema.get("type").and_then(Value::as_str) != Some("object") {
            Some("the schema's root must have \"type\": \"object\"".to_owned())
        } else if self.max_output_tokens == 0 {
            Some("max_output_tokens must be at least 1".to_owned())
        } else {
            None
        };
        match problem {
            Some(problem) => Err(ProviderError::permanent(
                provider,
                format!("invalid request: {problem}"),
            )),
            None => Ok(()),
        }
    }
}
