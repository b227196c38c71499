//! What a schedule does at a moment, decided without I/O so every policy is tested against
//! explicit times: which fire time (if any) is due, what catch-up does with times missed
//! while no scheduler ran, and what the overlap policy does with unfinished earlier runs.

use std::time::Duration;

use task_core::{TaskId, UnixMillis};
use task_store::{CatchUpPolicy, OverlapPolicy, Schedule};

use super::Cadence;
use crate::clock::before;

/// What to do with one schedule now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Fire times due now, oldest first: fire each (subject to the overlap policy).
    pub fire: Vec<UnixMillis>,
    /// Fire times up to this one are passed by without firing (catch-up `none` after
    /// downtime): record them as handled.
    pub pass_through: Option<UnixMillis>,
    /// When to look at this schedule again: its next fire time after the ones above, or `None`
    /// when it has none (paused, ended, or a pattern that never matches again).
    pub next: Option<UnixMillis>,
}

/// The most on-time fire times one pass fires for one schedule (an every-second schedule after a
/// 60 s stall); older ones are downtime.
const MAX_ON_TIME: usize = 120;

/// Decides what `schedule` does at `now`. A fire time is due once it is at or before `now`
/// and after the schedule's `fired_through`. Due times at most `on_time` old are all fired, in
/// order: a slow pass or a short stall loses none. Older ones are downtime: catch-up `latest`
/// fires the most recent of them once (when no on-time time is due), `none` passes them by.
pub fn plan(schedule: &Schedule, cadence: &Cadence, now: UnixMillis, on_time: Duration) -> Plan {
    let spec = &schedule.spec;
    if spec.paused {
        return Plan {
            fire: Vec::new(),
            pass_through: None,
            next: None,
        };
    }
    let horizon = spec.end_at.map_or(now, |end| end.min(now));
    let window_start = before(now, on_time);
    let mut fire = Vec::new();
    let mut cursor = schedule.fired_through.max(window_start.saturating_sub(1));
    while fire.len() < MAX_ON_TIME {
        match cadence.next_after(cursor) {
            Some(at) if at <= horizon => {
                fire.push(at);
                cursor = at;
            }
            _ => break,
        }
    }
    let missed = cadence
        .latest_at_or_before(horizon.min(window_start.saturating_sub(1)))
        .filter(|&latest| latest > schedule.fired_through);
    let mut pass_through = None;
    if let (true, Some(latest)) = (fire.is_empty(), missed) {
        match spec.catch_up {
            CatchUpPolicy::Latest => fire.push(latest),
            CatchUpPolicy::None => pass_through = Some(latest),
        }
    }
    let handled = fire
        .last()
        .copied()
        .or(pass_through)
        .unwrap_or(schedule.fired_through)
        .max(now);
    let next = cadence
        .next_after(handled)
        .filter(|&next| spec.end_at.is_none_or(|end| next <= end));
    Plan {
        fire,
        pass_through,
        next,
    }
}

/// What the overlap policy makes of a due fire time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlapAction {
    /// Create the task.
    Fire,
    /// Record the time as skipped; no task.
    Skip,
    /// Ask these unfinished tasks to stop, then create the task.
    CancelThenFire(Vec<TaskId>),
}

/// Applies `policy` given the schedule's unfinished (`pending` or `processing`) tasks.
pub fn overlap_action(policy: OverlapPolicy, unfinished: Vec<TaskId>) -> OverlapAction {
    if unfinished.is_empty() {
        return OverlapAction::Fire;
    }
    match policy {
        OverlapPolicy::Skip => OverlapAction::Skip,
        OverlapPolicy::Allow => OverlapAction::Fire,
        OverlapPolicy::CancelPrevious => OverlapAction::CancelThenFire(unfinished),
    }
}

#[cfg(test)]
mod tests {
    use task_store::ScheduleSpec;

    use super::*;

    const MINUTE: i64 = 60_000;
    const DAY: i64 = 24 * 60 * MINUTE;
    const ON_TIME: Duration = Duration::from_secs(60);
    /// 2026-12-06T00:00:00Z, a Sunday.
    const MIDNIGHT: i64 = 1_796_515_200_000;

