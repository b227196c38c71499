//! Every envelope the fake sends validates against the provider's official response schema.

use serde_json::{json, Value};
use test_support::{envelope, ProviderKind, ProviderSchemas};

fn schemas(kind: ProviderKind) -> std::sync::Arc<ProviderSchemas> {
    ProviderSchemas::get(kind).expect("the official schemas load and compile")
}

fn check_valid(what: &str, violations: Vec<String>) {
    assert!(violations.is_empty(), "{what}: {violations:#?}");
}

#[test]
fn all_official_schemas_compile_as_draft_2020_12() {
    for kind in ProviderKind::ALL {
        schemas(kind);
    }
}

#[test]
fn success_and_text_envelopes_fit_the_response_schemas() {
    let answer = json!({"questions": [{"q": "2+2?", "answer": 4}]});
    for kind in ProviderKind::ALL {
        let schemas = schemas(kind);
        let model = "some-model";
        check_valid(
            &format!("{kind} success"),
            schemas.check_response(&envelope::success_body(kind, model, "quiz", &answer)),
        );
        check_valid(
            &format!("{kind} text"),
            schemas.check_response(&envelope::text_body(kind, model, "I cannot do JSON today")),
        );
    }
}

#[test]
fn error_envelopes_fit_the_error_schemas() {
    for kind in ProviderKind::ALL {
        let schemas = schemas(kind);
        for status in [
            400, 401, 402, 403, 404, 408, 409, 413, 429, 500, 502, 503, 504, 529,
        ] {
            check_valid(
                &format!("{kind} {status}"),
                schemas.check_error(&envelope::error_body(kind, status, "boom")),
            );
        }
        check_valid(
            &format!("{kind} rate limited"),
            schemas.check_error(&envelope::rate_limited_body(kind, 3)),
        );
    }
}

#[test]
fn the_schemas_reject_what_the_services_reject() {
    let cases: [(ProviderKind, Value); 3] = [
        (
            ProviderKind::OpenAi,
            json!({"model": "gpt-4o-mini", "messages": []}),
        ),
        (
            ProviderKind::Anthropic,
            json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"contents": [], "generationConfig": {"responseSchemaX": {}}}),
        ),
    ];
    for (kind, body) in cases {
        assert!(
            !schemas(kind).check_request(&body).is_empty(),
            "{kind} accepted an invalid request {body}"
        );
    }
    assert!(!schemas(ProviderKind::OpenAi)
        .check_response(&json!({"id": "x"}))
        .is_empty());
}
