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

mod namespaces;
mod quota;
mod table;
pub(crate) use namespaces::{EventsSection, NamespaceSummary};
pub(crate) use quota::{section as quota_section, QuotaSection};
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
    /// `--archive`: the directory this object's archive was written to (in a
    /// dry run: would be); null when it was not archived.
    pub(crate) archive: Option<Box<str>>,
}

impl CleanupReport {
    /// The rows the plan deletes, in its order.
    pub(crate) fn planned_deletes(&self) -> impl Iterator<Item = &Candidate> {
        self.items
            .iter()
            .filter(|i| i.action == Action::Delete)
            .map(|i| &*i.candidate)
    }
}

impl Item {
    /// `kind/name` as the API's owner reference names the controller.
    pub(crate) fn owner(&self) -> Option<String> {
        let o = self.candidate.owner.as_ref()?;
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
}

impl Serialize for Item {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let c = &*self.candidate;
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
            archive: self.archive.as_deref(),
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
                            // Kept by the archive or hook step: its reason.
                            summary.kept += 1;
                            reason = r.error.clone().unwrap_or_default();
                            (ItemResult::Kept, None)
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
                archive: None,
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
    }
}

/// What became of one row. Serialized as the word `as_str` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemResult {
    /// In the plan, not executed (client dry run, or before execution).
    Planned,
    WouldDelete,
    Deleted,
    Gone,
    Conflict,
    Failed,
    Cancelled,
    Kept,
    Skipped,
}

impl ItemResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ItemResult::Planned => "planned",
            ItemResult::WouldDelete => "wouldDelete",
            ItemResult::Deleted => "deleted",
            ItemResult::Gone => "gone",
            ItemResult::Conflict => "conflict",
            ItemResult::Failed => "failed",
            ItemResult::Cancelled => "cancelled",
            ItemResult::Kept => "kept",
            ItemResult::Skipped => "skipped",
        }
    }

    /// Listed by `-o name`: deleted, or (dry run) would be.
    fn is_deletion(self) -> bool {
        matches!(
            self,
            ItemResult::Deleted | ItemResult::WouldDelete | ItemResult::Planned
        )
    }

    /// A planned deletion that did not happen.
    fn is_miss(self) -> bool {
        matches!(
            self,
            ItemResult::Failed | ItemResult::Conflict | ItemResult::Cancelled
        )
    }
}

impl From<Outcome> for ItemResult {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Deleted => ItemResult::Deleted,
            Outcome::WouldDelete => ItemResult::WouldDelete,
            Outcome::Gone => ItemResult::Gone,
            Outcome::Conflict => ItemResult::Conflict,
            Outcome::Failed => ItemResult::Failed,
            Outcome::Cancelled => ItemResult::Cancelled,
            Outcome::Kept { .. } => ItemResult::Kept,
        }
    }
}

impl std::fmt::Display for ItemResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ItemResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
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
            if let Some(q) = &report.quota {
                out.write_all(quota::block(q, report.namespace.is_none()).as_bytes())?;
            }
            table(out, report, output == Output::Wide)
        }
    }
}

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
            line
        }
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 object".into()
    } else {
        format!("{n} objects")
    }
}

#[cfg(test)]
mod tests;
