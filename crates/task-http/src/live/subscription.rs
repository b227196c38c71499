//! Live subscriptions for transports that carry many of them on one connection (the WebSocket
//! endpoint): the same hub, the same states and the same rules as the SSE streams (snapshot
//! first, resume by version, terminal events, deletion, monitoring timeout, resync), but
//! yielding events one batch at a time instead of writing an HTTP body.
//!
//! Events are the SSE frames' own JSON (see [`super::encode::events_of`]), so a change is
//! encoded once whichever transport carries it. Partial outputs come from the same
//! [`super::partials::Partials`] as on SSE: replayed after the snapshot, then live, resumed
//! from `<version>.<seq>`.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use task_core::{Task, TaskEvent};
use task_store::TaskEventLog;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, Sleep};

use super::encode::events_of;
use super::hub::{resync_frame, OpenStream, ScopeWatch, TaskState, TaskWatch};
use super::partials::{Partial, Partials, Received};
use super::task_stream::TASK_DELETED_MESSAGE;
use super::{LiveHub, ResumePoint, SseConfig, StreamScope};

/// One event of a subscription: the event's JSON (as on SSE) and the position it shows, where
/// SSE sends it as the event's `id:` (`<version>` or `<version>.<seq>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveEvent {
    /// The task version, for events that show one (the resume point).
    pub version: Option<i64>,
    /// The last partial output delivered, on events with a version once the subscription
    /// has delivered a partial (SSE's `<version>.<seq>`).
    pub seq: Option<i64>,
    /// The event's JSON, exactly as SSE sends it in `data:`.
    pub json: Bytes,
}

/// What a subscription yields each time it wakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Events to send, in order.
    Events(Vec<LiveEvent>),
    /// The subscription is over (terminal event sent, task deleted, monitoring timeout); nothing
    /// follows.
    Ended,
}

/// The subscription of one task, as a stream of deliveries ending with [`Delivery::Ended`].
///
/// `snapshot` is the task as just read by the caller, who checked that the client may see it.
/// `resume` resumes: versions up to `resume.version` are not sent again, and a finished task
/// whose final version the client has seen yields only `Ended`. With `events`, the task's
/// partial outputs after `resume.seq` follow the snapshot (stored ones first), then new ones
/// live, as on SSE ([`super::task_stream_with_partials`]). Subscriptions stop without `Ended`
/// when the hub shuts down.
pub fn task_subscription(
    hub: &Arc<LiveHub>,
    snapshot: &Task,
    resume: ResumePoint,
    events: Option<Arc<dyn TaskEventLog>>,
    config: &SseConfig,
) -> impl Stream<Item = Delivery> + Send + 'static {
    let state = match TaskState::of(snapshot) {
        Ok(state) => Some(state),
        Err(error) => {
            tracing::error!(task_id = %snapshot.id, %error, "cannot encode task snapshot");
            None
        }
    };
    let mut watch = None;
    let current = match state {
        // A finished task cannot change again except by a manual retry, which deserves a new
        // subscription.
        Some(state) if snapshot.status.is_terminal() => Some(state),
        Some(state) => {
            let mut task_watch = hub.watch_task(snapshot, state);
            let current = task_watch
                .receiver()
                .map(|receiver| receiver.borrow_and_update().clone());
            watch = Some(task_watch);
            current
        }
        None => None,
    };
    // Subscribed before the log is read, so no event falls between the replay and the feed.
    let partials = match (&watch, events) {
        (Some(task_watch), Some(log)) => {
            let live = hub.watch_partials(task_watch, &log);
            Some(Partials::new(snapshot.id.clone(), log, live, resume.seq))
        }
        _ => None,
    };
    let subscription = TaskSubscription {
        watch,
        pending: current,
        partials,
        // Versions start at 1, so "nothing seen yet" is 0.
        seen: resume.version,
        ended: false,
        deadline: Box::pin(tokio::time::sleep_until(
            Instant::now() + config.monitor_timeout,
        )),
        hub: hub.clone(),
        _open: hub.open_stream(),
    };
    stream::unfold(subscription, |mut subscription| async move {
        let delivery = subscription.next().await?;
        Some((delivery, subscription))
    })
}

/// The subscription of a scope's task list: `update` / `deleted` events, `resync` when the client
/// fell behind and must refetch. Never ends by itself; stops when the hub shuts down.
pub fn list_subscription(
    hub: &Arc<LiveHub>,
    scope: &StreamScope,
) -> impl Stream<Item = Delivery> + Send + 'static {
    let watch = hub.watch_scope(scope);
    let subscription = ListSubscription {
        watch,
        hub: hub.clone(),
        _open: hub.open_stream(),
    };
    stream::unfold(subscription, |mut subscription| async move {
        let delivery = subscription.next().await?;
        Some((delivery, subscription))
    })
}

