//! Selection: which objects of an inventory a strategy picks. Pure: no I/O,
//! the clock comes from the inventory snapshot. Each strategy lives in its
//! own file; guards (keep, terminating, running…) are the plan's business.

mod age;
mod label;

use serde::Serialize;

use crate::cli::Level;
use crate::model::{Candidate, Inventory, Kind, OwnerState};
use crate::request::Request;

/// A rule that selected an object; reported as the row's matched-by list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Label,
    Age,
    All,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Label => "label",
            Rule::Age => "age",
            Rule::All => "all",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Selected<'a> {
    pub candidate: &'a Candidate,
    pub matched_by: Vec<Rule>,
}

pub fn select<'a>(req: &Request, inv: &'a Inventory) -> Vec<Selected<'a>> {
    let now = inv.taken_at;
    let c = &req.criteria;
    // Label and age strategies alike: every rule the user gave must hold.
    eligible(req.level, inv)
        .filter(|cand| req.base.matches(&cand.labels))
        .filter_map(|cand| {
            let mut by = Vec::new();
            if c.has_ids() {
                if !label::matches(cand, &c.test_ids, &c.eval_ids) {
                    return None;
                }
                by.push(Rule::Label);
            }
            if let Some(older) = c.older_than {
                if !age::matches(cand, older, c.age_from.unwrap_or(crate::cli::AgeFrom::Created), now) {
                    return None;
                }
                by.push(Rule::Age);
            }
            if c.all {
                by.push(Rule::All);
            }
            (!by.is_empty()).then_some(Selected { candidate: cand, matched_by: by })
        })
        .collect()
}

/// The objects a level lets through: with `all`, a job is the unit and its
/// pods go with it, so only pods without a living owner job are separate units.
pub fn eligible(level: Level, inv: &Inventory) -> Box<dyn Iterator<Item = &Candidate> + '_> {
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
            owners: [(j1.uid.clone(), OwnerState::Finished), (j2.uid.clone(), OwnerState::Unfinished)].into(),
            jobs: vec![j1, j2],
            quotas: vec![],
            taken_at: t(1000),
        }
    }

    #[test]
    fn label_rule_picks_one_test_run() {
        let inv = inventory();
        let sel = select(&req(&["--test-id", "t1"]), &inv);
        assert_eq!(names(&sel), ["bare-t1", "pod-a"]);
        assert!(sel.iter().all(|s| s.matched_by == [Rule::Label]));
        assert_eq!(names(&select(&req(&["--test-id", "t1", "--level", "jobs"]), &inv)), ["job-a"]);
        assert_eq!(names(&select(&req(&["--test-id", "t1", "--level", "all"]), &inv)), ["bare-t1", "job-a"]);
        assert!(select(&req(&["--test-id", "t1", "--level", "none"]), &inv).is_empty());
        assert_eq!(names(&select(&req(&["--test-id", "t1", "--test-id", "t2"]), &inv)), ["bare-t1", "pod-a", "pod-b"]);
        assert_eq!(names(&select(&req(&["--eval-id", "nope"]), &inv)), Vec::<String>::new());
    }

    #[test]
    fn age_rule_measures_from_creation_or_finish() {
        let inv = inventory();
        // now = 1000; created 10 → 990s old, finished 20 → 980s old.
        assert_eq!(names(&select(&req(&["--older-than", "895s"]), &inv)), ["leftover", "pod-a"]);
        assert_eq!(names(&select(&req(&["--older-than", "490s"]), &inv)), ["leftover", "pod-a", "pod-b"]);
        assert_eq!(names(&select(&req(&["--older-than", "491s"]), &inv)), ["leftover", "pod-a"]);
        assert_eq!(names(&select(&req(&["--older-than", "985s"]), &inv)), ["pod-a"]);
        assert_eq!(
            names(&select(&req(&["--older-than", "985s", "--age-from", "finished"]), &inv)),
            Vec::<String>::new()
        );
        assert_eq!(names(&select(&req(&["--older-than", "980s", "--age-from", "finished"]), &inv)), ["pod-a"]);
    }

    #[test]
    fn label_and_age_together_must_both_hold() {
        let inv = inventory();
        let sel = select(&req(&["--test-id", "t1", "--older-than", "500s"]), &inv);
        assert_eq!(names(&sel), ["pod-a"]);
        assert_eq!(sel[0].matched_by, [Rule::Label, Rule::Age]);
    }

    #[test]
    fn base_selector_is_checked_client_side_too() {
        let mut inv = inventory();
        inv.pods[3].labels.clear();
        assert_eq!(names(&select(&req(&["--all"]), &inv)), ["bare-t1", "pod-a", "pod-b"]);
    }

    #[test]
    fn level_all_treats_pods_of_vanished_jobs_as_bare() {
        let mut inv = inventory();
        let ghost = job("ghost", Phase::Complete, 0);
        inv.pods.push(owned_by(pod("orphan", Phase::Succeeded, 0), &ghost));
        inv.owners.insert(ghost.uid.clone(), OwnerState::Gone);
        assert_eq!(names(&select(&req(&["--all", "--level", "all"]), &inv)), ["bare-t1", "job-a", "job-b", "leftover", "orphan"]);
    }
}
