//! The offline provider end to end, with no delay: generation, validation and emoji
//! regeneration all complete from the built-in bank and say `"provider":"offline"`.

use std::collections::HashSet;

use quiz::{QuestionQuery, EMOJI_REGENERATION, GENERATION, VALIDATION};
use serde_json::{json, Value};

use crate::support::{
    completed, create, on_both_backends, providers, start, Stores, CALL_TIMEOUT, USER,
};

on_both_backends!(
    offline_generation_validation_and_emojis_work_end_to_end,
    repeated_offline_runs_never_repeat_a_question
);

fn params(category: &str, amount: usize) -> Value {
    json!({"amount": amount, "category": category, "ageGroup": "youth", "difficulty": "medium", "provider": "offline"})
}

async fn offline_generation_validation_and_emojis_work_end_to_end(stores: Stores) {
    let runtime = start(&stores, providers(None, CALL_TIMEOUT));
    let generated = create(&stores, USER, GENERATION, params("Historia", 10)).await;
    let generated = completed(stores.tasks.as_ref(), &generated.id)
        .await
        .result
        .unwrap();
    assert_eq!(generated["provider"], "offline");
    assert_eq!(generated["questionsGenerated"], 10);
    let ids: Vec<Value> = generated["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].clone())
        .collect();
    assert!(
        generated["questions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| !q["text"].as_str().unwrap().starts_with("[Offline")),
        "a bank category is served real questions"
    );

    let validated = create(
        &stores,
        USER,
        VALIDATION,
        json!({"questionIds": ids, "provider": "offline"}),
    )
    .await;
    let validated = completed(stores.tasks.as_ref(), &validated.id)
        .await
        .result
        .unwrap();
    assert_eq!(
        (validated["validated"].clone(), validated["valid"].clone()),
        (json!(10), json!(10)),
        "bank answers check out"
    );
    assert_eq!(validated["provider"], "offline");

    let emojis = create(
        &stores,
        USER,
        EMOJI_REGENERATION,
        json!({"questionIds": ids, "provider": "offline"}),
    )
    .await;
    let emojis = completed(stores.tasks.as_ref(), &emojis.id)
        .await
        .result
        .unwrap();
    assert_eq!(emojis["updated"], 10);
    for change in emojis["emojis"].as_array().unwrap() {
        assert_ne!(change["oldEmoji"], change["newEmoji"]);
    }

    let synthetic = create(&stores, USER, GENERATION, params("Rymdkatter", 3)).await;
    let synthetic = completed(stores.tasks.as_ref(), &synthetic.id)
        .await
        .result
        .unwrap();
    for question in synthetic["questions"].as_array().unwrap() {
        assert!(
            question["text"].as_str().unwrap().contains("Rymdkatter"),
            "{question}"
        );
    }
    runtime.shutdown().await;
}

async fn repeated_offline_runs_never_repeat_a_question(stores: Stores) {
    let runtime = start(&stores, providers(None, CALL_TIMEOUT));
    for _ in 0..3 {
        let task = create(&stores, USER, GENERATION, params("Sport", 10)).await;
        completed(stores.tasks.as_ref(), &task.id).await;
    }
    runtime.shutdown().await;
    let all = stores
        .questions
        .list(&QuestionQuery::default())
        .await
        .unwrap()
        .questions;
    assert_eq!(all.len(), 30);
    let texts: HashSet<String> = all
        .iter()
        .map(|q| quiz::rules::normalize_text(&q.text))
        .collect();
    assert_eq!(texts.len(), 30, "every question is new");
}
