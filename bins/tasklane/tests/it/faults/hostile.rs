//! Hostile clients: malformed and oversized requests (never a 5xx, memory stays bounded),
//! slowloris headers and bodies (cut off at the header and body read timeouts while others are
//! served), and another user's task ids on every route that takes one (404, as for a task that
//! does not exist).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{add_user, get_json, Server};
use crate::cluster::{client, create_task, Endpoint};
use crate::process::WAIT;

/// Sends `request` on a new connection and returns the status code of the first answer, or
/// `None` when the server closed the connection without one.
fn status_of(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // The server may answer (and close) before it has read everything; a failed write is fine.
    let _ = stream.write_all(request);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut head = Vec::new();
    let mut buf = [0; 4096];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let code = line.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    Some(code.parse().expect("a status code"))
}

/// Requests that are wrong at every layer: the request line, the headers, the framing, the
/// body, and sizes far past every limit.
fn malformed(token: &str) -> Vec<(&'static str, Vec<u8>)> {
    let auth = format!("Authorization: Bearer {token}\r\n");
    let post = |path: &str, headers: &str, body: &[u8]| -> Vec<u8> {
        let mut request =
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}{headers}\r\n").into_bytes();
        request.extend_from_slice(body);
        request
    };
    let json_post = |path: &str, body: &[u8]| {
        post(
            path,
            &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ),
            body,
        )
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let wide = format!(
        "{{\"task_type\":\"noop\",\"params\":{{{}}}}}",
        (0..5000)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    vec![
        ("garbage", b"\x00\x01\x02\xff\xfe garbage\r\n\r\n".to_vec()),
        ("no version", b"GET /healthz\r\n\r\n".to_vec()),
        ("HTTP/2 preface on HTTP/1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
        ("unknown method", format!("BREW /api/tasks HTTP/1.1\r\nHost: x\r\n{auth}\r\n").into_bytes()),
        ("long path", format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(200_000)).into_bytes()),
        ("non-UTF-8 path", b"GET /api/tasks/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("NUL in a header", format!("GET /api/me HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n{auth}\r\n").into_bytes()),
        ("huge header", format!("GET /api/me HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(1 << 20)).into_bytes()),
        ("many headers", format!("GET /api/me HTTP/1.1\r\nHost: x\r\n{}\r\n", "X-H: 1\r\n".repeat(10_000)).into_bytes()),
        ("bad Content-Length", post("/api/tasks", "Content-Length: nope\r\n", b"{}")),
        ("negative Content-Length", post("/api/tasks", "Content-Length: -5\r\n", b"{}")),
        ("two Content-Lengths", post("/api/tasks", "Content-Length: 2\r\nContent-Length: 3\r\n", b"{}x")),
        ("Content-Length and chunked", post("/api/tasks", "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n")),
        ("bad chunk size", post("/api/tasks", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n")),
        ("huge declared body", post("/api/tasks", "Content-Type: application/json\r\nContent-Length: 10000000000\r\n", b"{")),
        ("oversized body", json_post("/api/tasks", &vec![b' '; 200_000])),
        ("oversized chunked body", post("/api/tasks", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", format!("30d40\r\n{}\r\n0\r\n\r\n", " ".repeat(200_000)).as_bytes())),
        ("not JSON", json_post("/api/tasks", b"{nope")),
        ("JSON nested 100,000 deep", json_post("/api/tasks", deep.as_bytes())),
        ("5,000 params", json_post("/api/tasks", wide.as_bytes())),
        ("invalid UTF-8 in JSON", json_post("/api/tasks", b"{\"task_type\":\"\xff\"}")),
        ("wrong types", json_post("/api/tasks", br#"{"task_type":["noop"],"max_attempts":"x"}"#)),
        ("contract body of the wrong shape", json_post("/api/generateAIQuestions", br#"[1,2,3]"#)),
        ("bulk of 100,000 ids", json_post("/api/tasks/bulk", format!("{{\"action\":\"cancel\",\"taskIds\":[{}]}}", vec!["\"task_1_aaaaaa\""; 100_000].join(",")).as_bytes())),
        ("bad query encoding", format!("GET /api/tasks?q=%zz%&limit=%ff HTTP/1.1\r\nHost: x\r\n{auth}\r\n").into_bytes()),
        ("bad task id", format!("GET /api/subscribeToTask?taskId=../../etc HTTP/1.1\r\nHost: x\r\n{auth}\r\n").into_bytes()),
        ("bad Last-Event-ID", format!("GET /api/subscribeToTask?taskId=task_1_aaaaaa HTTP/1.1\r\nHost: x\r\nLast-Event-ID: -1\r\n{auth}\r\n").into_bytes()),
    ]
}

#[test]
fn malformed_and_oversized_requests_never_get_a_5xx_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let server = Server::start(dir.path(), &[]);
    let requests = malformed(&token);
    for (name, request) in &requests {
        let status = status_of(server.addr, request);
        assert!(status.is_none_or(|s| s < 500), "{name}: {status:?}");
    }
    // Many rounds of them: memory settles instead of growing with each request.
    let before = server.rss_kib();
    for _ in 0..20 {
        for (name, request) in &requests {
            let status = status_of(server.addr, request);
            assert!(status.is_none_or(|s| s < 500), "{name}: {status:?}");
        }
    }
    let after = server.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB over {} requests",
        20 * requests.len()
    );
    // And it still serves.
    let (status, _) = crate::process::get(server.addr, "/api/me", &token);
    assert_eq!(status, "HTTP/1.1 200 OK");
}

#[test]
fn slowloris_headers_are_cut_off_at_the_header_timeout_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let server = Server::start(dir.path(), &["--header-read-timeout", "1s"]);
    let started = Instant::now();
    // Clients that trickle a header byte every 100 ms, forever: never idle, never done.
    let slow: Vec<_> = (0..50)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
                let begun = Instant::now();
                while begun.elapsed() < WAIT {
                    if stream.write_all(b"a").is_err() {
                        return begun.elapsed();
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                panic!("a slow client was never cut off");
            })
        })
        .collect();
    // Meanwhile a normal client is served.
    let (status, _) = crate::process::get(server.addr, "/api/me", &token);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(started.elapsed() < Duration::from_secs(1));
    for client in slow {
        let cut_after = client.join().unwrap();
        // The timeout, plus the writes that still fit in the socket buffers after the close.
        assert!(cut_after < Duration::from_secs(4), "{cut_after:?}");
    }
}

#[test]
fn slowloris_bodies_are_cut_off_at_the_body_timeout_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_user(dir.path(), "anna@example.com");
    let server = Server::start(dir.path(), &["--workers", "0", "--body-read-timeout", "1s"]);
    let started = Instant::now();
    // Authenticated clients whose headers are complete and whose body comes a byte every
    // 100 ms: past the header timeout, never idle, never done.
    let slow: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.addr;
            let token = token.clone();
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream.set_read_timeout(Some(WAIT)).unwrap();
                write!(
                    stream,
                    "POST /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                     Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
                )
                .unwrap();
                let begun = Instant::now();
                while begun.elapsed() < WAIT {
                    if stream.write_all(b" ").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    // The answer arrives before the close; a write may still succeed after it.
                    stream.set_nonblocking(true).expect("non-blocking peek");
                    let mut probe = [0u8; 1];
                    let answered = matches!(stream.peek(&mut probe), Ok(n) if n > 0);
                    stream.set_nonblocking(false).expect("blocking again");
                    if answered {
                        break;
                    }
                }
                let cut_after = begun.elapsed();
                let mut answer = String::new();
                let _ = stream.read_to_string(&mut answer);
                (cut_after, answer)
            })
        })
        .collect();
    // Meanwhile normal clients are served at once, reads and writes alike.
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = crate::process::get(server.addr, "/api/me", &token);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let created = post_json(server.addr, &token, "/api/tasks", r#"{"task_type":"noop"}"#);
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "served while the slow bodies trickle: {:?}",
        started.elapsed()
    );
    for client in slow {
        let (cut_after, answer) = client.join().unwrap();
        assert!(cut_after < Duration::from_secs(4), "{cut_after:?}");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an answer");
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        assert!(body.contains("not received within"), "{body}");
    }
    // Only the normal client's task exists.
    let (status, listed) = crate::process::get(server.addr, "/api/tasks", &token);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed["tasks"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}

/// A bare HTTP/1.1 POST of a JSON `body`; returns the whole answer.
fn post_json(addr: SocketAddr, token: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_task_is_not_found_on_every_route_that_takes_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let anna = add_user(dir.path(), "anna@example.com");
    let bob = add_user(dir.path(), "bob@example.com");
    let server = Server::start(dir.path(), &["--workers", "0"]);
    let client = client();
    let task = create_task(
        &client,
        &server,
        &anna,
        &json!({"task_type": "noop", "label": "anna's"}),
    )
    .await;
    let id = task["id"].as_str().unwrap();

    let (status, body) = get_json(&server, &bob, &format!("/api/tasks/{id}")).await;
    assert_eq!((status, &body), (404, &json!({"error": "task not found"})));
    let (status, body) =
        get_json(&server, &bob, &format!("/api/subscribeToTask?taskId={id}")).await;
    assert_eq!(status, 404, "{body}");
    for action in ["cancel", "retry"] {
        let response = client
            .post(server.url(&format!("/api/tasks/{id}/{action}")))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{action}");
    }
    for action in ["cancel", "retry", "delete"] {
        let response = client
            .post(server.url("/api/tasks/bulk"))
            .bearer_auth(&bob)
            .json(&json!({"action": action, "taskIds": [id]}))
            .send()
            .await
            .unwrap();
        let outcome: serde_json::Value = response.json().await.unwrap();
        assert_eq!(outcome["results"][0]["ok"], false, "{action}: {outcome}");
        assert_eq!(outcome["results"][0]["status"], 404, "{action}: {outcome}");
    }
    // Nor do bob's listings show it, and naming anna is refused.
    let (_, listed) = get_json(&server, &bob, "/api/tasks").await;
    assert_eq!(listed["tasks"], json!([]));
    let (_, listed) = get_json(&server, &bob, "/api/getBackgroundTasks").await;
    assert_eq!(listed, json!([]));
    let (status, _) = get_json(&server, &bob, "/api/tasks?userId=anna@example.com").await;
    assert_eq!(status, 403);
    // Anna's task is untouched.
    let (status, mine) = get_json(&server, &anna, &format!("/api/tasks/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&mine["status"], &mine["version"]),
        (&json!("pending"), &json!(1))
    );
}
