//! Cases: every operation from every status, and what each transition sets.

use serde_json::json;
use task_core::{CoreError, Task, TaskStatus};

use super::support::{
    claim_only, claim_request, create, drive, expect_err, new_task, now_ms, status_of, Start,
    Store, LEASE_MS,
};
use crate::{Failure, Lease, StoreError};

/// Accepts the expected error.
type ErrorCheck = fn(&StoreError) -> bool;

/// An operation the matrix tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Heartbeat,
    Progress,
    Complete,
    FailPermanently,
    FailRetryably,
    Release,
    CancelWithLease,
    CancelWithoutLease,
    RequestCancel,
    Retry,
    Delete,
}

const OPS: [Op; 11] = [
    Op::Heartbeat,
    Op::Progress,
    Op::Complete,
    Op::FailPermanently,
    Op::FailRetryably,
    Op::Release,
    Op::CancelWithLease,
    Op::CancelWithoutLease,
    Op::RequestCancel,
    Op::Retry,
    Op::Delete,
];

/// What an operation should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Succeeds, leaving this status, one version later.
    Moves(TaskStatus),
    /// Succeeds without a visible change (same version).
    Same,
    /// The task is gone.
    Deleted,
    LeaseLost,
    /// `IllegalTransition` to this status.
    Illegal(TaskStatus),
    Conflict,
}

fn expected(start: Start, op: Op) -> Expect {
    use Expect::*;
    use TaskStatus::*;
    let leased = matches!(
        op,
        Op::Heartbeat
            | Op::Progress
            | Op::Complete
            | Op::FailPermanently
            | Op::FailRetryably
            | Op::Release
            | Op::CancelWithLease
    );
    match start {
        Start::Processing | Start::CancelRequested => {
            let requested = start == Start::CancelRequested;
            match op {
                Op::Heartbeat => Same,
                Op::Progress => Moves(Processing),
                Op::Complete => Moves(Completed),
                Op::FailPermanently => Moves(Failed),
                Op::FailRetryably | Op::Release if requested => Moves(Cancelled),
                Op::FailRetryably | Op::Release => Moves(Pending),
                Op::CancelWithLease => Moves(Cancelled),
                Op::CancelWithoutLease if requested => Moves(Cancelled),
                Op::CancelWithoutLease => Conflict,
                Op::RequestCancel if requested => Same,
                Op::RequestCancel => Moves(Processing),
                Op::Retry | Op::Delete => Conflict,
            }
        }
        _ if leased => LeaseLost,
        Start::Pending => match op {
            Op::CancelWithoutLease | Op::RequestCancel => Moves(Cancelled),
            Op::Retry => Illegal(Pending),
            _ => Deleted,
        },
        Start::Completed | Start::Failed | Start::Cancelled => match op {
            Op::CancelWithoutLease | Op::RequestCancel => Illegal(Cancelled),
            Op::Retry if start == Start::Completed => Illegal(Pending),
            Op::Retry => Moves(Pending),
            _ => Deleted,
        },
    }
}

async fn apply(store: &Store, op: Op, task: &Task, lease: &Lease) -> Result<(), StoreError> {
    let id = &task.id;
    match op {
        Op::Heartbeat => store.heartbeat(lease, now_ms() + LEASE_MS).await.map(drop),
        Op::Progress => store
            .update_progress(lease, 40, Some("Halfway".into()))
            .await
            .map(drop),
        Op::Complete => store.complete(lease, json!({"n": 1})).await.map(drop),
        Op::FailPermanently => store.fail(lease, Failure::permanent("bad")).await.map(drop),
        Op::FailRetryably => store
            .fail(
                lease,
                Failure {
                    error: "flaky".into(),
                    retry_at: Some(now_ms() + 1000),
                    retry_description: Some("Retrying".into()),
                },
            )
            .await
            .map(drop),
        Op::Release => store.release(lease).await.map(drop),
        Op::CancelWithLease => store.cancel(id, Some(lease)).await.map(drop),
        Op::CancelWithoutLease => store.cancel(id, None).await.map(drop),
        Op::RequestCancel => store.request_cancel(id).await.map(drop),
        Op::Retry => store.retry(id, None).await.map(drop),
        Op::Delete => store.delete(id).await,
    }
}

