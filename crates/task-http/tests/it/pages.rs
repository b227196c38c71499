//! The browser pages: where anonymous visitors are sent, who may see the superuser page, and
//! that embedded files are served.

use serde_json::json;

use crate::support::{Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_redirect_and_refuse() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let root = server.get("/").send().await;
    root.expect(303);
    assert_eq!(root.header("location"), Some("/tasks"));
    let anonymous = server.get("/tasks").send().await;
    anonymous.expect(303);
    assert_eq!(anonymous.header("location"), Some("/login"));
    let login = server.get("/login").send().await;
    login.expect(200);
    assert!(login
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(login.header("content-security-policy").is_some());
    let session = server
        .post("/api/login")
        .json(&json!({"token": server.alice}))
        .send()
        .await;
    let cookie = session
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    server
        .get("/tasks")
        .cookie(&cookie)
        .send()
        .await
        .expect(200);
    server
        .get("/superuser/tasks")
        .cookie(&cookie)
        .send()
        .await
        .expect(403);
    server
        .get("/superuser/tasks")
        .bearer(&server.root)
        .send()
        .await
        .expect(200);
    let script = server.get("/client/api.js").send().await;
    script.expect(200);
    assert!(script
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    server.get("/client/../Cargo.toml").send().await.expect(404);
    server.get("/assets/nothing.js").send().await.expect(404);
}
