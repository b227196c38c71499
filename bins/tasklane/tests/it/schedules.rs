//! `schedule add|list|pause|resume|remove`, and the end-to-end promise: an every-second
//! schedule on two instances sharing PostgreSQL creates one task per second, each once.

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
