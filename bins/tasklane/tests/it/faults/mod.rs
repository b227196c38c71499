//! The fault suite: the real binary on a SQLite file (or, for fencing, PostgreSQL) under the
//! failures an unlucky operator or a hostile client brings: kill -9 (once, and in a loop under
//! load), SIGTERM under load, a paused worker past its lease, malformed and oversized requests,
//! slow clients, other users' task ids, a full disk, and a provider that echoes its API key.
//! Each test bounds every wait and keeps to seconds.

mod crash;
mod disk_full;
mod hostile;
mod secrets;
mod shutdown;
mod zombie;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::{client, Endpoint, EventStream};
use crate::process::{last_line, run, serve, task_http, Lines, WAIT};

/// A lease and rescue interval short enough that a crash is repaired within about a second.
pub const QUICK_RESCUE: [&str; 4] = ["--lease", "1s", "--rescue-interval", "200ms"];

/// Creates the user `email` in the database in `dir` and returns its first API token.
pub fn add_user(dir: &Path, email: &str) -> String {
    let output = run(task_http(dir).args(["user", "add", email]));
    assert!(output.status.success(), "{output:?}");
    last_line(&output)
}

/// One `task-http serve` on the SQLite file in a directory, killed (SIGKILL) when dropped.
pub struct Server {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    // Read on, so a chatty process never blocks on a full pipe.
    stdout: Lines,
    stderr: Lines,
}

impl Server {
    /// Starts a server on `dir`'s database with the test task types and `args`.
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        Self::start_with_env(dir, args, &[("RUST_LOG", "warn,task_http::serve=info")])
    }

    /// As [`Server::start`], with the environment variables `env` set (after the defaults).
    pub fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = task_http(dir);
        command.env("RUST_LOG", "warn,task_http::serve=info");
        command.envs(env.iter().copied());
        let (child, addr, stdout, stderr) = serve(&mut command, args);
        Self {
            child: Some(child),
            addr,
            stdout,
            stderr,
        }
    }

    /// Stops the server with SIGTERM and returns everything it wrote after its address line,
    /// stdout first, then stderr.
    pub fn stop_and_collect_output(mut self) -> Vec<String> {
        let child = self.child.take().expect("running");
        let code = crate::process::terminate(child);
        assert_eq!(code, Some(0), "a clean exit");
        let mut lines = Vec::new();
        while let Some(line) = self.stdout.next() {
            lines.push(line);
        }
        while let Some(line) = self.stderr.next() {
            lines.push(line);
        }
        lines
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident memory in KiB, from `/proc`.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the process's status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmRSS line")
    }

    /// SIGKILL: a crash, with no chance to finish anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// Sends SIGTERM and waits (at most `within`) for the exit; returns the exit code and how
    /// long the process took to exit.
    pub fn terminate(mut self, within: Duration) -> (Option<i32>, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        signal(child.id(), "TERM");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait().map(|status| status.code()));
        });
        let code = receiver
            .recv_timeout(within)
            .expect("the server did not exit in time")
            .expect("wait failed");
        (code, started.elapsed())
    }
}

impl Endpoint for Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `kill -<name>` to `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Follows `task_id`'s stream until the task is `completed`, failing on any other end; returns
/// every event seen.
pub async fn until_completed(server: &impl Endpoint, token: &str, task_id: &str) -> Vec<Value> {
    let path = format!("/api/subscribeToTask?taskId={task_id}");
    let mut stream = EventStream::open(&client(), server, token, &path).await;
    let mut events = Vec::new();
    while let Some(event) = stream.next_within(WAIT).await {
        let done = event["type"] == "complete";
        assert!(
            event["type"] == "update" || done,
            "{task_id}: {event} after {events:#?}"
        );
        events.push(event);
        if done {
            return events;
        }
    }
    panic!("{task_id}: the stream ended before `complete`: {events:#?}");
}

/// Follows `task_id`'s stream until `wanted` holds for the task; returns that task.
pub async fn until_task(
    server: &impl Endpoint,
    token: &str,
    task_id: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("/api/subscribeToTask?taskId={task_id}");
    let mut stream = EventStream::open(&client(), server, token, &path).await;
    while let Some(event) = stream.next_within(WAIT).await {
        if wanted(&event["task"]) {
            return event["task"].clone();
        }
    }
    panic!("{task_id}: the stream ended first");
}

/// `GET path` with `token`; the status and the JSON answer.
pub async fn get_json(server: &impl Endpoint, token: &str, path: &str) -> (u16, Value) {
    let response = client()
        .get(server.url(path))
        .bearer_auth(token)
        .timeout(WAIT)
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}
