//! Integration tests for the PostgreSQL store. They need a server: set
//! `TASKLANE_TEST_POSTGRES` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it every
//! test prints why it is skipped and passes. Each test works in its own fresh schema, so they
//! run in parallel and leave nothing behind.

mod analytics;
mod completion_groups;
mod conformance;
mod cross_instance;
mod heads;
mod migrations;
mod support;
