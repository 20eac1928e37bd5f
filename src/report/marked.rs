//! The report of `--mark-kept-for`: a `KeepReport`, each object the ids name
//! and whether it was marked kept until the time, as a table, JSON, YAML or
//! `-o name` (what was marked).

use std::io::{self, Write};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{kubectl_table, ts, API_VERSION};
use crate::cli::Output;
use crate::execute::mark::MarkOutcome;
use crate::model::{Candidate, Kind, Phase};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeepReport {
    pub(crate) api_version: &'static str,
    pub(crate) kind: &'static str,
    /// The namespace; null with --all-namespaces.
    pub(crate) namespace: Option<String>,
    pub(crate) context: String,
    pub(crate) generated_at: String,
    pub(crate) dry_run: bool,
    /// The time written as `crucible-clean/keep-until`.
    pub(crate) keep_until: String,
    /// `crucible-clean/keep-reason`, if given.
    pub(crate) reason: Option<String>,
    pub(crate) selector: String,
    pub(crate) items: Vec<MarkedItem>,
    pub(crate) summary: MarkSummary,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MarkedItem {
    pub(crate) kind: Kind,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) phase: Phase,
    pub(crate) test_id: Option<String>,
    pub(crate) eval_id: Option<String>,
    /// `marked`, `wouldMark`, `gone`, `cancelled` or `failed`.
    pub(crate) result: &'static str,
    pub(crate) keep_until: String,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MarkSummary {
    pub(crate) selected: usize,
    pub(crate) marked: usize,
    pub(crate) would_mark: usize,
    pub(crate) gone: usize,
    pub(crate) cancelled: usize,
    pub(crate) failed: usize,
}

/// What the report says besides its rows.
pub(crate) struct MarkContext<'a> {
    pub(crate) namespace: Option<&'a str>,
    pub(crate) context: &'a str,
    pub(crate) dry_run: bool,
    pub(crate) until: DateTime<Utc>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) selector: String,
    pub(crate) now: DateTime<Utc>,
}

pub(crate) fn build(
    objects: &[Arc<Candidate>],
    marks: &[MarkOutcome],
    cx: &MarkContext,
) -> KeepReport {
    let mut summary = MarkSummary {
        selected: objects.len(),
        ..Default::default()
    };
    let until = ts(cx.until);
    let items = objects
        .iter()
        .zip(marks)
        .map(|(c, m)| {
            let (result, error) = match m {
                MarkOutcome::Marked => {
                    summary.marked += 1;
                    ("marked", None)
                }
                MarkOutcome::WouldMark => {
                    summary.would_mark += 1;
                    ("wouldMark", None)
                }
                MarkOutcome::Gone => {
                    summary.gone += 1;
                    ("gone", None)
                }
                MarkOutcome::Cancelled => {
                    summary.cancelled += 1;
                    ("cancelled", Some("not marked: interrupted".to_string()))
                }
                MarkOutcome::Failed(e, _) => {
                    summary.failed += 1;
                    ("failed", Some(e.clone()))
                }
            };
            MarkedItem {
                kind: c.kind,
                namespace: c.namespace.to_string(),
                name: c.name.to_string(),
                uid: c.uid.to_string(),
                phase: c.phase,
                test_id: c.test_id().map(str::to_string),
                eval_id: c.eval_id().map(str::to_string),
                result,
                keep_until: until.clone(),
                error,
            }
        })
        .collect();
    KeepReport {
        api_version: API_VERSION,
        kind: "KeepReport",
        namespace: cx.namespace.map(str::to_string),
        context: cx.context.to_string(),
        generated_at: ts(cx.now),
        dry_run: cx.dry_run,
        keep_until: until,
        reason: cx.reason.map(str::to_string),
        selector: cx.selector.clone(),
        items,
        summary,
    }
}

/// The last line of the table.
pub(crate) fn summary_line(r: &KeepReport) -> String {
    let s = &r.summary;
    let verb = if r.dry_run { "would mark" } else { "marked" };
    let n = if r.dry_run { s.would_mark } else { s.marked };
    let mut line = format!(
        "{verb} {n} of {} object{} kept until {}",
        s.selected,
        if s.selected == 1 { "" } else { "s" },
        r.keep_until
    );
    for (count, what) in [
        (s.gone, "gone"),
        (s.failed, "failed"),
        (s.cancelled, "cancelled"),
    ] {
        if count > 0 {
            line.push_str(&format!(", {count} {what}"));
        }
    }
    line
}

pub(crate) fn write(out: &mut dyn Write, r: &KeepReport, output: Output) -> io::Result<()> {
    match output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, r)?;
            out.write_all(b"\n")
        }
        Output::Yaml => serde_norway::to_writer(out, r).map_err(io::Error::other),
        Output::Name => {
            for i in r
                .items
                .iter()
                .filter(|i| matches!(i.result, "marked" | "wouldMark"))
            {
                writeln!(out, "{}/{}", i.kind.resource(), i.name)?;
            }
            Ok(())
        }
        Output::Table | Output::Wide => {
            let wide = output == Output::Wide;
            let mut header = vec!["KIND", "NAME", "PHASE", "TEST-ID", "EVAL-ID", "RESULT"];
            if wide {
                header.insert(0, "NAMESPACE");
                header.push("ERROR");
            }
            let rows = r
                .items
                .iter()
                .map(|i| {
                    let mut row = vec![
                        format!("{:?}", i.kind),
                        i.name.clone(),
                        format!("{:?}", i.phase),
                        i.test_id.clone().unwrap_or_else(|| "-".into()),
                        i.eval_id.clone().unwrap_or_else(|| "-".into()),
                        i.result.to_string(),
                    ];
                    if wide {
                        row.insert(0, i.namespace.clone());
                        row.push(i.error.clone().unwrap_or_default());
                    }
                    row
                })
                .collect();
            if !r.items.is_empty() {
                out.write_all(kubectl_table(header, rows).as_bytes())?;
            }
            writeln!(out, "{}", summary_line(r))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{job, pod, shared};
    use chrono::TimeZone;

    #[test]
    fn each_object_and_what_became_of_it() {
        let objects = shared(vec![
            job("j1", Phase::Complete, 0),
            pod("p1", Phase::Running, 0),
            pod("p2", Phase::Failed, 0),
        ]);
        let marks = [
            MarkOutcome::Marked,
            MarkOutcome::Gone,
            MarkOutcome::Failed("forbidden".into(), Some(403)),
        ];
        let until = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let cx = MarkContext {
            namespace: Some("crucible"),
            context: "kind",
            dry_run: false,
            until,
            reason: Some("t::x"),
            selector: "app=evaluation,test-id in (t)".into(),
            now: until,
        };
        let r = build(&objects, &marks, &cx);
        assert_eq!(
            r.summary,
            MarkSummary {
                selected: 3,
                marked: 1,
                gone: 1,
                failed: 1,
                ..Default::default()
            }
        );
        let json: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "KeepReport");
        assert_eq!(json["keepUntil"], "2030-01-01T00:00:00Z");
        assert_eq!(json["items"][0]["result"], "marked");
        assert_eq!(json["items"][2]["error"], "forbidden");
        let mut names = Vec::new();
        write(&mut names, &r, Output::Name).unwrap();
        assert_eq!(String::from_utf8(names).unwrap(), "job.batch/j1\n");
        let mut table = Vec::new();
        write(&mut table, &r, Output::Table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.starts_with("KIND "), "{table}");
        assert!(
            table.ends_with(
                "marked 1 of 3 objects kept until 2030-01-01T00:00:00Z, 1 gone, 1 failed\n"
            ),
            "{table}"
        );
    }
}
