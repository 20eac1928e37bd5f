//! Selection: which objects of an inventory a strategy picks. Pure: no I/O,
//! the clock comes from the inventory snapshot. Each strategy is one file
//! implementing `strategy::SelectionStrategy`, registered in
//! `implementation`; the guards (keep, terminating, running…) that the plan
//! applies are in `guard`.

mod age;
mod budget;
mod fallback;
pub(crate) mod guard;
mod hybrid;
mod label;
mod matched;
mod next;
mod pool;
mod pressure;
pub(crate) mod retention;
mod strategy;
mod watermark;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cli::{Level, Strategy};
use crate::error::{Error, Result};
use crate::inventory::Needs;
use crate::model::{Candidate, Inventory, Kind, OwnerState};
use crate::quota::{Decision, Index};
use crate::request::policy::Params;
use crate::request::Request;
use crate::select::guard::Guards;
use crate::selector::Selector;

pub(crate) use matched::Matched;
pub(crate) use next::next_change;
use strategy::{Context, SelectionStrategy};

/// The registry: the implementation of each strategy `cli::Strategy` names.
fn implementation(s: Strategy) -> &'static dyn SelectionStrategy {
    match s {
        // Policy rules run with their own strategies, never as "policy".
        Strategy::Label | Strategy::Policy => &label::Label,
        Strategy::Age => &age::Age,
        Strategy::Pressure => &pressure::Pressure,
        Strategy::Watermark => &watermark::Watermark,
        Strategy::Hybrid => &hybrid::Hybrid,
        Strategy::Fallback => &fallback::Fallback,
    }
}

/// The strategies a request runs: its own, or each policy rule's.
fn in_use(req: &Request) -> Vec<&'static dyn SelectionStrategy> {
    match &req.policy {
        Some(p) => p
            .rules
            .iter()
            .map(|r| implementation(r.params.strategy))
            .collect(),
        None => vec![implementation(req.params.strategy)],
    }
}

/// What the strategies of a request require of it, before any API request:
/// each strategy's `check`, and every flag given is read by one of them
/// (a flag that would do nothing is refused, naming what would read it).
pub(crate) fn validate(req: &Request) -> Result<()> {
    let strategies = in_use(req);
    for s in &strategies {
        s.check(&req.criteria, req.policy.is_some())
            .map_err(Error::usage)?;
    }
    for flag in &req.quota_flags {
        if strategies.iter().any(|s| s.reads().contains(flag)) {
            continue;
        }
        let readers: Vec<String> = Strategy::SELECTABLE
            .iter()
            .filter(|s| implementation(**s).reads().contains(flag))
            .map(|s| format!("--strategy {}", s.name()))
            .collect();
        let running: Vec<&str> = match &req.policy {
            Some(p) => p.rules.iter().map(|r| r.params.strategy.name()).collect(),
            None => vec![req.params.strategy.name()],
        };
        return Err(Error::usage(format!(
            "{} has no effect with the {} strategy: add {}",
            flag.name(),
            running.join("/"),
            readers.join(" or ")
        )));
    }
    Ok(())
}

/// The label selector sent to the API server: the base selector plus, when
/// every strategy run needs every criterion to hold, the id filters
/// (narrowing the LIST server-side). For a union (hybrid), objects the ids do
/// not match may still be picked, so there the ids filter client-side only.
pub(crate) fn server_selector(req: &Request) -> Selector {
    if !in_use(req).iter().all(|s| s.narrowed()) {
        return req.base.clone();
    }
    req.base
        .clone()
        .with_in(crate::model::TEST_ID, &req.criteria.test_ids)
        .with_in(crate::model::EVAL_ID, &req.criteria.eval_ids)
        .with_in(crate::model::RUN_ID, &req.criteria.run_ids)
}

/// What every object of this request must still be at its delete (the
/// chokepoint's rules): finished unless `--include-running`, matching the
/// selector sent to the API server and, with a policy, one of its rules;
/// with `--stale-runs`, an object of a dead run where and since its Lease.
pub(crate) fn rules(req: &Request) -> guard::Rules {
    guard::Rules {
        include_running: req.include_running,
        selector: server_selector(req),
        policy: req
            .policy
            .iter()
            .flat_map(|p| &p.rules)
            .map(|r| r.selector.clone())
            .collect(),
        stale: req.criteria.stale_runs.then(|| req.criteria.stale.clone()),
    }
}

