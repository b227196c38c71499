//! End-to-end tests of the HTTP edge: a real server on 127.0.0.1:0 over SQLite, the worker
//! runtime running the test task types (or the quiz task types against fake AI providers), and
//! a hand-written client.

mod support;

mod analytics;
mod auth_matrix;
mod bulk;
mod contract;
mod errors;
mod hardening;
mod idempotency;
mod limits;
mod pages;
mod partials;
mod priorities;
mod providers;
mod quiz;
mod rate_limits;
mod schedules;
mod server;
mod session;
mod spec_edges;
mod sse;
mod task_counts;
mod tasks;
mod workflow_stream;
mod workflows;
mod ws;
