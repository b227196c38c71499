//! The schedule cases: what [`ScheduleStore`]'s doc comments promise, above all that a fire
//! time is recorded once, together with its task, however many instances try at once.

use std::sync::Arc;

use serde_json::json;
use task_core::{TaskStatus, UnixMillis};

use super::support::{expect_err, next_change, now_ms};
use crate::{
    Fired, Firing, OverlapPolicy, RunKind, ScheduleSpec, ScheduleStore, StoreError, TaskChange,
    TaskStore,
};

/// The two faces of one backend the schedule cases use: firings create tasks.
#[derive(Clone)]
pub struct ScheduleStores {
    /// The store's tasks.
    pub tasks: Arc<dyn TaskStore>,
    /// The same store's schedules.
    pub schedules: Arc<dyn ScheduleStore>,
}

fn spec(name: &str) -> ScheduleSpec {
    ScheduleSpec {
        params: json!({"topic": "daily"}),
        label: Some("Daily quiz".to_owned()),
        timezone: "Europe/Stockholm".to_owned(),
        ..ScheduleSpec::new(name, "0 6 * * *", "sched-quiz")
    }
}

fn firing(schedule_id: &str, at: UnixMillis, kind: RunKind, owner: &str) -> Firing {
    Firing {
        schedule_id: schedule_id.to_owned(),
        scheduled_at: at,
        kind,
        task: (kind != RunKind::Skipped).then(|| spec("x").new_task(owner)),
    }
}

/// Schedules are created with version 1 and nothing due before their creation, read back,
/// listed per owner oldest first, updated (one version later) and deleted.
pub async fn schedules_are_created_listed_updated_and_deleted(stores: ScheduleStores) {
    let store = stores.schedules;
    let before = now_ms();
    let first = store
        .create_schedule("ada", spec("first"))
        .await
        .expect("create");
    assert!(first.id.starts_with("sched_"), "{}", first.id);
    assert_eq!((first.user_id.as_str(), first.version), ("ada", 1));
    assert_eq!(first.spec, spec("first"));
    assert!(first.created_at >= before && first.created_at <= now_ms());
    assert_eq!(first.fired_through, first.created_at);
    assert_eq!(first.updated_at, first.created_at);
    let second = store
        .create_schedule("ada", spec("second"))
        .await
        .expect("create");
    let other = store
        .create_schedule("bob", spec("bob's"))
        .await
        .expect("create");
    assert_eq!(store.get_schedule(&first.id).await.expect("get"), first);
    // Oldest first; schedules created in the same millisecond come in id order.
    let mut adas = [first.clone(), second.clone()];
    adas.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    assert_eq!(store.list_schedules(Some("ada")).await.expect("list"), adas);
    assert_eq!(
        store.list_schedules(None).await.expect("list").len(),
        3,
        "everyone's"
    );
    let paused = ScheduleSpec {
        paused: true,
        overlap: OverlapPolicy::CancelPrevious,
        end_at: Some(first.created_at + 86_400_000),
        ..spec("first, renamed")
    };
    let updated = store
        .update_schedule(&first.id, paused.clone())
        .await
        .expect("update");
    assert_eq!(updated.spec, paused);
    assert_eq!(updated.version, 2);
    assert!(updated.updated_at >= first.updated_at);
    assert!(updated.fired_through >= first.fired_through);
    assert_eq!(store.get_schedule(&first.id).await.expect("get"), updated);
    store.delete_schedule(&other.id).await.expect("delete");
    assert_eq!(
        store.get_schedule(&other.id).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete_schedule(&other.id).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.update_schedule(&other.id, spec("gone")).await,
        Err(StoreError::NotFound)
    );
    assert!(store
        .list_schedules(Some("bob"))
        .await
        .expect("list")
        .is_empty());
}

/// A bad spec is `Invalid` and stores nothing.
pub async fn invalid_schedules_are_rejected(stores: ScheduleStores) {
    let store = stores.schedules;
    for bad in [
        ScheduleSpec::new("", "@daily", "quiz"),
        ScheduleSpec::new("n", " ", "quiz"),
        ScheduleSpec::new("n", "@daily", "No Such Type"),
        ScheduleSpec {
            params: json!([1]),
            ..ScheduleSpec::new("n", "@daily", "quiz")
        },
    ] {
        expect_err(
            store.create_schedule("ada", bad.clone()).await,
            "create",
            |e| matches!(e, StoreError::Invalid(_)),
        );
    }
    let kept = store
        .create_schedule("ada", spec("ok"))
        .await
        .expect("create");
    expect_err(
        store
            .update_schedule(&kept.id, ScheduleSpec::new("", "@daily", "quiz"))
            .await,
        "update",
        |e| matches!(e, StoreError::Invalid(_)),
    );
    assert_eq!(store.list_schedules(None).await.expect("list"), [kept]);
}

