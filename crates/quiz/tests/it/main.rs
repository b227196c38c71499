//! Integration tests of the quiz crate: the question stores' conformance suite, and the three
//! handlers run through the real runtime on both backends against fake provider servers and the
//! offline provider. Nothing here reaches the network.

mod emoji;
mod generation;
mod offline;
mod store;
mod support;
mod validation;
