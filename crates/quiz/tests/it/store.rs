//! The question store conformance suite: every rule of `QuestionStore`, checked on the memory,
//! SQLite and PostgreSQL backends alike.

use std::collections::HashSet;

use quiz::{
    AgeGroup, Difficulty, NewQuestion, Provenance, QuestionQuery, QuestionStore, QuizError,
    SqliteQuestionStore, ValidationStatus,
};
use task_store::SqliteStore;

use crate::support::{on_every_backend, Stores};

fn new_question(user: &str, category: &str, text: &str) -> NewQuestion {
    NewQuestion {
        user_id: user.to_owned(),
        text: text.to_owned(),
        options: ["Ett".into(), "Två".into(), "Tre".into(), "Fyra".into()],
        correct_index: 2,
        explanation: "Tre är rätt.".into(),
        emoji: "🎯".into(),
        category: category.to_owned(),
        age_group: AgeGroup::Youth,
        difficulty: Difficulty::Hard,
        language: "sv".into(),
        provenance: Provenance {
            task_id: Some("task_1_abcdef".parse().unwrap()),
            provider: "openai".into(),
            model: "gpt-test".into(),
        },
    }
}

async fn insert(store: &dyn QuestionStore, questions: Vec<NewQuestion>) -> Vec<quiz::Question> {
    store.insert_many(questions).await.expect("insert")
}

on_every_backend!(
    inserted_questions_come_back_whole_and_in_order,
    get_many_keeps_the_callers_order_and_the_owner_filter,
    a_batch_with_one_bad_question_writes_nothing,
    lists_are_newest_first_and_pages_cover_everything_once,
    list_filters_combine,
    existing_texts_are_normalised_and_per_category,
    verdicts_and_emojis_update_one_question,
    bad_updates_and_limits_are_refused,
);

async fn inserted_questions_come_back_whole_and_in_order(stores: Stores) {
    let store = stores.questions.as_ref();
    let saved = insert(
        store,
        vec![
            new_question("a", "Historia", "Första?"),
            new_question("a", "Historia", "Andra?"),
        ],
    )
    .await;
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0].text, "Första?");
    assert_eq!(saved[1].text, "Andra?");
    let first = &saved[0];
    assert_eq!(first.validation_status, ValidationStatus::Unvalidated);
    assert_eq!(first.validation_notes, None);
    assert_eq!(first.created_at, first.updated_at);
    assert_eq!(
        first.provenance.task_id.as_ref().unwrap().as_str(),
        "task_1_abcdef"
    );
    let loaded = store
        .get_many(std::slice::from_ref(&first.id), None)
        .await
        .unwrap();
    assert_eq!(loaded, vec![first.clone()], "everything round-trips");
    assert!(insert(store, vec![]).await.is_empty());
}

async fn get_many_keeps_the_callers_order_and_the_owner_filter(stores: Stores) {
    let store = stores.questions.as_ref();
    let mine = insert(
        store,
        vec![new_question("a", "X", "A1?"), new_question("a", "X", "A2?")],
    )
    .await;
    let theirs = insert(store, vec![new_question("b", "X", "B1?")]).await;
    let ids = vec![mine[1].id.clone(), theirs[0].id.clone(), mine[0].id.clone()];
    let all = store.get_many(&ids, None).await.unwrap();
    assert_eq!(
        all.iter().map(|q| q.text.as_str()).collect::<Vec<_>>(),
        ["A2?", "B1?", "A1?"]
    );
    let own = store.get_many(&ids, Some("a")).await.unwrap();
    assert_eq!(
        own.iter().map(|q| q.text.as_str()).collect::<Vec<_>>(),
        ["A2?", "A1?"]
    );
    let unknown = "q_1_abcdef".parse().unwrap();
    assert!(store.get_many(&[unknown], None).await.unwrap().is_empty());
}