/// Every operation from every status does exactly what the state machine says; a refused
/// operation returns the documented error and changes nothing.
pub async fn transition_matrix(store: Store) {
    for (s, start) in Start::ALL.into_iter().enumerate() {
        for (o, op) in OPS.into_iter().enumerate() {
            let task_type = format!("matrix-{s}-{o}");
            let (before, lease) = drive(&store, &task_type, start).await;
            assert_eq!(before.status, status_of(start));
            let outcome = apply(&store, op, &before, &lease).await;
            let after = store.get(&before.id).await;
            let case = format!("{op:?} from {start:?}");
            match expected(start, op) {
                Expect::Moves(status) => {
                    outcome.unwrap_or_else(|e| panic!("{case}: {e:?}"));
                    let after = after.expect("still there");
                    assert_eq!(after.status, status, "{case}");
                    assert_eq!(after.version, before.version + 1, "{case}");
                }
                Expect::Same => {
                    outcome.unwrap_or_else(|e| panic!("{case}: {e:?}"));
                    let after = after.expect("still there");
                    assert_eq!(after.status, before.status, "{case}");
                    assert_eq!(after.version, before.version, "{case}");
                }
                Expect::Deleted => {
                    outcome.unwrap_or_else(|e| panic!("{case}: {e:?}"));
                    assert_eq!(after, Err(StoreError::NotFound), "{case}");
                }
                refused => {
                    let error = outcome.expect_err(&case);
                    let kind_ok = match refused {
                        Expect::LeaseLost => error == StoreError::LeaseLost,
                        Expect::Conflict => matches!(error, StoreError::Conflict(_)),
                        Expect::Illegal(to) => {
                            error
                                == StoreError::IllegalTransition {
                                    from: before.status,
                                    to,
                                }
                        }
                        _ => false,
                    };
                    assert!(kind_ok, "{case}: got {error:?}, expected {refused:?}");
                    assert_eq!(after, Ok(before), "{case}: nothing written");
                }
            }
        }
    }
}

/// A claim sets status, attempt, start time, owner, a 128-bit hex token and the expiry.
pub async fn claim_sets_lease_fields(store: Store) {
    let created = create(&store, "d@example.com", "claim-fields").await;
    let request = claim_request("worker-7", 5, "claim-fields");
    let claimed = store.claim(&request).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let task = &claimed[0];
    assert_eq!(task.id, created.id);
    assert_eq!(task.status, TaskStatus::Processing);
    assert_eq!((task.attempt, task.progress), (1, 0));
    assert_eq!(task.version, created.version + 1);
    assert_eq!(task.started_at, Some(request.now));
    assert_eq!(task.lease_owner.as_deref(), Some("worker-7"));
    assert_eq!(task.lease_expires_at, Some(request.now + LEASE_MS));
    let token = task.lease_token.as_deref().expect("token");
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(store.get(&task.id).await.expect("get"), *task);
}

/// `complete` stores the result, fills progress, stamps `completed_at` and clears the lease
/// and any earlier error.
pub async fn complete_stores_result_and_clears_lease(store: Store) {
    let mut new = new_task("e@example.com", "complete");
    new.total = 7;
    store.create(new).await.expect("create");
    let (_, lease) = claim_only(&store, "complete").await;
    store
        .fail(
            &lease,
            Failure {
                error: "flaky".into(),
                retry_at: Some(0),
                retry_description: None,
            },
        )
        .await
        .expect("retryable failure");
    let (_, lease) = claim_only(&store, "complete").await;
    store
        .update_progress(&lease, 3, None)
        .await
        .expect("progress");
    let done = store
        .complete(&lease, json!({"questions": [1, 2]}))
        .await
        .expect("complete");
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(done.result, Some(json!({"questions": [1, 2]})));
    assert_eq!(done.progress, 7);
    assert!(done.completed_at.is_some());
    assert!(
        done.error.is_none(),
        "the earlier attempt's error is cleared"
    );
    assert!(done.lease_token.is_none() && done.lease_owner.is_none());
    assert!(done.lease_expires_at.is_none());
    assert_eq!(store.get(&done.id).await.expect("get"), done);
}

