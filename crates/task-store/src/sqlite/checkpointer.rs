//! Checkpoints off the writer's path.
//!
//! In WAL mode SQLite by default checkpoints inside the commit that takes the WAL past 1,000
//! pages: that one commit copies every page back into the database file and syncs it, and all
//! the callers sharing it wait several milliseconds (under a creation load, 2 % of the commits
//! took 1–20 ms and made up almost half of the writer's commit time). Here the writer only
//! notes how long the WAL has grown, and past [`crate::SqliteConfig::checkpoint_pages`] it wakes
//! this thread, which runs a `PASSIVE` checkpoint on a connection of its own while the writer
//! goes on committing.
//!
//! SQLite starts the WAL over from its beginning only when a write transaction begins with
//! every frame already copied. Under a steady load the writer has always committed more by
//! the time this thread finishes, so on its own the WAL would grow without end. The writer
//! therefore checkpoints itself, between two transactions, once the WAL reaches
//! [`INLINE_FACTOR`] times the threshold (`Checkpointer::checkpoint_inline`): this thread has copied most of it by then, the
//! writer copies the rest, and its next transaction restarts the WAL. The WAL stays bounded,
//! and the writer pays one small checkpoint per [`INLINE_FACTOR`] instead of a full one each
//! time.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::error::map_sqlite_error;
use crate::StoreError;

/// The WAL length, as a multiple of the threshold, at which the writer checkpoints itself.
pub(super) const INLINE_FACTOR: u32 = 4;

/// After a checkpoint that could not copy the whole WAL (a reader still needs older pages),
/// the next attempt waits this long, so a long read does not make the thread spin.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

thread_local! {
    /// Pages in the WAL after this thread's last commit, as SQLite's WAL hook reported them.
    /// A thread-local because rusqlite's hook is a plain `fn`, without state of its own; the
    /// writer reads it on the same thread, right after its commit.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

fn record_wal_pages(_wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Replaces SQLite's checkpoint-on-commit on the writer connection with [`record_wal_pages`]:
/// registering a WAL hook turns the automatic checkpoint off.
pub(super) fn watch_wal(writer: &Connection) {
    writer.wal_hook(Some(record_wal_pages));
}

/// Runs `commit` and returns its result with the WAL's length in pages afterwards (0 when the
/// commit wrote nothing).
pub(super) fn commit_measuring_wal<T>(commit: impl FnOnce() -> T) -> (T, u32) {
    WAL_PAGES.set(0);
    let result = commit();
    let pages = u32::try_from(WAL_PAGES.take()).unwrap_or(0);
    (result, pages)
}

/// The checkpoint thread and the writer's way of waking it. Dropping it stops the thread
/// after the checkpoint it may be running.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    after_pages: u32,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    signal: Mutex<Signal>,
    wake: Condvar,
}

#[derive(Default)]
struct Signal {
    wanted: bool,
    closed: bool,
    /// The thread is checkpointing (and holds SQLite's checkpoint lock).
    running: bool,
    /// The writer is checkpointing itself; the thread must not start.
    paused: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Signal> {
        task_core::sync::lock(&self.signal)
    }
}

impl Checkpointer {
    /// Opens the checkpoint connection on `path` and starts the thread; it checkpoints
    /// whenever the writer reports a WAL of at least `after_pages` pages.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the connection cannot be opened or the thread cannot
    /// be started.
    pub(super) fn start(
        path: &Path,
        busy_timeout: Duration,
        after_pages: u32,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(map_sqlite_error)?;
        conn.busy_timeout(busy_timeout).map_err(map_sqlite_error)?;
        let shared = Arc::new(Shared {
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("tasklane-checkpoint".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&conn, &shared)
            })
            .map_err(|e| StoreError::Unavailable(format!("starting the checkpoint thread: {e}")))?;
        Ok(Self {
            shared,
            after_pages,
            thread: Some(thread),
        })
    }

    /// Tells the thread the WAL now holds `pages` pages; past the threshold it checkpoints.
    /// Never blocks on the checkpoint itself. Returns whether the WAL has grown so long that
    /// the writer must checkpoint itself ([`Self::checkpoint_inline`]) before its next transaction.
    #[must_use]
    pub(super) fn wal_grew_to(&self, pages: u32) -> bool {
        if pages < self.after_pages {
            return false;
        }
        let mut signal = self.shared.lock();
        if !signal.wanted {
            signal.wanted = true;
            self.shared.wake.notify_all();
        }
        pages >= self.after_pages.saturating_mul(INLINE_FACTOR)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the thread has already been reported; closing must not panic too.
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared) {
    loop {
        {
            let mut signal = shared.lock();
            while !signal.closed && (!signal.wanted || signal.paused) {
                signal = shared
                    .wake
                    .wait(signal)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if signal.closed {
                return;
            }
            signal.wanted = false;
            signal.running = true;
        }
        let outcome = checkpoint(conn);
        shared.lock().running = false;
        // The writer may be waiting to checkpoint itself.
        shared.wake.notify_all();
        match outcome {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(RETRY_PAUSE),
            Err(error) => {
                tracing::warn!(%error, "WAL checkpoint failed; the next commit retries");
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
}

impl Checkpointer {
    /// The writer's own checkpoint, run on its connection outside any transaction, so that
    /// its next transaction can start the WAL over. It first waits for a checkpoint the thread
    /// is running (SQLite lets one run at a time) and keeps the thread from starting another.
    /// A failure is logged, not returned: the commits before it stand, and the next commit
    /// past the limit tries again.
    pub(super) fn checkpoint_inline(&self, writer: &Connection) {
        {
            let mut signal = self.shared.lock();
            signal.paused = true;
            while signal.running {
                signal = self
                    .shared
                    .wake
                    .wait(signal)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        if let Err(error) = checkpoint(writer) {
            tracing::warn!(%error, "WAL checkpoint on the writer failed");
        }
        self.shared.lock().paused = false;
    }
}

/// One `PASSIVE` checkpoint: copies what no reader still needs, without waiting for anyone.
/// Returns whether it copied the whole WAL.
fn checkpoint(conn: &Connection) -> Result<bool, StoreError> {
    let (_busy, in_wal, copied): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(map_sqlite_error)?;
    Ok(copied >= in_wal)
}
