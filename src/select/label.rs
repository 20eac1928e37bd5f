//! The label strategy: objects of the given test runs or evaluations
//! (`--test-id`, `--eval-id`), or every finished object a policy rule's
//! selector matches; with `--older-than` too, both must hold.

use crate::error::Result;
use crate::model::Candidate;
use crate::request::Criteria;

use super::strategy::{Context, SelectionStrategy};
use super::{every, Selected};

pub(crate) struct Label;

impl SelectionStrategy for Label {
    fn check(&self, c: &Criteria, policy: bool) -> std::result::Result<(), String> {
        if c.has_ids() || c.all || policy {
            Ok(())
        } else {
            Err("--strategy label needs --test-id ID or --eval-id ID (or --all)".into())
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
pub(crate) fn matches(c: &Candidate, test_ids: &[String], eval_ids: &[String]) -> bool {
    let hit = |ids: &[String], v: &Option<String>| {
        ids.is_empty() || v.as_ref().is_some_and(|v| ids.contains(v))
    };
    hit(test_ids, &c.test_id) && hit(eval_ids, &c.eval_id)
}
