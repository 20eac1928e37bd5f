//! When `--watch` reconciles, decided without I/O: after a burst of changes
//! has been quiet for `DEBOUNCE` (or has gone on for `MAX_DELAY`), at the
//! moment the next object becomes eligible (or a held-back delete is due
//! again, see `holds.rs`), after a backoff when the last reconcile stopped
//! on an error, and once every watch has been listed (the start, the
//! `--interval` re-list, the recovery after a failed watch). Never while a
//! watch is out of sync. Pure: the clock is a parameter.

use std::time::{Duration, Instant};

use crate::metrics::Trigger;

/// A burst of changes is planned once it has been quiet this long…
pub(super) const DEBOUNCE: Duration = Duration::from_millis(250);
/// …or once it has gone on this long: steady churn cannot starve a re-plan.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(1);
/// The first retry after a reconcile that stopped on an error (no report:
/// the API server unreachable…); each next one waits twice as long, up to
/// `MAX_RETRY` (or the interval, if shorter).
pub(super) const FIRST_RETRY: Duration = Duration::from_secs(5);
pub(super) const MAX_RETRY: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(super) struct Schedule {
    interval: Duration,
    /// The first and the latest change not yet planned.
    changes: Option<(Instant, Instant)>,
    /// Every watch was listed (again): reconcile once in sync.
    listed: Option<Trigger>,
    /// A reconcile has run (the first list is the start, later ones relists).
    started: bool,
    /// The next object becomes eligible then.
    timer: Option<Instant>,
    retry: Option<Instant>,
    retry_delay: Duration,
    /// The next full re-list.
    relist_at: Instant,
}

impl Schedule {
    pub(super) fn new(interval: Duration, now: Instant) -> Self {
        Schedule {
            interval,
            changes: None,
            listed: None,
            started: false,
            timer: None,
            retry: None,
            retry_delay: FIRST_RETRY.min(interval),
            relist_at: now + interval,
        }
    }

    /// Records changed.
    pub(super) fn changed(&mut self, now: Instant) {
        let first = self.changes.map_or(now, |(first, _)| first);
        self.changes = Some((first, now));
    }

    /// Every watch is listed and in sync again.
    pub(super) fn listed(&mut self) {
        self.listed = Some(if self.started {
            Trigger::Relist
        } else {
            Trigger::Start
        });
    }

    /// What a reconcile started now would be for (None: no reconcile now).
    pub(super) fn due(&self, now: Instant, in_sync: bool) -> Option<Trigger> {
        if !in_sync {
            return None;
        }
        // After an error everything waits for the retry: changes would only
        // meet the same error (the API server down, --max-delete exceeded).
        if let Some(at) = self.retry {
            return (now >= at).then_some(Trigger::Retry);
        }
        if let Some(t) = self.listed {
            return Some(t);
        }
        if self
            .changes
            .is_some_and(|_| self.settled().is_some_and(|at| now >= at))
        {
            return Some(Trigger::Change);
        }
        if self.timer.is_some_and(|at| now >= at) {
            return Some(Trigger::Timer);
        }
        None
    }

    /// A reconcile starts: it plans from everything known now.
    pub(super) fn starting(&mut self) {
        self.started = true;
        self.listed = None;
        self.changes = None;
        self.timer = None;
        self.retry = None;
    }

