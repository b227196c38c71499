//! Schedules: recurring tasks. [`Cadence`] turns a schedule's expression and zone into fire
//! times; [`plan`] decides, purely, what a schedule does at a given moment (its policies);
//! [`Schedules`] checks and stores schedules for embedders and the HTTP edge, and runs the
//! scheduler loop that fires what is due through `task_store::ScheduleStore`, whose unique key
//! per (schedule, fire time) makes each firing happen once across instances; the run cleaner
//! ([`Schedules::start_run_cleaner`]) deletes old run records.

mod cadence;
mod plan;
mod run_cleaner;
mod scheduler;
mod service;

pub use cadence::{parse_timezone, Cadence, MIN_SCHEDULE_INTERVAL};
pub use plan::{overlap_action, plan, OverlapAction, Plan};
pub use run_cleaner::{
    RunCleanerConfig, DEFAULT_RUN_CLEAN_BATCH_SIZE, DEFAULT_RUN_CLEAN_INTERVAL,
    DEFAULT_RUN_RETENTION,
};
pub use scheduler::{SchedulerConfig, DEFAULT_SCHEDULER_MAX_SLEEP, DEFAULT_SCHEDULER_ON_TIME};
pub use service::{Clock, Schedules, SystemClock};
