//! Integration tests of the quiz crate: the question stores' conformance suite (memory, SQLite,
//! and PostgreSQL when `TASKLANE_TEST_POSTGRES` names a server), and the three handlers run
//! through the real runtime on memory and SQLite against fake provider servers and the offline
//! provider. Nothing here reaches the network.

mod emoji;
mod generation;
mod offline;
mod postgres;
mod provider_limits;
mod store;
mod streaming;
mod support;
mod upgrade;
mod validation;
