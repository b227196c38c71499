//! kill -9: tasks running at the crash finish after a restart, and a crash loop under creation
//! load leaves an intact database holding every task a client was told was created.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{add_user, get_json, until_completed, until_task, Server, QUICK_RESCUE};
use crate::cluster::{client, create_task};
use crate::process::WAIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_running_at_a_kill_9_finish_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let mut args = QUICK_RESCUE.to_vec();
    args.extend(["--workers", "4", "--max-running-per-user", "0"]);

    let server = Server::start(dir.path(), &args);
    let client = client();
    let mut ids = Vec::new();
    for _ in 0..8 {
        let task = create_task(
            &client,
            &server,
            &token,
            &json!({"task_type": "sleep", "params": {"ms": 1500, "steps": 3}}),
        )
        .await;
        ids.push(task["id"].as_str().unwrap().to_owned());
    }
    let running = until_task(&server, &token, &ids[0], |task| {
        task["status"] == "processing" && task["progress"].as_i64() > Some(0)
    })
    .await;
    assert_eq!(running["attempt"], 1, "{running}");
    server.kill9();

    let server = Server::start(dir.path(), &args);
    for id in &ids {
        let events = until_completed(&server, &token, id).await;
        let done = &events.last().unwrap()["task"];
        assert_eq!(
            done["result"],
            json!({"slept_ms": 1500, "steps": 3}),
            "{done}"
        );
    }
    // The one that was running lost its attempt to the crash and ran again.
    let (_, first) = get_json(&server, &token, &format!("/api/tasks/{}", ids[0])).await;
    assert_eq!(first["attempt"], 2, "{first}");
    let (status, page) = get_json(&server, &token, "/api/tasks?limit=1000").await;
    assert_eq!(status, 200);
    let tasks = page["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), ids.len(), "nothing lost, nothing doubled");
    assert!(
        tasks.iter().all(|task| task["status"] == "completed"),
        "{page}"
    );
}

/// Creates noop tasks on `url` until the server stops answering, sending each acknowledged id.
async fn create_until_refused(url: String, token: String, acked: mpsc::UnboundedSender<String>) {
    let client = client();
    loop {
        let sent = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"task_type": "noop"}))
            .timeout(WAIT)
            .send()
            .await;
        let Ok(response) = sent else { return };
        if response.status() != reqwest::StatusCode::CREATED {
            return;
        }
        // A 201 whose body is cut off by the crash was still acknowledged, but has no id to
        // check; only complete answers count.
        let Ok(task) = response.json::<Value>().await else {
            return;
        };
        let _ = acked.send(task["id"].as_str().unwrap().to_owned());
    }
}

/// `PRAGMA integrity_check` of the SQLite file in `dir`.
fn integrity(dir: &Path) -> String {
    let db = rusqlite::Connection::open(dir.join("tasklane.db")).expect("open the database");
    db.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_loop_under_creation_load_keeps_every_acknowledged_task_and_an_intact_file() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let args = ["--workers", "2", "--max-queued-per-user", "1000000"];
    let mut acked = HashSet::new();
    for round in 0..5 {
        let server = Server::start(dir.path(), &args);
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let url = format!("http://{}/api/tasks", server.addr);
                tokio::spawn(create_until_refused(url, token.clone(), sender.clone()))
            })
            .collect();
        drop(sender);
        // Kill mid-stream, with creations in flight, after a varying number of them.
        for _ in 0..(40 + 15 * round) {
            let id = tokio::time::timeout(WAIT, receiver.recv())
                .await
                .expect("creations go on")
                .expect("a creator is still running");
            acked.insert(id);
        }
        server.kill9();
        for creator in clients {
            creator.await.unwrap();
        }
        while let Some(id) = receiver.recv().await {
            acked.insert(id);
        }
        assert_eq!(integrity(dir.path()), "ok", "after round {round}");
    }

    let server = Server::start(dir.path(), &args);
    let mut stored = HashSet::new();
    let mut path = "/api/tasks?limit=1000".to_owned();
    loop {
        let (status, page) = get_json(&server, &token, &path).await;
        assert_eq!(status, 200, "{page}");
        for task in page["tasks"].as_array().unwrap() {
            stored.insert(task["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/tasks?limit=1000&cursor={cursor}"),
            None => break,
        }
    }
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    assert!(acked.len() >= 5 * 40, "{}", acked.len());
}
