//! Tests of the real `task-http` binary: account commands, first run, shutdown on SIGTERM, the
//! browser-side suite run against it, several instances sharing one PostgreSQL database, and the
//! fault suite (crashes, shutdown under load, zombie workers, hostile clients).

mod accounts;
mod browser;
mod cluster;
mod faults;
mod multi_instance;
mod process;
mod schedules;
mod serve;
mod storm;
mod workflow_crash;
