//! One timer per stream for both keep-alives and the monitoring deadline, re-armed lazily: a
//! busy stream only records when it last wrote, and the timer wheel is touched at most once
//! per keep-alive interval instead of once per event.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Why the timer woke the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Nothing was written for a whole interval: send a keep-alive.
    KeepAlive,
    /// The stream's deadline passed.
    Deadline,
}

/// Keep-alive and deadline timing of one stream.
#[derive(Debug)]
pub(crate) struct IdleTimer {
    sleep: Pin<Box<Sleep>>,
    interval: Duration,
    last_frame: Instant,
    deadline: Option<Instant>,
}

impl IdleTimer {
    /// A timer for a stream that just wrote its first frame.
    pub(crate) fn new(interval: Duration, deadline: Option<Instant>) -> Self {
        let now = Instant::now();
        let first = deadline.map_or(now + interval, |deadline| deadline.min(now + interval));
        Self {
            sleep: Box::pin(tokio::time::sleep_until(first)),
            interval,
            last_frame: now,
            deadline,
        }
    }

    /// Records that the stream wrote a frame, which postpones the next keep-alive.
    pub(crate) fn frame_sent(&mut self) {
        self.last_frame = Instant::now();
    }

    /// Waits until a keep-alive is due or the deadline passes. Cancel-safe: dropping the
    /// future loses nothing.
    pub(crate) async fn wait(&mut self) -> Tick {
        loop {
            self.sleep.as_mut().await;
            let now = Instant::now();
            if self.deadline.is_some_and(|deadline| now >= deadline) {
                return Tick::Deadline;
            }
            let due = self.last_frame + self.interval;
            if now >= due {
                self.last_frame = now;
                self.arm(now + self.interval);
                return Tick::KeepAlive;
            }
            // A frame was written since the timer was set: sleep until a whole interval has
            // passed since then.
            self.arm(due);
        }
    }

    fn arm(&mut self, at: Instant) {
        let at = self.deadline.map_or(at, |deadline| at.min(deadline));
        self.sleep.as_mut().reset(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keep_alives_come_after_a_full_idle_interval() {
        let start = Instant::now();
        let mut timer = IdleTimer::new(Duration::from_secs(15), None);
        assert_eq!(timer.wait().await, Tick::KeepAlive);
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        tokio::time::sleep(Duration::from_secs(10)).await;
        timer.frame_sent();
        assert_eq!(timer.wait().await, Tick::KeepAlive);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(40),
            "15 s after the frame at 25 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_wins_over_keep_alives() {
        let start = Instant::now();
        let mut timer = IdleTimer::new(
            Duration::from_secs(15),
            Some(start + Duration::from_secs(40)),
        );
        assert_eq!(timer.wait().await, Tick::KeepAlive);
        assert_eq!(timer.wait().await, Tick::KeepAlive);
        assert_eq!(timer.wait().await, Tick::Deadline);
        assert_eq!(start.elapsed(), Duration::from_secs(40));
    }
}
