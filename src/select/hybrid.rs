//! Hybrid: the union of the label rule (`--test-id`/`--eval-id`), the age
//! rule (`--older-than`) and the watermark rule, each evaluated on its own.
//! A row lists every rule that picked it. Pure.

use std::collections::HashMap;

use crate::model::Candidate;

use super::{Rule, Selected};

/// Merges what each rule picked, in first-seen order; `matched_by` follows
/// the order of `parts` and never repeats a rule.
pub fn union<'a>(parts: Vec<(Rule, Vec<&'a Candidate>)>) -> Vec<Selected<'a>> {
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
            (Rule::Label, vec![&a, &c]),
            (Rule::Age, vec![&a, &b]),
            (Rule::Watermark, vec![&b, &a, &a]),
        ]);
        let got: Vec<(&str, Vec<Rule>)> = sel
            .iter()
            .map(|s| (s.candidate.name.as_str(), s.matched_by.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", vec![Rule::Label, Rule::Age, Rule::Watermark]),
                ("c", vec![Rule::Label]),
                ("b", vec![Rule::Age, Rule::Watermark]),
            ]
        );
        assert!(union(vec![(Rule::Label, vec![])]).is_empty());
    }
}
