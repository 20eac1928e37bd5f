//! The report: one `CleanupReport` document, rendered as a kubectl-like
//! table (stdout), JSON, YAML or `-o name`. Schema version `crucible-clean/v1`.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use comfy_table::{presets, Table};
use serde::Serialize;

use crate::cli::Output;
use crate::duration::human;
use crate::execute::{self, Outcome};
use crate::model::Kind;
use crate::plan::{Action, Plan};
use crate::request::Mode;
use crate::select::Rule;

mod quota;
pub use quota::{section as quota_section, QuotaSection};

pub const API_VERSION: &str = "crucible-clean/v1";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanupReport {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The namespace cleaned; null with --all-namespaces.
    pub namespace: Option<String>,
    pub context: String,
    pub dry_run: bool,
    /// `client` or `server` for a dry run, else null.
    pub dry_run_mode: Option<&'static str>,
    pub strategy: String,
    pub selector: String,
    pub items: Vec<Item>,
    pub summary: Summary,
    /// Pressure, watermark and hybrid: every quota resource before and
    /// after the plan, and what the strategy decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaSection>,
    /// `--watch`: the cycle number, from 1. The JSON report is then one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub phase: crate::model::Phase,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub age_seconds: i64,
    pub test_id: Option<String>,
    pub eval_id: Option<String>,
    pub owner: Option<String>,
    pub matched_by: Vec<Rule>,
    pub action: Action,
    pub reason: String,
    /// planned | wouldDelete | deleted | gone | conflict | failed | cancelled | kept | skipped
    pub result: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub selected: usize,
    pub planned: usize,
    pub deleted: usize,
    pub would_delete: usize,
    pub gone: usize,
    pub conflict: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub kept: usize,
    pub skipped: usize,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub struct Context<'a> {
    pub namespace: Option<&'a str>,
    pub context: &'a str,
    pub mode: Mode,
    pub strategy: &'a str,
    pub selector: String,
    pub now: DateTime<Utc>,
}

pub fn build(plan: &Plan, results: &[execute::Result], ctx: &Context) -> CleanupReport {
    let by_uid: HashMap<&str, &execute::Result> =
        results.iter().map(|r| (r.uid.as_str(), r)).collect();
    let mut summary = Summary {
        selected: plan.items.len(),
        ..Default::default()
    };
    let items = plan
        .items
        .iter()
        .map(|i| {
            let c = &i.candidate;
            let (result, error) = match i.action {
                Action::Keep => {
                    summary.kept += 1;
                    ("kept".to_string(), None)
                }
                Action::Skip => {
                    summary.skipped += 1;
                    ("skipped".to_string(), None)
                }
                Action::Delete => {
                    summary.planned += 1;
                    match by_uid.get(c.uid.as_str()) {
                        None => ("planned".to_string(), None),
                        Some(r) => {
                            let counter = match r.outcome {
                                Outcome::Deleted => &mut summary.deleted,
                                Outcome::WouldDelete => &mut summary.would_delete,
                                Outcome::Gone => &mut summary.gone,
                                Outcome::Conflict => &mut summary.conflict,
                                Outcome::Failed => &mut summary.failed,
                                Outcome::Cancelled => &mut summary.cancelled,
                            };
                            *counter += 1;
                            (outcome_word(&r.outcome).to_string(), r.error.clone())
                        }
                    }
                }
            };
            Item {
                kind: c.kind,
                namespace: c.namespace.clone(),
                name: c.name.clone(),
                uid: c.uid.clone(),
                phase: c.phase,
                created_at: ts(c.created_at),
                finished_at: c.finished_at.map(ts),
                age_seconds: c.age(ctx.now).num_seconds().max(0),
                test_id: c.test_id.clone(),
                eval_id: c.eval_id.clone(),
                owner: c
                    .owner
                    .as_ref()
                    .map(|o| format!("{}/{}", o.kind.to_lowercase(), o.name)),
                matched_by: i.matched_by.clone(),
                action: i.action,
                reason: i.reason.clone(),
                result,
                error,
            }
        })
        .collect();
    CleanupReport {
        api_version: API_VERSION,
        kind: "CleanupReport",
        namespace: ctx.namespace.map(str::to_string),
        context: ctx.context.to_string(),
        dry_run: ctx.mode.is_dry_run(),
        dry_run_mode: match ctx.mode {
            Mode::Apply => None,
            Mode::DryRunClient => Some("client"),
            Mode::DryRunServer => Some("server"),
        },
        strategy: ctx.strategy.to_string(),
        selector: ctx.selector.clone(),
        items,
        summary,
        quota: None,
        cycle: None,
    }
}

fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Deleted => "deleted",
        Outcome::WouldDelete => "wouldDelete",
        Outcome::Gone => "gone",
        Outcome::Conflict => "conflict",
        Outcome::Failed => "failed",
        Outcome::Cancelled => "cancelled",
    }
}

