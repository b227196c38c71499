//! `GET /api/subscribeToTask`: one task's live stream. The snapshot first, then every newer
//! version the hub routes, ending with the task's terminal event, its deletion, the monitoring
//! timeout or server shutdown.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use task_core::{Task, TaskEvent};
use task_store::TaskEventLog;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::body::{no_content, sse_response, FrameSource};
use super::encode::{freeze, write_json_event, write_retry, KEEP_ALIVE};
use super::hub::{OpenStream, SinkAttachment, TaskState, TaskWatch};
use super::idle_timer::{IdleTimer, Tick};
use super::partials::{Partial, Partials, Received};
use super::sink::SinkSlot;
use super::{LiveHub, SseConfig};
use crate::body::Body;

/// The message that ends the stream of a task that was deleted while being watched.
pub const TASK_DELETED_MESSAGE: &str = "Task was deleted";

/// Where a reconnecting client left off: the task version and the partial output it saw last
/// (`Last-Event-ID` `<version>` or `<version>.<seq>`). Both start at 1, so 0 is "nothing yet".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumePoint {
    /// The last task version seen.
    pub version: i64,
    /// The last partial output seen.
    pub seq: i64,
}

impl ResumePoint {
    /// Parses an event id this server sent; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (version, seq) = match text.split_once('.') {
            Some((version, seq)) => (version, Some(seq)),
            None => (text, None),
        };
        let number = |text: &str| text.parse::<i64>().ok().filter(|n| *n >= 0);
        Some(Self {
            version: number(version)?,
            seq: match seq {
                Some(seq) => number(seq)?,
                None => 0,
            },
        })
    }
}

/// See [`super::task_stream_with_partials`].
pub(crate) fn task_stream(
    hub: &Arc<LiveHub>,
    snapshot: Task,
    resume: ResumePoint,
    log: Option<Arc<dyn TaskEventLog>>,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    let seen = resume.version;
    let snapshot_state = match TaskState::of(&snapshot) {
        Ok(state) => Some(state),
        Err(error) => {
            tracing::error!(task_id = %snapshot.id, %error, "cannot encode task snapshot");
            None
        }
    };
    if snapshot.status.is_terminal() && snapshot.version <= seen {
        // The client saw the final event already; 204 stops its EventSource from
        // reconnecting forever.
        return no_content();
    }
    let (watch, current) = match snapshot_state {
        // A finished task cannot change again except by a manual retry, which deserves a new
        // subscription: its stream is the snapshot and nothing else.
        Some(state) if snapshot.status.is_terminal() => (None, Some(state)),
        Some(state) => {
            let mut watch = hub.watch_task(&snapshot, state);
            let current = watch
                .receiver()
                .map(|receiver| receiver.borrow_and_update().clone());
            (Some(watch), current)
        }
        None => (None, None),
    };
    // Subscribed before the log is read, so no event falls between the replay and the feed.
    let partials = match (&watch, log) {
        (Some(watch), Some(log)) => {
            let live = hub.watch_partials(watch, &log);
            Some(Partials::new(snapshot.id.clone(), log, live, resume.seq))
        }
        _ => None,
    };
    // A watching stream can take the hub's writes on the direct path: the slot asks the
    // connection layer for the socket (hyper never fills it).
    let sink_slot = watch.is_some().then(SinkSlot::default);
    let mut stream = TaskStream {
        hub: hub.clone(),
        sink_slot: sink_slot.clone(),
        sink: None,
        recheck: false,
        partials,
        queued: VecDeque::new(),
        watch,
        opening: None,
        seen,
        timer: IdleTimer::new(
            config.keep_alive(),
            Some(Instant::now() + config.monitor_timeout),
        ),
        // A token of its own, so waiting on it never contends with the other streams.
        shutdown: hub.shutdown_token().child_token(),
        _open: hub.open_stream(),
        _guard: guard,
    };
    let mut opening = Vec::with_capacity(512);
    write_retry(&mut opening, config.retry);
    if let Some(state) = current {
        if let Some(frame) = stream.accept(state) {
            opening.extend_from_slice(&frame);
        }
    }
    stream.opening = Some(freeze(opening));
    let mut response = sse_response(stream);
    if let Some(slot) = sink_slot {
        response.extensions_mut().insert(slot);
    }
    response
}

