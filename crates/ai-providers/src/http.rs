//! The HTTP leg shared by the hosted providers: one pooled client with connect and overall
//! timeouts, and the mapping of every failure to a [`ProviderError`] variant.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use crate::error::truncate;
use crate::events::ProviderEvents;
use crate::retry_after::retry_after;
use crate::ProviderError;

/// Answers larger than this are not a structured answer we asked for; reading stops there.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A pooled HTTP client. Cloning shares the pool.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    request_timeout: Duration,
    stream_idle_timeout: Duration,
}

impl HttpClient {
    pub(crate) fn new(
        connect_timeout: Duration,
        request_timeout: Duration,
        stream_idle_timeout: Duration,
    ) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .build()
            .map_err(|e| {
                ProviderError::invalid_config(
                    "HTTP client",
                    format!("cannot build: {}", describe(&e)),
                )
            })?;
        Ok(HttpClient {
            client,
            request_timeout,
            stream_idle_timeout,
        })
    }

    /// POSTs `body` as JSON and returns the parsed 2xx body. Dropping the future drops the
    /// in-flight request, which closes its connection.
    pub(crate) async fn post_json(
        &self,
        provider: &str,
        url: Url,
        headers: HeaderMap,
        body: &Value,
    ) -> Result<Value, ProviderError> {
        let started = Instant::now();
        let response = self
            .client
            .post(url)
            .headers(headers)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(provider, &e))?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let bytes = self.read_body(provider, response).await?;
        tracing::debug!(
            provider,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "provider answered"
        );
        let parsed = serde_json::from_slice::<Value>(&bytes);
        if !status.is_success() {
            let body = parsed.unwrap_or(Value::Null);
            return Err(status_error(
                provider,
                status,
                &response_headers,
                &body,
                &bytes,
            ));
        }
        parsed.map_err(|e| {
            ProviderError::invalid_output(
                provider,
                format!(
                    "the response body is not JSON ({e}): {}",
                    truncate(&String::from_utf8_lossy(&bytes))
                ),
            )
        })
    }

    /// POSTs `body` as JSON and returns the events of the 2xx `text/event-stream` answer. The
    /// client's overall timeout still caps the whole stream; each event must also arrive within
    /// the stream idle timeout. An error status is read and mapped as in [`Self::post_json`].
    pub(crate) async fn post_events(
        &self,
        provider: &str,
        url: Url,
        headers: HeaderMap,
        body: &Value,
    ) -> Result<ProviderEvents, ProviderError> {
        let response = tokio::time::timeout(
            self.stream_idle_timeout,
            self.client
                .post(url)
                .headers(headers)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(body)
                .send(),
        )
        .await
        .map_err(|_| {
            ProviderError::transient(
                provider,
                format!(
                    "no response head within {:?} (the stream idle timeout)",
                    self.stream_idle_timeout
                ),
            )
        })?
        .map_err(|e| self.transport_error(provider, &e))?;
        let status = response.status();
        if !status.is_success() {
            let response_headers = response.headers().clone();
            let bytes = self.read_body(provider, response).await?;
            let parsed = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
            return Err(status_error(
                provider,
                status,
                &response_headers,
                &parsed,
                &bytes,
            ));
        }
        tracing::debug!(provider, status = status.as_u16(), "provider stream opened");
        Ok(ProviderEvents::new(
            provider,
            response,
            self.stream_idle_timeout,
            self.request_timeout,
        ))
    }

    async fn read_body(
        &self,
        provider: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(provider, &e))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ProviderError::invalid_output(
                    provider,
                    format!("the response body exceeds {MAX_RESPONSE_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn transport_error(&self, provider: &str, error: &reqwest::Error) -> ProviderError {
        // A connect timeout is also a timeout; name the connect step, whose cap is shorter.
        if error.is_connect() {
            ProviderError::transient(provider, format!("cannot connect: {}", describe(error)))
        } else if error.is_timeout() {
            ProviderError::transient(
                provider,
                format!("no complete answer within {:?}", self.request_timeout),
            )
        } else if error.is_builder() {
            ProviderError::permanent(
                provider,
                format!("cannot build the request: {}", describe(error)),
            )
        } else {
            ProviderError::transient(provider, describe(error))
        }
    }
}

/// Maps a non-2xx answer (or an error event inside a stream, with the status it stands for) to
/// its variant, quoting the provider's own message.
pub(crate) fn status_error(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Value,
    raw: &[u8],
) -> ProviderError {
    let message = format!("HTTP {}: {}", status.as_u16(), provider_message(body, raw));
    match status.as_u16() {
        401 | 403 => ProviderError::Unauthorized {
            provider: provider.to_owned(),
            message,
        },
        // OpenAI answers 429 for an exhausted quota too; waiting does not refill it.
        429 if is_quota_exhausted(body) => ProviderError::permanent(provider, message),
        429 => {
            tracing::warn!(provider, %message, "provider rate limit reached");
            ProviderError::RateLimited {
                provider: provider.to_owned(),
                retry_after: retry_after(headers, body, chrono::Utc::now()),
            }
        }
        // A 503 that says when to come back is the same request to wait as a 429.
        503 => match retry_after(headers, body, chrono::Utc::now()) {
            Some(wait) => {
                tracing::warn!(provider, %message, "provider unavailable, asked to wait");
                ProviderError::RateLimited {
                    provider: provider.to_owned(),
                    retry_after: Some(wait),
                }
            }
            None => ProviderError::transient(provider, message),
        },
        // 408 is the server giving up on a slow request, which a retry can get past.
        408 | 500..=599 => ProviderError::transient(provider, message),
        _ => ProviderError::permanent(provider, message),
    }
}

/// The message in the provider's error envelope. OpenAI, Anthropic and Gemini all put it at
/// `error.message`; anything else is quoted raw.
fn provider_message(body: &Value, raw: &[u8]) -> String {
    match body.pointer("/error/message").and_then(Value::as_str) {
        Some(message) => truncate(message),
        None if raw.is_empty() => "(empty body)".to_owned(),
        None => truncate(&String::from_utf8_lossy(raw)),
    }
}

fn is_quota_exhausted(body: &Value) -> bool {
    ["/error/code", "/error/type"]
        .iter()
        .any(|p| body.pointer(p).and_then(Value::as_str) == Some("insufficient_quota"))
}

/// The error and its causes on one line ("error sending request ...: connection refused").
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    truncate(&text)
}

/// Joins `path` onto a base URL, keeping the base's own path (`https://api.openai.com/v1` +
/// `/chat/completions`).
pub(crate) fn endpoint(base: &Url, path: &str) -> Result<Url, ProviderError> {
    let joined = format!("{}{path}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).map_err(|e| ProviderError::invalid_config("base URL", e.to_string()))
}

/// Parses a configured base URL; only http and https make sense.
pub(crate) fn parse_base_url(setting: &str, value: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(value)
        .map_err(|e| ProviderError::invalid_config(setting, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::invalid_config(
            setting,
            format!("scheme {:?} is not http or https", url.scheme()),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ProviderError::invalid_config(
            setting,
            "a base URL takes no query or fragment",
        ));
    }
    Ok(url)
}

/// A header value carrying a key, marked sensitive so hyper, reqwest and `HeaderMap`'s `Debug`
/// never show it. `setting` names where the key came from.
pub(crate) fn secret_header(
    setting: &str,
    value: &str,
) -> Result<reqwest::header::HeaderValue, ProviderError> {
    let mut header = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        // The value is deliberately not quoted: it is a key.
        ProviderError::invalid_config(
            setting,
            "the key contains characters not allowed in a header",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}
