//! Who may call what: every endpoint against every kind of caller, as one table. A forged
//! `x-user-email` header changes nothing unless trusted-proxy mode is on (tested below with it
//! on, for allowed and other addresses).

use http::Method;
use serde_json::{json, Value};
use task_core::Task;
use task_http::{HttpConfig, TrustedProxy};

use crate::support::client::Call;
use crate::support::{Options, TestServer, ALICE, BOB};

/// The callers, in the order of each row's expected statuses.
#[derive(Debug, Clone, Copy)]
enum Caller {
    Anonymous,
    /// Alice, who owns the row's task.
    Owner,
    /// Bob, who does not.
    Other,
    Superuser,
    /// No credentials, only `x-user-email: alice@example.com`.
    ForgedHeader,
    /// Bob's token plus `x-user-email: alice@example.com`.
    ForgedWithToken,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Owner,
    Caller::Other,
    Caller::Superuser,
    Caller::ForgedHeader,
    Caller::ForgedWithToken,
];

/// The task a row needs, made fresh for every cell.
#[derive(Debug, Clone, Copy)]
enum Fixture {
    None,
    Pending,
    Cancelled,
}

struct Row {
    method: Method,
    /// `{id}` is replaced by the fixture's id.
    path: &'static str,
    body: Option<Value>,
    fixture: Fixture,
    /// Expected status per caller, in [`CALLERS`] order.
    expect: [u16; 6],
}

fn row(method: Method, path: &'static str, fixture: Fixture, expect: [u16; 6]) -> Row {
    Row {
        method,
        path,
        body: None,
        fixture,
        expect,
    }
}

fn with_body(mut row: Row, body: Value) -> Row {
    row.body = Some(body);
    row
}

