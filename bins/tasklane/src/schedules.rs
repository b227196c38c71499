//! The `schedule` commands: the same checks and store as `POST /api/schedules`, straight on
//! the database. A running server notices a change within its scheduler's longest sleep
//! (30 s), since the edit does not pass through its process.

use std::sync::Arc;

use anyhow::Context;
use task_http::auth::accounts;
use task_runtime::testing::register_test_tasks;
use task_runtime::{Registry, SchedulerConfig, Schedules, SystemClock};
use task_store::ScheduleSpec;

use crate::cli::ScheduleCommand;
use crate::database::Database;
use crate::serve::quiz_handlers;

/// Runs a `schedule` command.
pub async fn schedule(database: Database, command: ScheduleCommand) -> anyhow::Result<()> {
    // The task types a server can run: the quiz types, and the test types `--test-tasks` adds.
    let registry = register_test_tasks(
        quiz_handlers(
            Arc::clone(&database.questions),
            Arc::clone(&database.users),
            None,
        )?
        .register(Registry::new()),
    );
    let task_types = registry.task_types().map(str::to_owned).collect();
    let schedules = Schedules::new(
        database.tasks,
        database.schedules,
        Some(task_types),
        SchedulerConfig::default(),
        Arc::new(SystemClock),
    )?;
    match command {
        ScheduleCommand::Add {
            user,
            name,
            expression,
            task_type,
            timezone,
            params,
            label,
            overlap,
            catch_up,
        } => {
            let user = accounts::normalize_email(&user)?;
            let mut spec = ScheduleSpec {
                timezone,
                label,
                overlap: overlap.parse().context("--overlap")?,
                catch_up: catch_up.parse().context("--catch-up")?,
                ..ScheduleSpec::new(name, expression, task_type)
            };
            if let Some(params) = params {
                spec.params = serde_json::from_str(&params).context("--params must be JSON")?;
            }
            let schedule = schedules
                .create(&user, spec)
                .await
                .context("cannot create the schedule")?;
            println!("{}", schedule.id);
        }
        ScheduleCommand::List { user } => {
            let user = user.map(|u| accounts::normalize_email(&u)).transpose()?;
            for schedule in schedules
                .list(user.as_deref())
                .await
                .context("cannot list schedules")?
            {
                let next = schedules
                    .next_fire_times(&schedule, 1)
                    .ok()
                    .and_then(|times| times.first().copied())
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map_or_else(|| "-".to_owned(), |at| at.to_rfc3339());
                let spec = &schedule.spec;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    schedule.id,
                    schedule.user_id,
                    if spec.paused { "paused" } else { "active" },
                    spec.expression,
                    spec.timezone,
                    spec.task_type,
                    next,
                    spec.name
                );
            }
        }
        ScheduleCommand::Pause { id } => {
            schedules
                .set_paused(&id, true)
                .await
                .with_context(|| format!("cannot pause schedule {id:?}"))?;
            println!("Paused {id}");
        }
        ScheduleCommand::Resume { id } => {
            schedules
                .set_paused(&id, false)
                .await
                .with_context(|| format!("cannot resume schedule {id:?}"))?;
            println!("Resumed {id}");
        }
        ScheduleCommand::Remove { id } => {
            schedules
                .delete(&id)
                .await
                .with_context(|| format!("cannot remove schedule {id:?}"))?;
            println!("Removed {id}");
        }
    }
    Ok(())
}
