//! Building blocks for `TaskStore` implementations; the conformance suite is the contract.
//!
//! [`MemoryStore`](crate::MemoryStore) and [`SqliteStore`](crate::SqliteStore) are built from
//! these modules, and so is any backend in another crate (task-postgres): applying the same
//! rules is what makes every backend behave the same. A backend still has to pass the whole
//! conformance suite (`task_store::testkit`, feature `testkit`); these helpers make that
//! easier, they do not replace it.
//!
//! - [`rules`]: every task operation as a pure function from the stored task to the next one,
//!   plus the checks a backend applies to its input (claims, descriptions, deletions, search).
//! - [`graph`]: dependencies between tasks: creation with parents, releasing, cancelling and
//!   re-arming children, over the [`GraphTx`](graph::GraphTx) a backend provides.
//! - [`guarded`]: creation under an idempotency key or a unique key, over the
//!   [`GuardTx`](guarded::GuardTx) a backend provides.
//! - [`user_rules`]: the input checks and record shapes of users and tokens.
//! - [`schedule_rules`]: new and updated schedules, their ids, and the checks on a firing.
//! - [`fair_claim`]: the [`FairPicker`](fair_claim::FairPicker) that turns due tasks, offered
//!   in due order, into a fair claim.
//! - [`lease_token`]: fresh fencing tokens for claims.
//! - [`clock`]: the wall clock in the unit every timestamp uses.

pub mod clock;
pub mod fair_claim;
pub mod graph;
pub mod guarded;
pub mod lease_token;
pub mod rules;
pub mod schedule_rules;
pub mod user_rules;
