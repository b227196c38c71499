//! The one writer connection, with group commit.
//!
//! SQLite lets one connection write at a time, so every write goes through one connection.
//! Writes that arrive while the writer is busy queue up, and the writer runs the whole queue in
//! one `BEGIN IMMEDIATE` transaction, each operation inside its own savepoint: one commit (and
//! one thread hand-off) serves many callers, and an operation that fails is rolled back alone,
//! so each still commits whole or writes nothing. A lone operation runs without a savepoint, and
//! so does one that writes with a single statement ([`Atomicity::OneStatement`]): SQLite
//! already undoes a failed statement alone, and the hot worker writes (claim, progress,
//! complete) then skip two statements and the sub-journal's page copies each.
//!
//! After the commit, still holding the connection, the writer publishes the batch's changes in
//! operation order and only then answers the callers: the feed's order is the commit order, and
//! a change is on the feed before the call that made it returns.
//!
//! Why hand-written rather than a pool or an async SQLite crate: no maintained crate batches
//! independent callers' writes into one commit with per-caller savepoints, and the commit is
//! the cost that matters: a lone creation spends about 55–65 µs of its ~65–75 µs on the commit,
//! while 64 tasks per transaction cost 10–14 µs each (`docs/benchmarks.md`, "Store"). Publishing
//! from inside the writer is also what makes the feed's order the commit order.

use std::sync::{Arc, Mutex, MutexGuard};

use task_core::sync::lock;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::checkpointer::{commit_measuring_wal, Checkpointer};
use super::error::map_sqlite_error;
use crate::{ChangeFeed, Result, StoreError, TaskChange};

/// The writer: the connection, the queue of waiting operations, the feed it publishes to, and
/// the thread that checkpoints for it.
pub(super) struct Writer {
    conn: Mutex<Connection>,
    queue: Mutex<Queue>,
    feed: ChangeFeed,
    checkpointer: Checkpointer,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Box<dyn Job>>,
    /// A blocking thread is draining the queue; new jobs wait for it instead of starting one.
    draining: bool,
}

/// A queued operation with its caller's reply channel, its result type erased (or several
/// callers' operations run as one, see `completions`).
pub(super) trait Job: Send {
    /// Runs the operation. `Err` means the transaction itself is broken and the whole batch
    /// must be rolled back.
    fn run(self: Box<Self>, conn: &Connection, savepoint: bool) -> Result<Ran, StoreError>;
    /// Answers the caller without running (the transaction could not start).
    fn refuse(self: Box<Self>, error: StoreError);
}

/// What an operation left behind until the batch commits.
pub(super) struct Ran {
    /// Whether it succeeded (and so needs the commit).
    pub(super) succeeded: bool,
    pub(super) changes: Vec<TaskChange>,
    /// Answers the caller given how the commit went; a failed operation ignores it.
    pub(super) answer: Box<dyn FnOnce(Option<StoreError>) + Send>,
}

impl Ran {
    /// A job that found nothing to do.
    pub(super) fn nothing() -> Self {
        Self {
            succeeded: false,
            changes: Vec::new(),
            answer: Box::new(|_| {}),
        }
    }
}

/// What undoes a failed operation inside a shared transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Atomicity {
    /// The operation may run several writing statements: a savepoint undoes the earlier ones.
    Savepoint,
    /// The operation writes with at most one statement (reads before it are fine). A failed
    /// statement is undone by SQLite itself, so it needs no savepoint.
    OneStatement,
}

struct Operation<T, F> {
    op: F,
    atomicity: Atomicity,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for Operation<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut Vec<TaskChange>) -> Result<T> + Send,
{
    fn run(self: Box<Self>, conn: &Connection, savepoint: bool) -> Result<Ran, StoreError> {
        let Operation {
            op,
            atomicity,
            reply,
        } = *self;
        let savepoint = savepoint && atomicity == Atomicity::Savepoint;
        if savepoint {
            execute(conn, "SAVEPOINT operation")?;
        }
        let mut changes = Vec::new();
        match op(conn, &mut changes) {
            Ok(value) => {
                if savepoint {
                    execute(conn, "RELEASE operation")?;
                }
                Ok(Ran {
                    succeeded: true,
                    changes,
                    answer: Box::new(move |commit_error| {
                        // A caller that stopped waiting does not need the answer.
                        let _ = reply.send(match commit_error {
                            None => Ok(value),
                            Some(error) => Err(error),
                        });
                    }),
                })
            }
            Err(error) => {
                if savepoint {
                    execute(conn, "ROLLBACK TO operation")?;
                    execute(conn, "RELEASE operation")?;
                } else if conn.is_autocommit() {
                    // Some failures (a full disk, say) make SQLite roll back the whole
                    // transaction: the batch's earlier operations are gone with it.
                    let _ = reply.send(Err(error.clone()));
                    return Err(error);
                }
                Ok(Ran {
                    succeeded: false,
                    changes: Vec::new(),
                    answer: Box::new(move |_| {
                        let _ = reply.send(Err(error));
                    }),
                })
            }
        }
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }
}

