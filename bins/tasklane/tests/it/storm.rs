//! A reconnect storm against the real binary: 1,000 clients connect at the same instant (as
//! browsers do after a restart) while the server is briefly not accepting; every handshake
//! completes at once and every client is answered. That needs a listen backlog that holds them
//! all (`--listen-backlog`, default 4096): connections beyond the backlog have their SYN dropped
//! and wait a second for its retransmit, so a handshake that took a second or more is the
//! failure this test looks for. How long the answers then take is CPU time (a debug build,
//! sharing two cores with the other tests), so it gets a generous bound of its own.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use crate::process::{spawn, task_http, terminate};

/// Clients in the storm.
const CLIENTS: usize = 1000;
/// The longest a handshake may take: a dropped SYN is retransmitted after one second.
const CONNECTED_WITHIN: Duration = Duration::from_secs(1);
/// The longest any client may wait for its answer.
const SERVED_WITHIN: Duration = Duration::from_secs(10);
/// How long the server is stopped while the clients connect: the kernel alone answers their
/// handshakes, so only the backlog decides who gets in.
const PAUSE: Duration = Duration::from_millis(200);

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Connects, asks `GET /healthz` and reads the answer; returns the status line, how long the
/// handshake took and how long the answer took, from the moment every client was released.
async fn healthz(addr: SocketAddr, start: Arc<Barrier>) -> (String, Duration, Duration) {
    start.wait().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let connected = started.elapsed();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reads");
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (status, connected, started.elapsed())
}

#[test]
fn a_thousand_simultaneous_connects_are_all_served_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _stdout, stderr) =
        spawn(task_http(dir.path()).args(["--addr", "127.0.0.1:0", "--log-format", "json"]));
    let (line, _) = stderr.until("tasklane listening");
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr: SocketAddr = entry["addr"]
        .as_str()
        .or_else(|| entry["fields"]["addr"].as_str())
        .expect("the listening line names the address")
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pid = child.id();
    let results = runtime.block_on(async {
        let start = Arc::new(Barrier::new(CLIENTS));
        signal(pid, "STOP");
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| tokio::spawn(healthz(addr, Arc::clone(&start))))
            .collect();
        tokio::time::sleep(PAUSE).await;
        signal(pid, "CONT");
        let mut results = Vec::with_capacity(CLIENTS);
        for client in clients {
            results.push(client.await.unwrap());
        }
        results
    });
    assert_eq!(terminate(child), Some(0));
    let slowest_connect = results.iter().map(|(_, took, _)| *took).max().unwrap();
    let slowest = results.iter().map(|(_, _, took)| *took).max().unwrap();
    let failed: Vec<_> = results
        .iter()
        .filter(|(status, _, _)| status != "HTTP/1.1 200 OK")
        .collect();
    assert!(
        failed.is_empty(),
        "{} not served: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        slowest_connect < CONNECTED_WITHIN,
        "the slowest of {CLIENTS} handshakes took {slowest_connect:?}: a SYN was dropped"
    );
    assert!(
        slowest < SERVED_WITHIN,
        "the slowest of {CLIENTS} clients took {slowest:?}"
    );
}
