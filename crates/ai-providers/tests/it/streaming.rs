//! Every hosted provider streaming through the fake in its vendor's wire format: the pieces, the
//! checked answer and the usage report; a stream cut mid-item, a stall ended by the idle timeout,
//! garbage between events, cancellation by drop; the offline provider's item-by-item stream on
//! a paused clock; and the trait's non-streaming fallback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_providers::{
    AiProvider, JsonRequest, OfflineProvider, ProviderError, Providers, Streamed, TokenUsage,
};
use async_trait::async_trait;
use serde_json::{json, Value};
use test_support::{Expectations, ExpectedKey, FakeProvider, ProviderKind, Scripted, StreamPlan};

use crate::support::{assert_clean, config_for, echo, quiz_request, Case, CASES, WAIT};

/// Three questions, one with a multi-byte emoji so garbage writes split a character.
fn three_questions() -> Value {
    json!({"questions": [
        {"question": "2 + 2? 🧮", "options": ["3", "4"], "correct": 1},
        {"question": "Capital of Sweden?", "options": ["Stockholm", "Oslo"], "correct": 0},
        {"question": "Colour of the sky?", "options": ["green", "blue"], "correct": 1}
    ]})
}

/// The fake for `case` and its provider with `idle` as the stream idle timeout.
async fn start(
    case: Case,
    script: Vec<Scripted>,
    idle: Duration,
) -> (FakeProvider, Arc<dyn AiProvider>) {
    let expect = Expectations {
        api_key: ExpectedKey::Exactly(case.key.to_owned()),
        model: Some(case.model.to_owned()),
    };
    let fake = FakeProvider::start_with(case.kind, expect, script).await;
    let mut config = config_for(case, &fake.base_url(), Duration::from_secs(10));
    config.stream_idle_timeout = idle;
    let provider = Providers::new(&config, echo())
        .expect("the config is valid")
        .get(case.name)
        .expect("the provider is configured");
    (fake, provider)
}

/// Streams one call and returns its result and the pieces received.
async fn stream(provider: &dyn AiProvider) -> (Result<Streamed, ProviderError>, Vec<String>) {
    let mut pieces = Vec::new();
    let result = provider
        .stream_json(&quiz_request(), &mut |piece: &str| {
            pieces.push(piece.to_owned())
        })
        .await;
    (result, pieces)
}

/// How many items of the answer's array the received text holds in full.
fn complete_items(text: &str) -> usize {
    let expected = three_questions();
    let items = expected["questions"].as_array().unwrap();
    items
        .iter()
        .take_while(|item| text.contains(&item.to_string()))
        .count()
}

#[tokio::test]
async fn every_provider_streams_the_answer_in_pieces_with_its_usage() {
    for case in CASES {
        let plan = StreamPlan::new(three_questions());
        let (fake, provider) = start(case, vec![Scripted::Stream(plan)], WAIT).await;
        let (result, pieces) = stream(provider.as_ref()).await;
        let streamed = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(streamed.answer, three_questions(), "{}", case.name);
        assert_eq!(
            streamed.usage,
            Some(TokenUsage {
                input_tokens: Some(42),
                output_tokens: Some(17)
            }),
            "{}",
            case.name
        );
        assert!(pieces.len() > 3, "{}: {} pieces", case.name, pieces.len());
        let text: String = pieces.concat();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            three_questions()
        );
        assert_clean(case, &fake);
        let sent = &fake.requests()[0];
        match case.kind {
            ProviderKind::OpenAi => {
                assert_eq!(sent.body["stream"], true);
                assert_eq!(sent.body["stream_options"]["include_usage"], true);
            }
            ProviderKind::Anthropic => assert_eq!(sent.body["stream"], true),
            ProviderKind::Gemini => assert_eq!(
                sent.path,
                format!(
                    "/v1beta/models/{}:streamGenerateContent?alt=sse",
                    case.model
                )
            ),
        }
        assert_eq!(
            sent.header("accept"),
            Some("text/event-stream"),
            "{}",
            case.name
        );
    }
}

#[tokio::test]
async fn garbage_between_events_and_split_characters_are_skipped() {
    for case in CASES {
        let plan = StreamPlan::new(three_questions()).with_garbage();
        let (fake, provider) = start(case, vec![Scripted::Stream(plan)], WAIT).await;
        let (result, pieces) = stream(provider.as_ref()).await;
        let streamed = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(streamed.answer, three_questions(), "{}", case.name);
        assert!(pieces.concat().contains('🧮'), "{}", case.name);
        assert_clean(case, &fake);
    }
}

#[tokio::test]
async fn a_stream_cut_mid_item_keeps_the_finished_items_and_is_transient() {
    for case in CASES {
        let plan = StreamPlan::new(three_questions()).cut_in_item(2);
        let (fake, provider) = start(case, vec![Scripted::Stream(plan)], WAIT).await;
        let (result, pieces) = stream(provider.as_ref()).await;
        let error = result.expect_err(case.name);
        assert!(
            matches!(error, ProviderError::Transient { .. }),
            "{}: {error:?}",
            case.name
        );
        assert!(error.is_retryable());
        assert_eq!(complete_items(&pieces.concat()), 2, "{}", case.name);
        assert_clean(case, &fake);
    }
}

