//! What a strategy is: one small interface (`SelectionStrategy`) that each
//! file of `select/` implements, and the context it runs in. A strategy
//! declares what it reads (the flags only some strategies read, whether it
//! needs ResourceQuotas), what a request must give it (`check`), and picks
//! among the objects one rule governs, saying for each which criterion
//! matched. The registry is `select::implementation`. Pure.

use std::collections::HashSet;

use crate::cli::AgeFrom;
use crate::error::Result;
use crate::model::{Candidate, Inventory};
use crate::request::policy::Params;
use crate::request::{Criteria, QuotaFlag, Request};

use super::budget::{Budgeted, Budgets};
use super::{age, label, retention, Selected};

pub(crate) trait SelectionStrategy: Sync {
    /// The flags of `QuotaFlag` this strategy reads; given without a
    /// strategy that reads them, they are refused.
    fn reads(&self) -> &'static [QuotaFlag] {
        &[]
    }

    /// Whether it reads ResourceQuotas (the inventory then lists them).
    fn needs_quota(&self) -> bool {
        false
    }

    /// Whether every object it selects must match each criterion given
    /// (`--test-id`/`--eval-id`, `--older-than`): the objects it sees are
    /// narrowed by them first, and the ids narrow the LIST server-side. A
    /// strategy that combines criteria as a union says false.
    fn narrowed(&self) -> bool {
        true
    }

    /// What the request must give this strategy; the error names the flag
    /// to add. `policy`: a policy file may supply it per rule.
    fn check(&self, _criteria: &Criteria, _policy: bool) -> std::result::Result<(), String> {
        Ok(())
    }

    /// Picks among `members` (already narrowed when `narrowed`).
    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>>;
}

/// What a strategy may read while it picks.
pub(crate) struct Context<'c, 'r, 'a> {
    pub(crate) req: &'r Request,
    pub(crate) inv: &'a Inventory,
    /// The policy rule being run, if any.
    pub(crate) rule: Option<&'r str>,
    pub(crate) params: &'r Params,
    /// Retention multiplier by priority (1 without a policy priority).
    pub(crate) factor: &'c dyn Fn(&Candidate) -> f64,
    pub(crate) budgets: &'c mut Budgets<'r, 'a>,
    /// Run as part of another strategy: a rule that lacks what it needs
    /// (a quota budget) reports itself inactive instead of failing the run.
    pub(crate) composed: bool,
}

impl<'a> Context<'_, '_, 'a> {
    /// The label rule alone: the objects with the ids given, or None when no
    /// ids were given.
    pub(crate) fn label_rule(&self, members: &[&'a Candidate]) -> Option<Vec<&'a Candidate>> {
        let c = &self.req.criteria;
        c.has_ids().then(|| {
            members
                .iter()
                .copied()
                .filter(|m| label::matches(m, c))
                .collect()
        })
    }

    /// The age rule alone (retention multiplied by priority), or None
    /// without `--older-than` (or a rule's `olderThan`).
    pub(crate) fn age_rule(&self, members: &[&'a Candidate]) -> Option<Vec<&'a Candidate>> {
        let older = self.params.older_than?;
        let from = self.req.criteria.age_from.unwrap_or(AgeFrom::Created);
        let now = self.inv.taken_at;
        Some(
            members
                .iter()
                .copied()
                .filter(|m| age::matches(m, retention::scale(older, (self.factor)(m)), from, now))
                .collect(),
        )
    }

    /// `--all` was given.
    pub(crate) fn all(&self) -> bool {
        self.req.criteria.all
    }

    /// The members every given criterion holds for.
    pub(crate) fn narrow(&self, members: &[&'a Candidate]) -> Vec<&'a Candidate> {
        let uids = |part: Option<Vec<&'a Candidate>>| {
            part.map(|p| p.iter().map(|c| &*c.uid).collect::<HashSet<&str>>())
        };
        let (label, age) = (uids(self.label_rule(members)), uids(self.age_rule(members)));
        members
            .iter()
            .copied()
            .filter(|c| {
                label.as_ref().is_none_or(|l| l.contains(&*c.uid))
                    && age.as_ref().is_none_or(|a| a.contains(&*c.uid))
            })
            .collect()
    }

    /// A budgeted walk (pressure or watermark) over `members`.
    pub(crate) fn budget(
        &mut self,
        walk: Budgeted,
        members: &[&'a Candidate],
    ) -> Result<Vec<&'a Candidate>> {
        let composed = self.composed;
        self.budgets
            .run(self.rule, self.params, walk, composed, members)
    }
}
