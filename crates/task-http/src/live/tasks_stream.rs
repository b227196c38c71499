//! `GET /api/subscribeToTasks`: one stream of every change to the tasks of a scope (a user's,
//! or everyone's for a superuser), so task lists update live instead of being polled.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::body::{sse_response, FrameSource};
use super::encode::{freeze, write_retry, KEEP_ALIVE};
use super::hub::{resync_frame, OpenStream, ScopeWatch};
use super::idle_timer::IdleTimer;
use super::{LiveHub, SseConfig, StreamScope};
use crate::body::Body;

/// See [`super::tasks_stream`].
pub(crate) fn tasks_stream(
    hub: &Arc<LiveHub>,
    scope: StreamScope,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    let mut opening = Vec::with_capacity(16);
    write_retry(&mut opening, config.retry);
    sse_response(ScopeStream {
        // Subscribed before the response exists: a client that has the headers sees every
        // change committed after that.
        watch: Some(hub.watch_scope(&scope)),
        opening: Some(freeze(opening)),
        timer: IdleTimer::new(config.keep_alive(), None),
        // A token of its own, so waiting on it never contends with the other streams.
        shutdown: hub.shutdown_token().child_token(),
        _open: hub.open_stream(),
        _guard: guard,
    })
}

/// The state of one open list stream.
struct ScopeStream {
    /// `None` once the stream has ended.
    watch: Option<ScopeWatch>,
    /// The `retry:` line, written first.
    opening: Option<Bytes>,
    /// Keep-alives (list streams have no deadline).
    timer: IdleTimer,
    /// Ends the stream when the server shuts down.
    shutdown: CancellationToken,
    _open: OpenStream,
    _guard: Box<dyn Any + Send + Sync>,
}

impl FrameSource for ScopeStream {
    async fn next_frame(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            return Some(opening);
        }
        let receiver = self.watch.as_mut()?.receiver()?;
        let frame = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            received = receiver.recv() => match received {
                Ok(frame) => Some(frame),
                // The channel dropped messages this reader had not read: it cannot patch its
                // list any more and must refetch.
                Err(RecvError::Lagged(_)) => Some(resync_frame()),
                Err(RecvError::Closed) => None,
            },
            // List streams have no deadline, so the only tick is a keep-alive.
            _ = self.timer.wait() => return Some(Bytes::from_static(KEEP_ALIVE)),
        };
        match frame {
            Some(frame) => {
                self.timer.frame_sent();
                Some(frame)
            }
            None => {
                self.watch = None;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use task_core::TaskStatus::*;
    use tokio_util::sync::CancellationToken;

    use super::super::testing::{events, task, FakeStore, Reader};
    use super::super::{tasks_stream, LiveHub, SseConfig, StreamScope, USER_CHANNEL_CAPACITY};

    fn open(hub: &std::sync::Arc<LiveHub>, scope: StreamScope) -> Reader {
        Reader::new(tasks_stream(
            hub,
            scope,
            &SseConfig::default(),
            Box::new(()),
        ))
    }

    fn user(email: &str) -> StreamScope {
        StreamScope::User(email.to_owned())
    }

    #[tokio::test]
    async fn a_user_sees_changes_to_their_own_tasks_only() {
        let store = FakeStore::new(64);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let mut ann = open(&hub, user("ann"));
        assert_eq!(ann.expect().await, "retry: 3000\n\n");
        store.commit(task(1, "bob", 1, Pending));
        store.commit(task(2, "ann", 1, Pending));
        store.commit(task(2, "ann", 2, Processing));
        store.delete_task(&task(1, "bob", 1, Pending).id);
        store.commit(task(3, "ann", 1, Pending));
        store.delete_task(&task(3, "ann", 1, Pending).id);
        let mut seen = Vec::new();
        while seen.len() < 4 {
            for (id, data) in events(&ann.expect().await) {
                assert_eq!(id, None, "list streams carry no ids");
                seen.push(data);
            }
        }
        assert_eq!(seen[0]["type"], "update");
        assert_eq!(seen[0]["task"]["id"], "task_2_abcdef");
        assert_eq!(seen[1]["task"]["status"], "processing");
        assert_eq!(seen[2]["task"]["id"], "task_3_abcdef");
        assert_eq!(
            seen[3],
            serde_json::json!({"type":"deleted","taskId":"task_3_abcdef"})
        );
    }

    #[tokio::test]
    async fn everyone_sees_every_change() {
        let store = FakeStore::new(64);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let mut all = open(&hub, StreamScope::All);
        all.expect().await;
        store.commit(task(1, "bob", 1, Pending));
        store.commit(task(2, "ann", 1, Pending));
        let mut owners = Vec::new();
        while owners.len() < 2 {
            for (_, data) in events(&all.expect().await) {
                owners.push(data["task"]["user_id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(owners, ["bob", "ann"]);
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_told_to_resync() {
        let store = FakeStore::new(4096);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let mut ann = open(&hub, user("ann"));
        let mut all = open(&hub, StreamScope::All);
        ann.expect().await;
        all.expect().await;
        let last = USER_CHANNEL_CAPACITY as i64 + 10;
        for version in 1..=last {
            store.commit(task(1, "ann", version, Processing));
        }
        // The hub routes each change to "ann" before "all", so once "all" has the last one,
        // "ann" (never read meanwhile) holds more than its channel keeps.
        'routed: loop {
            for (_, data) in events(&all.expect().await) {
                if data["task"]["version"] == last {
                    break 'routed;
                }
            }
        }
        assert_eq!(ann.expect().await, "data: {\"type\":\"resync\"}\n\n");
        // After the resync the reader continues with what the channel still holds.
        let next = events(&ann.expect().await);
        assert_eq!(next[0].1["type"], "update");
    }

    #[tokio::test]
    async fn a_lagging_hub_tells_list_streams_to_resync() {
        let store = FakeStore::new(2);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let mut ann = open(&hub, user("ann"));
        ann.expect().await;
        for n in 1..=10 {
            store.commit(task(n, "bob", 1, Pending));
        }
        assert_eq!(ann.expect().await, "data: {\"type\":\"resync\"}\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_list_streams_get_keep_alives_and_no_timeout() {
        let store = FakeStore::new(64);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let config = SseConfig {
            keep_alive: Duration::from_secs(20),
            monitor_timeout: Duration::from_secs(30),
            ..SseConfig::default()
        };
        let mut ann = Reader::new(tasks_stream(&hub, user("ann"), &config, Box::new(())));
        ann.expect().await;
        for _ in 0..5 {
            assert_eq!(ann.expect().await, ":\n\n");
        }
        assert_eq!(store.gets(), 0);
    }

    #[tokio::test]
    async fn shutdown_ends_list_streams_and_dropping_them_frees_the_channel() {
        let store = FakeStore::new(64);
        let shutdown = CancellationToken::new();
        let hub = LiveHub::start(store.clone(), shutdown.clone());
        let mut ann = open(&hub, user("ann"));
        let ann_again = open(&hub, user("ann"));
        let mut all = open(&hub, StreamScope::All);
        ann.expect().await;
        all.expect().await;
        assert_eq!(hub.open_streams(), 3);
        shutdown.cancel();
        assert_eq!(ann.next().await, None);
        assert_eq!(all.next().await, None);
        drop((ann, ann_again, all));
        assert_eq!(hub.open_streams(), 0);
        assert!(format!("{hub:?}").contains("open_streams: 0"));
    }
}
