//! Planning: turn selected objects into an ordered plan, applying the guards
//! that no strategy may override. Pure.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Candidate, Inventory, Kind};
use crate::select::guard::{guard, Guards};
use crate::select::{Matched, Selected};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    Delete,
    /// Marked `crucible-clean/keep=true`.
    Keep,
    /// Matched, but a guard forbids deleting it now.
    Skip,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanItem {
    pub(crate) candidate: Arc<Candidate>,
    pub(crate) matched_by: Matched,
    pub(crate) action: Action,
    pub(crate) reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Plan {
    pub(crate) items: Vec<PlanItem>,
}

impl Plan {
    pub(crate) fn to_delete(&self) -> impl Iterator<Item = &PlanItem> {
        self.items.iter().filter(|i| i.action == Action::Delete)
    }
    pub(crate) fn delete_count(&self) -> usize {
        self.to_delete().count()
    }
}

/// `plan_with` without retention (unit tests).
#[cfg(test)]
pub(crate) fn plan(selected: Vec<Selected<'_>>, inv: &Inventory, include_running: bool) -> Plan {
    plan_with(selected, inv, &Guards::new(include_running))
}

/// Orders the plan jobs first, then oldest first, so the preview reads like
/// `kubectl get` sorted by age and deletes start with the most stale; every
/// selected object goes through the guards.
pub(crate) fn plan_with(selected: Vec<Selected<'_>>, inv: &Inventory, guards: &Guards) -> Plan {
    // The plan shares the inventory's records (selection hands out plain
    // references to them) rather than copying each one.
    let shared: HashMap<*const Candidate, &Arc<Candidate>> = inv
        .pods
        .iter()
        .chain(&inv.jobs)
        .map(|c| (Arc::as_ptr(c), c))
        .collect();
    let mut items: Vec<PlanItem> = selected
        .into_iter()
        .map(|s| {
            let guard = guard(s.candidate, inv, guards);
            PlanItem {
                candidate: shared
                    .get(&std::ptr::from_ref(s.candidate))
                    .map_or_else(|| Arc::new(s.candidate.clone()), |c| Arc::clone(c)),
                matched_by: s.matched_by,
                action: guard.as_ref().map_or(Action::Delete, |g| {
                    if g.is_keep() {
                        Action::Keep
                    } else {
                        Action::Skip
                    }
                }),
                reason: guard.map(|g| g.reason()).unwrap_or_default(),
            }
        })
        .collect();
    items.sort_by(|a, b| {
        fn key(i: &PlanItem) -> (bool, &str, chrono::DateTime<chrono::Utc>, &str) {
            let c = &*i.candidate;
            (c.kind != Kind::Job, &c.namespace, c.created_at, &c.name)
        }
        key(a).cmp(&key(b))
    });
    Plan { items }
}

/// The reason of an object a person unticked at `-i`'s list.
pub(crate) const DESELECTED: &str = "deselected";

/// `-i`: the planned deletes a person unticked are kept, reason "deselected".
pub(crate) fn deselect(plan: &mut Plan, unticked: &std::collections::HashSet<String>) {
    for item in &mut plan.items {
        if item.action == Action::Delete && unticked.contains(&*item.candidate.uid) {
            item.action = Action::Keep;
            item.reason = DESELECTED.into();
        }
    }
}

/// `--watch`: the planned deletes it holds back this time (uid → reason)
/// are skipped, with the reason.
pub(crate) fn hold_back(plan: &mut Plan, held: &HashMap<String, String>) {
    for item in &mut plan.items {
        if item.action != Action::Delete {
            continue;
        }
        if let Some(reason) = held.get(&*item.candidate.uid) {
            item.action = Action::Skip;
            item.reason = reason.clone();
        }
    }
}

/// Keeps only the items of `fresh` whose uid was confirmed in `confirmed`:
/// used after a slow prompt, when the plan is re-read before execution.
/// What a person unticked stays kept ("deselected").
pub(crate) fn restrict_to(fresh: Plan, confirmed: &Plan) -> (Plan, usize) {
    let ok: std::collections::HashSet<&str> =
        confirmed.to_delete().map(|i| &*i.candidate.uid).collect();
    let unticked: std::collections::HashSet<String> = confirmed
        .items
        .iter()
        .filter(|i| i.action == Action::Keep && i.reason == DESELECTED)
        .map(|i| i.candidate.uid.to_string())
        .collect();
    let before = confirmed.delete_count();
    let mut fresh = fresh;
    deselect(&mut fresh, &unticked);
    let mut items = fresh.items;
    for item in &mut items {
        if item.action == Action::Delete && !ok.contains(&*item.candidate.uid) {
            item.action = Action::Skip;
            item.reason = "appeared after confirmation".into();
        }
    }
    let plan = Plan { items };
    let dropped = before.saturating_sub(plan.delete_count());
    (plan, dropped)
}

#[cfg(test)]
mod strategy_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::{OwnerState, Phase};
    use crate::select::guard::{protection, Protection};
    use crate::select::Criterion;

    fn sel(c: &Candidate) -> Selected<'_> {
        Selected {
            candidate: c,
            matched_by: Matched::of(Criterion::All),
        }
    }

    #[test]
    fn a_plan_item_stays_small() {
        assert!(std::mem::size_of::<PlanItem>() <= 40);
    }

    #[test]
    fn guards_protect_what_must_survive() {
        let running_job = job("job-run", Phase::Active, 0);
        let done_job = job("job-done", Phase::Complete, 0);
        let mut kept = pod("kept", Phase::Succeeded, 1);
        kept.keep = crate::model::Keep::MARKED;
        let mut term = pod("term", Phase::Failed, 2);
        term.terminating = true;
        let of_running = owned_by(pod("of-running", Phase::Failed, 3), &running_job);
        let of_done = owned_by(pod("of-done", Phase::Succeeded, 4), &done_job);
        let running = pod("running", Phase::Running, 5);
        let plain = pod("plain", Phase::Succeeded, 6);
        let inv = Inventory {
            owners: [
                (running_job.uid.to_string(), OwnerState::Unfinished),
                (done_job.uid.to_string(), OwnerState::Finished),
            ]
            .into(),
            ..Default::default()
        };
        let all = [
            &kept,
            &term,
            &of_running,
            &of_done,
            &running,
            &plain,
            &running_job,
        ];
        let p = plan(all.iter().map(|c| sel(c)).collect(), &inv, false);
        let got: Vec<(&str, Action, &str)> = p
            .items
            .iter()
            .map(|i| (&*i.candidate.name, i.action, i.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "job-run",
                    Action::Skip,
                    "not finished (add --include-running)"
                ),
                ("kept", Action::Keep, "crucible-clean/keep=true"),
                ("term", Action::Skip, "terminating"),
                ("of-running", Action::Skip, "job job-run has not finished"),
                ("of-done", Action::Delete, ""),
                (
                    "running",
                    Action::Skip,
                    "not finished (add --include-running)"
                ),
                ("plain", Action::Delete, ""),
            ]
        );
        // --include-running frees running objects, never pods of a running job.
        let p = plan(all.iter().map(|c| sel(c)).collect(), &inv, true);
        let deleted: Vec<&str> = p.to_delete().map(|i| &*i.candidate.name).collect();
        assert_eq!(deleted, ["job-run", "of-done", "running", "plain"]);
    }

    #[test]
    fn retention_holds_only_what_may_otherwise_go() {
        let (held, kept) = (
            pod("held", Phase::Succeeded, 0),
            Candidate {
                keep: crate::model::Keep::MARKED,
                ..pod("kept", Phase::Succeeded, 1)
            },
        );
        let inv = Inventory::default();
        let mut guards = Guards::new(false);
        for c in [&held, &kept] {
            guards
                .retained
                .insert(c.uid.to_string(), "newest of its run".into());
        }
        assert_eq!(
            guard(&held, &inv, &guards),
            Some(Protection::Retained("newest of its run".into()))
        );
        // The keep mark is the stronger, older guard and keeps its own reason.
        assert_eq!(
            guard(&kept, &inv, &guards),
            Some(Protection::Kept(crate::model::Keep::MARKED))
        );
        let p = plan_with(vec![sel(&held)], &inv, &guards);
        assert_eq!(
            (p.items[0].action, p.items[0].reason.as_str()),
            (Action::Skip, "newest of its run")
        );
    }

    #[test]
    fn a_keep_marker_protects_across_ownership() {
        let (j1, j2) = (job("j1", Phase::Complete, 0), job("j2", Phase::Complete, 0));
        let of_j2 = owned_by(pod("p2", Phase::Succeeded, 0), &j2);
        let inv = Inventory {
            owners: [
                (j1.uid.to_string(), OwnerState::Finished),
                (j2.uid.to_string(), OwnerState::Finished),
            ]
            .into(),
            kept_pods: [(
                j1.uid.to_string(),
                ("p1".to_string(), crate::model::Keep::MARKED),
            )]
            .into(),
            kept_jobs: [(
                j2.uid.to_string(),
                ("j2".to_string(), crate::model::Keep::MARKED),
            )]
            .into(),
            ..Default::default()
        };
        let p = plan(vec![sel(&j1), sel(&of_j2)], &inv, false);
        let got: Vec<(&str, Action, &str)> = p
            .items
            .iter()
            .map(|i| (&*i.candidate.name, i.action, i.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "j1",
                    Action::Keep,
                    "its pod p1 is marked crucible-clean/keep=true"
                ),
                (
                    "p2",
                    Action::Keep,
                    "its job j2 is marked crucible-clean/keep=true"
                ),
            ]
        );
    }

    #[test]
    fn unknown_owner_state_is_treated_as_running() {
        let j = job("j", Phase::Complete, 0);
        let p = owned_by(pod("p", Phase::Succeeded, 0), &j);
        assert_eq!(
            protection(&p, &Inventory::default(), true),
            Some(Protection::OwnerRunning("j".into()))
        );
    }

    #[test]
    fn restrict_to_drops_what_was_not_confirmed() {
        let (a, b) = (pod("a", Phase::Succeeded, 0), pod("b", Phase::Succeeded, 1));
        let inv = Inventory::default();
        let confirmed = plan(vec![sel(&a)], &inv, false);
        let fresh = plan(vec![sel(&a), sel(&b)], &inv, false);
        let (p, dropped) = restrict_to(fresh, &confirmed);
        assert_eq!(p.delete_count(), 1);
        assert_eq!(dropped, 0);
        let (p, dropped) = restrict_to(plan(vec![], &inv, false), &confirmed);
        assert_eq!((p.delete_count(), dropped), (0, 1));
    }

    #[test]
    fn what_was_unticked_stays_kept_after_a_replan() {
        let (a, b) = (pod("a", Phase::Succeeded, 0), pod("b", Phase::Succeeded, 1));
        let inv = Inventory::default();
        let mut confirmed = plan(vec![sel(&a), sel(&b)], &inv, false);
        deselect(&mut confirmed, &["uid-b".to_string()].into());
        let (p, dropped) = restrict_to(plan(vec![sel(&a), sel(&b)], &inv, false), &confirmed);
        let got: Vec<(&str, Action, &str)> = p
            .items
            .iter()
            .map(|i| (&*i.candidate.name, i.action, i.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [("a", Action::Delete, ""), ("b", Action::Keep, DESELECTED)]
        );
        assert_eq!(dropped, 0);
    }
}
