//! `GET /api/providers` over HTTP: the configured provider limits and each provider and model's
//! calls in flight, minute counts and hold, for superusers only.

use serde_json::json;
use task_core::now_millis;
use task_store::{Admission, AdmitRequest, ProviderKey, ProviderLimitStore};

use crate::support::{provider_limits, Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superusers_see_limits_calls_in_flight_and_holds() {
    let server = TestServer::start_with(Options {
        runtime: false,
        ..Options::default()
    })
    .await;
    let empty = server
        .get("/api/providers")
        .bearer(&server.root)
        .send()
        .await;
    empty.expect(200);
    let empty = empty.json();
    assert_eq!(
        empty["limits"],
        json!([{"provider": "openai", "model": "*", "concurrency": 2,
                "requestsPerMinute": 60, "tokensPerMinute": null}])
    );
    assert_eq!(empty["providers"], json!([]));

    let key = ProviderKey::new("openai", "gpt-4o-mini");
    let now = now_millis();
    let admitted = server
        .store
        .admit(&AdmitRequest {
            key: key.clone(),
            caps: provider_limits().caps_for("openai", "gpt-4o-mini"),
            lease_for_ms: 60_000,
            now,
        })
        .await
        .unwrap();
    assert!(matches!(admitted, Admission::Granted(_)));
    let until = now_millis() + 30_000;
    server.store.hold(&key, until).await.unwrap();

    let seen = server
        .get("/api/providers")
        .bearer(&server.root)
        .send()
        .await;
    seen.expect(200);
    let seen = seen.json();
    let row = &seen["providers"][0];
    assert_eq!(row["provider"], "openai");
    assert_eq!(row["model"], "gpt-4o-mini");
    assert_eq!(
        row["limits"],
        json!({"concurrency": 2, "requestsPerMinute": 60, "tokensPerMinute": null})
    );
    assert_eq!(row["inFlight"], 1);
    assert_eq!(row["tokens"], 0);
    assert_eq!(row["holdUntil"], until);
    assert!(
        row["requests"].as_u64().unwrap() <= 1,
        "1, or 0 in a new minute"
    );

    server
        .get("/api/providers")
        .bearer(&server.alice)
        .send()
        .await
        .expect(403);
    server.get("/api/providers").send().await.expect(401);
    server
        .post("/api/providers")
        .bearer(&server.root)
        .send()
        .await
        .expect(405);
}
