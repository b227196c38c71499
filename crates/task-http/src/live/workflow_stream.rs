//! `GET /api/workflows/{id}/events`: every node's task events on one stream. Each node is
//! watched through the hub exactly as a task stream watches its task (the same shared watch and
//! the same encoded frames), so a workflow stream adds no database query and no encoding per
//! change; the node's events are wrapped with its key.
//!
//! Resuming: the event id lists the last version sent of every node, in node order
//! (`3.1.0`), so `Last-Event-ID` tells exactly which node states the client has.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, SelectAll, StreamExt};
use http::Response;
use serde::Serialize;
use task_core::{Task, TaskStatus};
use tokio_util::sync::CancellationToken;

use super::body::{no_content, sse_response, FrameSource};
use super::encode::{events_of, freeze, write_event, write_json_event, write_retry, KEEP_ALIVE};
use super::hub::{OpenStream, TaskState, TaskWatch};
use super::idle_timer::IdleTimer;
use super::{LiveHub, SseConfig};
use crate::body::Body;

/// One node of a workflow as the caller read it: its key and its task (`None` once purged).
#[derive(Debug, Clone)]
pub struct WorkflowNodeState {
    /// The node's key in the workflow.
    pub key: String,
    /// The node's task as just read; `None` when the cleaner deleted it.
    pub task: Option<Task>,
}

/// Parses a workflow stream's event id (`Last-Event-ID`) for a workflow of `nodes` nodes: one
/// version per node, separated by dots.
///
/// `None` when the text is not such an id at all (not dot-separated decimal numbers: a 400).
/// `Some(None)` when it is well-formed but has another number of parts than the workflow has
/// nodes, or a number beyond any version: this server never sent it for this workflow (another
/// workflow's id, say), so the stream starts from the beginning, as without the header — a
/// client gets every state again rather than an error that would stop its `EventSource`.
pub fn parse_workflow_event_id(text: &str, nodes: usize) -> Option<Option<Vec<i64>>> {
    let well_formed = text
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return None;
    }
    let versions = text
        .split('.')
        .map(|part| part.parse::<i64>().ok())
        .collect::<Option<Vec<i64>>>();
    Some(versions.filter(|versions| versions.len() == nodes))
}

/// The message that ends a workflow stream once every node is finished.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Closing {
    /// Every node is finished: `completed` when all completed, `failed` when one failed, else
    /// `cancelled`.
    Finished { status: &'static str },
}

/// See [`super::workflow_stream`].
pub(crate) fn workflow_stream(
    hub: &Arc<LiveHub>,
    nodes: Vec<WorkflowNodeState>,
    resume: Option<Vec<i64>>,
    config: &SseConfig,
    guard: Box<dyn Any + Send + Sync>,
) -> Response<Body> {
    let seen = resume.unwrap_or_else(|| vec![0; nodes.len()]);
    let everything_seen = nodes.iter().zip(&seen).all(|(node, seen)| {
        node.task
            .as_ref()
            .is_none_or(|task| task.status.is_terminal() && task.version <= *seen)
    });
    if everything_seen {
        // The client has every node's final state; 204 stops its EventSource.
        return no_content();
    }
    let mut stream = WorkflowStream {
        nodes: Vec::with_capacity(nodes.len()),
        wakes: SelectAll::new(),
        opening: None,
        finished: false,
        timer: IdleTimer::new(config.keep_alive(), None),
        shutdown: hub.shutdown_token().child_token(),
        _open: hub.open_stream(),
        _guard: guard,
    };
    let mut current = Vec::with_capacity(nodes.len());
    for (index, (node, seen)) in nodes.into_iter().zip(seen).enumerate() {
        let state = node
            .task
            .as_ref()
            .and_then(|task| match TaskState::of(task) {
                Ok(state) => Some(state),
                Err(error) => {
                    tracing::error!(task_id = %task.id, %error, "cannot encode task snapshot");
                    None
                }
            });
        stream.nodes.push(Node {
            key_json: serde_json::to_string(&node.key).unwrap_or_else(|_| "\"\"".to_owned()),
            seen,
            status: node.task.as_ref().map(|task| task.status),
        });
        let (Some(task), Some(state)) = (node.task, state) else {
            continue;
        };
        // Finished nodes are watched too: a retry brings them (and their cancelled
        // dependents) back while the rest of the workflow runs.
        let mut watch = hub.watch_task(&task, state);
        if let Some(receiver) = watch.receiver() {
            current.push((index, receiver.borrow_and_update().clone()));
        }
        stream.wakes.push(node_changes(index, watch));
    }
    let mut opening = Vec::with_capacity(1024);
    write_retry(&mut opening, config.retry);
    for (index, state) in current {
        stream.accept(index, state, &mut opening);
    }
    stream.finish_if_done(&mut opening);
    stream.opening = Some(freeze(opening));
    sse_response(stream)
}

