//! The `generation` handler through the real runtime against fake providers: success with
//! progress in order, every failure the providers can produce, strict checking with
//! regeneration, batching, a missing key and cancellation.

use std::time::Duration;

use quiz::{QuestionQuery, GENERATION};
use serde_json::{json, Value};
use task_core::{TaskEvent, TaskStatus};
use test_support::{FakeProvider, ProviderKind, Scripted};

use crate::support::{
    assert_clean, completed, create, finished, generation_params, on_both_backends, prompt_of,
    providers, question, questions, seed_questions, start, wait_for, History, Stores, CALL_TIMEOUT,
    MODEL, USER, WAIT,
};

on_both_backends!(
    ten_questions_are_generated_with_progress_in_order,
    unauthorized_fails_permanently,
    rate_limited_retries_after_the_providers_wait,
    a_rate_limited_provider_delays_every_task_until_it_is_back,
    server_error_then_success_retries,
    a_hanging_provider_times_out_and_is_retried,
    malformed_json_is_asked_again,
    invalid_questions_are_dropped_and_regenerated,
    too_few_valid_questions_fail_with_a_clear_message,
    duplicates_of_existing_questions_are_regenerated,
    large_amounts_are_asked_for_in_batches,
    a_missing_key_fails_with_the_exact_message,
    cancelling_mid_request_aborts_the_http_call,
    bad_params_fail_without_calling_a_provider,
);

async fn ten_questions_are_generated_with_progress_in_order(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Success(questions(0..10))],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;

    let mut expected = vec![
        (10, "Preparing AI request...".to_owned()),
        (30, "Generating with OpenAI...".to_owned()),
    ];
    expected.extend(received(1..=10, 10));
    expected.extend([
        (70, "Parsed 10 of 10 questions...".to_owned()),
        (70, "Saving to database...".to_owned()),
    ]);
    assert_eq!(history.progress(&task.id).await, expected);
    assert_eq!(done.progress, 100);
    let result = done.result.unwrap();
    assert_eq!(result["success"], true);
    assert_eq!(result["questionsGenerated"], 10);
    assert_eq!(result["provider"], "openai");
    assert_eq!(result["model"], MODEL);
    let returned = result["questions"].as_array().unwrap();
    assert_eq!(returned.len(), 10);
    assert_eq!(returned[3]["text"], question(3)["text"]);
    assert_eq!(returned[3]["category"], "Testkategori");
    assert_eq!(returned[3]["taskId"], task.id.as_str());

    let stored = stores
        .questions
        .list(&QuestionQuery {
            owner: Some(USER.into()),
            ..QuestionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.questions.len(), 10);
    assert!(stored
        .questions
        .iter()
        .all(|q| q.provenance.provider == "openai" && q.provenance.model == MODEL));
    assert_eq!(fake.requests().len(), 1);
    assert!(prompt_of(&fake, 0).contains("Write 10 new quiz questions."));
    assert_clean(&fake);
}

async fn unauthorized_fails_permanently(stores: Stores) {
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Status(401)]).await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = finished(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(done.attempt, 1, "not retried");
    assert!(
        done.error
            .as_deref()
            .unwrap()
            .contains("rejected the credentials"),
        "{:?}",
        done.error
    );
    assert_eq!(fake.requests().len(), 1);
    assert_clean(&fake);
}

async fn rate_limited_retries_after_the_providers_wait(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![
            Scripted::RateLimited {
                retry_after_secs: 1,
            },
            Scripted::Success(questions(0..10)),
        ],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 1, "waiting for the provider used no attempt");
    let waiting = history
        .of(&task.id)
        .await
        .into_iter()
        .find(|t| t.status == TaskStatus::Pending && t.version > 1)
        .expect("the task was held back");
    assert_eq!(waiting.attempt, 0);
    assert_eq!(waiting.error, None, "not a failure");
    let description = waiting.description.as_deref().unwrap();
    assert!(
        description.starts_with("waiting for provider openai (rate limited until ")
            && description.ends_with(" UTC)"),
        "{description}"
    );
    // The runtime reads its clock just before the store stamps `updated_at`, so the gap can
    // be a few milliseconds under the full second.
    let wait = waiting.run_at - waiting.updated_at;
    assert!(
        (900..1500).contains(&wait),
        "held back {wait} ms, expected the provider's 1 s"
    );
    let second = history
        .of(&task.id)
        .await
        .into_iter()
        .find(|t| t.status == TaskStatus::Processing && t.version > waiting.version)
        .expect("a second run");
    assert!(
        second.started_at.unwrap() >= waiting.run_at,
        "the second run waited for the provider's Retry-After"
    );
    assert_eq!(fake.requests().len(), 2);
    assert_clean(&fake);
}

