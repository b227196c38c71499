//! Several `task-http` processes sharing one PostgreSQL schema, end to end: a task created on
//! one instance runs on another and its progress streams back over SSE in order; a killed
//! instance's task is finished by another once its lease expires; a partial output stored by
//! one instance reaches an SSE client of another live; three instances drain 10,000 tasks,
//! each run exactly once. Skipped (with a printed reason) without
//! `TASKLANE_TEST_POSTGRES`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use task_core::TaskStatus;
use task_postgres::{PostgresConfig, PostgresStore};
use task_store::{ClaimRequest, Lease, TaskChange, TaskEventLog, TaskStore};
use tokio::sync::broadcast::error::RecvError;

use crate::cluster::{client, create_task, EventStream, Instance, TestSchema};
use crate::process::WAIT;

/// The events of `stream` up to and including the first `complete`; the stream must end
/// right after it.
async fn until_complete(stream: &mut EventStream) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = stream.next().await.expect("events until `complete`");
        let done = event["type"] == "complete";
        assert!(
            event["type"] == "update" || done,
            "unexpected event {event} after {events:#?}"
        );
        events.push(event);
        if done {
            assert!(stream.next().await.is_none(), "the stream ends after it");
            return events;
        }
    }
}

/// Asserts the tasks of `events` have strictly increasing versions.
fn assert_versions_increase(events: &[Value]) {
    let versions: Vec<i64> = events
        .iter()
        .map(|event| event["task"]["version"].as_i64().expect("a version"))
        .collect();
    assert!(
        versions.windows(2).all(|pair| pair[0] < pair[1]),
        "versions in order, each once: {versions:?}"
    );
}

/// `(progress, description)` of every state with progress, repeats of the same pair
/// collapsed.
fn progress_steps(events: &[Value]) -> Vec<(i64, String)> {
    let mut steps: Vec<(i64, String)> = Vec::new();
    for task in events.iter().map(|event| &event["task"]) {
        let progress = task["progress"].as_i64().expect("progress");
        if progress == 0 {
            continue;
        }
        let step = (
            progress,
            task["description"].as_str().unwrap_or_default().to_owned(),
        );
        if steps.last() != Some(&step) {
            steps.push(step);
        }
    }
    steps
}

