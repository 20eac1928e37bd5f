//! The pressure rule: when a quota resource that this run can relieve is at
//! or above the threshold, delete finished objects in the preferred order
//! (oldest first by default) until every such resource is below it. A full
//! resource that deleting finished objects cannot lower (`pods`,
//! `requests.*`: they count running pods only) is reported, not acted on. Pure.

use crate::error::Result;
use crate::model::{Candidate, Quota};
use crate::quota::{self, figure, percent, Decision, Relief, Target};
use crate::request::QuotaFlag;

use super::budget::Budgeted;
use super::pool::Entry;
use super::strategy::{Context, SelectionStrategy};
use super::watermark::{objects, Walk};
use super::{union, Criterion, Selected};

/// The pressure strategy (ids and `--older-than`, where given, narrow what
/// it may pick).
pub(crate) struct Pressure;

impl SelectionStrategy for Pressure {
    fn reads(&self) -> &'static [QuotaFlag] {
        &[QuotaFlag::Threshold, QuotaFlag::Prefer, QuotaFlag::Capacity]
    }

    fn needs_quota(&self) -> bool {
        true
    }

    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>> {
        let picked = cx.budget(Budgeted::Pressure, members)?;
        Ok(union(vec![(Criterion::Pressure, picked)]))
    }
}

/// One quota resource as the walk sees it.
struct Line<'q> {
    quota: &'q Quota,
    resource: &'q str,
    hard: f64,
    /// Actual usage (what triggers).
    used: f64,
    /// Usage less what earlier rules plan to free (where the walk starts).
    start: f64,
    projected: f64,
}

impl Line<'_> {
    fn over(&self, threshold: f64) -> bool {
        !quota::below(self.projected, self.hard, threshold)
    }
    fn now(&self) -> String {
        format!(
            "{} of {} is {}/{} ({})",
            self.resource,
            quota::budget_name(self.quota),
            figure(self.used),
            figure(self.hard),
            percent(quota::ratio(self.used, self.hard))
        )
    }
}

