//! `schedule add|list|pause|resume|remove`, and the end-to-end promise: an every-second
//! schedule on two instances sharing PostgreSQL creates one task per second, each once; and an
//! edit through the API fires at its new time at once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cluster::TestSchema;
use crate::process::{last_line, run, task_http};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn schedules_are_added_listed_paused_resumed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let added = run(task_http(dir.path()).args([
        "schedule",
        "add",
        "--user",
        "Ada@Example.com",
        "--name",
        "Daily quiz",
        "--expression",
        "0 6 * * *",
        "--timezone",
        "Europe/Stockholm",
        "--task-type",
        "generation",
        "--params",
        r#"{"topic":"Sport"}"#,
    ]));
    assert!(added.status.success(), "{added:?}");
    let id = last_line(&added);
    assert!(id.starts_with("sched_"), "{id}");

    let listed = stdout(&run(task_http(dir.path()).args(["schedule", "list"])));
    let row: Vec<&str> = listed.trim_end().split('\t').collect();
    assert_eq!(
        [row[0], row[1], row[2], row[3], row[4], row[5], row[7]],
        [
            id.as_str(),
            "ada@example.com",
            "active",
            "0 6 * * *",
            "Europe/Stockholm",
            "generation",
            "Daily quiz"
        ],
        "{listed}"
    );
    // 06:00 in Stockholm is 04:00 or 05:00 UTC.
    assert!(
        row[6].contains("T04:00:00") || row[6].contains("T05:00:00"),
        "{listed}"
    );

    let paused = run(task_http(dir.path()).args(["schedule", "pause", &id]));
    assert!(paused.status.success(), "{paused:?}");
    let listed = stdout(&run(task_http(dir.path()).args([
        "schedule",
        "list",
        "--user",
        "ada@example.com",
    ])));
    assert!(
        listed.contains("\tpaused\t") && listed.contains("\t-\t"),
        "{listed}"
    );
    let resumed = run(task_http(dir.path()).args(["schedule", "resume", &id]));
    assert!(resumed.status.success(), "{resumed:?}");
    assert!(stdout(&run(task_http(dir.path()).args(["schedule", "list"]))).contains("\tactive\t"));
    let others = stdout(&run(task_http(dir.path()).args([
        "schedule",
        "list",
        "--user",
        "bo@example.com",
    ])));
    assert_eq!(others, "");

    let removed = run(task_http(dir.path()).args(["schedule", "remove", &id]));
    assert!(removed.status.success(), "{removed:?}");
    assert_eq!(
        stdout(&run(task_http(dir.path()).args(["schedule", "list"]))),
        ""
    );
    let again = run(task_http(dir.path()).args(["schedule", "remove", &id]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("cannot remove schedule"));
}

#[test]
fn bad_schedules_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, reason) in [
        (
            "--expression",
            "every 0s",
            "invalid expression: the interval must be at least 1 s",
        ),
        ("--expression", "61 * * * *", "invalid expression"),
        ("--timezone", "Mars/Olympus", "invalid timezone"),
        (
            "--task-type",
            "nope",
            "invalid task_type: unknown task type",
        ),
        ("--overlap", "sometimes", "--overlap"),
    ] {
        let mut args = vec![
            "schedule",
            "add",
            "--user",
            "ada@example.com",
            "--name",
            "n",
            "--expression",
            "@daily",
            "--task-type",
            "noop",
        ];
        match args.iter().position(|arg| *arg == flag) {
            Some(at) => args[at + 1] = value,
            None => args.extend([flag, value]),
        }
        let output = run(task_http(dir.path()).args(&args));
        assert!(!output.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{flag} {value}: {stderr}");
    }
    assert_eq!(
        stdout(&run(task_http(dir.path()).args(["schedule", "list"]))),
        ""
    );
}

