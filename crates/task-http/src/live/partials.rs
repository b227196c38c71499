//! A task subscription's partial outputs (`partial` events), shared by both transports: the
//! stored ones replayed once after the snapshot, then new ones live, with gaps and a lagging
//! feed caught up from the task's event log. SSE (`task_stream`) and the WebSocket
//! (`subscription`) differ only in how they wrap each event, so ordering and resume rules
//! cannot drift apart between them.
//!
//! Positions are the log's sequence numbers (from 1, no gaps, per task); "seen" is the highest
//! one delivered or acknowledged by the client on resume (`<version>.<seq>`).

use std::sync::Arc;

use bytes::Bytes;
use task_core::TaskId;
use task_store::{TaskEvent, TaskEventLog};
use tokio::sync::broadcast::error::RecvError;

use super::hub::{PartialNote, PartialReceiver, TaskState};
use super::LiveHub;

/// What the live feed gave a waiting subscription.
pub(crate) type Received = Result<PartialNote, RecvError>;

/// One partial output, encoded once for every subscriber of its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partial {
    /// Its position in the task's log, from 1.
    pub(crate) seq: i64,
    /// Its event's JSON (see [`partial_json`]).
    pub(crate) json: Bytes,
}

impl Partial {
    /// The event of `event`.
    pub(crate) fn of(event: &TaskEvent) -> Self {
        Self {
            seq: event.seq,
            json: Bytes::from(partial_json(event)),
        }
    }
}

/// The partial outputs of one subscription.
pub(crate) struct Partials {
    task_id: TaskId,
    log: Arc<dyn TaskEventLog>,
    /// Appended events of this task, live; `None` once the feed closed.
    live: Option<PartialReceiver>,
    /// The highest partial delivered (or acknowledged on resume).
    seen: i64,
    /// Whether the log still has to be read once (the replay after the snapshot).
    replay: bool,
}

impl Partials {
    /// Partials of `task_id` after `seen`. `live` must be subscribed before this subscription
    /// first reads the log, so no event falls between the replay and the live feed.
    pub(crate) fn new(
        task_id: TaskId,
        log: Arc<dyn TaskEventLog>,
        live: PartialReceiver,
        seen: i64,
    ) -> Self {
        Self {
            task_id,
            log,
            live: Some(live),
            seen,
            replay: true,
        }
    }

    /// The highest partial delivered so far; 0 before the first.
    pub(crate) fn seen(&self) -> i64 {
        self.seen
    }

    /// The stored partials after the client's position, once (right after the snapshot).
    pub(crate) async fn replay(&mut self) -> Vec<Arc<Partial>> {
        if !self.replay {
            return Vec::new();
        }
        self.replay = false;
        self.catch_up().await
    }

    /// Every stored partial after the last one delivered: after a gap or a lagging feed, and
    /// before a final event (partials are stored before the task finishes; a feed that has
    /// not delivered them yet must not lose them behind it).
    pub(crate) async fn catch_up(&mut self) -> Vec<Arc<Partial>> {
        self.replay = false;
        match self.log.events_after(&self.task_id, self.seen).await {
            Ok(events) => {
                if let Some(last) = events.last() {
                    self.seen = last.seq;
                }
                events
                    .iter()
                    .map(|event| Arc::new(Partial::of(event)))
                    .collect()
            }
            Err(error) => {
                tracing::warn!(task_id = %self.task_id, %error, "cannot read the task's events");
                Vec::new()
            }
        }
    }

    /// Every stored partial after the last one delivered, before the stream's last state
    /// (`last`: a final state or a deletion). For a final state they come from the hub's one
    /// read of the log for all of the task's streams ([`LiveHub::final_partials`]); for a
    /// deletion, or when the hub has none to share, from the log.
    pub(crate) async fn catch_up_before_last(
        &mut self,
        hub: &LiveHub,
        last: &TaskState,
    ) -> Vec<Arc<Partial>> {
        let shared = match last {
            TaskState::Present { version, .. } => hub.final_partials(&self.task_id, *version).await,
            TaskState::Deleted => None,
        };
        let Some(stored) = shared else {
            return self.catch_up().await;
        };
        self.replay = false;
        let missed: Vec<Arc<Partial>> = stored
            .iter()
            .filter(|partial| partial.seq > self.seen)
            .cloned()
            .collect();
        if let Some(last) = missed.last() {
            self.seen = last.seq;
        }
        missed
    }

