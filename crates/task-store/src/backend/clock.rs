//! Wall-clock time in the unit every task timestamp uses: `task_core`'s clock, re-exported
//! here where backends in other crates have always found it.

pub use task_core::now_millis;