/// Two instances on one PostgreSQL schema both run the scheduler for an every-second schedule.
/// Over a ten-second window of fire times, exactly ten runs are recorded, each with its own
/// task, and no task exists without its run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_second_schedule_on_two_instances_fires_each_second_once() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let db_dir = tempfile::tempdir().unwrap();
    let added = run(task_http(db_dir.path())
        .env("TASKLANE_DB", schema.url())
        .env("TASKLANE_PG_SCHEMA", schema.name())
        .args([
            "schedule",
            "add",
            "--user",
            "ada@example.com",
            "--name",
            "tick",
            "--expression",
            "* * * * * *",
            "--task-type",
            "noop",
            "--overlap",
            "allow",
        ]));
    assert!(added.status.success(), "{added:?}");
    let id = last_line(&added);
    let _first = schema.start(&[]);
    let _second = schema.start(&[]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // The window starts at the next whole second after both instances run.
    let start = (now / 1000 + 1) * 1000;
    let end = start + 10_000;
    let admin = schema.admin().await;
    let runs_sql = format!(
        r#"SELECT r.scheduled_at, r.kind, r.task_id, t.id IS NOT NULL
           FROM "{s}".schedule_runs r LEFT JOIN "{s}".background_tasks t ON t.id = r.task_id
           WHERE r.schedule_id = $1 ORDER BY r.scheduled_at"#,
        s = schema.name()
    );
    // Wait (bounded) until the scheduler has recorded a time past the window.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let latest: Option<i64> = admin
            .query_one(
                &format!(
                    r#"SELECT max(scheduled_at) FROM "{}".schedule_runs WHERE schedule_id = $1"#,
                    schema.name()
                ),
                &[&id],
            )
            .await
            .unwrap()
            .get(0);
        if latest.is_some_and(|latest| latest >= end) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no run past the window yet: {latest:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows = admin.query(&runs_sql, &[&id]).await.unwrap();
    let in_window: Vec<(i64, String, Option<String>, bool)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .filter(|(at, ..)| (start..end).contains(at))
        .collect();
    let seconds: Vec<i64> = in_window.iter().map(|(at, ..)| *at).collect();
    assert_eq!(
        seconds,
        (0..10).map(|s| start + s * 1000).collect::<Vec<_>>(),
        "one run per second"
    );
    assert!(in_window
        .iter()
        .all(|(_, kind, task, exists)| kind == "scheduled" && task.is_some() && *exists));
    let tasks: BTreeSet<&String> = in_window
        .iter()
        .filter_map(|(_, _, t, _)| t.as_ref())
        .collect();
    assert_eq!(tasks.len(), 10, "ten distinct tasks");
    // Every task of the schedule's owner came from a recorded run: none was created twice.
    let orphans: i64 = admin
        .query_one(
            &format!(
                r#"SELECT count(*) FROM "{s}".background_tasks t WHERE t.user_id = 'ada@example.com'
                   AND NOT EXISTS (SELECT 1 FROM "{s}".schedule_runs r WHERE r.task_id = t.id)"#,
                s = schema.name()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0);
}

/// The edit path through the binary: a schedule a year away lets the scheduler sleep for its
/// longest sleep (30 s); `PATCH /api/schedules/{id}` to a time two seconds ahead must fire at
/// that second, which only the edit's wake-up can make happen within the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_through_the_api_fires_at_the_new_time_without_waiting_for_a_poll() {
    use serde_json::{json, Value};

    use crate::cluster::{client, EventStream};
    use crate::faults::{add_user, Server};

    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "ada@example.com");
    let server = Server::start(dir.path(), &[]);
    let client = client();
    let created: Value = client
        .post(crate::cluster::Endpoint::url(&server, "/api/schedules"))
        .bearer_auth(&token)
        .json(&json!({"name": "yearly", "expression": "0 0 1 1 *", "task_type": "noop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().expect("a schedule id").to_owned();
    let mut tasks = EventStream::open(&client, &server, &token, "/api/subscribeToTasks").await;
    // The scheduler's pass after the create has put it to sleep on the far time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let at = (now / 1000 + 2) * 1000;
    let seconds = at / 1000;
    let expression = format!(
        "{} {} {} * * *",
        seconds % 60,
        seconds / 60 % 60,
        seconds / 3600 % 24
    );
    let response = client
        .patch(crate::cluster::Endpoint::url(
            &server,
            &format!("/api/schedules/{id}"),
        ))
        .bearer_auth(&token)
        .json(&json!({"expression": expression}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let edited: Value = response.json().await.unwrap();
    assert_eq!(edited["next_fire_times"][0], at, "{edited}");
    // Well under the scheduler's 30 s sleep: the first task event is the fired task.
    let task = loop {
        let event = tasks
            .next_within(Duration::from_secs(6))
            .await
            .expect("the stream stays open");
        if event["type"] == "update" && event["task"]["task_type"] == "noop" {
            break event["task"].clone();
        }
    };
    let created_at = task["created_at"].as_i64().expect("created_at");
    assert!(
        (at..at + 1000).contains(&created_at),
        "fired on time: due {at}, created {created_at}"
    );
}