/// A firing creates the schedule's task (owner, type, params, label), publishes it, records
/// the run and moves `fired_through`; the same time again writes nothing. Skipped runs are
/// recorded without a task; manual runs are exempt from the once-per-time rule.
pub async fn a_fire_time_is_recorded_once_with_its_task(stores: ScheduleStores) {
    let schedules = stores.schedules;
    let schedule = schedules
        .create_schedule("ada", spec("daily"))
        .await
        .expect("create");
    let mut feed = stores.tasks.subscribe();
    let at = schedule.created_at + 60_000;
    let Fired::Created(task) = schedules
        .fire_schedule(firing(&schedule.id, at, RunKind::Scheduled, "ada"))
        .await
        .expect("fire")
    else {
        panic!("the first firing creates a task");
    };
    assert_eq!(
        (task.user_id.as_str(), task.task_type.as_str()),
        ("ada", "sched-quiz")
    );
    assert_eq!(task.params, json!({"topic": "daily"}));
    assert_eq!(task.label.as_deref(), Some("Daily quiz"));
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(stores.tasks.get(&task.id).await.expect("get"), *task);
    match next_change(&mut feed).await {
        TaskChange::Upserted(published) => assert_eq!(*published, *task),
        other => panic!("expected the new task, got {other:?}"),
    }
    assert_eq!(
        schedules
            .fire_schedule(firing(&schedule.id, at, RunKind::Scheduled, "ada"))
            .await,
        Ok(Fired::AlreadyFired)
    );
    assert_eq!(
        schedules
            .fire_schedule(firing(&schedule.id, at, RunKind::Skipped, "ada"))
            .await,
        Ok(Fired::AlreadyFired),
        "a skip of a fired time is refused too"
    );
    assert_eq!(
        schedules
            .get_schedule(&schedule.id)
            .await
            .expect("get")
            .fired_through,
        at
    );
    assert_eq!(
        schedules
            .fire_schedule(firing(&schedule.id, at + 60_000, RunKind::Skipped, "ada"))
            .await,
        Ok(Fired::Recorded)
    );
    // An older time handled late never moves the cursor back.
    assert_eq!(
        schedules
            .fire_schedule(firing(&schedule.id, at - 30_000, RunKind::Skipped, "ada"))
            .await,
        Ok(Fired::Recorded)
    );
    let Fired::Created(manual) = schedules
        .fire_schedule(firing(&schedule.id, at, RunKind::Manual, "ada"))
        .await
        .expect("manual")
    else {
        panic!("a manual run creates a task even at a fired time");
    };
    let after = schedules.get_schedule(&schedule.id).await.expect("get");
    assert_eq!(
        after.fired_through,
        at + 60_000,
        "manual runs do not move it"
    );
    assert_eq!(after.version, schedule.version, "firing is not an edit");
    let runs = schedules
        .schedule_runs(&schedule.id, 10)
        .await
        .expect("runs");
    let summary: Vec<_> = runs
        .iter()
        .map(|r| (r.scheduled_at, r.kind, r.task_id.clone(), r.task_status))
        .collect();
    assert_eq!(summary.len(), 4);
    assert_eq!(
        summary[0],
        (at + 60_000, RunKind::Skipped, None, None),
        "newest first"
    );
    assert!(summary[1..3].contains(&(
        at,
        RunKind::Scheduled,
        Some(task.id.clone()),
        Some(TaskStatus::Pending)
    )));
    assert!(summary[1..3].contains(&(
        at,
        RunKind::Manual,
        Some(manual.id.clone()),
        Some(TaskStatus::Pending)
    )));
    assert_eq!(summary[3], (at - 30_000, RunKind::Skipped, None, None));
    assert!(runs.iter().all(|r| r.schedule_id == schedule.id));
    assert_eq!(
        schedules
            .schedule_runs(&schedule.id, 1)
            .await
            .expect("runs")
            .len(),
        1
    );
}

