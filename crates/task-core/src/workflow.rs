//! Dependencies between tasks and workflows (a graph of new tasks created together): the input
//! types, their validation (keys, edges, cycles, the node limit) and the readiness rule every
//! backend applies when a parent finishes. See `docs/state-machine.md`, "Dependencies".

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::{CoreError, NewTask, Task, TaskId, TaskStatus, UnixMillis};

/// The most nodes one workflow may have in the store (embedders). The HTTP API allows fewer
/// per request (1,000; see `docs/api.md`).
pub const MAX_WORKFLOW_NODES: usize = 10_000;
/// The most existing tasks one new task may name as parents.
pub const MAX_DEPENDS_ON: usize = 100;
const MAX_KEY_LEN: usize = 64;

/// An edge from an existing task (the parent) to the task being created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The task that must finish first.
    pub parent: TaskId,
    /// `false` (the default): a parent that fails for good or is cancelled cancels the child.
    /// `true`: the child runs anyway once the parent is finished, however it ended.
    #[serde(default)]
    pub run_on_failure: bool,
}

impl Dependency {
    /// A cancel-by-default edge from `parent`.
    pub fn on(parent: TaskId) -> Self {
        Self {
            parent,
            run_on_failure: false,
        }
    }
}

/// One node of a [`NewWorkflow`]: a task with a key local to the workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowNode {
    /// 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `-` and `_`; unique in the workflow.
    pub key: String,
    /// The task; its `depends_on` may name existing tasks of the same user.
    pub task: NewTask,
}

/// An edge between two nodes of a workflow, by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowEdge {
    /// The node that runs first.
    pub parent: String,
    /// The node that waits for it.
    pub child: String,
    /// As [`Dependency::run_on_failure`].
    #[serde(default)]
    pub run_on_failure: bool,
}

/// A graph of new tasks, created all together or not at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewWorkflow {
    /// The owner of the workflow and of every node.
    pub user_id: String,
    /// 1 to [`MAX_WORKFLOW_NODES`] nodes.
    pub nodes: Vec<WorkflowNode>,
    /// Edges between nodes, by key; the graph must have no cycle.
    pub edges: Vec<WorkflowEdge>,
}

/// A workflow as stored: its nodes' tasks and its edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// `wf_<unix-ms>_<random>`.
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// When it was created.
    pub created_at: UnixMillis,
    /// The node keys and their task ids, in creation order.
    pub nodes: Vec<(String, TaskId)>,
    /// The edges, by key.
    pub edges: Vec<WorkflowEdge>,
}

/// A validated [`NewWorkflow`]: the nodes in an order where every parent comes before its
/// children, with each node's parents among the nodes (by index into `order`'s node list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowPlan {
    /// Node indices, parents first.
    pub order: Vec<usize>,
    /// For each node (by index), its parent nodes and whether each edge runs on failure.
    pub parents: Vec<Vec<(usize, bool)>>,
}

fn invalid(reason: impl Into<String>) -> CoreError {
    CoreError::InvalidWorkflow(reason.into())
}

