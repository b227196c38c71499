//! The events a live task stream carries, serialised exactly as the existing front end expects.

use serde::Serialize;

use crate::{Task, TaskStatus};

/// The message a stream sends when its monitoring limit runs out.
pub const MONITORING_TIMEOUT_MESSAGE: &str = "Task monitoring timeout";

/// One message on a task's live stream. Serialises as `{"type":"update","task":{...}}`,
/// `{"type":"complete","task":{...}}`, `{"type":"error","error":"..."}` or
/// `{"type":"timeout","error":"Task monitoring timeout"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TaskEvent {
    /// The task changed and is not finished (or is finished without success: the `error` event
    /// follows).
    Update {
        /// The task's state after the change.
        task: Task,
    },
    /// The task completed; the stream ends after this.
    Complete {
        /// The completed task, with its result.
        task: Task,
    },
    /// The task failed or was cancelled; the stream ends after this.
    Error {
        /// Why.
        error: String,
    },
    /// The subscriber's monitoring limit ran out; the stream ends after this.
    Timeout {
        /// Always [`MONITORING_TIMEOUT_MESSAGE`].
        error: String,
    },
}

impl TaskEvent {
    /// The timeout event.
    pub fn timeout() -> Self {
        TaskEvent::Timeout {
            error: MONITORING_TIMEOUT_MESSAGE.to_owned(),
        }
    }

    /// The events that report `task`'s current state: an `update` while it runs, a `complete`
    /// when it completed, and an `update` followed by an `error` when it failed or was
    /// cancelled (so the client sees the final state and then the reason).
    pub fn for_task(task: &Task) -> Vec<TaskEvent> {
        match task.status {
            TaskStatus::Waiting | TaskStatus::Pending | TaskStatus::Processing => {
                vec![TaskEvent::Update { task: task.clone() }]
            }
            TaskStatus::Completed => vec![TaskEvent::Complete { task: task.clone() }],
            TaskStatus::Failed | TaskStatus::Cancelled => vec![
                TaskEvent::Update { task: task.clone() },
                TaskEvent::Error {
                    error: task.failure_message(),
                },
            ],
        }
    }

    /// Whether the stream ends after this event.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, TaskEvent::Update { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTask, TaskId};
    use serde_json::json;

    fn task(status: TaskStatus) -> Task {
        let new = NewTask::new("u", "generation");
        Task {
            id: "task_1_abcdef".parse::<TaskId>().unwrap(),
            user_id: new.user_id,
            task_type: new.task_type,
            status,
            label: None,
            description: Some("Generating with OpenAI...".into()),
            progress: 30,
            total: 100,
            result: None,
            error: None,
            params: json!({}),
            attempt: 1,
            max_attempts: 3,
            run_at: 1,
            lease_owner: None,
            lease_token: Some("secret".into()),
            lease_expires_at: None,
            cancel_requested: false,
            version: 4,
            created_at: 1,
            updated_at: 2,
            waiting_for: 0,
            workflow_id: None,
            priority: crate::Priority::Normal,
            started_at: None,
            completed_at: None,
        }
    }

    #[test]
    fn events_serialise_in_the_front_ends_shape() {
        let update = serde_json::to_value(TaskEvent::Update {
            task: task(TaskStatus::Processing),
        })
        .unwrap();
        assert_eq!(update["type"], "update");
        assert_eq!(update["task"]["status"], "processing");
        assert_eq!(update["task"]["progress"], 30);
        assert!(
            update["task"].get("lease_token").is_none(),
            "lease tokens never leave the server"
        );
        assert_eq!(
            serde_json::to_value(TaskEvent::Error {
                error: "API key not configured for provider: openai".into()
            })
            .unwrap(),
            json!({"type":"error","error":"API key not configured for provider: openai"})
        );
        assert_eq!(
            serde_json::to_value(TaskEvent::timeout()).unwrap(),
            json!({"type":"timeout","error":"Task monitoring timeout"})
        );
    }

    #[test]
    fn for_task_ends_finished_tasks() {
        let running = TaskEvent::for_task(&task(TaskStatus::Processing));
        assert_eq!(running.len(), 1);
        assert!(!running[0].is_terminal());
        let done = TaskEvent::for_task(&task(TaskStatus::Completed));
        assert!(matches!(done.as_slice(), [TaskEvent::Complete { .. }]));
        let mut failed = task(TaskStatus::Failed);
        failed.error = Some("boom".into());
        let events = TaskEvent::for_task(&failed);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            TaskEvent::Error {
                error: "boom".into()
            }
        );
        let cancelled = TaskEvent::for_task(&task(TaskStatus::Cancelled));
        assert_eq!(
            cancelled[1],
            TaskEvent::Error {
                error: "Task was cancelled".into()
            }
        );
    }
}
