//! A NUL character (`%00`) in a listing filter is a 400 that names the query parameter, on
//! SQLite and on PostgreSQL alike (PostgreSQL's `text` cannot hold NUL, and its error used to
//! name the column type instead of the parameter).

use serde_json::Value;

use crate::cluster::{client, Endpoint, TestSchema};
use crate::faults::Server;
use crate::process::{last_line, run, task_http, WAIT};

/// (path, the parameter the 400 must name): every listing filter that reaches a store.
const CASES: [(&str, &str); 10] = [
    ("/api/tasks?q=%00", "q"),
    ("/api/tasks?q=quiz%00x", "q"),
    ("/api/tasks?type=noop%00", "type"),
    ("/api/tasks?status=pending%00", "status"),
    ("/api/tasks?userId=anna%00%40example.com", "userId"),
    ("/api/tasks?cursor=1.task_1_aa%00", "cursor"),
    ("/api/getBackgroundTasks?userId=%00", "userId"),
    ("/api/questions?q=%00", "q"),
    ("/api/questions?category=Historia%00", "category"),
    ("/api/subscribeToTasks?userId=%00", "userId"),
];

/// Sends every case as the superuser `token` and checks the answer names the parameter.
async fn check_every_filter(server: &impl Endpoint, token: &str) {
    let client = client();
    for (path, parameter) in CASES {
        let response = client
            .get(server.url(path))
            .bearer_auth(token)
            .timeout(WAIT)
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(
            body["error"],
            format!("invalid {parameter}: must not contain a NUL character (%00)"),
            "{path}"
        );
        assert_eq!(body["field"], parameter, "{path}: {body}");
    }
    // The same filters without the NUL are fine: the 400 is about the character alone.
    let response = client
        .get(server.url("/api/tasks?q=quiz&type=noop&status=pending"))
        .bearer_auth(token)
        .timeout(WAIT)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_listing_filter_is_400_naming_the_parameter_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        run(task_http(dir.path()).args(["user", "add", "root@example.com", "--superuser"]));
    assert!(output.status.success(), "{output:?}");
    let token = last_line(&output);
    let server = Server::start(dir.path(), &["--workers", "0"]);
    check_every_filter(&server, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_in_a_listing_filter_is_400_naming_the_parameter_on_postgres() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let instance = schema.start(&["--workers", "0"]);
    let token = instance.first_admin_token();
    check_every_filter(&instance, &token).await;
}
