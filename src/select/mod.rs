//! Selection: which objects of an inventory a strategy picks. Pure: no I/O,
//! the clock comes from the inventory snapshot. Each strategy lives in its
//! own file; guards (keep, terminating, running…) are the plan's business.

mod age;
mod budget;
pub(crate) mod guard;
pub(crate) mod hybrid;
mod label;
pub(crate) mod pool;
pub(crate) mod pressure;
pub(crate) mod retention;
pub(crate) mod watermark;

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::cli::Strategy;
use crate::cli::{AgeFrom, Level};
use crate::error::Result;
use crate::model::{Candidate, Inventory, Kind, OwnerState};
use crate::quota::{Decision, Index};
use crate::request::policy::Params;
use crate::request::Request;
use crate::select::guard::Guards;

use retention::Governed;

/// A rule that selected an object; reported as the row's matched-by list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Criterion {
    Label,
    Age,
    All,
    Pressure,
    Watermark,
}

impl Criterion {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Criterion::Label => "label",
            Criterion::Age => "age",
            Criterion::All => "all",
            Criterion::Pressure => "pressure",
            Criterion::Watermark => "watermark",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Selected<'a> {
    pub(crate) candidate: &'a Candidate,
    pub(crate) matched_by: Vec<Criterion>,
}

/// What selection hands to the plan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection<'a> {
    pub(crate) selected: Vec<Selected<'a>>,
    /// `--include-running` and what retention holds back.
    pub(crate) guards: Guards,
    /// What pressure and watermark decided, per namespace (and policy rule).
    pub(crate) decisions: Vec<Decision>,
}

/// The objects one rule governs: every unit without `--policy`, else those
/// whose first matching policy rule it is.
struct Group<'r, 'a> {
    rule: Option<&'r str>,
    params: &'r Params,
    members: Vec<&'a Candidate>,
}

pub(crate) fn select<'a>(req: &Request, inv: &'a Inventory) -> Result<Selection<'a>> {
    let units: Vec<&Candidate> = eligible(req.level, inv)
        .filter(|c| req.base.matches(&c.labels))
        .collect();
    let groups = groups(req, &units);
    let governed: Vec<Governed> = groups
        .iter()
        .flat_map(|g| {
            g.members.iter().map(|c| Governed {
                candidate: c,
                params: g.params,
                rule: g.rule,
                priority: req.policy.as_ref().and_then(|p| {
                    let value = c.labels.get(&p.priority_label)?;
                    Some((value.as_str(), p.factor(&c.labels)))
                }),
            })
        })
        .collect();
    let guards = Guards {
        include_running: req.include_running,
        retained: retention::retained(&governed, inv.taken_at),
    };
    let factor: BTreeMap<&str, f64> = governed
        .iter()
        .map(|g| (g.candidate.uid.as_str(), g.factor()))
        .collect();
    let factor_of = |c: &Candidate| factor.get(c.uid.as_str()).copied().unwrap_or(1.0);

    let index = Index::new(inv, req.cascade);
    let mut budgets = budget::Budgets::new(req, inv, &guards, &index);
    let mut selected = vec![];
    for g in &groups {
        let (label, age) = (label_part(req, g), age_part(req, g, inv, &factor_of));
        let picked = match g.params.strategy {
            Strategy::Label | Strategy::Age | Strategy::Policy => g
                .members
                .iter()
                .filter_map(|c| every_rule(req, c, &label, &age))
                .collect(),
            Strategy::Pressure | Strategy::Watermark => {
                // Ids and --older-than, where given, narrow what may be picked.
                let narrowed: Vec<&Candidate> = g
                    .members
                    .iter()
                    .copied()
                    .filter(|c| {
                        label.as_ref().is_none_or(|l| l.contains(&c.uid.as_str()))
                            && age.as_ref().is_none_or(|a| a.contains(&c.uid.as_str()))
                    })
                    .collect();
                let rule = if g.params.strategy == Strategy::Pressure {
                    Criterion::Pressure
                } else {
                    Criterion::Watermark
                };
                let w = budgets.run(g.rule, g.params, &narrowed)?;
                hybrid::union(vec![(rule, w)])
            }
            Strategy::Hybrid => {
                let pick = |ids: &Option<HashSet<&str>>| -> Vec<&'a Candidate> {
                    ids.as_ref()
                        .map(|ids| {
                            g.members
                                .iter()
                                .copied()
                                .filter(|c| ids.contains(&c.uid.as_str()))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let w = budgets.run(g.rule, g.params, &g.members)?;
                let mut parts = vec![
                    (Criterion::Label, pick(&label)),
                    (Criterion::Age, pick(&age)),
                    (Criterion::Watermark, w),
                ];
                if req.criteria.all {
                    parts.push((Criterion::All, g.members.clone()));
                }
                hybrid::union(parts)
            }
        };
        selected.extend(picked);
    }
    let decisions = budgets.decisions;
    Ok(Selection {
        selected,
        guards,
        decisions,
    })
}

fn groups<'r, 'a>(req: &'r Request, units: &[&'a Candidate]) -> Vec<Group<'r, 'a>> {
    let Some(policy) = &req.policy else {
        return vec![Group {
            rule: None,
            params: &req.params,
            members: units.to_vec(),
        }];
    };
    let mut groups: Vec<Group> = policy
        .rules
        .iter()
        .map(|r| Group {
            rule: Some(&r.name),
            params: &r.params,
            members: vec![],
        })
        .collect();
    for c in units {
        // Objects no rule matches are left alone.
        if let Some(i) = policy
            .rules
            .iter()
            .position(|r| r.selector.matches(&c.labels))
        {
            groups[i].members.push(c);
        }
    }
    groups
}