/// A retryable failure goes back to `pending` at `retry_at` while attempts are left, and
/// fails for good on the last attempt; a permanent failure fails at once.
pub async fn fail_retries_while_attempts_are_left(store: Store) {
    store
        .create(new_task("f@example.com", "flaky").with_max_attempts(2))
        .await
        .expect("create");
    let (_, lease) = claim_only(&store, "flaky").await;
    store
        .update_progress(&lease, 30, None)
        .await
        .expect("progress");
    let retry_at = now_ms() - 1;
    let waiting = store
        .fail(
            &lease,
            Failure {
                error: "rate limited".into(),
                retry_at: Some(retry_at),
                retry_description: Some("Retrying in 4s (attempt 2/2)".into()),
            },
        )
        .await
        .expect("fail");
    assert_eq!(waiting.status, TaskStatus::Pending);
    assert_eq!(
        (waiting.run_at, waiting.progress, waiting.attempt),
        (retry_at, 0, 1)
    );
    assert_eq!(waiting.error.as_deref(), Some("rate limited"));
    assert_eq!(
        waiting.description.as_deref(),
        Some("Retrying in 4s (attempt 2/2)")
    );
    assert!(waiting.lease_token.is_none() && waiting.completed_at.is_none());

    let (second, lease) = claim_only(&store, "flaky").await;
    assert_eq!(second.attempt, 2);
    let failed = store
        .fail(
            &lease,
            Failure {
                error: "rate limited again".into(),
                retry_at: Some(now_ms()),
                retry_description: None,
            },
        )
        .await
        .expect("fail");
    assert_eq!(failed.status, TaskStatus::Failed, "no attempts left");
    assert_eq!(failed.error.as_deref(), Some("rate limited again"));
    assert!(failed.completed_at.is_some() && failed.lease_token.is_none());

    store
        .create(new_task("f@example.com", "doomed"))
        .await
        .expect("create");
    let (_, lease) = claim_only(&store, "doomed").await;
    let failed = store
        .fail(
            &lease,
            Failure::permanent("API key not configured for provider: openai"),
        )
        .await
        .expect("fail");
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.attempt, 1,
        "attempts were left, but the error is permanent"
    );
}

/// `request_cancel`: pending → cancelled at once; processing → flag set; again → unchanged;
/// terminal → `IllegalTransition`.
pub async fn request_cancel_semantics(store: Store) {
    let pending = create(&store, "g@example.com", "cancel-pending").await;
    let cancelled = store.request_cancel(&pending.id).await.expect("cancel");
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(cancelled.error.as_deref(), Some("Task was cancelled"));
    assert!(cancelled.completed_at.is_some());

    let (running, _) = drive(&store, "cancel-running", Start::Processing).await;
    let requested = store.request_cancel(&running.id).await.expect("request");
    assert_eq!(requested.status, TaskStatus::Processing);
    assert!(requested.cancel_requested);
    assert_eq!(requested.version, running.version + 1);
    let again = store.request_cancel(&running.id).await.expect("again");
    assert_eq!(again, requested, "a repeated request changes nothing");

    expect_err(
        store.request_cancel(&pending.id).await,
        "cancel a cancelled task",
        |e| {
            *e == StoreError::IllegalTransition {
                from: TaskStatus::Cancelled,
                to: TaskStatus::Cancelled,
            }
        },
    );
    let unknown = "task_1_zzzzzz".parse().expect("id");
    assert_eq!(
        store.request_cancel(&unknown).await,
        Err(StoreError::NotFound)
    );
}

