//! The change feed across instances: one dedicated connection LISTENs on the schema's channel,
//! reads the rows that notifications name (batched) and publishes them on the local feed.
//! After a dropped connection it reconnects with backoff and re-syncs what changed meanwhile.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use task_core::{Task, TaskId, UnixMillis};
use task_store::StoreError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification, Statement};
use tokio_util::sync::CancellationToken;

use crate::errors::map_db;
use crate::publish::Publisher;
use crate::row::task_from_row;
use crate::sql;
use task_store::backend::clock::now_millis;

/// Most notifications handled (and rows read) per batch.
const MAX_BATCH: usize = 512;
/// Rows per page when re-syncing after a reconnect.
const RESYNC_PAGE: i64 = 500;

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
            .batch_execute(&format!("LISTEN \"{}\"", settings.channel))
            .await
            .map_err(map_db)?;
        let backend_pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(map_db)?
            .get(0);
        let read_tasks = client.prepare(&sql::READ_TASKS).await.map_err(map_db)?;
        Ok(Self {
            client,
            notifications,
            read_tasks,
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

/// Parses `<id>:<version>` or `<id>:<version>:d:<user_id>`; `None` for anything else.
fn parse_payload(payload: &str) -> Option<Note> {
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
        let notes: Vec<Note> = batch
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
        if !wanted.is_empty() {
            for row in session
                .client
                .query(&session.read_tasks, &[&wanted])
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
        let expected = expected.map(|(id, version, user)| Note {
            id: id.parse().unwrap(),
            version,
            deleted_user: user.map(str::to_owned),
        });
        assert_eq!(parse_payload(payload), expected, "{payload:?}");
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
