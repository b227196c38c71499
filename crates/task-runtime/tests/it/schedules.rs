//! The scheduler against a real store (memory and SQLite) and a clock moved by hand: firing at
//! each due time once (also with two "instances" racing), the overlap and catch-up policies,
//! pausing, bad input, run-now, the loop waking at the due time and on edits (an edit alone
//! included), and the run cleaner next to the overlap policy.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use task_core::{TaskStatus, UnixMillis};
use task_runtime::{
    Clock, RunCleanerConfig, ScheduleError, SchedulerConfig, Schedules, SystemClock,
};
use task_store::{
    CatchUpPolicy, MemoryStore, OverlapPolicy, RunKind, ScheduleSpec, ScheduleStore, SqliteStore,
    StoreError, TaskChange, TaskStore,
};
use tokio_util::sync::CancellationToken;

const DAY: i64 = 86_400_000;

/// A clock the test moves.
#[derive(Debug, Default)]
struct ManualClock(AtomicI64);

impl ManualClock {
    fn set(&self, at: UnixMillis) {
        self.0.store(at, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        self.0.load(Ordering::SeqCst)
    }
}

trait Both: TaskStore + ScheduleStore + Clone {}
impl<S: TaskStore + ScheduleStore + Clone> Both for S {}

struct Fixture {
    tasks: Arc<dyn TaskStore>,
    store: Arc<dyn ScheduleStore>,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    fn on<S: Both>(store: S, dir: Option<tempfile::TempDir>) -> Self {
        Self {
            tasks: Arc::new(store.clone()),
            store: Arc::new(store),
            clock: Arc::new(ManualClock::default()),
            _dir: dir,
        }
    }

    fn memory() -> Self {
        Self::on(MemoryStore::new(), None)
    }

    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path().join("tasks.db")).expect("open");
        Self::on(store, Some(dir))
    }

    /// A `Schedules` on this fixture's stores and clock: one "instance".
    fn instance(&self) -> Schedules {
        Schedules::new(
            Arc::clone(&self.tasks),
            Arc::clone(&self.store),
            Some(vec!["report".to_owned()]),
            SchedulerConfig::default(),
            self.clock.clone(),
        )
        .expect("valid config")
    }

    /// A schedule created now; the clock is set to its creation, rounded up to a whole second.
    async fn schedule(&self, schedules: &Schedules, spec: ScheduleSpec) -> (String, UnixMillis) {
        self.clock.set(task_store::backend::clock::now_millis());
        let schedule = schedules.create("ada", spec).await.expect("create");
        let start = (schedule.created_at / 1000 + 1) * 1000;
        self.clock.set(schedule.created_at);
        (schedule.id, start)
    }

    async fn runs(&self, id: &str) -> Vec<(UnixMillis, RunKind, Option<TaskStatus>)> {
        let mut runs: Vec<_> = self
            .store
            .schedule_runs(id, 100)
            .await
            .expect("runs")
            .into_iter()
            .map(|r| (r.scheduled_at, r.kind, r.task_status))
            .collect();
        runs.reverse();
        runs
    }
}

/// A task that outlives thirty of its schedule's times: every one of them is skipped (more
/// than the overlap policy's lookback of runs), and the run cleaner purges the old skipped
/// runs but never the unfinished task's, so the policy keeps seeing it.
async fn a_long_task_keeps_later_times_skipped_while_old_runs_are_purged(f: Fixture) {
    let schedules = Schedules::new(
        Arc::clone(&f.tasks),
        Arc::clone(&f.store),
        Some(vec!["report".to_owned()]),
        SchedulerConfig {
            run_cleaner: RunCleanerConfig {
                retention: Duration::from_secs(10),
                batch_size: 4,
                ..RunCleanerConfig::default()
            },
            ..SchedulerConfig::default()
        },
        f.clock.clone(),
    )
    .expect("valid config");
    let (id, start) = f
        .schedule(&schedules, every_second(OverlapPolicy::Skip))
        .await;
    for second in 0..=30 {
        f.clock.set(start + second * 1000);
        schedules.tick().await.expect("tick");
    }
    let skipped =
        |from: i64, to: i64| (from..=to).map(|s| (start + s * 1000, RunKind::Skipped, None));
    let first = (start, RunKind::Scheduled, Some(TaskStatus::Pending));
    let expected: Vec<_> = std::iter::once(first).chain(skipped(1, 30)).collect();
    assert_eq!(f.runs(&id).await, expected);
    // Ten seconds of retention at start + 30 s: the skipped runs before start + 20 s go, in
    // batches of four; the pending task's run stays.
    assert_eq!(schedules.purge_old_runs().await, Ok(19));
    let expected: Vec<_> = std::iter::once(first).chain(skipped(20, 30)).collect();
    assert_eq!(f.runs(&id).await, expected);
    f.clock.set(start + 31_000);
    schedules.tick().await.expect("tick");
    assert_eq!(
        f.runs(&id).await.last(),
        Some(&(start + 31_000, RunKind::Skipped, None))
    );
    assert_eq!(f.tasks.count_unfinished("ada").await.expect("count"), 1);
}

