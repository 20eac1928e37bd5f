//! Runs the budgeted rules (pressure, and watermark alone or in hybrid)
//! namespace by namespace, against that namespace's quotas, remembering what
//! earlier rules (policy rules run in file order) already plan to free. Pure.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::model::{Candidate, Inventory};
use crate::quota::{self, Decision, Index};
use crate::request::policy::Params;
use crate::request::{Request, Scope};
use crate::select::guard::Guards;

use super::{pool, pressure, watermark};

/// The two budgeted walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Budgeted {
    Pressure,
    Watermark,
}

pub(crate) struct Budgets<'r, 'a> {
    req: &'r Request,
    inv: &'a Inventory,
    guards: &'r Guards,
    index: &'r Index<'a>,
    /// What earlier budgeted rules plan to delete, by namespace.
    planned: BTreeMap<String, Vec<&'a Candidate>>,
    /// What each rule decided, by namespace, in order.
    pub(crate) decisions: Vec<Decision>,
}

impl<'r, 'a> Budgets<'r, 'a> {
    pub(crate) fn new(
        req: &'r Request,
        inv: &'a Inventory,
        guards: &'r Guards,
        index: &'r Index<'a>,
    ) -> Self {
        Budgets {
            req,
            inv,
            guards,
            index,
            planned: BTreeMap::new(),
            decisions: vec![],
        }
    }

    /// Runs the `walk` over `members`, namespace by namespace. Returns what
    /// it picked and what it met that a guard stops (reported skipped).
    /// `composed`: inside another strategy, a watermark without a budget is
    /// reported inactive rather than refused.
    pub(crate) fn run(
        &mut self,
        rule: Option<&str>,
        params: &Params,
        walk: Budgeted,
        composed: bool,
        members: &[&'a Candidate],
    ) -> Result<Vec<&'a Candidate>> {
        let (req, inv) = (self.req, self.inv);
        let mut namespaces: Vec<String> = match &req.scope {
            Scope::Namespace(ns) => vec![ns.clone()],
            Scope::AllNamespaces => members
                .iter()
                .map(|c| c.namespace.to_string())
                .chain(inv.quotas.iter().map(|q| q.namespace.to_string()))
                .collect(),
        };
        namespaces.sort();
        namespaces.dedup();
        let mut picked = vec![];
        for ns in namespaces {
            let in_ns: Vec<&Candidate> = members
                .iter()
                .copied()
                .filter(|c| *c.namespace == *ns)
                .collect();
            let pool = pool::pool(&in_ns, inv, self.guards, self.index, params.prefer);
            let before = self.planned.get(&ns).cloned().unwrap_or_default();
            let already = self.index.relief_of(before.iter().copied());
            let mut walk = if walk == Budgeted::Pressure {
                if !inv.quotas.iter().any(|q| q.namespace == ns) {
                    let why = no_quota(rule, &ns);
                    if req.scope != Scope::AllNamespaces {
                        return Err(Error::usage(why));
                    }
                    self.decisions.push(Decision::inactive(
                        &ns,
                        rule,
                        "pressure",
                        format!("pressure: {why}; namespace skipped"),
                    ));
                    continue;
                }
                let obstacle = |r: &str| {
                    (!quota::relievable(r, req.level, req.cascade, req.include_running))
                        .then(|| quota::why_not_relievable(r, req.level))
                };
                pressure::walk(
                    &ns,
                    &inv.quotas,
                    params.threshold,
                    obstacle,
                    &already,
                    &pool,
                )
            } else {
                let Some(budget) = watermark::budget(&inv.quotas, &ns) else {
                    if composed {
                        // A composed strategy runs the rules it can (design
                        // §5): the watermark rule is reported inactive.
                        self.decisions.push(Decision::inactive(
                            &ns,
                            rule,
                            "watermark",
                            format!(
                                "watermark rule inactive in namespace {ns}: no count/pods quota and no --capacity"
                            ),
                        ));
                        continue;
                    }
                    let why = no_budget(rule, params, &ns);
                    if req.scope != Scope::AllNamespaces {
                        return Err(Error::usage(why));
                    }
                    // Across namespaces, one without a budget is reported, not fatal.
                    self.decisions.push(Decision::inactive(
                        &ns,
                        rule,
                        "watermark",
                        format!("watermark: {why}; namespace skipped"),
                    ));
                    continue;
                };
                let already = already.amount(quota::COUNT_PODS);
                watermark::walk(
                    budget,
                    params.high_watermark,
                    params.low_watermark,
                    already,
                    &pool,
                )
            };
            walk.decision.rule = rule.map(str::to_string);
            self.planned
                .entry(ns)
                .or_default()
                .extend(walk.picked.iter().copied());
            self.decisions.push(walk.decision);
            picked.extend(walk.picked);
            picked.extend(walk.blocked);
        }
        Ok(picked)
    }
}

fn no_quota(rule: Option<&str>, ns: &str) -> String {
    let who = match rule {
        Some(rule) => format!("rule {rule} of the policy (pressure strategy)"),
        None => "--strategy pressure".to_string(),
    };
    format!(
        "{who} needs a quota to measure: namespace {ns} has no ResourceQuota and --capacity was not given; \
         create a ResourceQuota, or pass --capacity N (the number of pods the namespace may hold)"
    )
}

fn no_budget(rule: Option<&str>, params: &Params, ns: &str) -> String {
    let who = match rule {
        Some(rule) => format!(
            "rule {rule} of the policy ({} strategy)",
            params.strategy.name()
        ),
        None => format!("--strategy {}", params.strategy.name()),
    };
    format!(
        "{who} needs a pod budget: namespace {ns} has no ResourceQuota on count/pods and --capacity was not given; \
         create a ResourceQuota with spec.hard count/pods, or pass --capacity N (the number of pods the namespace may hold)"
    )
}