pub fn render(report: &CleanupReport, output: Output) -> String {
    match output {
        Output::Json if report.cycle.is_some() => {
            serde_json::to_string(report).unwrap_or_default() + "\n"
        }
        Output::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Output::Yaml => serde_norway::to_string(report).unwrap_or_default(),
        // Only what was deleted (in a dry run: what would be), as kubectl.
        Output::Name => report
            .items
            .iter()
            .filter(|i| matches!(i.result.as_str(), "deleted" | "wouldDelete" | "planned"))
            .map(|i| format!("{}/{}\n", i.kind.resource(), i.name))
            .collect(),
        Output::Table | Output::Wide => {
            let block = report
                .quota
                .as_ref()
                .map(|q| quota::block(q, report.namespace.is_none()))
                .unwrap_or_default();
            block + &table(report, output == Output::Wide)
        }
    }
}

/// One line per planned deletion that did not happen (`failed`, `conflict`,
/// `cancelled`): what `-o name` leaves out, for stderr.
pub fn failures(report: &CleanupReport) -> Vec<String> {
    report
        .items
        .iter()
        .filter(|i| matches!(i.result.as_str(), "failed" | "conflict" | "cancelled"))
        .map(|i| {
            let why = i.error.clone().unwrap_or_else(|| match i.result.as_str() {
                "cancelled" => "not deleted: interrupted".to_string(),
                other => other.to_string(),
            });
            format!("{}/{} ({}): {why}", i.kind.resource(), i.name, i.result)
        })
        .collect()
}

/// A table as kubectl prints one: no borders, upper-case headers, columns
/// three spaces apart (cli-runtime's tabwriter padding), no trailing blanks.
pub(crate) fn kubectl_table(header: Vec<&str>, rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_style(presets::NOTHING).force_no_tty();
    t.set_header(header);
    for row in rows {
        t.add_row(row);
    }
    let n = t.column_count();
    for (idx, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, if idx + 1 == n { 0 } else { 3 }));
    }
    t.trim_fmt() + "\n"
}

