//! Every error status, with the JSON body `{"error":"..."}` and the headers it calls for.

use std::time::Duration;

use http::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::flaky::SECRET_CAUSE;
use crate::support::{Options, TestServer, WAIT};

fn generation() -> serde_json::Value {
    json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_naming_the_field() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    // (endpoint, body, field the message must name)
    let cases = [
        (
            "/api/generateAIQuestions",
            json!({"category":"x","ageGroup":"adults","difficulty":"easy","provider":"openai"}),
            "amount",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":0,"category":"x","ageGroup":"adults","difficulty":"easy","provider":"openai"}),
            "amount",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":51,"category":"x","ageGroup":"adults","difficulty":"easy","provider":"openai"}),
            "amount",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":5,"category":"","ageGroup":"adults","difficulty":"easy","provider":"openai"}),
            "category",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":5,"category":"x","ageGroup":"elderly","difficulty":"easy","provider":"openai"}),
            "ageGroup",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":5,"category":"x","ageGroup":"adults","difficulty":"brutal","provider":"openai"}),
            "difficulty",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":5,"category":"x","ageGroup":"adults","difficulty":"easy","provider":"skynet"}),
            "provider",
        ),
        (
            "/api/generateAIQuestions",
            json!({"amount":5,"category":"x","ageGroup":"adults","difficulty":"easy","provider":"offline","language":"Svenska"}),
            "language",
        ),
        ("/api/tasks", json!({"params":{}}), "task_type"),
        ("/api/tasks", json!({"task_type":"generation"}), "task_type"),
        (
            "/api/tasks",
            json!({"task_type":"noop","params":[1]}),
            "params",
        ),
        (
            "/api/tasks",
            json!({"task_type":"noop","max_attempts":0}),
            "max_attempts",
        ),
        (
            "/api/tasks",
            json!({"task_type":"noop","label":"l".repeat(201)}),
            "label",
        ),
        (
            "/api/tasks",
            json!({"task_type":"noop","run_at":"soon"}),
            "run_at",
        ),
        (
            "/api/tasks",
            json!({"task_type":"noop","colour":"red"}),
            "colour",
        ),
        (
            "/api/tasks/bulk",
            json!({"action":"explode","taskIds":["task_1_abcdef"]}),
            "action",
        ),
        (
            "/api/tasks/bulk",
            json!({"action":"cancel","taskIds":[]}),
            "taskIds",
        ),
        (
            "/api/tasks/bulk",
            json!({"action":"cancel","taskIds":"task_1_abcdef"}),
            "taskIds",
        ),
        ("/api/login", json!({}), "token"),
    ];
    for (path, body, field) in cases {
        let answer = server
            .post(path)
            .bearer(&server.alice)
            .json(&body)
            .send()
            .await;
        answer.expect(400);
        assert!(
            answer.error().starts_with(&format!("invalid {field}:")),
            "{path} {body}: {}",
            answer.error()
        );
        assert_eq!(answer.json()["field"], field, "{path} {body}");
    }
    let queries = [
        ("/api/getBackgroundTasks?limit=0", "limit"),
        ("/api/getBackgroundTasks?limit=1001", "limit"),
        ("/api/getBackgroundTasks?limit=many", "limit"),
        ("/api/tasks?status=done", "status"),
        ("/api/tasks?cursor=garbage", "cursor"),
        ("/api/subscribeToTask", "taskId"),
        ("/api/subscribeToTask?taskId=nope", "taskId"),
    ];
    for (path, field) in queries {
        let answer = server.get(path).bearer(&server.alice).send().await;
        answer.expect(400);
        assert_eq!(answer.json()["field"], field, "{path}");
    }
    let not_json = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .raw_body("application/json", "{not json")
        .send()
        .await;
    not_json.expect(400);
    assert!(not_json
        .error()
        .starts_with("request body is not valid JSON"));
    let not_object = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!([1]))
        .send()
        .await;
    not_object.expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_bad_credentials_are_401() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let anonymous = server.get("/api/tasks").send().await;
    anonymous.expect(401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        anonymous.json(),
        json!({"error": "authentication required"})
    );
    for header in [
        "Bearer tl_0000",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer",
        "tl_abc",
    ] {
        server
            .get("/api/tasks")
            .header("authorization", header)
            .send()
            .await
            .expect(401);
    }
    server
        .post("/api/login")
        .json(&json!({"token": "tl_not_a_token"}))
        .send()
        .await
        .expect(401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_and_not_found() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let answer = server
        .get("/api/getBackgroundTasks?userId=bob@example.com")
        .bearer(&server.alice)
        .send()
        .await;
    answer.expect(403);
    server
        .get("/metrics")
        .bearer(&server.alice)
        .send()
        .await
        .expect(403);
    let bobs = server.pending_task(&server.bob).await;
    let answer = server
        .get(&format!("/api/tasks/{}", bobs.id))
        .bearer(&server.alice)
        .send()
        .await;
    answer.expect(404);
    assert_eq!(answer.json(), json!({"error": "task not found"}));
    for path in [
        "/api/tasks/task_1_abcdef",
        "/api/tasks/not-an-id",
        "/api/nothing-here",
        "/api/tasks/task_1_abcdef/explode",
    ] {
        server
            .get(path)
            .bearer(&server.alice)
            .send()
            .await
            .expect(404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let cases = [
        (Method::GET, "/api/generateAIQuestions", "POST"),
        (Method::POST, "/api/subscribeToTask", "GET"),
        (Method::DELETE, "/api/tasks", "GET, POST"),
        (Method::PUT, "/api/tasks/task_1_abcdef", "GET"),
        (Method::GET, "/api/tasks/task_1_abcdef/cancel", "POST"),
        (Method::GET, "/api/tasks/bulk", "POST"),
        (Method::GET, "/api/login", "POST"),
        (Method::POST, "/healthz", "GET"),
    ];
    for (method, path, allow) in cases {
        let answer = server
            .call(method.clone(), path)
            .bearer(&server.alice)
            .send()
            .await;
        answer.expect(405);
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        assert!(answer.error().contains(allow));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_bodies_are_415() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let answer = server
            .post("/api/generateAIQuestions")
            .bearer(&server.alice)
            .raw_body(content_type, serde_json::to_vec(&generation()).unwrap())
            .send()
            .await;
        answer.expect(415);
    }
    let no_type = server.post("/api/tasks").bearer(&server.alice).send().await;
    no_type.expect(415);
    let with_charset = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .raw_body(
            "application/json; charset=utf-8",
            serde_json::to_vec(&generation()).unwrap(),
        )
        .send()
        .await;
    with_charset.expect(200);
}

/// Reads from `stream` until the server has sent a complete status line, or closed.
async fn read_status_line(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        while !received.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("no answer in time");
    let text = String::from_utf8_lossy(&received);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_413_without_being_read() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    // A body announced as 10 MB of which only the first kilobyte is ever sent: the answer
    // must come without the server waiting for (or buffering) the rest.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        server.addr, server.alice
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b' '; 1024]).await.unwrap();
    assert_eq!(
        read_status_line(&mut stream).await,
        "HTTP/1.1 413 Payload Too Large"
    );

    // A chunked body (no length announced) is cut off as soon as it passes the limit.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        server.addr, server.alice
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 16 * 1024];
    for _ in 0..5 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(&chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    assert_eq!(
        read_status_line(&mut stream).await,
        "HTTP/1.1 413 Payload Too Large"
    );

    let answer = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .raw_body("application/json", vec![b' '; 64 * 1024 + 1])
        .send()
        .await;
    answer.expect(413);
    assert_eq!(answer.error(), "request body is larger than 65536 bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_429_with_retry_after() {
    let mut options = Options {
        runtime: false,
        ..Options::default()
    };
    options.config.max_queued_per_user = 2;
    options.config.retry_after = Duration::from_secs(7);
    let server = TestServer::start_with(options).await;
    server.pending_task(&server.alice).await;
    let cancelled = server.cancelled_task(&server.alice).await;
    server.pending_task(&server.alice).await;
    let answer = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&generation())
        .send()
        .await;
    answer.expect(429);
    assert_eq!(answer.header("retry-after"), Some("7"));
    assert!(answer.error().contains("at most 2"), "{}", answer.error());
    server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({"task_type": "noop"}))
        .send()
        .await
        .expect(429);
    server
        .post(&format!("/api/tasks/{}/retry", cancelled.id))
        .bearer(&server.alice)
        .send()
        .await
        .expect(429);
    // The limit is per user: Bob is not affected.
    server.pending_task(&server.bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_never_pass_the_queue_limit() {
    let mut options = Options {
        runtime: false,
        ..Options::default()
    };
    options.config.max_queued_per_user = 10;
    let server = std::sync::Arc::new(TestServer::start_with(options).await);
    let requests = (0..40).map(|_| {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .post("/api/tasks")
                .bearer(&server.alice)
                .json(&json!({"task_type": "noop", "run_at": crate::support::now_millis() + 3_600_000}))
                .send()
                .await
                .status
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        30,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_is_503_without_internals() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let task = server.pending_task(&server.alice).await;
    server.flaky.set_down(true);
    let calls = [
        server.get("/api/tasks").bearer(&server.alice),
        server
            .get(&format!("/api/tasks/{}", task.id))
            .bearer(&server.alice),
        server.get("/api/getBackgroundTasks").bearer(&server.alice),
        server
            .post("/api/generateAIQuestions")
            .bearer(&server.alice)
            .json(&generation()),
        server
            .post(&format!("/api/tasks/{}/cancel", task.id))
            .bearer(&server.alice),
        server.get("/readyz"),
    ];
    for call in calls {
        let answer = call.send().await;
        answer.expect(503);
        assert_eq!(answer.json(), json!({"error": "database unavailable"}));
        assert_eq!(answer.header("retry-after"), Some("1"));
        assert!(!String::from_utf8_lossy(&answer.body).contains(SECRET_CAUSE));
    }
    server.get("/healthz").send().await.expect(200);
    server.flaky.set_down(false);
    server
        .get("/api/tasks")
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    // Readiness stays 503 until a write goes through again (or a quiet `DEGRADED_HOLD`
    // passes): the ping alone cannot tell a full disk from a healthy one.
    server.get("/readyz").send().await.expect(503);
    server.pending_task(&server.alice).await;
    server.get("/readyz").send().await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transitions_are_409() {
    let server = TestServer::start().await;
    let done = server.completed_task(&server.alice).await;
    let answer = server
        .post(&format!("/api/tasks/{}/cancel", done.id))
        .bearer(&server.alice)
        .send()
        .await;
    answer.expect(409);
    assert_eq!(answer.error(), "a completed task cannot become cancelled");
    server
        .post(&format!("/api/tasks/{}/retry", done.id))
        .bearer(&server.alice)
        .send()
        .await
        .expect(409);
}