/// The provider answers every request with 429 and `Retry-After: 2` for 3 s: no task fails,
/// none is sent to it again before the 2 s it asked for, and all complete afterwards.
async fn a_rate_limited_provider_delays_every_task_until_it_is_back(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        (0..3)
            .map(|n| Scripted::Success(questions(n * 10..n * 10 + 10)))
            .collect(),
    )
    .await;
    fake.rate_limit_for(Duration::from_secs(3), 2);
    let window_start = std::time::Instant::now();
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let mut tasks = Vec::new();
    for n in 0..3 {
        let mut params = generation_params(10, "openai");
        params["category"] = json!(format!("Kategori{n}"));
        tasks.push(create(&stores, USER, GENERATION, params).await);
    }
    for task in &tasks {
        let done = finished(stores.tasks.as_ref(), &task.id).await;
        assert_eq!(done.status, TaskStatus::Completed, "{:?}", done.error);
        assert_eq!(done.attempt, 1, "waiting used no attempt");
    }
    runtime.shutdown().await;
    let requests = fake.requests();
    for n in 0..3 {
        let category = format!("Kategori{n}");
        let sent: Vec<std::time::Instant> = requests
            .iter()
            .filter(|r| r.body.to_string().contains(&category))
            .map(|r| r.received_at)
            .collect();
        assert!(
            sent.len() >= 2,
            "{category}: rate limited first, then served"
        );
        for pair in sent.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(1990),
                "{category} was sent again after {gap:?}, before the 2 s the provider asked for"
            );
        }
        let last = *sent.last().unwrap();
        assert!(
            last >= window_start + Duration::from_secs(3),
            "{category} succeeded only once the provider was back"
        );
    }
    assert_eq!(fake.remaining_script(), 0);
    assert_clean(&fake);
}

async fn server_error_then_success_retries(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Status(500), Scripted::Success(questions(0..10))],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 2);
    assert_eq!(done.result.unwrap()["questionsGenerated"], 10);
    assert_eq!(fake.requests().len(), 2);
    assert_clean(&fake);
}

async fn a_hanging_provider_times_out_and_is_retried(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Hang, Scripted::Success(questions(0..10))],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), Duration::from_secs(1)));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 2);
    let retried = history
        .of(&task.id)
        .await
        .into_iter()
        .find(|t| t.status == TaskStatus::Pending && t.attempt == 1);
    assert!(retried
        .expect("a retry")
        .error
        .unwrap()
        .contains("temporarily unavailable"));
    fake.wait_for_closed_connections(1, WAIT)
        .await
        .expect("the hung request's connection closed");
    assert_clean(&fake);
}

async fn malformed_json_is_asked_again(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Malformed, Scripted::Success(questions(0..10))],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(
        done.attempt, 1,
        "unusable output is asked for again within the attempt"
    );
    assert_eq!(done.result.unwrap()["questionsGenerated"], 10);
    assert_eq!(fake.requests().len(), 2);
    assert_clean(&fake);
}

/// Seven valid questions and three broken ones: wrong option count, answer index out of range,
/// and a repeat of the first question.
fn seven_of_ten() -> Value {
    let mut items: Vec<Value> = (0..7).map(question).collect();
    let mut three_options = question(100);
    three_options["options"] = json!(["1", "2", "3"]);
    let mut out_of_range = question(101);
    out_of_range["correctIndex"] = json!(4);
    let mut repeat = question(0);
    repeat["text"] = json!("TESTFRÅGA 0: Vad är 0 plus ett");
    items.extend([three_options, out_of_range, repeat]);
    json!({ "questions": items })
}