    fn schedule(
        expression: &str,
        fired_through: UnixMillis,
        change: fn(&mut ScheduleSpec),
    ) -> (Schedule, Cadence) {
        let mut spec = ScheduleSpec::new("s", expression, "quiz");
        change(&mut spec);
        let cadence = Cadence::parse(&spec.expression, &spec.timezone, MIDNIGHT).unwrap();
        let schedule = Schedule {
            id: "sched_1_00".into(),
            user_id: "ada".into(),
            spec,
            fired_through,
            version: 1,
            created_at: MIDNIGHT,
            updated_at: MIDNIGHT,
        };
        (schedule, cadence)
    }

    fn check(
        expression: &str,
        fired_through: UnixMillis,
        change: fn(&mut ScheduleSpec),
        now: UnixMillis,
        expected: (Vec<UnixMillis>, Option<UnixMillis>, Option<UnixMillis>),
    ) {
        let (schedule, cadence) = schedule(expression, fired_through, change);
        let plan = plan(&schedule, &cadence, now, ON_TIME);
        assert_eq!(
            (plan.fire, plan.pass_through, plan.next),
            expected,
            "{expression} fired through {fired_through} at {now}"
        );
    }

    fn nothing(_: &mut ScheduleSpec) {}

    #[test]
    fn fires_exactly_at_minute_boundaries() {
        // One millisecond early: nothing due, wake at the boundary.
        check(
            "* * * * *",
            MIDNIGHT,
            nothing,
            MIDNIGHT + MINUTE - 1,
            (vec![], None, Some(MIDNIGHT + MINUTE)),
        );
        // At the boundary: fire it, then wait for the next.
        check(
            "* * * * *",
            MIDNIGHT,
            nothing,
            MIDNIGHT + MINUTE,
            (vec![MIDNIGHT + MINUTE], None, Some(MIDNIGHT + 2 * MINUTE)),
        );
        // Already fired: only the next.
        check(
            "* * * * *",
            MIDNIGHT + MINUTE,
            nothing,
            MIDNIGHT + MINUTE + 5,
            (vec![], None, Some(MIDNIGHT + 2 * MINUTE)),
        );
        // A late wake (within the on-time window) still fires the time.
        check(
            "* * * * *",
            MIDNIGHT,
            nothing,
            MIDNIGHT + MINUTE + 59_000,
            (vec![MIDNIGHT + MINUTE], None, Some(MIDNIGHT + 2 * MINUTE)),
        );
    }

    #[test]
    fn a_short_stall_fires_every_time_it_passed() {
        // The pass that should have run at 00:01:00 runs at 00:01:03: the four seconds due
        // are all on time, so all fire, oldest first.
        check(
            "* * * * * *",
            MIDNIGHT + MINUTE - 1000,
            nothing,
            MIDNIGHT + MINUTE + 3000,
            (
                vec![
                    MIDNIGHT + MINUTE,
                    MIDNIGHT + MINUTE + 1000,
                    MIDNIGHT + MINUTE + 2000,
                    MIDNIGHT + MINUTE + 3000,
                ],
                None,
                Some(MIDNIGHT + MINUTE + 4000),
            ),
        );
        // After ten minutes down only the last minute counts as on time: its sixty seconds
        // fire, the nine minutes before them never.
        let (schedule, cadence) = schedule("* * * * * *", MIDNIGHT, nothing);
        let plan = plan(&schedule, &cadence, MIDNIGHT + 10 * MINUTE, ON_TIME);
        assert_eq!(plan.fire.len(), 61);
        assert_eq!(plan.fire[0], MIDNIGHT + 9 * MINUTE);
        assert_eq!(plan.fire[60], MIDNIGHT + 10 * MINUTE);
    }