/// The state of one open task stream; everything it holds is small and fixed in size.
struct TaskStream {
    hub: Arc<LiveHub>,
    /// Where the direct path puts the socket, for a stream that can take the hub's writes.
    sink_slot: Option<SinkSlot>,
    /// The socket the hub writes, once attached; the stream then waits for the sink's wake-ups
    /// instead of every change of the watch (see `super::sink`).
    sink: Option<SinkAttachment>,
    /// Read the watch once more before waiting: changes routed before the attachment went to the
    /// watch only.
    recheck: bool,
    /// The task's partial outputs, when the stream carries them.
    partials: Option<Partials>,
    /// Frames ready to write: a replay, or catch-up before a final event.
    queued: VecDeque<Bytes>,
    /// `None` once the stream has decided to end after its pending frame.
    watch: Option<TaskWatch>,
    /// The `retry:` line and the snapshot, written first.
    opening: Option<Bytes>,
    /// The highest version written (or acknowledged by `Last-Event-ID`).
    seen: i64,
    /// Keep-alives and the monitoring deadline.
    timer: IdleTimer,
    /// Ends the stream when the server shuts down.
    shutdown: CancellationToken,
    _open: OpenStream,
    _guard: Box<dyn Any + Send + Sync>,
}

/// What woke a waiting stream.
enum Wake {
    Shutdown,
    Changed,
    HubGone,
    Partial(Received),
    Timer(Tick),
}

/// The next change to look at: the sink's wake-up once the hub writes the stream's socket,
/// otherwise the watch's next change.
async fn next_change(
    receiver: &mut tokio::sync::watch::Receiver<TaskState>,
    sink: Option<&super::sink::DirectSink>,
) -> Result<(), tokio::sync::watch::error::RecvError> {
    match sink {
        Some(sink) => {
            sink.woken().await;
            Ok(())
        }
        None => receiver.changed().await,
    }
}

/// The next item of the stream's partial feed, or never without one.
async fn next_partial(partials: &mut Option<Partials>) -> Received {
    match partials {
        Some(partials) => partials.recv().await,
        None => std::future::pending().await,
    }
}

impl TaskStream {
    /// The frame to write for `state`, if it is news to this client; ends the stream after a
    /// terminal state or a deletion.
    fn accept(&mut self, state: TaskState) -> Option<Bytes> {
        match state {
            TaskState::Present {
                version,
                terminal,
                frame,
            } => {
                if version <= self.seen {
                    return None;
                }
                self.seen = version;
                if let Some(attached) = &self.sink {
                    if !attached.sink().claim_version(version) {
                        // The hub wrote it; after a final state the stream ends all the same.
                        if terminal {
                            self.end_watch();
                        }
                        return None;
                    }
                }
                if terminal {
                    self.end_watch();
                }
                Some(with_seq(frame, self.seen_seq()))
            }
            TaskState::Deleted => {
                self.end_watch();
                Some(single_event(&TaskEvent::Error {
                    error: TASK_DELETED_MESSAGE.to_owned(),
                }))
            }
        }
    }

    /// Whether the hub already wrote `state` on this stream's socket.
    fn hub_wrote(&self, state: Option<&TaskState>) -> bool {
        match (state, &self.sink) {
            (Some(TaskState::Present { version, .. }), Some(attached)) => {
                attached.sink().has_version(*version)
            }
            _ => false,
        }
    }

    /// The stream ends after its pending frame: no more changes, and no more writes by the hub.
    fn end_watch(&mut self) {
        self.watch = None;
        if let Some(attached) = &self.sink {
            attached.sink().close();
        }
    }

    /// Hands the socket's writes of new versions to the hub once the direct path has put the
    /// socket in the slot. Called as the stream returns its opening, so the socket is claimed.
    fn attach(&mut self) {
        if self.sink.is_some() {
            return;
        }
        let (Some(slot), Some(watch)) = (&self.sink_slot, &self.watch) else {
            return;
        };
        let Some(sink) = slot.get() else { return };
        sink.open(self.seen, self.seen_seq() == 0);
        self.sink = Some(self.hub.attach_sink(watch, sink.clone()));
        self.sink_slot = None;
        self.recheck = true;
    }

    /// The highest partial output written (or acknowledged by `Last-Event-ID`).
    fn seen_seq(&self) -> i64 {
        self.partials.as_ref().map_or(0, Partials::seen)
    }

    /// One partial output as an event, with `id: <version>.<seq>`.
    fn partial_frame(&self, partial: &Partial) -> Bytes {
        let mut out = Vec::with_capacity(partial.json.len() + 32);
        out.extend_from_slice(format!("id: {}.{}\ndata: ", self.seen, partial.seq).as_bytes());
        out.extend_from_slice(&partial.json);
        out.extend_from_slice(b"\n\n");
        freeze(out)
    }

