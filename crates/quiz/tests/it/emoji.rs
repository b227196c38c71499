//! The `emoji-regeneration` handler through the real runtime: new emojis stored, unusable ones
//! asked for again, and the old and new emoji reported.

use quiz::EMOJI_REGENERATION;
use serde_json::json;
use task_core::TaskStatus;
use test_support::{FakeProvider, ProviderKind, Scripted};

use crate::support::{
    assert_clean, completed, create, finished, on_both_backends, prompt_of, providers,
    seed_questions, start, History, Stores, CALL_TIMEOUT, USER,
};

on_both_backends!(
    new_emojis_replace_the_old_ones,
    emojis_that_never_become_usable_fail_the_task
);

async fn new_emojis_replace_the_old_ones(stores: Stores) {
    let seeded = seed_questions(&stores, USER, "Matte", 0, 3).await;
    let first = json!({"emojis": [
        {"questionId": seeded[0].id, "emoji": " ➕ "},
        {"questionId": seeded[1].id, "emoji": "🔢"},
        {"questionId": seeded[2].id, "emoji": "plus"},
    ]});
    let second = json!({"emojis": [
        {"questionId": seeded[1].id, "emoji": "🧮"},
        {"questionId": seeded[2].id, "emoji": "🟰"},
    ]});
    let fake = FakeProvider::start(
        ProviderKind::Anthropic,
        vec![Scripted::Success(first), Scripted::Success(second)],
    )
    .await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let ids: Vec<&str> = seeded.iter().map(|q| q.id.as_str()).collect();
    let task = create(
        &stores,
        USER,
        EMOJI_REGENERATION,
        json!({"questionIds": ids, "provider": "anthropic"}),
    )
    .await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;

    let result = done.result.unwrap();
    assert_eq!(result["updated"], 3);
    assert_eq!(result["provider"], "anthropic");
    let changes: Vec<(String, String)> = result["emojis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["oldEmoji"].as_str().unwrap().to_owned(),
                e["newEmoji"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected =
        [("🔢", "➕"), ("🔢", "🧮"), ("🔢", "🟰")].map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(changes, expected);
    let ids: Vec<_> = seeded.iter().map(|q| q.id.clone()).collect();
    let stored: Vec<String> = stores
        .questions
        .get_many(&ids, None)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.emoji)
        .collect();
    assert_eq!(stored, ["➕", "🧮", "🟰"]);
    assert!(
        prompt_of(&fake, 1).contains("\\\"currentEmoji\\\": \\\"🔢\\\""),
        "the current emoji is shown"
    );
    let steps = history.progress(&task.id).await;
    assert_eq!(
        steps[1],
        (30, "Choosing emojis with Anthropic...".to_owned())
    );
    assert_eq!(
        steps.last().unwrap(),
        &(70, "Updated emoji 3 of 3...".to_owned())
    );
    assert_clean(&fake);
}

async fn emojis_that_never_become_usable_fail_the_task(stores: Stores) {
    let seeded = seed_questions(&stores, USER, "Matte", 0, 2).await;
    let answer = json!({"emojis": [
        {"questionId": seeded[0].id, "emoji": "✅"},
        {"questionId": seeded[1].id, "emoji": "none"},
    ]});
    let retry = json!({"emojis": [{"questionId": seeded[1].id, "emoji": "none"}]});
    let fake = FakeProvider::start(
        ProviderKind::Gemini,
        vec![
            Scripted::Success(answer),
            Scripted::Success(retry.clone()),
            Scripted::Success(retry),
        ],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let ids: Vec<&str> = seeded.iter().map(|q| q.id.as_str()).collect();
    let task = create(
        &stores,
        USER,
        EMOJI_REGENERATION,
        json!({"questionIds": ids, "provider": "gemini"}),
    )
    .await;
    let done = finished(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.status, TaskStatus::Failed);
    assert_eq!(
        done.error.unwrap(),
        format!(
            "Only 1 of 2 questions were given a new emoji after 3 attempts: {id}: \"none\" is not a short emoji; {id}: \"none\" is not a short emoji; {id}: \"none\" is not a short emoji",
            id = seeded[1].id
        )
    );
    let kept = stores
        .questions
        .get_many(&[seeded[0].id.clone()], None)
        .await
        .unwrap();
    assert_eq!(
        kept[0].emoji, "✅",
        "answers applied before the failure stay"
    );
    assert_clean(&fake);
}