/// `cancel`: the worker's acknowledgement (with its lease) or the grace timer (after a
/// request) ends the task and clears the lease.
pub async fn cancel_semantics(store: Store) {
    let (running, lease) = drive(&store, "ack", Start::CancelRequested).await;
    let acked = store.cancel(&running.id, Some(&lease)).await.expect("ack");
    assert_eq!(acked.status, TaskStatus::Cancelled);
    assert_eq!(acked.error.as_deref(), Some("Task was cancelled"));
    assert!(acked.lease_token.is_none() && acked.lease_owner.is_none());
    assert!(acked.completed_at.is_some());

    let (running, _) = drive(&store, "grace", Start::CancelRequested).await;
    let forced = store.cancel(&running.id, None).await.expect("grace timer");
    assert_eq!(forced.status, TaskStatus::Cancelled);
    assert!(forced.lease_token.is_none());

    let (running, lease) = drive(&store, "other", Start::Processing).await;
    let (other, _) = drive(&store, "other-2", Start::Processing).await;
    expect_err(
        store.cancel(&other.id, Some(&lease)).await,
        "a lease for another task",
        |e| *e == StoreError::LeaseLost,
    );
    assert_eq!(store.get(&running.id).await.expect("get"), running);
    assert_eq!(store.get(&other.id).await.expect("get"), other);

    let pending = create(&store, "h@example.com", "pending-cancel").await;
    let cancelled = store.cancel(&pending.id, None).await.expect("cancel");
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
}

/// A manual retry starts over: `pending`, full attempts, nothing left of the last run.
pub async fn retry_resets_a_finished_task(store: Store) {
    let (failed, _) = drive(&store, "retry-failed", Start::Failed).await;
    let later = now_ms() + 5_000;
    let retried = store.retry(&failed.id, Some(later)).await.expect("retry");
    assert_eq!(retried.status, TaskStatus::Pending);
    assert_eq!(
        (retried.attempt, retried.progress, retried.run_at),
        (0, 0, later)
    );
    assert!(retried.result.is_none() && retried.error.is_none());
    assert!(retried.completed_at.is_none() && !retried.cancel_requested);
    assert_eq!(retried.version, failed.version + 1);

    let (cancelled, _) = drive(&store, "retry-cancelled", Start::Cancelled).await;
    let before = now_ms();
    let retried = store.retry(&cancelled.id, None).await.expect("retry");
    assert!(retried.run_at >= before, "due now");
    assert!(!retried.cancel_requested && retried.error.is_none());
    let (again, _) = claim_only(&store, "retry-cancelled").await;
    assert_eq!(again.attempt, 1);

    let (failed, _) = drive(&store, "retry-bad", Start::Failed).await;
    expect_err(
        store.retry(&failed.id, Some(-5)).await,
        "negative run_at",
        |e| {
            matches!(
                e,
                StoreError::Invalid(CoreError::InvalidField {
                    field: "run_at",
                    ..
                })
            )
        },
    );
}

/// `release` puts the task back, due now, without counting the attempt.
pub async fn release_gives_the_attempt_back(store: Store) {
    let (running, lease) = drive(&store, "release", Start::Processing).await;
    store
        .update_progress(&lease, 50, None)
        .await
        .expect("progress");
    let before = now_ms();
    let released = store.release(&lease).await.expect("release");
    assert_eq!(released.status, TaskStatus::Pending);
    assert_eq!((released.attempt, released.progress), (0, 0));
    assert!(released.run_at >= before && released.run_at <= now_ms());
    assert!(released.lease_token.is_none() && released.lease_owner.is_none());
    assert_eq!(released.version, running.version + 2);
    let (again, _) = claim_only(&store, "release").await;
    assert_eq!(again.attempt, 1, "the released attempt did not count");
}

/// `postpone` holds a task back until a time without counting the attempt, says why in its
/// description, and is fenced by the lease; a cancel-requested task is cancelled instead.
pub async fn postpone_delays_without_using_an_attempt(store: Store) {
    let (running, lease) = drive(&store, "postpone", Start::Processing).await;
    let until = now_ms() + 60_000;
    let why = "waiting for provider openai (rate limited until 14:02:10)";
    let held = store
        .postpone(&lease, until, Some(why.to_owned()))
        .await
        .expect("postpone");
    assert_eq!(held.status, TaskStatus::Pending);
    assert_eq!((held.attempt, held.run_at), (0, until));
    assert_eq!(held.description.as_deref(), Some(why));
    assert!(held.lease_token.is_none());
    assert_eq!(held.version, running.version + 1);
    assert!(
        store
            .claim(&claim_request("w", 10, "postpone"))
            .await
            .expect("claim")
            .is_empty(),
        "not due before `until`"
    );
    expect_err(
        store.postpone(&lease, until, None).await,
        "a stale lease",
        |e| matches!(e, StoreError::LeaseLost),
    );
    let (_, lease) = drive(&store, "postpone-cancel", Start::CancelRequested).await;
    let cancelled = store.postpone(&lease, until, None).await.expect("postpone");
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
}

