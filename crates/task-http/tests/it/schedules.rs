//! The schedule endpoints: the full lifecycle, who sees what, bad input, and schedules firing
//! through the real scheduler.

use http::Method;
use serde_json::{json, Value};
use task_store::{TaskChange, TaskStore};

use crate::support::{TestServer, ALICE, WAIT};

async fn create(server: &TestServer, token: &str, body: Value) -> Value {
    let answer = server
        .post("/api/schedules")
        .bearer(token)
        .json(&body)
        .send()
        .await;
    answer.expect(201);
    let schedule = answer.json();
    assert_eq!(
        answer.header("location").unwrap(),
        format!("/api/schedules/{}", schedule["id"].as_str().unwrap())
    );
    schedule
}

fn times(schedule: &Value) -> Vec<i64> {
    schedule["next_fire_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_created_read_edited_paused_and_deleted_by_its_owner() {
    let server = TestServer::start().await;
    let schedule = create(
        &server,
        &server.alice,
        json!({
            "name": "Daily quiz",
            "expression": "0 6 * * *",
            "timezone": "Europe/Stockholm",
            "task_type": "noop",
            "params": {"topic": "sport"},
            "label": "Morning"
        }),
    )
    .await;
    assert_eq!(schedule["user_id"], ALICE);
    assert_eq!(schedule["overlap"], "skip");
    assert_eq!(schedule["catch_up"], "latest");
    assert_eq!(schedule["paused"], false);
    assert_eq!(schedule["version"], 1);
    assert_eq!(schedule["last_runs"], json!([]));
    let next = times(&schedule);
    assert_eq!(next.len(), 5);
    // Daily: one day apart, except across a DST change (23 or 25 hours).
    assert!(next
        .windows(2)
        .all(|w| [23, 24, 25].contains(&((w[1] - w[0]) / 3_600_000))));
    let id = schedule["id"].as_str().unwrap().to_owned();
    let path = format!("/api/schedules/{id}");

    let mine = server
        .get("/api/schedules")
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(mine.json()["schedules"].as_array().unwrap().len(), 1);
    let bobs = server
        .get("/api/schedules")
        .bearer(&server.bob)
        .send()
        .await;
    assert_eq!(bobs.json()["schedules"], json!([]));
    let everyone = server
        .get("/api/schedules")
        .bearer(&server.root)
        .send()
        .await;
    assert_eq!(everyone.json()["schedules"][0]["id"], id.as_str());
    server
        .get(&path)
        .bearer(&server.bob)
        .send()
        .await
        .expect(404);
    server
        .get(&path)
        .bearer(&server.root)
        .send()
        .await
        .expect(200);
    server.get("/api/schedules").send().await.expect(401);

    let patched = server
        .call(Method::PATCH, &path)
        .bearer(&server.alice)
        .json(&json!({"name": "Quiz", "overlap": "cancel-previous", "expression": "every 15m"}))
        .send()
        .await;
    patched.expect(200);
    let patched = patched.json();
    assert_eq!(patched["name"], "Quiz");
    assert_eq!(patched["overlap"], "cancel-previous");
    assert_eq!(patched["version"], 2);
    let next = times(&patched);
    assert!(next.windows(2).all(|w| w[1] - w[0] == 900_000), "{next:?}");
    server
        .call(Method::PATCH, &path)
        .bearer(&server.bob)
        .json(&json!({"name": "Mine now"}))
        .send()
        .await
        .expect(404);

    let paused = server
        .post(&format!("{path}/pause"))
        .bearer(&server.alice)
        .send()
        .await;
    paused.expect(200);
    assert_eq!(paused.json()["paused"], true);
    assert_eq!(paused.json()["next_fire_times"], json!([]));
    let resumed = server
        .post(&format!("{path}/resume"))
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(resumed.json()["paused"], false);
    assert_eq!(times(&resumed.json()).len(), 5);

    server
        .call(Method::DELETE, &path)
        .bearer(&server.bob)
        .send()
        .await
        .expect(404);
    server
        .call(Method::DELETE, &path)
        .bearer(&server.alice)
        .send()
        .await
        .expect(204);
    server
        .get(&path)
        .bearer(&server.alice)
        .send()
        .await
        .expect(404);
    server
        .call(Method::PUT, &path)
        .bearer(&server.alice)
        .send()
        .await
        .expect(405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let base = json!({"name": "n", "expression": "@daily", "task_type": "noop"});
    let check = |change: Value, expected: &'static str| {
        let mut body = base.clone();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let server = &server;
        async move {
            let answer = server
                .post("/api/schedules")
                .bearer(&server.alice)
                .json(&body)
                .send()
                .await;
            answer.expect(400);
            let error = answer.error();
            assert!(error.starts_with(expected), "{body}: {error}");
        }
    };
    check(json!({"expression": "61 * * * *"}), "invalid expression: ").await;
    check(json!({"expression": "every 500ms"}), "invalid expression: ").await;
    check(
        json!({"expression": "every 0s"}),
        "invalid expression: the interval must be at least 1 s",
    )
    .await;
    check(
        json!({"timezone": "Mars/Olympus"}),
        "invalid timezone: \"Mars/Olympus\" is not an IANA time zone",
    )
    .await;
    check(
        json!({"task_type": "nope"}),
        "invalid task_type: unknown task type \"nope\"",
    )
    .await;
    check(json!({"overlap": "sometimes"}), "invalid overlap: ").await;
    check(json!({"catch_up": "all"}), "invalid catch_up: ").await;
    check(json!({"paused": "yes"}), "invalid paused: ").await;
    check(json!({"name": ""}), "invalid name: ").await;
    check(
        json!({"every": "1s"}),
        "invalid every: is not a known field",
    )
    .await;
    let listed = server
        .get("/api/schedules")
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(listed.json()["schedules"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_through_the_scheduler_and_run_now() {
    let server = TestServer::start().await;
    let mut feed = server.store.subscribe();
    let schedule = create(
        &server,
        &server.alice,
        json!({"name": "tick", "expression": "* * * * * *", "task_type": "noop", "overlap": "allow"}),
    )
    .await;
    let id = schedule["id"].as_str().unwrap().to_owned();
    // The scheduler creates the tasks; wait for the first two on the store's feed.
    let mut created = std::collections::BTreeSet::new();
    while created.len() < 2 {
        let change = tokio::time::timeout(WAIT, feed.recv())
            .await
            .expect("a scheduled task within the wait")
            .expect("feed open");
        if let TaskChange::Upserted(task) = change {
            if task.user_id == ALICE && task.task_type == "noop" {
                created.insert(task.id.to_string());
            }
        }
    }
    let path = format!("/api/schedules/{id}");
    let paused = server
        .post(&format!("{path}/pause"))
        .bearer(&server.alice)
        .send()
        .await;
    let runs = paused.json()["last_runs"].as_array().unwrap().clone();
    assert!(runs.len() >= 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["kind"] == "scheduled"));
    assert!(runs
        .iter()
        .all(|r| r["scheduled_at"].as_i64().unwrap() % 1000 == 0));
    let run_ids: Vec<String> = runs
        .iter()
        .map(|r| r["task_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        created.iter().all(|id| run_ids.contains(id)),
        "{created:?} in {run_ids:?}"
    );

    // Run now works while paused, and shows as a manual run.
    let ran = server
        .post(&format!("{path}/run-now"))
        .bearer(&server.alice)
        .send()
        .await;
    ran.expect(201);
    let task = ran.json();
    assert_eq!(task["task_type"], "noop");
    let after = server.get(&path).bearer(&server.alice).send().await.json();
    assert!(after["last_runs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["kind"] == "manual" && r["task_id"] == task["id"]));
    server
        .post(&format!("{path}/run-now"))
        .bearer(&server.bob)
        .send()
        .await
        .expect(404);
}