/// The run cleaner's loop: its first sweep comes one interval after start and purges what is
/// past retention by the schedules' clock; it stops when told.
async fn the_run_cleaner_sweeps_every_interval_until_stopped(f: Fixture) {
    let schedules = Schedules::new(
        Arc::clone(&f.tasks),
        Arc::clone(&f.store),
        Some(vec!["report".to_owned()]),
        SchedulerConfig {
            run_cleaner: RunCleanerConfig {
                interval: Duration::from_millis(50),
                retention: Duration::from_secs(60),
                ..RunCleanerConfig::default()
            },
            ..SchedulerConfig::default()
        },
        f.clock.clone(),
    )
    .expect("valid config");
    let (id, start) = f
        .schedule(&schedules, every_second(OverlapPolicy::Skip))
        .await;
    f.clock.set(start);
    schedules.tick().await.expect("tick");
    let runs = schedules.runs(&id, 10).await.expect("runs");
    let task = runs[0].task_id.clone().expect("a task");
    f.tasks.request_cancel(&task).await.expect("cancel");
    // A day later by the schedules' clock (and paused, so no pass fires anything meanwhile).
    schedules.set_paused(&id, true).await.expect("pause");
    f.clock.set(start + DAY);
    let stop = CancellationToken::new();
    let cleaner = schedules.start_run_cleaner(stop.clone());
    tokio::time::timeout(Duration::from_secs(5), async {
        while !schedules.runs(&id, 10).await.expect("runs").is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the run was purged within a few intervals");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), cleaner)
        .await
        .expect("stops")
        .expect("no panic");
    assert_eq!(
        f.tasks.get(&task).await.expect("the task stays").status,
        TaskStatus::Cancelled
    );
}

fn every_second(overlap: OverlapPolicy) -> ScheduleSpec {
    ScheduleSpec {
        overlap,
        ..ScheduleSpec::new("tick", "* * * * * *", "report")
    }
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::Fixture::memory()).await; })*
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Fixture::sqlite()).await; })*
        }
    };
}

on_both_stores!(
    each_due_time_fires_once_across_instances,
    overlap_skip_allow_and_cancel_previous,
    catch_up_after_a_three_day_outage,
    paused_schedules_fire_nothing_and_resume_without_backlog,
    bad_schedules_name_the_field,
    run_now_creates_a_manual_run,
    a_long_task_keeps_later_times_skipped_while_old_runs_are_purged,
    the_run_cleaner_sweeps_every_interval_until_stopped,
);

async fn each_due_time_fires_once_across_instances(f: Fixture) {
    let (a, b) = (f.instance(), f.instance());
    let (id, start) = f.schedule(&a, every_second(OverlapPolicy::Allow)).await;
    // Nothing is due before the first whole second; both report it as the next wake-up.
    assert_eq!(a.tick().await.expect("tick"), Some(start));
    for second in 0..5 {
        let at = start + second * 1000;
        f.clock.set(at);
        let (next_a, next_b) = tokio::join!(a.tick(), b.tick());
        assert_eq!(next_a.expect("tick"), Some(at + 1000));
        assert_eq!(next_b.expect("tick"), Some(at + 1000));
        // A second pass at the same moment finds nothing new.
        a.tick().await.expect("tick");
    }
    let runs = f.runs(&id).await;
    let expected: Vec<_> = (0..5)
        .map(|s| {
            (
                start + s * 1000,
                RunKind::Scheduled,
                Some(TaskStatus::Pending),
            )
        })
        .collect();
    assert_eq!(runs, expected);
    assert_eq!(f.tasks.count_unfinished("ada").await.expect("count"), 5);
}

async fn overlap_skip_allow_and_cancel_previous(f: Fixture) {
    let schedules = f.instance();
    for (policy, expected) in [
        (
            OverlapPolicy::Skip,
            [
                (RunKind::Scheduled, Some(TaskStatus::Pending)),
                (RunKind::Skipped, None),
            ],
        ),
        (
            OverlapPolicy::Allow,
            [
                (RunKind::Scheduled, Some(TaskStatus::Pending)),
                (RunKind::Scheduled, Some(TaskStatus::Pending)),
            ],
        ),
        (
            OverlapPolicy::CancelPrevious,
            [
                (RunKind::Scheduled, Some(TaskStatus::Cancelled)),
                (RunKind::Scheduled, Some(TaskStatus::Pending)),
            ],
        ),
    ] {
        let (id, start) = f.schedule(&schedules, every_second(policy)).await;
        for at in [start, start + 1000] {
            f.clock.set(at);
            schedules.tick().await.expect("tick");
        }
        let runs: Vec<_> = f
            .runs(&id)
            .await
            .into_iter()
            .map(|(_, kind, status)| (kind, status))
            .collect();
        assert_eq!(runs, expected, "{policy}");
        // Pause it so the next policy's passes leave it alone.
        schedules.set_paused(&id, true).await.expect("pause");
    }
}

