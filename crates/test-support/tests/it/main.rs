//! Tests of the fake provider itself: its schemas load, its answers are what the real services
//! send, and its checks catch bad requests (a fake that accepts everything would prove nothing).

mod envelopes;
mod fake;
mod streams;
