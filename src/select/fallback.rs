//! The fallback strategy (the seed's "labels with time fallback"): objects
//! that carry a `test-id` label are selected by the label rule of the run
//! (`--test-id`/`--eval-id`; without ids, none of them), objects without one
//! by the age rule (`--older-than`, from creation or `--age-from finished`).
//! A labelled object of another run is never taken by age. Pure.

use crate::error::Result;
use crate::model::Candidate;
use crate::request::Criteria;

use super::strategy::{Context, SelectionStrategy};
use super::{union, Criterion, Selected};

pub(crate) struct Fallback;

impl SelectionStrategy for Fallback {
    /// Two rules for two kinds of object: the ids must not narrow the LIST,
    /// or the unlabelled objects would never be seen.
    fn narrowed(&self) -> bool {
        false
    }

    fn check(&self, c: &Criteria, policy: bool) -> std::result::Result<(), String> {
        if c.older_than.is_some() || policy {
            Ok(())
        } else {
            Err("--strategy fallback needs --older-than DUR for objects without a test-id label, e.g. --older-than 30m".into())
        }
    }

    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>> {
        let (labelled, unlabelled): (Vec<&Candidate>, Vec<&Candidate>) =
            members.iter().partition(|c| c.test_id().is_some());
        let mut parts = vec![];
        parts.extend(cx.label_rule(&labelled).map(|l| (Criterion::Label, l)));
        parts.extend(cx.age_rule(&unlabelled).map(|a| (Criterion::Age, a)));
        Ok(union(parts))
    }
}
