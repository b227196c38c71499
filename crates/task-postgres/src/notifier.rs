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
//!
//! Two channels share the batch: task changes on the schema's change channel, appended task
//! events (`<id>:<seq>`) on its events channel; one statement sends both, in the order queued.

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

/// Sends each payload on its channel, in array order.
const NOTIFY: &str =
    "SELECT pg_notify(n.channel, n.payload) FROM unnest($1::text[], $2::text[]) AS n(channel, payload)";

/// Which channel a notification goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Changes,
    Events,
}

/// The queue of notifications to send; cheap to call from any write path.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    queue: mpsc::UnboundedSender<(Channel, String)>,
}

impl Notifier {
    /// Starts the sending task on `pg_config` for the change channel `channel` and the events
    /// channel `events_channel`. It sends what is queued when `stop` is cancelled, then ends.
    pub(crate) fn start(
        pg_config: tokio_postgres::Config,
        channel: String,
        events_channel: String,
        stop: CancellationToken,
    ) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let sender = Sender {
            pg_config,
            channel,
            events_channel,
            client: None,
        };
        tokio::spawn(sender.run(receiver, stop));
        Self { queue }
    }

    /// Announces the committed state `task` (`<id>:<version>`).
    pub(crate) fn upserted(&self, task: &Task) {
        self.send(Channel::Changes, format!("{}:{}", task.id, task.version));
    }

    /// Announces the deletion of `id`, last at `version` (`<id>:<version>:d:<user_id>`).
    pub(crate) fn deleted(&self, id: &TaskId, user_id: &str, version: i64) {
        self.send(Channel::Changes, format!("{id}:{version}:d:{user_id}"));
    }

    /// Announces the committed event `seq` of task `id` (`<id>:<seq>`, on the events channel).
    pub(crate) fn appended(&self, id: &TaskId, seq: i64) {
        self.send(Channel::Events, format!("{id}:{seq}"));
    }

    fn send(&self, channel: Channel, payload: String) {
        // Fails only after the sending task ended, when the store is shutting down.
        let _ = self.queue.send((channel, payload));
    }
}

struct Sender {
    pg_config: tokio_postgres::Config,
    channel: String,
    events_channel: String,
    client: Option<Client>,
}

impl Sender {
    async fn run(
        mut self,
        mut receiver: mpsc::UnboundedReceiver<(Channel, String)>,
        stop: CancellationToken,
    ) {
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
    async fn send(&mut self, batch: &[(Channel, String)]) {
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

    async fn try_send(&mut self, batch: &[(Channel, String)]) -> Result<(), tokio_postgres::Error> {
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
        let channels: Vec<&str> = batch
            .iter()
            .map(|(channel, _)| match channel {
                Channel::Changes => self.channel.as_str(),
                Channel::Events => self.events_channel.as_str(),
            })
            .collect();
        let payloads: Vec<&str> = batch.iter().map(|(_, payload)| payload.as_str()).collect();
        client.execute(NOTIFY, &[&channels, &payloads]).await?;
        self.client = Some(client);
        Ok(())
    }
}