#[tokio::test]
async fn a_stalled_stream_ends_at_the_idle_timeout_and_closes_the_request() {
    let idle = Duration::from_millis(300);
    for case in CASES {
        let plan = StreamPlan::new(three_questions()).stall_in_item(1);
        let (fake, provider) = start(case, vec![Scripted::Stream(plan)], idle).await;
        let (result, pieces) = stream(provider.as_ref()).await;
        let error = result.expect_err(case.name);
        assert!(
            matches!(&error, ProviderError::Transient { message, .. } if message.contains("idle timeout")),
            "{}: {error:?}",
            case.name
        );
        assert_eq!(complete_items(&pieces.concat()), 1, "{}", case.name);
        fake.wait_for_closed_connections(1, WAIT).await.unwrap();
    }
}

#[tokio::test]
async fn dropping_a_stream_closes_the_provider_request() {
    for case in CASES {
        let plan = StreamPlan::new(three_questions()).stall_in_item(1);
        let (fake, provider) = start(case, vec![Scripted::Stream(plan)], WAIT).await;
        let (first_piece, received) = tokio::sync::oneshot::channel::<()>();
        let call = tokio::spawn(async move {
            let mut first_piece = Some(first_piece);
            let request = quiz_request();
            let _ = provider
                .stream_json(&request, &mut |_: &str| {
                    if let Some(tx) = first_piece.take() {
                        let _ = tx.send(());
                    }
                })
                .await;
        });
        tokio::time::timeout(WAIT, received).await.unwrap().unwrap();
        call.abort();
        fake.wait_for_closed_connections(1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    }
}

#[tokio::test]
async fn errors_before_the_stream_map_as_without_one() {
    for case in CASES {
        let script = vec![
            Scripted::Status(503),
            Scripted::RateLimited {
                retry_after_secs: 2,
            },
            Scripted::Status(401),
        ];
        let (fake, provider) = start(case, script, WAIT).await;
        let (first, _) = stream(provider.as_ref()).await;
        assert!(
            matches!(first, Err(ProviderError::Transient { .. })),
            "{}: {first:?}",
            case.name
        );
        let (second, _) = stream(provider.as_ref()).await;
        assert!(
            matches!(second, Err(ProviderError::RateLimited { retry_after: Some(wait), .. }) if wait == Duration::from_secs(2)),
            "{}: {second:?}",
            case.name
        );
        let (third, _) = stream(provider.as_ref()).await;
        assert!(
            matches!(third, Err(ProviderError::Unauthorized { .. })),
            "{}: {third:?}",
            case.name
        );
        assert_clean(case, &fake);
    }
}

#[tokio::test]
async fn text_or_a_non_json_event_instead_of_the_structure_is_invalid_output() {
    for case in CASES {
        let script = vec![
            Scripted::Text("I cannot do that.".to_owned()),
            Scripted::Malformed,
        ];
        let (_fake, provider) = start(case, script, WAIT).await;
        for _ in 0..2 {
            let (result, _) = stream(provider.as_ref()).await;
            assert!(
                matches!(result, Err(ProviderError::InvalidOutput { .. })),
                "{}: {result:?}",
                case.name
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_offline_provider_streams_items_one_at_a_time_over_its_delay() {
    let delay = Duration::from_millis(3000);
    let responder = Arc::new(ThreeItems);
    let provider = OfflineProvider::new(responder, delay);
    let started = tokio::time::Instant::now();
    let arrivals = Mutex::new(Vec::new());
    let streamed = provider
        .stream_json(&quiz_request(), &mut |piece: &str| {
            arrivals
                .lock()
                .unwrap()
                .push((started.elapsed(), piece.to_owned()));
        })
        .await
        .unwrap();
    assert_eq!(streamed.answer, three_questions());
    assert_eq!(streamed.usage, None);
    let arrivals = arrivals.into_inner().unwrap();
    let times: Vec<Duration> = arrivals.iter().map(|(at, _)| *at).collect();
    assert_eq!(
        times,
        [1000, 2000, 3000].map(Duration::from_millis).to_vec()
    );
    let text: String = arrivals.iter().map(|(_, piece)| piece.as_str()).collect();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        three_questions()
    );
}

#[derive(Debug)]
struct ThreeItems;

impl ai_providers::OfflineResponder for ThreeItems {
    fn respond(&self, _: &JsonRequest, _: u64) -> Result<Value, ProviderError> {
        Ok(three_questions())
    }
}

/// A provider that only implements the non-streaming call.
#[derive(Debug)]
struct WholeOnly;

#[async_trait]
impl AiProvider for WholeOnly {
    fn name(&self) -> &str {
        "whole-only"
    }

    fn model(&self) -> &str {
        "whole-only"
    }

    async fn generate_json(&self, _: &JsonRequest) -> Result<Value, ProviderError> {
        Ok(three_questions())
    }
}

#[tokio::test]
async fn a_provider_without_streaming_hands_over_the_whole_text_once() {
    let (result, pieces) = stream(&WholeOnly).await;
    assert_eq!(result.unwrap().answer, three_questions());
    assert_eq!(pieces, vec![three_questions().to_string()]);
}
