//! Hybrid: the union of the label rule (`--test-id`/`--eval-id`), the age
//! rule (`--older-than`) and the watermark rule, each evaluated on its own.
//! A row lists every rule that picked it. Pure.

use std::collections::HashMap;

use crate::model::Candidate;

use super::{Criterion, Selected};

/// Merges what each rule picked, in first-seen order; `matched_by` follows
/// the order of `parts` and never repeats a rule.
pub(crate) fn union<'a>(parts: Vec<(Criterion, Vec<&'a Candidate>)>) -> Vec<Selected<'a>> {
    let mut out: Vec<Selected<'a>> = vec![];
    let mut at: HashMap<&str, usize> = HashMap::new();
    for (rule, picked) in parts {
        for c in picked {
            match at.get(c.uid.as_str()) {
                Some(&i) => {
                    if !out[i].matched_by.contains(&rule) {
                        out[i].matched_by.push(rule);
                    }
                }
                None => {
                    at.insert(c.uid.as_str(), out.len());
                    out.push(Selected {
                        candidate: c,
                        matched_by: vec![rule],
                    });
                }
            }
        }
    }
    out
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
            .map(|s| (s.candidate.name.as_str(), s.matched_by.clone()))
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
