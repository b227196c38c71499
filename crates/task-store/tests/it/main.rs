//! Integration tests of task-store: the conformance suite against both backends, SQLite
//! migrations, and what only the SQLite backend does (files, query plans, sibling access).

mod analytics;
mod conformance;
mod migrations;
mod sqlite;
mod support;