/// Runs show their task's current status, and none once the task is gone; deleting a
/// schedule keeps its tasks.
pub async fn runs_follow_their_tasks(stores: ScheduleStores) {
    let schedules = stores.schedules;
    let schedule = schedules
        .create_schedule("ada", spec("daily"))
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for offset in 1..=2 {
        let at = schedule.created_at + offset * 1000;
        match schedules
            .fire_schedule(firing(&schedule.id, at, RunKind::Scheduled, "ada"))
            .await
            .expect("fire")
        {
            Fired::Created(task) => tasks.push(task),
            other => panic!("expected a task, got {other:?}"),
        }
    }
    stores
        .tasks
        .request_cancel(&tasks[0].id)
        .await
        .expect("cancel");
    let statuses: Vec<_> = schedules
        .schedule_runs(&schedule.id, 10)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| r.task_status)
        .collect();
    assert_eq!(
        statuses,
        [Some(TaskStatus::Pending), Some(TaskStatus::Cancelled)]
    );
    stores
        .tasks
        .delete(&tasks[0].id)
        .await
        .expect("delete task");
    let runs = schedules
        .schedule_runs(&schedule.id, 10)
        .await
        .expect("runs");
    assert_eq!(runs[1].task_id.as_ref(), Some(&tasks[0].id));
    assert_eq!(runs[1].task_status, None);
    schedules
        .delete_schedule(&schedule.id)
        .await
        .expect("delete");
    assert_eq!(
        schedules.schedule_runs(&schedule.id, 10).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        stores.tasks.get(&tasks[1].id).await.expect("kept").status,
        TaskStatus::Pending
    );
}

/// A firing for a missing schedule is `NotFound`; one whose kind and task disagree, or whose
/// task is someone else's, is `Invalid`; a zero or huge runs limit is `Invalid`. None writes
/// anything.
pub async fn bad_firings_write_nothing(stores: ScheduleStores) {
    let schedules = stores.schedules;
    let schedule = schedules
        .create_schedule("ada", spec("daily"))
        .await
        .expect("create");
    let at = schedule.created_at + 1000;
    assert_eq!(
        schedules
            .fire_schedule(firing(
                "sched_0_0000000000000000",
                at,
                RunKind::Scheduled,
                "ada"
            ))
            .await,
        Err(StoreError::NotFound)
    );
    let bad = [
        Firing {
            task: None,
            ..firing(&schedule.id, at, RunKind::Scheduled, "ada")
        },
        Firing {
            kind: RunKind::Skipped,
            ..firing(&schedule.id, at, RunKind::Scheduled, "ada")
        },
        firing(&schedule.id, at, RunKind::Scheduled, "bob"),
    ];
    for firing in bad {
        expect_err(
            schedules.fire_schedule(firing.clone()).await,
            "bad firing",
            |e| matches!(e, StoreError::Invalid(_)),
        );
    }
    for limit in [0, 100_000] {
        expect_err(
            schedules.schedule_runs(&schedule.id, limit).await,
            "limit",
            |e| matches!(e, StoreError::Invalid(_)),
        );
    }
    assert!(schedules
        .schedule_runs(&schedule.id, 10)
        .await
        .expect("runs")
        .is_empty());
    assert_eq!(
        stores.tasks.count_unfinished("ada").await.expect("count"),
        0
    );
    assert_eq!(
        schedules.get_schedule(&schedule.id).await.expect("get"),
        schedule
    );
}

/// Many concurrent attempts at one fire time (instances racing) create exactly one task.
pub async fn concurrent_firings_create_one_task(stores: ScheduleStores) {
    const ATTEMPTS: usize = 16;
    let schedules = stores.schedules;
    let schedule = schedules
        .create_schedule("ada", spec("every second"))
        .await
        .expect("create");
    for round in 1..=3 {
        let at = schedule.created_at + round * 1000;
        let attempts = (0..ATTEMPTS).map(|_| {
            let schedules = Arc::clone(&schedules);
            let firing = firing(&schedule.id, at, RunKind::Scheduled, "ada");
            tokio::spawn(async move { schedules.fire_schedule(firing).await })
        });
        let mut created = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            match attempt.await.expect("join").expect("fire") {
                Fired::Created(_) => created += 1,
                Fired::AlreadyFired => {}
                Fired::Recorded => panic!("nothing was skipped"),
            }
        }
        assert_eq!(
            created, 1,
            "round {round}: exactly one attempt creates the task"
        );
        assert_eq!(
            stores.tasks.count_unfinished("ada").await.expect("count"),
            round as u64
        );
    }
    assert_eq!(
        schedules
            .schedule_runs(&schedule.id, 10)
            .await
            .expect("runs")
            .len(),
        3
    );
}

