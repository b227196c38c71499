//! Anthropic's Messages API. Structured output comes from a forced tool call: the schema is the
//! tool's `input_schema`, and the answer is the `input` of the `tool_use` block.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Url;
use serde_json::{json, Value};

use crate::error::truncate;
use crate::http::{endpoint, secret_header, HttpClient};
use crate::output::check_answer;
use crate::stream::count;
use crate::{AiProvider, ApiKey, JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// The provider name callers use.
pub const ANTHROPIC: &str = "anthropic";
/// The API version tasklane speaks (the official SDKs' default).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A Messages API client for one model.
#[derive(Debug)]
pub(crate) struct AnthropicProvider {
    model: String,
    url: Url,
    /// `x-api-key` (marked sensitive) and `anthropic-version`.
    headers: HeaderMap,
    http: HttpClient,
}

impl AnthropicProvider {
    pub(crate) fn new(
        base: &Url,
        api_key: &ApiKey,
        model: &str,
        http: HttpClient,
    ) -> Result<Self, ProviderError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-api-key",
            secret_header("ANTHROPIC_API_KEY", api_key.expose())?,
        );
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        Ok(AnthropicProvider {
            model: model.to_owned(),
            url: endpoint(base, "/v1/messages")?,
            headers,
            http,
        })
    }
}

#[async_trait]
impl AiProvider for AnthropicProvider {
    fn name(&self) -> &str {
        ANTHROPIC
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn generate_json(&self, request: &JsonRequest) -> Result<Value, ProviderError> {
        Ok(self.generate_json_with_usage(request).await?.answer)
    }

    async fn generate_json_with_usage(
        &self,
        request: &JsonRequest,
    ) -> Result<Streamed, ProviderError> {
        request.validate(ANTHROPIC)?;
        let body = request_body(&self.model, request);
        let response = self
            .http
            .post_json(ANTHROPIC, self.url.clone(), self.headers.clone(), &body)
            .await?;
        let usage = response.get("usage").map(|report| TokenUsage {
            input_tokens: count(report, "/input_tokens"),
            output_tokens: count(report, "/output_tokens"),
        });
        let answer = extract(request, &response)?;
        Ok(Streamed { answer, usage })
    }

    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        request.validate(ANTHROPIC)?;
        let mut body = request_body(&self.model, request);
        body["stream"] = Value::Bool(true);
        let events = self
            .http
            .post_events(ANTHROPIC, self.url.clone(), self.headers.clone(), &body)
            .await?;
        crate::anthropic_stream::read(request, events, on_text).await
    }
}

fn request_body(model: &str, request: &JsonRequest) -> Value {
    json!({
        "model": model,
        "max_tokens": request.max_output_tokens,
        "system": request.system,
        "messages": [{"role": "user", "content": request.prompt}],
        "tools": [{
            "name": request.schema_name,
            "description": format!("Record the answer as a {} object.", request.schema_name),
            "input_schema": request.schema,
        }],
        "tool_choice": {"type": "tool", "name": request.schema_name},
    })
}

/// Finds the `tool_use` block for the forced tool and checks its `input`.
fn extract(request: &JsonRequest, response: &Value) -> Result<Value, ProviderError> {
    let blocks = response
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::invalid_output(ANTHROPIC, "the response has no content"))?;
    let tool_input = blocks.iter().find_map(|block| {
        let is_ours = block.get("type").and_then(Value::as_str) == Some("tool_use")
            && block.get("name").and_then(Value::as_str) == Some(request.schema_name.as_str());
        is_ours.then(|| block.get("input")).flatten()
    });
    match tool_input {
        Some(input) => check_answer(ANTHROPIC, request, input.clone()),
        None => {
            let stop_reason = response
                .get("stop_reason")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let text: String = blocks
                .iter()
                .filter_map(|block| block.get("text").and_then(Value::as_str))
                .collect();
            Err(ProviderError::invalid_output(
                ANTHROPIC,
                format!(
                    "no {} tool call in the answer (stop_reason {stop_reason}){}",
                    request.schema_name,
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", truncate(&text))
                    }
                ),
            ))
        }
    }
}
