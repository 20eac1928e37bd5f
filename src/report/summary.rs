//! The lines under the table: the summary line, the unfinished objects the
//! default table folds into one line, and what `-o name` leaves for stderr.

use std::collections::BTreeMap;

use super::{CleanupReport, ItemResult, Shown};
use crate::cli::DryRun;
use crate::model::{Kind, Phase};
use crate::plan::Action;
use crate::select::guard::Protection;

/// One line per planned deletion that did not happen (`failed`, `conflict`,
/// `cancelled`): what `-o name` leaves out, for stderr.
pub(crate) fn failures(report: &CleanupReport) -> Vec<String> {
    report
        .items
        .iter()
        .filter(|i| i.result.is_miss())
        .map(|i| {
            let why = i.error.as_deref().map_or_else(
                || match i.result {
                    ItemResult::Cancelled => "not deleted: interrupted".to_string(),
                    other => other.to_string(),
                },
                str::to_string,
            );
            let c = &i.candidate;
            format!("{}/{} ({}): {why}", c.kind.resource(), c.name, i.result)
        })
        .collect()
}

pub(crate) fn summary_line(r: &CleanupReport) -> String {
    let s = &r.summary;
    let scope = r
        .namespace
        .clone()
        .map_or("all namespaces".to_string(), |n| format!("namespace {n}"));
    let guarded = format!("{} kept, {} skipped", s.kept, s.skipped);
    if s.planned == 0 {
        return format!(
            "nothing to delete in {scope} ({} matched; {guarded})",
            s.selected
        );
    }
    if r.shown == Shown::BeforeAsking {
        return format!(
            "will delete {} in {scope} (asking first); {guarded}",
            count(s.planned)
        );
    }
    match r.dry_run_mode {
        Some(DryRun::Client) => format!(
            "dry run: would delete {} in {scope}; {guarded}",
            count(s.planned)
        ),
        Some(_) => format!(
            "server dry run: {} accepted, {} conflict, {} failed in {scope}; {guarded}",
            s.would_delete, s.conflict, s.failed
        ),
        None => {
            let mut line = format!(
                "deleted {}, {} already gone, {} conflict, {} failed in {scope}; {guarded}",
                s.deleted, s.gone, s.conflict, s.failed
            );
            if s.cancelled > 0 {
                line.push_str(&format!("; {} not started (interrupted)", s.cancelled));
            }
            let left = r
                .items
                .iter()
                .filter(|i| {
                    i.notes
                        .as_ref()
                        .is_some_and(|n| n.still_terminating.is_some())
                })
                .count();
            if left > 0 {
                line.push_str(&format!("; {left} still terminating when the wait ended"));
            }
            line
        }
    }
}

/// The rows skipped because they have not finished, in one line for the
/// default table (which shows only what is deleted): `1 active job and 1
/// running pod skipped: not finished (add --include-running)`, and the pods
/// of jobs still running (`2 running pods skipped: their jobs have not
/// finished`). None when there are none.
pub(crate) fn unfinished_line(r: &CleanupReport) -> Option<String> {
    let not_finished = Protection::NotFinished.reason();
    let mut by: BTreeMap<(Kind, Phase), usize> = BTreeMap::new();
    let mut of_running_jobs: BTreeMap<(Kind, Phase), usize> = BTreeMap::new();
    for i in &r.items {
        let c = &i.candidate;
        if i.action != Action::Skip || c.phase.is_finished() || c.terminating {
            continue;
        }
        if *i.reason == *not_finished {
            *by.entry((c.kind, c.phase)).or_default() += 1;
        } else if c.owner_job().is_some() {
            // A pod kept for its job, which has not finished (see the guards).
            *of_running_jobs.entry((c.kind, c.phase)).or_default() += 1;
        }
    }
    let mut sentences = vec![];
    if !by.is_empty() {
        sentences.push(format!(
            "{} skipped: not finished (add --include-running)",
            counted(&by)
        ));
    }
    if !of_running_jobs.is_empty() {
        let n: usize = of_running_jobs.values().sum();
        let theirs = if n == 1 {
            "its job has"
        } else {
            "their jobs have"
        };
        sentences.push(format!(
            "{} skipped: {theirs} not finished",
            counted(&of_running_jobs)
        ));
    }
    (!sentences.is_empty()).then(|| sentences.join("; "))
}

/// `1 active job, 1 running pod and 2 pending pods`: jobs first, as in the table.
fn counted(by: &BTreeMap<(Kind, Phase), usize>) -> String {
    let parts: Vec<String> = by
        .iter()
        .rev()
        .map(|((kind, phase), n)| {
            let state = match phase {
                Phase::Active => "active".to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            let noun = kind.plural();
            let noun = if *n == 1 {
                &noun[..noun.len() - 1]
            } else {
                noun
            };
            format!("{n} {state} {noun}")
        })
        .collect();
    super::quota::join(&parts)
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 object".into()
    } else {
        format!("{n} objects")
    }
}
