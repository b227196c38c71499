//! Shared fixtures: one row per hosted provider, a config pointing it at a fake, a quiz-like
//! request and a tiny offline responder.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ai_providers::{
    AiProvider, ApiKey, CompatibleSettings, JsonRequest, OfflineResponder, ProviderError,
    Providers, ProvidersConfig,
};
use serde_json::{json, Value};
use test_support::{Expectations, ExpectedKey, FakeProvider, ProviderKind, Scripted};

/// Bounded wait for fake-side events.
pub const WAIT: Duration = Duration::from_secs(5);

/// One hosted provider under test.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub name: &'static str,
    pub kind: ProviderKind,
    pub key: &'static str,
    pub model: &'static str,
}

pub const CASES: [Case; 4] = [
    Case {
        name: "openai",
        kind: ProviderKind::OpenAi,
        key: "sk-test-OPENAI-SECRET-0001",
        model: "gpt-test-mini",
    },
    Case {
        name: "anthropic",
        kind: ProviderKind::Anthropic,
        key: "sk-ant-test-ANTHROPIC-SECRET-0002",
        model: "claude-test",
    },
    Case {
        name: "gemini",
        kind: ProviderKind::Gemini,
        key: "AIza-test-GEMINI-SECRET-0003",
        model: "gemini-test-flash",
    },
    Case {
        name: "openai-compatible",
        kind: ProviderKind::OpenAi,
        key: "local-test-COMPATIBLE-SECRET-0004",
        model: "llama-test",
    },
];

/// A config with only `case` configured, at `base_url`, with `timeout` for the whole call.
pub fn config_for(case: Case, base_url: &str, timeout: Duration) -> ProvidersConfig {
    let mut config = ProvidersConfig {
        request_timeout: timeout,
        offline_delay: Duration::ZERO,
        ..ProvidersConfig::default()
    };
    let key = Some(ApiKey::new(case.key));
    let settings = match case.name {
        "openai" => &mut config.openai,
        "anthropic" => &mut config.anthropic,
        "gemini" => &mut config.gemini,
        _ => {
            config.openai_compatible = Some(CompatibleSettings {
                base_url: base_url.to_owned(),
                api_key: key,
                model: case.model.to_owned(),
            });
            return config;
        }
    };
    settings.api_key = key;
    settings.base_url = base_url.to_owned();
    settings.model = case.model.to_owned();
    config
}

/// A fake for `case` that demands its exact key and model, and the provider pointed at it.
pub async fn start(case: Case, script: Vec<Scripted>) -> (FakeProvider, Arc<dyn AiProvider>) {
    start_with_timeout(case, script, Duration::from_secs(10)).await
}

pub async fn start_with_timeout(
    case: Case,
    script: Vec<Scripted>,
    timeout: Duration,
) -> (FakeProvider, Arc<dyn AiProvider>) {
    let expect = Expectations {
        api_key: ExpectedKey::Exactly(case.key.to_owned()),
        model: Some(case.model.to_owned()),
    };
    let fake = FakeProvider::start_with(case.kind, expect, script).await;
    let providers = Providers::new(&config_for(case, &fake.base_url(), timeout), echo())
        .expect("the config is valid");
    let provider = providers
        .get(case.name)
        .expect("the provider is configured");
    (fake, provider)
}

/// Asserts the fake saw nothing wrong in what was sent.
pub fn assert_clean(case: Case, fake: &FakeProvider) {
    assert!(
        fake.schema_violations().is_empty(),
        "{}: schema violations {:#?}",
        case.name,
        fake.schema_violations()
    );
    assert!(
        fake.protocol_violations().is_empty(),
        "{}: protocol violations {:#?}",
        case.name,
        fake.protocol_violations()
    );
}

/// The schema of a small quiz answer, in the strict subset every provider accepts.
pub fn quiz_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "questions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string"},
                        "options": {"type": "array", "items": {"type": "string"}},
                        "correct": {"type": "integer"}
                    },
                    "required": ["question", "options", "correct"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["questions"],
        "additionalProperties": false
    })
}

pub fn quiz_answer() -> Value {
    json!({"questions": [{"question": "2 + 2?", "options": ["3", "4"], "correct": 1}]})
}

pub fn quiz_request() -> JsonRequest {
    JsonRequest::new(
        "You write quiz questions.",
        "Write one arithmetic question.",
        "quiz_questions",
        quiz_schema(),
    )
    .with_max_output_tokens(1000)
    .with_hints(json!({"amount": 1, "category": "math"}))
}

/// Answers with the seed and prompt it was given, and counts its calls.
#[derive(Debug, Default)]
pub struct EchoResponder {
    pub calls: AtomicUsize,
}

impl OfflineResponder for EchoResponder {
    fn respond(&self, request: &JsonRequest, seed: u64) -> Result<Value, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(json!({
            "questions": [{
                "question": format!("{} (seed {seed})", request.prompt),
                "options": ["a", "b"],
                "correct": (seed % 2) as i64,
            }]
        }))
    }
}

pub fn echo() -> Arc<dyn OfflineResponder> {
    Arc::new(EchoResponder::default())
}
