//! Running the binary: a command with a temp database, and reading a child's output lines with
//! a bounded wait.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// The longest any awaited output or exit may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// The binary with `TASKLANE_DB` pointing into `dir` and no other `TASKLANE_*` settings.
pub fn task_http(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_task-http"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TASKLANE_") {
            command.env_remove(name);
        }
    }
    command
        .env("TASKLANE_DB", dir.join("tasklane.db"))
        .env("RUST_LOG", "info");
    command
}

/// Runs `command` to completion.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

/// The last line of a command's stdout.
pub fn last_line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

/// Lines of a child's output, read on a thread so waiting for one can be bounded.
pub struct Lines {
    receiver: Receiver<String>,
}

impl Lines {
    /// Starts reading `stream`.
    pub fn new(stream: impl Read + Send + 'static) -> Self {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self { receiver }
    }

    /// The next line, or `None` at the end. Fails the test after [`WAIT`].
    pub fn next(&self) -> Option<String> {
        match self.receiver.recv_timeout(WAIT) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no output in time"),
        }
    }

    /// Reads lines until one contains `needle`, returning it and the lines before.
    pub fn until(&self, needle: &str) -> (String, Vec<String>) {
        let mut before = Vec::new();
        while let Some(line) = self.next() {
            if line.contains(needle) {
                return (line, before);
            }
            before.push(line);
        }
        panic!("output ended without {needle:?}; got {before:#?}");
    }
}

/// Starts `command` with piped stdout and stderr.
pub fn spawn(command: &mut Command) -> (Child, Lines, Lines) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = Lines::new(child.stdout.take().unwrap());
    let stderr = Lines::new(child.stderr.take().unwrap());
    (child, stdout, stderr)
}

/// Starts `command` as `serve` on `127.0.0.1:0` with JSON logs, the test task types and `args`;
/// returns the child, the address it listens on (from its log), and its stdout and stderr.
pub fn serve(command: &mut Command, args: &[&str]) -> (Child, SocketAddr, Lines, Lines) {
    command
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--test-tasks",
        ])
        .args(args);
    let (child, stdout, stderr) = spawn(command);
    let (listening, _) = stderr.until("tasklane listening");
    let entry: serde_json::Value = serde_json::from_str(&listening).expect("a JSON log line");
    let addr = entry["addr"]
        .as_str()
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening}"));
    (child, addr, stdout, stderr)
}

/// Sends SIGTERM and waits (at most [`WAIT`]) for the exit code.
pub fn terminate(mut child: Child) -> Option<i32> {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait().map(|s| s.code()));
    });
    receiver
        .recv_timeout(WAIT)
        .expect("the server did not exit in time")
        .expect("wait failed")
}

/// A bare HTTP/1.1 GET with a bearer token; returns the status line and body.
pub fn get(addr: SocketAddr, path: &str, token: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}