struct TaskSubscription {
    /// `None` once the subscription has decided to end.
    watch: Option<TaskWatch>,
    /// The state to deliver first (the snapshot, or newer).
    pending: Option<TaskState>,
    /// The task's partial outputs, when the subscription carries them.
    partials: Option<Partials>,
    /// The highest version delivered or acknowledged by the client.
    seen: i64,
    /// Whether `Ended` was yielded.
    ended: bool,
    deadline: std::pin::Pin<Box<Sleep>>,
    hub: Arc<LiveHub>,
    _open: OpenStream,
}

impl TaskSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        if self.ended {
            return None;
        }
        let mut events = Vec::new();
        if let Some(state) = self.pending.take() {
            events.extend(self.accept(state).unwrap_or_default());
        }
        if let Some(partials) = &mut self.partials {
            let replayed = partials.replay().await;
            self.push_partials(&mut events, &replayed);
        }
        if !events.is_empty() {
            return Some(Delivery::Events(events));
        }
        loop {
            let Some(receiver) = self.watch.as_mut().and_then(TaskWatch::receiver) else {
                self.ended = true;
                return Some(Delivery::Ended);
            };
            let shutdown = self.hub.shutdown_token();
            let wake = tokio::select! {
                biased;
                () = shutdown.cancelled() => return None,
                changed = receiver.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    Wake::Changed(receiver.borrow_and_update().clone())
                }
                received = next_partial(&mut self.partials) => Wake::Partial(received),
                () = self.deadline.as_mut() => {
                    self.watch = None;
                    return Some(Delivery::Events(vec![single(&TaskEvent::timeout())]));
                }
            };
            let mut events = Vec::new();
            match wake {
                Wake::Changed(state) => {
                    let last = matches!(
                        state,
                        TaskState::Present { terminal: true, .. } | TaskState::Deleted
                    );
                    if last {
                        // Partials are stored before the task finishes; a feed that has not
                        // delivered them yet must not lose them behind the final event.
                        if let Some(partials) = &mut self.partials {
                            let missed = partials.catch_up_before_last(&self.hub, &state).await;
                            self.push_partials(&mut events, &missed);
                        }
                    }
                    events.extend(self.accept(state).unwrap_or_default());
                }
                Wake::Partial(received) => {
                    if let Some(partials) = &mut self.partials {
                        let delivered = partials.on_received(received).await;
                        self.push_partials(&mut events, &delivered);
                    }
                }
            }
            if !events.is_empty() {
                return Some(Delivery::Events(events));
            }
        }
    }

    /// The highest partial output delivered (or acknowledged on resume); 0 before the first.
    fn seen_seq(&self) -> i64 {
        self.partials.as_ref().map_or(0, Partials::seen)
    }

    /// Appends `partials` as events, each at the current version and its own position.
    fn push_partials(&self, events: &mut Vec<LiveEvent>, partials: &[Arc<Partial>]) {
        events.extend(partials.iter().map(|partial| LiveEvent {
            version: Some(self.seen),
            seq: Some(partial.seq),
            json: partial.json.clone(),
        }));
    }

    /// The events of `state` if it is news to this client; stops watching after a terminal
    /// state or a deletion.
    fn accept(&mut self, state: TaskState) -> Option<Vec<LiveEvent>> {
        match state {
            TaskState::Present {
                version,
                terminal,
                frame,
            } => {
                if terminal {
                    self.watch = None;
                }
                if version <= self.seen {
                    return None;
                }
                self.seen = version;
                let seq = Some(self.seen_seq()).filter(|seq| *seq > 0);
                Some(
                    events_of(&frame)
                        .into_iter()
                        .map(|(version, json)| LiveEvent {
                            version,
                            seq: version.and(seq),
                            json,
                        })
                        .collect(),
                )
            }
            TaskState::Deleted => {
                self.watch = None;
                Some(vec![single(&TaskEvent::Error {
                    error: TASK_DELETED_MESSAGE.to_owned(),
                })])
            }
        }
    }
}

/// What woke a waiting task subscription.
enum Wake {
    Changed(TaskState),
    Partial(Received),
}

