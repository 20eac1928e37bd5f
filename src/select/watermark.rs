//! The watermark rule: once `count/pods` usage reaches the high watermark,
//! plan — once, from counts — the deletion of finished objects, in the
//! preferred order, until projected usage is at or below the low watermark.
//! No delete-and-remeasure loop: a plan that cannot reach the low watermark
//! deletes what may go and reports the shortfall. Pure.

use crate::error::Result;
use crate::model::{Candidate, Quota};
use crate::quota::{self, budget_name, figure, percent, Decision, Target, COUNT_PODS};
use crate::request::QuotaFlag;

use super::budget::Budgeted;
use super::pool::Entry;
use super::strategy::{Context, SelectionStrategy};
use super::{union, Criterion, Selected};

/// The watermark strategy (ids and `--older-than`, where given, narrow what
/// it may pick).
pub(crate) struct Watermark;

impl SelectionStrategy for Watermark {
    fn reads(&self) -> &'static [QuotaFlag] {
        &[
            QuotaFlag::HighWatermark,
            QuotaFlag::LowWatermark,
            QuotaFlag::Prefer,
            QuotaFlag::Capacity,
        ]
    }

    fn needs_quota(&self) -> bool {
        true
    }

    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>> {
        let picked = cx.budget(Budgeted::Watermark, members)?;
        Ok(union(vec![(Criterion::Watermark, picked)]))
    }
}

/// The `count/pods` budget of a namespace: the tightest ResourceQuota on it,
/// else the `--capacity` stand-in the inventory added.
pub(crate) fn budget<'q>(quotas: &'q [Quota], namespace: &str) -> Option<&'q Quota> {
    let ratio = |q: &Quota| {
        let hard = q.hard.get(COUNT_PODS).copied().unwrap_or(0.0);
        quota::ratio(q.used.get(COUNT_PODS).copied().unwrap_or(0.0), hard).unwrap_or(f64::INFINITY)
    };
    let mut candidates: Vec<&Quota> = quotas
        .iter()
        .filter(|q| q.namespace == namespace && q.hard.contains_key(COUNT_PODS))
        .collect();
    // A real quota wins over the stand-in; among real ones, the fullest.
    candidates.sort_by(|a, b| {
        a.is_capacity()
            .cmp(&b.is_capacity())
            .then(ratio(b).total_cmp(&ratio(a)))
            .then(a.name.cmp(&b.name))
    });
    candidates.into_iter().next()
}

/// What a walk picked, and the objects it met that a guard stops.
#[derive(Debug, Clone)]
pub(crate) struct Walk<'a> {
    pub(crate) picked: Vec<&'a Candidate>,
    pub(crate) blocked: Vec<&'a Candidate>,
    pub(crate) decision: Decision,
}

/// Plans one namespace. `already` is the `count/pods` relief earlier policy
/// rules planned there: they count towards the low watermark.
pub(crate) fn walk<'a>(
    budget: &Quota,
    high: f64,
    low: f64,
    already: f64,
    pool: &[Entry<'a>],
) -> Walk<'a> {
    let hard = budget.hard.get(COUNT_PODS).copied().unwrap_or(0.0);
    let used = budget.used.get(COUNT_PODS).copied().unwrap_or(0.0);
    let name = budget_name(budget);
    let now = format!(
        "{COUNT_PODS} of {name} is {}/{} ({})",
        figure(used),
        figure(hard),
        percent(quota::ratio(used, hard))
    );
    let mut decision = Decision {
        namespace: budget.namespace.clone(),
        rule: None,
        strategy: "watermark",
        triggered: quota::reached(used, hard, high),
        targets: vec![],
        message: String::new(),
        headline: String::new(),
        inactive: false,
    };
    if !decision.triggered {
        decision.message = format!(
            "watermark: {now}, below the high watermark ({}): nothing to delete",
            percent(Some(high))
        );
        return Walk {
            picked: vec![],
            blocked: vec![],
            decision,
        };
    }

    let start = (used - already).max(0.0);
    let limit = quota::limit_at_or_below(hard, low, COUNT_PODS);
    let needed = (start - limit).max(0.0);
    let (mut picked, mut blocked, mut planned) = (vec![], vec![], 0.0);
    for e in pool {
        if planned >= needed {
            break;
        }
        let frees = e.relief.amount(COUNT_PODS);
        if frees <= 0.0 {
            continue;
        }
        if e.deletable {
            picked.push(e.candidate);
            planned += frees;
        } else {
            blocked.push(e.candidate);
        }
    }
    let shortfall = (needed - planned).max(0.0);
    let after = start - planned;
    let reach = format!("{} ({})", figure(after), percent(quota::ratio(after, hard)));
    let lw = percent(Some(low));
    if needed > 0.0 {
        decision.headline = format!(
            "watermark: {now}, at or above the high watermark ({}); the low watermark ({lw}) is {}",
            percent(Some(high)),
            figure(limit)
        );
    }
    decision.message = if needed == 0.0 {
        format!("watermark: {now}, at or above the high watermark ({}); earlier rules already bring it to {reach}, at or below the low watermark ({lw})", percent(Some(high)))
    } else if shortfall == 0.0 {
        format!(
            "watermark: {now}, at or above the high watermark ({}): deleting {} brings it to {reach}, at or below the low watermark ({lw})",
            percent(Some(high)),
            objects(picked.len())
        )
    } else {
        format!(
            "watermark: {now}, at or above the high watermark ({}): only {} may be deleted, freeing {} of the {} needed; \
             it stays at {reach}, shortfall {} above the low watermark ({lw})",
            percent(Some(high)),
            objects(picked.len()),
            figure(planned),
            figure(needed),
            figure(shortfall)
        )
    };
    decision.targets.push(Target {
        quota: budget.name.clone(),
        resource: COUNT_PODS.into(),
        hard,
        used: start,
        limit,
        needed,
        planned,
        shortfall,
    });
    Walk {
        picked,
        blocked,
        decision,
    }
}

