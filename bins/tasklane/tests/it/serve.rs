//! `serve`: the first run creates an admin and prints its token and the dashboard URL; the
//! server works with that token; SIGTERM stops it with exit code 0.

use std::net::SocketAddr;

use crate::process::{get, spawn, task_http, terminate};

#[test]
fn first_run_prints_an_admin_token_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (child, stdout, stderr) =
        spawn(task_http(dir.path()).args(["serve", "--addr", "127.0.0.1:0", "--test-tasks"]));
    let (dashboard, before) = stdout.until("Dashboard: ");
    let token = before.last().expect("the token line").clone();
    assert!(token.starts_with("tl_") && token.len() == 67, "{before:?}");
    assert!(
        before
            .iter()
            .any(|line| line.contains("superuser \"admin\"")),
        "{before:?}"
    );
    let url = dashboard.trim_start_matches("Dashboard: ");
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/login")
        .parse()
        .unwrap();

    let (status, body) = get(addr, "/api/me", &token);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(
        body.contains(r#""email":"admin""#) && body.contains(r#""role":"superuser""#),
        "{body}"
    );
    let code = terminate(child);
    let mut logged = Vec::new();
    while let Some(line) = stderr.next() {
        logged.push(line);
    }
    assert_eq!(code, Some(0), "{logged:#?}");

    // The second start finds a user and prints no new token.
    let (child, stdout, stderr) = spawn(task_http(dir.path()).args(["--addr", "127.0.0.1:0"]));
    stderr.until("tasklane listening");
    assert_eq!(terminate(child), Some(0));
    let mut printed = Vec::new();
    while let Some(line) = stdout.next() {
        printed.push(line);
    }
    assert!(printed.is_empty(), "{printed:?}");
}

#[test]
fn json_logs_never_contain_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (child, stdout, stderr) =
        spawn(task_http(dir.path()).args(["--addr", "127.0.0.1:0", "--log-format", "json"]));
    let (dashboard, before) = stdout.until("Dashboard: ");
    let token = before.last().unwrap().clone();
    let addr: SocketAddr = dashboard
        .trim_start_matches("Dashboard: http://")
        .trim_end_matches("/login")
        .parse()
        .unwrap();
    let (status, _) = get(addr, "/api/tasks", &token);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (request_log, mut logged) = stderr.until("\"route\":\"/api/tasks\"");
    let entry: serde_json::Value = serde_json::from_str(&request_log).unwrap();
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["user"], "admin");
    assert_eq!(terminate(child), Some(0));
    logged.push(request_log);
    while let Some(line) = stderr.next() {
        logged.push(line);
    }
    assert!(logged.iter().any(|line| line.contains("SIGTERM received")));
    assert!(
        !logged.iter().any(|line| line.contains(&token)),
        "a token was logged"
    );
}
