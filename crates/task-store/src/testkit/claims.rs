//! Cases: what a claim takes, in what order, for whom, and that concurrent claimers never
//! share a task.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use task_core::{CoreError, NewTask, Task, TaskId, TaskStatus};

use super::support::{
    claim_request, drive, expect_err, id_set, ids, new_task, now_ms, Start, Store, WAIT,
};
use crate::{ClaimRequest, Role, StoreError, UserLimits, UserStore};

/// Creates one task per `(user, run_at offset)`, all of `task_type`, due `base + offset`.
async fn create_due(store: &Store, task_type: &str, base: i64, plan: &[(&str, i64)]) -> Vec<Task> {
    let batch: Vec<NewTask> = plan
        .iter()
        .map(|(user, offset)| new_task(user, task_type).with_run_at(base + offset))
        .collect();
    store.create_many(batch).await.expect("create_many")
}

fn fair(worker: &str, limit: usize, max_running: u32) -> ClaimRequest {
    ClaimRequest {
        max_running_per_user: Some(max_running),
        ..claim_request(worker, limit, "")
    }
}

/// Without fairness, the earliest `run_at` goes first.
pub async fn claim_takes_oldest_due_first(store: Store) {
    let base = now_ms() - 10_000;
    let tasks = create_due(&store, "order", base, &[("u", 30), ("u", 10), ("v", 20)]).await;
    let first = store
        .claim(&claim_request("w", 2, ""))
        .await
        .expect("claim");
    assert_eq!(ids(&first), [tasks[1].id.clone(), tasks[2].id.clone()]);
    let rest = store
        .claim(&claim_request("w", 5, ""))
        .await
        .expect("claim");
    assert_eq!(ids(&rest), [tasks[0].id.clone()]);
    assert!(store
        .claim(&claim_request("w", 5, ""))
        .await
        .expect("claim")
        .is_empty());
}

/// A claim returns its tasks in due order even when they were created in the opposite order,
/// each with its own 128-bit hex lease token.
pub async fn claim_returns_tasks_in_due_order(store: Store) {
    let base = now_ms() - 10_000;
    let offsets = [50, 40, 30, 20, 10];
    let plan: Vec<(&str, i64)> = offsets.iter().map(|offset| ("u", *offset)).collect();
    let created = create_due(&store, "reverse", base, &plan).await;
    let claimed = store
        .claim(&claim_request("w", 5, "reverse"))
        .await
        .expect("claim");
    let expected: Vec<TaskId> = created.iter().rev().map(|t| t.id.clone()).collect();
    assert_eq!(ids(&claimed), expected);
    let tokens: HashSet<&str> = claimed
        .iter()
        .map(|t| {
            t.lease_token
                .as_deref()
                .expect("a claimed task has a token")
        })
        .collect();
    assert_eq!(tokens.len(), claimed.len(), "every claim has its own token");
    for token in tokens {
        assert!(
            token.len() == 32
                && token
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "token {token:?} is 128-bit lowercase hex"
        );
    }
}

/// A claim with an empty worker id, a zero lease, a zero per-user limit or a limit above 1000
/// is `Invalid`; a limit of 0 claims nothing.
pub async fn claim_validates_its_request(store: Store) {
    create_due(&store, "valid", now_ms() - 1, &[("u", 0)]).await;
    let bad = [
        (
            "worker_id",
            ClaimRequest {
                worker_id: " ".into(),
                ..claim_request("w", 1, "")
            },
        ),
        (
            "lease_for",
            ClaimRequest {
                lease_for: Duration::ZERO,
                ..claim_request("w", 1, "")
            },
        ),
        ("max_running_per_user", fair("w", 1, 0)),
        ("limit", claim_request("w", 1001, "")),
    ];
    for (field, request) in bad {
        expect_err(
            store.claim(&request).await,
            field,
            |e| matches!(e, StoreError::Invalid(CoreError::InvalidField { field: f, .. }) if *f == field),
        );
    }
    assert!(store
        .claim(&claim_request("w", 0, ""))
        .await
        .expect("limit 0")
        .is_empty());
    assert_eq!(
        store
            .claim(&claim_request("w", 1, ""))
            .await
            .expect("claim")
            .len(),
        1,
        "refused claims took nothing"
    );
}

/// A task is not claimed before its `run_at`, and is once `now` reaches it.
pub async fn future_tasks_wait_until_due(store: Store) {
    let run_at = now_ms() + 60_000;
    let task = store
        .create(new_task("u", "later").with_run_at(run_at))
        .await
        .expect("create");
    for now in [now_ms(), run_at - 1] {
        let request = ClaimRequest {
            now,
            ..claim_request("w", 10, "")
        };
        assert!(store.claim(&request).await.expect("claim").is_empty());
    }
    let request = ClaimRequest {
        now: run_at,
        ..claim_request("w", 10, "")
    };
    let claimed = store.claim(&request).await.expect("claim");
    assert_eq!(ids(&claimed), [task.id]);
    assert_eq!(claimed[0].started_at, Some(run_at));
}

