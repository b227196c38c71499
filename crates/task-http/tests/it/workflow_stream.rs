//! `GET /api/workflows/{id}/events` over HTTP: every node's events on one stream, wrapped with
//! the node's key; ids listing each node's version; a resume with `Last-Event-ID` that sends
//! only what the client missed; the end after every node finished, then 204; and the refusals.

use std::time::Duration;

use serde_json::{json, Value};
use task_core::{Task, TaskId};
use task_store::{ClaimRequest, Lease, TaskStore};

use crate::support::sse::{Item, SseStream};
use crate::support::{Options, TestServer, WAIT};

/// The next event as `(id, key, event type, node status)`.
async fn next(stream: &mut SseStream) -> (Option<String>, String, String, String) {
    let item = stream.next_event(WAIT).await.expect("an event");
    let Item::Event { id, .. } = &item else {
        unreachable!()
    };
    let data = item.json();
    assert_eq!(data["type"], "event", "{data}");
    (
        id.clone(),
        data["key"].as_str().unwrap().to_owned(),
        data["event"]["type"].as_str().unwrap().to_owned(),
        data["event"]["task"]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

fn event(
    id: Option<&str>,
    key: &str,
    kind: &str,
    status: &str,
) -> (Option<String>, String, String, String) {
    (
        id.map(str::to_owned),
        key.to_owned(),
        kind.to_owned(),
        status.to_owned(),
    )
}

/// Claims the one due task, which must be `id`.
async fn claim(server: &TestServer, id: &TaskId) -> Lease {
    let claimed: Vec<Task> = server
        .store
        .claim(&ClaimRequest {
            worker_id: "test-worker".into(),
            limit: 1,
            task_types: vec![],
            lease_for: Duration::from_secs(60),
            max_running_per_user: None,
            now: task_core::now_millis() + 1000,
        })
        .await
        .unwrap();
    assert_eq!(&claimed[0].id, id);
    Lease::of(&claimed[0]).unwrap()
}

async fn open(server: &TestServer, token: &str, workflow: &str, last: Option<&str>) -> SseStream {
    let mut call = server
        .get(&format!("/api/workflows/{workflow}/events"))
        .bearer(token);
    if let Some(last) = last {
        call = call.header("last-event-id", last);
    }
    call.open_stream().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_streams_live_and_a_resume_sends_only_what_was_missed() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let created = server
        .post("/api/workflows")
        .bearer(&server.alice)
        .json(&json!({
            "nodes": [{"key": "gen", "task_type": "noop"}, {"key": "check", "task_type": "noop"}],
            "edges": [{"parent": "gen", "child": "check"}]
        }))
        .send()
        .await;
    created.expect(201);
    let created: Value = created.json();
    let workflow = created["workflowId"].as_str().unwrap().to_owned();
    let gen: TaskId = created["tasks"]["gen"].as_str().unwrap().parse().unwrap();
    let check: TaskId = created["tasks"]["check"].as_str().unwrap().parse().unwrap();

    let mut stream = open(&server, &server.alice, &workflow, None).await;
    assert_eq!(stream.status, 200);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    // The snapshot of every node, in node order; the id lists each node's version.
    assert_eq!(
        next(&mut stream).await,
        event(Some("1.0"), "gen", "update", "pending")
    );
    assert_eq!(
        next(&mut stream).await,
        event(Some("1.1"), "check", "update", "waiting")
    );
    // Live: the parent starts.
    let lease = claim(&server, &gen).await;
    assert_eq!(
        next(&mut stream).await,
        event(Some("2.1"), "gen", "update", "processing")
    );
    drop(stream);

    // While nobody listens, the parent completes and releases the child.
    server
        .store
        .complete(&lease, json!({"ok": true}))
        .await
        .unwrap();
    let mut resumed = open(&server, &server.alice, &workflow, Some("2.1")).await;
    assert_eq!(resumed.status, 200);
    assert_eq!(
        next(&mut resumed).await,
        event(Some("3.1"), "gen", "complete", "completed")
    );
    assert_eq!(
        next(&mut resumed).await,
        event(Some("3.2"), "check", "update", "pending")
    );
    // The child runs and fails for good: its final update, then its error with the id, then
    // the end of the workflow.
    let lease = claim(&server, &check).await;
    assert_eq!(
        next(&mut resumed).await,
        event(Some("3.3"), "check", "update", "processing")
    );
    server
        .store
        .fail(&lease, task_store::Failure::permanent("boom"))
        .await
        .unwrap();
    assert_eq!(
        next(&mut resumed).await,
        event(None, "check", "update", "failed")
    );
    let error = resumed.next_event(WAIT).await.unwrap();
    let Item::Event { id, .. } = &error else {
        unreachable!()
    };
    assert_eq!(id.as_deref(), Some("3.4"));
    assert_eq!(
        error.json(),
        json!({"type": "event", "key": "check", "version": 4, "event": {"type": "error", "error": "boom"}})
    );
    let end = resumed.next_event(WAIT).await.unwrap();
    assert_eq!(end.json(), json!({"type": "finished", "status": "failed"}));
    assert_eq!(resumed.next_within(WAIT).await, None, "the stream ends");

    // A client that saw everything is told to stop; one cut before the error gets it again.
    let done = open(&server, &server.alice, &workflow, Some("3.4")).await;
    assert_eq!(done.status, 204);
    let mut late = open(&server, &server.alice, &workflow, Some("3.3")).await;
    assert_eq!(
        next(&mut late).await,
        event(None, "check", "update", "failed")
    );
    assert_eq!(next(&mut late).await.0.as_deref(), Some("3.4"));
    assert_eq!(
        late.next_event(WAIT).await.unwrap().json()["type"],
        "finished"
    );

    // The superuser may follow it; another user gets 404; a text that is no workflow stream id
    // is a 400.
    let root = open(&server, &server.root, &workflow, None).await;
    assert_eq!(root.status, 200);
    for (token, last, status) in [
        (&server.bob, None, 404),
        (&server.alice, Some("3.x"), 400),
        (&server.alice, Some("-1.0"), 400),
        (&server.alice, Some("3..4"), 400),
    ] {
        let refused = open(&server, token, &workflow, last).await;
        assert_eq!(refused.status, status, "{last:?}");
    }
    // A well-formed id of another shape (another workflow's, or a version beyond any) was never
    // sent for this workflow: the stream starts over, as without the header.
    let fresh = next(&mut open(&server, &server.alice, &workflow, None).await).await;
    for last in ["3", "3.4.5", "99999999999999999999.0"] {
        let mut over = open(&server, &server.alice, &workflow, Some(last)).await;
        assert_eq!(over.status, 200, "{last}");
        assert_eq!(next(&mut over).await, fresh, "{last}");
    }
    let unknown = open(&server, &server.alice, "wf_1_nothing", None).await;
    assert_eq!(unknown.status, 404);
}