/// A task whose cancel was requested never goes back to the queue: releasing it, failing it
/// retryably or rescuing it cancels it.
pub async fn cancel_requested_tasks_are_never_requeued(store: Store) {
    let (_, lease) = drive(&store, "req-release", Start::CancelRequested).await;
    let released = store.release(&lease).await.expect("release");
    assert_eq!(released.status, TaskStatus::Cancelled);

    let (_, lease) = drive(&store, "req-fail", Start::CancelRequested).await;
    let failed = store
        .fail(
            &lease,
            Failure {
                error: "flaky".into(),
                retry_at: Some(now_ms()),
                retry_description: None,
            },
        )
        .await
        .expect("fail");
    assert_eq!(failed.status, TaskStatus::Cancelled);

    let (running, _) = drive(&store, "req-rescue", Start::CancelRequested).await;
    let rescued = store
        .rescue_expired(now_ms() + LEASE_MS + 1)
        .await
        .expect("rescue");
    let rescued: Vec<_> = rescued.into_iter().filter(|t| t.id == running.id).collect();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].status, TaskStatus::Cancelled);
    assert_eq!(rescued[0].error.as_deref(), Some("Task was cancelled"));
}

/// Progress stays within `0..=total` and never goes backwards; an equal value may change only
/// the description; a refused report writes nothing.
pub async fn progress_rules_are_enforced(store: Store) {
    let (running, lease) = drive(&store, "progress", Start::Processing).await;
    let first = store
        .update_progress(&lease, 30, Some("Generating with OpenAI...".into()))
        .await
        .expect("30");
    assert_eq!(first.progress, 30);
    assert_eq!(
        first.description.as_deref(),
        Some("Generating with OpenAI...")
    );
    assert_eq!(first.version, running.version + 1);
    assert!(first.updated_at >= running.updated_at);

    let same = store
        .update_progress(&lease, 30, Some("Parsing".into()))
        .await
        .expect("equal progress, new description");
    assert_eq!(same.description.as_deref(), Some("Parsing"));
    let kept = store.update_progress(&lease, 40, None).await.expect("40");
    assert_eq!(
        kept.description.as_deref(),
        Some("Parsing"),
        "None keeps it"
    );

    let refused: [(i64, Option<String>, ErrorCheck); 4] = [
        (20, None, |e| {
            matches!(
                e,
                StoreError::Invalid(CoreError::ProgressRegressed {
                    current: 40,
                    requested: 20
                })
            )
        }),
        (101, None, |e| {
            matches!(
                e,
                StoreError::Invalid(CoreError::ProgressOutOfRange {
                    progress: 101,
                    total: 100
                })
            )
        }),
        (-1, None, |e| {
            matches!(e, StoreError::Invalid(CoreError::ProgressOutOfRange { .. }))
        }),
        (50, Some("d".repeat(2001)), |e| {
            matches!(
                e,
                StoreError::Invalid(CoreError::InvalidField {
                    field: "description",
                    ..
                })
            )
        }),
    ];
    for (progress, description, check) in refused {
        expect_err(
            store.update_progress(&lease, progress, description).await,
            &format!("progress {progress}"),
            check,
        );
        assert_eq!(store.get(&running.id).await.expect("get"), kept);
    }
    let done = store.update_progress(&lease, 100, None).await.expect("100");
    assert_eq!(done.progress, 100);
    assert_eq!(
        done.status,
        TaskStatus::Processing,
        "100% is not completion"
    );
}
