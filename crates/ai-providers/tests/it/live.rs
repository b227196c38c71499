//! Live tests against the real providers. Each runs only when its provider's real key is set
//! (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`); otherwise it prints
//! `skipped: <VAR> is not set` and passes, since CI has neither keys nor network. With a key it
//! makes one tiny `generate_json` call, configured from the environment exactly as the server
//! is (`OPENAI_BASE_URL`, `OPENAI_MODEL`, ...), and checks the answer against the schema itself
//! rather than trusting the provider's own check.
//!
//! Run them with `OPENAI_API_KEY=... cargo test -p ai-providers --test it live -- --nocapture`.

use ai_providers::{JsonRequest, Providers, ProvidersConfig};
use serde_json::{json, Value};

use crate::support::echo;

#[tokio::test]
async fn openai_answers_with_json_that_fits_the_schema() {
    live("openai", "OPENAI_API_KEY").await;
}

#[tokio::test]
async fn anthropic_answers_with_json_that_fits_the_schema() {
    live("anthropic", "ANTHROPIC_API_KEY").await;
}

#[tokio::test]
async fn gemini_answers_with_json_that_fits_the_schema() {
    live("gemini", "GEMINI_API_KEY").await;
}

/// One call to `provider` when `key_variable` is set; a printed skip otherwise.
async fn live(provider: &str, key_variable: &str) {
    let lookup = |name: &str| std::env::var(name).ok();
    if lookup(key_variable).is_none_or(|key| key.trim().is_empty()) {
        println!("skipped: {key_variable} is not set");
        return;
    }
    let config = ProvidersConfig::from_env(lookup)
        .unwrap_or_else(|e| panic!("{provider}: invalid provider settings: {e}"));
    let providers = Providers::new(&config, echo())
        .unwrap_or_else(|e| panic!("{provider}: cannot build the providers: {e}"));
    let client = providers
        .get(provider)
        .unwrap_or_else(|e| panic!("{provider}: {e}"));
    let request = tiny_request();
    let answer = client
        .generate_json(&request)
        .await
        .unwrap_or_else(|e| panic!("{provider} ({}): {e}", client.model()));
    println!("{provider} ({}) answered {answer}", client.model());

    let validator = jsonschema::draft202012::new(&request.schema).expect("the schema compiles");
    let violations: Vec<String> = validator
        .iter_errors(&answer)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert_eq!(violations, Vec::<String>::new(), "{provider}: {answer}");
    // The sum shows the model read the prompt, not just the schema.
    assert_eq!(answer["sum"], json!(5), "{provider}: {answer}");
}

/// The smallest useful request: a sum, as an object with one integer. The token budget leaves
/// room for models that think before they answer (Gemini 2.5 counts thinking as output).
fn tiny_request() -> JsonRequest {
    JsonRequest::new(
        "You answer with JSON only.",
        "What is 2 + 3? Put the result in `sum`.",
        "tiny_sum",
        schema(),
    )
    .with_max_output_tokens(1024)
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "sum": {"type": "integer", "description": "The sum as a whole number."}
        },
        "required": ["sum"],
        "additionalProperties": false
    })
}
