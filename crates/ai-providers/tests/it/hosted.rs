//! Every hosted provider against the fake: what goes over the wire, and how each kind of answer
//! maps to a result or an error variant.

use std::time::{Duration, Instant};

use ai_providers::{CompatibleSettings, ProviderError, Providers, ProvidersConfig, TokenUsage};
use serde_json::{json, Value};
use test_support::{Expectations, ExpectedKey, FakeProvider, ProviderKind, Scripted};

use crate::support::{
    assert_clean, config_for, echo, quiz_answer, quiz_request, start, start_with_timeout, Case,
    CASES, WAIT,
};

/// Runs one scripted answer through `case` and returns the result and the fake.
async fn outcome(case: Case, answer: Scripted) -> (Result<Value, ProviderError>, FakeProvider) {
    let (fake, provider) = start(case, vec![answer]).await;
    let result = provider.generate_json(&quiz_request()).await;
    (result, fake)
}

#[tokio::test]
async fn success_returns_the_models_json() {
    for case in CASES {
        let (result, fake) = outcome(case, Scripted::Success(quiz_answer())).await;
        assert_eq!(result.unwrap(), quiz_answer(), "{}", case.name);
        assert_clean(case, &fake);
        assert_eq!(fake.requests().len(), 1);
    }
}

/// A non-streamed answer reports the provider's token usage too (what the provider gate counts
/// against a tokens-per-minute limit), from each vendor's own usage block.
#[tokio::test]
async fn plain_answers_report_their_usage() {
    for case in CASES {
        let (fake, provider) = start(case, vec![Scripted::Success(quiz_answer())]).await;
        let answered = provider
            .generate_json_with_usage(&quiz_request())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(answered.answer, quiz_answer(), "{}", case.name);
        assert_eq!(
            answered.usage,
            Some(TokenUsage {
                input_tokens: Some(42),
                output_tokens: Some(17)
            }),
            "{}",
            case.name
        );
        assert_clean(case, &fake);
    }
}

