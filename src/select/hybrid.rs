//! The hybrid strategy: the union of the label rule (`--test-id`/`--eval-id`),
//! the age rule (`--older-than`) and the watermark strategy, each evaluated on
//! its own. A row lists every rule that picked it. Pure.

use crate::error::Result;
use crate::model::Candidate;
use crate::request::QuotaFlag;

use super::strategy::{Context, SelectionStrategy};
use super::watermark::Watermark;
use super::{union, Criterion, Selected};

pub(crate) struct Hybrid;

impl SelectionStrategy for Hybrid {
    fn reads(&self) -> &'static [QuotaFlag] {
        Watermark.reads()
    }

    fn needs_quota(&self) -> bool {
        true
    }

    /// A union: an object the ids do not match may still go by age or
    /// watermark, so the ids must not narrow the LIST.
    fn narrowed(&self) -> bool {
        false
    }

    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>> {
        let mut parts = vec![];
        parts.extend(cx.label_rule(members).map(|l| (Criterion::Label, l)));
        parts.extend(cx.age_rule(members).map(|a| (Criterion::Age, a)));
        // The watermark strategy through its own interface, on every member;
        // without a budget it reports itself inactive rather than failing.
        let outer = std::mem::replace(&mut cx.composed, true);
        let watermark = Watermark.pick(cx, members);
        cx.composed = outer;
        let watermark = watermark?.into_iter().map(|s| s.candidate).collect();
        parts.push((Criterion::Watermark, watermark));
        if cx.all() {
            parts.push((Criterion::All, members.to_vec()));
        }
        Ok(union(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::Phase;

    #[test]
    fn every_rule_that_picked_a_row_is_listed() {
        let (a, b, c) = (
            pod("a", Phase::Succeeded, 0),
            pod("b", Phase::Failed, 1),
            pod("c", Phase::Succeeded, 2),
        );
        let sel = union(vec![
            (Criterion::Label, vec![&a, &c]),
            (Criterion::Age, vec![&a, &b]),
            (Criterion::Watermark, vec![&b, &a, &a]),
        ]);
        let got: Vec<(&str, Vec<Criterion>)> = sel
            .iter()
            .map(|s| (&*s.candidate.name, s.matched_by.iter().collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a",
                    vec![Criterion::Label, Criterion::Age, Criterion::Watermark]
                ),
                ("c", vec![Criterion::Label]),
                ("b", vec![Criterion::Age, Criterion::Watermark]),
            ]
        );
        assert!(union(vec![(Criterion::Label, vec![])]).is_empty());
    }
}