/// The uids the label rule picks in a group, or None when it does not apply:
/// the ids given, or, for a policy rule whose strategy is label, its selector.
fn label_part<'a>(req: &Request, g: &Group<'_, 'a>) -> Option<HashSet<&'a str>> {
    let c = &req.criteria;
    if c.has_ids() {
        Some(
            g.members
                .iter()
                .filter(|m| label::matches(m, &c.test_ids, &c.eval_ids))
                .map(|m| m.uid.as_str())
                .collect(),
        )
    } else if g.rule.is_some() && g.params.strategy == Strategy::Label {
        Some(g.members.iter().map(|m| m.uid.as_str()).collect())
    } else {
        None
    }
}

/// The uids the age rule picks (retention multiplied by priority), or None.
fn age_part<'a>(
    req: &Request,
    g: &Group<'_, 'a>,
    inv: &Inventory,
    factor: &impl Fn(&Candidate) -> f64,
) -> Option<HashSet<&'a str>> {
    let older = g.params.older_than?;
    let from = req.criteria.age_from.unwrap_or(AgeFrom::Created);
    Some(
        g.members
            .iter()
            .filter(|m| age::matches(m, retention::scale(older, factor(m)), from, inv.taken_at))
            .map(|m| m.uid.as_str())
            .collect(),
    )
}

/// Label and age strategies: every rule given must hold.
fn every_rule<'a>(
    req: &Request,
    c: &'a Candidate,
    label: &Option<HashSet<&str>>,
    age: &Option<HashSet<&str>>,
) -> Option<Selected<'a>> {
    let mut by = Vec::new();
    for (rule, part) in [(Criterion::Label, label), (Criterion::Age, age)] {
        if let Some(uids) = part {
            if !uids.contains(&c.uid.as_str()) {
                return None;
            }
            by.push(rule);
        }
    }
    if req.criteria.all {
        by.push(Criterion::All);
    }
    (!by.is_empty()).then_some(Selected {
        candidate: c,
        matched_by: by,
    })
}

