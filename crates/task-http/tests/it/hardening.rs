//! The edges a hostile or unlucky client finds (issue #15): repeated JSON keys, undecodable
//! query strings, headers every answer carries, limits on attempts, and what happens to
//! requests and streams that never finish.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use task_http::HttpConfig;
use task_store::{map_sqlite_error, SqliteConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::sse::Item;
use crate::support::{Options, TestServer, WAIT};

fn without_runtime() -> Options {
    Options {
        runtime: false,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_json_key_is_400_naming_it_on_every_json_endpoint() {
    let server = TestServer::start_with(without_runtime()).await;
    // (endpoint, body with one key twice, the key)
    let cases = [
        (
            "/api/tasks",
            r#"{"task_type":"noop","task_type":"sleep"}"#,
            "task_type",
        ),
        (
            "/api/tasks",
            r#"{"task_type":"sleep","params":{"ms":1,"steps":1,"ms":2}}"#,
            "ms",
        ),
        (
            "/api/generateAIQuestions",
            r#"{"amount":5,"category":"x","ageGroup":"adults","difficulty":"easy","provider":"offline","provider":"openai"}"#,
            "provider",
        ),
        (
            "/api/validateQuestions",
            r#"{"category":"x","category":"y","provider":"offline"}"#,
            "category",
        ),
        (
            "/api/regenerateEmojis",
            r#"{"questionIds":["q_1"],"questionIds":["q_2"],"provider":"offline"}"#,
            "questionIds",
        ),
        (
            "/api/tasks/bulk",
            r#"{"action":"retry","taskIds":[],"action":"delete"}"#,
            "action",
        ),
        ("/api/login", r#"{"token":"a","token":"b"}"#, "token"),
    ];
    for (path, body, key) in cases {
        let answer = server
            .post(path)
            .bearer(&server.alice)
            .raw_body("application/json", body)
            .send()
            .await;
        answer.expect(400);
        assert_eq!(answer.json()["field"], json!(key), "{path} {body}");
        assert!(
            answer.error().contains("more than once"),
            "{path}: {}",
            answer.error()
        );
    }
    // Nothing was created by any of them.
    let list = server.get("/api/tasks").bearer(&server.alice).send().await;
    assert_eq!(list.expect(200).json()["tasks"], json!([]));
    // The same keys once each are fine.
    server
        .call(Method::POST, "/api/tasks")
        .bearer(&server.alice)
        .raw_body("application/json", r#"{"task_type":"noop"}"#)
        .send()
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_is_not_utf8_is_400_on_every_endpoint_that_reads_one() {
    let server = TestServer::start_with(without_runtime()).await;
    // Every endpoint that reads its query string; the streams are asked on fresh connections,
    // so they take the direct live-stream path.
    let paths = [
        "/api/tasks?q=%ff%fe",
        "/api/getBackgroundTasks?userId=%ff%fe",
        "/api/subscribeToTask?taskId=%ff%fe",
        "/api/subscribeToTasks?userId=%ff%fe",
        "/api/tasks?status=pending&%ff=1",
    ];
    for path in paths {
        let answer = server.get(path).bearer(&server.alice).send().await;
        answer.expect(400);
        assert!(
            answer.error().contains("not valid UTF-8"),
            "{path}: {}",
            answer.error()
        );
    }
    // Escaped UTF-8 is still decoded.
    let answer = server
        .get("/api/tasks?q=r%C3%A4ksm%C3%B6rg%C3%A5s")
        .bearer(&server.alice)
        .send()
        .await;
    answer.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_says_nosniff() {
    let server = TestServer::start().await;
    let done = server.completed_task(&server.alice).await;
    let stream = format!("/api/subscribeToTask?taskId={}", done.id);
    // Answers through hyper: JSON, errors, text, pages, a stream.
    let calls = [
        server.get("/api/tasks").bearer(&server.alice),
        server.get("/api/tasks").bearer("tl_wrong"),
        server.get("/nowhere"),
        server.get("/healthz"),
        server.get("/readyz"),
        server.get("/metrics").bearer(&server.root),
        server.get("/login"),
        // A body sends even a stream request to hyper.
        server
            .get(&stream)
            .bearer(&server.alice)
            .raw_body("text/plain", "x"),
    ];
    for call in calls {
        let answer = call.send().await;
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{} {:?}",
            answer.status,
            answer.headers
        );
    }
    // Answers written directly (a live stream on a fresh connection, and its errors).
    for (head, status) in [
        (
            format!(
                "GET {stream} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                server.alice
            ),
            "200",
        ),
        (format!("GET {stream} HTTP/1.1\r\nHost: x\r\n\r\n"), "401"),
    ] {
        let answer = crate::server::exchange_raw(&server, head).await;
        let (head, _) = answer.split_once("\r\n\r\n").expect("a head");
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
        assert!(
            head.contains("\r\nx-content-type-options: nosniff"),
            "{head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_above_the_task_types_cap_is_400() {
    let server = TestServer::start_with(without_runtime()).await;
    // The test task types run under the runtime's default policy: at most 3 attempts.
    let answer = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({"task_type": "noop", "max_attempts": 4}))
        .send()
        .await;
    answer.expect(400);
    assert_eq!(answer.json()["field"], "max_attempts");
    assert!(answer.error().contains("at most 3"), "{}", answer.error());
    // At the cap, and without one, the task shows what it will get.
    for (asked, shown) in [(json!(3), 3), (json!(null), 3), (json!(1), 1)] {
        let task = server
            .create(
                &server.alice,
                json!({"task_type": "noop", "max_attempts": asked}),
            )
            .await;
        assert_eq!(task.max_attempts, shown);
    }
}

/// A client cut between a cancelled task's final `update` and its `error` resumes with the
/// id it holds at that point and still gets the `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cut_before_the_error_event_gets_it_on_resume() {
    let server = TestServer::start_with(without_runtime()).await;
    let task = server.pending_task(&server.alice).await;
    let path = format!("/api/subscribeToTask?taskId={}", task.id);
    let mut stream = server.get(&path).bearer(&server.alice).open_stream().await;
    assert_eq!(stream.status, 200);
    let mut last_id = None;
    let Some(Item::Event { id, .. }) = stream.next_event(WAIT).await else {
        panic!("no snapshot");
    };
    last_id = id.or(last_id);
    server
        .post(&format!("/api/tasks/{}/cancel", task.id))
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let update = stream.next_event(WAIT).await.expect("the final update");
    assert_eq!(update.json()["type"], "update");
    assert_eq!(update.json()["task"]["status"], "cancelled");
    if let Item::Event { id, .. } = &update {
        last_id = id.clone().or(last_id);
    }
    // The connection drops here, before the error event is read.
    drop(stream);
    let last_id = last_id.expect("the snapshot had an id");
    let mut resumed = server
        .get(&path)
        .bearer(&server.alice)
        .header("last-event-id", &last_id)
        .open_stream()
        .await;
    assert_eq!(
        resumed.status, 200,
        "resuming from {last_id} must not be 204"
    );
    let events = resumed.collect_events(WAIT).await;
    let types: Vec<_> = events.iter().map(|e| e.json()["type"].clone()).collect();
    assert_eq!(types, [json!("update"), json!("error")]);
    assert_eq!(events[1].json()["error"], "Task was cancelled");
    // Every event a client must see ends at its own position: after the error, resuming is 204.
    let Item::Event {
        id: Some(final_id), ..
    } = &events[1]
    else {
        panic!("the error event carries an id: {events:?}");
    };
    assert_ne!(final_id, &last_id);
    let after = server
        .get(&path)
        .bearer(&server.alice)
        .header("last-event-id", final_id)
        .send()
        .await;
    after.expect(204);
}

/// Caps the SQLite database at `pages` pages (`None`: lifts the cap). A write that needs a page
/// more then fails with `SQLITE_FULL`, exactly as on a full disk.
async fn cap_database(server: &TestServer, pages: Option<i64>) -> i64 {
    server
        .store
        .with_write_transaction(move |conn| {
            let current: i64 = conn
                .query_row("PRAGMA page_count", [], |row| row.get(0))
                .map_err(map_sqlite_error)?;
            let cap = pages.map_or(1_000_000_000, |pages| pages.max(current));
            conn.query_row(&format!("PRAGMA max_page_count = {cap}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .map_err(map_sqlite_error)
        })
        .await
        .unwrap()
}

/// Kept beside the real full disk of the binary's fault suite (`faults/disk_full.rs`, a tmpfs
/// that needs root): this one runs anywhere, without root, and pins the exact answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_503_with_retry_after_and_readyz_reports_it_until_it_clears() {
    let server = TestServer::start_with(without_runtime()).await;
    server.get("/readyz").send().await.expect(200);
    cap_database(&server, Some(0)).await;
    // Large params need pages the database may not grow.
    let big = json!({"task_type": "noop", "params": {"blob": "x".repeat(48 * 1024)}});
    let create = || server.post("/api/tasks").bearer(&server.alice).json(&big);
    let answer = create().send().await;
    answer.expect(503);
    assert_eq!(answer.json(), json!({"error": "database unavailable"}));
    assert_eq!(answer.header("retry-after"), Some("1"));
    // Reads still work, but the instance is not ready: it cannot take new tasks.
    server
        .get("/api/tasks")
        .bearer(&server.alice)
        .send()
        .await
        .expect(200);
    let ready = server.get("/readyz").send().await;
    ready.expect(503);
    assert!(ready.header("retry-after").is_some());
    // Space comes back: the next write succeeds and readiness follows, without a restart.
    cap_database(&server, None).await;
    create().send().await.expect(201);
    server.get("/readyz").send().await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_past_the_read_timeout_is_408_and_the_connection_closes() {
    let server = TestServer::start_with(Options {
        config: HttpConfig {
            body_read_timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        },
        runtime: false,
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        server.alice
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // One more byte now and then, never the whole body.
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = async {
        let mut buffer = [0u8; 1024];
        loop {
            tokio::select! {
                read = stream.read(&mut buffer) => match read.unwrap() {
                    0 => break,
                    n => answer.extend_from_slice(&buffer[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    // The server may already have closed its side; a failed write is fine.
                    let _ = stream.write_all(b" ").await;
                }
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the server cuts off the trickling body");
    assert!(started.elapsed() < WAIT);
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    let error: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("not received within"),
        "{body}"
    );
    // Nothing was created.
    let list = server.get("/api/tasks").bearer(&server.alice).send().await;
    assert_eq!(list.expect(200).json()["tasks"], json!([]));
}

/// Opens `GET path` on a raw socket with a small receive buffer and never reads from it.
async fn open_unread_stream(server: &TestServer, path: &str, via_hyper: bool) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    // A body sends a stream request to hyper; without one it is answered directly.
    let body = if via_hyper {
        "Content-Length: 1\r\n\r\nx"
    } else {
        "\r\n"
    };
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{body}",
        server.alice
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_client_stopped_reading_is_closed_and_frees_its_slot() {
    let server = TestServer::start_with(Options {
        config: HttpConfig {
            write_stall_timeout: Duration::from_millis(300),
            max_sse_per_user: 2,
            max_queued_per_user: 1000,
            // 120 creations in a burst: the creation rate limit is not what this test is about.
            create_rate: None,
            ..HttpConfig::default()
        },
        runtime: false,
    })
    .await;
    let _direct = open_unread_stream(&server, "/api/subscribeToTasks", false).await;
    let _hyper = open_unread_stream(&server, "/api/subscribeToTasks", true).await;
    let probe = || {
        server
            .get("/api/subscribeToTasks")
            .bearer(&server.alice)
            .open_stream()
    };
    // Both slots are taken.
    tokio::time::timeout(WAIT, async {
        while probe().await.status != 429 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the two streams hold both slots");
    // Every created task is a large update on both streams: far more than the socket
    // buffers hold, so the server's writes stop being taken.
    let blob = "x".repeat(60 * 1024);
    for _ in 0..120 {
        server
            .create(
                &server.alice,
                json!({"task_type": "noop", "params": {"blob": blob}}),
            )
            .await;
    }
    // Both stalled streams are closed within the limit, so both slots free up.
    let deadline = Instant::now() + WAIT;
    let mut open = Vec::new();
    while open.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "stalled streams still hold their slots"
        );
        let stream = probe().await;
        if stream.status == 200 {
            open.push(stream);
        } else {
            assert_eq!(stream.status, 429);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_request_heads_get_json_errors() {
    let server = TestServer::start_with(without_runtime()).await;
    let big = {
        let mut head = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
        head.resize(64 * 1024, b'a');
        head
    };
    let many = format!("GET /healthz HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(101));
    let cases: [(&str, Vec<u8>, u16); 7] = [
        ("oversized head", big, 431),
        ("too many headers", many.into_bytes(), 431),
        (
            "NUL in a header",
            b"GET /healthz HTTP/1.1\r\nX-A: a\0b\r\n\r\n".to_vec(),
            400,
        ),
        (
            "non-UTF-8 path",
            b"GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "Content-Length not a number",
            b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n".to_vec(),
            400,
        ),
        (
            "conflicting Content-Lengths",
            b"POST /api/tasks HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                .to_vec(),
            400,
        ),
        ("not HTTP", b"HELLO THERE\r\n\r\n".to_vec(), 400),
    ];
    for (what, request, status) in cases {
        let answer = crate::server::exchange_raw(&server, &request).await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {head}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json"),
            "{what}: {head}"
        );
        assert!(
            lower.contains("x-content-type-options: nosniff"),
            "{what}: {head}"
        );
        let error: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {body:?}"));
        assert!(error["error"].is_string(), "{what}: {body}");
    }
    // A head just under the limit is served.
    let mut fits = b"GET /healthz HTTP/1.1\r\nX-Big: ".to_vec();
    fits.resize(60 * 1024, b'a');
    fits.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let answer = crate::server::exchange_raw(&server, &fits).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_past_its_busy_timeout_is_503_and_readyz_reports_it() {
    let server = TestServer::start_with_store(
        without_runtime(),
        SqliteConfig {
            busy_timeout: Duration::from_millis(200),
            ..SqliteConfig::default()
        },
    )
    .await;
    // Another process holds the write lock for longer than the busy timeout.
    let path = server.store.path().to_owned();
    let locker = task_store::rusqlite::Connection::open(path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let create = || {
        server
            .post("/api/tasks")
            .bearer(&server.alice)
            .json(&json!({"task_type": "noop"}))
    };
    let answer = create().send().await;
    answer.expect(503);
    assert_eq!(answer.header("retry-after"), Some("1"));
    server.get("/readyz").send().await.expect(503);
    // The lock is released: writes and readiness come back without a restart.
    locker.execute_batch("COMMIT").unwrap();
    create().send().await.expect(201);
    server.get("/readyz").send().await.expect(200);
}
