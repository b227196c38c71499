//! Browser sessions: login sets an HttpOnly, SameSite=Strict cookie; cookie-authenticated
//! changes need a same-origin `Origin`; logout ends the session.

use serde_json::json;

use crate::support::{Options, TestServer, ALICE};

/// Logs Alice in and returns the `name=value` part of her session cookie.
async fn login(server: &TestServer) -> String {
    let answer = server
        .post("/api/login")
        .json(&json!({"token": server.alice}))
        .send()
        .await;
    answer.expect(200);
    assert_eq!(
        answer.json(),
        json!({"email": ALICE, "role": "user", "auth": "session"})
    );
    let set_cookie = answer.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains(&server.alice),
        "the cookie is a new secret, not the API token"
    );
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_work_and_posts_need_a_matching_origin() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let cookie = login(&server).await;
    let me = server.get("/api/me").cookie(&cookie).send().await.json();
    assert_eq!(
        (&me["email"], &me["role"], &me["auth"]),
        (&json!(ALICE), &json!("user"), &json!("session"))
    );
    let task = server.pending_task(&server.alice).await;
    let cancel = format!("/api/tasks/{}/cancel", task.id);
    server
        .post(&cancel)
        .cookie(&cookie)
        .send()
        .await
        .expect(403);
    server
        .post(&cancel)
        .cookie(&cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect(403);
    server
        .post(&cancel)
        .cookie(&cookie)
        .header("origin", "null")
        .send()
        .await
        .expect(403);
    server
        .post(&cancel)
        .cookie(&cookie)
        .same_origin()
        .send()
        .await
        .expect(200);
    let generation = json!({"amount":1,"category":"x","ageGroup":"adults","difficulty":"easy","provider":"offline"});
    server
        .post("/api/generateAIQuestions")
        .cookie(&cookie)
        .json(&generation)
        .send()
        .await
        .expect(403);
    server
        .post("/api/generateAIQuestions")
        .cookie(&cookie)
        .same_origin()
        .json(&generation)
        .send()
        .await
        .expect(200);
    // Reads and streams need no Origin (EventSource sends none on same-origin requests).
    server
        .get("/api/tasks")
        .cookie(&cookie)
        .send()
        .await
        .expect(200);
    let stream = server
        .get("/api/subscribeToTasks")
        .cookie(&cookie)
        .open_stream()
        .await;
    assert_eq!(stream.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_not_api_tokens_and_logout_ends_them() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let cookie = login(&server).await;
    let secret = cookie.split_once('=').unwrap().1.to_owned();
    server
        .get("/api/me")
        .bearer(&secret)
        .send()
        .await
        .expect(401);
    server
        .post("/api/login")
        .json(&json!({"token": secret}))
        .send()
        .await
        .expect(401);
    server
        .post("/api/login")
        .header("origin", "http://evil.example")
        .json(&json!({"token": server.alice}))
        .send()
        .await
        .expect(403);
    server
        .post("/api/logout")
        .cookie(&cookie)
        .send()
        .await
        .expect(403);
    let logout = server
        .post("/api/logout")
        .cookie(&cookie)
        .same_origin()
        .send()
        .await;
    logout.expect(200);
    assert!(logout.header("set-cookie").unwrap().contains("Max-Age=0"));
    server
        .get("/api/me")
        .cookie(&cookie)
        .send()
        .await
        .expect(401);
}
