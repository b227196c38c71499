//! Tests of the real `task-http` binary: account commands, first run, shutdown on SIGTERM, and
//! the browser-side suite run against it.

mod accounts;
mod browser;
mod process;
mod serve;
