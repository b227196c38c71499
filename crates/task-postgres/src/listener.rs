//! The change feed across instances: one dedicated connection LISTENs on the schema's channel,
//! reads the rows that notifications name (batched) and publishes them on the local feed.
//! After a dropped connection it reconnects with backoff and re-syncs what changed meanwhile.
//!
//! The same connection LISTENs on the schema's events channel: appended task events (partial
//! outputs, `<id>:<seq>`) are read from `task_events` and published on the local event feed.
//! Events appended while the connection was down are not re-synced: a live stream sees the gap
//! at the task's next event, or reads the log before the task's final event, and replays them
//! from the table then.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use task_core::{Task, TaskId, UnixMillis};
use task_store::{StoreError, TaskEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification, Statement};
use tokio_util::sync::CancellationToken;

use crate::errors::{corrupt, map_db};
use crate::publish::Publisher;
use crate::row::task_from_row;
use crate::sql;
use task_store::backend::clock::now_millis;

/// Most notifications handled, and rows read per query, per batch.
const MAX_BATCH: usize = 512;
/// Rows per page when re-syncing after a reconnect.
const RESYNC_PAGE: i64 = 500;

/// The task events named by `(task_id, seq)` pairs, with their task's owner.
const READ_EVENTS: &str = "SELECT e.task_id, e.seq, e.attempt, e.item, e.created_at, t.user_id \
    FROM unnest($1::text[], $2::bigint[]) AS n(task_id, seq) \
    JOIN task_events e ON e.task_id = n.task_id AND e.seq = n.seq \
    JOIN background_tasks t ON t.id = e.task_id";

/// What the listener is doing, for health checks and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStatus {
    /// Whether the LISTEN connection is up.
    pub connected: bool,
    /// The server process of the LISTEN connection while connected (`pg_backend_pid()`).
    pub backend_pid: Option<i32>,
    /// How many times it reconnected after losing the connection.
    pub reconnects: u64,
    /// How many changes re-syncs after reconnects published (changes whose notification was
    /// missed while disconnected).
    pub resynced: u64,
}

/// How the listener connects and paces itself.
#[derive(Debug, Clone)]
pub(crate) struct ListenerSettings {
    /// The connection settings, `search_path` included.
    pub(crate) pg_config: tokio_postgres::Config,
    /// The schema's notification channel.
    pub(crate) channel: String,
    /// The schema's task events channel.
    pub(crate) events_channel: String,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) keepalive: Duration,
    pub(crate) resync_margin: Duration,
}

/// One live LISTEN connection.
struct Session {
    client: Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
    read_tasks: Statement,
    read_events: Statement,
    backend_pid: i32,
    driver: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Session {
    /// Connects, starts listening and prepares the row read.
    async fn open(settings: &ListenerSettings) -> Result<Self, StoreError> {
        let (client, mut connection) = settings.pg_config.connect(NoTls).await.map_err(map_db)?;
        let (sender, notifications) = mpsc::unbounded_channel();
        // The connection must be polled for queries to complete, so notifications go to an
        // unbounded queue: a bounded one could stall the very query that drains it.
        let driver = tokio::spawn(async move {
            loop {
                match poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(notification))) => {
                        if sender.send(notification).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        tracing::warn!(%error, "change listener connection failed");
                        return;
                    }
                    None => return,
                }
            }
        });
        client
            .batch_execute(&format!(
                "LISTEN \"{}\"; LISTEN \"{}\"",
                settings.channel, settings.events_channel
            ))
            .await
            .map_err(map_db)?;
        let backend_pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(map_db)?
            .get(0);
        let read_tasks = client.prepare(&sql::READ_TASKS).await.map_err(map_db)?;
        let read_events = client.prepare(READ_EVENTS).await.map_err(map_db)?;
        Ok(Self {
            client,
            notifications,
            read_tasks,
            read_events,
            backend_pid,
            driver,
        })
    }
}

