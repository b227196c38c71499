//! Sends the change notifications of this instance's writes, batched, after they commit.
//!
//! Why not `pg_notify` inside each writing transaction (or a trigger)? PostgreSQL serialises
//! every committing transaction that has notifications queued behind one database-wide lock
//! held through its WAL flush, so per-write notifications turn concurrent workers into a
//! convoy: on the project's 2-core machine a trigger halved the drain rate when idle and cut
//! it six-fold under load (see docs/postgres.md). Here the writes commit without notifying;
//! one task sends everything queued meanwhile in a single `pg_notify` statement on its own
//! connection, so one notifying commit covers many writes. The cost: a process that dies in
//! the moment between a commit and its batch leaves other instances to learn of that change
//! from the task's next one.

use std::time::Duration;

use task_core::{Task, TaskId};
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};
use tokio_util::sync::CancellationToken;

/// Most payloads sent in one statement.
const MAX_BATCH: usize = 1000;
/// Attempts to send one batch before giving it up (receivers then see the next change).
const SEND_ATTEMPTS: u32 = 3;
/// The wait before a failed batch is sent again.
const RETRY_AFTER: Duration = Duration::from_millis(50);

const NOTIFY: &str = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload";

/// The queue of notifications to send; cheap to call from any write path.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    queue: mpsc::UnboundedSender<String>,
}

impl Notifier {
    /// Starts the sending task on `pg_config` for `channel`. It sends what is queued when
    /// `stop` is cancelled, then ends.
    pub(crate) fn start(
        pg_config: tokio_postgres::Config,
        channel: String,
        stop: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let sender = Sender {
            pg_config,
            channel,
            client: None,
        };
        tokio::spawn(sender.run(receiver, stop));
        Self { queue }
    }

    /// Announces the committed state `task` (`<id>:<version>`).
    pub(crate) fn upserted(&self, task: &Task) {
        self.send(format!("{}:{}", task.id, task.version));
    }

    /// Announces the deletion of `id`, last at `version` (`<id>:<version>:d:<user_id>`).
    pub(crate) fn deleted(&self, id: &TaskId, user_id: &str, version: i64) {
        self.send(format!("{id}:{version}:d:{user_id}"));
    }

    fn send(&self, payload: String) {
        // Fails only after the sending task ended, when the store is shutting down.
        let _ = self.queue.send(payload);
    }
}

struct Sender {
    pg_config: tokio_postgres::Config,
    channel: String,
    client: Option<Client>,
}

impl Sender {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<String>, stop: CancellationToken) {
        loop {
            let first = tokio::select! {
                received = receiver.recv() => received,
                () = stop.cancelled() => {
                    receiver.close();
                    receiver.recv().await
                }
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.send(&batch).await;
        }
    }

    /// Sends one batch, reconnecting as needed; gives up after [`SEND_ATTEMPTS`].
    async fn send(&mut self, batch: &[String]) {
        for attempt in 1..=SEND_ATTEMPTS {
            match self.try_send(batch).await {
                Ok(()) => return,
                Err(error) => {
                    self.client = None;
                    tracing::warn!(%error, attempt, "could not send change notifications");
                    if attempt < SEND_ATTEMPTS {
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
            }
        }
        tracing::error!(
            changes = batch.len(),
            "gave up sending change notifications; other instances see these tasks' next change"
        );
    }

    async fn try_send(&mut self, batch: &[String]) -> Result<(), tokio_postgres::Error> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => {
                let (client, connection) = self.pg_config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::warn!(%error, "change notifier connection failed");
                    }
                });
                client
            }
        };
        client.execute(NOTIFY, &[&self.channel, &batch]).await?;
        self.client = Some(client);
        Ok(())
    }
}
