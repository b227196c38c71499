//! `GET /api/analytics`, its CSV export, the analytics page and the Prometheus series fed by
//! folding: counts per group, each user's own view, bad parameters as 400s.

use http::Method;
use serde_json::{json, Value};

use crate::support::{now_millis, TestServer, ALICE, BOB};

fn total<'a>(answer: &'a Value, group: &str) -> &'a Value {
    answer["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["group"] == group)
        .unwrap_or_else(|| panic!("no group {group} in {answer}"))
}

/// Alice completes two tasks, Bob completes one and cancels one; everything is folded.
async fn history(server: &TestServer) {
    server.completed_task(&server.alice).await;
    server.completed_task(&server.alice).await;
    server.completed_task(&server.bob).await;
    server.cancelled_task(&server.bob).await;
    assert_eq!(server.fold().await, 4);
}

#[tokio::test]
async fn the_superuser_sees_everyone_grouped_and_users_see_their_own() {
    let server = TestServer::start().await;
    history(&server).await;

    let by_user = server
        .get("/api/analytics?groupBy=user")
        .bearer(&server.root)
        .send()
        .await;
    by_user.expect(200);
    let by_user = by_user.json();
    assert_eq!(
        (by_user["bucket"].as_str(), by_user["groupBy"].as_str()),
        (Some("hour"), Some("user"))
    );
    assert_eq!(by_user["relativeError"], json!(0.01));
    assert!(by_user["foldedThrough"].as_i64().unwrap() <= now_millis());
    let alice = total(&by_user, ALICE);
    assert_eq!(
        (alice["completed"].as_i64(), alice["cancelled"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(alice["successRate"], json!(1.0));
    assert!(alice["runMs"]["p50"].as_f64().is_some());
    let bob = total(&by_user, BOB);
    assert_eq!(
        (bob["completed"].as_i64(), bob["cancelled"].as_i64()),
        (Some(1), Some(1))
    );
    let series: i64 = by_user["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["completed"].as_i64().unwrap() + s["cancelled"].as_i64().unwrap())
        .sum();
    assert_eq!(series, 4);

    let by_type = server
        .get("/api/analytics?bucket=minute&groupBy=type")
        .bearer(&server.root)
        .send()
        .await;
    by_type.expect(200);
    let noop = by_type.json();
    let noop = total(&noop, "noop");
    assert_eq!(
        (noop["completed"].as_i64(), noop["cancelled"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        noop["attempts"].as_i64(),
        Some(3),
        "the cancelled task never ran"
    );

    let own = server
        .get("/api/analytics?groupBy=none")
        .bearer(&server.alice)
        .send()
        .await;
    own.expect(200);
    let own = own.json();
    assert_eq!(own["user"], json!(ALICE));
    assert_eq!(total(&own, "all")["completed"].as_i64(), Some(2));
    let one = server
        .get(&format!("/api/analytics?groupBy=none&user={BOB}"))
        .bearer(&server.root)
        .send()
        .await;
    one.expect(200);
    assert_eq!(total(&one.json(), "all")["cancelled"].as_i64(), Some(1));
    let foreign = server
        .get(&format!("/api/analytics?user={BOB}"))
        .bearer(&server.alice)
        .send()
        .await;
    foreign.expect(403);
    server.shutdown().await;
}

#[tokio::test]
async fn csv_is_served_on_request() {
    let server = TestServer::start().await;
    history(&server).await;
    for call in [
        server.get("/api/analytics?format=csv&groupBy=user"),
        server
            .get("/api/analytics?groupBy=user")
            .header("accept", "text/csv"),
    ] {
        let answer = call.bearer(&server.root).send().await;
        answer.expect(200);
        assert!(answer
            .header("content-type")
            .unwrap()
            .starts_with("text/csv"));
        let text = String::from_utf8(answer.body.to_vec()).unwrap();
        let mut lines = text.lines();
        assert!(lines
            .next()
            .unwrap()
            .starts_with("bucketStart,group,completed,failed,cancelled"));
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        let completed: i64 = rows.iter().map(|r| r[2].parse::<i64>().unwrap()).sum();
        let cancelled: i64 = rows.iter().map(|r| r[4].parse::<i64>().unwrap()).sum();
        assert_eq!((completed, cancelled), (3, 1));
        assert!(rows.iter().any(|r| r[1] == ALICE));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_the_parameter() {
    let server = TestServer::start().await;
    for (query, field) in [
        ("bucket=week", "bucket"),
        ("groupBy=colour", "groupBy"),
        ("format=xml", "format"),
        ("from=abc", "from"),
        ("to=-5", "to"),
        ("bucket=hour&bucket=day", "bucket"),
    ] {
        let answer = server
            .get(&format!("/api/analytics?{query}"))
            .bearer(&server.root)
            .send()
            .await;
        answer.expect(400);
        assert_eq!(answer.json()["field"], json!(field), "{query}");
    }
    let reversed = server
        .get("/api/analytics?from=7200000&to=3600000")
        .bearer(&server.root)
        .send()
        .await;
    reversed.expect(200);
    assert_eq!(
        reversed.json()["series"],
        json!([]),
        "a reversed range selects nothing"
    );
    let cut = server
        .get("/api/analytics?from=0&to=2592000000&bucket=minute")
        .bearer(&server.root)
        .send()
        .await;
    cut.expect(200);
    assert_eq!(
        cut.json()["from"],
        json!(2_592_000_000i64 - 1_500 * 60_000),
        "the last 1,500 minutes"
    );
    server
        .call(Method::POST, "/api/analytics")
        .bearer(&server.root)
        .send()
        .await
        .expect(405);
    server.shutdown().await;
}

#[tokio::test]
async fn folding_feeds_the_prometheus_series() {
    let server = TestServer::start().await;
    history(&server).await;
    let metrics = server.get("/metrics").bearer(&server.root).send().await;
    metrics.expect(200);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains("tasklane_task_queue_wait_seconds_count{task_type=\"noop\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("tasklane_task_run_seconds_count{task_type=\"noop\"} 3"),
        "{text}"
    );
    assert!(
        !text.contains("tasklane_ai_tokens_total{"),
        "no AI task ran: {text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_page_and_its_files_are_served() {
    let server = TestServer::start().await;
    let page = server
        .get("/superuser/analytics")
        .bearer(&server.root)
        .send()
        .await;
    page.expect(200);
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    for file in ["/assets/js/analytics.js", "/assets/analytics.css"] {
        assert!(html.contains(file), "{file}");
        server.get(file).send().await.expect(200);
    }
    server.get("/assets/js/charts.js").send().await.expect(200);
    server.shutdown().await;
}

#[tokio::test]
async fn ai_tasks_report_provider_model_and_tokens() {
    use crate::support::quiz_server::{
        fake_openai, generated_questions, providers, QuizServer, MODEL,
    };
    use test_support::Scripted;

    let fake = fake_openai(vec![Scripted::Success(generated_questions(0..5))]).await;
    let quiz = QuizServer::start(providers(Some(&fake))).await;
    let server = &quiz.server;
    let started = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&json!({
            "amount": 5, "category": "Matematik", "ageGroup": "adults",
            "difficulty": "medium", "provider": "openai"
        }))
        .send()
        .await;
    started.expect(200);
    let id = started.json()["taskId"].as_str().unwrap().parse().unwrap();
    server
        .wait_for(&id, |t| t.status.as_str() == "completed")
        .await;
    assert_eq!(server.fold().await, 1);

    let answer = server
        .get("/api/analytics?groupBy=model")
        .bearer(&server.root)
        .send()
        .await;
    answer.expect(200);
    let answer = answer.json();
    let model = format!("openai/{MODEL}");
    let group = total(&answer, &model);
    assert_eq!(group["completed"].as_i64(), Some(1));
    assert!(group["inputTokens"].as_i64().unwrap() > 0, "{answer}");
    assert!(group["outputTokens"].as_i64().unwrap() > 0, "{answer}");
    assert_eq!(group["costUsd"], json!(0.0), "the test model has no price");
    assert_eq!(answer["unpriced"], json!([model]));

    let metrics = server.get("/metrics").bearer(&server.root).send().await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains("tasklane_ai_tokens_total{provider=\"openai\",kind=\"input\"}"),
        "{text}"
    );
}