    /// Queues the frames of `partials`, in order.
    fn queue_partials(&mut self, partials: &[Arc<Partial>]) {
        if partials.is_empty() {
            return;
        }
        if let Some(attached) = &self.sink {
            // From the first partial on, update ids carry its position: the hub stops writing,
            // and the partials' ids name the newest version the client has, whoever wrote it.
            self.seen = self.seen.max(attached.sink().end_plain());
        }
        for partial in partials {
            let frame = self.partial_frame(partial);
            self.queued.push_back(frame);
        }
    }
}

/// The hub's shared update frame with `id: <version>.<seq>` once partials were sent, so
/// `Last-Event-ID` keeps the partial position too. Only the frame's `id:` line changes (a
/// failed task's frame has it on its second event).
fn with_seq(frame: Bytes, seq: i64) -> Bytes {
    if seq == 0 {
        return frame;
    }
    let Some(start) = id_line_start(&frame) else {
        return frame;
    };
    let Some(end) = frame[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|at| start + at)
    else {
        return frame;
    };
    let mut out = Vec::with_capacity(frame.len() + 8);
    out.extend_from_slice(&frame[..end]);
    out.extend_from_slice(format!(".{seq}").as_bytes());
    out.extend_from_slice(&frame[end..]);
    freeze(out)
}

/// Where the frame's `id:` line starts, if it has one.
fn id_line_start(frame: &[u8]) -> Option<usize> {
    if frame.starts_with(b"id: ") {
        return Some(0);
    }
    frame
        .windows(5)
        .position(|window| window == b"\nid: ")
        .map(|at| at + 1)
}

impl FrameSource for TaskStream {
    async fn next_frame(&mut self) -> Option<Bytes> {
        let frame = self.next_own_frame().await;
        // Every frame the stream's task writes is claimed first, so the hub never writes in
        // the middle of it.
        if let (Some(_), Some(attached)) = (&frame, &self.sink) {
            attached.sink().claim();
        }
        frame
    }
}

impl TaskStream {
    async fn next_own_frame(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            self.attach();
            return Some(opening);
        }
        if let Some(partials) = &mut self.partials {
            let replayed = partials.replay().await;
            self.queue_partials(&replayed);
        }
        if let Some(frame) = self.queued.pop_front() {
            self.timer.frame_sent();
            return Some(frame);
        }
        loop {
            let receiver = self.watch.as_mut()?.receiver()?;
            let wake = if std::mem::take(&mut self.recheck) {
                Wake::Changed
            } else {
                let sink = self.sink.as_ref().map(SinkAttachment::sink);
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => Wake::Shutdown,
                    changed = next_change(receiver, sink) => match changed {
                        Ok(()) => Wake::Changed,
                        Err(_) => Wake::HubGone,
                    },
                    received = next_partial(&mut self.partials) => Wake::Partial(received),
                    tick = self.timer.wait() => Wake::Timer(tick),
                }
            };
            match wake {
                Wake::Shutdown | Wake::HubGone => {
                    self.end_watch();
                    return None;
                }
                Wake::Changed => {
                    let state = self
                        .watch
                        .as_mut()
                        .and_then(TaskWatch::receiver)
                        .map(|receiver| receiver.borrow_and_update().clone());
                    let last = matches!(
                        state,
                        Some(TaskState::Present { terminal: true, .. } | TaskState::Deleted)
                    );
                    // The hub writes a final state itself only when no partial has to go first.
                    if last && !self.hub_wrote(state.as_ref()) {
                        if let (Some(partials), Some(last_state)) = (&mut self.partials, &state) {
                            let missed = partials.catch_up_before_last(&self.hub, last_state).await;
                            self.queue_partials(&missed);
                        }
                    }
                    if let Some(frame) = state.and_then(|state| self.accept(state)) {
                        self.queued.push_back(frame);
                    }
                    if let Some(frame) = self.queued.pop_front() {
                        self.timer.frame_sent();
                        return Some(frame);
                    }
                    if self
                        .sink
                        .as_ref()
                        .is_some_and(|attached| attached.sink().has_pending())
                    {
                        // The hub began a chunk the socket could not take whole: an empty frame
                        // has the writer finish it (and write nothing of its own).
                        return Some(Bytes::new());
                    }
                }
                Wake::Partial(received) => {
                    if let Some(partials) = &mut self.partials {
                        let delivered = partials.on_received(received).await;
                        self.queue_partials(&delivered);
                    }
                    if let Some(frame) = self.queued.pop_front() {
                        self.timer.frame_sent();
                        return Some(frame);
                    }
                }
                Wake::Timer(Tick::Deadline) => {
                    self.end_watch();
                    return Some(single_event(&TaskEvent::timeout()));
                }
                Wake::Timer(Tick::KeepAlive) => return Some(Bytes::from_static(KEEP_ALIVE)),
            }
        }
    }
}

