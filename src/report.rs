//! The report: one `CleanupReport` document, rendered as a kubectl-like
//! table (stdout), JSON, YAML or `-o name`. Schema version `crucible-clean/v1`.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::cli::{DryRun, Output};
use crate::duration::human;
use crate::execute::{self, Outcome};
use crate::model::{Candidate, Kind};
use crate::plan::{Action, Plan};
use crate::request::Mode;
use crate::select::Matched;

pub(crate) mod marked;
mod namespaces;
mod quota;
mod result;
mod summary;
mod table;
pub(crate) use namespaces::{EventsSection, NamespaceSummary};
pub(crate) use quota::{section as quota_section, QuotaSection};
pub(crate) use result::ItemResult;
pub(crate) use summary::failures;
use summary::summary_line;
pub(crate) use table::kubectl_table;
use table::table;

pub(crate) const API_VERSION: &str = "crucible-clean/v1";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CleanupReport {
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    /// The namespace cleaned; null with --all-namespaces.
    pub(crate) namespace: Option<String>,
    pub(crate) context: String,
    /// Which cluster: what `--from-plan` checks a plan against.
    pub(crate) cluster: Cluster,
    /// When the objects were listed (RFC 3339): a plan's age.
    pub(crate) generated_at: String,
    pub(crate) dry_run: bool,
    /// `client` or `server` for a dry run, else null.
    pub(crate) dry_run_mode: Option<DryRun>,
    pub(crate) strategy: String,
    pub(crate) selector: String,
    pub(crate) items: Vec<Item>,
    pub(crate) summary: Summary,
    /// Pressure, watermark and hybrid: every quota resource before and
    /// after the plan, and what the strategy decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) quota: Option<QuotaSection>,
    /// `--watch`: the cycle number, from 1. The JSON report is then one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cycle: Option<u64>,
    /// `--from-plan`: the plan file applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) from_plan: Option<String>,
    /// With --all-namespaces: the summary of each namespace that had a row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) namespaces: Option<Vec<NamespaceSummary>>,
    /// With Events on (`--events`, `--watch`): how many were recorded and
    /// how many failed (a failed Event never fails its delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) events: Option<EventsSection>,
    /// When the table is printed: how much of it a person has seen already.
    #[serde(skip)]
    pub(crate) shown: Shown,
}

/// Where a report stands towards a person at a terminal; changes only the
/// table and its summary line, never JSON, YAML or `-o name`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Shown {
    /// The report of a run (or dry run): every row.
    #[default]
    Whole,
    /// The plan shown before the question: it will delete, once asked.
    BeforeAsking,
    /// The result after a person answered: the plan was shown, so only the
    /// rows whose result differs from it, and the summary line.
    AfterAsking,
}

/// The cluster a report was made on.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Cluster {
    /// The API server's URL, as the kubeconfig (or the pod) names it.
    pub(crate) server: String,
    /// The uid of the kube-system namespace, the same by whatever URL the
    /// cluster is reached: read for plans (a dry run with -o json|yaml,
    /// `--save-plan`) and `--from-plan`; null otherwise, or when not readable.
    pub(crate) kube_system_uid: Option<String>,
}

/// One row of the report: the object's record, shared with the plan (not
/// copied: a report may have tens of thousands of rows), and what became of
/// it. Serialized as `ItemJson` lays it out.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) candidate: Arc<Candidate>,
    pub(crate) age_seconds: i64,
    pub(crate) matched_by: Matched,
    pub(crate) action: Action,
    pub(crate) reason: Box<str>,
    pub(crate) result: ItemResult,
    pub(crate) error: Option<Box<str>>,
    /// What else there is to say of the row (its archive, what `--wait`
    /// saw); rare, so boxed: a row stays small.
    pub(crate) notes: Option<Box<Notes>>,
}

/// What a row says besides its result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Notes {
    /// `--archive`: the directory this object's archive was written to (in
    /// a dry run: would be).
    pub(crate) archive: Option<String>,
    /// `--archive`: the archive holds no log at all, and why.
    pub(crate) logs_missing: Option<String>,
    /// `--wait`: still there (terminating) when the wait ended, held by
    /// these finalizers.
    pub(crate) still_terminating: Option<Vec<String>>,
}

impl Notes {
    /// What the table's REASON adds after the result: `; archived without
    /// logs: …`, `; still terminating (finalizers: …)`.
    pub(crate) fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(why) = &self.logs_missing {
            out.push_str(&format!("; archived without logs: {why}"));
        }
        if let Some(f) = &self.still_terminating {
            if f.is_empty() {
                out.push_str("; still terminating");
            } else {
                out.push_str(&format!(
                    "; still terminating (finalizers: {})",
                    f.join(", ")
                ));
            }
        }
        out
    }
}

