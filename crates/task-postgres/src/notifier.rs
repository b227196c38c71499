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
//!
//! Consecutive task upserts share one notification: their `<id>:<version>` payloads joined by
//! spaces, up to [`MAX_PACKED`] bytes (PostgreSQL's limit is 8,000). Each notification costs the
//! server a queue entry at commit and a read by every listening backend; a drain profile showed
//! the notifier's and the listener's backends spending about a quarter of the server's CPU per
//! job on one notification per change (see docs/benchmarks.md). Packed, a batch of 64 changes
//! is one or two notifications. Order is kept: payloads are packed and sent in queue order, and
//! a receiver reads a packed payload left to right. Deletions (whose payload ends with a user
//! id, which may hold any character) and task events are never packed.

use std::time::Duration;

use task_core::{Task, TaskId};
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls, Statement};
use tokio_util::sync::CancellationToken;

/// Most changes sent in one statement.
const MAX_BATCH: usize = 1000;
/// Longest packed payload, in bytes: under PostgreSQL's 8,000-byte limit with room to spare.
const MAX_PACKED: usize = 7_900;
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
    /// A task upsert, `<id>:<version>`: packed with its neighbours.
    Upsert,
    /// A deletion on the change channel, sent alone.
    Deletion,
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
        self.send(Channel::Upsert, format!("{}:{}", task.id, task.version));
    }

    /// Announces the deletion of `id`, last at `version` (`<id>:<version>:d:<user_id>`).
    pub(crate) fn deleted(&self, id: &TaskId, user_id: &str, version: i64) {
        self.send(Channel::Deletion, format!("{id}:{version}:d:{user_id}"));
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
    /// The connection and the prepared [`NOTIFY`]: prepared once per connection, since parsing
    /// and planning it for every batch was most of the notifier backend's CPU.
    client: Option<(Client, Statement)>,
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
        let (client, notify) = match self.client.take() {
            Some((client, notify)) if !client.is_closed() => (client, notify),
            _ => {
                let (client, connection) = self.pg_config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::warn!(%error, "change notifier connection failed");
                    }
                });
                // A notification is not durable (a server crash loses the queue), and it names
                // changes that are committed already, so its own commit need not wait for a
                // WAL flush.
                client.batch_execute("SET synchronous_commit = off").await?;
                let notify = client.prepare(NOTIFY).await?;
                (client, notify)
            }
        };
        let packed = pack(batch);
        let channels: Vec<&str> = packed
            .iter()
            .map(|(channel, _)| match channel {
                Channel::Upsert | Channel::Deletion => self.channel.as_str(),
                Channel::Events => self.events_channel.as_str(),
            })
            .collect();
        let payloads: Vec<&str> = packed.iter().map(|(_, payload)| payload.as_str()).collect();
        client.execute(&notify, &[&channels, &payloads]).await?;
        self.client = Some((client, notify));
        Ok(())
    }
}

/// The notifications to send for `batch`, in order: runs of upserts joined by spaces into
/// payloads of at most [`MAX_PACKED`] bytes, everything else as it is.
fn pack(batch: &[(Channel, String)]) -> Vec<(Channel, String)> {
    let mut packed: Vec<(Channel, String)> = Vec::new();
    for (channel, payload) in batch {
        if let (Channel::Upsert, Some((Channel::Upsert, last))) = (channel, packed.last_mut()) {
            if last.len() + 1 + payload.len() <= MAX_PACKED {
                last.push(' ');
                last.push_str(payload);
                continue;
            }
        }
        packed.push((*channel, payload.clone()));
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(n: usize) -> (Channel, String) {
        (Channel::Upsert, format!("task_1_{n:06}:1"))
    }

    #[test]
    fn upserts_are_packed_in_order_and_everything_else_alone() {
        let batch = vec![
            upsert(1),
            upsert(2),
            (Channel::Events, "task_1_000001:1".to_owned()),
            upsert(3),
            (
                Channel::Deletion,
                "task_1_000004:2:d:a b@example.com".to_owned(),
            ),
            upsert(5),
        ];
        let packed = pack(&batch);
        let packed: Vec<(Channel, &str)> = packed
            .iter()
            .map(|(channel, payload)| (*channel, payload.as_str()))
            .collect();
        assert_eq!(
            packed,
            [
                (Channel::Upsert, "task_1_000001:1 task_1_000002:1"),
                (Channel::Events, "task_1_000001:1"),
                (Channel::Upsert, "task_1_000003:1"),
                (Channel::Deletion, "task_1_000004:2:d:a b@example.com"),
                (Channel::Upsert, "task_1_000005:1"),
            ]
        );
    }

    #[test]
    fn packed_payloads_stay_under_the_limit_and_lose_nothing() {
        let batch: Vec<(Channel, String)> = (0..1000).map(upsert).collect();
        let packed = pack(&batch);
        assert!(packed.len() > 1);
        assert!(packed
            .iter()
            .all(|(_, payload)| payload.len() <= MAX_PACKED));
        let all: Vec<String> = packed
            .iter()
            .flat_map(|(_, payload)| payload.split(' ').map(str::to_owned))
            .collect();
        let expected: Vec<String> = batch.into_iter().map(|(_, payload)| payload).collect();
        assert_eq!(all, expected);
    }
}