pub(super) fn execute(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(map_sqlite_error)
}

impl Writer {
    /// `conn` must be watched by [`super::checkpointer::watch_wal`], so its commits report the
    /// WAL's length instead of checkpointing.
    pub(super) fn new(conn: Connection, feed: ChangeFeed, checkpointer: Checkpointer) -> Self {
        Self {
            conn: Mutex::new(conn),
            queue: Mutex::new(Queue::default()),
            feed,
            checkpointer,
        }
    }

    pub(super) fn feed(&self) -> &ChangeFeed {
        &self.feed
    }

    /// Runs `op` in a write transaction (possibly shared with other callers' operations) and
    /// returns its result once the transaction committed and its changes are published.
    pub(super) async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        atomicity: Atomicity,
        op: impl FnOnce(&Connection, &mut Vec<TaskChange>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Operation {
            op,
            atomicity,
            reply,
        }));
        answer.await.map_err(|_| {
            StoreError::Backend("the write stopped before it finished (a panic?)".to_owned())
        })?
    }

    /// Queues `job` for the next batch; the job answers its callers itself.
    pub(super) fn submit(self: &Arc<Self>, job: Box<dyn Job>) {
        let start_draining = {
            let mut queue = self.lock_queue();
            queue.jobs.push(job);
            !std::mem::replace(&mut queue.draining, true)
        };
        if start_draining {
            let writer = Arc::clone(self);
            // The drain runs detached: the caller may stop waiting, the batch still finishes.
            drop(tokio::task::spawn_blocking(move || writer.drain()));
        }
    }

    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Runs queued batches until the queue is empty.
    fn drain(self: Arc<Self>) {
        let mut guard = DrainGuard {
            writer: Arc::clone(&self),
            finished: false,
        };
        // A panic inside a transaction rolls it back as it unwinds, so a poisoned connection
        // is still consistent.
        let mut conn = lock(&self.conn);
        loop {
            let jobs = {
                let mut queue = self.lock_queue();
                if queue.jobs.is_empty() {
                    // Checked and cleared under one lock, so no job is left without a drainer.
                    queue.draining = false;
                    guard.finished = true;
                    return;
                }
                std::mem::take(&mut queue.jobs)
            };
            self.run_batch(&mut conn, jobs);
        }
    }

    fn run_batch(&self, conn: &mut Connection, jobs: Vec<Box<dyn Job>>) {
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(error) => {
                let error = map_sqlite_error(error);
                for job in jobs {
                    job.refuse(error.clone());
                }
                return;
            }
        };
        let savepoints = jobs.len() > 1;
        let mut ran = Vec::with_capacity(jobs.len());
        let mut broken = None;
        for job in jobs {
            if let Some(error) = &broken {
                job.refuse(StoreError::clone(error));
                continue;
            }
            match job.run(&tx, savepoints) {
                Ok(outcome) => ran.push(outcome),
                Err(error) => broken = Some(error),
            }
        }
        let all_failed = ran.iter().all(|outcome| !outcome.succeeded);
        let mut checkpoint_here = false;
        let commit_error = match broken {
            Some(error) => {
                drop(tx);
                Some(error)
            }
            // Nothing to keep: dropping the transaction rolls back a lone failed operation.
            None if all_failed => {
                drop(tx);
                None
            }
            None => {
                let (committed, wal_pages) = commit_measuring_wal(|| tx.commit());
                checkpoint_here = self.checkpointer.wal_grew_to(wal_pages);
                committed.err().map(map_sqlite_error)
            }
        };
        if commit_error.is_none() {
            for outcome in &mut ran {
                for change in outcome.changes.drain(..) {
                    self.feed.publish(change);
                }
            }
        }
        for outcome in ran {
            (outcome.answer)(commit_error.clone());
        }
        // After the answers: the callers of this batch do not wait for it.
        if checkpoint_here {
            self.checkpointer.checkpoint_inline(conn);
        }
    }
}

/// Hands the queue to a new drain if the current one panics, so queued callers are not
/// stranded.
struct DrainGuard {
    writer: Arc<Writer>,
    finished: bool,
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let restart = {
            let mut queue = self.writer.lock_queue();
            queue.draining = !queue.jobs.is_empty();
            queue.draining
        };
        if restart {
            let writer = Arc::clone(&self.writer);
            drop(tokio::task::spawn_blocking(move || writer.drain()));
        }
    }
}