/// What a `sleep` task with `steps` steps reports (`total` 100), in order.
fn expected_sleep_steps(steps: i64) -> Vec<(i64, String)> {
    (1..=steps)
        .map(|step| (100 * step / steps, format!("Step {step} of {steps}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_on_one_instance_runs_on_another_and_its_progress_streams_back() {
    const STEPS: i64 = 8;
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // A only serves HTTP, so whoever runs the task, it is not A.
    let a = schema.start(&["--workers", "0"]);
    let token = a.first_admin_token();
    let client = client();
    let task = create_task(
        &client,
        &a,
        &token,
        &json!({"task_type": "sleep", "params": {"ms": 800, "steps": STEPS}}),
    )
    .await;
    let id = task["id"].as_str().expect("an id");
    let mut on_a = EventStream::open(
        &client,
        &a,
        &token,
        &format!("/api/subscribeToTask?taskId={id}"),
    )
    .await;
    let snapshot = on_a.next().await.expect("the snapshot");
    assert_eq!(snapshot["task"]["status"], "pending", "{snapshot}");

    // Nothing can run the task before B starts, so A's stream sees all of it.
    let b = schema.start(&[]);
    let mut events = vec![snapshot];
    events.extend(until_complete(&mut on_a).await);

    assert_versions_increase(&events);
    let running: Vec<&Value> = events
        .iter()
        .map(|event| &event["task"])
        .filter(|task| task["status"] == "processing")
        .collect();
    assert!(!running.is_empty(), "{events:#?}");
    for task in &running {
        assert!(b.owns(&task["lease_owner"]), "B runs it: {task}");
        assert!(!a.owns(&task["lease_owner"]), "{task}");
    }
    // Every step B wrote arrives on A, in order. (The last step and the completion are
    // written back to back, so A may see them as one state: the completed task carries the
    // last step's progress and description.)
    assert_eq!(progress_steps(&events), expected_sleep_steps(STEPS));
    let done = &events.last().expect("events")["task"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["attempt"], 1);
    assert_eq!(done["result"], json!({"slept_ms": 800, "steps": STEPS}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_task_is_finished_by_another_after_its_lease_expires() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let quick_rescue = ["--lease", "2s", "--rescue-interval", "250ms"];
    let b = schema.start(&quick_rescue);
    let token = b.first_admin_token();
    let client = client();
    let task = create_task(
        &client,
        &b,
        &token,
        &json!({"task_type": "sleep", "params": {"ms": 2000, "steps": 4}}),
    )
    .await;
    let watch = format!(
        "/api/subscribeToTask?taskId={}",
        task["id"].as_str().expect("an id")
    );
    let mut on_b = EventStream::open(&client, &b, &token, &watch).await;
    loop {
        let event = on_b.next().await.expect("B's progress");
        if event["task"]["progress"].as_i64() > Some(0) {
            assert!(b.owns(&event["task"]["lease_owner"]), "{event}");
            break;
        }
    }

    // A starts while B holds the task, so A cannot take it before B dies.
    let a = schema.start(&quick_rescue);
    let mut on_a = EventStream::open(&client, &a, &token, &watch).await;
    let snapshot = on_a.next().await.expect("the snapshot");
    assert_eq!(snapshot["task"]["status"], "processing", "{snapshot}");
    assert!(b.owns(&snapshot["task"]["lease_owner"]), "{snapshot}");

    drop(on_b);
    let killed_at = Instant::now();
    drop(b);
    let mut events = vec![snapshot];
    events.extend(until_complete(&mut on_a).await);
    eprintln!(
        "the task completed on A {:?} after B was killed",
        killed_at.elapsed()
    );

    assert_versions_increase(&events);
    let rerun: Vec<&Value> = events
        .iter()
        .map(|event| &event["task"])
        .filter(|task| task["status"] == "processing" && task["attempt"] == 2)
        .collect();
    assert!(!rerun.is_empty(), "A ran it again: {events:#?}");
    for task in rerun {
        assert!(a.owns(&task["lease_owner"]), "{task}");
        assert_eq!(
            task["error"], "worker lost: lease expired",
            "the rescuer returned it"
        );
    }
    // The run on A starts over, and A's stream sees each of its steps.
    let second_attempt: Vec<Value> = events
        .iter()
        .filter(|event| event["task"]["attempt"] == 2)
        .cloned()
        .collect();
    assert_eq!(
        progress_steps(&second_attempt),
        expected_sleep_steps(4),
        "{events:#?}"
    );
    let done = &events.last().expect("events")["task"];
    assert_eq!(done["status"], "completed");
    assert_eq!(done["attempt"], 2, "the crash cost one attempt");
    assert_eq!(done["error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_stored_by_one_instance_reaches_an_sse_client_of_another_live() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let a = schema.start(&["--workers", "0"]);
    let token = a.first_admin_token();
    let client = client();
    // Due in an hour: only the test's own store (the worker "instance") takes it.
    let run_at = task_core::now_millis() + 3_600_000;
    let task = create_task(
        &client,
        &a,
        &token,
        &json!({"task_type": "sleep", "params": {"ms": 1}, "run_at": run_at}),
    )
    .await;
    let id = task["id"].as_str().expect("an id");
    let mut on_a = EventStream::open(
        &client,
        &a,
        &token,
        &format!("/api/subscribeToTask?taskId={id}"),
    )
    .await;
    assert_eq!(on_a.next().await.expect("the snapshot")["type"], "update");

    let worker = PostgresStore::connect(schema.url(), PostgresConfig::with_schema(schema.name()))
        .await
        .expect("connect the worker's store");
    let claimed = worker
        .claim(&ClaimRequest {
            worker_id: "test-worker".into(),
            limit: 1,
            task_types: Vec::new(),
            lease_for: Duration::from_secs(60),
            max_running_per_user: None,
            now: run_at + 1,
        })
        .await
        .expect("claim");
    assert_eq!(claimed[0].id.as_str(), id);
    let lease = Lease::of(&claimed[0]).expect("a lease");
    let running = on_a.next().await.expect("the claim");
    assert_eq!(running["task"]["status"], "processing", "{running}");

    // Live, not on a reconnect: the stream on A is open all along.
    for n in 0..3 {
        worker
            .append_event(&lease, json!({"text": format!("Question {n}?")}))
            .await
            .expect("append");
        let partial = on_a.next().await.expect("the partial");
        assert_eq!(
            partial,
            json!({"type": "partial", "taskId": id, "item": {"text": format!("Question {n}?")}, "index": n}),
        );
    }
    worker
        .complete(&lease, json!({"questions": 3}))
        .await
        .expect("complete");
    assert_eq!(
        on_a.next().await.expect("the completion")["type"],
        "complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_drain_ten_thousand_tasks_each_run_exactly_once() {
    const TASKS: usize = 10_000;
    /// Requests in flight while the tasks are created.
    const CREATORS: usize = 24;
    /// The bound on creating and draining everything: about ten times what this 2-core
    /// machine needs under load.
    const DRAIN_WAIT: Duration = Duration::from_secs(100);
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Fairness off: every claim is the plain `FOR UPDATE SKIP LOCKED` one, racing the other
    // instances' claims.
    let args = [
        "--max-running-per-user",
        "0",
        "--max-queued-per-user",
        "20000",
        // One user creates 10,000 tasks as fast as it can: no creation rate limit.
        "--create-rate",
        "off",
    ];
    let first = schema.start(&args);
    let token = first.first_admin_token();
    // The database counts the claims itself: a trigger logs every `pending` → `processing`.
    let admin = schema.admin().await;
    admin
        .batch_execute(&format!(
            r#"CREATE TABLE "{s}".claims (task_id text NOT NULL, worker text NOT NULL);
               CREATE FUNCTION "{s}".log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                   INSERT INTO "{s}".claims (task_id, worker) VALUES (NEW.id, NEW.lease_owner);
                   RETURN NULL;
               END $$;
               CREATE TRIGGER log_claims AFTER UPDATE ON "{s}".background_tasks FOR EACH ROW
                   WHEN (OLD.status = 'pending' AND NEW.status = 'processing')
                   EXECUTE FUNCTION "{s}".log_claim();"#,
            s = schema.name()
        ))
        .await
        .expect("install the claim log");
    let instances: Vec<Instance> = vec![first, schema.start(&args), schema.start(&args)];

    // Completions are watched on a store of the test's own on the same schema: its feed
    // carries every instance's changes.
    let watcher = PostgresStore::connect(schema.url(), PostgresConfig::with_schema(schema.name()))
        .await
        .expect("connect the watcher");
    let mut feed = watcher.subscribe();

    let started = Instant::now();
    let client = client();
    let mut creators = tokio::task::JoinSet::new();
    for lane in 0..CREATORS {
        let client = client.clone();
        let token = token.clone();
        // Each lane sends its share to every instance in turn.
        let urls: Vec<String> = instances
            .iter()
            .map(|instance| instance.url("/api/tasks"))
            .collect();
        creators.spawn(async move {
            for n in (lane..TASKS).step_by(CREATORS) {
                let response = client
                    .post(&urls[n % urls.len()])
                    .bearer_auth(&token)
                    .json(&json!({"task_type": "noop"}))
                    .timeout(WAIT)
                    .send()
                    .await
                    .expect("POST /api/tasks");
                assert_eq!(response.status(), reqwest::StatusCode::CREATED);
            }
        });
    }
    while let Some(created) = creators.join_next().await {
        created.expect("a creator lane");
    }
    let created_in = started.elapsed();

    let mut completed: HashSet<String> = HashSet::new();
    tokio::time::timeout(DRAIN_WAIT, async {
        while completed.len() < TASKS {
            match feed.recv().await {
                Ok(TaskChange::Upserted(task)) if task.status == TaskStatus::Completed => {
                    completed.insert(task.id.to_string());
                }
                Ok(_) => {}
                // Missed changes: the table says what completed meanwhile.
                Err(RecvError::Lagged(_)) => {
                    let rows = admin
                        .query(
                            &format!(
                                "SELECT id FROM \"{}\".background_tasks \
                                 WHERE status = 'completed'",
                                schema.name()
                            ),
                            &[],
                        )
                        .await
                        .expect("read completed tasks");
                    completed.extend(rows.iter().map(|row| row.get::<_, String>(0)));
                }
                Err(RecvError::Closed) => panic!("the watcher's feed closed"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {TASKS} completed in time", completed.len()));
    let drained_in = started.elapsed();
    eprintln!(
        "3 instances: {TASKS} tasks created in {created_in:?}, all completed after \
         {drained_in:?} ({:.0} tasks/s)",
        TASKS as f64 / drained_in.as_secs_f64()
    );

    let tasks = admin
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE status = 'completed' AND attempt = 1) \
                 FROM \"{}\".background_tasks",
                schema.name()
            ),
            &[],
        )
        .await
        .expect("count tasks");
    assert_eq!(
        (tasks.get::<_, i64>(0), tasks.get::<_, i64>(1)),
        (TASKS as i64, TASKS as i64),
        "every task completed on its first attempt"
    );
    let claims = admin
        .query_one(
            &format!(
                "SELECT count(*), count(DISTINCT task_id), count(DISTINCT worker) \
                 FROM \"{}\".claims",
                schema.name()
            ),
            &[],
        )
        .await
        .expect("count claims");
    assert_eq!(
        (claims.get::<_, i64>(0), claims.get::<_, i64>(1)),
        (TASKS as i64, TASKS as i64),
        "one claim per task, no task claimed twice"
    );
    assert_eq!(
        claims.get::<_, i64>(2),
        3,
        "every instance ran some of the tasks"
    );
    drop(watcher);
}
