//! What the fake demands of a request before answering it: method, path, headers, key and model.

use serde_json::Value;

use crate::{Expectations, ExpectedKey, ProviderKind, RecordedRequest};

/// The Anthropic API version tasklane must pin (the SDK default).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// How Gemini's streaming path ends; without `alt=sse` the answer would be one JSON array.
const STREAM_SUFFIX: &str = ":streamGenerateContent?alt=sse";

/// Whether the request asks for a streamed answer.
pub(crate) fn wants_stream(kind: ProviderKind, request: &RecordedRequest) -> bool {
    match kind {
        ProviderKind::OpenAi | ProviderKind::Anthropic => {
            request.body.get("stream").and_then(Value::as_bool) == Some(true)
        }
        ProviderKind::Gemini => request.path.ends_with(STREAM_SUFFIX),
    }
}

/// Why a request was refused, which decides the status a real provider would answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Wrong method or path: the real service answers 404.
    NotFound(String),
    /// Missing or wrong key: 401.
    Unauthenticated(String),
    /// Anything else wrong with headers or body: 400.
    BadRequest(String),
}

impl Refusal {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Refusal::NotFound(_) => 404,
            Refusal::Unauthenticated(_) => 401,
            Refusal::BadRequest(_) => 400,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Refusal::NotFound(m) | Refusal::Unauthenticated(m) | Refusal::BadRequest(m) => m,
        }
    }
}

/// The model a request names: from the body, or from the path for Gemini.
pub(crate) fn requested_model(kind: ProviderKind, request: &RecordedRequest) -> Option<String> {
    match kind {
        ProviderKind::OpenAi | ProviderKind::Anthropic => request
            .body
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ProviderKind::Gemini => request
            .path
            .strip_prefix("/v1beta/models/")
            .and_then(|rest| {
                rest.strip_suffix(":generateContent")
                    .or_else(|| rest.strip_suffix(STREAM_SUFFIX))
            })
            .filter(|model| !model.is_empty() && !model.contains(['/', '?']))
            .map(str::to_owned),
    }
}

/// Every protocol problem of `request`, most severe first (the first decides the answer).
pub(crate) fn check(
    kind: ProviderKind,
    expect: &Expectations,
    request: &RecordedRequest,
) -> Vec<Refusal> {
    let mut problems = Vec::new();
    if request.method != "POST" {
        problems.push(Refusal::NotFound(format!(
            "method {} is not POST",
            request.method
        )));
    }
    let path_ok = match kind {
        ProviderKind::OpenAi => request.path == "/v1/chat/completions",
        ProviderKind::Anthropic => request.path == "/v1/messages",
        ProviderKind::Gemini => requested_model(kind, request).is_some(),
    };
    if !path_ok {
        problems.push(Refusal::NotFound(format!(
            "path {} is not the {kind} endpoint",
            request.path
        )));
    }
    check_key(kind, expect, request, &mut problems);
    let content_type = request.header("content-type").unwrap_or_default();
    if !content_type.starts_with("application/json") {
        problems.push(Refusal::BadRequest(format!(
            "content-type {content_type:?} is not application/json"
        )));
    }
    if kind == ProviderKind::Anthropic
        && request.header("anthropic-version") != Some(ANTHROPIC_VERSION)
    {
        problems.push(Refusal::BadRequest(format!(
            "anthropic-version is {:?}, expected {ANTHROPIC_VERSION:?}",
            request.header("anthropic-version")
        )));
    }
    match (requested_model(kind, request), &expect.model) {
        (None, _) if path_ok => problems.push(Refusal::BadRequest("no model named".to_owned())),
        (Some(got), Some(wanted)) if &got != wanted => problems.push(Refusal::BadRequest(format!(
            "model {got:?} sent, expected {wanted:?}"
        ))),
        _ => {}
    }
    problems.sort_by_key(|p| match p {
        Refusal::NotFound(_) => 0,
        Refusal::Unauthenticated(_) => 1,
        Refusal::BadRequest(_) => 2,
    });
    problems
}

fn check_key(
    kind: ProviderKind,
    expect: &Expectations,
    request: &RecordedRequest,
    problems: &mut Vec<Refusal>,
) {
    let header = kind.auth_header();
    let sent = request.headers.get(header);
    // The key belongs in a header: a key in the query string ends up in access logs.
    if request.path.contains("key=") {
        problems.push(Refusal::BadRequest("API key sent in the URL".to_owned()));
    }
    match (&expect.api_key, sent) {
        (ExpectedKey::Absent, None) => {}
        (ExpectedKey::Absent, Some(_)) => problems.push(Refusal::BadRequest(format!(
            "{header} sent although no key is configured"
        ))),
        (_, None) => problems.push(Refusal::Unauthenticated(format!("no {header} header"))),
        (wanted, Some(value)) => {
            let key = value
                .to_str()
                .ok()
                .and_then(|v| kind.key_from_auth_header(v))
                .filter(|k| !k.is_empty());
            match (wanted, key) {
                (_, None) => problems.push(Refusal::Unauthenticated(format!(
                    "malformed {header} header"
                ))),
                (ExpectedKey::Exactly(want), Some(got)) if &got != want => {
                    problems.push(Refusal::Unauthenticated(format!("wrong key in {header}")))
                }
                _ => {}
            }
        }
    }
}