async fn invalid_questions_are_dropped_and_regenerated(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![
            Scripted::Success(seven_of_ten()),
            Scripted::Success(questions(7..10)),
        ],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 1, "regenerated within the attempt");
    let result = done.result.unwrap();
    let texts: Vec<&str> = result["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..10)
        .map(|i| question(i)["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, expected);
    assert!(prompt_of(&fake, 1).contains("Write 3 new quiz questions."));
    let steps = history.progress(&task.id).await;
    assert!(
        steps.contains(&(58, "Parsed 7 of 10 questions...".to_owned())),
        "{steps:?}"
    );
    assert!(
        steps.contains(&(
            58,
            "Regenerating 3 invalid questions with OpenAI...".to_owned()
        )),
        "{steps:?}"
    );
    assert_clean(&fake);
}

async fn too_few_valid_questions_fail_with_a_clear_message(stores: Stores) {
    let mut broken = question(50);
    broken["options"] = json!(["1", "1", "2", "3"]);
    let only_broken = json!({ "questions": [broken.clone(), broken.clone(), broken] });
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![
            Scripted::Success(seven_of_ten()),
            Scripted::Success(only_broken.clone()),
            Scripted::Success(only_broken),
        ],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = finished(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(done.attempt, 1, "a shortfall is final");
    let error = done.error.unwrap();
    assert!(
        error.starts_with("Only 7 of 10 questions were valid after 3 attempts: question 8 (\"Testfråga 100: vad är 100 plus ett?\"): expected 4 options, got 3; question 9 "),
        "{error}"
    );
    assert!(
        error.contains("correctIndex 4 is out of range 0..=3"),
        "{error}"
    );
    assert!(
        error.contains("duplicate of another question in this batch"),
        "{error}"
    );
    let stored = stores
        .questions
        .list(&QuestionQuery::default())
        .await
        .unwrap();
    assert!(
        stored.questions.is_empty(),
        "nothing is saved from a failed task"
    );
    assert_eq!(fake.requests().len(), 3);
    assert_clean(&fake);
}

async fn duplicates_of_existing_questions_are_regenerated(stores: Stores) {
    let existing = seed_questions(&stores, "someone-else@example.com", "testkategori", 0, 1).await;
    let mut items: Vec<Value> = (0..9).map(question).collect();
    items.insert(
        2,
        json!({
            "text": format!("{}!", existing[0].text.to_uppercase()),
            "options": ["a", "b", "c", "d"],
            "correctIndex": 1,
            "explanation": "Samma fråga igen.",
            "emoji": "🔁"
        }),
    );
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![
            Scripted::Success(json!({ "questions": items })),
            Scripted::Success(questions(9..10)),
        ],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.result.unwrap()["questionsGenerated"], 10);
    let first_prompt = prompt_of(&fake, 0);
    assert!(
        first_prompt.contains("sparad fråga 0 vad är 0 plus ett"),
        "existing questions are listed to avoid"
    );
    let category = stores
        .questions
        .list(&QuestionQuery {
            category: Some("Testkategori".into()),
            ..QuestionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(category.questions.len(), 11);
    assert_clean(&fake);
}

async fn large_amounts_are_asked_for_in_batches(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![
            Scripted::Success(questions(0..10)),
            Scripted::Success(questions(10..20)),
            Scripted::Success(questions(20..25)),
        ],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(25, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.result.unwrap()["questionsGenerated"], 25);
    assert!(prompt_of(&fake, 0).contains("Write 10 new quiz questions."));
    assert!(prompt_of(&fake, 2).contains("Write 5 new quiz questions."));
    let steps = history.progress(&task.id).await;
    let mut expected = vec![
        (10, "Preparing AI request...".to_owned()),
        (30, "Generating with OpenAI...".to_owned()),
    ];
    expected.extend(received(1..=10, 25));
    expected.extend([
        (46, "Parsed 10 of 25 questions...".to_owned()),
        (46, "Generating with OpenAI (batch 2 of 3)...".to_owned()),
    ]);
    expected.extend(received(11..=20, 25));
    expected.extend([
        (62, "Parsed 20 of 25 questions...".to_owned()),
        (62, "Generating with OpenAI (batch 3 of 3)...".to_owned()),
    ]);
    expected.extend(received(21..=25, 25));
    expected.extend([
        (70, "Parsed 25 of 25 questions...".to_owned()),
        (70, "Saving to database...".to_owned()),
    ]);
    assert_eq!(steps, expected);
    assert_clean(&fake);
}

/// The progress steps of questions `numbers` arriving one by one: through the 30–70 parsing
/// band in proportion to `amount`.
fn received(numbers: std::ops::RangeInclusive<i64>, amount: i64) -> Vec<(i64, String)> {
    numbers
        .map(|n| {
            (
                30 + 40 * n / amount,
                format!("{n} of {amount} questions received"),
            )
        })
        .collect()
}

async fn a_missing_key_fails_with_the_exact_message(stores: Stores) {
    let runtime = start(&stores, providers(None, CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = finished(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(done.attempt, 1);
    assert_eq!(
        done.error.as_deref(),
        Some("API key not configured for provider: openai")
    );
    assert_eq!(
        TaskEvent::for_task(&done).last(),
        Some(&TaskEvent::Error {
            error: "API key not configured for provider: openai".into()
        }),
        "live streams end with the exact message"
    );
}

async fn cancelling_mid_request_aborts_the_http_call(stores: Stores) {
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Hang]).await;
    let runtime = start(&stores, providers(Some(&fake), Duration::from_secs(60)));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    fake.wait_for_requests(1, WAIT)
        .await
        .expect("the request went out");
    stores.tasks.request_cancel(&task.id).await.expect("cancel");
    let done = wait_for(stores.tasks.as_ref(), &task.id, "cancelled", |t| {
        t.status.is_terminal()
    })
    .await;
    assert_eq!(done.status, TaskStatus::Cancelled);
    fake.wait_for_closed_connections(1, WAIT)
        .await
        .expect("the outgoing call was aborted");
    runtime.shutdown().await;
    assert!(stores
        .questions
        .list(&QuestionQuery::default())
        .await
        .unwrap()
        .questions
        .is_empty());
    assert_clean(&fake);
}

async fn bad_params_fail_without_calling_a_provider(stores: Stores) {
    let runtime = start(&stores, providers(None, CALL_TIMEOUT));
    let mut params = generation_params(10, "offline");
    params["amount"] = json!(0);
    let zero = create(&stores, USER, GENERATION, params).await;
    let unknown = create(&stores, USER, GENERATION, generation_params(10, "skynet")).await;
    let zero = finished(stores.tasks.as_ref(), &zero.id).await;
    let unknown = finished(stores.tasks.as_ref(), &unknown.id).await;
    runtime.shutdown().await;
    assert_eq!(zero.status, TaskStatus::Failed);
    assert_eq!(
        zero.error.as_deref(),
        Some("invalid amount: must be a whole number from 1 to 50")
    );
    assert!(unknown
        .error
        .as_deref()
        .unwrap()
        .starts_with("invalid provider: unknown provider \"skynet\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_format_carries_the_schema() {
    for kind in ProviderKind::ALL {
        let stores = crate::support::memory();
        let fake = FakeProvider::start(kind, vec![Scripted::Success(questions(0..3))]).await;
        let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
        let task = create(
            &stores,
            USER,
            GENERATION,
            generation_params(3, kind.as_str()),
        )
        .await;
        let done = completed(stores.tasks.as_ref(), &task.id).await;
        runtime.shutdown().await;
        let result = done.result.unwrap();
        assert_eq!(result["questionsGenerated"], 3, "{kind}");
        assert_eq!(result["provider"], kind.as_str());
        assert_clean(&fake);
    }
}
