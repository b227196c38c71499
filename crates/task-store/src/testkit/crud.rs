//! Cases: creating and reading tasks.

use serde_json::json;
use task_core::{CoreError, NewTask, TaskId, TaskStatus};

use super::support::{assert_quiet, create, new_task, now_ms, Store};
use crate::{ListQuery, StoreError};

/// `create` stores a `pending` task with version 1, attempt 0 and `run_at` now, and `get`
/// returns exactly what `create` returned.
pub async fn create_sets_documented_defaults(store: Store) {
    let before = now_ms();
    let task = store
        .create(
            NewTask::new("ada@example.com", "generation")
                .with_label("10 questions about Historia")
                .with_description("Queued")
                .with_params(json!({"count": 10, "topic": "Historia"}))
                .with_max_attempts(5),
        )
        .await
        .expect("create");
    let after = now_ms();
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.user_id, "ada@example.com");
    assert_eq!(task.task_type, "generation");
    assert_eq!(task.label.as_deref(), Some("10 questions about Historia"));
    assert_eq!(task.description.as_deref(), Some("Queued"));
    assert_eq!(task.params, json!({"count": 10, "topic": "Historia"}));
    assert_eq!((task.progress, task.total), (0, 100));
    assert_eq!((task.attempt, task.max_attempts, task.version), (0, 5, 1));
    assert!((before..=after).contains(&task.created_at));
    assert_eq!(task.run_at, task.created_at);
    assert_eq!(task.updated_at, task.created_at);
    assert!(task.result.is_none() && task.error.is_none());
    assert!(task.lease_owner.is_none() && task.lease_token.is_none());
    assert!(task.lease_expires_at.is_none() && !task.cancel_requested);
    assert!(task.started_at.is_none() && task.completed_at.is_none());
    assert_eq!(task.id.created_at(), task.created_at);
    assert_eq!(store.get(&task.id).await.expect("get"), task);

    let delayed = store
        .create(new_task("ada@example.com", "generation").with_run_at(after + 60_000))
        .await
        .expect("create delayed");
    assert_eq!(delayed.run_at, after + 60_000);
    assert_ne!(delayed.id, task.id);
}

/// Invalid input fails with `Invalid` naming the field, and nothing is stored or published.
pub async fn create_rejects_invalid_input_and_writes_nothing(store: Store) {
    let mut feed = store.subscribe();
    let mut zero_total = new_task("a@example.com", "generation");
    zero_total.total = 0;
    let cases = [
        (new_task(" ", "generation"), "user_id"),
        (new_task("a@example.com", "Not A Type"), "task_type"),
        (
            new_task("a@example.com", "generation").with_label("x".repeat(201)),
            "label",
        ),
        (
            new_task("a@example.com", "generation").with_max_attempts(0),
            "max_attempts",
        ),
        (
            new_task("a@example.com", "generation").with_run_at(-1),
            "run_at",
        ),
        (zero_total, "total"),
    ];
    for (new, field) in cases {
        match store.create(new).await {
            Err(StoreError::Invalid(CoreError::InvalidField { field: got, .. })) => {
                assert_eq!(got, field)
            }
            other => panic!("{field}: expected Invalid, got {other:?}"),
        }
    }
    let page = store.list(&ListQuery::default()).await.expect("list");
    assert!(page.tasks.is_empty(), "nothing was stored");
    assert_quiet(&mut feed);
}

/// `create_many` returns the tasks in input order; one bad task rejects the whole batch.
pub async fn create_many_is_all_or_nothing(store: Store) {
    assert!(store
        .create_many(Vec::new())
        .await
        .expect("empty")
        .is_empty());
    let batch: Vec<NewTask> = (0..5)
        .map(|i| new_task("b@example.com", "generation").with_label(format!("task {i}")))
        .collect();
    let created = store.create_many(batch).await.expect("create_many");
    let labels: Vec<_> = created.iter().map(|t| t.label.clone().unwrap()).collect();
    assert_eq!(labels, ["task 0", "task 1", "task 2", "task 3", "task 4"]);
    for task in &created {
        assert_eq!(store.get(&task.id).await.expect("get"), *task);
        assert_eq!(task.version, 1);
    }

    let mut feed = store.subscribe();
    let bad = vec![
        new_task("b@example.com", "generation"),
        new_task("b@example.com", "BAD"),
    ];
    assert!(matches!(
        store.create_many(bad).await,
        Err(StoreError::Invalid(_))
    ));
    let page = store.list(&ListQuery::default()).await.expect("list");
    assert_eq!(page.tasks.len(), 5, "the bad batch stored nothing");
    assert_quiet(&mut feed);
}

/// An id nobody created is `NotFound`.
pub async fn get_unknown_task_is_not_found(store: Store) {
    create(&store, "c@example.com", "generation").await;
    let unknown: TaskId = "task_1_abcdef".parse().expect("id");
    assert_eq!(store.get(&unknown).await, Err(StoreError::NotFound));
}

/// `ping` succeeds on a working store.
pub async fn ping_answers(store: Store) {
    store.ping().await.expect("ping");
}