pub(crate) fn objects(n: usize) -> String {
    if n == 1 {
        "1 finished object".into()
    } else {
        format!("{n} finished objects")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cascade, Prefer};
    use crate::model::fixtures::*;
    use crate::model::{Inventory, Phase};
    use crate::quota::Index;
    use crate::select::guard::Guards;
    use crate::select::pool::pool;

    fn names(c: &[&Candidate]) -> Vec<String> {
        c.iter().map(|c| c.name.to_string()).collect()
    }

    /// `n` finished pods p00, p01… (p00 oldest), every third one failed.
    fn inv(n: i64, q: Quota) -> Inventory {
        let pods = (0..n)
            .map(|i| {
                pod(
                    &format!("p{i:02}"),
                    if i % 3 == 2 {
                        Phase::Failed
                    } else {
                        Phase::Succeeded
                    },
                    i,
                )
            })
            .map(std::sync::Arc::new)
            .collect();
        Inventory {
            pods,
            quotas: vec![q],
            ..Default::default()
        }
    }

    fn run<'a>(
        inv: &'a Inventory,
        high: f64,
        low: f64,
        guards: &Guards,
        prefer: Prefer,
    ) -> Walk<'a> {
        let ix = Index::new(inv, Cascade::Background);
        let members: Vec<&Candidate> = inv.pods.iter().chain(&inv.jobs).map(|c| &**c).collect();
        let p = pool(&members, inv, guards, &ix, prefer);
        walk(budget(&inv.quotas, "crucible").unwrap(), high, low, 0.0, &p)
    }

    #[test]
    fn below_the_high_watermark_nothing_is_planned() {
        let inv = inv(10, quota("objects", &[("count/pods", 20.0, 15.0)]));
        let w = run(&inv, 0.8, 0.5, &Guards::new(false), Prefer::Oldest);
        assert!(w.picked.is_empty() && !w.decision.triggered);
        assert_eq!(w.decision.message, "watermark: count/pods of quota objects is 15/20 (75%), below the high watermark (80%): nothing to delete");
    }

    #[test]
    fn stops_exactly_at_the_low_watermark_oldest_first() {
        // 16 of 20 used (80%): down to 10 means 6 deletions, the six oldest.
        let inv = inv(16, quota("objects", &[("count/pods", 20.0, 16.0)]));
        let w = run(&inv, 0.8, 0.5, &Guards::new(false), Prefer::Oldest);
        assert_eq!(names(&w.picked), ["p00", "p01", "p02", "p03", "p04", "p05"]);
        let t = &w.decision.targets[0];
        assert_eq!(
            (t.limit, t.needed, t.planned, t.shortfall),
            (10.0, 6.0, 6.0, 0.0)
        );
        assert_eq!(
            w.decision.message,
            "watermark: count/pods of quota objects is 16/20 (80%), at or above the high watermark (80%): \
             deleting 6 finished objects brings it to 10 (50%), at or below the low watermark (50%)"
        );
    }

    #[test]
    fn prefer_failed_takes_failed_ones_first() {
        let inv = inv(16, quota("objects", &[("count/pods", 20.0, 16.0)]));
        let w = run(&inv, 0.8, 0.5, &Guards::new(false), Prefer::Failed);
        // Failed: p02 p05 p08 p11 p14, then the oldest succeeded one.
        assert_eq!(names(&w.picked), ["p02", "p05", "p08", "p11", "p14", "p00"]);
    }

    #[test]
    fn odd_budgets_round_down_to_whole_pods() {
        // 50% of 15 is 7.5 pods: at or below means 7.
        let inv = inv(15, quota("objects", &[("count/pods", 15.0, 15.0)]));
        let w = run(&inv, 0.8, 0.5, &Guards::new(false), Prefer::Oldest);
        assert_eq!(w.picked.len(), 8);
    }

    #[test]
    fn guarded_objects_do_not_count_and_the_shortfall_is_reported() {
        // 18 of 20 stored, but only 16 are listed here (2 are not ours) and
        // two of those are held: 14 may go, 8 must go to reach 10 → fine;
        // with a low watermark of 0.1 (limit 2) 16 must go → shortfall 2.
        let inv = inv(16, quota("objects", &[("count/pods", 20.0, 18.0)]));
        let mut guards = Guards::new(false);
        guards.retained.insert("uid-p00".into(), "retained".into());
        guards.retained.insert("uid-p01".into(), "retained".into());
        let w = run(&inv, 0.8, 0.5, &guards, Prefer::Oldest);
        assert_eq!(
            names(&w.picked),
            ["p02", "p03", "p04", "p05", "p06", "p07", "p08", "p09"]
        );
        assert_eq!(names(&w.blocked), ["p00", "p01"]);
        let w = run(&inv, 0.8, 0.1, &guards, Prefer::Oldest);
        assert_eq!(w.picked.len(), 14);
        let t = &w.decision.targets[0];
        assert_eq!((t.needed, t.planned, t.shortfall), (16.0, 14.0, 2.0));
        assert!(
            w.decision
                .message
                .contains("only 14 finished objects may be deleted, freeing 14 of the 16 needed"),
            "{}",
            w.decision.message
        );
        assert!(
            w.decision
                .message
                .contains("it stays at 4 (20%), shortfall 2 above the low watermark (10%)"),
            "{}",
            w.decision.message
        );
    }

    #[test]
    fn a_job_frees_its_pods_and_running_pods_are_not_walked() {
        let j = job("j", Phase::Complete, 0);
        let mut inv = inv(0, quota("objects", &[("count/pods", 10.0, 9.0)]));
        inv.pods = (0..3)
            .map(|i| owned_by(pod(&format!("j-{i}"), Phase::Succeeded, 0), &j))
            .map(std::sync::Arc::new)
            .collect();
        inv.pods.push(pod("bare", Phase::Succeeded, 5).into());
        inv.pods.push(pod("live", Phase::Running, 0).into());
        inv.jobs = shared(vec![j]);
        inv.owners
            .insert("uid-j".into(), crate::model::OwnerState::Finished);
        let ix = Index::new(&inv, Cascade::Background);
        let members: Vec<&Candidate> = inv
            .jobs
            .iter()
            .chain(inv.pods.iter().filter(|p| p.owners.is_none()))
            .map(|c| &**c)
            .collect();
        let p = pool(&members, &inv, &Guards::new(false), &ix, Prefer::Oldest);
        let w = walk(budget(&inv.quotas, "crucible").unwrap(), 0.8, 0.5, 0.0, &p);
        // 9 → 5 needs 4: the job (3 pods) then the bare pod.
        assert_eq!(names(&w.picked), ["j", "bare"]);
    }

    #[test]
    fn the_fullest_real_quota_is_the_budget() {
        let qs = [
            quota("loose", &[("count/pods", 100.0, 10.0)]),
            quota("tight", &[("count/pods", 20.0, 10.0)]),
            Quota::capacity("crucible", 12, 10),
            quota("other", &[("pods", 5.0, 5.0)]),
        ];
        assert_eq!(budget(&qs, "crucible").unwrap().name, "tight");
        assert!(budget(&qs[2..], "crucible").unwrap().is_capacity());
        assert!(budget(&qs[3..], "crucible").is_none());
        assert!(budget(&qs, "elsewhere").is_none());
    }

    #[test]
    fn earlier_rules_count_towards_the_low_watermark() {
        let inv = inv(16, quota("objects", &[("count/pods", 20.0, 16.0)]));
        let ix = Index::new(&inv, Cascade::Background);
        let members: Vec<&Candidate> = inv.pods.iter().map(|c| &**c).collect();
        let p = pool(&members, &inv, &Guards::new(false), &ix, Prefer::Oldest);
        assert_eq!(walk(&inv.quotas[0], 0.8, 0.5, 4.0, &p).picked.len(), 2);
        let w = walk(&inv.quotas[0], 0.8, 0.5, 6.0, &p);
        assert!(
            w.picked.is_empty()
                && w.decision
                    .message
                    .contains("earlier rules already bring it to 10 (50%)"),
            "{}",
            w.decision.message
        );
    }
}
