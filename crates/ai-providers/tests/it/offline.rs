//! The offline provider on tokio's paused clock: deterministic answers, the configured delay,
//! and cancellation by dropping the future.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ai_providers::{
    offline_seed, AiProvider, JsonRequest, OfflineProvider, OfflineResponder, ProviderError,
};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::{quiz_request, EchoResponder};

const DELAY: Duration = Duration::from_millis(2000);

fn provider() -> (Arc<EchoResponder>, OfflineProvider) {
    let responder = Arc::new(EchoResponder::default());
    let provider = OfflineProvider::new(responder.clone(), DELAY);
    (responder, provider)
}

#[tokio::test(start_paused = true)]
async fn the_same_request_gives_the_same_answer() {
    let (responder, provider) = provider();
    let first = provider.generate_json(&quiz_request()).await.unwrap();
    let second = provider.generate_json(&quiz_request()).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(responder.calls.load(Ordering::SeqCst), 2);
    assert_eq!((provider.name(), provider.model()), ("offline", "offline"));
}

#[tokio::test(start_paused = true)]
async fn different_prompts_or_hints_give_different_seeds_and_answers() {
    let (_, provider) = provider();
    let base = quiz_request();
    let other_prompt = JsonRequest {
        prompt: "Write one history question.".to_owned(),
        ..base.clone()
    };
    let other_hints = base
        .clone()
        .with_hints(json!({"amount": 2, "category": "math"}));
    let base_answer = provider.generate_json(&base).await.unwrap();
    for other in [other_prompt, other_hints] {
        assert_ne!(offline_seed(&base), offline_seed(&other));
        assert_ne!(provider.generate_json(&other).await.unwrap(), base_answer);
    }
}

#[test]
fn the_seed_ignores_hint_key_order_and_fields_other_than_prompt_and_hints() {
    let a = quiz_request()
        .with_hints(json!({"amount": 1, "category": "math", "nested": {"x": 1, "y": [1, 2]}}));
    let b = quiz_request()
        .with_hints(json!({"nested": {"y": [1, 2], "x": 1}, "category": "math", "amount": 1}));
    assert_eq!(offline_seed(&a), offline_seed(&b));
    let c = JsonRequest {
        system: "other system".to_owned(),
        max_output_tokens: 5,
        ..a.clone()
    };
    assert_eq!(offline_seed(&a), offline_seed(&c));
    let d = a
        .clone()
        .with_hints(json!({"amount": 1, "category": "math", "nested": {"x": 1, "y": [2, 1]}}));
    assert_ne!(offline_seed(&a), offline_seed(&d));
}

#[tokio::test(start_paused = true)]
async fn the_answer_comes_after_exactly_the_delay() {
    let (_, provider) = provider();
    let started = Instant::now();
    provider.generate_json(&quiz_request()).await.unwrap();
    assert_eq!(started.elapsed(), DELAY);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_cancels_the_wait_and_the_answer() {
    let (responder, provider) = provider();
    let half = DELAY / 2;
    let started = Instant::now();
    let outcome = tokio::time::timeout(half, provider.generate_json(&quiz_request())).await;
    assert!(outcome.is_err(), "no answer before the delay");
    assert_eq!(started.elapsed(), half);
    // Long after the original deadline the responder has still not been called.
    tokio::time::sleep(DELAY * 2).await;
    assert_eq!(responder.calls.load(Ordering::SeqCst), 0);
}

#[derive(Debug)]
struct Fixed(Result<Value, ProviderError>);

impl OfflineResponder for Fixed {
    fn respond(&self, _: &JsonRequest, _: u64) -> Result<Value, ProviderError> {
        self.0.clone()
    }
}

#[tokio::test(start_paused = true)]
async fn responder_errors_pass_through_and_answers_are_schema_checked() {
    let failing = ProviderError::Permanent {
        provider: "offline".to_owned(),
        message: "bank empty".to_owned(),
    };
    let provider = OfflineProvider::new(Arc::new(Fixed(Err(failing.clone()))), Duration::ZERO);
    assert_eq!(
        provider.generate_json(&quiz_request()).await.unwrap_err(),
        failing
    );

    let provider = OfflineProvider::new(
        Arc::new(Fixed(Ok(json!({"questions": "none"})))),
        Duration::ZERO,
    );
    let error = provider.generate_json(&quiz_request()).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::InvalidOutput { .. }),
        "{error:?}"
    );
}