/// The objects a level lets through: with `all`, a job is the unit and its
/// pods go with it, so only pods without a living owner job are separate units.
pub(crate) fn eligible(level: Level, inv: &Inventory) -> Box<dyn Iterator<Item = &Candidate> + '_> {
    match level {
        Level::None => Box::new(std::iter::empty()),
        Level::Pods => Box::new(inv.pods.iter()),
        Level::Jobs => Box::new(inv.jobs.iter()),
        Level::All => Box::new(inv.jobs.iter().chain(inv.pods.iter().filter(|p| {
            debug_assert_eq!(p.kind, Kind::Pod);
            match p.owner_job() {
                None => true,
                Some(o) => inv.owners.get(&o.uid) == Some(&OwnerState::Gone),
            }
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::model::fixtures::*;
    use crate::model::Phase;
    use clap::Parser;

    fn req(args: &[&str]) -> Request {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
    }

    fn pick<'a>(r: &Request, inv: &'a Inventory) -> Vec<Selected<'a>> {
        select(r, inv).unwrap().selected
    }

    fn names(sel: &[Selected]) -> Vec<String> {
        let mut v: Vec<String> = sel.iter().map(|s| s.candidate.name.clone()).collect();
        v.sort();
        v
    }

    fn inventory() -> Inventory {
        let j1 = with_test(job("job-a", Phase::Complete, 0), "t1");
        let j2 = with_test(job("job-b", Phase::Active, 500), "t2");
        Inventory {
            pods: vec![
                owned_by(with_test(pod("pod-a", Phase::Succeeded, 10), "t1"), &j1),
                owned_by(with_test(pod("pod-b", Phase::Failed, 510), "t2"), &j2),
                with_test(pod("bare-t1", Phase::Failed, 900), "t1"),
                pod("leftover", Phase::Succeeded, 100),
            ],
            owners: [
                (j1.uid.clone(), OwnerState::Finished),
                (j2.uid.clone(), OwnerState::Unfinished),
            ]
            .into(),
            jobs: vec![j1, j2],
            quotas: vec![],
            taken_at: t(1000),
            ..Default::default()
        }
    }

    #[test]
    fn label_rule_picks_one_test_run() {
        let inv = inventory();
        let sel = pick(&req(&["--test-id", "t1"]), &inv);
        assert_eq!(names(&sel), ["bare-t1", "pod-a"]);
        assert!(sel.iter().all(|s| s.matched_by == [Criterion::Label]));
        assert_eq!(
            names(&pick(&req(&["--test-id", "t1", "--level", "jobs"]), &inv)),
            ["job-a"]
        );
        assert_eq!(
            names(&pick(&req(&["--test-id", "t1", "--level", "all"]), &inv)),
            ["bare-t1", "job-a"]
        );
        assert!(pick(&req(&["--test-id", "t1", "--level", "none"]), &inv).is_empty());
        assert_eq!(
            names(&pick(&req(&["--test-id", "t1", "--test-id", "t2"]), &inv)),
            ["bare-t1", "pod-a", "pod-b"]
        );
        assert_eq!(
            names(&pick(&req(&["--eval-id", "nope"]), &inv)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn age_rule_measures_from_creation_or_finish() {
        let inv = inventory();
        // now = 1000; created 10 → 990s old, finished 20 → 980s old.
        assert_eq!(
            names(&pick(&req(&["--older-than", "895s"]), &inv)),
            ["leftover", "pod-a"]
        );
        assert_eq!(
            names(&pick(&req(&["--older-than", "490s"]), &inv)),
            ["leftover", "pod-a", "pod-b"]
        );
        assert_eq!(
            names(&pick(&req(&["--older-than", "491s"]), &inv)),
            ["leftover", "pod-a"]
        );
        assert_eq!(
            names(&pick(&req(&["--older-than", "985s"]), &inv)),
            ["pod-a"]
        );
        assert_eq!(
            names(&pick(
                &req(&["--older-than", "985s", "--age-from", "finished"]),
                &inv
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            names(&pick(
                &req(&["--older-than", "980s", "--age-from", "finished"]),
                &inv
            )),
            ["pod-a"]
        );
    }

    #[test]
    fn label_and_age_together_must_both_hold() {
        let inv = inventory();
        let sel = pick(&req(&["--test-id", "t1", "--older-than", "500s"]), &inv);
        assert_eq!(names(&sel), ["pod-a"]);
        assert_eq!(sel[0].matched_by, [Criterion::Label, Criterion::Age]);
    }

    #[test]
    fn base_selector_is_checked_client_side_too() {
        let mut inv = inventory();
        inv.pods[3].labels.clear();
        assert_eq!(
            names(&pick(&req(&["--all"]), &inv)),
            ["bare-t1", "pod-a", "pod-b"]
        );
    }

    #[test]
    fn level_all_treats_pods_of_vanished_jobs_as_bare() {
        let mut inv = inventory();
        let ghost = job("ghost", Phase::Complete, 0);
        inv.pods
            .push(owned_by(pod("orphan", Phase::Succeeded, 0), &ghost));
        inv.owners.insert(ghost.uid.clone(), OwnerState::Gone);
        assert_eq!(
            names(&pick(&req(&["--all", "--level", "all"]), &inv)),
            ["bare-t1", "job-a", "job-b", "leftover", "orphan"]
        );
    }
}