/// One event without an `id:` (the client keeps the last task version as its id).
fn single_event(event: &TaskEvent) -> Bytes {
    let mut out = Vec::with_capacity(64);
    match write_json_event(&mut out, None, event) {
        Ok(()) => freeze(out),
        // The events passed here hold only strings; serialising them cannot fail.
        Err(error) => {
            tracing::error!(%error, "cannot encode a live event");
            Bytes::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use task_core::TaskStatus::{self, *};
    use tokio_util::sync::CancellationToken;

    use super::super::testing::{events, task, FakeStore, Reader};
    use super::super::{task_stream, LiveHub, SseConfig};

    const USER: &str = "ann@example.com";

    struct Setup {
        store: std::sync::Arc<FakeStore>,
        hub: std::sync::Arc<LiveHub>,
        shutdown: CancellationToken,
    }

    fn setup(feed_capacity: usize) -> Setup {
        let store = FakeStore::new(feed_capacity);
        let shutdown = CancellationToken::new();
        let hub = LiveHub::start(store.clone(), shutdown.clone());
        Setup {
            store,
            hub,
            shutdown,
        }
    }

    impl Setup {
        /// Opens the stream of the task's stored state.
        fn open(&self, n: u32, version: i64, status: TaskStatus, last: Option<i64>) -> Reader {
            self.open_with(n, version, status, last, &SseConfig::default())
        }

        fn open_with(
            &self,
            n: u32,
            version: i64,
            status: TaskStatus,
            last: Option<i64>,
            config: &SseConfig,
        ) -> Reader {
            let snapshot = task(n, USER, version, status);
            self.store.put_silently(snapshot.clone());
            let response = task_stream(&self.hub, snapshot, last, config, Box::new(()));
            assert_eq!(response.status(), 200);
            Reader::new(response)
        }
    }

    /// The ids and types of the events in `chunk`.
    fn kinds(chunk: &str) -> Vec<(Option<i64>, String)> {
        events(chunk)
            .into_iter()
            .map(|(id, data)| (id, data["type"].as_str().unwrap().to_owned()))
            .collect()
    }

    fn update(id: i64) -> (Option<i64>, String) {
        (Some(id), "update".to_owned())
    }

    #[tokio::test]
    async fn the_snapshot_comes_first_with_retry_and_headers() {
        let s = setup(64);
        let snapshot = task(1, USER, 3, Processing);
        let response = task_stream(&s.hub, snapshot, None, &SseConfig::default(), Box::new(()));
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-accel-buffering"], "no");
        let mut reader = Reader::new(response);
        let opening = reader.expect().await;
        assert!(opening.starts_with("retry: 3000\n\n"), "{opening:?}");
        let events = events(&opening);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, Some(3));
        assert_eq!(events[0].1["type"], "update");
        assert_eq!(events[0].1["task"]["progress"], 3);
        assert!(
            !opening.contains("event:"),
            "messages are unnamed so onmessage receives them"
        );
    }

    #[tokio::test]
    async fn changes_arrive_in_order_until_the_terminal_event_closes() {
        let s = setup(64);
        let mut reader = s.open(1, 1, Pending, None);
        assert_eq!(kinds(&reader.expect().await), [update(1)]);
        s.store.commit(task(1, USER, 2, Processing));
        assert_eq!(kinds(&reader.expect().await), [update(2)]);
        s.store.commit(task(1, USER, 3, Processing));
        assert_eq!(kinds(&reader.expect().await), [update(3)]);
        s.store.commit(task(1, USER, 4, Completed));
        let last = reader.expect().await;
        let events = events(&last);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, Some(4));
        assert_eq!(events[0].1["type"], "complete");
        assert_eq!(events[0].1["task"]["result"], json!({"questions": 10}));
        assert_eq!(reader.next().await, None, "the stream ends after complete");
    }

    #[tokio::test]
    async fn failure_sends_the_final_state_then_the_error_and_closes() {
        let s = setup(64);
        let mut reader = s.open(1, 1, Processing, None);
        reader.expect().await;
        s.store.commit(task(1, USER, 2, Failed));
        let chunk = reader.expect().await;
        assert_eq!(
            kinds(&chunk),
            [(None, "update".to_owned()), (Some(2), "error".to_owned())]
        );
        assert_eq!(events(&chunk)[1].1, json!({"type":"error","error":"boom"}));
        assert_eq!(reader.next().await, None);
    }

    #[tokio::test]
    async fn a_slow_reader_gets_the_newest_state_never_a_backlog() {
        let s = setup(4096);
        let mut reader = s.open(1, 1, Processing, None);
        reader.expect().await;
        // On this single-threaded runtime the hub routes all of these before the stream is
        // polled again, so the watch coalesces them.
        for version in 2..=50 {
            s.store.commit(task(1, USER, version, Processing));
        }
        s.store.commit(task(1, USER, 51, Completed));
        let mut ids = Vec::new();
        while let Some(chunk) = reader.next().await {
            ids.extend(kinds(&chunk).into_iter().map(|(id, _)| id.unwrap()));
        }
        assert_eq!(ids, [51], "only the newest state is delivered");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn versions_never_repeat_or_go_backwards_under_concurrency() {
        let s = setup(4096);
        let mut reader = s.open(1, 1, Processing, None);
        let store = s.store.clone();
        let writer = tokio::spawn(async move {
            for version in 2..=300 {
                store.commit(task(1, USER, version, Processing));
                if version % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            store.commit(task(1, USER, 301, Completed));
        });
        let mut ids = Vec::new();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), reader.next())
            .await
            .unwrap()
        {
            ids.extend(kinds(&chunk).into_iter().filter_map(|(id, _)| id));
        }
        writer.await.unwrap();
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&301));
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }

    #[tokio::test]
    async fn last_event_id_resumes_without_duplicates() {
        let s = setup(64);
        // The client saw version 5: the snapshot (5) is not repeated.
        let mut reader = s.open(1, 5, Processing, Some(5));
        assert_eq!(reader.expect().await, "retry: 3000\n\n");
        s.store.commit(task(1, USER, 6, Processing));
        assert_eq!(kinds(&reader.expect().await), [update(6)]);

        // A client ahead of the snapshot (it read from a replica that is behind, say) skips
        // everything up to its id.
        let mut ahead = s.open(2, 5, Processing, Some(7));
        assert_eq!(ahead.expect().await, "retry: 3000\n\n");
        s.store.commit(task(2, USER, 7, Processing));
        s.store.commit(task(2, USER, 8, Processing));
        assert_eq!(kinds(&ahead.expect().await), [update(8)]);
    }

    #[tokio::test]
    async fn a_finished_task_gets_its_snapshot_and_terminal_event_at_once() {
        let s = setup(64);
        let mut done = s.open(1, 9, Completed, None);
        let chunk = done.expect().await;
        assert_eq!(kinds(&chunk), [(Some(9), "complete".to_owned())]);
        assert_eq!(done.next().await, None);

        let mut cancelled = s.open(2, 4, Cancelled, Some(3));
        let chunk = cancelled.expect().await;
        assert_eq!(
            kinds(&chunk),
            [(None, "update".to_owned()), (Some(4), "error".to_owned())]
        );
        assert_eq!(
            events(&chunk)[1].1,
            json!({"type":"error","error":"Task was cancelled"})
        );
        assert_eq!(cancelled.next().await, None);
        assert_eq!(s.hub.watched_tasks(), 0, "finished tasks are not watched");
    }

    #[tokio::test]
    async fn resuming_a_finished_stream_answers_204_so_eventsource_stops() {
        let s = setup(64);
        let snapshot = task(1, USER, 9, Completed);
        let response = task_stream(
            &s.hub,
            snapshot,
            Some(9),
            &SseConfig::default(),
            Box::new(()),
        );
        assert_eq!(response.status(), 204);
        assert_eq!(s.hub.open_streams(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_monitoring_limit_sends_timeout_and_closes() {
        let s = setup(64);
        let config = SseConfig {
            monitor_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(25),
            ..SseConfig::default()
        };
        let started = tokio::time::Instant::now();
        let mut reader = s.open_with(1, 1, Processing, None, &config);
        reader.expect().await;
        assert_eq!(reader.expect().await, ":\n\n");
        assert_eq!(reader.expect().await, ":\n\n");
        let last = reader.expect().await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        assert_eq!(
            last,
            "data: {\"type\":\"timeout\",\"error\":\"Task monitoring timeout\"}\n\n"
        );
        assert_eq!(reader.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_gets_keep_alives_and_queries_nothing() {
        let s = setup(64);
        let mut reader = s.open(1, 1, Processing, None);
        reader.expect().await;
        // Let the first watcher's one re-read (see `LiveHub::watch_task`) finish.
        tokio::time::timeout(Duration::from_secs(1), async {
            while s.store.gets() < 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        let started = tokio::time::Instant::now();
        for _ in 0..8 {
            assert_eq!(reader.expect().await, ":\n\n");
        }
        assert_eq!(started.elapsed(), Duration::from_secs(8 * 15));
        assert_eq!(s.store.gets(), 1, "no query while idle");
        // A change restarts the idle clock.
        s.store.commit(task(1, USER, 2, Processing));
        assert_eq!(kinds(&reader.expect().await), [update(2)]);
    }

    #[tokio::test]
    async fn deleting_the_task_ends_the_stream_with_an_error() {
        let s = setup(64);
        let mut reader = s.open(1, 1, Pending, None);
        reader.expect().await;
        s.store.delete_task(&task(1, USER, 1, Pending).id);
        assert_eq!(
            reader.expect().await,
            "data: {\"type\":\"error\",\"error\":\"Task was deleted\"}\n\n"
        );
        assert_eq!(reader.next().await, None);
    }

    #[tokio::test]
    async fn a_change_between_the_snapshot_read_and_the_subscription_is_not_lost() {
        let s = setup(64);
        let snapshot = task(1, USER, 1, Processing);
        // The change to version 2 committed (and was routed to nobody) after the caller read
        // version 1.
        s.store.put_silently(task(1, USER, 2, Processing));
        let mut reader = Reader::new(task_stream(
            &s.hub,
            snapshot,
            None,
            &SseConfig::default(),
            Box::new(()),
        ));
        assert_eq!(kinds(&reader.expect().await), [update(1)]);
        assert_eq!(kinds(&reader.expect().await), [update(2)]);
    }

    #[tokio::test]
    async fn a_lagging_hub_rereads_watched_tasks_so_the_final_state_arrives() {
        let s = setup(4);
        let mut reader = s.open(1, 1, Processing, None);
        reader.expect().await;
        // Task 1 finished, but its change is among many more than the feed buffers.
        s.store.put_silently(task(1, USER, 7, Completed));
        for n in 100..120 {
            s.store.commit(task(n, USER, 1, Pending));
        }
        let chunk = reader.expect().await;
        assert_eq!(kinds(&chunk), [(Some(7), "complete".to_owned())]);
        assert_eq!(reader.next().await, None);
        assert_eq!(s.hub.lag_recoveries(), 1);
    }

    #[tokio::test]
    async fn shutdown_ends_every_stream() {
        let s = setup(64);
        let mut a = s.open(1, 1, Processing, None);
        let mut b = s.open(1, 1, Processing, None);
        a.expect().await;
        b.expect().await;
        s.shutdown.cancel();
        assert_eq!(a.next().await, None);
        assert_eq!(b.next().await, None);
    }

    #[tokio::test]
    async fn dropping_the_last_stream_of_a_task_forgets_it() {
        let s = setup(64);
        let a = s.open(1, 1, Processing, None);
        let b = s.open(1, 1, Processing, None);
        let other = s.open(2, 1, Processing, None);
        assert_eq!((s.hub.watched_tasks(), s.hub.open_streams()), (2, 3));
        drop(a);
        assert_eq!((s.hub.watched_tasks(), s.hub.open_streams()), (2, 2));
        drop(b);
        assert_eq!((s.hub.watched_tasks(), s.hub.open_streams()), (1, 1));
        drop(other);
        assert_eq!((s.hub.watched_tasks(), s.hub.open_streams()), (0, 0));
    }

    #[tokio::test]
    async fn the_guard_lives_exactly_as_long_as_the_stream() {
        let s = setup(64);
        let guard = std::sync::Arc::new(());
        let response = task_stream(
            &s.hub,
            task(1, USER, 1, Processing),
            None,
            &SseConfig::default(),
            Box::new(guard.clone()),
        );
        assert_eq!(std::sync::Arc::strong_count(&guard), 2);
        drop(response);
        assert_eq!(std::sync::Arc::strong_count(&guard), 1);
    }
}