impl CleanupReport {
    /// The objects this run deleted, in the plan's order.
    pub(crate) fn deleted(&self) -> impl Iterator<Item = &Candidate> {
        self.items
            .iter()
            .filter(|i| i.result == ItemResult::Deleted)
            .map(|i| &*i.candidate)
    }

    /// The rows the plan deletes, in its order.
    pub(crate) fn planned_deletes(&self) -> impl Iterator<Item = &Candidate> {
        self.items
            .iter()
            .filter(|i| i.action == Action::Delete)
            .map(|i| &*i.candidate)
    }
}

impl Item {
    /// The row's notes, made on first use.
    pub(crate) fn notes_mut(&mut self) -> &mut Notes {
        self.notes.get_or_insert_with(Default::default)
    }

    /// Whether the row tells more than the plan shown before the question:
    /// a planned delete that did not end `deleted`, or with a note (logs
    /// missing, still terminating), or an object a person unticked.
    pub(crate) fn differs_from_plan(&self) -> bool {
        match self.action {
            Action::Delete => {
                self.result != ItemResult::Deleted
                    || self.notes.as_ref().is_some_and(|n| !n.suffix().is_empty())
            }
            _ => &*self.reason == crate::plan::DESELECTED,
        }
    }

    /// `kind/name` as the API's owner reference names the controller.
    pub(crate) fn owner(&self) -> Option<String> {
        let o = self.candidate.controller()?;
        Some(format!("{}/{}", o.kind.to_lowercase(), o.name))
    }
}

/// The JSON (and YAML) shape of a row, written as each row is serialized.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemJson<'a> {
    kind: Kind,
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    phase: crate::model::Phase,
    created_at: String,
    finished_at: Option<String>,
    age_seconds: i64,
    test_id: Option<&'a str>,
    eval_id: Option<&'a str>,
    owner: Option<String>,
    matched_by: Matched,
    action: Action,
    reason: &'a str,
    result: ItemResult,
    error: Option<&'a str>,
    archive: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logs_missing: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    still_terminating: Option<StillTerminating<'a>>,
}

/// `stillTerminating: {finalizers: […]}`.
#[derive(Serialize)]
struct StillTerminating<'a> {
    finalizers: &'a [String],
}

impl Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let c = &*self.candidate;
        let notes = self.notes.as_deref();
        ItemJson {
            kind: c.kind,
            namespace: &c.namespace,
            name: &c.name,
            uid: &c.uid,
            phase: c.phase,
            created_at: ts(c.created_at),
            finished_at: c.finished_at.map(ts),
            age_seconds: self.age_seconds,
            test_id: c.test_id(),
            eval_id: c.eval_id(),
            owner: self.owner(),
            matched_by: self.matched_by,
            action: self.action,
            reason: &self.reason,
            result: self.result,
            error: self.error.as_deref(),
            archive: notes.and_then(|n| n.archive.as_deref()),
            logs_missing: notes.and_then(|n| n.logs_missing.as_deref()),
            still_terminating: notes
                .and_then(|n| n.still_terminating.as_deref())
                .map(|finalizers| StillTerminating { finalizers }),
        }
        .serialize(s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    pub(crate) selected: usize,
    pub(crate) planned: usize,
    pub(crate) deleted: usize,
    pub(crate) would_delete: usize,
    pub(crate) gone: usize,
    pub(crate) conflict: usize,
    pub(crate) failed: usize,
    pub(crate) cancelled: usize,
    pub(crate) kept: usize,
    pub(crate) skipped: usize,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) struct Context<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) context: &'a str,
    pub(crate) cluster: Cluster,
    pub(crate) mode: Mode,
    pub(crate) strategy: &'a str,
    pub(crate) selector: String,
    pub(crate) now: DateTime<Utc>,
}

