//! OpenAI's Chat Completions API with Structured Outputs (`response_format: json_schema`), also
//! used for OpenAI-compatible servers.

use async_trait::async_trait;
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::Url;
use serde_json::{json, Value};

use crate::error::truncate;
use crate::http::{endpoint, secret_header, HttpClient};
use crate::output::parse_answer;
use crate::stream::count;
use crate::{AiProvider, ApiKey, JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// The provider name callers use.
pub const OPENAI: &str = "openai";

/// A Chat Completions client for one model at one base URL.
#[derive(Debug)]
pub(crate) struct OpenAiProvider {
    name: &'static str,
    model: String,
    url: Url,
    /// The `Authorization` header, marked sensitive; empty for a keyless compatible server.
    auth: HeaderMap,
    http: HttpClient,
}

impl OpenAiProvider {
    /// A client named `name` posting to `{base}/chat/completions`. `key_setting` names where the
    /// key came from, for errors.
    pub(crate) fn new(
        name: &'static str,
        base: &Url,
        api_key: Option<&ApiKey>,
        key_setting: &str,
        model: &str,
        http: HttpClient,
    ) -> Result<Self, ProviderError> {
        let mut auth = HeaderMap::new();
        if let Some(key) = api_key {
            auth.insert(
                AUTHORIZATION,
                secret_header(key_setting, &format!("Bearer {}", key.expose()))?,
            );
        }
        Ok(OpenAiProvider {
            name,
            model: model.to_owned(),
            url: endpoint(base, "/chat/completions")?,
            auth,
            http,
        })
    }
}

#[async_trait]
impl AiProvider for OpenAiProvider {
    fn name(&self) -> &str {
        self.name
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
        request.validate(self.name)?;
        let body = request_body(&self.model, request);
        let response = self
            .http
            .post_json(self.name, self.url.clone(), self.auth.clone(), &body)
            .await?;
        let usage = response.get("usage").map(|report| TokenUsage {
            input_tokens: count(report, "/prompt_tokens"),
            output_tokens: count(report, "/completion_tokens"),
        });
        let answer = extract(self.name, request, &response)?;
        Ok(Streamed { answer, usage })
    }

    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        request.validate(self.name)?;
        let mut body = request_body(&self.model, request);
        body["stream"] = Value::Bool(true);
        // Without this the stream carries no token counts at all.
        body["stream_options"] = json!({"include_usage": true});
        let events = self
            .http
            .post_events(self.name, self.url.clone(), self.auth.clone(), &body)
            .await?;
        crate::openai_stream::read(self.name, request, events, on_text).await
    }
}

fn request_body(model: &str, request: &JsonRequest) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.prompt},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "schema": request.schema,
                "strict": true,
            },
        },
        "max_completion_tokens": request.max_output_tokens,
    })
}

/// Reads `choices[0].message`: a refusal, missing content or content that is not fitting JSON is
/// unusable output.
fn extract(
    provider: &str,
    request: &JsonRequest,
    response: &Value,
) -> Result<Value, ProviderError> {
    let choice = response
        .pointer("/choices/0")
        .ok_or_else(|| ProviderError::invalid_output(provider, "the response has no choices"))?;
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let message = choice.get("message").unwrap_or(&Value::Null);
    if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
        return Err(ProviderError::invalid_output(
            provider,
            format!("the model refused: {}", truncate(refusal)),
        ));
    }
    let content = match message.get("content").and_then(Value::as_str) {
        Some(content) => content,
        None => {
            return Err(ProviderError::invalid_output(
                provider,
                format!("the message has no content (finish_reason {finish_reason})"),
            ))
        }
    };
    if finish_reason == "length" {
        return Err(ProviderError::invalid_output(
            provider,
            "the answer was cut off at the output token limit",
        ));
    }
    parse_answer(provider, request, content)
}