/// One parsed notification payload.
#[derive(Debug, Clone, PartialEq)]
struct Note {
    id: TaskId,
    version: i64,
    /// `Some(owner)` for a deletion.
    deleted_user: Option<String>,
}

/// Parses `<id>:<version>`, `<id>:<version>:d:<user_id>`, or packed upserts
/// (`<id>:<version>` joined by spaces, see the notifier), in payload order; `None` for anything
/// else.
fn parse_payload(payload: &str) -> Option<Vec<Note>> {
    if let Some(note) = parse_note(payload) {
        return Some(vec![note]);
    }
    payload
        .split(' ')
        .map(|part| parse_note(part).filter(|note| note.deleted_user.is_none()))
        .collect()
}

/// Parses one `<id>:<version>` or `<id>:<version>:d:<user_id>`.
fn parse_note(payload: &str) -> Option<Note> {
    let mut parts = payload.splitn(4, ':');
    let id = parts.next()?.parse().ok()?;
    let version = parts.next()?.parse().ok()?;
    let deleted_user = match (parts.next(), parts.next()) {
        (None, _) => None,
        (Some("d"), Some(user)) => Some(user.to_owned()),
        _ => return None,
    };
    Some(Note {
        id,
        version,
        deleted_user,
    })
}

/// Parses an events-channel payload, `<id>:<seq>`; `None` for anything else.
fn parse_event_payload(payload: &str) -> Option<(TaskId, i64)> {
    let (id, seq) = payload.split_once(':')?;
    Some((id.parse().ok()?, seq.parse().ok().filter(|seq| *seq >= 1)?))
}

/// Starts the listener: returns once it listens (so changes committed after `connect` returns
/// are seen), then keeps it running until `stop` is cancelled.
pub(crate) async fn start(
    settings: ListenerSettings,
    publisher: Arc<Publisher>,
    stop: CancellationToken,
) -> Result<watch::Receiver<ListenerStatus>, StoreError> {
    let session = Session::open(&settings).await?;
    let (status, receiver) = watch::channel(ListenerStatus {
        connected: true,
        backend_pid: Some(session.backend_pid),
        ..ListenerStatus::default()
    });
    let listener = Listener {
        settings,
        publisher,
        stop,
        status,
        healthy_at: now_millis(),
    };
    tokio::spawn(listener.run(session));
    Ok(receiver)
}

struct Listener {
    settings: ListenerSettings,
    publisher: Arc<Publisher>,
    stop: CancellationToken,
    status: watch::Sender<ListenerStatus>,
    /// When the connection was last known to have delivered every notification; a re-sync
    /// reads changes from this time (minus the margin) on.
    healthy_at: UnixMillis,
}

impl Listener {
    async fn run(mut self, first: Session) {
        let mut session = first;
        loop {
            if let Err(error) = self.serve(&mut session).await {
                tracing::warn!(%error, "change listener lost its connection; reconnecting");
            }
            drop(session);
            if self.stop.is_cancelled() {
                return;
            }
            self.status.send_modify(|status| {
                status.connected = false;
                status.backend_pid = None;
            });
            match self.reconnect().await {
                Some(next) => session = next,
                None => return,
            }
        }
    }