#[tokio::test]
async fn requests_carry_path_auth_and_model() {
    for case in CASES {
        let (_, fake) = outcome(case, Scripted::Success(quiz_answer())).await;
        let sent = &fake.requests()[0];
        let (path, auth_header, auth_value) = match case.kind {
            ProviderKind::OpenAi => (
                "/v1/chat/completions".to_owned(),
                "authorization",
                format!("Bearer {}", case.key),
            ),
            ProviderKind::Anthropic => {
                ("/v1/messages".to_owned(), "x-api-key", case.key.to_owned())
            }
            ProviderKind::Gemini => (
                format!("/v1beta/models/{}:generateContent", case.model),
                "x-goog-api-key",
                case.key.to_owned(),
            ),
        };
        assert_eq!(sent.method, "POST", "{}", case.name);
        assert_eq!(sent.path, path, "{}", case.name);
        assert_eq!(
            sent.header(auth_header),
            Some(auth_value.as_str()),
            "{}",
            case.name
        );
        assert!(sent
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        if case.kind == ProviderKind::Anthropic {
            assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        }
        if case.kind != ProviderKind::Gemini {
            assert_eq!(sent.body["model"], case.model, "{}", case.name);
        }
    }
}

#[tokio::test]
async fn request_bodies_ask_for_schema_constrained_json() {
    let request = quiz_request();
    for case in CASES {
        let (_, fake) = outcome(case, Scripted::Success(quiz_answer())).await;
        let body = &fake.requests()[0].body;
        match case.kind {
            ProviderKind::OpenAi => {
                assert_eq!(
                    body["messages"][0],
                    json!({"role": "system", "content": request.system})
                );
                assert_eq!(
                    body["messages"][1],
                    json!({"role": "user", "content": request.prompt})
                );
                assert_eq!(
                    body["response_format"],
                    json!({"type": "json_schema", "json_schema": {
                        "name": "quiz_questions", "schema": request.schema, "strict": true}})
                );
                assert_eq!(body["max_completion_tokens"], 1000);
            }
            ProviderKind::Anthropic => {
                assert_eq!(body["system"], request.system.as_str());
                assert_eq!(body["max_tokens"], 1000);
                assert_eq!(body["tools"][0]["name"], "quiz_questions");
                assert_eq!(body["tools"][0]["input_schema"], request.schema);
                assert_eq!(
                    body["tool_choice"],
                    json!({"type": "tool", "name": "quiz_questions"})
                );
            }
            ProviderKind::Gemini => {
                assert_eq!(
                    body["systemInstruction"]["parts"][0]["text"],
                    request.system.as_str()
                );
                assert_eq!(
                    body["contents"][0]["parts"][0]["text"],
                    request.prompt.as_str()
                );
                let generation = &body["generationConfig"];
                assert_eq!(generation["responseMimeType"], "application/json");
                assert_eq!(generation["responseJsonSchema"], request.schema);
                assert_eq!(generation["maxOutputTokens"], 1000);
            }
        }
        // Hints are for the offline provider only and must not leak to a vendor.
        assert!(
            !body.to_string().contains("category"),
            "{}: {body}",
            case.name
        );
    }
}

#[tokio::test]
async fn unauthorized_is_permanent_and_quotes_the_provider() {
    for status in [401, 403] {
        for case in CASES {
            let (result, fake) = outcome(case, Scripted::Status(status)).await;
            let error = result.unwrap_err();
            match &error {
                ProviderError::Unauthorized { provider, message } => {
                    assert_eq!(provider, case.name);
                    assert!(
                        message.contains(&format!("scripted status {status}")),
                        "{message}"
                    );
                }
                other => panic!("{}: {status} gave {other:?}", case.name),
            }
            assert!(!error.is_retryable());
            assert!(!error.to_string().contains(case.key), "{error}");
            assert_clean(case, &fake);
        }
    }
}

#[tokio::test]
async fn rate_limits_carry_the_requested_wait() {
    for case in CASES {
        let (result, fake) = outcome(
            case,
            Scripted::RateLimited {
                retry_after_secs: 7,
            },
        )
        .await;
        let error = result.unwrap_err();
        assert_eq!(
            error,
            ProviderError::RateLimited {
                provider: case.name.to_owned(),
                retry_after: Some(Duration::from_secs(7)),
            },
            "{}",
            case.name
        );
        assert!(error.is_retryable());
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert_clean(case, &fake);
    }
}

#[tokio::test]
async fn server_errors_are_transient_and_client_errors_permanent() {
    for (status, retryable) in [
        (500, true),
        (502, true),
        (503, true),
        (529, true),
        (408, true),
        (400, false),
        (404, false),
        (422, false),
    ] {
        for case in CASES {
            let (result, _) = outcome(case, Scripted::Status(status)).await;
            let error = result.unwrap_err();
            let expected_variant = match &error {
                ProviderError::Transient { message, .. }
                | ProviderError::Permanent { message, .. } => {
                    assert!(message.contains(&format!("HTTP {status}")), "{message}");
                    matches!(error, ProviderError::Transient { .. }) == retryable
                }
                _ => false,
            };
            assert!(expected_variant, "{}: {status} gave {error:?}", case.name);
            assert_eq!(error.is_retryable(), retryable);
        }
    }
}

#[tokio::test]
async fn a_hanging_provider_times_out_as_transient() {
    let timeout = Duration::from_millis(300);
    for case in CASES {
        let (fake, provider) = start_with_timeout(case, vec![Scripted::Hang], timeout).await;
        let started = Instant::now();
        let error = provider.generate_json(&quiz_request()).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            matches!(error, ProviderError::Transient { .. }),
            "{}: {error:?}",
            case.name
        );
        assert!(error.to_string().contains("300ms"), "{error}");
        assert!(
            elapsed >= timeout && elapsed < WAIT,
            "{}: gave up after {elapsed:?}",
            case.name
        );
        // The client hung up, so the fake sees the connection close.
        fake.wait_for_closed_connections(1, WAIT).await.unwrap();
    }
}

