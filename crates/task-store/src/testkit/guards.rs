//! Cases: guarded creation (idempotency keys and unique keys, issue #19).

use std::sync::Arc;

use task_core::TaskStatus;

use super::support::{assert_quiet, expect_err, new_task, next_change, Store};
use crate::{
    CreateGuard, Guarded as Outcome, GuardedWorkflow, IdempotencyClaim, ListQuery, StoreError,
    TaskChange, DEFAULT_IDEMPOTENCY_WINDOW_MS, MAX_GUARD_KEY_BYTES,
};

fn keyed(key: &str, fingerprint: &str) -> CreateGuard {
    CreateGuard {
        idempotency: Some(IdempotencyClaim {
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            window_ms: DEFAULT_IDEMPOTENCY_WINDOW_MS,
        }),
        unique_key: None,
    }
}

fn unique(key: &str) -> CreateGuard {
    CreateGuard {
        idempotency: None,
        unique_key: Some(key.to_owned()),
    }
}

async fn tasks_of(store: &Store, user: &str) -> usize {
    store
        .list(&ListQuery {
            user_id: Some(user.to_owned()),
            ..ListQuery::default()
        })
        .await
        .expect("list")
        .tasks
        .len()
}

/// The same key and fingerprint from the same user replays the first answer (the task as it
/// was then) and writes nothing; another fingerprint is `KeyReused`; another user, or another
/// key, creates.
pub async fn idempotency_keys_replay_the_first_answer(store: Store) {
    let mut feed = store.subscribe();
    let first = match store
        .create_guarded(new_task("ada@example.com", "generation"), keyed("k1", "f1"))
        .await
        .expect("first create")
    {
        Outcome::Created(task) => task,
        other => panic!("expected Created, got {other:?}"),
    };
    assert!(matches!(next_change(&mut feed).await, TaskChange::Upserted(t) if t.id == first.id));
    // The task moves on; the replay still answers with the task as first returned.
    store.request_cancel(&first.id).await.expect("cancel");
    next_change(&mut feed).await;
    let replay = store
        .create_guarded(new_task("ada@example.com", "generation"), keyed("k1", "f1"))
        .await
        .expect("replay");
    assert_eq!(
        replay,
        Outcome::Replayed {
            task: first.clone(),
            created: true
        }
    );
    let reused = store
        .create_guarded(new_task("ada@example.com", "generation"), keyed("k1", "f2"))
        .await
        .expect("reused key");
    assert_eq!(reused, Outcome::KeyReused);
    assert_quiet(&mut feed);
    assert_eq!(tasks_of(&store, "ada@example.com").await, 1);

    let other_user = store
        .create_guarded(new_task("bob@example.com", "generation"), keyed("k1", "f2"))
        .await
        .expect("other user");
    assert!(matches!(other_user, Outcome::Created(ref t) if t.user_id == "bob@example.com"));
    let other_key = store
        .create_guarded(new_task("ada@example.com", "generation"), keyed("k2", "f1"))
        .await
        .expect("other key");
    assert!(matches!(other_key, Outcome::Created(ref t) if t.id != first.id));
}

/// A key older than its window is forgotten: the request creates a new task and the key now
/// answers with that one.
pub async fn idempotency_keys_expire_after_their_window(store: Store) {
    let mut guard = keyed("k", "f");
    let first = store
        .create_guarded(new_task("ada@example.com", "noop"), guard.clone())
        .await
        .expect("first");
    if let Some(claim) = guard.idempotency.as_mut() {
        claim.window_ms = 0;
    }
    let second = store
        .create_guarded(new_task("ada@example.com", "noop"), guard)
        .await
        .expect("after the window");
    let (Outcome::Created(first), Outcome::Created(second)) = (first, second) else {
        panic!("both requests must create");
    };
    assert_ne!(first.id, second.id);
    let replay = store
        .create_guarded(new_task("ada@example.com", "noop"), keyed("k", "f"))
        .await
        .expect("replay");
    assert_eq!(
        replay,
        Outcome::Replayed {
            task: second,
            created: true
        }
    );
}

