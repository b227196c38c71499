//! Task priorities over HTTP (issue #19): accepted by the creating endpoints, shown in the task
//! JSON and listings, a bad value named in a 400.

use serde_json::{json, Value};

use crate::support::{Options, TestServer};

fn quiet() -> Options {
    Options {
        runtime: false,
        ..Options::default()
    }
}

async fn create(server: &TestServer, body: Value) -> (u16, Value) {
    let answer = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&body)
        .send()
        .await;
    (answer.status.as_u16(), answer.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_carry_their_priority_and_bad_ones_are_400() {
    let server = TestServer::start_with(quiet()).await;
    let (status, high) = create(&server, json!({"task_type": "noop", "priority": "high"})).await;
    assert_eq!(status, 201);
    assert_eq!(high["priority"], "high");
    let (_, plain) = create(&server, json!({"task_type": "noop"})).await;
    assert_eq!(plain["priority"], "normal");
    for bad in [json!("urgent"), json!(2), json!(["high"])] {
        let (status, body) = create(&server, json!({"task_type": "noop", "priority": bad})).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["error"].as_str().unwrap().contains("priority"),
            "{body}"
        );
    }
    let listed = server.get("/api/tasks").bearer(&server.alice).send().await;
    listed.expect(200);
    let priorities: Vec<Value> = listed.json()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["priority"].clone())
        .collect();
    assert_eq!(priorities, [json!("normal"), json!("high")], "newest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_nodes_and_generations_take_a_priority() {
    let server = TestServer::start_with(quiet()).await;
    let answer = server
        .post("/api/workflows")
        .bearer(&server.alice)
        .json(&json!({"nodes": [
            {"key": "a", "task_type": "noop", "priority": "low"},
            {"key": "b", "task_type": "noop"}
        ]}))
        .send()
        .await;
    answer.expect(201);
    let tasks = &answer.json()["tasks"];
    for (key, expected) in [("a", "low"), ("b", "normal")] {
        let id = tasks[key].as_str().unwrap();
        let task = server
            .get(&format!("/api/tasks/{id}"))
            .bearer(&server.alice)
            .send()
            .await;
        assert_eq!(task.json()["priority"], expected, "{key}");
    }
    let generation = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&json!({
            "amount": 3, "category": "Historia", "ageGroup": "adults",
            "difficulty": "medium", "provider": "openai", "priority": "high"
        }))
        .send()
        .await;
    generation.expect(200);
    let id = generation.json()["taskId"].as_str().unwrap().to_owned();
    let task = server
        .get(&format!("/api/tasks/{id}"))
        .bearer(&server.alice)
        .send()
        .await;
    assert_eq!(task.json()["priority"], "high");
    let bad = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&json!({
            "amount": 3, "category": "Historia", "ageGroup": "adults",
            "difficulty": "medium", "provider": "openai", "priority": "asap"
        }))
        .send()
        .await;
    bad.expect(400);
}
