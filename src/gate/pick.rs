//! `-i/--interactive`: picking by hand. After the preview, instead of the
//! yes/no question, a list of the planned deletes — all ticked, grouped by
//! test run, each with its phase and age — from which a person unticks what
//! they want to look at first. Enter deletes the ticked ones; Esc (or `q`)
//! aborts the run, deleting nothing; Ctrl-C exits at once (130). The list
//! itself is injected, so the rules are unit-tested without a terminal.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::{over_max, Verdict, DECLINED};
use crate::client::Endpoint;
use crate::duration::human;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::request::Request;

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) uid: String,
    pub(crate) label: String,
}

/// The planned deletes in the list's order: grouped by test run (runs in
/// name order, objects without a test-id last), in plan order within each;
/// columns aligned: test run, kind/name, phase, age.
pub(crate) fn rows(plan: &Plan, now: DateTime<Utc>) -> Vec<Row> {
    let mut groups: BTreeMap<(bool, String), Vec<[String; 5]>> = BTreeMap::new();
    for item in plan.to_delete() {
        let c = &item.candidate;
        let run = c.test_id().map(str::to_string);
        groups
            .entry((run.is_none(), run.clone().unwrap_or_default()))
            .or_default()
            .push([
                c.uid.to_string(),
                run.unwrap_or_else(|| "<no test-id>".into()),
                c.display_name(),
                format!("{:?}", c.phase),
                human(c.age(now)),
            ]);
    }
    let cells: Vec<[String; 5]> = groups.into_values().flatten().collect();
    let width = |i: usize| cells.iter().map(|c| c[i].len()).max().unwrap_or(0);
    let (w1, w2, w3) = (width(1), width(2), width(3));
    cells
        .into_iter()
        .map(|[uid, run, name, phase, age]| Row {
            uid,
            label: format!("{run:<w1$}   {name:<w2$}   {phase:<w3$}   {age}"),
        })
        .collect()
}

/// The rules of `decide` up to the question (nothing to do, `--max-delete`),
/// then the preview and the list. Returns the verdict and the uids the
/// person unticked. (`--yes` and `--dry-run` are refused with `-i` by
/// `request`, and a missing terminal by the pipeline.)
pub(crate) fn pick(
    plan: &Plan,
    req: &Request,
    target: &Endpoint,
    show_preview: impl FnOnce(),
    list: impl FnOnce(&str, &[String]) -> std::io::Result<Option<Vec<usize>>>,
) -> Result<(Verdict, HashSet<String>)> {
    let n = plan.delete_count();
    if n == 0 {
        return Ok((Verdict::Nothing, HashSet::new()));
    }
    over_max(plan, req)?;
    let rows = rows(plan, Utc::now());
    let prompt = format!(
        "Delete which of {n} objects in namespace {} (context {})? (space: untick/tick, a: all, enter: delete the ticked ones, esc: abort, delete nothing)",
        req.scope.label(),
        if target.context.is_empty() { "-" } else { &target.context }
    );
    show_preview();
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let ticked = match list(&prompt, &labels) {
        Ok(Some(ticked)) => ticked,
        Ok(None) => return Err(Error::Declined(DECLINED.into())),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(Error::Interrupted),
        Err(e) => {
            return Err(Error::Aborted(format!(
                "cannot show the list ({e}); nothing deleted"
            )))
        }
    };
    let ticked: HashSet<usize> = ticked.into_iter().collect();
    if ticked.is_empty() {
        return Err(Error::Declined(
            "aborted: nothing ticked, nothing deleted".into(),
        ));
    }
    let unticked: HashSet<String> = rows
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !ticked.contains(i))
        .map(|(_, r)| r.uid)
        .collect();
    if !unticked.is_empty() {
        eprintln!(
            "{} of {n} ticked; {} kept (deselected)",
            n - unticked.len(),
            unticked.len()
        );
    }
    Ok((Verdict::Proceed { prompted: true }, unticked))
}