/// A node's watch as a stream of its newer states.
fn node_changes(index: usize, watch: TaskWatch) -> BoxStream<'static, (usize, TaskState)> {
    stream::unfold(watch, move |mut watch| async move {
        let receiver = watch.receiver()?;
        receiver.changed().await.ok()?;
        let state = receiver.borrow_and_update().clone();
        Some(((index, state), watch))
    })
    .boxed()
}

/// What the stream knows of one node.
struct Node {
    /// The key, encoded as a JSON string once.
    key_json: String,
    /// The highest version sent (or acknowledged by `Last-Event-ID`).
    seen: i64,
    /// The status last sent or read; `None` once the task is gone.
    status: Option<TaskStatus>,
}

/// The state of one open workflow stream.
struct WorkflowStream {
    nodes: Vec<Node>,
    /// Every watched node's changes; woken only for the nodes that changed.
    wakes: SelectAll<BoxStream<'static, (usize, TaskState)>>,
    /// The `retry:` line and the snapshots, written first.
    opening: Option<Bytes>,
    /// Whether the closing message was written.
    finished: bool,
    /// Keep-alives (no deadline: a workflow may run for long).
    timer: IdleTimer,
    /// Ends the stream when the server shuts down.
    shutdown: CancellationToken,
    _open: OpenStream,
    _guard: Box<dyn Any + Send + Sync>,
}

impl WorkflowStream {
    /// The event id: every node's last version sent.
    fn event_id(&self) -> String {
        let mut id = String::with_capacity(self.nodes.len() * 3);
        for (index, node) in self.nodes.iter().enumerate() {
            if index > 0 {
                id.push('.');
            }
            id.push_str(&node.seen.to_string());
        }
        id
    }

    /// Appends the events of `state` for node `index`, if they are news to this client.
    fn accept(&mut self, index: usize, state: TaskState, out: &mut Vec<u8>) {
        match state {
            TaskState::Present {
                version,
                terminal: _,
                frame,
            } => {
                if version <= self.nodes[index].seen {
                    return;
                }
                self.nodes[index].seen = version;
                let events = events_of(&frame);
                for (position, (_, json)) in events.iter().enumerate() {
                    if position == 0 {
                        self.nodes[index].status = status_of(json);
                    }
                    let data = format!(
                        "{{\"type\":\"event\",\"key\":{},\"version\":{version},\"event\":{}}}",
                        self.nodes[index].key_json,
                        String::from_utf8_lossy(json)
                    );
                    // As on the task stream, only a version's last event carries the id, so a
                    // client cut between a failed node's `update` and `error` gets both again.
                    if position + 1 == events.len() {
                        out.extend_from_slice(format!("id: {}\n", self.event_id()).as_bytes());
                    }
                    write_event(out, None, &data);
                }
            }
            TaskState::Deleted => {
                if self.nodes[index].status.is_none() {
                    return;
                }
                self.nodes[index].status = None;
                let data = format!(
                    "{{\"type\":\"deleted\",\"key\":{}}}",
                    self.nodes[index].key_json
                );
                write_event(out, None, &data);
            }
        }
    }

    /// Appends the closing message when every node is finished (or gone).
    fn finish_if_done(&mut self, out: &mut Vec<u8>) {
        let statuses: Vec<TaskStatus> = self.nodes.iter().filter_map(|node| node.status).collect();
        if statuses.iter().any(|status| !status.is_terminal()) {
            return;
        }
        let status = if statuses.iter().all(|s| *s == TaskStatus::Completed) {
            "completed"
        } else if statuses.contains(&TaskStatus::Failed) {
            "failed"
        } else {
            "cancelled"
        };
        if write_json_event(out, None, &Closing::Finished { status }).is_ok() {
            self.finished = true;
        }
    }
}

/// The task status in a task event's JSON (`{"type":…,"task":{…,"status":…}}`).
fn status_of(json: &[u8]) -> Option<TaskStatus> {
    #[derive(serde::Deserialize)]
    struct Event {
        task: Option<Status>,
    }
    #[derive(serde::Deserialize)]
    struct Status {
        status: TaskStatus,
    }
    serde_json::from_slice::<Event>(json)
        .ok()
        .and_then(|event| event.task)
        .map(|task| task.status)
}

impl FrameSource for WorkflowStream {
    async fn next_frame(&mut self) -> Option<Bytes> {
        if let Some(opening) = self.opening.take() {
            return Some(opening);
        }
        loop {
            if self.finished || self.wakes.is_empty() {
                return None;
            }
            let woke = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => return None,
                woke = self.wakes.next() => woke,
                _ = self.timer.wait() => return Some(Bytes::from_static(KEEP_ALIVE)),
            };
            // A watch ends only when the hub is gone (shutdown).
            let (index, state) = woke?;
            let mut out = Vec::with_capacity(512);
            self.accept(index, state, &mut out);
            if out.is_empty() {
                continue;
            }
            self.finish_if_done(&mut out);
            self.timer.frame_sent();
            return Some(freeze(out));
        }
    }
}