/// Whether any strategy run reads ResourceQuotas.
pub(crate) fn needs_quota(req: &Request) -> bool {
    in_use(req).iter().any(|s| s.needs_quota())
}

/// What the inventory must read for this request.
pub(crate) fn needs(req: &Request) -> Needs {
    Needs::of(req, server_selector(req).to_string(), needs_quota(req))
}

/// Label and age: every member (already narrowed by each criterion given)
/// with the criteria that hold for it; `label_rule` adds the label criterion
/// without ids (a policy rule of the label strategy).
fn every<'a>(
    cx: &Context<'_, '_, 'a>,
    members: &[&'a Candidate],
    label_rule: bool,
) -> Vec<Selected<'a>> {
    let mut by = Matched::default();
    if cx.req.criteria.has_ids() || label_rule {
        by.push(Criterion::Label);
    }
    if cx.params.older_than.is_some() {
        by.push(Criterion::Age);
    }
    if cx.all() {
        by.push(Criterion::All);
    }
    if by.is_empty() {
        return vec![];
    }
    members
        .iter()
        .map(|c| Selected {
            candidate: c,
            matched_by: by,
        })
        .collect()
}

/// Merges what each rule picked, in first-seen order; `matched_by` follows
/// the order of `parts` and never repeats a rule.
fn union<'a>(parts: Vec<(Criterion, Vec<&'a Candidate>)>) -> Vec<Selected<'a>> {
    let mut out: Vec<Selected<'a>> = vec![];
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (rule, picked) in parts {
        for c in picked {
            match at.get(&*c.uid) {
                Some(&i) => {
                    out[i].matched_by.push(rule);
                }
                None => {
                    at.insert(&*c.uid, out.len());
                    out.push(Selected {
                        candidate: c,
                        matched_by: Matched::of(rule),
                    });
                }
            }
        }
    }
    out
}

use retention::Governed;

/// A rule that selected an object; reported as the row's matched-by list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    pub(crate) matched_by: Matched,
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
                priority: priority(req, c),
            })
        })
        .collect();
    let guards = Guards {
        include_running: req.include_running,
        retained: retention::retained(&governed, inv.taken_at),
    };
    let factor: BTreeMap<&str, f64> = governed
        .iter()
        .map(|g| (&*g.candidate.uid, g.factor()))
        .collect();
    let factor_of = |c: &Candidate| factor.get(&*c.uid).copied().unwrap_or(1.0);

    let index = Index::new(inv, req.cascade);
    let mut budgets = budget::Budgets::new(req, inv, &guards, &index);
    let mut selected = vec![];
    for g in &groups {
        let s = implementation(g.params.strategy);
        let mut cx = Context {
            req,
            inv,
            rule: g.rule,
            params: g.params,
            factor: &factor_of,
            budgets: &mut budgets,
            composed: false,
        };
        let members = if s.narrowed() {
            cx.narrow(&g.members)
        } else {
            g.members.clone()
        };
        selected.extend(s.pick(&mut cx, &members)?);
    }
    let decisions = budgets.decisions;
    Ok(Selection {
        selected,
        guards,
        decisions,
    })
}

/// The value of the policy's priority label on `c` and its retention
/// multiplier.
fn priority<'a>(req: &Request, c: &'a Candidate) -> Option<(&'a str, f64)> {
    let p = req.policy.as_ref()?;
    let value = c.labels.get(&p.priority_label)?;
    Some((value, p.factor(&c.labels)))
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

/// The objects a level lets through: with `all`, a job is the unit and its
/// pods go with it, so only pods without a living owner job are separate units.
pub(crate) fn eligible(level: Level, inv: &Inventory) -> Box<dyn Iterator<Item = &Candidate> + '_> {
    match level {
        Level::None => Box::new(std::iter::empty()),
        Level::Pods => Box::new(inv.pods.iter().map(|c| &**c)),
        Level::Jobs => Box::new(inv.jobs.iter().map(|c| &**c)),
        Level::All => Box::new(inv.jobs.iter().map(|c| &**c).chain(
            inv.pods.iter().map(|c| &**c).filter(|p| {
                debug_assert_eq!(p.kind, Kind::Pod);
                match p.owner_job() {
                    None => true,
                    Some(o) => inv.owners.get(&o.uid) == Some(&OwnerState::Gone),
                }
            }),
        )),
    }
}

#[cfg(test)]
mod tests;
