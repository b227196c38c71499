//! The `task-http` binary (wired up by the task-http issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("task-http is not wired up yet")
}
