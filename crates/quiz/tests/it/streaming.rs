//! Generation over streamed answers, through the real runtime against the fake providers: each
//! provider's stream, a stream cut mid-question (the error says how many questions were kept),
//! a stalled stream ended by the idle timeout, extra questions dropped, and the usage recorded.

use std::time::Duration;

use quiz::GENERATION;
use serde_json::json;
use task_core::TaskStatus;
use test_support::{FakeProvider, ProviderKind, Scripted, StreamPlan};

use crate::support::{
    assert_clean, completed, create, generation_params, on_both_backends, prompt_of, providers,
    providers_with, questions, start, History, Stores, CALL_TIMEOUT, USER,
};

on_both_backends!(
    every_provider_streams_questions_into_the_task,
    a_stream_cut_mid_question_retries_and_says_how_many_were_kept,
    a_stalled_stream_ends_at_the_idle_timeout_and_is_retried,
    questions_beyond_the_request_are_dropped,
);

async fn every_provider_streams_questions_into_the_task(stores: Stores) {
    for (round, kind) in ProviderKind::ALL.into_iter().enumerate() {
        // New questions each round: the category keeps the earlier rounds' questions.
        let plan = StreamPlan::new(questions(round * 5..round * 5 + 5)).with_garbage();
        let fake = FakeProvider::start(kind, vec![Scripted::Stream(plan)]).await;
        let history = History::record(stores.tasks.as_ref());
        let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
        let task = create(
            &stores,
            USER,
            GENERATION,
            generation_params(5, kind.as_str()),
        )
        .await;
        let done = completed(stores.tasks.as_ref(), &task.id).await;
        runtime.shutdown().await;
        let result = done.result.unwrap();
        assert_eq!(result["questionsGenerated"], 5, "{kind}");
        assert_eq!(
            result["usage"],
            json!({"inputTokens": 42, "outputTokens": 17}),
            "{kind}"
        );
        let steps = history.progress(&task.id).await;
        for n in 1..=5 {
            let step = (30 + 40 * n / 5, format!("{n} of 5 questions received"));
            assert!(steps.contains(&step), "{kind}: {step:?} not in {steps:?}");
        }
        assert_clean(&fake);
    }
}

async fn a_stream_cut_mid_question_retries_and_says_how_many_were_kept(stores: Stores) {
    let plan = StreamPlan::new(questions(0..10)).cut_in_item(4);
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Stream(plan), Scripted::Success(questions(0..10))],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "openai")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 2);
    assert_eq!(done.result.unwrap()["questionsGenerated"], 10);
    let states = history.of(&task.id).await;
    let first_attempt: Vec<_> = states.iter().filter(|t| t.attempt == 1).collect();
    assert!(first_attempt
        .iter()
        .any(|t| t.description.as_deref() == Some("4 of 10 questions received")));
    assert!(!first_attempt
        .iter()
        .any(|t| t.description.as_deref() == Some("5 of 10 questions received")));
    let retried = states
        .iter()
        .find(|t| t.status == TaskStatus::Pending && t.attempt == 1)
        .expect("a retry");
    let error = retried.error.clone().unwrap();
    assert!(error.contains("temporarily unavailable"), "{error}");
    assert!(
        error.contains("4 of 10 questions were received and checked before it"),
        "{error}"
    );
    // The retry kept the four stored in the task's event log and asked for the other six.
    assert!(states
        .iter()
        .any(|t| t.description.as_deref()
            == Some("Kept 4 of 10 questions from the previous attempt")));
    assert!(prompt_of(&fake, 1).contains("Write 6 new quiz questions."));
    let events = stores.events.events_after(&task.id, 0).await.unwrap();
    let attempts: Vec<(i64, i64)> = events.iter().map(|e| (e.seq, e.attempt)).collect();
    let expected: Vec<(i64, i64)> = (1..=10)
        .map(|seq| (seq, if seq <= 4 { 1 } else { 2 }))
        .collect();
    assert_eq!(attempts, expected);
    let expected_questions = questions(0..10);
    assert_eq!(events[0].item, expected_questions["questions"][0]);
    assert_clean(&fake);
}

async fn a_stalled_stream_ends_at_the_idle_timeout_and_is_retried(stores: Stores) {
    let plan = StreamPlan::new(questions(0..10)).stall_in_item(2);
    let fake = FakeProvider::start(
        ProviderKind::Anthropic,
        vec![Scripted::Stream(plan), Scripted::Success(questions(0..10))],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let providers = providers_with(Some(&fake), CALL_TIMEOUT, Duration::from_millis(300));
    let runtime = start(&stores, providers);
    let task = create(
        &stores,
        USER,
        GENERATION,
        generation_params(10, "anthropic"),
    )
    .await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.attempt, 2);
    let states = history.of(&task.id).await;
    let error = states
        .iter()
        .find(|t| t.status == TaskStatus::Pending && t.attempt == 1)
        .and_then(|t| t.error.clone())
        .expect("a retry with an error");
    assert!(error.contains("idle timeout"), "{error}");
    assert!(error.contains("2 of 10 questions"), "{error}");
    assert_clean(&fake);
}

async fn questions_beyond_the_request_are_dropped(stores: Stores) {
    let fake = FakeProvider::start(
        ProviderKind::Gemini,
        vec![Scripted::Stream(StreamPlan::new(questions(0..13)))],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(&stores, USER, GENERATION, generation_params(10, "gemini")).await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    let result = done.result.unwrap();
    assert_eq!(result["questionsGenerated"], 10);
    let texts: Vec<&str> = result["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap())
        .collect();
    let expected = questions(0..10);
    let wanted: Vec<&str> = expected["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, wanted);
    assert_eq!(fake.requests().len(), 1);
}
