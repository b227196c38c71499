//! Integration tests of ai-providers: every hosted provider against the fake provider server,
//! the offline provider on a paused clock, and configuration and registry rules.

mod config;
mod errors;
mod hosted;
mod live;
mod offline;
mod output;
mod streaming;
mod support;
