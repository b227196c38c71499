//! Live updates over server-sent events: the hub that routes committed changes from the
//! store's change feed, the per-task stream (`/api/subscribeToTask`), the list stream
//! (`/api/subscribeToTasks`), the workflow stream (`/api/workflows/{id}/events`), and the same
//! subscriptions for the WebSocket endpoint ([`task_subscription`], [`list_subscription`]).
//!
//! The protocol is described in `docs/api.md`, "Live updates (SSE)". In short: unnamed
//! messages whose `data` is a [`task_core::TaskEvent`] (or a list event), `id:` = the task's
//! version on per-task streams, a `retry:` line first, a `:` comment while idle.
//!
//! **Invariants:** an idle stream costs no database query and no buffer beyond its state
//! (a few hundred bytes); a slow client gets the newest state, never a growing queue.

mod body;
mod encode;
mod hub;
pub(crate) mod idle_timer;
mod partials;
mod sink;
pub(crate) use sink::SinkSlot;
mod subscription;
mod task_stream;
mod tasks_stream;
#[cfg(test)]
pub(crate) mod testing;
mod workflow_stream;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use task_core::Task;

use crate::body::Body;

pub use hub::{LiveHub, EVERYONE_CHANNEL_CAPACITY, USER_CHANNEL_CAPACITY};
pub use subscription::{list_subscription, task_subscription, Delivery, LiveEvent};
pub use task_stream::{ResumePoint, TASK_DELETED_MESSAGE};
pub use workflow_stream::{parse_workflow_event_id, WorkflowNodeState};

/// How long a per-task stream stays open before it sends the timeout event, unless configured.
pub const DEFAULT_MONITOR_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a stream may be silent before a keep-alive comment is sent, unless configured.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay sent to clients in the `retry:` line, unless configured.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);
/// The shortest keep-alive interval honoured, so a misconfiguration cannot make a stream
/// busy-loop on comments.
pub const MIN_KEEP_ALIVE: Duration = Duration::from_millis(10);

/// Settings of live streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseConfig {
    /// How long a per-task stream watches its task before it sends
    /// `{"type":"timeout","error":"Task monitoring timeout"}` and closes. List streams have no
    /// such limit. Defaults to 5 minutes ([`DEFAULT_MONITOR_TIMEOUT`]).
    pub monitor_timeout: Duration,
    /// A `:` comment line is sent after this long without any other frame, so proxies and
    /// browsers keep idle streams open. Defaults to 15 s ([`DEFAULT_KEEP_ALIVE`]); values below
    /// [`MIN_KEEP_ALIVE`] are raised to it.
    pub keep_alive: Duration,
    /// The reconnection delay the client is told in the opening `retry:` line. Defaults to
    /// 3 s ([`DEFAULT_RETRY`]).
    pub retry: Duration,
}

impl Default for SseConfig {
    fn default() -> Self {
        Self {
            monitor_timeout: DEFAULT_MONITOR_TIMEOUT,
            keep_alive: DEFAULT_KEEP_ALIVE,
            retry: DEFAULT_RETRY,
        }
    }
}

impl SseConfig {
    pub(crate) fn keep_alive(&self) -> Duration {
        self.keep_alive.max(MIN_KEEP_ALIVE)
    }
}

/// Whose tasks a list stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamScope {
    /// The tasks owned by this user id.
    User(String),
    /// Every task (superusers).
    All,
}

/// The live stream of one task, as a `200 text/event-stream` response.
///
/// `snapshot` is the task as just read by the caller (who has checked that the client may
/// see it). It is sent at once (`update`; `complete`; or `update` + `error` for a failed or
/// cancelled task), then every newer version as it is committed, each with `id: <version>`.
/// The stream ends after a terminal event, after `{"type":"error","error":"Task was deleted"}`,
/// after the timeout event once `config.monitor_timeout` has passed, or when the hub's
/// shutdown token fires.
///
/// `last_event_id` (the `Last-Event-ID` header) resumes without duplicates: versions up to
/// it are not sent again. A finished task whose final version the client has already seen
/// answers `204 No Content`, which makes an `EventSource` stop reconnecting.
///
/// `guard` is held until the stream ends (per-user stream limits, for example).
pub fn task_stream(
    hub: &Arc<LiveHub>,
    snapshot: Task,
    last_event_id: Option<i64>,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    let resume = ResumePoint {
        version: last_event_id.unwrap_or(0),
        seq: 0,
    };
    task_stream::task_stream(hub, snapshot, resume, None, config, guard)
}

/// [`task_stream`] with the task's partial outputs from `events`: after the snapshot, the
/// stored events after `resume.seq` are replayed (one read of the log), then new ones follow
/// live as `{"type":"partial","taskId":…,"item":…,"index":<seq - 1>}` with
/// `id: <version>.<seq>`. Once a partial has been sent, update events carry
/// `id: <version>.<seq>` too, so `Last-Event-ID` always names both positions and a client
/// that reconnects — to this server after a restart, or to another instance on the same
/// database — gets exactly the events it missed.
pub fn task_stream_with_partials(
    hub: &Arc<LiveHub>,
    snapshot: Task,
    resume: ResumePoint,
    events: Option<Arc<dyn task_store::TaskEventLog>>,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    task_stream::task_stream(hub, snapshot, resume, events, config, guard)
}

/// The live list stream of `scope`, as a `200 text/event-stream` response.
///
/// Each change is one message without an `id:` (task versions do not order changes across
/// tasks, so a reconnecting client refetches its list instead of resuming):
/// `{"type":"update","task":{...}}`, `{"type":"deleted","taskId":"..."}`, or
/// `{"type":"resync"}` when changes were missed and the list must be refetched. There is no
/// monitoring timeout; the stream ends when the hub's shutdown token fires.
///
/// `guard` is held until the stream ends.
pub fn tasks_stream(
    hub: &Arc<LiveHub>,
    scope: StreamScope,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    tasks_stream::tasks_stream(hub, scope, config, guard)
}

/// The live stream of a workflow's nodes, as a `200 text/event-stream` response.
///
/// `nodes` are the workflow's nodes in order, each with its task as just read by the caller
/// (who checked that the client may see the workflow). At once, every node's current state is
/// sent as `{"type":"event","key":…,"version":…,"event":<the task stream's event>}`, then every
/// newer version of any node as it is committed; `{"type":"deleted","key":…}` when a node's
/// task is deleted. The stream ends with `{"type":"finished","status":…}` once every node is
/// finished, or when the hub's shutdown token fires.
///
/// Event ids list every node's last version sent (`<v1>.<v2>.…`); `resume` (from
/// `Last-Event-ID`, see [`parse_workflow_event_id`]) skips the versions the client has, and a
/// finished workflow whose final states the client has answers `204 No Content`.
///
/// `guard` is held until the stream ends.
pub fn workflow_stream(
    hub: &Arc<LiveHub>,
    nodes: Vec<WorkflowNodeState>,
    resume: Option<Vec<i64>>,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    workflow_stream::workflow_stream(hub, nodes, resume, config, guard)
}