impl NewWorkflow {
    /// Checks the graph and every node's task; the error names the problem (the bad key, the
    /// self-edge, a node on the cycle, the limit).
    ///
    /// # Errors
    /// [`CoreError::InvalidWorkflow`].
    pub fn plan(&self) -> Result<WorkflowPlan, CoreError> {
        if self.nodes.is_empty() {
            return Err(invalid("a workflow needs at least one node"));
        }
        if self.nodes.len() > MAX_WORKFLOW_NODES {
            return Err(invalid(format!(
                "a workflow has at most {MAX_WORKFLOW_NODES} nodes, this one has {}",
                self.nodes.len()
            )));
        }
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(self.nodes.len());
        for (i, node) in self.nodes.iter().enumerate() {
            check_key(&node.key)?;
            if index.insert(node.key.as_str(), i).is_some() {
                return Err(invalid(format!("duplicate node key {:?}", node.key)));
            }
            if node.task.user_id != self.user_id {
                return Err(invalid(format!(
                    "node {:?} belongs to another user than the workflow",
                    node.key
                )));
            }
            node.task
                .validate()
                .map_err(|e| invalid(format!("node {:?}: {e}", node.key)))?;
        }
        let mut parents: Vec<Vec<(usize, bool)>> = vec![Vec::new(); self.nodes.len()];
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); self.nodes.len()];
        for edge in &self.edges {
            let find = |key: &str| {
                index
                    .get(key)
                    .copied()
                    .ok_or_else(|| invalid(format!("edge names unknown node key {key:?}")))
            };
            let (parent, child) = (find(&edge.parent)?, find(&edge.child)?);
            if parent == child {
                return Err(invalid(format!("self-edge on node {:?}", edge.parent)));
            }
            if parents[child].iter().any(|(p, _)| *p == parent) {
                return Err(invalid(format!(
                    "duplicate edge {:?} -> {:?}",
                    edge.parent, edge.child
                )));
            }
            parents[child].push((parent, edge.run_on_failure));
            children[parent].push(child);
        }
        let order = topological_order(&parents, &children).map_err(|node| {
            invalid(format!(
                "the edges form a cycle through node {:?}",
                self.nodes[node].key
            ))
        })?;
        Ok(WorkflowPlan { order, parents })
    }
}

fn check_key(key: &str) -> Result<(), CoreError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "node key {:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'",
            key.chars().take(80).collect::<String>()
        )))
    }
}

/// Kahn's algorithm; `Err(node)` names a node on a cycle.
fn topological_order(
    parents: &[Vec<(usize, bool)>],
    children: &[Vec<usize>],
) -> Result<Vec<usize>, usize> {
    let mut remaining: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: VecDeque<usize> = (0..parents.len()).filter(|&n| remaining[n] == 0).collect();
    let mut order = Vec::with_capacity(parents.len());
    while let Some(node) = ready.pop_front() {
        order.push(node);
        for &child in &children[node] {
            remaining[child] -= 1;
            if remaining[child] == 0 {
                ready.push_back(child);
            }
        }
    }
    if order.len() == parents.len() {
        Ok(order)
    } else {
        Err((0..parents.len()).find(|&n| remaining[n] > 0).unwrap_or(0))
    }
}

/// Where a task stands given its parents, as each backend computes it at creation, at a retry
/// and when a parent is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every parent is finished in a way that lets the task run.
    Ready,
    /// This many parents are unfinished.
    Waiting(i64),
    /// A parent failed or was cancelled over a cancel-by-default edge.
    Blocked {
        /// That parent.
        parent: TaskId,
        /// How it ended.
        status: TaskStatus,
    },
}

/// Whether a parent in `status` lets its child run over an edge with `run_on_failure`.
pub fn edge_satisfied(status: TaskStatus, run_on_failure: bool) -> bool {
    status == TaskStatus::Completed || (run_on_failure && status.is_terminal())
}

/// The readiness of a task whose parents are `(id, status, run_on_failure)`. A parent that no
/// longer exists (the cleaner purged it) counts as finished.
pub fn readiness<'a>(
    parents: impl IntoIterator<Item = (&'a TaskId, Option<TaskStatus>, bool)>,
) -> Readiness {
    let mut unfinished = 0;
    for (parent, status, run_on_failure) in parents {
        match status {
            None => {}
            Some(status) if edge_satisfied(status, run_on_failure) => {}
            Some(status) if status.is_terminal() => {
                return Readiness::Blocked {
                    parent: parent.clone(),
                    status,
                }
            }
            Some(_) => unfinished += 1,
        }
    }
    if unfinished == 0 {
        Readiness::Ready
    } else {
        Readiness::Waiting(unfinished)
    }
}

