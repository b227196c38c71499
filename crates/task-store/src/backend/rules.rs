//! The rules of every task operation, as pure functions from the stored task to the task after
//! the change.
//!
//! Every backend uses them: [`crate::MemoryStore`] applies them directly, while
//! [`crate::SqliteStore`] and task-postgres's `PostgresStore` apply them inside their write
//! transactions or, for the guarded single-statement fast paths, use them to explain why the
//! guard matched no row. Keeping the rules in one place is what makes the backends behave the
//! same; the conformance suite checks it.

use serde_json::Value;
use task_core::{
    check_progress, CoreError, NewTask, Task, TaskId, TaskStatus, UnixMillis, MAX_DESCRIPTION_LEN,
};

use crate::{ClaimRequest, Failure, Lease, ListQuery, Result, StoreError};

/// The error stored on a task that was cancelled.
pub const CANCELLED_ERROR: &str = "Task was cancelled";
/// The error stored on a task whose worker stopped renewing its lease.
pub const LEASE_EXPIRED_ERROR: &str = "worker lost: lease expired";
/// The most tasks one claim may take; more would hold the writer for too long.
pub const MAX_CLAIM_LIMIT: usize = 1000;

/// A new `pending` task, after checking every field.
pub fn new_task(new: NewTask, now: UnixMillis) -> Result<Task> {
    new.validate()?;
    let id = TaskId::generate(now).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(Task {
        id,
        user_id: new.user_id,
        task_type: new.task_type,
        status: TaskStatus::Pending,
        label: new.label,
        description: new.description,
        progress: 0,
        total: new.total,
        result: None,
        error: None,
        params: new.params,
        attempt: 0,
        max_attempts: new.max_attempts,
        run_at: new.run_at.unwrap_or(now),
        lease_owner: None,
        lease_token: None,
        lease_expires_at: None,
        cancel_requested: false,
        version: 1,
        created_at: now,
        updated_at: now,
        started_at: None,
        completed_at: None,
        waiting_for: 0,
        workflow_id: None,
        priority: new.priority,
    })
}

/// Checks a claim request. A `limit` of 0 is valid and claims nothing.
pub fn validate_claim(request: &ClaimRequest) -> Result<()> {
    let invalid = |field: &'static str, reason: &str| {
        Err(StoreError::Invalid(CoreError::InvalidField {
            field,
            reason: reason.to_owned(),
        }))
    };
    if request.worker_id.trim().is_empty() {
        return invalid("worker_id", "must not be empty");
    }
    if request.limit > MAX_CLAIM_LIMIT {
        return invalid("limit", "must be at most 1000");
    }
    if request.lease_for.is_zero() {
        return invalid("lease_for", "must be longer than zero");
    }
    if request.max_running_per_user == Some(0) {
        return invalid("max_running_per_user", "must be at least 1");
    }
    Ok(())
}

/// When a lease taken by `request` runs out.
pub fn lease_expiry(request: &ClaimRequest) -> UnixMillis {
    let lease_for = i64::try_from(request.lease_for.as_millis()).unwrap_or(i64::MAX);
    request.now.saturating_add(lease_for)
}

/// Whether a claim may take `task` (it is `pending`, due, and of a wanted type).
pub fn is_claimable(task: &Task, request: &ClaimRequest) -> bool {
    task.status == TaskStatus::Pending
        && task.run_at <= request.now
        && (request.task_types.is_empty() || request.task_types.contains(&task.task_type))
}

/// `pending` → `processing` for the worker in `request`, holding `token`. The caller has
/// checked [`is_claimable`].
pub fn claim(task: &Task, request: &ClaimRequest, token: String) -> Task {
    let mut next = task.clone();
    next.status = TaskStatus::Processing;
    next.attempt += 1;
    next.progress = 0;
    next.started_at = Some(request.now);
    next.completed_at = None;
    next.lease_owner = Some(request.worker_id.clone());
    next.lease_token = Some(token);
    next.lease_expires_at = Some(lease_expiry(request));
    next.cancel_requested = false;
    touch(&mut next, request.now);
    next
}

/// Fencing: `lease` must be the current lease of a `processing` task.
pub fn check_lease(task: &Task, lease: &Lease) -> Result<()> {
    let current = task.status == TaskStatus::Processing
        && task.id == lease.task_id
        && task.lease_token.as_deref() == Some(lease.token.as_str());
    if current {
        Ok(())
    } else {
        Err(StoreError::LeaseLost)
    }
}

/// Extends the lease. Bookkeeping only: no version bump, `updated_at` unchanged.
pub fn heartbeat(task: &Task, lease: &Lease, lease_expires_at: UnixMillis) -> Result<Task> {
    check_lease(task, lease)?;
    let mut next = task.clone();
    next.lease_expires_at = Some(lease_expires_at);
    Ok(next)
}

/// Checks a description a worker wants to show.
pub fn validate_description(description: Option<&str>) -> Result<()> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_LEN => {
            Err(StoreError::Invalid(CoreError::InvalidField {
                field: "description",
                reason: format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
            }))
        }
        _ => Ok(()),
    }
}