fn table() -> Vec<Row> {
    use Fixture::*;
    let get = Method::GET;
    let post = Method::POST;
    let generation = json!({"amount":3,"category":"Rymden","ageGroup":"youth","difficulty":"easy","provider":"offline"});
    vec![
        with_body(
            row(
                post.clone(),
                "/api/generateAIQuestions",
                None,
                [401, 200, 200, 200, 401, 200],
            ),
            generation,
        ),
        row(
            get.clone(),
            "/api/subscribeToTask?taskId={id}",
            Pending,
            [401, 200, 404, 200, 401, 404],
        ),
        row(
            get.clone(),
            "/api/getBackgroundTasks",
            None,
            [401, 200, 200, 200, 401, 200],
        ),
        row(
            get.clone(),
            "/api/getBackgroundTasks?userId=alice%40example.com",
            None,
            [401, 200, 403, 200, 401, 403],
        ),
        row(
            get.clone(),
            "/api/subscribeToTasks",
            None,
            [401, 200, 200, 200, 401, 200],
        ),
        row(
            get.clone(),
            "/api/subscribeToTasks?userId=alice%40example.com",
            None,
            [401, 200, 403, 200, 401, 403],
        ),
        row(
            get.clone(),
            "/api/tasks",
            None,
            [401, 200, 200, 200, 401, 200],
        ),
        row(
            get.clone(),
            "/api/tasks?userId=alice%40example.com",
            None,
            [401, 200, 403, 200, 401, 403],
        ),
        with_body(
            row(
                post.clone(),
                "/api/tasks",
                None,
                [401, 201, 201, 201, 401, 201],
            ),
            json!({"task_type":"noop"}),
        ),
        row(
            get.clone(),
            "/api/tasks/{id}",
            Pending,
            [401, 200, 404, 200, 401, 404],
        ),
        row(
            post.clone(),
            "/api/tasks/{id}/cancel",
            Pending,
            [401, 200, 404, 200, 401, 404],
        ),
        row(
            post.clone(),
            "/api/tasks/{id}/retry",
            Cancelled,
            [401, 200, 404, 200, 401, 404],
        ),
        with_body(
            row(
                post.clone(),
                "/api/tasks/bulk",
                Pending,
                [401, 200, 200, 200, 401, 200],
            ),
            json!({"action":"cancel","taskIds":["{id}"]}),
        ),
        row(get.clone(), "/api/me", None, [401, 200, 200, 200, 401, 200]),
        row(
            get.clone(),
            "/api/analytics",
            None,
            [401, 200, 200, 200, 401, 200],
        ),
        row(
            get.clone(),
            "/superuser/analytics",
            None,
            [303, 403, 403, 200, 303, 403],
        ),
        row(
            post.clone(),
            "/api/logout",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        row(
            get.clone(),
            "/metrics",
            None,
            [401, 403, 403, 200, 401, 403],
        ),
        row(
            get.clone(),
            "/healthz",
            None,
            [200, 200, 200, 200, 200, 200],
        ),
        row(get.clone(), "/readyz", None, [200, 200, 200, 200, 200, 200]),
        row(get.clone(), "/tasks", None, [303, 200, 200, 200, 303, 200]),
        row(
            get.clone(),
            "/superuser/tasks",
            None,
            [303, 403, 403, 200, 303, 403],
        ),
    ]
}

fn authenticate(server: &TestServer, call: Call, caller: Caller) -> Call {
    match caller {
        Caller::Anonymous => call,
        Caller::Owner => call.bearer(&server.alice),
        Caller::Other => call.bearer(&server.bob),
        Caller::Superuser => call.bearer(&server.root),
        Caller::ForgedHeader => call.header("x-user-email", ALICE),
        Caller::ForgedWithToken => call.bearer(&server.bob).header("x-user-email", ALICE),
    }
}

async fn fixture(server: &TestServer, fixture: Fixture) -> Option<Task> {
    match fixture {
        Fixture::None => None,
        Fixture::Pending => Some(server.pending_task(&server.alice).await),
        Fixture::Cancelled => Some(server.cancelled_task(&server.alice).await),
    }
}

/// The status one caller gets for one row (a fresh fixture each time).
async fn status(server: &TestServer, row: &Row, caller: Caller) -> u16 {
    let task = fixture(server, row.fixture).await;
    let id = task.as_ref().map(|t| t.id.to_string()).unwrap_or_default();
    let mut call = server.call(row.method.clone(), &row.path.replace("{id}", &id));
    if let Some(body) = &row.body {
        let body: Value = serde_json::from_str(&body.to_string().replace("{id}", &id)).unwrap();
        call = call.json(&body);
    }
    let call = authenticate(server, call, caller);
    if row.path.starts_with("/api/subscribe") {
        // Streams stay open: look at the status and hang up.
        call.open_stream().await.status.as_u16()
    } else {
        call.send().await.status.as_u16()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_against_every_caller() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let mut failures = Vec::new();
    for row in table() {
        for (caller, expected) in CALLERS.iter().zip(row.expect) {
            let got = status(&server, &row, *caller).await;
            if got != expected {
                failures.push(format!(
                    "{} {} as {caller:?}: got {got}, expected {expected}",
                    row.method, row.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_follow_the_caller_not_the_forged_header() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let me = server
        .get("/api/me")
        .bearer(&server.bob)
        .header("x-user-email", ALICE)
        .send()
        .await;
    assert_eq!(
        without_limits(me.json()),
        json!({"email": BOB, "role": "user", "auth": "bearer"})
    );
    let alices = server.pending_task(&server.alice).await;
    let bulk = |token: &str| {
        server
            .post("/api/tasks/bulk")
            .bearer(token)
            .json(&json!({"action": "cancel", "taskIds": [alices.id]}))
    };
    let as_bob = bulk(&server.bob).send().await.json();
    assert_eq!(as_bob["results"][0]["ok"], false);
    assert_eq!(as_bob["results"][0]["status"], 404);
    let as_root = bulk(&server.root).send().await.json();
    assert_eq!(as_root["results"][0]["ok"], true);
    assert_eq!(as_root["results"][0]["task"]["status"], "cancelled");
    // A user's own listing never includes someone else's task.
    let bobs_list = server
        .get("/api/getBackgroundTasks")
        .bearer(&server.bob)
        .send()
        .await
        .json();
    assert_eq!(bobs_list, json!([]));
    let all = server
        .get("/api/getBackgroundTasks")
        .bearer(&server.root)
        .send()
        .await
        .json();
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_mode_believes_only_the_named_proxies() {
    let trusted = TestServer::start_with(Options {
        runtime: false,
        config: HttpConfig {
            trusted_proxy: Some(TrustedProxy::parse("x-user-email", "127.0.0.0/8").unwrap()),
            ..HttpConfig::default()
        },
    })
    .await;
    let me = trusted
        .get("/api/me")
        .header("x-user-email", " Alice@Example.com ")
        .send()
        .await;
    assert_eq!(
        without_limits(me.json()),
        json!({"email": ALICE, "role": "user", "auth": "proxy"})
    );
    // A proxy cannot make anyone a superuser beyond what the database says, and users it
    // names that the database does not know are plain users.
    let stranger = trusted
        .get("/api/me")
        .header("x-user-email", "new@example.com")
        .send()
        .await;
    assert_eq!(stranger.json()["role"], "user");
    // A bearer token still wins over the header.
    let me = trusted
        .get("/api/me")
        .bearer(&trusted.bob)
        .header("x-user-email", ALICE)
        .send()
        .await;
    assert_eq!(me.json()["email"], BOB);

    let elsewhere = TestServer::start_with(Options {
        runtime: false,
        config: HttpConfig {
            trusted_proxy: Some(TrustedProxy::parse("x-user-email", "10.0.0.0/8").unwrap()),
            ..HttpConfig::default()
        },
    })
    .await;
    elsewhere
        .get("/api/me")
        .header("x-user-email", ALICE)
        .send()
        .await
        .expect(401);
}

/// `GET /api/me` without its `limits` (checked in `rate_limits`).
fn without_limits(mut me: serde_json::Value) -> serde_json::Value {
    if let Some(object) = me.as_object_mut() {
        object.remove("limits");
    }
    me
}