    /// Handles notifications until the connection fails or the store stops.
    async fn serve(&mut self, session: &mut Session) -> Result<(), StoreError> {
        let mut keepalive = tokio::time::interval(self.settings.keepalive);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return Ok(()),
                received = session.notifications.recv() => {
                    let Some(first) = received else {
                        return Err(StoreError::Unavailable("the LISTEN connection closed".into()));
                    };
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match session.notifications.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let checked_at = now_millis();
                    self.handle(session, &batch).await?;
                    if session.notifications.is_empty() {
                        self.healthy_at = checked_at;
                    }
                }
                _ = keepalive.tick() => {
                    let checked_at = now_millis();
                    session.client.simple_query("SELECT 1").await.map_err(map_db)?;
                    // Notifications queued before the check are not handled yet, so the
                    // connection only counts as caught up when none wait.
                    if session.notifications.is_empty() {
                        self.healthy_at = checked_at;
                    }
                }
            }
        }
    }

    /// Reads the rows a batch of notifications names and publishes what is new, in
    /// notification order.
    async fn handle(&self, session: &Session, batch: &[Notification]) -> Result<(), StoreError> {
        let (events, changes): (Vec<&Notification>, Vec<&Notification>) = batch
            .iter()
            .partition(|notification| notification.channel() == self.settings.events_channel);
        self.handle_events(session, &events).await?;
        let notes: Vec<Note> = changes
            .iter()
            .filter_map(|notification| {
                let note = parse_payload(notification.payload());
                if note.is_none() {
                    tracing::warn!(
                        payload = notification.payload(),
                        "ignoring a malformed change notification"
                    );
                }
                note
            })
            .flatten()
            .collect();
        let mut wanted: Vec<&str> = notes
            .iter()
            .filter(|note| {
                note.deleted_user.is_none() && self.publisher.is_new(&note.id, note.version, false)
            })
            .map(|note| note.id.as_str())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut rows: std::collections::HashMap<TaskId, Task> = std::collections::HashMap::new();
        // Packed notifications name up to ~180 changes each, so the rows are read in chunks.
        for chunk in wanted.chunks(MAX_BATCH) {
            for row in session
                .client
                .query(&session.read_tasks, &[&chunk])
                .await
                .map_err(map_db)?
            {
                let task = task_from_row(&row)?;
                rows.insert(task.id.clone(), task);
            }
        }
        for note in notes {
            match &note.deleted_user {
                Some(user_id) => {
                    self.publisher.deleted(&note.id, user_id, note.version);
                }
                // A row that is gone was deleted; its own notification follows.
                None => {
                    if let Some(task) = rows.remove(&note.id) {
                        self.publisher.upserted(&task);
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the task events a batch of notifications names and publishes the ones not yet
    /// published, in notification order.
    async fn handle_events(
        &self,
        session: &Session,
        batch: &[&Notification],
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<(TaskId, i64)> = Vec::new();
        for notification in batch {
            match parse_event_payload(notification.payload()) {
                Some((id, seq)) if self.publisher.event_is_new(&id, seq) => wanted.push((id, seq)),
                Some(_) => {}
                None => tracing::warn!(
                    payload = notification.payload(),
                    "ignoring a malformed task event notification"
                ),
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = wanted.iter().map(|(id, _)| id.as_str()).collect();
        let seqs: Vec<i64> = wanted.iter().map(|(_, seq)| *seq).collect();
        let mut rows: std::collections::HashMap<(TaskId, i64), TaskEvent> =
            std::collections::HashMap::new();
        for row in session
            .client
            .query(&session.read_events, &[&ids, &seqs])
            .await
            .map_err(map_db)?
        {
            let field = |e| corrupt("task event", e);
            let task_id: String = row.try_get(0).map_err(field)?;
            let event = TaskEvent {
                task_id: task_id
                    .parse()
                    .map_err(|_| corrupt("task event", format!("bad task id {task_id:?}")))?,
                seq: row.try_get(1).map_err(field)?,
                attempt: row.try_get(2).map_err(field)?,
                item: row.try_get(3).map_err(field)?,
                created_at: row.try_get(4).map_err(field)?,
                user_id: row.try_get(5).map_err(field)?,
            };
            rows.insert((event.task_id.clone(), event.seq), event);
        }
        // A row that is gone belongs to a task deleted meanwhile: nothing to stream.
        for key in wanted {
            if let Some(event) = rows.remove(&key) {
                self.publisher.event_appended(event);
            }
        }
        Ok(())
    }

    /// Reconnects with backoff, then re-syncs. `None` when the store stopped meanwhile.
    async fn reconnect(&mut self) -> Option<Session> {
        let mut backoff = self.settings.backoff_min;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return None,
                () = tokio::time::sleep(backoff) => {}
            }
            let attempt = async {
                let session = Session::open(&self.settings).await?;
                let resynced = self.resync(&session).await?;
                Ok::<_, StoreError>((session, resynced))
            };
            match attempt.await {
                Ok((session, resynced)) => {
                    self.status.send_modify(|status| {
                        status.connected = true;
                        status.backend_pid = Some(session.backend_pid);
                        status.reconnects += 1;
                        status.resynced += resynced;
                    });
                    tracing::info!(resynced, "change listener reconnected");
                    return Some(session);
                }
                Err(error) => {
                    tracing::warn!(%error, ?backoff, "change listener could not reconnect");
                    backoff = (backoff * 2).min(self.settings.backoff_max);
                }
            }
        }
    }

    /// Publishes every task changed since the connection was last known good (minus the
    /// margin) whose version is newer than what was published. Runs after LISTEN, so nothing
    /// committed from then on is missed. Deletions while disconnected are not recovered: their
    /// rows are gone.
    async fn resync(&mut self, session: &Session) -> Result<u64, StoreError> {
        let started_at = now_millis();
        let margin = i64::try_from(self.settings.resync_margin.as_millis()).unwrap_or(i64::MAX);
        let mut after_updated = self.healthy_at.saturating_sub(margin).saturating_sub(1);
        let mut after_id = String::new();
        let mut published = 0;
        let page = session
            .client
            .prepare(&sql::RESYNC_PAGE)
            .await
            .map_err(map_db)?;
        loop {
            let rows = session
                .client
                .query(&page, &[&after_updated, &after_id, &RESYNC_PAGE])
                .await
                .map_err(map_db)?;
            for row in &rows {
                let task = task_from_row(row)?;
                after_updated = task.updated_at;
                after_id = task.id.to_string();
                if self.publisher.upserted(&task) {
                    published += 1;
                }
            }
            if rows.len() < RESYNC_PAGE as usize {
                break;
            }
        }
        self.healthy_at = started_at;
        Ok(published)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(payload: &str, expected: Option<(&str, i64, Option<&str>)>) {
        let expected = expected.map(|(id, version, user)| {
            vec![Note {
                id: id.parse().unwrap(),
                version,
                deleted_user: user.map(str::to_owned),
            }]
        });
        assert_eq!(parse_payload(payload), expected, "{payload:?}");
    }

    #[test]
    fn packed_payloads_parse_in_order_and_strictly() {
        let note = |id: &str, version| Note {
            id: id.parse().unwrap(),
            version,
            deleted_user: None,
        };
        assert_eq!(
            parse_payload("task_1_abcdef:3 task_1_bcdefa:1 task_1_abcdef:4"),
            Some(vec![
                note("task_1_abcdef", 3),
                note("task_1_bcdefa", 1),
                note("task_1_abcdef", 4)
            ])
        );
        for bad in [
            "task_1_abcdef:3 nope",
            "task_1_abcdef:3  task_1_abcdef:4",
            "task_1_abcdef:3 task_1_abcdef:4:d:u",
            "task_1_abcdef:3 ",
        ] {
            assert_eq!(parse_payload(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn event_payloads_parse_strictly() {
        let id: TaskId = "task_1_abcdef".parse().unwrap();
        assert_eq!(parse_event_payload("task_1_abcdef:3"), Some((id, 3)));
        for bad in [
            "task_1_abcdef",
            "task_1_abcdef:0",
            "task_1_abcdef:x",
            "nope:1",
            "",
        ] {
            assert_eq!(parse_event_payload(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn payloads_parse_strictly() {
        check("task_1_abcdef:3", Some(("task_1_abcdef", 3, None)));
        check(
            "task_1_abcdef:4:d:a:b@example.com",
            Some(("task_1_abcdef", 4, Some("a:b@example.com"))),
        );
        check("task_1_abcdef:4:d:", Some(("task_1_abcdef", 4, Some(""))));
        check("task_1_abcdef", None);
        check("task_1_abcdef:x", None);
        check("task_1_abcdef:4:x:u", None);
        check("task_1_abcdef:4:d", None);
        check("nope:1", None);
        check("", None);
    }
}