/// Plans one namespace. `obstacle` says why this run cannot lower a
/// resource (None: it can); `already` is what earlier policy rules plan to
/// free there.
pub(crate) fn walk<'a>(
    namespace: &str,
    quotas: &[Quota],
    threshold: f64,
    obstacle: impl Fn(&str) -> Option<&'static str>,
    already: &Relief,
    pool: &[Entry<'a>],
) -> Walk<'a> {
    let th = percent(Some(threshold));
    let mut decision = Decision {
        namespace: namespace.to_string(),
        rule: None,
        strategy: "pressure",
        triggered: false,
        targets: vec![],
        message: String::new(),
        headline: String::new(),
        inactive: false,
    };
    let mut lines: Vec<Line> = vec![];
    let mut unrelievable: Vec<String> = vec![];
    let mut calm: Vec<String> = vec![];
    for q in quotas.iter().filter(|q| q.namespace == namespace) {
        for (resource, &hard) in &q.hard {
            let used = q.used.get(resource).copied().unwrap_or(0.0);
            let start = (used - already.amount(resource)).max(0.0);
            let line = Line {
                quota: q,
                resource,
                hard,
                used,
                start,
                projected: start,
            };
            let full = quota::reached(used, hard, threshold);
            match obstacle(resource) {
                Some(why) if full => unrelievable.push(format!("{} {why}", line.now())),
                Some(_) => {}
                None if full => lines.push(line),
                None => calm.push(format!("{}/{} {}", figure(used), figure(hard), resource)),
            }
        }
    }

    if lines.is_empty() {
        let mut msg = if quotas.iter().all(|q| q.namespace != namespace) {
            format!("pressure: namespace {namespace} has no ResourceQuota (nor --capacity): nothing to relieve, nothing deleted")
        } else {
            let mut m = format!("pressure: no quota resource that this cleanup can relieve is at or above the threshold ({th})");
            if !calm.is_empty() {
                m.push_str(&format!(" ({})", calm.join(", ")));
            }
            m.push_str(": nothing deleted");
            m
        };
        for u in &unrelievable {
            msg.push_str(&format!("; {u}"));
        }
        decision.message = msg;
        return Walk {
            picked: vec![],
            blocked: vec![],
            decision,
        };
    }
    decision.triggered = true;

    let (mut picked, mut blocked) = (vec![], vec![]);
    for e in pool {
        if !lines.iter().any(|l| l.over(threshold)) {
            break;
        }
        if !lines
            .iter()
            .any(|l| l.over(threshold) && e.relief.amount(l.resource) > 0.0)
        {
            continue;
        }
        if !e.deletable {
            blocked.push(e.candidate);
            continue;
        }
        picked.push(e.candidate);
        for l in &mut lines {
            l.projected = (l.projected - e.relief.amount(l.resource)).max(0.0);
        }
    }

    let mut parts = vec![];
    for l in &lines {
        let whole = quota::limit_below(l.hard, threshold, l.resource);
        // A continuous resource has no largest value below the bound: report the bound.
        let limit = whole.unwrap_or(threshold * l.hard);
        let needed = (l.start - limit).max(0.0);
        let planned = l.start - l.projected;
        let shortfall = if l.over(threshold) {
            (l.projected - limit).max(0.0)
        } else {
            0.0
        };
        let after = format!(
            "{} ({})",
            figure(l.projected),
            percent(quota::ratio(l.projected, l.hard))
        );
        parts.push(if shortfall > 0.0 || l.over(threshold) {
            format!(
                "{}: still {after} after every object that may go, shortfall {}",
                l.now(),
                figure(shortfall)
            )
        } else {
            format!("{}: down to {after}", l.now())
        });
        decision.targets.push(Target {
            quota: l.quota.name.clone(),
            resource: l.resource.to_string(),
            hard: l.hard,
            used: l.start,
            limit,
            needed,
            planned,
            shortfall,
        });
    }
    let mut msg = format!(
        "pressure: at or above the threshold ({th}), deleting {}: {}",
        objects(picked.len()),
        parts.join("; ")
    );
    let mut headline = format!(
        "pressure: {}: at or above the threshold ({th})",
        lines.iter().map(Line::now).collect::<Vec<_>>().join("; ")
    );
    for u in &unrelievable {
        msg.push_str(&format!("; {u}"));
        headline.push_str(&format!("; {u}"));
    }
    decision.message = msg;
    decision.headline = headline;
    Walk {
        picked,
        blocked,
        decision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cascade, Level, Prefer};
    use crate::model::fixtures::*;
    use crate::model::{Candidate, Inventory, Phase};
    use crate::quota::Index;
    use crate::select::guard::Guards;
    use crate::select::pool::pool;

    fn names(c: &[&Candidate]) -> Vec<String> {
        c.iter().map(|c| c.name.to_string()).collect()
    }

    fn run(inv: &Inventory, threshold: f64, include_running: bool) -> Walk<'_> {
        let ix = Index::new(inv, Cascade::Background);
        let members: Vec<&Candidate> = inv.pods.iter().map(|c| &**c).collect();
        let p = pool(
            &members,
            inv,
            &Guards::new(include_running),
            &ix,
            Prefer::Oldest,
        );
        let why = |r: &str| {
            (!quota::relievable(r, Level::Pods, Cascade::Background, include_running))
                .then(|| quota::why_not_relievable(r, Level::Pods))
        };
        walk(
            "crucible",
            &inv.quotas,
            threshold,
            why,
            &Relief::default(),
            &p,
        )
    }

    fn finished(n: i64) -> Vec<Candidate> {
        (0..n)
            .map(|i| pod(&format!("p{i}"), Phase::Succeeded, i))
            .collect()
    }

    #[test]
    fn deletes_oldest_first_until_below_the_threshold() {
        let inv = Inventory {
            pods: shared(finished(9)),
            quotas: vec![quota("objects", &[("count/pods", 10.0, 9.0)])],
            ..Default::default()
        };
        let w = run(&inv, 0.8, false);
        // Below 80% of 10 means at most 7: two go.
        assert_eq!(names(&w.picked), ["p0", "p1"]);
        let t = &w.decision.targets[0];
        assert_eq!(
            (t.limit, t.needed, t.planned, t.shortfall),
            (7.0, 2.0, 2.0, 0.0)
        );
        assert_eq!(
            w.decision.message,
            "pressure: at or above the threshold (80%), deleting 2 finished objects: count/pods of quota objects is 9/10 (90%): down to 7 (70%)"
        );
    }

    #[test]
    fn a_full_pods_quota_is_not_relieved_by_finished_pods() {
        let inv = Inventory {
            pods: shared(finished(5)),
            quotas: vec![
                quota(
                    "compute",
                    &[("pods", 10.0, 10.0), ("requests.cpu", 4.0, 3.9)],
                ),
                quota("objects", &[("count/pods", 100.0, 15.0)]),
            ],
            ..Default::default()
        };
        let w = run(&inv, 0.8, false);
        assert!(w.picked.is_empty() && !w.decision.triggered);
        assert_eq!(
            w.decision.message,
            "pressure: no quota resource that this cleanup can relieve is at or above the threshold (80%) (15/100 count/pods): nothing deleted; \
             pods of quota compute is 10/10 (100%) counts non-terminal pods only, so deleting finished pods frees none of it (--include-running deletes running pods too); \
             requests.cpu of quota compute is 3.9/4 (97%) counts non-terminal pods only, so deleting finished pods frees none of it (--include-running deletes running pods too)"
        );
    }

    #[test]
    fn running_pods_relieve_pods_and_compute_with_include_running() {
        let mut pods = finished(2);
        for i in 0..3 {
            let mut p = pod(&format!("run{i}"), Phase::Running, 10 + i);
            p.charges = [("requests.cpu".to_string(), 1000)].into();
            pods.push(p);
        }
        let inv = Inventory {
            pods: shared(pods),
            quotas: vec![quota(
                "compute",
                &[("pods", 5.0, 5.0), ("requests.cpu", 5.0, 5.0)],
            )],
            ..Default::default()
        };
        let w = run(&inv, 0.8, true);
        // Finished pods help neither resource and are passed over; two running
        // pods bring pods to 3/5 and cpu to 3/5, both below 80%.
        assert_eq!(names(&w.picked), ["run0", "run1"]);
        assert_eq!(
            w.decision
                .targets
                .iter()
                .map(|t| t.planned)
                .collect::<Vec<_>>(),
            [2.0, 2.0]
        );
    }

    #[test]
    fn not_enough_finished_objects_is_a_shortfall() {
        let mut pods = finished(3);
        pods[0].keep = crate::model::Keep::MARKED;
        let inv = Inventory {
            pods: shared(pods),
            quotas: vec![quota("objects", &[("count/pods", 10.0, 10.0)])],
            ..Default::default()
        };
        let w = run(&inv, 0.5, false);
        assert_eq!(names(&w.picked), ["p1", "p2"]);
        assert_eq!(names(&w.blocked), ["p0"]);
        let t = &w.decision.targets[0];
        assert_eq!(
            (t.limit, t.needed, t.planned, t.shortfall),
            (4.0, 6.0, 2.0, 4.0)
        );
        assert!(
            w.decision.message.ends_with(
                "is 10/10 (100%): still 8 (80%) after every object that may go, shortfall 4"
            ),
            "{}",
            w.decision.message
        );
    }

    #[test]
    fn no_quota_means_nothing_to_relieve() {
        let inv = Inventory {
            pods: shared(finished(3)),
            ..Default::default()
        };
        let w = run(&inv, 0.8, false);
        assert!(w.picked.is_empty());
        assert!(
            w.decision.message.contains("has no ResourceQuota"),
            "{}",
            w.decision.message
        );
    }
}