/// While a task with a unique key is unfinished (pending or processing), a create with that key
/// returns it; once it is finished, the key creates again. Keys are per user.
pub async fn unique_keys_return_the_unfinished_task(store: Store) {
    let Outcome::Created(first) = store
        .create_guarded(new_task("ada@example.com", "noop"), unique("daily"))
        .await
        .expect("first")
    else {
        panic!("the first create must create");
    };
    let again = store
        .create_guarded(new_task("ada@example.com", "noop"), unique("daily"))
        .await
        .expect("again");
    assert_eq!(again, Outcome::Existing(first.clone()));
    let bob = store
        .create_guarded(new_task("bob@example.com", "noop"), unique("daily"))
        .await
        .expect("bob");
    assert!(matches!(bob, Outcome::Created(_)));

    let cancelled = store.request_cancel(&first.id).await.expect("cancel");
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let after = store
        .create_guarded(new_task("ada@example.com", "noop"), unique("daily"))
        .await
        .expect("after finishing");
    let Outcome::Created(next) = after else {
        panic!("a finished twin must not block: {after:?}");
    };
    assert_ne!(next.id, first.id);
    // The key now points at the new task.
    let once_more = store
        .create_guarded(new_task("ada@example.com", "noop"), unique("daily"))
        .await
        .expect("once more");
    assert_eq!(once_more, Outcome::Existing(next));
}

/// An idempotent request that found a unique-key twin is replayed as that answer (not
/// created); keys over the limit, empty keys and invalid tasks fail with `Invalid` and write
/// nothing.
pub async fn guarded_creates_validate_and_combine(store: Store) {
    let Outcome::Created(twin) = store
        .create_guarded(new_task("ada@example.com", "noop"), unique("u"))
        .await
        .expect("twin")
    else {
        panic!("must create");
    };
    let both = CreateGuard {
        unique_key: Some("u".to_owned()),
        ..keyed("k", "f")
    };
    let found = store
        .create_guarded(new_task("ada@example.com", "noop"), both.clone())
        .await
        .expect("found");
    assert_eq!(found, Outcome::Existing(twin.clone()));
    let replay = store
        .create_guarded(new_task("ada@example.com", "noop"), both)
        .await
        .expect("replay");
    assert_eq!(
        replay,
        Outcome::Replayed {
            task: twin,
            created: false
        }
    );

    let mut feed = store.subscribe();
    let long = "x".repeat(MAX_GUARD_KEY_BYTES + 1);
    for guard in [keyed(&long, "f"), keyed("", "f"), unique(&long)] {
        expect_err(
            store
                .create_guarded(new_task("ada@example.com", "noop"), guard)
                .await,
            "a bad key",
            |e| matches!(e, StoreError::Invalid(_)),
        );
    }
    let fits = "y".repeat(MAX_GUARD_KEY_BYTES);
    assert!(matches!(
        store
            .create_guarded(new_task("ada@example.com", "noop"), keyed(&fits, "f"))
            .await,
        Ok(Outcome::Created(_))
    ));
    next_change(&mut feed).await;
    expect_err(
        store
            .create_guarded(new_task("", "noop"), keyed("k9", "f"))
            .await,
        "an invalid task",
        |e| matches!(e, StoreError::Invalid(_)),
    );
    assert_quiet(&mut feed);
    // The failed create recorded nothing: the key is still free.
    assert!(matches!(
        store
            .create_guarded(new_task("ada@example.com", "noop"), keyed("k9", "g"))
            .await,
        Ok(Outcome::Created(_))
    ));
}

/// Concurrent requests with one idempotency key create exactly one task; every other gets the
/// replay of it.
pub async fn concurrent_idempotent_creates_make_one_task(store: Store) {
    let mut handles = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            store
                .create_guarded(new_task("ada@example.com", "noop"), keyed("race", "f"))
                .await
                .expect("create")
        }));
    }
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    for handle in handles {
        match handle.await.expect("join") {
            Outcome::Created(task) => created.push(task),
            Outcome::Replayed {
                task,
                created: true,
            } => replayed.push(task),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created.len(), 1);
    assert!(replayed.iter().all(|task| *task == created[0]));
    assert_eq!(tasks_of(&store, "ada@example.com").await, 1);
}