/// Records progress and, when given, a new description.
pub fn update_progress(
    task: &Task,
    lease: &Lease,
    progress: i64,
    description: Option<String>,
    now: UnixMillis,
) -> Result<Task> {
    check_lease(task, lease)?;
    validate_description(description.as_deref())?;
    let mut next = task.clone();
    next.progress = check_progress(task.progress, progress, task.total)?;
    if description.is_some() {
        next.description = description;
    }
    touch(&mut next, now);
    Ok(next)
}

/// `processing` → `completed` with `result`.
pub fn complete(task: &Task, lease: &Lease, result: Value, now: UnixMillis) -> Result<Task> {
    check_lease(task, lease)?;
    let mut next = task.clone();
    next.status = task.status.transition(TaskStatus::Completed)?;
    next.result = Some(result);
    next.progress = task.total;
    next.error = None;
    next.completed_at = Some(now);
    clear_lease(&mut next);
    touch(&mut next, now);
    Ok(next)
}

/// Ends an attempt with an error: back to `pending` at `retry_at` while attempts are left,
/// else `failed`. A task whose cancel was requested is cancelled instead of retried.
pub fn fail(task: &Task, lease: &Lease, failure: Failure, now: UnixMillis) -> Result<Task> {
    check_lease(task, lease)?;
    validate_description(failure.retry_description.as_deref())?;
    let mut next = task.clone();
    match failure.retry_at {
        Some(_) if task.cancel_requested => finish_cancelled(&mut next, now)?,
        Some(retry_at) if task.attempt < task.max_attempts => {
            next.status = task.status.transition(TaskStatus::Pending)?;
            next.run_at = retry_at;
            next.progress = 0;
            next.started_at = None;
            next.error = Some(failure.error);
            if failure.retry_description.is_some() {
                next.description = failure.retry_description;
            }
        }
        _ => {
            next.status = task.status.transition(TaskStatus::Failed)?;
            next.error = Some(failure.error);
            next.completed_at = Some(now);
        }
    }
    clear_lease(&mut next);
    touch(&mut next, now);
    Ok(next)
}

/// Asks a task to stop (a `waiting` one is cancelled at once, like a `pending` one): `Some` with the changed task, or `None` when a cancel was already
/// requested (nothing to write).
pub fn request_cancel(task: &Task, now: UnixMillis) -> Result<Option<Task>> {
    match task.status {
        TaskStatus::Pending | TaskStatus::Waiting => {
            let mut next = task.clone();
            finish_cancelled(&mut next, now)?;
            touch(&mut next, now);
            Ok(Some(next))
        }
        TaskStatus::Processing if task.cancel_requested => Ok(None),
        TaskStatus::Processing => {
            let mut next = task.clone();
            next.cancel_requested = true;
            touch(&mut next, now);
            Ok(Some(next))
        }
        from => Err(StoreError::IllegalTransition {
            from,
            to: TaskStatus::Cancelled,
        }),
    }
}

/// Marks a task `cancelled`: fenced when `lease` is given; otherwise only a `pending` task or a
/// `processing` task whose cancel was requested.
pub fn cancel(task: &Task, lease: Option<&Lease>, now: UnixMillis) -> Result<Task> {
    match lease {
        Some(lease) => check_lease(task, lease)?,
        None if task.status == TaskStatus::Processing && !task.cancel_requested => {
            return Err(StoreError::Conflict(
                "the task is processing and no cancel was requested".to_owned(),
            ));
        }
        None => {}
    }
    let mut next = task.clone();
    finish_cancelled(&mut next, now)?;
    clear_lease(&mut next);
    touch(&mut next, now);
    Ok(next)
}

/// A manual retry of a `failed` or `cancelled` task with a full set of attempts.
pub fn retry(task: &Task, run_at: Option<UnixMillis>, now: UnixMillis) -> Result<Task> {
    if task.status == TaskStatus::Processing {
        return Err(StoreError::Conflict(
            "the task is processing; only failed or cancelled tasks can be retried".to_owned(),
        ));
    }
    if !matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled) {
        return Err(StoreError::IllegalTransition {
            from: task.status,
            to: TaskStatus::Pending,
        });
    }
    if run_at.is_some_and(|at| at < 0) {
        return Err(StoreError::Invalid(CoreError::InvalidField {
            field: "run_at",
            reason: "must be a unix time in milliseconds".to_owned(),
        }));
    }
    let mut next = task.clone();
    next.status = task.status.transition(TaskStatus::Pending)?;
    next.run_at = run_at.unwrap_or(now);
    next.attempt = 0;
    next.progress = 0;
    next.result = None;
    next.error = None;
    next.started_at = None;
    next.completed_at = None;
    next.cancel_requested = false;
    touch(&mut next, now);
    Ok(next)
}