fn table(report: &CleanupReport, wide: bool) -> String {
    let rows: Vec<&Item> = report
        .items
        .iter()
        .filter(|i| wide || i.action == Action::Delete)
        .collect();
    let mut out = String::new();
    if !rows.is_empty() {
        // As kubectl: a NAMESPACE column with -A (and in wide output).
        let with_ns = wide || report.namespace.is_none();
        let mut header = vec![];
        if with_ns {
            header.push("NAMESPACE");
        }
        header.extend(["KIND", "NAME", "PHASE", "AGE", "TEST-ID", "EVAL-ID"]);
        if wide {
            header.extend(["FINISHED", "OWNER", "MATCHED-BY"]);
        }
        header.push("REASON");
        let now_age = |i: &Item| human(chrono::Duration::seconds(i.age_seconds));
        let mut cells = vec![];
        for i in rows {
            let mut row = vec![];
            if with_ns {
                row.push(i.namespace.clone());
            }
            row.extend([
                format!("{:?}", i.kind),
                i.name.clone(),
                format!("{:?}", i.phase),
                now_age(i),
                i.test_id.clone().unwrap_or_else(|| "<none>".into()),
                i.eval_id.clone().unwrap_or_else(|| "<none>".into()),
            ]);
            if wide {
                row.push(i.finished_at.clone().unwrap_or_else(|| "<none>".into()));
                row.push(i.owner.clone().unwrap_or_else(|| "<none>".into()));
                row.push(
                    i.matched_by
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            row.push(reason_cell(i));
            cells.push(row);
        }
        out.push_str(&kubectl_table(header, cells));
    }
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

fn reason_cell(i: &Item) -> String {
    match i.action {
        Action::Delete => {
            let r = match i.result.as_str() {
                "planned" => format!(
                    "matched {}",
                    i.matched_by
                        .iter()
                        .map(|r| r.name())
                        .collect::<Vec<_>>()
                        .join("+")
                ),
                other => other.to_string(),
            };
            match &i.error {
                Some(e) => format!("{r}: {e}"),
                None => r,
            }
        }
        _ => format!("{}: {}", i.result, i.reason),
    }
}

pub fn summary_line(r: &CleanupReport) -> String {
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
        Some("client") => format!(
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
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::{Inventory, Phase};
    use crate::plan::plan;
    use crate::select::Selected;

    fn sample() -> Plan {
        let mut kept = with_test(pod("kept-pod", Phase::Succeeded, 5), "t1");
        kept.keep = true;
        let cands = [
            with_test(pod("pod-a", Phase::Succeeded, 0), "t1"),
            kept,
            job("job-x", Phase::Complete, 0),
        ];
        let inv = Inventory::default();
        let sel = cands
            .iter()
            .map(|c| Selected {
                candidate: c,
                matched_by: vec![Rule::Label],
            })
            .collect();
        plan(sel, &inv, false)
    }

    fn ctx(mode: Mode) -> Context<'static> {
        Context {
            namespace: Some("crucible"),
            context: "admin",
            mode,
            strategy: "label",
            selector: "app=evaluation".into(),
            now: t(3600),
        }
    }

    #[test]
    fn table_looks_like_kubectl() {
        let r = build(&sample(), &[], &ctx(Mode::DryRunClient));
        let out = render(&r, Output::Table);
        assert_eq!(
            out,
            "KIND   NAME    PHASE       AGE   TEST-ID   EVAL-ID   REASON\n\
             Job    job-x   Complete    60m   <none>    <none>    matched label\n\
             Pod    pod-a   Succeeded   60m   t1        <none>    matched label\n\
             dry run: would delete 2 objects in namespace crucible; 1 kept, 0 skipped\n"
        );
        let wide = render(&r, Output::Wide);
        assert!(wide.contains("kept: crucible-clean/keep=true"), "{wide}");
        assert!(wide.starts_with("NAMESPACE   KIND"), "{wide}");
        let all_ns = build(
            &sample(),
            &[],
            &Context {
                namespace: None,
                ..ctx(Mode::DryRunClient)
            },
        );
        let out = render(&all_ns, Output::Table);
        assert!(out.starts_with("NAMESPACE   KIND   NAME"), "{out}");
        assert!(
            out.ends_with("dry run: would delete 2 objects in all namespaces; 1 kept, 0 skipped\n"),
            "{out}"
        );
    }

    #[test]
    fn json_follows_the_documented_schema() {
        let p = sample();
        let results = vec![
            execute::Result {
                uid: "uid-job-x".into(),
                outcome: Outcome::Deleted,
                error: None,
                code: None,
            },
            execute::Result {
                uid: "uid-pod-a".into(),
                outcome: Outcome::Conflict,
                error: Some("uid mismatch".into()),
                code: Some(409),
            },
        ];
        let r = build(&p, &results, &ctx(Mode::Apply));
        let v: serde_json::Value = serde_json::from_str(&render(&r, Output::Json)).unwrap();
        assert_eq!(v["apiVersion"], "crucible-clean/v1");
        assert_eq!(v["kind"], "CleanupReport");
        assert_eq!(v["dryRun"], false);
        assert_eq!(v["items"][0]["kind"], "Job");
        assert_eq!(v["items"][0]["result"], "deleted");
        assert_eq!(v["items"][1]["name"], "pod-a");
        assert_eq!(v["items"][1]["result"], "conflict");
        assert_eq!(v["items"][1]["error"], "uid mismatch");
        assert_eq!(v["items"][1]["testId"], "t1");
        assert_eq!(v["items"][1]["matchedBy"], serde_json::json!(["label"]));
        assert_eq!(v["items"][1]["createdAt"], "2027-01-15T08:00:00Z");
        assert_eq!(v["items"][1]["ageSeconds"], 3600);
        assert_eq!(v["items"][2]["action"], "keep");
        assert_eq!(
            v["summary"],
            serde_json::json!({"selected":3,"planned":2,"deleted":1,"wouldDelete":0,"gone":0,"conflict":1,"failed":0,"cancelled":0,"kept":1,"skipped":0})
        );
        let y = render(&r, Output::Yaml);
        assert!(
            y.starts_with("apiVersion: crucible-clean/v1\nkind: CleanupReport\n"),
            "{y}"
        );
    }

    #[test]
    fn name_output_lists_only_deletions() {
        let r = build(&sample(), &[], &ctx(Mode::DryRunClient));
        assert_eq!(render(&r, Output::Name), "job.batch/job-x\npod/pod-a\n");
        assert!(failures(&r).is_empty());
        // A refused delete is not listed; it is named on stderr instead.
        let results = vec![
            execute::Result {
                uid: "uid-job-x".into(),
                outcome: Outcome::Deleted,
                error: None,
                code: None,
            },
            execute::Result {
                uid: "uid-pod-a".into(),
                outcome: Outcome::Failed,
                error: Some("denied by policy".into()),
                code: Some(403),
            },
        ];
        let r = build(&sample(), &results, &ctx(Mode::Apply));
        assert_eq!(render(&r, Output::Name), "job.batch/job-x\n");
        assert_eq!(failures(&r), ["pod/pod-a (failed): denied by policy"]);
    }

    #[test]
    fn summary_line_when_nothing_matches() {
        let r = build(&Plan::default(), &[], &ctx(Mode::Apply));
        assert_eq!(
            render(&r, Output::Table),
            "nothing to delete in namespace crucible (0 matched; 0 kept, 0 skipped)\n"
        );
    }
}
