//! The label strategy: objects of the given test runs or evaluations
//! (`--test-id`, `--eval-id`), or every finished object a policy rule's
//! selector matches; with `--older-than` too, both must hold.

use crate::error::Result;
use crate::model::{Candidate, RUN_ID};
use crate::request::Criteria;

use super::strategy::{Context, SelectionStrategy};
use super::{every, Selected};

pub(crate) struct Label;

impl SelectionStrategy for Label {
    fn check(&self, c: &Criteria, policy: bool) -> std::result::Result<(), String> {
        if c.has_ids() || c.all || policy {
            Ok(())
        } else {
            Err(
                "--strategy label needs --test-id ID, --eval-id ID or --run-id RUN (or --all)"
                    .into(),
            )
        }
    }

    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>> {
        // A policy rule of this strategy selects by its selector alone.
        Ok(every(cx, members, cx.rule.is_some()))
    }
}

/// The label rule: every id list that is given must contain the object's id.
/// With `--stale-runs` the object must be one of a dead run's (its Lease's
/// namespace, created since the Lease), even when no run is stale: then
/// nothing matches.
pub(crate) fn matches(c: &Candidate, criteria: &Criteria) -> bool {
    let hit = |ids: &[String], v: Option<&str>| {
        ids.is_empty() || v.is_some_and(|v| ids.iter().any(|i| i == v))
    };
    hit(&criteria.test_ids, c.test_id())
        && hit(&criteria.eval_ids, c.eval_id())
        && hit(&criteria.run_ids, c.labels.get(RUN_ID))
        && (!criteria.stale_runs || criteria.stale.iter().any(|s| s.covers(c)))
}