/// The runs that created a task are listed without the skipped ones. Old runs are purged in
/// batches once their task is finished or gone (or they had none); runs of unfinished tasks
/// stay however old (the overlap policy reads them), and so do runs newer than the cutoff.
pub async fn old_runs_are_purged_but_unfinished_tasks_keep_theirs(stores: ScheduleStores) {
    let schedules = stores.schedules;
    let schedule = schedules
        .create_schedule("ada", spec("often"))
        .await
        .expect("create");
    let other = schedules
        .create_schedule("bob", spec("bob's"))
        .await
        .expect("create");
    let at = |seconds: i64| schedule.created_at + seconds * 1000;
    let fire = |id: &str, seconds: i64, kind: RunKind, owner: &str| {
        let firing = firing(id, at(seconds), kind, owner);
        let schedules = Arc::clone(&schedules);
        async move { schedules.fire_schedule(firing).await.expect("fire") }
    };
    let task_of = |fired: Fired| match fired {
        Fired::Created(task) => task,
        other => panic!("expected a task, got {other:?}"),
    };
    // Old: skipped (no task), pending, cancelled, completed-then-deleted, and bob's cancelled.
    fire(&schedule.id, 1, RunKind::Skipped, "ada").await;
    let pending = task_of(fire(&schedule.id, 2, RunKind::Scheduled, "ada").await);
    let cancelled = task_of(fire(&schedule.id, 3, RunKind::Scheduled, "ada").await);
    let deleted = task_of(fire(&schedule.id, 4, RunKind::Manual, "ada").await);
    let bobs = task_of(fire(&other.id, 5, RunKind::Scheduled, "bob").await);
    for id in [&cancelled.id, &deleted.id, &bobs.id] {
        stores.tasks.request_cancel(id).await.expect("cancel");
    }
    stores.tasks.delete(&deleted.id).await.expect("delete");
    // New: after the cutoff, finished or not.
    let recent = task_of(fire(&schedule.id, 20, RunKind::Scheduled, "ada").await);
    stores
        .tasks
        .request_cancel(&recent.id)
        .await
        .expect("cancel");
    fire(&schedule.id, 21, RunKind::Skipped, "ada").await;
    let cutoff = at(10);
    // The overlap policy's view passes over skipped runs.
    let with_tasks: Vec<_> = schedules
        .schedule_task_runs(&schedule.id, 2)
        .await
        .expect("task runs")
        .into_iter()
        .map(|run| (run.scheduled_at, run.task_id))
        .collect();
    assert_eq!(
        with_tasks,
        [
            (at(20), Some(recent.id.clone())),
            (at(4), Some(deleted.id.clone()))
        ]
    );
    assert_eq!(
        schedules.schedule_task_runs("sched_0_00", 2).await,
        Err(StoreError::NotFound)
    );

    assert_eq!(
        schedules.purge_schedule_runs(cutoff, 0).await,
        Ok(0),
        "a zero limit deletes nothing"
    );
    // Four purgeable runs (skipped, cancelled, deleted, bob's), two per batch.
    let mut batches = Vec::new();
    loop {
        let purged = schedules
            .purge_schedule_runs(cutoff, 2)
            .await
            .expect("purge");
        batches.push(purged);
        if purged < 2 {
            break;
        }
    }
    assert_eq!(batches, [2, 2, 0]);
    let left: Vec<_> = schedules
        .schedule_runs(&schedule.id, 100)
        .await
        .expect("runs")
        .into_iter()
        .map(|run| (run.scheduled_at, run.task_status))
        .collect();
    assert_eq!(
        left,
        [
            (at(21), None),
            (at(20), Some(TaskStatus::Cancelled)),
            (at(2), Some(TaskStatus::Pending)),
        ]
    );
    assert!(schedules
        .schedule_runs(&other.id, 100)
        .await
        .expect("runs")
        .is_empty());
    // `fired_through` is past every purged time, so the scheduler never plans one again.
    assert!(
        schedules
            .get_schedule(&schedule.id)
            .await
            .expect("get")
            .fired_through
            >= at(21)
    );
    // Once the pending task finishes, its run goes too.
    stores
        .tasks
        .request_cancel(&pending.id)
        .await
        .expect("cancel");
    assert_eq!(schedules.purge_schedule_runs(cutoff, 10).await, Ok(1));
    assert_eq!(
        schedules
            .schedule_runs(&schedule.id, 100)
            .await
            .expect("runs")
            .len(),
        2
    );
}
