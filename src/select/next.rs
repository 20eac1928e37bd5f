//! When the plan changes next by the clock alone: the earliest moment after
//! the inventory was taken at which an object crosses a rule of time (its
//! `--older-than` age, from creation or finish, or the end of its
//! retention), each scaled by its priority as selection scales it, or the
//! end of a `keep-until` (its own, or one its job or pod holds it by). `--watch`
//! sets its timer there, as the TTL-after-finished controller does. A
//! moment where nothing ends up changing (an object still held by another
//! rule) costs one re-plan, never a missed one. Pure.

use chrono::{DateTime, Utc};

use super::retention::scale;
use super::{eligible, groups, priority};
use crate::cli::AgeFrom;
use crate::model::{Candidate, Inventory, Phase};
use crate::request::policy::Params;
use crate::request::Request;

pub(crate) fn next_change(req: &Request, inv: &Inventory) -> Option<DateTime<Utc>> {
    let units: Vec<&Candidate> = eligible(req.level, inv)
        .filter(|c| req.base.matches(&c.labels))
        .collect();
    let from = req.criteria.age_from.unwrap_or(AgeFrom::Created);
    // A keep-until ends by the clock too: on the object itself, or on a
    // pod that keeps its job (or a job that keeps its pods).
    let keeps = units
        .iter()
        .map(|c| c.keep)
        .chain(inv.kept_jobs.values().map(|(_, k)| *k))
        .chain(inv.kept_pods.values().map(|(_, k)| *k))
        .filter_map(|k| k.until_time());
    groups(req, &units)
        .iter()
        .flat_map(|g| g.members.iter().map(move |c| (g.params, *c)))
        .flat_map(|(params, c)| moments(params, c, from, priority(req, c).map_or(1.0, |p| p.1)))
        .chain(keeps)
        .filter(|t| *t > inv.taken_at)
        .min()
}

/// When each rule of time turns for `c`.
fn moments(params: &Params, c: &Candidate, from: AgeFrom, factor: f64) -> Vec<DateTime<Utc>> {
    let after = |since: Option<DateTime<Utc>>, d: std::time::Duration| {
        let d = chrono::Duration::from_std(scale(d, factor)).ok()?;
        since?.checked_add_signed(d)
    };
    let mut at = vec![];
    if let Some(older) = params.older_than {
        let since = match from {
            AgeFrom::Created => Some(c.created_at),
            AgeFrom::Finished => c.finished_at,
        };
        at.extend(after(since, older));
    }
    let kept_for = match c.phase {
        Phase::Succeeded | Phase::Complete => params.keep_succeeded_for,
        Phase::Failed => params.keep_failed_for,
        _ => None,
    };
    if let Some(keep) = kept_for {
        at.extend(after(c.finished_at, keep));
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::model::fixtures::*;
    use clap::Parser;

    fn req(args: &[&str]) -> Request {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
    }

    fn inv(pods: Vec<Candidate>, now: i64) -> Inventory {
        Inventory {
            pods: shared(pods),
            taken_at: t(now),
            ..Default::default()
        }
    }

    #[test]
    fn the_next_age_to_be_reached_from_creation_or_finish() {
        // Fixtures finish 10 s after they are created.
        let i = inv(
            vec![
                pod("old", Phase::Succeeded, 0),
                pod("young", Phase::Succeeded, 100),
                pod("younger", Phase::Failed, 200),
            ],
            150,
        );
        // 60 s from creation: old at 60 (past), young at 160, younger at 260.
        assert_eq!(
            next_change(&req(&["--older-than", "60s"]), &i),
            Some(t(160))
        );
        // From finish: young at 170.
        let r = req(&["--older-than", "60s", "--age-from", "finished"]);
        assert_eq!(next_change(&r, &i), Some(t(170)));
        // Everything already old enough: no moment ahead.
        assert_eq!(
            next_change(
                &req(&["--older-than", "1s"]),
                &inv(vec![pod("a", Phase::Failed, 0)], 150)
            ),
            None
        );
        // No rule of time at all.
        assert_eq!(next_change(&req(&["--all"]), &i), None);
        assert_eq!(next_change(&req(&["--test-id", "t"]), &i), None);
    }

    #[test]
    fn the_end_of_retention_counts_and_running_pods_have_none() {
        let mut running = pod("running", Phase::Running, 0);
        running.finished_at = None;
        let i = inv(
            vec![
                pod("ok", Phase::Succeeded, 0),
                pod("bad", Phase::Failed, 0),
                running,
            ],
            100,
        );
        // finished at 10: kept 200 s when succeeded (to 210), 500 s when failed.
        let r = req(&[
            "--all",
            "--keep-succeeded-for",
            "200s",
            "--keep-failed-for",
            "500s",
        ]);
        assert_eq!(next_change(&r, &i), Some(t(210)));
        let r = req(&["--all", "--keep-failed-for", "500s"]);
        assert_eq!(next_change(&r, &i), Some(t(510)));
        // A running pod is not even a unit without --include-running; with
        // it, it has no finish time and so no moment.
        let r = req(&[
            "--all",
            "--include-running",
            "--older-than",
            "1000s",
            "--age-from",
            "finished",
        ]);
        assert_eq!(next_change(&r, &i), Some(t(1010)));
    }

    #[test]
    fn a_keep_until_ahead_sets_the_timer_at_its_end() {
        use crate::model::Keep;
        let mut kept = pod("kept", Phase::Succeeded, 0);
        kept.keep = Keep::until(t(300));
        let mut marked = pod("marked", Phase::Succeeded, 0);
        marked.keep = Keep::MARKED;
        let mut i = inv(vec![kept, marked], 150);
        // --all has no rule of time: only the keep-until ends.
        assert_eq!(next_change(&req(&["--all"]), &i), Some(t(300)));
        // A pod whose keep-until holds its job.
        i.kept_pods
            .insert("job-uid".into(), ("p".into(), Keep::until(t(250))));
        assert_eq!(next_change(&req(&["--all"]), &i), Some(t(250)));
        // Past ones set nothing.
        let mut past = pod("past", Phase::Succeeded, 0);
        past.keep = Keep::until(t(100));
        assert_eq!(next_change(&req(&["--all"]), &inv(vec![past], 150)), None);
    }

    #[test]
    fn objects_outside_the_base_selector_set_no_timer() {
        let mut other = pod("other", Phase::Succeeded, 100);
        other.labels.clear();
        let i = inv(vec![other], 150);
        assert_eq!(next_change(&req(&["--older-than", "60s"]), &i), None);
    }
}
