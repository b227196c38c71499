//! Tests of the real `task-http` binary: account commands, first run, shutdown on SIGTERM, the
//! browser-side suite run against it, and several instances sharing one PostgreSQL database.

mod accounts;
mod browser;
mod cluster;
mod multi_instance;
mod process;
mod serve;
mod workflow_crash;
