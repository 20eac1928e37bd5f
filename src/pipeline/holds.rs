//! Which planned deletes a `--watch` reconcile holds back, as a controller's
//! work queue backs off per item: an object whose delete failed, that its
//! archive or hook kept, or that a server dry run already sent is not sent
//! again on the next change (which may come every second), but after its own
//! backoff (5 s doubling to 5 minutes), or as soon as it changes (a new
//! resourceVersion). Holding back never deletes anything: a held object is
//! reported skipped with the reason, and its release wakes the watch. Pure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::inventory::Snapshot;
use crate::plan::Action;
use crate::report::{CleanupReport, ItemResult};

pub(super) const FIRST_HOLD: Duration = Duration::from_secs(5);
pub(super) const MAX_HOLD: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
struct Hold {
    /// The object's resourceVersion when it was last tried.
    version: Box<str>,
    until: Instant,
    delay: Duration,
    /// What happened to it, for the reason of the rows that hold it back.
    what: String,
}

#[derive(Debug, Default)]
pub(super) struct Holds {
    by_uid: HashMap<Box<str>, Hold>,
}

impl Holds {
    /// The planned deletes of `snap` to hold back at `now` (uid → reason):
    /// unchanged since they were tried, and within their backoff.
    pub(super) fn held(&self, snap: &Snapshot, now: Instant) -> HashMap<String, String> {
        snap.pods
            .iter()
            .chain(&snap.jobs)
            .filter_map(|c| {
                let h = self.by_uid.get(&*c.uid)?;
                (h.version == c.resource_version && now < h.until).then(|| {
                    let left = h.until.saturating_duration_since(now).as_secs().max(1);
                    let reason = format!(
                        "held back: {}; tried again in {left}s or when it changes",
                        h.what
                    );
                    (c.uid.to_string(), reason)
                })
            })
            .collect()
    }

    /// After reconcile `number`: what failed, was kept by its archive or hook,
    /// or was sent as a server dry run is held (twice as long as before if it
    /// was already); what was held back stays held; the rest is forgotten.
    pub(super) fn record(&mut self, report: &CleanupReport, number: u64, now: Instant) {
        let mut next = HashMap::new();
        for i in &report.items {
            let c = &i.candidate;
            let before = self.by_uid.remove(&*c.uid);
            let what = match (i.action, i.result) {
                (Action::Delete, ItemResult::Failed) => "its delete failed",
                (Action::Delete, ItemResult::Conflict) => "its delete met a conflict",
                (Action::Delete, ItemResult::Kept) => "its archive or hook kept it",
                (Action::Delete, ItemResult::WouldDelete) => "a server dry run sent its delete",
                (Action::Skip, ItemResult::Skipped) => {
                    // Held back this time: the hold stands.
                    if let Some(h) = before.filter(|h| h.version == c.resource_version) {
                        next.insert(c.uid.clone(), h);
                    }
                    continue;
                }
                _ => continue,
            };
            let delay = before.map_or(FIRST_HOLD, |h| (h.delay * 2).min(MAX_HOLD));
            next.insert(
                c.uid.clone(),
                Hold {
                    version: c.resource_version.clone(),
                    until: now + delay,
                    delay,
                    what: format!("in reconcile {number} {what}"),
                },
            );
        }
        self.by_uid = next;
    }

    /// When the first hold ends: the watch reconciles then.
    pub(super) fn next_release(&self) -> Option<Instant> {
        self.by_uid.values().map(|h| h.until).min()
    }

    /// How long the longest-held object of the last reconcile waits.
    pub(super) fn longest(&self) -> Option<Duration> {
        self.by_uid.values().map(|h| h.delay).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::Outcome;
    use crate::model::fixtures::*;
    use crate::model::{Candidate, Phase};
    use crate::request::Mode;
    use std::sync::Arc;

    fn candidate(name: &str, version: &str) -> Candidate {
        let mut c = pod(name, Phase::Succeeded, 0);
        c.resource_version = version.into();
        c
    }

    fn report(cands: &[Candidate], went: &[(&str, Outcome)]) -> CleanupReport {
        crate::pipeline::fixtures::report(Mode::Apply, cands, went)
    }

    fn snap(cands: &[Candidate]) -> Snapshot {
        Snapshot {
            pods: cands.iter().cloned().map(Arc::new).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_failed_or_kept_delete_waits_its_backoff_unless_the_object_changes() {
        let t0 = Instant::now();
        let cands = [
            candidate("failed", "1"),
            candidate("vetoed", "1"),
            candidate("went", "1"),
        ];
        let mut h = Holds::default();
        let went = [
            ("failed", Outcome::Failed),
            ("vetoed", Outcome::Kept { failure: false }),
            ("went", Outcome::Deleted),
        ];
        h.record(&report(&cands, &went), 1, t0);
        assert_eq!(h.next_release(), Some(t0 + FIRST_HOLD));
        let held = h.held(&snap(&cands), t0 + Duration::from_secs(1));
        let mut uids: Vec<&str> = held.keys().map(String::as_str).collect();
        uids.sort();
        assert_eq!(uids, ["uid-failed", "uid-vetoed"]);
        assert!(
            held["uid-failed"].contains("in reconcile 1 its delete failed; tried again in 4s"),
            "{held:?}"
        );
        // Changed since (a new resourceVersion): tried again at once.
        let changed = [candidate("failed", "2"), candidate("vetoed", "1")];
        assert_eq!(h.held(&snap(&changed), t0).len(), 1);
        // The backoff over: tried again.
        assert!(h.held(&snap(&cands), t0 + FIRST_HOLD).is_empty());
    }

    #[test]
    fn a_hold_doubles_each_time_and_stands_while_held_back() {
        let t0 = Instant::now();
        let c = [candidate("failed", "1")];
        let mut h = Holds::default();
        h.record(&report(&c, &[("failed", Outcome::Failed)]), 1, t0);
        h.record(&report(&c, &[("failed", Outcome::Failed)]), 2, t0);
        assert_eq!(h.longest(), Some(FIRST_HOLD * 2));
        // Held back in reconcile 3 (a skipped row): the hold is unchanged.
        let mut held_back = report(&c, &[]);
        held_back.items[0].action = Action::Skip;
        held_back.items[0].result = ItemResult::Skipped;
        h.record(&held_back, 3, t0);
        assert_eq!(h.longest(), Some(FIRST_HOLD * 2));
        for n in 4..20 {
            h.record(&report(&c, &[("failed", Outcome::Failed)]), n, t0);
        }
        assert_eq!(h.longest(), Some(MAX_HOLD));
        // Deleted at last, or no longer planned: forgotten.
        h.record(&report(&c, &[("failed", Outcome::Deleted)]), 21, t0);
        assert_eq!(h.next_release(), None);
    }
}
