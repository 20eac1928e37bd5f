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
/// default table (which shows only what is deleted): `1 running pod and 1
/// active job skipped: not finished (add --include-running)`. None when
/// there are none.
pub(crate) fn unfinished_line(r: &CleanupReport) -> Option<String> {
    let not_finished = Protection::NotFinished.reason();
    let mut by: BTreeMap<(Kind, Phase), usize> = BTreeMap::new();
    for i in &r.items {
        if i.action == Action::Skip && *i.reason == *not_finished {
            *by.entry((i.candidate.kind, i.candidate.phase)).or_default() += 1;
        }
    }
    if by.is_empty() {
        return None;
    }
    let parts: Vec<String> = by
        .iter()
        .rev() // jobs first, as in the table
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
    Some(format!(
        "{} skipped: not finished (add --include-running)",
        super::quota::join(&parts)
    ))
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 object".into()
    } else {
        format!("{n} objects")
    }
}
