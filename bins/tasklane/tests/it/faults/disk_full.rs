//! A full disk, for real: the binary's SQLite file on a small tmpfs that a filler file fills up.
//! Writes answer 503 with `Retry-After`, `/readyz` reports the instance not ready while reads
//! still work, and once the filler is deleted the same process takes writes again (no restart).
//! Mounting needs root (CI runs as root); elsewhere the test prints why it is skipped. The
//! in-process test `task-http`'s `a_full_disk_is_503_…` (SQLite's `max_page_count`) covers the
//! same answers where no file system can be mounted.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::{add_user, Server};
use crate::cluster::{client, Endpoint};
use crate::process::WAIT;

/// Room for the database, its WAL and a few dozen tasks; the filler takes the rest.
const TMPFS_SIZE: &str = "8m";

/// A tmpfs mounted on a fresh directory, unmounted (and the directory removed) when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of [`TMPFS_SIZE`], or says why it cannot.
    fn mount() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (needs root): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding a file open must not keep the mount (or fail the test).
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the file system has no space left; returns how many bytes it took.
fn fill(path: &Path) -> u64 {
    let mut file = File::create(path).expect("the filler file");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => panic!("filling the disk: {error}"),
        }
    }
    let _ = file.sync_all();
    written
}

/// `(status, Retry-After, body)` of `POST /api/tasks` with a task whose params take `bytes`.
async fn create(server: &Server, token: &str, bytes: usize) -> (u16, Option<String>, Value) {
    let response = client()
        .post(server.url("/api/tasks"))
        .bearer_auth(token)
        .json(&json!({"task_type": "noop", "params": {"blob": "x".repeat(bytes)}}))
        .timeout(WAIT)
        .send()
        .await
        .expect("POST /api/tasks");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry_after, response.json().await.expect("JSON"))
}

/// `(status, Retry-After)` of `GET path` without credentials.
async fn probe(server: &Server, path: &str) -> (u16, Option<String>) {
    let response = client()
        .get(server.url(path))
        .timeout(WAIT)
        .send()
        .await
        .expect("GET");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tmpfs_is_503_with_retry_after_and_not_ready_until_space_is_freed() {
    let tmpfs = match Tmpfs::mount() {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!("skipped: the full-disk test needs a tmpfs: {reason}");
            return;
        }
    };
    let token = add_user(tmpfs.path(), "anna@example.com");
    // No workers: nothing but the requests below writes to the database.
    let server = Server::start(tmpfs.path(), &["--workers", "0"]);
    assert_eq!(probe(&server, "/readyz").await.0, 200);
    let (status, _, _) = create(&server, &token, 1024).await;
    assert_eq!(status, 201);

    let filler: PathBuf = tmpfs.path().join("filler");
    let taken = fill(&filler);
    assert!(taken > 0, "the filler took no space");
    // Pages freed inside the database's files may still take a task or two; a few dozen
    // 48 KiB tasks cannot fit.
    let mut refused = None;
    for _ in 0..64 {
        let (status, retry_after, body) = create(&server, &token, 48 * 1024).await;
        match status {
            201 => continue,
            503 => {
                refused = Some((retry_after, body));
                break;
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    let (retry_after, body) = refused.expect("a write on a full disk was refused");
    assert_eq!(body, json!({"error": "database unavailable"}));
    assert_eq!(retry_after.as_deref(), Some("1"));
    // Reads still work, but the instance is not ready: it cannot take new tasks.
    let (status, _) = crate::process::get(server.addr, "/api/tasks?limit=1", &token);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, retry_after) = probe(&server, "/readyz").await;
    assert_eq!(status, 503);
    assert!(retry_after.is_some(), "/readyz says when to look again");
    // Still full: still refused, and still not ready.
    assert_eq!(create(&server, &token, 48 * 1024).await.0, 503);
    assert_eq!(probe(&server, "/readyz").await.0, 503);

    // Space comes back: the same process takes writes and is ready again.
    std::fs::remove_file(&filler).expect("delete the filler");
    let (status, _, body) = create(&server, &token, 48 * 1024).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(probe(&server, "/readyz").await.0, 200);
    let (status, _, _) = create(&server, &token, 1024).await;
    assert_eq!(status, 201);
}