/// The error stored on a task cancelled because of its parent.
pub fn dependency_error(parent: &TaskId, status: TaskStatus) -> String {
    let how = if status == TaskStatus::Cancelled {
        "was cancelled"
    } else {
        "failed"
    };
    format!("dependency {parent} {how}")
}

/// The text listings show for a waiting task, e.g. "waiting for 2 tasks".
pub fn waiting_text(task: &Task) -> Option<String> {
    match (task.status, task.waiting_for) {
        (TaskStatus::Waiting, 1) => Some("waiting for 1 task".to_owned()),
        (TaskStatus::Waiting, n) => Some(format!("waiting for {n} tasks")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(key: &str) -> WorkflowNode {
        WorkflowNode {
            key: key.to_owned(),
            task: NewTask::new("u", "noop"),
        }
    }

    fn edge(parent: &str, child: &str) -> WorkflowEdge {
        WorkflowEdge {
            parent: parent.to_owned(),
            child: child.to_owned(),
            run_on_failure: false,
        }
    }

    fn check(nodes: &[&str], edges: &[(&str, &str)], error: Option<&str>) {
        let workflow = NewWorkflow {
            user_id: "u".to_owned(),
            nodes: nodes.iter().map(|k| node(k)).collect(),
            edges: edges.iter().map(|(p, c)| edge(p, c)).collect(),
        };
        match (workflow.plan(), error) {
            (Ok(plan), None) => {
                let position = |n: usize| plan.order.iter().position(|&o| o == n).unwrap();
                for (child, parents) in plan.parents.iter().enumerate() {
                    for (parent, _) in parents {
                        assert!(position(*parent) < position(child));
                    }
                }
            }
            (Err(CoreError::InvalidWorkflow(reason)), Some(expected)) => {
                assert!(reason.contains(expected), "{reason:?} lacks {expected:?}")
            }
            (other, expected) => panic!("{other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn plans_name_the_problem() {
        check(
            &["a", "b", "c"],
            &[("a", "b"), ("b", "c"), ("a", "c")],
            None,
        );
        check(&["c", "b", "a"], &[("a", "b"), ("b", "c")], None);
        check(&["a", "b"], &[("a", "x")], Some("unknown node key \"x\""));
        check(&["a"], &[("a", "a")], Some("self-edge on node \"a\""));
        check(&["a", "b"], &[("a", "b"), ("b", "a")], Some("cycle"));
        check(&["a", "a"], &[], Some("duplicate node key"));
        check(
            &["a", "b"],
            &[("a", "b"), ("a", "b")],
            Some("duplicate edge"),
        );
        check(&[], &[], Some("at least one node"));
        check(&["a b"], &[], Some("node key"));
        let many: Vec<String> = (0..=MAX_WORKFLOW_NODES).map(|n| format!("n{n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        check(&many, &[], Some("at most 10000 nodes"));
        check(&many[..MAX_WORKFLOW_NODES], &[], None);
    }

    #[test]
    fn readiness_counts_unfinished_parents_and_names_a_blocking_one() {
        let (a, b) = (
            "task_1_aaaaaa".parse::<TaskId>().unwrap(),
            "task_1_bbbbbb".parse::<TaskId>().unwrap(),
        );
        use TaskStatus::*;
        assert_eq!(readiness([]), Readiness::Ready);
        assert_eq!(
            readiness([(&a, Some(Completed), false), (&b, None, false)]),
            Readiness::Ready
        );
        assert_eq!(
            readiness([(&a, Some(Pending), false), (&b, Some(Waiting), true)]),
            Readiness::Waiting(2)
        );
        assert_eq!(readiness([(&a, Some(Failed), true)]), Readiness::Ready);
        assert_eq!(
            readiness([(&a, Some(Processing), false), (&b, Some(Cancelled), false)]),
            Readiness::Blocked {
                parent: b.clone(),
                status: Cancelled
            }
        );
        assert_eq!(
            dependency_error(&b, Cancelled),
            "dependency task_1_bbbbbb was cancelled"
        );
    }
}