async fn catch_up_after_a_three_day_outage(f: Fixture) {
    let schedules = f.instance();
    let daily = |catch_up| ScheduleSpec {
        catch_up,
        ..ScheduleSpec::new("daily", "0 6 * * *", "report")
    };
    let (latest, _) = f.schedule(&schedules, daily(CatchUpPolicy::Latest)).await;
    let (none, _) = f.schedule(&schedules, daily(CatchUpPolicy::None)).await;
    let created = f.clock.now();
    // The scheduler was down for three days and ten minutes: three 06:00s passed.
    let back = created + 3 * DAY + 600_000;
    f.clock.set(back);
    let next = schedules.tick().await.expect("tick").expect("a next time");
    let last_missed = next - DAY;
    assert!(last_missed <= back && last_missed > back - DAY);
    assert_eq!(
        f.runs(&latest).await,
        [(last_missed, RunKind::Scheduled, Some(TaskStatus::Pending))],
        "latest: one task, for the most recent missed time"
    );
    assert_eq!(
        f.runs(&none).await,
        [(last_missed, RunKind::Skipped, None)],
        "none: no task, the missed times passed by"
    );
    schedules.tick().await.expect("tick");
    assert_eq!(f.tasks.count_unfinished("ada").await.expect("count"), 1);
}

async fn paused_schedules_fire_nothing_and_resume_without_backlog(f: Fixture) {
    let schedules = f.instance();
    let (id, start) = f
        .schedule(&schedules, every_second(OverlapPolicy::Allow))
        .await;
    let paused = schedules.set_paused(&id, true).await.expect("pause");
    assert!(schedules
        .next_fire_times(&paused, 5)
        .expect("times")
        .is_empty());
    f.clock.set(start + 5000);
    assert_eq!(
        schedules.tick().await.expect("tick"),
        None,
        "nothing to wake for"
    );
    assert!(f.runs(&id).await.is_empty());
    // Resuming moves `fired_through` to the store's now, so the paused seconds never fire.
    let resumed = schedules.set_paused(&id, false).await.expect("resume");
    f.clock.set(resumed.fired_through);
    let upcoming = schedules.next_fire_times(&resumed, 5).expect("times");
    assert_eq!(upcoming.len(), 5);
    assert!(upcoming.windows(2).all(|w| w[1] - w[0] == 1000));
    assert!(upcoming[0] > resumed.fired_through);
    schedules.tick().await.expect("tick");
    assert!(f.runs(&id).await.is_empty());
    f.clock.set(upcoming[0]);
    schedules.tick().await.expect("tick");
    assert_eq!(
        f.runs(&id).await,
        [(upcoming[0], RunKind::Scheduled, Some(TaskStatus::Pending))]
    );
}

async fn bad_schedules_name_the_field(f: Fixture) {
    let schedules = f.instance();
    let check = |spec: ScheduleSpec, field: &str, reason_part: &str| {
        let schedules = schedules.clone();
        let (field, reason_part) = (field.to_owned(), reason_part.to_owned());
        async move {
            match schedules.create("ada", spec.clone()).await {
                Err(ScheduleError::Invalid { field: got, reason }) => {
                    assert_eq!(got, field, "{spec:?}: {reason}");
                    assert!(reason.contains(&reason_part), "{reason:?}");
                }
                other => panic!("{spec:?}: {other:?}"),
            }
        }
    };
    check(
        ScheduleSpec::new("x", "@daily", "unknown"),
        "task_type",
        "known types: report",
    )
    .await;
    check(
        ScheduleSpec::new("x", "every 0s", "report"),
        "expression",
        "at least 1 s",
    )
    .await;
    check(
        ScheduleSpec::new("x", "99 * * * *", "report"),
        "expression",
        "",
    )
    .await;
    check(
        ScheduleSpec {
            timezone: "Europe/Atlantis".into(),
            ..ScheduleSpec::new("x", "@daily", "report")
        },
        "timezone",
        "Europe/Atlantis",
    )
    .await;
    check(
        ScheduleSpec::new("", "@daily", "report"),
        "name",
        "1 to 200",
    )
    .await;
    assert!(schedules.list(None).await.expect("list").is_empty());
    assert!(matches!(
        schedules
            .update("sched_0_00", ScheduleSpec::new("x", "@daily", "report"))
            .await,
        Err(ScheduleError::Store(StoreError::NotFound))
    ));
}