/// The real list: dialoguer on stderr, every row ticked.
pub(crate) fn list_on_terminal(
    prompt: &str,
    items: &[String],
) -> std::io::Result<Option<Vec<usize>>> {
    // A signal while the list owns the terminal exits at once (see `stop`).
    let _prompting = crate::stop::Prompting::start();
    dialoguer::MultiSelect::new()
        .with_prompt(prompt)
        .items(items)
        .defaults(&vec![true; items.len()])
        .report(false)
        .interact_opt()
        .map_err(|e| {
            // The list hid the cursor; an error (Ctrl-C) leaves it hidden.
            let _ = console::Term::stderr().show_cursor();
            match e {
                // Ctrl-C read as a key (the list reads raw keys): the same
                // one message and exit as the signal at the prompt.
                dialoguer::Error::IO(io) if io.kind() == std::io::ErrorKind::Interrupted => {
                    crate::stop::interrupted_at_the_prompt()
                }
                dialoguer::Error::IO(io) => io,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::model::fixtures::*;
    use crate::model::{Inventory, Phase};
    use crate::plan::plan;
    use crate::select::{Criterion, Matched, Selected};
    use clap::Parser;

    fn req(args: &[&str]) -> Request {
        let mut argv = vec!["x", "--all", "-i"];
        argv.extend_from_slice(args);
        Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
    }

    fn five() -> Plan {
        let cands = [
            with_test(pod("b-1", Phase::Succeeded, 0), "run-b"),
            pod("loose", Phase::Failed, 1),
            with_test(pod("a-1", Phase::Failed, 2), "run-a"),
            with_test(job("j-a", Phase::Complete, 3), "run-a"),
            with_test(pod("a-2", Phase::Succeeded, 4), "run-a"),
        ];
        plan(
            cands
                .iter()
                .map(|c| Selected {
                    candidate: c,
                    matched_by: Matched::of(Criterion::All),
                })
                .collect(),
            &Inventory::default(),
            false,
        )
    }

    #[test]
    fn rows_are_grouped_by_test_run_with_phase_and_age() {
        let got: Vec<String> = rows(&five(), t(64)).into_iter().map(|r| r.label).collect();
        assert_eq!(
            got,
            [
                "run-a          job.batch/j-a   Complete    61s",
                "run-a          pod/a-1         Failed      62s",
                "run-a          pod/a-2         Succeeded   60s",
                "run-b          pod/b-1         Succeeded   64s",
                "<no test-id>   pod/loose       Failed      63s",
            ]
        );
    }

    #[test]
    fn unticked_rows_are_returned_and_nothing_ticked_deletes_nothing() {
        let t = Endpoint::default();
        let p = five();
        let mut shown = vec![];
        let (v, unticked) = pick(
            &p,
            &req(&[]),
            &t,
            || {},
            |prompt, items| {
                assert!(prompt.starts_with("Delete which of 5 objects in namespace crucible"));
                shown = items.to_vec();
                Ok(Some(vec![0, 2, 4]))
            },
        )
        .unwrap();
        assert_eq!(v, Verdict::Proceed { prompted: true });
        assert_eq!(shown.len(), 5);
        let mut names: Vec<&str> = p
            .items
            .iter()
            .filter(|i| unticked.contains(&*i.candidate.uid))
            .map(|i| &*i.candidate.name)
            .collect();
        names.sort();
        assert_eq!(names, ["a-1", "b-1"]);

        for answer in [Ok(Some(vec![])), Ok(None)] {
            let e = pick(&p, &req(&[]), &t, || {}, |_, _| answer).unwrap_err();
            assert_eq!(e.exit_code(), 3, "{e}");
        }
        let interrupted = std::io::Error::from(std::io::ErrorKind::Interrupted);
        let e = pick(&p, &req(&[]), &t, || {}, |_, _| Err(interrupted)).unwrap_err();
        assert_eq!(e.exit_code(), 130);
        let e = pick(
            &p,
            &req(&["--max-delete", "4"]),
            &t,
            || {},
            |_, _| panic!("must not show the list"),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 3);
    }
}