    /// A reconcile ended (`ok`: it did not stop on an error); `next`: when
    /// it is next due by the clock (an object eligible, a hold over).
    pub(super) fn finished(&mut self, now: Instant, ok: bool, next: Option<Instant>) {
        self.timer = next;
        if ok {
            self.retry_delay = FIRST_RETRY.min(self.interval);
        } else {
            self.retry = Some(now + self.retry_delay);
            self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY).min(self.interval);
        }
    }

    /// The delay before the retry a failed reconcile has set.
    pub(super) fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.retry.map(|at| at.saturating_duration_since(now))
    }

    /// Whether the full re-list is due; if so, the next one is an interval
    /// from now.
    pub(super) fn relist_due(&mut self, now: Instant) -> bool {
        if now < self.relist_at {
            return false;
        }
        self.relist_at = now + self.interval;
        true
    }

    /// When something is next due: the loop sleeps until then, or until a
    /// change arrives. `can_start`: a reconcile could start (none is in
    /// flight and every watch is in sync); else only the re-list is due, and
    /// what ends the wait is the reconcile's end or the watch's list.
    pub(super) fn wake(&self, can_start: bool) -> Instant {
        let due = match (can_start, self.retry) {
            (false, _) => None,
            (true, Some(retry)) => Some(retry),
            (true, None) => [self.settled(), self.timer].into_iter().flatten().min(),
        };
        due.map_or(self.relist_at, |d| d.min(self.relist_at))
    }

    /// When the pending changes are planned.
    fn settled(&self) -> Option<Instant> {
        self.changes
            .map(|(first, last)| (last + DEBOUNCE).min(first + MAX_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_planned_before_every_watch_is_in_sync_then_the_start() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(3600), t0);
        s.changed(t0);
        assert_eq!(s.due(t0 + ms(5000), false), None);
        s.listed();
        assert_eq!(s.due(t0, false), None);
        assert_eq!(s.due(t0, true), Some(Trigger::Start));
        s.starting();
        s.finished(t0, true, None);
        assert_eq!(
            s.due(t0 + ms(5000), true),
            None,
            "the start covered the changes"
        );
        s.listed();
        assert_eq!(s.due(t0, true), Some(Trigger::Relist));
    }

    #[test]
    fn a_burst_waits_until_quiet_or_until_it_went_on_too_long() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(3600), t0);
        s.starting();
        s.changed(t0);
        assert_eq!(s.due(t0 + ms(200), true), None);
        s.changed(t0 + ms(200));
        assert_eq!(s.due(t0 + ms(400), true), None, "quiet for 200 ms only");
        assert_eq!(s.due(t0 + ms(450), true), Some(Trigger::Change));
        assert_eq!(s.wake(true), t0 + ms(450));
        // While a reconcile runs (or a watch lists), its end wakes the loop.
        assert_eq!(s.wake(false), t0 + Duration::from_secs(3600));
        // Steady churn, a change every 100 ms: planned after a second.
        let mut s = Schedule::new(Duration::from_secs(3600), t0);
        s.starting();
        for i in 0..20 {
            s.changed(t0 + ms(100 * i));
        }
        assert_eq!(s.due(t0 + ms(1000), true), Some(Trigger::Change));
        s.starting();
        assert_eq!(s.due(t0 + ms(1000), true), None);
    }

    #[test]
    fn the_timer_fires_at_the_next_eligibility_and_a_failure_backs_off() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(3600), t0);
        s.starting();
        s.finished(t0, true, Some(t0 + ms(3000)));
        assert_eq!(s.wake(true), t0 + ms(3000));
        assert_eq!(s.due(t0 + ms(2999), true), None);
        assert_eq!(s.due(t0 + ms(3000), true), Some(Trigger::Timer));
        s.starting();
        s.finished(t0 + ms(3000), false, Some(t0 + ms(4000)));
        assert_eq!(s.retry_in(t0 + ms(3000)), Some(FIRST_RETRY));
        // Changes, timers and lists wait for the retry after an error.
        s.changed(t0 + ms(3100));
        s.listed();
        assert_eq!(s.due(t0 + ms(5000), true), None);
        assert_eq!(s.wake(true), t0 + ms(3000) + FIRST_RETRY);
        assert_eq!(
            s.due(t0 + ms(3000) + FIRST_RETRY, true),
            Some(Trigger::Retry)
        );
        s.starting();
        s.finished(t0, false, None);
        assert_eq!(s.retry_in(t0), Some(FIRST_RETRY * 2), "twice as long");
        for _ in 0..20 {
            s.starting();
            s.finished(t0, false, None);
        }
        assert_eq!(s.retry_in(t0), Some(MAX_RETRY));
        s.starting();
        s.finished(t0, true, None);
        s.starting();
        s.finished(t0, false, None);
        assert_eq!(s.retry_in(t0), Some(FIRST_RETRY), "a success resets it");
        // Never longer than the interval.
        let mut short = Schedule::new(Duration::from_secs(2), t0);
        short.finished(t0, false, None);
        assert_eq!(short.retry_in(t0), Some(Duration::from_secs(2)));
    }

    #[test]
    fn the_relist_comes_every_interval() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(600), t0);
        assert_eq!(s.wake(true), t0 + Duration::from_secs(600));
        assert!(!s.relist_due(t0 + Duration::from_secs(599)));
        assert!(s.relist_due(t0 + Duration::from_secs(600)));
        assert!(!s.relist_due(t0 + Duration::from_secs(601)));
        assert_eq!(s.wake(true), t0 + Duration::from_secs(1200));
    }
}
