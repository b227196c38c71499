//! How the hub hands a watched task's new state to its direct-path streams (`super::super::sink`),
//! and the one read of the task's log that every stream of a finished task shares.
//!
//! An ongoing state is written to every idle socket in one pass. A final state must not
//! overtake a partial output stored before it, and the partials' feed is routed apart from
//! the change feed, so a stream that carries partials reads the log before its final event.
//! That read is the same for every stream of the task (the log cannot grow once the task
//! finished: the lease that appends to it is gone), so it is made once per task and final
//! version, by whichever stream or hub pass asks first, and shared ([`LiveHub::final_partials`]).
//! When it finds no partial at all (every task that streams no output), the hub writes the final
//! state itself in its pass like any update. With 1,000 subscribers the old way, one read and
//! one wake-up-then-write per stream, put the `complete` event at twice the updates' latency
//! (`docs/benchmarks.md`, round 7).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use task_core::sync::lock;
use task_core::TaskId;
use tokio::sync::OnceCell;

use super::super::partials::Partial;
use super::super::sink::{chunk, DirectSink};
use super::{LiveHub, TaskState, Watched};

/// The partials a finished task's log holds, read once for all of its streams; `None` inside
/// when the read failed (each stream then reads the log itself).
pub(super) type FinalLog = Arc<OnceCell<Option<StoredPartials>>>;

/// Partial outputs as read from a task's log, in order.
pub(crate) type StoredPartials = Arc<[Arc<Partial>]>;

impl Watched {
    /// What the hub needs to write a new state to the task's sinks, taken under the map's
    /// lock and used after it, so a fan-out never holds up other streams' (un)subscribing.
    pub(super) fn route(&self) -> SinkRoute {
        SinkRoute {
            sinks: self.sinks.clone(),
            carries_partials: self.partials.is_some(),
        }
    }
}

/// A watched task's direct-path streams, as the hub writes them one new state.
pub(super) struct SinkRoute {
    sinks: Vec<Arc<DirectSink>>,
    /// Whether any of the task's streams carries partial outputs (it may have to send some
    /// before a final state).
    carries_partials: bool,
}

impl LiveHub {
    /// Hands a task's new state to its direct-path streams, without waiting:
    /// - an ongoing state is written to every idle socket in one pass, encoded as a chunk once;
    /// - a final state too, then every stream is woken to end; when a stream carries partials,
    ///   only once the task's log proved to hold none ([`LiveHub::final_partials`]), otherwise
    ///   the streams are woken to send what they missed and the final state themselves;
    /// - a deletion wakes the streams, which write their error event and end.
    pub(super) fn write_sinks(self: &Arc<Self>, id: &TaskId, route: &SinkRoute, state: &TaskState) {
        if route.sinks.is_empty() {
            return;
        }
        match state {
            TaskState::Present {
                version,
                terminal: false,
                frame,
            } => self.offer_sinks(&route.sinks, *version, &chunk(frame)),
            TaskState::Present {
                version,
                terminal: true,
                frame,
            } if route.carries_partials && self.partial_routing.get().is_some() => {
                let (hub, id, sinks) = (self.clone(), id.clone(), route.sinks.clone());
                let (version, chunk) = (*version, chunk(frame));
                tokio::spawn(async move {
                    match hub.final_partials(&id, version).await {
                        Some(stored) if stored.is_empty() => hub.end_sinks(&sinks, version, &chunk),
                        _ => wake_all(&sinks),
                    }
                });
            }
            TaskState::Present {
                version,
                terminal: true,
                frame,
            } => self.end_sinks(&route.sinks, *version, &chunk(frame)),
            TaskState::Deleted => wake_all(&route.sinks),
        }
    }

    /// Writes version `version` (chunk-framed) to every idle sink; the rest are woken to write
    /// it themselves.
    fn offer_sinks(&self, sinks: &[Arc<DirectSink>], version: i64, chunk: &Bytes) {
        let written = sinks
            .iter()
            .filter(|sink| sink.offer(version, chunk))
            .count();
        self.hub_writes.fetch_add(written as u64, Ordering::Relaxed);
    }

    /// A final state: written to every idle sink in one pass like any other, then every stream
    /// is woken to end (or to write it, where the hub could not). The wake-ups come after the
    /// whole pass, so the streams' endings do not compete with the writes for the CPU.
    fn end_sinks(&self, sinks: &[Arc<DirectSink>], version: i64, chunk: &Bytes) {
        self.offer_sinks(sinks, version, chunk);
        wake_all(sinks);
    }

    /// The partial outputs stored in task `id`'s log once it reached its final version
    /// `version`, read once for every stream of the task and shared. `None` when the task is
    /// not watched any more, no stream carries partials, or the log could not be read: the
    /// caller then reads the log itself.
    pub(crate) async fn final_partials(&self, id: &TaskId, version: i64) -> Option<StoredPartials> {
        let log = self.partial_routing.get()?.clone();
        let cell = {
            let mut tasks = lock(&self.tasks);
            let watched = tasks.get_mut(id)?;
            match &watched.final_log {
                Some((known, cell)) if *known == version => cell.clone(),
                // A retried task can finish again, at a newer version with a longer log.
                _ => {
                    let cell = FinalLog::default();
                    watched.final_log = Some((version, cell.clone()));
                    cell
                }
            }
        };
        cell.get_or_init(|| async {
            match log.events_after(id, 0).await {
                Ok(events) => Some(
                    events
                        .iter()
                        .map(|event| Arc::new(Partial::of(event)))
                        .collect(),
                ),
                Err(error) => {
                    tracing::warn!(task_id = %id, %error, "cannot read the task's events");
                    None
                }
            }
        })
        .await
        .clone()
    }
}

/// Wakes every stream of `sinks` to look at the task's newest state.
fn wake_all(sinks: &[Arc<DirectSink>]) {
    for sink in sinks {
        sink.notify();
    }
}