/// Only the requested task types are claimed; an empty list means any.
pub async fn claim_filters_by_task_type(store: Store) {
    let base = now_ms() - 1_000;
    let alpha = create_due(&store, "alpha", base, &[("u", 0), ("u", 1)]).await;
    let beta = create_due(&store, "beta", base, &[("u", 2)]).await;
    let claimed = store
        .claim(&claim_request("w", 10, "beta"))
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), ids(&beta));
    let request = ClaimRequest {
        task_types: vec!["gamma".into(), "alpha".into()],
        ..claim_request("w", 10, "")
    };
    let claimed = store.claim(&request).await.expect("claim");
    assert_eq!(id_set(&claimed), id_set(&alpha));
}

/// With a per-user limit, a user with a big backlog cannot starve another: user B's one task
/// is in the first claim, and no user exceeds the limit.
pub async fn claim_is_fair_across_users(store: Store) {
    let base = now_ms() - 100_000;
    let mut plan: Vec<(&str, i64)> = (0..50).map(|i| ("a@example.com", i)).collect();
    plan.push(("b@example.com", 60));
    let tasks = create_due(&store, "fair", base, &plan).await;

    let first = store.claim(&fair("w", 4, 2)).await.expect("claim");
    let claimed = id_set(&first);
    assert!(claimed.contains(&tasks[50].id), "B is not starved");
    assert_eq!(first.len(), 3, "A is held to 2, B has 1");
    assert!(
        claimed.contains(&tasks[0].id) && claimed.contains(&tasks[1].id),
        "A's oldest"
    );

    assert!(
        store
            .claim(&fair("w", 4, 2))
            .await
            .expect("claim")
            .is_empty(),
        "A is at its limit and B has nothing left"
    );
    let lease = crate::Lease::of(&first[0]).expect("lease");
    store
        .complete(&lease, serde_json::json!(null))
        .await
        .expect("complete");
    let next = store.claim(&fair("w", 4, 2)).await.expect("claim");
    if first[0].user_id == "a@example.com" {
        assert_eq!(ids(&next), [tasks[2].id.clone()], "A gets one more");
    } else {
        assert!(next.is_empty(), "B finished but A is still at its limit");
    }
}

/// Fair claims go round-robin: each user's oldest due task, then each user's second, ...,
/// users ordered by their oldest due task.
pub async fn fair_claim_is_round_robin(store: Store) {
    let base = now_ms() - 10_000;
    // Due order: a1, a2, b1, a3, c1, b2.
    let t = create_due(
        &store,
        "round",
        base,
        &[("a", 1), ("a", 2), ("b", 3), ("a", 4), ("c", 5), ("b", 6)],
    )
    .await;
    let (a1, a2, b1, a3, c1, b2) = (&t[0].id, &t[1].id, &t[2].id, &t[3].id, &t[4].id, &t[5].id);
    let round_one = store.claim(&fair("w", 3, 10)).await.expect("claim");
    assert_eq!(
        id_set(&round_one),
        HashSet::from([a1.clone(), b1.clone(), c1.clone()])
    );
    let round_two = store.claim(&fair("w", 2, 10)).await.expect("claim");
    assert_eq!(id_set(&round_two), HashSet::from([a2.clone(), b2.clone()]));
    let rest = store.claim(&fair("w", 5, 10)).await.expect("claim");
    assert_eq!(ids(&rest), std::slice::from_ref(a3));
}

/// Users whose tasks are far behind another user's big backlog still get their round-robin
/// turn, including a user's second task when only its first was near the front.
pub async fn fair_claim_reaches_users_behind_a_backlog(store: Store) {
    let base = now_ms() - 1_000_000;
    for (scenario, limit, expected) in [
        // a0, a1 (A's limit), b0 near the front; b1 and c0 far behind A's backlog.
        ("backlog-one", 10, vec!["a0", "a1", "b0", "b1", "c0"]),
        // Round one only: each user's oldest task.
        ("backlog-two", 3, vec!["a0", "b0", "c0"]),
    ] {
        let mut plan: Vec<(String, i64, String)> = (0..400)
            .map(|i| (format!("a@{scenario}"), i, format!("a{i}")))
            .collect();
        plan.push((format!("b@{scenario}"), 5, "b0".into()));
        plan.push((format!("b@{scenario}"), 1_000, "b1".into()));
        plan.push((format!("b@{scenario}"), 1_001, "b2".into()));
        plan.push((format!("c@{scenario}"), 2_000, "c0".into()));
        plan.push((format!("d@{scenario}"), 10_000_000, "d0 (not due)".into()));
        let batch: Vec<NewTask> = plan
            .iter()
            .map(|(user, offset, name)| {
                new_task(user, scenario)
                    .with_run_at(base + offset)
                    .with_label(name.clone())
            })
            .collect();
        store.create_many(batch).await.expect("create_many");
        let request = ClaimRequest {
            max_running_per_user: Some(2),
            ..claim_request("w", limit, scenario)
        };
        let claimed = store.claim(&request).await.expect("claim");
        let mut names: Vec<String> = claimed
            .iter()
            .map(|t| t.label.clone().expect("label"))
            .collect();
        names.sort();
        assert_eq!(names, expected, "{scenario}");
    }
}