/// The next item of the subscription's partial feed, or never without one.
async fn next_partial(partials: &mut Option<Partials>) -> Received {
    match partials {
        Some(partials) => partials.recv().await,
        None => std::future::pending().await,
    }
}

struct ListSubscription {
    watch: ScopeWatch,
    hub: Arc<LiveHub>,
    _open: OpenStream,
}

impl ListSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        let receiver = self.watch.receiver()?;
        let shutdown = self.hub.shutdown_token();
        let frame = tokio::select! {
            biased;
            () = shutdown.cancelled() => return None,
            received = receiver.recv() => match received {
                Ok(frame) => frame,
                // Changes were dropped before this reader got them: it must refetch its list.
                Err(RecvError::Lagged(_)) => resync_frame(),
                Err(RecvError::Closed) => return None,
            },
        };
        Some(Delivery::Events(
            events_of(&frame)
                .into_iter()
                .map(|(version, json)| LiveEvent {
                    version,
                    seq: None,
                    json,
                })
                .collect(),
        ))
    }
}

/// One event without a version (timeout, deletion).
fn single(event: &TaskEvent) -> LiveEvent {
    let json = serde_json::to_vec(event).unwrap_or_else(|error| {
        // The events passed here hold only strings; serialising them cannot fail.
        tracing::error!(%error, "cannot encode a live event");
        Vec::new()
    });
    LiveEvent {
        version: None,
        seq: None,
        json: Bytes::from(json),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use task_core::TaskStatus::*;
    use tokio_util::sync::CancellationToken;

    use super::super::testing::{task, FakeStore};
    use super::*;

    const USER: &str = "ann@example.com";

    fn at(version: i64) -> ResumePoint {
        ResumePoint { version, seq: 0 }
    }

    fn versions(delivery: &Delivery) -> Vec<Option<i64>> {
        match delivery {
            Delivery::Events(events) => events.iter().map(|event| event.version).collect(),
            Delivery::Ended => Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_gets_the_newest_state_never_a_backlog() {
        let store = FakeStore::new(4096);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let snapshot = task(1, USER, 1, Processing);
        store.put_silently(snapshot.clone());
        let mut subscription = Box::pin(task_subscription(
            &hub,
            &snapshot,
            ResumePoint::default(),
            None,
            &SseConfig::default(),
        ));
        assert_eq!(versions(&subscription.next().await.unwrap()), [Some(1)]);
        for version in 2..=50 {
            store.commit(task(1, USER, version, Processing));
        }
        store.commit(task(1, USER, 51, Completed));
        let mut seen = Vec::new();
        while let Some(delivery) = subscription.next().await {
            if delivery == Delivery::Ended {
                break;
            }
            seen.extend(versions(&delivery));
        }
        assert_eq!(seen, [Some(51)], "only the newest state is delivered");
        assert_eq!(hub.watched_tasks(), 0);
    }

    #[tokio::test]
    async fn resuming_a_finished_task_yields_only_the_end() {
        let store = FakeStore::new(64);
        let hub = LiveHub::start(store.clone(), CancellationToken::new());
        let done = task(1, USER, 9, Failed);
        let all: Vec<Delivery> = task_subscription(&hub, &done, at(8), None, &SseConfig::default())
            .collect()
            .await;
        assert_eq!(all.len(), 2);
        // As on SSE, only the last event of a version carries it: a client cut between the final
        // `update` and the `error` resumes from 8 and gets both again, never a gap.
        assert_eq!(versions(&all[0]), [None, Some(9)], "update, then error");
        assert_eq!(all[1], Delivery::Ended);
        let seen: Vec<Delivery> =
            task_subscription(&hub, &done, at(9), None, &SseConfig::default())
                .collect()
                .await;
        assert_eq!(seen, [Delivery::Ended]);
    }

    #[tokio::test]
    async fn shutdown_stops_subscriptions_without_an_end() {
        let store = FakeStore::new(64);
        let shutdown = CancellationToken::new();
        let hub = LiveHub::start(store.clone(), shutdown.clone());
        let snapshot = task(1, USER, 1, Pending);
        let mut one = Box::pin(task_subscription(
            &hub,
            &snapshot,
            ResumePoint::default(),
            None,
            &SseConfig::default(),
        ));
        let mut list = Box::pin(list_subscription(&hub, &StreamScope::All));
        one.next().await;
        assert_eq!(hub.open_streams(), 2);
        shutdown.cancel();
        assert_eq!(one.next().await, None);
        assert_eq!(list.next().await, None);
        drop((one, list));
        assert_eq!(hub.open_streams(), 0);
    }
}
