//! `GET /api/tasks/counts` over HTTP: every task of the database by status and by type, for
//! superusers only, and new numbers after a change.

use serde_json::json;

use crate::support::{Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superusers_get_every_task_counted_and_changes_show() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    for token in [&server.alice, &server.bob, &server.bob] {
        server.create(token, json!({"task_type": "noop"})).await;
    }
    let sleeper = server
        .create(
            &server.bob,
            json!({"task_type": "sleep", "params": {"ms": 1}}),
        )
        .await;
    let counts = server
        .get("/api/tasks/counts")
        .bearer(&server.root)
        .send()
        .await;
    counts.expect(200);
    let counts = counts.json();
    assert_eq!(counts["total"], 4);
    assert_eq!(
        counts["byStatus"],
        json!({"waiting": 0, "pending": 4, "processing": 0, "completed": 0, "failed": 0, "cancelled": 0})
    );
    assert_eq!(counts["byType"], json!({"noop": 3, "sleep": 1}));
    assert!(counts["countedAt"].as_i64().unwrap() > 0);

    server
        .post(&format!("/api/tasks/{}/cancel", sleeper.id))
        .bearer(&server.bob)
        .send()
        .await
        .expect(200);
    // The server counts again at most every 2 s after a change: wait for the new numbers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let counts = server
            .get("/api/tasks/counts")
            .bearer(&server.root)
            .send()
            .await
            .json();
        if counts["byStatus"]["cancelled"] == 1 {
            assert_eq!(counts["byStatus"]["pending"], 3);
            assert_eq!(counts["total"], 4);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cancel never showed: {counts}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let refused = server
        .get("/api/tasks/counts")
        .bearer(&server.alice)
        .send()
        .await;
    refused.expect(403);
    assert!(refused.error().contains("superuser"), "{}", refused.error());
    server.get("/api/tasks/counts").send().await.expect(401);
}
