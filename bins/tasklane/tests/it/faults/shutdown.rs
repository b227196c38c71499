//! SIGTERM under load: the process exits 0 within its grace, and no task is left `processing`
//! (running ones are released to `pending`, to run again without losing an attempt).

use std::time::Duration;

use serde_json::json;

use super::{add_user, until_task, Server};
use crate::cluster::{client, create_task};
use crate::process::WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_exits_0_within_the_grace_leaving_nothing_processing() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let grace = Duration::from_secs(2);
    let server = Server::start(
        dir.path(),
        &[
            "--shutdown-grace",
            "2s",
            "--workers",
            "4",
            "--max-running-per-user",
            "0",
            "--max-queued-per-user",
            "1000000",
        ],
    );
    let client = client();
    // Tasks that outlive the grace, so shutdown has to cut them off.
    let mut long = Vec::new();
    for _ in 0..4 {
        let task = create_task(
            &client,
            &server,
            &token,
            &json!({"task_type": "sleep", "params": {"ms": 60000, "steps": 60}}),
        )
        .await;
        long.push(task["id"].as_str().unwrap().to_owned());
    }
    until_task(&server, &token, &long[3], |task| {
        task["status"] == "processing"
    })
    .await;
    // Creations keep arriving while it shuts down.
    let creators: Vec<_> = (0..4)
        .map(|_| {
            let url = format!("http://{}/api/tasks", server.addr);
            let (client, token) = (client.clone(), token.clone());
            tokio::spawn(async move {
                let mut created = 0;
                while let Ok(response) = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"task_type": "noop"}))
                    .timeout(WAIT)
                    .send()
                    .await
                {
                    if !response.status().is_success() {
                        break;
                    }
                    created += 1;
                }
                created
            })
        })
        .collect();

    let (code, took) = tokio::task::spawn_blocking(move || server.terminate(WAIT))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    // The grace, plus the time it takes to release the cut-off tasks and exit.
    assert!(took < grace + Duration::from_secs(3), "took {took:?}");
    for creator in creators {
        creator.await.unwrap();
    }

    let db = rusqlite::Connection::open(dir.path().join("tasklane.db")).unwrap();
    let processing: i64 = db
        .query_row(
            "SELECT count(*) FROM background_tasks WHERE status = 'processing'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(processing, 0, "a task was left processing");
    for id in &long {
        let (status, attempt): (String, i64) = db
            .query_row(
                "SELECT status, attempt FROM background_tasks WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(status, "pending", "{id} is released to run again");
        assert_eq!(
            attempt, 0,
            "{id}: a task cut off by shutdown keeps its attempt"
        );
    }
}
