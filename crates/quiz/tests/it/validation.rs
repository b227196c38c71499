//! The `validation` handler through the real runtime: verdicts stored per question with
//! progress, missing answers asked for again, owners and superusers, and category selection.

use quiz::{QuestionQuery, ValidationStatus, VALIDATION};
use serde_json::json;
use task_core::TaskStatus;
use task_store::Role;
use test_support::{FakeProvider, ProviderKind, Scripted};

use crate::support::{
    assert_clean, completed, create, finished, on_both_backends, prompt_of, providers,
    seed_questions, start, History, Stores, CALL_TIMEOUT, USER,
};

on_both_backends!(
    verdicts_are_stored_with_progress_per_question,
    questions_without_a_usable_verdict_are_asked_about_again,
    only_superusers_validate_other_peoples_questions,
    a_category_selects_the_owners_questions,
);

async fn verdicts_are_stored_with_progress_per_question(stores: Stores) {
    let seeded = seed_questions(&stores, USER, "Matte", 0, 3).await;
    let verdicts = json!({"verdicts": [
        {"questionId": seeded[0].id, "valid": true, "notes": "Stämmer."},
        {"questionId": seeded[1].id, "valid": false, "notes": "Fel svar markerat."},
        {"questionId": seeded[2].id, "valid": true, "notes": ""},
    ]});
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Success(verdicts)]).await;
    let history = History::record(stores.tasks.as_ref());
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let ids: Vec<&str> = seeded.iter().map(|q| q.id.as_str()).collect();
    let task = create(
        &stores,
        USER,
        VALIDATION,
        json!({"questionIds": ids, "provider": "openai"}),
    )
    .await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;

    let result = done.result.unwrap();
    assert_eq!(
        (
            result["validated"].clone(),
            result["valid"].clone(),
            result["invalid"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(result["details"][1]["questionId"], seeded[1].id.as_str());
    assert_eq!(result["details"][1]["validationStatus"], "invalid");
    assert_eq!(result["details"][1]["notes"], "Fel svar markerat.");
    assert_eq!(
        history.progress(&task.id).await,
        [
            (10, "Preparing AI request...".to_owned()),
            (30, "Validating with OpenAI...".to_owned()),
            (43, "Validated 1 of 3 questions...".to_owned()),
            (56, "Validated 2 of 3 questions...".to_owned()),
            (70, "Validated 3 of 3 questions...".to_owned()),
        ]
    );
    let ids: Vec<_> = seeded.iter().map(|q| q.id.clone()).collect();
    let stored = stores.questions.get_many(&ids, None).await.unwrap();
    let statuses: Vec<_> = stored.iter().map(|q| q.validation_status).collect();
    assert_eq!(
        statuses,
        [
            ValidationStatus::Valid,
            ValidationStatus::Invalid,
            ValidationStatus::Valid
        ]
    );
    assert_eq!(stored[0].validation_notes.as_deref(), Some("Stämmer."));
    assert_eq!(stored[2].validation_notes, None, "empty notes are no notes");
    assert_clean(&fake);
}

async fn questions_without_a_usable_verdict_are_asked_about_again(stores: Stores) {
    let seeded = seed_questions(&stores, USER, "Matte", 0, 3).await;
    let first = json!({"verdicts": [
        {"questionId": seeded[0].id, "valid": true, "notes": "Ok."},
        {"questionId": "q_1_unknown", "valid": true, "notes": "Ok."},
    ]});
    let second = json!({"verdicts": [
        {"questionId": seeded[2].id, "valid": false, "notes": "Tvetydig."},
        {"questionId": seeded[1].id, "valid": true, "notes": "Ok."},
    ]});
    let fake = FakeProvider::start(
        ProviderKind::OpenAi,
        vec![Scripted::Success(first), Scripted::Success(second)],
    )
    .await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let ids: Vec<&str> = seeded.iter().map(|q| q.id.as_str()).collect();
    let task = create(
        &stores,
        USER,
        VALIDATION,
        json!({"questionIds": ids, "provider": "openai"}),
    )
    .await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    let result = done.result.unwrap();
    assert_eq!(result["validated"], 3);
    let order: Vec<&str> = result["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["questionId"].as_str().unwrap())
        .collect();
    assert_eq!(order, ids, "details keep the order of the request");
    let again = prompt_of(&fake, 1);
    assert!(
        !again.contains(seeded[0].id.as_str()),
        "a judged question is not sent again"
    );
    assert!(again.contains(seeded[1].id.as_str()) && again.contains(seeded[2].id.as_str()));
    assert_clean(&fake);
}

async fn only_superusers_validate_other_peoples_questions(stores: Stores) {
    let theirs = seed_questions(&stores, "other@example.com", "Matte", 0, 1).await;
    let verdict =
        json!({"verdicts": [{"questionId": theirs[0].id, "valid": true, "notes": "Ok."}]});
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Success(verdict)]).await;
    stores
        .users
        .create_user("admin@example.com", Role::Superuser)
        .await
        .unwrap();
    stores.users.create_user(USER, Role::User).await.unwrap();
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let params = json!({"questionIds": [theirs[0].id], "provider": "openai"});
    let refused = create(&stores, USER, VALIDATION, params.clone()).await;
    let refused = finished(stores.tasks.as_ref(), &refused.id).await;
    assert_eq!(refused.status, TaskStatus::Failed);
    assert_eq!(
        refused.error.unwrap(),
        format!("Questions not found: {}", theirs[0].id)
    );
    assert!(
        fake.requests().is_empty(),
        "nothing was sent for a refused task"
    );
    let allowed = create(&stores, "admin@example.com", VALIDATION, params).await;
    completed(stores.tasks.as_ref(), &allowed.id).await;
    runtime.shutdown().await;
    let stored = stores
        .questions
        .get_many(&[theirs[0].id.clone()], None)
        .await
        .unwrap();
    assert_eq!(stored[0].validation_status, ValidationStatus::Valid);
    assert_clean(&fake);
}

async fn a_category_selects_the_owners_questions(stores: Stores) {
    let mine = seed_questions(&stores, USER, "Sport", 0, 2).await;
    seed_questions(&stores, "other@example.com", "Sport", 10, 1).await;
    seed_questions(&stores, USER, "Musik", 20, 1).await;
    let verdicts = json!({"verdicts": [
        {"questionId": mine[0].id, "valid": true, "notes": "Ok."},
        {"questionId": mine[1].id, "valid": true, "notes": "Ok."},
    ]});
    let fake = FakeProvider::start(ProviderKind::OpenAi, vec![Scripted::Success(verdicts)]).await;
    let runtime = start(&stores, providers(Some(&fake), CALL_TIMEOUT));
    let task = create(
        &stores,
        USER,
        VALIDATION,
        json!({"category": "sport", "provider": "openai"}),
    )
    .await;
    let done = completed(stores.tasks.as_ref(), &task.id).await;
    runtime.shutdown().await;
    assert_eq!(done.result.unwrap()["validated"], 2);
    let valid = stores
        .questions
        .list(&QuestionQuery {
            validation_status: Some(ValidationStatus::Valid),
            ..QuestionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(valid.questions.len(), 2);
    assert!(valid
        .questions
        .iter()
        .all(|q| q.user_id == USER && q.category == "Sport"));
    assert_clean(&fake);
}
