//! Tests of the real `task-http` binary: account commands, first run, and shutdown on SIGTERM.

mod accounts;
mod process;
mod serve;
