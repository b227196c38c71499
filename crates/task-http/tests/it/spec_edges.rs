//! Requests `docs/openapi.yaml` allows that the server once refused (and one it forbade that the
//! server once took), found by schemathesis (`.ci/schemathesis.sh`): each is pinned here through
//! HTTP so that spec and server keep agreeing.

use serde_json::json;

use crate::support::{Options, TestServer};

fn without_runtime() -> Options {
    Options {
        runtime: false,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_number_may_be_written_with_a_fraction_of_zero() {
    let server = TestServer::start_with(without_runtime()).await;
    let answer = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({"task_type": "noop", "max_attempts": 2.0, "run_at": 0.0}))
        .send()
        .await;
    answer.expect(201);
    assert_eq!(answer.json()["max_attempts"], 2);
    server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({"task_type": "noop", "max_attempts": 2.5}))
        .send()
        .await
        .expect(400);
    server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(
            &json!({"amount": 5.0, "category": "Historia", "ageGroup": "adults",
                      "difficulty": "easy", "provider": "offline"}),
        )
        .send()
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_user_id_is_a_name_that_matches_only_its_owner() {
    let server = TestServer::start_with(without_runtime()).await;
    server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&json!({"task_type": "noop"}))
        .send()
        .await
        .expect(201);
    for path in ["/api/tasks", "/api/getBackgroundTasks"] {
        // A superuser naming a user no account can have gets nobody's tasks.
        let answer = server
            .get(&format!("{path}?userId=I%F3%A4%9A%8F%C3%9F%02%7B"))
            .bearer(&server.root)
            .send()
            .await;
        answer.expect(200);
        let listed = answer.json();
        let tasks = listed.get("tasks").unwrap_or(&listed);
        assert_eq!(tasks, &json!([]), "{path}");
        // A normal user naming anyone but themself is refused, whatever the name.
        server
            .get(&format!("{path}?userId=%02"))
            .bearer(&server.alice)
            .send()
            .await
            .expect(403);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_parameter_given_twice_is_refused() {
    let server = TestServer::start_with(without_runtime()).await;
    let answer = server
        .get("/api/tasks?limit=&limit=5")
        .bearer(&server.alice)
        .send()
        .await;
    answer.expect(400);
    assert_eq!(answer.json()["field"], "limit");
    server
        .get("/api/subscribeToTasks?userId=a&userId=b")
        .bearer(&server.alice)
        .send()
        .await
        .expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_string_as_a_login_token_is_a_wrong_credential() {
    let server = TestServer::start_with(without_runtime()).await;
    for token in ["", "   ", "tl_nope"] {
        server
            .post("/api/login")
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect(401);
    }
    let answer = server.post("/api/login").json(&json!({})).send().await;
    answer.expect(400);
    assert_eq!(answer.json()["field"], "token");
}
