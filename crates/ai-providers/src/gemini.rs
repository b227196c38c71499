//! Google's Gemini API (`generateContent`) in JSON mode: `responseMimeType: application/json` with
//! the schema as plain JSON Schema in `responseJsonSchema`.

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::{json, Value};

use crate::http::{endpoint, secret_header, HttpClient};
use crate::output::parse_answer;
use crate::stream::count;
use crate::{AiProvider, ApiKey, JsonRequest, ProviderError, Streamed, TextSink, TokenUsage};

/// The provider name callers use.
pub const GEMINI: &str = "gemini";

/// A Gemini client for one model.
#[derive(Debug)]
pub(crate) struct GeminiProvider {
    model: String,
    url: Url,
    /// `…:streamGenerateContent?alt=sse`: without `alt=sse` the stream is one JSON array.
    stream_url: Url,
    /// `x-goog-api-key`, marked sensitive. The header keeps the key out of URLs, which end up
    /// in logs and error messages.
    headers: HeaderMap,
    http: HttpClient,
}

impl GeminiProvider {
    pub(crate) fn new(
        base: &Url,
        api_key: &ApiKey,
        model: &str,
        http: HttpClient,
    ) -> Result<Self, ProviderError> {
        // Model names may be given in resource form ("models/gemini-2.5-flash").
        let model = model.strip_prefix("models/").unwrap_or(model);
        if model.is_empty()
            || !model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ProviderError::invalid_config(
                "GEMINI_MODEL",
                format!("{model:?} is not a model name"),
            ));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-goog-api-key",
            secret_header("GEMINI_API_KEY", api_key.expose())?,
        );
        Ok(GeminiProvider {
            model: model.to_owned(),
            url: endpoint(base, &format!("/v1beta/models/{model}:generateContent"))?,
            stream_url: endpoint(
                base,
                &format!("/v1beta/models/{model}:streamGenerateContent?alt=sse"),
            )?,
            headers,
            http,
        })
    }
}

#[async_trait]
impl AiProvider for GeminiProvider {
    fn name(&self) -> &str {
        GEMINI
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
        request.validate(GEMINI)?;
        let body = request_body(request);
        let response = self
            .http
            .post_json(GEMINI, self.url.clone(), self.headers.clone(), &body)
            .await?;
        let usage = response.get("usageMetadata").map(|report| TokenUsage {
            input_tokens: count(report, "/promptTokenCount"),
            output_tokens: count(report, "/candidatesTokenCount"),
        });
        let answer = extract(request, &response)?;
        Ok(Streamed { answer, usage })
    }

    async fn stream_json(
        &self,
        request: &JsonRequest,
        on_text: &mut TextSink<'_>,
    ) -> Result<Streamed, ProviderError> {
        request.validate(GEMINI)?;
        let body = request_body(request);
        let events = self
            .http
            .post_events(GEMINI, self.stream_url.clone(), self.headers.clone(), &body)
            .await?;
        crate::gemini_stream::read(request, events, on_text).await
    }
}

/// The model is in the path, so the body does not repeat it. `responseJsonSchema` takes the
/// caller's JSON Schema as is; the older `responseSchema` would need it rewritten into the proto
/// `Schema` subset (upper-case types, no `additionalProperties`).
fn request_body(request: &JsonRequest) -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": request.system}]},
        "contents": [{"role": "user", "parts": [{"text": request.prompt}]}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": request.schema,
            "maxOutputTokens": request.max_output_tokens,
        },
    })
}

/// Joins the text parts of the first candidate (skipping thought summaries) and parses them.
fn extract(request: &JsonRequest, response: &Value) -> Result<Value, ProviderError> {
    let Some(candidate) = response.pointer("/candidates/0") else {
        let reason = response
            .pointer("/promptFeedback/blockReason")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(ProviderError::invalid_output(
            GEMINI,
            format!("the response has no candidates (prompt blocked: {reason})"),
        ));
    };
    let finish_reason = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let text: String = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|part| part.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect();
    if text.is_empty() {
        return Err(ProviderError::invalid_output(
            GEMINI,
            format!("the candidate has no text (finishReason {finish_reason})"),
        ));
    }
    if finish_reason == "MAX_TOKENS" {
        return Err(ProviderError::invalid_output(
            GEMINI,
            "the answer was cut off at the output token limit",
        ));
    }
    parse_answer(GEMINI, request, &text)
}
