//! Per-user creation limits (issue #19): the rate limit's 429, users' own limits from the user
//! store, and `GET /api/me` showing them.

use serde_json::json;
use task_store::{Rate, UserLimits, UserStore};

use crate::support::{Options, TestServer, ALICE, BOB};

fn limited(count: u32, period_ms: u32, burst: u32) -> Options {
    let mut options = Options {
        runtime: false,
        ..Options::default()
    };
    options.config.create_rate = Some(Rate { count, period_ms });
    options.config.create_burst = burst;
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_beyond_the_burst_are_429_naming_the_rate_limit() {
    let server = TestServer::start_with(limited(1, 60_000, 2)).await;
    let body = json!({"task_type":"noop"});
    for _ in 0..2 {
        server.create(&server.alice, body.clone()).await;
    }
    let refused = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&body)
        .send()
        .await;
    refused.expect(429);
    assert_eq!(refused.json()["limit"], "rate");
    assert!(refused.error().contains("1/min"), "{}", refused.error());
    // One token comes back every 60 s, and nearly all of that is still to wait.
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=60).contains(&wait), "{wait}");
    // The contract endpoint shares the bucket.
    let contract = server
        .post("/api/generateAIQuestions")
        .bearer(&server.alice)
        .json(&json!({"amount":10,"category":"Historia","ageGroup":"adults","difficulty":"medium","provider":"openai"}))
        .send()
        .await;
    contract.expect(429);
    // Bob has his own bucket.
    server.create(&server.bob, body.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_own_limits_win_and_me_shows_them() {
    let server = TestServer::start_with(limited(600, 60_000, 100)).await;
    let me = server.get("/api/me").bearer(&server.alice).send().await;
    me.expect(200);
    assert_eq!(
        me.json()["limits"],
        json!({"rate":"600/min","burst":100,"max_queued":100,"max_running":null})
    );
    let users: &dyn UserStore = server.store.as_ref();
    users
        .set_user_limits(
            ALICE,
            UserLimits {
                rate: Some(Rate {
                    count: 2,
                    period_ms: 3_600_000,
                }),
                burst: Some(3),
                max_running: Some(4),
                max_queued: Some(2),
            },
        )
        .await
        .unwrap();
    users
        .set_user_limits(
            BOB,
            UserLimits {
                max_queued: Some(1),
                ..UserLimits::default()
            },
        )
        .await
        .unwrap();
    // Alice has created nothing yet, so nothing is cached: the server reads her new limits
    // now (a running server with a cached entry reads them again within 5 s).
    let me = server.get("/api/me").bearer(&server.alice).send().await;
    assert_eq!(
        me.json()["limits"],
        json!({"rate":"2/h","burst":3,"max_queued":2,"max_running":4})
    );
    let body = json!({"task_type":"noop"});
    server.create(&server.alice, body.clone()).await;
    server.create(&server.alice, body.clone()).await;
    // Alice's own queue cap (2) is reached before her burst (3).
    let full = server
        .post("/api/tasks")
        .bearer(&server.alice)
        .json(&body)
        .send()
        .await;
    full.expect(429);
    assert_eq!(full.json()["limit"], "max_queued");
    assert!(full.error().contains("at most 2"), "{}", full.error());
    server.create(&server.bob, body.clone()).await;
    let bob_full = server
        .post("/api/tasks")
        .bearer(&server.bob)
        .json(&body)
        .send()
        .await;
    bob_full.expect(429);
    assert_eq!(bob_full.json()["limit"], "max_queued");
}