/// Gives a claimed task back without counting the attempt. A task whose cancel was requested
/// is cancelled instead, so a shutdown never resurrects it.
pub fn release(task: &Task, lease: &Lease, now: UnixMillis) -> Result<Task> {
    check_lease(task, lease)?;
    let mut next = task.clone();
    if task.cancel_requested {
        finish_cancelled(&mut next, now)?;
    } else {
        next.status = task.status.transition(TaskStatus::Pending)?;
        next.run_at = now;
        next.attempt = (task.attempt - 1).max(0);
        next.progress = 0;
        next.started_at = None;
    }
    clear_lease(&mut next);
    touch(&mut next, now);
    Ok(next)
}

/// A claimed task held back by an upstream that asked to wait (a provider's 429 with
/// `Retry-After`): `pending`, due at `until`, the attempt not counted (`attempt - 1`), progress
/// 0, lease cleared, `description` saying why. A task whose cancel was requested is cancelled.
pub fn postpone(
    task: &Task,
    lease: &Lease,
    until: UnixMillis,
    description: Option<String>,
    now: UnixMillis,
) -> Result<Task> {
    let mut next = release(task, lease, now)?;
    if next.status == TaskStatus::Pending {
        next.run_at = until.max(now);
        if description.is_some() {
            next.description = description;
        }
    }
    Ok(next)
}

/// Whether the rescuer takes `task`: `processing` with a lease that expired before `now`.
pub fn is_rescuable(task: &Task, now: UnixMillis) -> bool {
    task.status == TaskStatus::Processing && task.lease_expires_at.is_some_and(|at| at < now)
}

/// A task whose worker was lost: `pending` (due now) with attempts left, else `failed`; a task
/// whose cancel was requested is cancelled instead.
pub fn rescue(task: &Task, now: UnixMillis) -> Result<Task> {
    let mut next = task.clone();
    if task.cancel_requested {
        finish_cancelled(&mut next, now)?;
    } else if task.attempt < task.max_attempts {
        next.status = task.status.transition(TaskStatus::Pending)?;
        next.run_at = now;
        next.progress = 0;
        next.started_at = None;
        next.error = Some(LEASE_EXPIRED_ERROR.to_owned());
    } else {
        next.status = task.status.transition(TaskStatus::Failed)?;
        next.error = Some(LEASE_EXPIRED_ERROR.to_owned());
        next.completed_at = Some(now);
    }
    clear_lease(&mut next);
    touch(&mut next, now);
    Ok(next)
}

/// A running task cannot be deleted: its worker would write to a task that is gone.
pub fn check_deletable(task: &Task) -> Result<()> {
    if task.status == TaskStatus::Processing {
        Err(StoreError::Conflict(
            "the task is processing; cancel it before deleting it".to_owned(),
        ))
    } else {
        Ok(())
    }
}

/// Whether the cleaner may delete `task`: terminal and finished before `before`.
pub fn is_purgeable(task: &Task, before: UnixMillis) -> bool {
    task.status.is_terminal() && task.completed_at.is_some_and(|at| at < before)
}

/// The case folding task search uses, in every backend that can: Unicode lower case, so
/// "ÖSTERSJÖN" finds "Östersjön".
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

/// The folded search text of `query`, or `None` when it does not filter (absent or empty).
pub fn search_needle(query: &ListQuery) -> Option<String> {
    query
        .search
        .as_deref()
        .filter(|search| !search.is_empty())
        .map(fold_case)
}

/// Whether `task` passes `query`'s filters (not its cursor or limit).
pub fn matches(query: &ListQuery, task: &Task) -> bool {
    let search_hit = |needle: &str| {
        [&task.label, &task.description]
            .into_iter()
            .flatten()
            .any(|text| fold_case(text).contains(needle))
    };
    query
        .user_id
        .as_ref()
        .is_none_or(|user| *user == task.user_id)
        && (query.statuses.is_empty() || query.statuses.contains(&task.status))
        && query
            .task_type
            .as_ref()
            .is_none_or(|t| *t == task.task_type)
        && query
            .created_from
            .is_none_or(|from| task.created_at >= from)
        && query
            .created_before
            .is_none_or(|before| task.created_at < before)
        && search_needle(query).is_none_or(|needle| search_hit(&needle))
}

/// Moves `task` to `cancelled` with the cancel message and `completed_at`.
fn finish_cancelled(task: &mut Task, now: UnixMillis) -> Result<()> {
    task.status = task.status.transition(TaskStatus::Cancelled)?;
    task.waiting_for = 0;
    task.error = Some(CANCELLED_ERROR.to_owned());
    task.completed_at = Some(now);
    Ok(())
}

fn clear_lease(task: &mut Task) {
    task.lease_owner = None;
    task.lease_token = None;
    task.lease_expires_at = None;
}

/// Every committed change bumps the version and `updated_at` (never backwards, even if the
/// clock is).
pub fn touch(task: &mut Task, now: UnixMillis) {
    task.version += 1;
    task.updated_at = now.max(task.updated_at);
}