/// A guarded create with `depends_on` waits for its parents like any create, and a
/// `unique_key` twin that is still `waiting` counts as unfinished: it is returned.
pub async fn guarded_creates_wait_for_parents(store: Store) {
    let user = "dep@example.com";
    let parent = store
        .create(new_task(user, "guard-parent"))
        .await
        .expect("parent");
    let mut child = new_task(user, "guard-child");
    child.depends_on = vec![task_core::Dependency {
        parent: parent.id.clone(),
        run_on_failure: false,
    }];
    let guard = CreateGuard {
        unique_key: Some("child".to_owned()),
        ..keyed("dep-key", "f")
    };
    let created = match store
        .create_guarded(child.clone(), guard.clone())
        .await
        .expect("guarded child")
    {
        Outcome::Created(task) => task,
        other => panic!("expected Created, got {other:?}"),
    };
    assert_eq!(created.status, TaskStatus::Waiting);
    assert_eq!(created.waiting_for, 1);
    assert_eq!(
        store
            .dependencies(&created.id)
            .await
            .expect("parents")
            .len(),
        1
    );
    let twin = store
        .create_guarded(child.clone(), unique("child"))
        .await
        .expect("twin");
    assert_eq!(twin, Outcome::Existing(created.clone()));
    // A parent of another user (or none at all) is NotFound, and nothing is recorded.
    let mut foreign = new_task(user, "guard-child");
    let other = store
        .create(new_task("other@example.com", "guard-parent"))
        .await
        .expect("foreign parent");
    foreign.depends_on = vec![task_core::Dependency {
        parent: other.id.clone(),
        run_on_failure: false,
    }];
    expect_err(
        store
            .create_guarded(foreign.clone(), keyed("foreign-key", "f"))
            .await,
        "a foreign parent",
        |e| matches!(e, StoreError::NotFound),
    );
    let retry = store
        .create_guarded(new_task(user, "guard-child"), keyed("foreign-key", "g"))
        .await
        .expect("the failed create left no record of its key");
    assert!(matches!(retry, Outcome::Created(_)));
}

fn two_node_workflow(user: &str) -> task_core::NewWorkflow {
    let node = |key: &str| task_core::WorkflowNode {
        key: key.to_owned(),
        task: task_core::NewTask::new(user, "guard-flow"),
    };
    task_core::NewWorkflow {
        user_id: user.to_owned(),
        nodes: vec![node("first"), node("second")],
        edges: vec![task_core::WorkflowEdge {
            parent: "first".to_owned(),
            child: "second".to_owned(),
            run_on_failure: false,
        }],
    }
}

/// A workflow created under an idempotency key is replayed (the same record, nothing new
/// written) for the same fingerprint, `KeyReused` for another one or for a key first used by a
/// single-task create; another user's same key creates.
pub async fn idempotent_workflows_replay_the_first(store: Store) {
    let user = "wf-key@example.com";
    let claim = |fingerprint: &str| IdempotencyClaim {
        key: "wf".to_owned(),
        fingerprint: fingerprint.to_owned(),
        window_ms: DEFAULT_IDEMPOTENCY_WINDOW_MS,
    };
    let (record, tasks) = match store
        .create_workflow_guarded(two_node_workflow(user), claim("f1"))
        .await
        .expect("first")
    {
        GuardedWorkflow::Created(record, tasks) => (record, tasks),
        other => panic!("expected Created, got {other:?}"),
    };
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1].status, TaskStatus::Waiting);
    let mut feed = store.subscribe();
    let replay = store
        .create_workflow_guarded(two_node_workflow(user), claim("f1"))
        .await
        .expect("replay");
    assert_eq!(replay, GuardedWorkflow::Replayed(record.clone()));
    let reused = store
        .create_workflow_guarded(two_node_workflow(user), claim("f2"))
        .await
        .expect("reused");
    assert_eq!(reused, GuardedWorkflow::KeyReused);
    assert_quiet(&mut feed);
    assert_eq!(tasks_of(&store, user).await, 2);

    // A key first used for one task is another request for a workflow.
    store
        .create_guarded(new_task(user, "guard-flow"), keyed("single", "s"))
        .await
        .expect("single");
    let crossed = store
        .create_workflow_guarded(
            two_node_workflow(user),
            IdempotencyClaim {
                key: "single".to_owned(),
                ..claim("s")
            },
        )
        .await
        .expect("crossed");
    assert_eq!(crossed, GuardedWorkflow::KeyReused);

    let other = store
        .create_workflow_guarded(two_node_workflow("wf-other@example.com"), claim("f2"))
        .await
        .expect("other user");
    assert!(matches!(other, GuardedWorkflow::Created(..)));
    // A bad graph is refused before anything is recorded; the key stays free.
    let mut bad = two_node_workflow(user);
    bad.edges.push(task_core::WorkflowEdge {
        parent: "second".to_owned(),
        child: "first".to_owned(),
        run_on_failure: false,
    });
    let fresh = IdempotencyClaim {
        key: "fresh".to_owned(),
        ..claim("c")
    };
    expect_err(
        store.create_workflow_guarded(bad, fresh.clone()).await,
        "a cycle",
        |e| matches!(e, StoreError::Invalid(_)),
    );
    assert!(matches!(
        store
            .create_workflow_guarded(two_node_workflow(user), fresh)
            .await
            .expect("fresh key"),
        GuardedWorkflow::Created(..)
    ));
}
