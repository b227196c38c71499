//! Tests of the real `task-http` binary: account commands, first run, shutdown on SIGTERM, the
//! browser-side suite run against it, several instances sharing one PostgreSQL database, NUL in
//! listing filters on both backends, and the fault suite (crashes, shutdown under load, zombie
//! workers, hostile clients, a full disk, a provider echoing its key).

mod accounts;
mod browser;
mod cluster;
mod faults;
mod multi_instance;
mod nul_filters;
mod process;
mod schedules;
mod serve;
mod storm;
mod workflow_crash;