async fn a_batch_with_one_bad_question_writes_nothing(stores: Stores) {
    let store = stores.questions.as_ref();
    let mut bad = new_question("a", "X", "Trasig?");
    bad.options[1] = "ett".into();
    match store
        .insert_many(vec![new_question("a", "X", "Hel?"), bad])
        .await
    {
        Err(QuizError::InvalidField {
            field: "options", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let page = store.list(&QuestionQuery::default()).await.unwrap();
    assert!(page.questions.is_empty(), "nothing was written");
}

async fn lists_are_newest_first_and_pages_cover_everything_once(stores: Stores) {
    let store = stores.questions.as_ref();
    for batch in 0..5 {
        let questions = (0..5)
            .map(|i| new_question("a", "X", &format!("Fråga {batch}-{i}?")))
            .collect();
        insert(store, questions).await;
    }
    let everything = store.list(&QuestionQuery::default()).await.unwrap();
    assert_eq!(everything.questions.len(), 25);
    assert_eq!(everything.next, None);
    let keys: Vec<_> = everything
        .questions
        .iter()
        .map(|q| (q.created_at, q.id.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first, then id descending");

    let mut seen = Vec::new();
    let mut query = QuestionQuery {
        limit: 7,
        ..QuestionQuery::default()
    };
    loop {
        let page = store.list(&query).await.unwrap();
        assert!(page.questions.len() <= 7);
        seen.extend(page.questions.iter().map(|q| q.id.clone()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let expected: Vec<_> = keys.into_iter().map(|(_, id)| id).collect();
    assert_eq!(seen, expected, "pages concatenate to the full list");
    let exact = store
        .list(&QuestionQuery {
            limit: 25,
            ..QuestionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(exact.next, None, "no next page when nothing is left");
}

async fn list_filters_combine(stores: Stores) {
    let store = stores.questions.as_ref();
    let mut easy = new_question("a", "Historia", "Vem grundade Stockholm?");
    easy.difficulty = Difficulty::Easy;
    let mut child = new_question("a", "historia", "Vilken kung hette Gustav?");
    child.age_group = AgeGroup::Children;
    let other_owner = new_question("b", "Historia", "Vem var Sveriges förste kung?");
    let other_category = new_question("a", "Geografi", "Var ligger Å i Lofoten?");
    let saved = insert(store, vec![easy, child, other_owner, other_category]).await;
    store
        .update_verdict(
            &saved[1].id,
            ValidationStatus::Invalid,
            Some("Oklar.".into()),
        )
        .await
        .unwrap();

    let texts = |query: QuestionQuery| async move {
        let mut texts: Vec<String> = store
            .list(&query)
            .await
            .unwrap()
            .questions
            .into_iter()
            .map(|q| q.text)
            .collect();
        texts.sort();
        texts
    };
    let q = QuestionQuery::default;
    assert_eq!(
        texts(QuestionQuery {
            owner: Some("b".into()),
            ..q()
        })
        .await,
        ["Vem var Sveriges förste kung?"]
    );
    assert_eq!(
        texts(QuestionQuery {
            category: Some(" HISTORIA ".into()),
            owner: Some("a".into()),
            ..q()
        })
        .await,
        ["Vem grundade Stockholm?", "Vilken kung hette Gustav?"],
        "categories match case-insensitively"
    );
    assert_eq!(
        texts(QuestionQuery {
            difficulty: Some(Difficulty::Easy),
            ..q()
        })
        .await,
        ["Vem grundade Stockholm?"]
    );
    assert_eq!(
        texts(QuestionQuery {
            age_group: Some(AgeGroup::Children),
            ..q()
        })
        .await,
        ["Vilken kung hette Gustav?"]
    );
    assert_eq!(
        texts(QuestionQuery {
            validation_status: Some(ValidationStatus::Invalid),
            ..q()
        })
        .await,
        ["Vilken kung hette Gustav?"]
    );
    assert_eq!(
        texts(QuestionQuery {
            search: Some("KUNG".into()),
            ..q()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        texts(QuestionQuery {
            search: Some("å i lofoten".into()),
            ..q()
        })
        .await,
        ["Var ligger Å i Lofoten?"]
    );
    assert_eq!(
        texts(QuestionQuery {
            search: Some("?!".into()),
            ..q()
        })
        .await
        .len(),
        4,
        "punctuation filters nothing"
    );
    assert_eq!(
        texts(QuestionQuery {
            search: Some("kung".into()),
            owner: Some("a".into()),
            ..q()
        })
        .await,
        ["Vilken kung hette Gustav?"]
    );
}

async fn existing_texts_are_normalised_and_per_category(stores: Stores) {
    let store = stores.questions.as_ref();
    insert(
        store,
        vec![
            new_question("a", "Musik", "Vem skrev  'Waterloo'?"),
            new_question("b", "musik", "Hur många strängar har en gitarr?"),
            new_question("a", "Sport", "Vem vann?"),
        ],
    )
    .await;
    let texts = store.existing_texts("MUSIK").await.unwrap();
    let expected: HashSet<String> = ["vem skrev waterloo", "hur många strängar har en gitarr"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(texts, expected, "every owner's questions count");
    assert!(store.existing_texts("Natur").await.unwrap().is_empty());
}

async fn verdicts_and_emojis_update_one_question(stores: Stores) {
    let store = stores.questions.as_ref();
    let saved = insert(
        store,
        vec![
            new_question("a", "X", "Ett?"),
            new_question("a", "X", "Två?"),
        ],
    )
    .await;
    let judged = store
        .update_verdict(
            &saved[0].id,
            ValidationStatus::Valid,
            Some("Stämmer.".into()),
        )
        .await
        .unwrap();
    assert_eq!(judged.validation_status, ValidationStatus::Valid);
    assert_eq!(judged.validation_notes.as_deref(), Some("Stämmer."));
    assert!(judged.updated_at >= saved[0].updated_at);
    let cleared = store
        .update_verdict(&saved[0].id, ValidationStatus::Invalid, None)
        .await
        .unwrap();
    assert_eq!(cleared.validation_notes, None);
    let emoji = store.update_emoji(&saved[0].id, "🇸🇪").await.unwrap();
    assert_eq!(emoji.emoji, "🇸🇪");
    assert_eq!(
        emoji.validation_status,
        ValidationStatus::Invalid,
        "other fields stay"
    );
    let untouched = store.get_many(&[saved[1].id.clone()], None).await.unwrap();
    assert_eq!(untouched, vec![saved[1].clone()]);
}

async fn bad_updates_and_limits_are_refused(stores: Stores) {
    let store = stores.questions.as_ref();
    let saved = insert(store, vec![new_question("a", "X", "Ett?")]).await;
    let unknown = "q_1_abcdef".parse().unwrap();
    assert!(matches!(
        store.update_verdict(&unknown, ValidationStatus::Valid, None).await,
        Err(QuizError::NotFound(id)) if id == "q_1_abcdef"
    ));
    assert!(matches!(
        store.update_emoji(&unknown, "🎯").await,
        Err(QuizError::NotFound(_))
    ));
    assert!(matches!(
        store.update_emoji(&saved[0].id, "smile").await,
        Err(QuizError::InvalidField { field: "emoji", .. })
    ));
    assert!(matches!(
        store
            .update_verdict(
                &saved[0].id,
                ValidationStatus::Valid,
                Some("x".repeat(2001))
            )
            .await,
        Err(QuizError::InvalidField {
            field: "validationNotes",
            ..
        })
    ));
    for limit in [0, 1001] {
        assert!(matches!(
            store
                .list(&QuestionQuery {
                    limit,
                    ..QuestionQuery::default()
                })
                .await,
            Err(QuizError::InvalidField { field: "limit", .. })
        ));
    }
    assert_eq!(
        store.get_many(&[saved[0].id.clone()], None).await.unwrap(),
        saved,
        "nothing changed"
    );
}

#[tokio::test]
async fn sqlite_questions_survive_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasklane.db");
    let saved = {
        let tasks = SqliteStore::open(&path).unwrap();
        tasks
            .apply_migrations(&[&quiz::SQLITE_MIGRATIONS])
            .await
            .unwrap();
        let store = SqliteQuestionStore::new(tasks);
        insert(&store, vec![new_question("a", "X", "Beständig?")]).await
    };
    let reopened = SqliteQuestionStore::new(SqliteStore::open(&path).unwrap());
    assert_eq!(
        reopened
            .get_many(&[saved[0].id.clone()], None)
            .await
            .unwrap(),
        saved
    );
}

#[tokio::test]
async fn postgres_questions_are_shared_by_every_instance_on_the_schema() {
    let Some(stores) = crate::postgres::postgres().await else {
        return;
    };
    let saved = insert(
        stores.questions.as_ref(),
        vec![new_question("a", "X", "Delad?")],
    )
    .await;
    let other = crate::postgres::another_instance(&stores).await;
    assert_eq!(
        other.get_many(&[saved[0].id.clone()], None).await.unwrap(),
        saved
    );
}
