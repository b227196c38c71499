//! The clock of a maintenance loop (rescuer, cleaner, rollups, search indexer): a tick every
//! interval until the runtime stops, and a pass of work that stops with it.
//!
//! A tick that comes late (a long pass, a busy machine) delays the next one instead of firing a
//! burst to catch up: a maintenance pass does all that is due whenever it runs.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// A maintenance loop's ticks, ending when `stop` fires.
pub(crate) struct Ticks {
    ticks: Interval,
    stop: CancellationToken,
}

impl Ticks {
    /// Ticks every `interval`, the first at once.
    pub(crate) fn every(interval: Duration, stop: CancellationToken) -> Self {
        Self::starting(tokio::time::interval(interval), stop)
    }

    /// Ticks every `interval`, the first one interval from now (a loop with nothing to do at
    /// startup).
    pub(crate) fn every_after_one(interval: Duration, stop: CancellationToken) -> Self {
        Self::starting(
            tokio::time::interval_at(Instant::now() + interval, interval),
            stop,
        )
    }

    fn starting(mut ticks: Interval, stop: CancellationToken) -> Self {
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { ticks, stop }
    }

    /// Waits for the next tick; `false` once `stop` has fired (then the loop ends).
    pub(crate) async fn tick(&mut self) -> bool {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => false,
            _ = self.ticks.tick() => true,
        }
    }

    /// Runs `work` to its end, or drops it and returns `None` when `stop` fires first.
    pub(crate) async fn unless_stopped<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => None,
            output = work => Some(output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_until_stopped_and_stops_work_in_flight() {
        let stop = CancellationToken::new();
        let mut ticks = Ticks::every(Duration::from_secs(60), stop.clone());
        let started = Instant::now();
        assert!(ticks.tick().await, "the first tick comes at once");
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(ticks.unless_stopped(async { 7 }).await, Some(7));

        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            canceller.cancel();
        });
        let never = std::future::pending::<()>();
        assert_eq!(
            ticks.unless_stopped(never).await,
            None,
            "work stops with the loop"
        );
        assert!(
            !ticks.tick().await,
            "no tick after stop, though one is due in a minute"
        );
    }

    #[tokio::test]
    async fn a_loop_with_nothing_to_do_at_startup_waits_one_interval() {
        let interval = Duration::from_millis(200);
        let mut ticks = Ticks::every_after_one(interval, CancellationToken::new());
        let started = Instant::now();
        assert!(ticks.tick().await);
        assert!(started.elapsed() >= interval, "{:?}", started.elapsed());
    }
}