/// Without a per-user limit, the oldest due tasks go first whoever owns them.
pub async fn unfair_claim_takes_oldest_regardless_of_owner(store: Store) {
    let base = now_ms() - 10_000;
    let t = create_due(
        &store,
        "unfair",
        base,
        &[("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 5)],
    )
    .await;
    let claimed = store
        .claim(&claim_request("w", 3, ""))
        .await
        .expect("claim");
    assert_eq!(ids(&claimed), ids(&t[..3]));
}

/// Running, finished and future tasks are never claimed.
pub async fn claim_never_takes_unclaimable_tasks(store: Store) {
    for (i, start) in [
        Start::Processing,
        Start::Completed,
        Start::Failed,
        Start::Cancelled,
    ]
    .into_iter()
    .enumerate()
    {
        drive(&store, &format!("busy-{i}"), start).await;
    }
    store
        .create(new_task("u", "future").with_run_at(now_ms() + 60_000))
        .await
        .expect("create");
    for request in [claim_request("w", 100, ""), fair("w", 100, 100)] {
        assert!(store.claim(&request).await.expect("claim").is_empty());
    }
}

/// Eight claimers on a multi-threaded runtime, some fair, some not, claim 200 tasks: every
/// task exactly once.
pub async fn concurrent_claimers_never_share_a_task(store: Store) {
    let users = ["a", "b", "c", "d"];
    let batch: Vec<NewTask> = (0..200)
        .map(|i| new_task(users[i % users.len()], "race"))
        .collect();
    let created = store.create_many(batch).await.expect("create_many");
    let mut claimers = Vec::new();
    for worker in 0..8 {
        let store = Arc::clone(&store);
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let request = if worker % 2 == 0 {
                    claim_request(&format!("w{worker}"), 7, "")
                } else {
                    fair(&format!("w{worker}"), 7, 1000)
                };
                let claimed = store.claim(&request).await.expect("claim");
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed);
            }
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        let claimed = tokio::time::timeout(WAIT, claimer)
            .await
            .expect("claimers finish")
            .expect("claimer did not panic");
        all.extend(claimed);
    }
    assert_eq!(all.len(), 200, "every task claimed once");
    assert_eq!(id_set(&all), id_set(&created));
    let tokens: HashSet<_> = all.iter().map(|t| t.lease_token.clone()).collect();
    assert_eq!(tokens.len(), 200, "every claim has its own token");
    for task in &all {
        assert_eq!(
            (task.status, task.attempt, task.version),
            (TaskStatus::Processing, 1, 2)
        );
    }
}

/// A user's own running cap (`UserLimits::max_running`, set through the user store) replaces
/// the claim's default for that user, higher or lower; users without one keep the default.
pub async fn fair_claims_honour_users_own_running_caps(store: Store, users: Arc<dyn UserStore>) {
    for (user, own) in [
        ("high@example.com", Some(3)),
        ("low@example.com", Some(1)),
        ("plain@example.com", None),
    ] {
        users.create_user(user, Role::User).await.expect("user");
        if own.is_some() {
            let limits = UserLimits {
                max_running: own,
                ..UserLimits::default()
            };
            users.set_user_limits(user, limits).await.expect("limits");
        }
    }
    let base = now_ms() - 100_000;
    let plan: Vec<(&str, i64)> = ["high@example.com", "low@example.com", "plain@example.com"]
        .into_iter()
        .flat_map(|user| (0..5).map(move |i| (user, i)))
        .collect();
    create_due(&store, "capped", base, &plan).await;
    let first = store.claim(&fair("w", 15, 2)).await.expect("claim");
    let per_user = |tasks: &[Task], user: &str| tasks.iter().filter(|t| t.user_id == user).count();
    assert_eq!(
        per_user(&first, "high@example.com"),
        3,
        "its own cap, above the default"
    );
    assert_eq!(
        per_user(&first, "low@example.com"),
        1,
        "its own cap, below the default"
    );
    assert_eq!(per_user(&first, "plain@example.com"), 2, "the default");
    assert!(
        store
            .claim(&fair("w", 15, 2))
            .await
            .expect("claim")
            .is_empty(),
        "every user is at their cap"
    );
    // A raised cap takes effect at the next claim.
    let limits = UserLimits {
        max_running: Some(4),
        ..UserLimits::default()
    };
    users
        .set_user_limits("high@example.com", limits)
        .await
        .expect("raise");
    let next = store.claim(&fair("w", 15, 2)).await.expect("claim");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].user_id, "high@example.com");
}