/// Consumes the plan: its rows become the report's (a plan may have tens of
/// thousands of rows, and a copy of each would double them).
pub(crate) fn build(plan: Plan, results: &[execute::Deletion], ctx: &Context) -> CleanupReport {
    let by_uid: HashMap<&str, &execute::Deletion> =
        results.iter().map(|r| (r.uid.as_str(), r)).collect();
    let mut summary = Summary {
        selected: plan.items.len(),
        ..Default::default()
    };
    let items = plan
        .items
        .into_iter()
        .map(|i| {
            let c = &i.candidate;
            let mut reason = i.reason;
            if i.action == Action::Delete && reason.is_empty() {
                // The one wording of why a row is planned, for the table and JSON alike.
                reason = planned_because(i.matched_by);
            }
            let (result, error) = match i.action {
                Action::Keep => {
                    summary.kept += 1;
                    (ItemResult::Kept, None)
                }
                Action::Skip => {
                    summary.skipped += 1;
                    (ItemResult::Skipped, None)
                }
                Action::Delete => {
                    summary.planned += 1;
                    match by_uid.get(&*c.uid) {
                        None => (ItemResult::Planned, None),
                        Some(r) if matches!(r.outcome, Outcome::Kept { .. }) => {
                            // Kept at the delete (a keep marker seen then,
                            // the archive or the hook): its reason.
                            summary.kept += 1;
                            reason = r.error.clone().unwrap_or_default();
                            (ItemResult::Kept, None)
                        }
                        Some(r) if r.outcome == Outcome::Skipped => {
                            // Held by a guard at the delete: its reason.
                            summary.skipped += 1;
                            reason = r.error.clone().unwrap_or_default();
                            (ItemResult::Skipped, None)
                        }
                        Some(r) => {
                            let counter = match r.outcome {
                                Outcome::Deleted => &mut summary.deleted,
                                Outcome::WouldDelete => &mut summary.would_delete,
                                Outcome::Gone => &mut summary.gone,
                                Outcome::Conflict => &mut summary.conflict,
                                Outcome::Failed => &mut summary.failed,
                                Outcome::Cancelled => &mut summary.cancelled,
                                Outcome::Kept { .. } => &mut summary.kept,
                                Outcome::Skipped => &mut summary.skipped,
                            };
                            *counter += 1;
                            (ItemResult::from(r.outcome), r.error.clone())
                        }
                    }
                }
            };
            Item {
                age_seconds: c.age(ctx.now).num_seconds().max(0),
                candidate: i.candidate,
                matched_by: i.matched_by,
                action: i.action,
                reason: reason.into_boxed_str(),
                result,
                error: error.map(String::into_boxed_str),
                notes: None,
            }
        })
        .collect::<Vec<Item>>();
    let namespaces = ctx.namespace.is_none().then(|| namespaces::of(&items));
    CleanupReport {
        api_version: API_VERSION,
        kind: "CleanupReport",
        namespace: ctx.namespace.map(str::to_string),
        context: ctx.context.to_string(),
        cluster: ctx.cluster.clone(),
        generated_at: ts(ctx.now),
        dry_run: ctx.mode.is_dry_run(),
        dry_run_mode: ctx.mode.dry_run(),
        strategy: ctx.strategy.to_string(),
        selector: ctx.selector.clone(),
        items,
        summary,
        quota: None,
        cycle: None,
        from_plan: None,
        namespaces,
        events: None,
        shown: Shown::Whole,
    }
}

/// Why a row is planned for deletion: `matched label`, `matched label+age`.
fn planned_because(m: Matched) -> String {
    let rules: Vec<&str> = m.iter().map(|r| r.name()).collect();
    if rules.is_empty() {
        "selected".into()
    } else {
        format!("matched {}", rules.join("+"))
    }
}

/// The report as `output` prints it, in memory (previews, small reports).
pub(crate) fn render(report: &CleanupReport, output: Output) -> String {
    let mut out = Vec::new();
    // Writing to memory cannot fail; a report serializes.
    let _ = write(&mut out, report, output);
    String::from_utf8(out).unwrap_or_default()
}

/// Writes the report as `output` prints it, row by row: nothing the size of
/// the whole report is built first (a dry run over tens of thousands of
/// objects would otherwise hold its output twice).
pub(crate) fn write(out: &mut dyn Write, report: &CleanupReport, output: Output) -> io::Result<()> {
    match output {
        Output::Json if report.cycle.is_some() => {
            serde_json::to_writer(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        }
        Output::Yaml => serde_norway::to_writer(out, report).map_err(io::Error::other),
        // Only what was deleted (in a dry run: what would be), as kubectl.
        Output::Name => {
            for i in report.items.iter().filter(|i| i.result.is_deletion()) {
                let c = &i.candidate;
                writeln!(out, "{}/{}", c.kind.resource(), c.name)?;
            }
            Ok(())
        }
        Output::Table | Output::Wide => {
            if let Some(n) = report.cycle {
                // --watch: each cycle's table under its number and time; a
                // cycle with nothing to delete is one line.
                if report.summary.planned == 0 {
                    return writeln!(
                        out,
                        "cycle {n} at {}: {}",
                        report.generated_at,
                        summary_line(report)
                    );
                }
                writeln!(out, "cycle {n} at {}:", report.generated_at)?;
            }
            if let Some(q) = &report.quota {
                out.write_all(quota::block(q, report.namespace.is_none()).as_bytes())?;
            }
            table(out, report, output == Output::Wide)
        }
    }
}

#[cfg(test)]
mod tests;