    /// The next thing the live feed has; never resolves once the feed closed.
    pub(crate) async fn recv(&mut self) -> Received {
        match &mut self.live {
            Some(receiver) => receiver.recv().await,
            None => std::future::pending().await,
        }
    }

    /// The partials to deliver for one item of the live feed, in order: the next one; nothing
    /// for an old one; the log's catch-up for a gap or a lag.
    pub(crate) async fn on_received(&mut self, received: Received) -> Vec<Arc<Partial>> {
        match received {
            Ok(Some(partial)) if partial.seq <= self.seen => Vec::new(),
            Ok(Some(partial)) if partial.seq == self.seen + 1 => {
                self.seen = partial.seq;
                vec![partial]
            }
            // A gap, the hub's own lag, or this subscriber's.
            Ok(_) | Err(RecvError::Lagged(_)) => self.catch_up().await,
            Err(RecvError::Closed) => {
                self.live = None;
                Vec::new()
            }
        }
    }
}

/// The JSON of one partial, as SSE sends it in `data:` and the WebSocket in `event`:
/// `{"type":"partial","taskId":…,"item":…,"index":<seq - 1>}`.
pub(crate) fn partial_json(event: &TaskEvent) -> String {
    serde_json::json!({
        "type": "partial",
        "taskId": event.task_id.as_str(),
        "item": event.item,
        "index": event.seq - 1,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;
    use serde_json::json;
    use task_core::TaskStatus::{self, *};
    use tokio::sync::broadcast::error::TryRecvError;
    use tokio_util::sync::CancellationToken;

    use super::super::hub::{TaskState, PARTIAL_CHANNEL_CAPACITY};
    use super::super::testing::{events, ids, task, FakeLog, FakeStore, Reader};
    use super::super::{
        task_stream_with_partials, task_subscription, Delivery, LiveHub, ResumePoint, SseConfig,
    };
    use super::*;

    const USER: &str = "ann@example.com";

    struct Setup {
        store: Arc<FakeStore>,
        log: Arc<FakeLog>,
        hub: Arc<LiveHub>,
    }

    fn setup(event_feed_capacity: usize) -> Setup {
        let store = FakeStore::new(64);
        let log = FakeLog::new(event_feed_capacity);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        Setup { store, log, hub }
    }

    fn id(n: u32) -> TaskId {
        task(n, USER, 1, Pending).id
    }

    impl Setup {
        /// The SSE stream of task `n` (stored at `version`) with its partials, from `resume`.
        fn open(&self, n: u32, version: i64, status: TaskStatus, resume: ResumePoint) -> Reader {
            let snapshot = task(n, USER, version, status);
            self.store.put_silently(snapshot.clone());
            let log: Arc<dyn TaskEventLog> = self.log.clone();
            Reader::new(task_stream_with_partials(
                &self.hub,
                snapshot,
                resume,
                Some(log),
                &SseConfig::default(),
                Box::new(()),
            ))
        }
    }

    /// The ids of the next `count` frames' events.
    async fn next_ids(reader: &mut Reader, count: usize) -> Vec<String> {
        let mut seen = Vec::new();
        while seen.len() < count {
            let chunk = tokio::time::timeout(Duration::from_secs(5), reader.expect())
                .await
                .expect("a frame within the bound");
            seen.extend(ids(&chunk));
        }
        seen
    }

    #[tokio::test]
    async fn the_hub_hands_each_partial_to_its_own_tasks_subscribers_only() {
        let s = setup(64);
        let log: Arc<dyn TaskEventLog> = s.log.clone();
        let one = task(1, USER, 1, Processing);
        let two = task(2, USER, 1, Processing);
        let watch_one = s.hub.watch_task(&one, TaskState::of(&one).unwrap());
        let watch_two = s.hub.watch_task(&two, TaskState::of(&two).unwrap());
        let mut partials_one = s.hub.watch_partials(&watch_one, &log);
        let mut partials_two = s.hub.watch_partials(&watch_two, &log);
        for n in 0..5 {
            s.log.append(&two.id, json!(n));
        }
        for seq in 1..=5 {
            let note = tokio::time::timeout(Duration::from_secs(5), partials_two.recv())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(note.seq, seq);
        }
        assert_eq!(
            partials_one.try_recv().unwrap_err(),
            TryRecvError::Empty,
            "task 1's subscribers never see task 2's partials"
        );
        s.log.append(&one.id, json!("mine"));
        let note = tokio::time::timeout(Duration::from_secs(5), partials_one.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(note.seq, 1);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&note.json).unwrap(),
            json!({"type":"partial","taskId":one.id.as_str(),"item":"mine","index":0})
        );
    }

    #[tokio::test]
    async fn partials_replay_after_the_snapshot_then_go_live_and_updates_keep_the_seq() {
        let s = setup(64);
        s.log.store_silently(&id(1), json!("a"));
        s.log.store_silently(&id(1), json!("b"));
        let mut reader = s.open(1, 1, Processing, ResumePoint::default());
        assert_eq!(ids(&reader.expect().await), ["1"], "the snapshot first");
        assert_eq!(next_ids(&mut reader, 2).await, ["1.1", "1.2"]);
        s.log.append(&id(1), json!("c"));
        let chunk = reader.expect().await;
        assert_eq!(ids(&chunk), ["1.3"]);
        assert_eq!(events(&chunk)[0].1["index"], 2);
        s.store.commit(task(1, USER, 2, Processing));
        assert_eq!(ids(&reader.expect().await), ["2.3"]);
        // A failed task's final frame has its id on the second event; that one keeps the seq.
        s.store.commit(task(1, USER, 3, Failed));
        assert_eq!(ids(&reader.expect().await), ["3.3"]);
        assert_eq!(reader.next().await, None);
    }

    #[tokio::test]
    async fn resuming_from_version_and_seq_sends_exactly_the_missed_partials() {
        let s = setup(64);
        for item in ["a", "b", "c"] {
            s.log.store_silently(&id(1), json!(item));
        }
        let mut reader = s.open(1, 4, Processing, ResumePoint { version: 4, seq: 1 });
        assert_eq!(
            reader.expect().await,
            "retry: 3000\n\n",
            "no snapshot again"
        );
        assert_eq!(next_ids(&mut reader, 2).await, ["4.2", "4.3"]);
    }

    #[tokio::test]
    async fn a_reader_behind_its_tasks_channel_catches_up_from_the_log_in_order() {
        let s = setup(4096);
        let mut reader = s.open(1, 1, Processing, ResumePoint::default());
        reader.expect().await;
        s.log.append(&id(1), json!("first"));
        assert_eq!(next_ids(&mut reader, 1).await, ["1.1"], "replayed");
        let reads = s.log.reads();
        // On this single-threaded runtime the hub routes all of these before the stream reads
        // again: more than the task's channel holds.
        let count = PARTIAL_COUNT;
        for n in 0..count {
            s.log.append(&id(1), json!(n));
        }
        let expected: Vec<String> = (2..=count + 1).map(|seq| format!("1.{seq}")).collect();
        assert_eq!(next_ids(&mut reader, count).await, expected);
        assert!(s.log.reads() > reads, "a catch-up from the log");
    }

    /// More partials than a task's channel buffers.
    const PARTIAL_COUNT: usize = PARTIAL_CHANNEL_CAPACITY * 3;

    #[tokio::test]
    async fn a_hub_behind_the_event_feed_makes_streams_reread_the_log() {
        let s = setup(4);
        let mut reader = s.open(1, 1, Processing, ResumePoint::default());
        reader.expect().await;
        s.log.append(&id(1), json!("first"));
        assert_eq!(next_ids(&mut reader, 1).await, ["1.1"], "replayed");
        // Task 1's next partial is stored, but its publication is among many more than the
        // feed buffers.
        s.log.store_silently(&id(1), json!("mine"));
        for n in 0..20 {
            s.log.append(&id(2), json!(n));
        }
        assert_eq!(next_ids(&mut reader, 1).await, ["1.2"]);
        assert_eq!(s.hub.lag_recoveries(), 1);
    }

    #[tokio::test]
    async fn partials_stored_before_the_final_event_come_before_it() {
        let s = setup(64);
        let mut reader = s.open(1, 1, Processing, ResumePoint::default());
        reader.expect().await;
        s.log.store_silently(&id(1), json!("last question"));
        s.store.commit(task(1, USER, 2, Completed));
        let mut kinds = Vec::new();
        while let Some(chunk) = reader.next().await {
            for (_, data) in events(&chunk) {
                kinds.push(data["type"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(kinds, ["partial", "complete"]);
    }

    #[tokio::test]
    async fn the_streams_of_a_finished_task_share_one_read_of_its_log() {
        // Three SSE streams and a WebSocket subscription of one task: each replays the log
        // when it opens, but before the final event they all take the partials the feed never
        // delivered from one read, and each still gets them ahead of `complete`.
        let s = setup(64);
        let mut readers: Vec<Reader> = (0..3)
            .map(|_| s.open(1, 1, Processing, ResumePoint::default()))
            .collect();
        for reader in &mut readers {
            reader.expect().await;
        }
        // Each stream replays the log before it takes this one.
        s.log.append(&id(1), json!("first question"));
        for reader in &mut readers {
            assert_eq!(next_ids(reader, 1).await, ["1.1"]);
        }
        let log: Arc<dyn TaskEventLog> = s.log.clone();
        let mut subscription = Box::pin(task_subscription(
            &s.hub,
            &task(1, USER, 1, Processing),
            ResumePoint::default(),
            Some(log),
            &SseConfig::default(),
        ));
        subscription.next().await.unwrap();
        let reads = s.log.reads();
        s.log.store_silently(&id(1), json!("last question"));
        s.store.commit(task(1, USER, 2, Completed));
        for reader in &mut readers {
            let mut kinds = Vec::new();
            while let Some(chunk) = reader.next().await {
                for (_, data) in events(&chunk) {
                    kinds.push(data["type"].as_str().unwrap().to_owned());
                }
            }
            assert_eq!(kinds, ["partial", "complete"]);
        }
        let Some(Delivery::Events(events)) = subscription.next().await else {
            panic!("the subscription's final events")
        };
        assert_eq!(
            events.iter().map(|event| event.seq).collect::<Vec<_>>(),
            [Some(2), Some(2)],
            "the missed partial, then the final event at its position"
        );
        assert_eq!(s.log.reads() - reads, 1, "one read for the four of them");
    }

    #[tokio::test]
    async fn websocket_subscriptions_carry_the_same_partials_with_their_positions() {
        let s = setup(64);
        s.log.store_silently(&id(1), json!("a"));
        let snapshot = task(1, USER, 1, Processing);
        s.store.put_silently(snapshot.clone());
        let log: Arc<dyn TaskEventLog> = s.log.clone();
        let mut subscription = Box::pin(task_subscription(
            &s.hub,
            &snapshot,
            ResumePoint::default(),
            Some(log),
            &SseConfig::default(),
        ));
        let positions = |delivery: Delivery| match delivery {
            Delivery::Events(events) => events
                .iter()
                .map(|event| (event.version, event.seq))
                .collect::<Vec<_>>(),
            Delivery::Ended => Vec::new(),
        };
        assert_eq!(
            positions(subscription.next().await.unwrap()),
            [(Some(1), None), (Some(1), Some(1))],
            "the snapshot and the replay"
        );
        s.log.append(&id(1), json!("b"));
        assert_eq!(
            positions(subscription.next().await.unwrap()),
            [(Some(1), Some(2))]
        );
        s.store.commit(task(1, USER, 2, Completed));
        assert_eq!(
            positions(subscription.next().await.unwrap()),
            [(Some(2), Some(2))]
        );
        assert_eq!(subscription.next().await, Some(Delivery::Ended));
    }
}
