//! The per-user cap on open live streams.

use std::time::Duration;

use serde_json::json;

use crate::support::{Options, TestServer, WAIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_too_many_is_429_and_a_closed_stream_frees_its_slot() {
    let mut options = Options::default();
    options.config.max_sse_per_user = 2;
    options.config.retry_after = Duration::from_secs(3);
    let server = TestServer::start_with(options).await;
    let short = server
        .create(
            &server.alice,
            json!({"task_type":"sleep","params":{"ms":200,"steps":2}}),
        )
        .await;
    let mut finishing = server
        .get(&format!("/api/subscribeToTask?taskId={}", short.id))
        .bearer(&server.alice)
        .open_stream()
        .await;
    let _list = server
        .get("/api/subscribeToTasks")
        .bearer(&server.alice)
        .open_stream()
        .await;
    let refused = server
        .get("/api/subscribeToTasks")
        .bearer(&server.alice)
        .send()
        .await;
    refused.expect(429);
    assert_eq!(refused.header("retry-after"), Some("3"));
    assert!(refused.error().contains("at most 2"), "{}", refused.error());
    // Another user has their own slots.
    assert_eq!(
        server
            .get("/api/subscribeToTasks")
            .bearer(&server.bob)
            .open_stream()
            .await
            .status,
        200
    );
    // The task stream ends with its task; its slot is free again once the server has
    // finished the response, which happens before the client sees the end.
    finishing.collect_events(WAIT).await;
    assert_eq!(
        server
            .get("/api/subscribeToTasks")
            .bearer(&server.alice)
            .open_stream()
            .await
            .status,
        200
    );
}
