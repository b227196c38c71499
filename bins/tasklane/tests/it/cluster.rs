//! Several `task-http` processes on one PostgreSQL schema: a fresh schema per test (dropped at
//! the end), instances started with `--db <url> --pg-schema <schema>` and killed when dropped,
//! and the HTTP and SSE calls the multi-instance tests make. Needs `TASKLANE_TEST_POSTGRES`;
//! without it [`TestSchema::new`] prints why the test is skipped.

use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;
use test_support::postgres;

use crate::process::{serve, task_http, Lines, WAIT};

/// A schema of its own for one test on the test server (dropped with the sessions still using
/// it), and the data directory [`task_http`] requires.
pub struct TestSchema {
    schema: postgres::TestSchema,
    /// Unused by the instances (they get `--db <url>`) but required by [`task_http`].
    dir: tempfile::TempDir,
}

impl TestSchema {
    /// A fresh schema name on the test server, or `None` (printed) when there is none.
    pub fn new() -> Option<Self> {
        let schema = postgres::TestSchema::new("tasklane_mi")?;
        let dir = tempfile::tempdir().expect("temp dir");
        Some(Self { schema, dir })
    }

    /// The server URL, with the schema's name as `application_name` so the drop finds every
    /// session of this test.
    pub fn url(&self) -> &str {
        self.schema.url()
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        self.schema.name()
    }

    /// A plain connection for looking at the tables behind the instances' backs.
    pub async fn admin(&self) -> tokio_postgres::Client {
        self.schema.admin().await
    }

    /// Starts a `task-http serve` on this schema with the test task types and `args`.
    pub fn start(&self, args: &[&str]) -> Instance {
        let mut command = task_http(self.dir.path());
        command
            .env("TASKLANE_DB", self.url())
            .env("TASKLANE_PG_SCHEMA", self.name())
            // Only the line announcing the address, and anything that goes wrong.
            .env("RUST_LOG", "warn,task_http::serve=info");
        let (child, addr, stdout, stderr) = serve(&mut command, args);
        Instance {
            child,
            addr,
            stdout,
            _stderr: stderr,
        }
    }
}

/// One running `task-http` process, killed when dropped (also when a test fails).
pub struct Instance {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stdout: Lines,
    // Read on, so a chatty process never blocks on a full pipe.
    _stderr: Lines,
}

impl Instance {
    /// The superuser token the first instance on a schema prints (its stdout's line before
    /// the dashboard URL).
    pub fn first_admin_token(&self) -> String {
        let (_, before) = self.stdout.until("Dashboard: ");
        before.last().expect("the token line").clone()
    }

    /// The process id, which is part of its workers' `lease_owner` (`<host>-<pid>-<random>`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether `lease_owner` names one of this process's workers.
    pub fn owns(&self, lease_owner: &Value) -> bool {
        lease_owner
            .as_str()
            .is_some_and(|owner| owner.contains(&format!("-{}-", self.pid())))
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SIGKILL: the tests that stop an instance on purpose want a crash, not a shutdown.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Something the test talks HTTP to: an [`Instance`] here, a SQLite server in `faults`.
pub trait Endpoint {
    /// `http://<addr><path>`.
    fn url(&self, path: &str) -> String;
}

impl Endpoint for Instance {
    fn url(&self, path: &str) -> String {
        Instance::url(self, path)
    }
}

/// An HTTP client for the tests (no proxies, a bounded wait per request).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(WAIT)
        .build()
        .expect("HTTP client")
}

/// `POST /api/tasks` on `instance`; returns the created task.
pub async fn create_task(
    client: &reqwest::Client,
    instance: &impl Endpoint,
    token: &str,
    body: &Value,
) -> Value {
    let response = client
        .post(instance.url("/api/tasks"))
        .bearer_auth(token)
        .json(body)
        .timeout(WAIT)
        .send()
        .await
        .expect("POST /api/tasks");
    let status = response.status();
    let task: Value = response.json().await.expect("a JSON answer");
    assert_eq!(status, reqwest::StatusCode::CREATED, "{task}");
    task
}

/// One SSE stream's messages, parsed.
pub struct EventStream {
    response: reqwest::Response,
    /// Bytes read but not parsed yet; a chunk may end inside a message (or a character).
    buffer: Vec<u8>,
}

impl EventStream {
    /// Opens `GET <path>` on `instance` and checks that it is an event stream.
    pub async fn open(
        client: &reqwest::Client,
        instance: &impl Endpoint,
        token: &str,
        path: &str,
    ) -> Self {
        let response = client
            .get(instance.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("open the stream");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The `data` of the next message; `None` when the stream ends. Fails the test when
    /// nothing arrives within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let message: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let message = String::from_utf8(message).expect("UTF-8 messages");
                let data: Vec<&str> = message
                    .lines()
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                if data.is_empty() {
                    // `retry:` or a keep-alive comment.
                    continue;
                }
                return Some(serde_json::from_str(&data.join("\n")).expect("JSON data"));
            }
            let chunk = tokio::time::timeout(wait, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {wait:?}"))
                .expect("read the stream")?;
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next message within [`WAIT`].
    pub async fn next(&mut self) -> Option<Value> {
        self.next_within(WAIT).await
    }
}