#[tokio::test]
async fn dropping_the_future_aborts_the_request() {
    for case in CASES {
        let (fake, provider) = start(case, vec![Scripted::Hang]).await;
        let call = tokio::spawn(async move { provider.generate_json(&quiz_request()).await });
        fake.wait_for_requests(1, WAIT).await.unwrap();
        assert_eq!(fake.connections_closed(), 0, "{}", case.name);
        call.abort();
        fake.wait_for_closed_connections(1, WAIT).await.unwrap();
    }
}

#[tokio::test]
async fn unusable_answers_are_invalid_output() {
    let wrong_shape = json!({"questions": [{"question": "no options"}]});
    for case in CASES {
        for answer in [
            Scripted::Malformed,
            Scripted::Text("Sure! Here are your questions: 1. 2+2?".to_owned()),
            Scripted::Success(wrong_shape.clone()),
            Scripted::Raw(200, "[]".to_owned()),
        ] {
            let (result, fake) = outcome(case, answer.clone()).await;
            let error = result.unwrap_err();
            assert!(
                matches!(&error, ProviderError::InvalidOutput { provider, .. } if provider == case.name),
                "{}: {answer:?} gave {error:?}",
                case.name
            );
            assert!(error.is_retryable());
            assert_clean(case, &fake);
        }
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_transient() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    for case in CASES {
        let base = match case.kind {
            ProviderKind::OpenAi => format!("http://{addr}/v1"),
            _ => format!("http://{addr}"),
        };
        let providers = Providers::new(&config_for(case, &base, WAIT), echo()).unwrap();
        let error = providers
            .get(case.name)
            .unwrap()
            .generate_json(&quiz_request())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ProviderError::Transient { .. }),
            "{}: {error:?}",
            case.name
        );
    }
}

#[tokio::test]
async fn a_compatible_server_without_a_key_gets_no_auth_header() {
    let fake = FakeProvider::start_with(
        ProviderKind::OpenAi,
        Expectations {
            api_key: ExpectedKey::Absent,
            model: Some("local-model".to_owned()),
        },
        vec![Scripted::Success(quiz_answer())],
    )
    .await;
    let config = ProvidersConfig {
        openai_compatible: Some(CompatibleSettings {
            base_url: fake.base_url(),
            api_key: None,
            model: "local-model".to_owned(),
        }),
        ..ProvidersConfig::default()
    };
    let providers = Providers::new(&config, echo()).unwrap();
    let provider = providers.get("openai-compatible").unwrap();
    assert_eq!(
        provider.generate_json(&quiz_request()).await.unwrap(),
        quiz_answer()
    );
    assert_eq!(fake.requests()[0].header("authorization"), None);
    assert!(
        fake.protocol_violations().is_empty(),
        "{:?}",
        fake.protocol_violations()
    );
    assert!(
        fake.schema_violations().is_empty(),
        "{:?}",
        fake.schema_violations()
    );
}

#[tokio::test]
async fn debug_output_and_errors_never_show_keys() {
    for case in CASES {
        let (fake, provider) = start(case, vec![Scripted::Status(401)]).await;
        let config = config_for(case, &fake.base_url(), WAIT);
        let providers = Providers::new(&config, echo()).unwrap();
        let error = provider.generate_json(&quiz_request()).await.unwrap_err();
        for text in [
            format!("{provider:?}"),
            format!("{providers:?}"),
            format!("{config:?}"),
            format!("{error:?}"),
            error.to_string(),
        ] {
            assert!(
                !text.contains(case.key),
                "{}: key leaked in {text}",
                case.name
            );
        }
        assert!(format!("{config:?}").contains("ApiKey(<redacted>)"));
    }
}