async fn run_now_creates_a_manual_run(f: Fixture) {
    let schedules = f.instance();
    let (id, _) = f
        .schedule(&schedules, every_second(OverlapPolicy::Skip))
        .await;
    schedules.set_paused(&id, true).await.expect("pause");
    let task = schedules.run_now(&id).await.expect("run now");
    assert_eq!(
        (task.user_id.as_str(), task.task_type.as_str()),
        ("ada", "report")
    );
    let runs = schedules.runs(&id, 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].kind, runs[0].task_id.as_ref()),
        (RunKind::Manual, Some(&task.id))
    );
    assert!(matches!(
        schedules.run_now("sched_0_00").await,
        Err(ScheduleError::Store(StoreError::NotFound))
    ));
}

/// The loop with the real clock: it fires at the due second without polling, and an edit
/// wakes it even though `max_sleep` is an hour.
#[tokio::test]
async fn the_loop_wakes_at_due_times_and_on_edits() {
    let store = MemoryStore::new();
    let mut feed = store.subscribe();
    let schedules = Schedules::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        None,
        SchedulerConfig {
            max_sleep: Duration::from_secs(3600),
            ..SchedulerConfig::default()
        },
        Arc::new(SystemClock),
    )
    .expect("config");
    let stop = CancellationToken::new();
    let running = schedules.start(stop.clone());
    // Created after the loop went to sleep with nothing to do: only the edit's wake-up can
    // make it fire within the wait.
    tokio::task::yield_now().await;
    let schedule = schedules
        .create("ada", every_second(OverlapPolicy::Allow))
        .await
        .expect("create");
    let mut fired = Vec::new();
    while fired.len() < 2 {
        let change = tokio::time::timeout(Duration::from_secs(5), feed.recv())
            .await
            .expect("a task within the wait")
            .expect("feed open");
        if let TaskChange::Upserted(task) = change {
            fired.push(task.created_at);
        }
    }
    assert!(fired[0] >= schedule.created_at);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops")
        .expect("no panic");
    let runs = schedules.runs(&schedule.id, 10).await.expect("runs");
    assert!(runs.len() >= 2);
    assert!(
        runs.iter().all(|r| r.scheduled_at % 1000 == 0),
        "on whole seconds"
    );
}

/// The edit path alone: a schedule whose next time is months away puts the loop to sleep (for
/// `max_sleep`, an hour); an edit to a time about two seconds ahead must fire at that second,
/// which only the edit's wake-up can make happen.
#[tokio::test]
async fn an_edit_to_a_near_time_fires_on_time_without_waiting_for_a_poll() {
    let store = MemoryStore::new();
    let mut feed = store.subscribe();
    let schedules = Schedules::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        None,
        SchedulerConfig {
            max_sleep: Duration::from_secs(3600),
            ..SchedulerConfig::default()
        },
        Arc::new(SystemClock),
    )
    .expect("config");
    // Midnight on the first of January: never within this test.
    let far = ScheduleSpec::new("yearly", "0 0 1 1 *", "report");
    let schedule = schedules.create("ada", far).await.expect("create");
    let upcoming = schedules.next_fire_times(&schedule, 1).expect("parses");
    let stop = CancellationToken::new();
    let running = schedules.start(stop.clone());
    // Let the loop make its pass and go to sleep on the far time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        upcoming[0] - task_core::now_millis() > 3_600_000,
        "the first time is far away: {upcoming:?}"
    );
    // Fire at a whole second two or three seconds from now (cron with a seconds field, UTC).
    let at = (task_core::now_millis() / 1000 + 2) * 1000;
    let seconds = at / 1000;
    let expression = format!(
        "{} {} {} * * *",
        seconds % 60,
        seconds / 60 % 60,
        seconds / 3600 % 24
    );
    let edited = schedules
        .update(
            &schedule.id,
            ScheduleSpec::new("soon", expression.clone(), "report"),
        )
        .await
        .expect("edit");
    assert_eq!(
        schedules.next_fire_times(&edited, 1).expect("parses"),
        vec![at],
        "{expression}"
    );
    let change = tokio::time::timeout(Duration::from_secs(5), feed.recv())
        .await
        .expect("the edited time fired within the wait, not after max_sleep")
        .expect("feed open");
    let TaskChange::Upserted(task) = change else {
        panic!("a new task, got {change:?}");
    };
    assert!(
        (at..at + 1000).contains(&task.created_at),
        "fired on time: due {at}, created {}",
        task.created_at
    );
    let runs = schedules.runs(&schedule.id, 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].scheduled_at, runs[0].kind, runs[0].task_id.as_ref()),
        (at, RunKind::Scheduled, Some(&task.id))
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops")
        .expect("no panic");
}