    #[test]
    fn a_three_day_outage_catches_up_once_or_not_at_all() {
        // Daily at 06:00 UTC; the scheduler was down from just after midnight for three days
        // and comes back at 12:00 on day 3: three times were missed.
        let back = MIDNIGHT + 3 * DAY + 12 * 60 * MINUTE;
        let latest_missed = MIDNIGHT + 3 * DAY + 6 * 60 * MINUTE;
        let next = MIDNIGHT + 4 * DAY + 6 * 60 * MINUTE;
        // `latest`: the most recent missed time fires, once; the older two never.
        check(
            "0 6 * * *",
            MIDNIGHT,
            nothing,
            back,
            (vec![latest_missed], None, Some(next)),
        );
        // `none`: nothing fires; the missed times are passed by.
        check(
            "0 6 * * *",
            MIDNIGHT,
            |s| s.catch_up = CatchUpPolicy::None,
            back,
            (vec![], Some(latest_missed), Some(next)),
        );
        // After the catch-up firing is recorded, nothing more is due.
        check(
            "0 6 * * *",
            latest_missed,
            nothing,
            back,
            (vec![], None, Some(next)),
        );
        // `none` still fires a time that is merely a little late.
        check(
            "0 6 * * *",
            MIDNIGHT,
            |s| s.catch_up = CatchUpPolicy::None,
            MIDNIGHT + 6 * 60 * MINUTE + 1_000,
            (
                vec![MIDNIGHT + 6 * 60 * MINUTE],
                None,
                Some(MIDNIGHT + DAY + 6 * 60 * MINUTE),
            ),
        );
    }

    #[test]
    fn paused_and_ended_schedules_fire_nothing_after() {
        check(
            "* * * * *",
            MIDNIGHT,
            |s| s.paused = true,
            MIDNIGHT + 10 * MINUTE,
            (vec![], None, None),
        );
        // Ends at 00:02: the 00:02 time is the last; at 00:05 it fires (catch-up) and then
        // there is no next.
        check(
            "* * * * *",
            MIDNIGHT,
            |s| s.end_at = Some(MIDNIGHT + 2 * MINUTE),
            MIDNIGHT + 5 * MINUTE,
            (vec![MIDNIGHT + 2 * MINUTE], None, None),
        );
        check(
            "* * * * *",
            MIDNIGHT + 2 * MINUTE,
            |s| s.end_at = Some(MIDNIGHT + 2 * MINUTE),
            MIDNIGHT + 5 * MINUTE,
            (vec![], None, None),
        );
    }

    #[test]
    fn intervals_and_zones_plan_alike() {
        check(
            "every 15m",
            MIDNIGHT,
            nothing,
            MIDNIGHT + 15 * MINUTE,
            (
                vec![MIDNIGHT + 15 * MINUTE],
                None,
                Some(MIDNIGHT + 30 * MINUTE),
            ),
        );
        // 06:00 in Stockholm is 05:00 UTC in winter.
        check(
            "0 6 * * *",
            MIDNIGHT,
            |s| s.timezone = "Europe/Stockholm".into(),
            MIDNIGHT + 5 * 60 * MINUTE,
            (
                vec![MIDNIGHT + 5 * 60 * MINUTE],
                None,
                Some(MIDNIGHT + DAY + 5 * 60 * MINUTE),
            ),
        );
    }

    #[test]
    fn overlap_policies() {
        let running: TaskId = "task_1_00000000000000000000".parse().unwrap();
        let cases = [
            (OverlapPolicy::Skip, vec![], OverlapAction::Fire),
            (
                OverlapPolicy::Skip,
                vec![running.clone()],
                OverlapAction::Skip,
            ),
            (
                OverlapPolicy::Allow,
                vec![running.clone()],
                OverlapAction::Fire,
            ),
            (OverlapPolicy::CancelPrevious, vec![], OverlapAction::Fire),
            (
                OverlapPolicy::CancelPrevious,
                vec![running.clone()],
                OverlapAction::CancelThenFire(vec![running.clone()]),
            ),
        ];
        for (policy, unfinished, expected) in cases {
            assert_eq!(overlap_action(policy, unfinished), expected, "{policy}");
        }
    }
}
