//! The walk order of the budgeted strategies (pressure, watermark): which
//! objects they would pick, in which order, and what each frees. Pure.

use super::guard::{self, Guards};
use crate::cli::Prefer;
use crate::model::{Candidate, Inventory, Phase};
use crate::quota::{Index, Relief};

/// One object a budgeted strategy may pick.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub(crate) candidate: &'a Candidate,
    /// What deleting it alone frees.
    pub(crate) relief: Relief,
    /// No guard (keep, terminating, running owner, retention…) stops it: only
    /// these count towards relief.
    pub(crate) deletable: bool,
}

/// Finished objects first (running ones only come with --include-running),
/// then the preferred outcome, then oldest first; name breaks ties so the
/// order is stable.
pub(crate) fn sort(cands: &mut [&Candidate], prefer: Prefer) {
    let rank = |c: &Candidate| match prefer {
        Prefer::Oldest => 0,
        Prefer::Failed => u8::from(c.phase != Phase::Failed),
        Prefer::Succeeded => u8::from(!matches!(c.phase, Phase::Succeeded | Phase::Complete)),
    };
    cands.sort_by(|a, b| {
        let key = |c: &Candidate| {
            (
                !c.phase.is_finished(),
                rank(c),
                c.created_at,
                c.namespace.clone(),
                c.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
}

/// The members a budgeted strategy walks, in order. Unfinished objects are
/// left out unless `--include-running` allows them.
pub(crate) fn pool<'a>(
    members: &[&'a Candidate],
    inv: &Inventory,
    guards: &Guards,
    index: &Index<'a>,
    prefer: Prefer,
) -> Vec<Entry<'a>> {
    let mut cands: Vec<&Candidate> = members
        .iter()
        .copied()
        .filter(|c| c.phase.is_finished() || guards.include_running)
        .collect();
    sort(&mut cands, prefer);
    cands
        .into_iter()
        .map(|c| Entry {
            candidate: c,
            relief: index.relief(c),
            deletable: guard::guard(c, inv, guards).is_none(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cascade;
    use crate::model::fixtures::*;

    fn order(prefer: Prefer) -> Vec<String> {
        let cands = [
            pod("young-ok", Phase::Succeeded, 30),
            pod("old-failed", Phase::Failed, 10),
            pod("running", Phase::Running, 0),
            pod("old-ok", Phase::Succeeded, 0),
            job("job-done", Phase::Complete, 20),
            pod("young-failed", Phase::Failed, 40),
        ];
        let mut refs: Vec<&Candidate> = cands.iter().collect();
        sort(&mut refs, prefer);
        refs.iter().map(|c| c.name.to_string()).collect()
    }

    #[test]
    fn prefer_changes_the_order_finished_first_then_oldest() {
        assert_eq!(
            order(Prefer::Oldest),
            [
                "old-ok",
                "old-failed",
                "job-done",
                "young-ok",
                "young-failed",
                "running"
            ]
        );
        assert_eq!(
            order(Prefer::Failed),
            [
                "old-failed",
                "young-failed",
                "old-ok",
                "job-done",
                "young-ok",
                "running"
            ]
        );
        assert_eq!(
            order(Prefer::Succeeded),
            [
                "old-ok",
                "job-done",
                "young-ok",
                "old-failed",
                "young-failed",
                "running"
            ]
        );
    }

    #[test]
    fn the_pool_marks_what_may_really_go() {
        let mut kept = pod("kept", Phase::Succeeded, 0);
        kept.keep = crate::model::Keep::MARKED;
        let inv = Inventory {
            pods: shared(vec![
                kept,
                pod("ok", Phase::Failed, 1),
                pod("run", Phase::Running, 2),
                pod("held", Phase::Succeeded, 3),
            ]),
            ..Default::default()
        };
        let members: Vec<&Candidate> = inv.pods.iter().map(|c| &**c).collect();
        let ix = Index::new(&inv, Cascade::Background);
        let mut guards = Guards::new(false);
        guards.retained.insert("uid-held".into(), "retained".into());
        let p = pool(&members, &inv, &guards, &ix, Prefer::Oldest);
        let got: Vec<(&str, bool, u64)> = p
            .iter()
            .map(|e| (&*e.candidate.name, e.deletable, e.relief.stored_pods))
            .collect();
        assert_eq!(
            got,
            [("kept", false, 1), ("ok", true, 1), ("held", false, 1)]
        );
        let p = pool(&members, &inv, &Guards::new(true), &ix, Prefer::Oldest);
        assert_eq!(p.len(), 4);
        assert!(p[3].deletable && p[3].relief.live_pods == 1);
    }
}
