//! Tables as kubectl prints them, and the report's table written row by
//! row.

use std::io::{self, Write};

use comfy_table::{presets, Table};

use super::summary::unfinished_line;
use super::{human, summary_line, ts, CleanupReport, Item, ItemResult, Shown};
use crate::plan::Action;

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

/// Produces every row of a table, one call of the visitor per row.
pub(crate) type Rows<'a> = dyn Fn(&mut dyn FnMut(&[String])) + 'a;

/// Writes a table as [`kubectl_table`] lays it out, from rows produced
/// twice by `rows` (once to measure the columns, once to write them), so
/// that no row is kept.
pub(crate) fn write_table(out: &mut dyn Write, header: &[&str], rows: &Rows<'_>) -> io::Result<()> {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    rows(&mut |row| {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    });
    let last = widths.len().saturating_sub(1);
    let mut line = String::new();
    let mut put = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| {
        line.clear();
        for (idx, cell) in cells.enumerate() {
            line.push_str(cell);
            if idx < last {
                let pad = widths[idx] - width(cell) + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let trimmed = line.trim_end();
        out.write_all(trimmed.as_bytes())?;
        out.write_all(b"\n")
    };
    put(out, &mut header.iter().copied())?;
    let mut result = Ok(());
    rows(&mut |row| {
        if result.is_ok() {
            result = put(out, &mut row.iter().map(String::as_str));
        }
    });
    result
}

/// The report's table: the rows to delete (`wide`: every row), or after a
/// question only those whose result differs from the plan shown; then the
/// summary line, and in the default table the skipped unfinished objects
/// folded into one line.
pub(super) fn table(out: &mut dyn Write, report: &CleanupReport, wide: bool) -> io::Result<()> {
    let after_asking = report.shown == Shown::AfterAsking;
    let shown = |i: &&Item| {
        if after_asking {
            i.differs_from_plan()
        } else {
            wide || i.action == Action::Delete
        }
    };
    if report.items.iter().any(|i| shown(&i)) {
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
        let rows = |each: &mut dyn FnMut(&[String])| {
            let mut row = Vec::with_capacity(header.len());
            for i in report.items.iter().filter(shown) {
                let c = &*i.candidate;
                row.clear();
                if with_ns {
                    row.push(c.namespace.to_string());
                }
                row.extend([
                    format!("{:?}", c.kind),
                    c.name.to_string(),
                    format!("{:?}", c.phase),
                    now_age(i),
                    c.test_id().unwrap_or("<none>").to_string(),
                    c.eval_id().unwrap_or("<none>").to_string(),
                ]);
                if wide {
                    row.push(c.finished_at.map(ts).unwrap_or_else(|| "<none>".into()));
                    row.push(i.owner().unwrap_or_else(|| "<none>".into()));
                    row.push(
                        i.matched_by
                            .iter()
                            .map(|r| r.name())
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                }
                row.push(reason_cell(i));
                each(&row);
            }
        };
        write_table(out, &header, &rows)?;
    }
    writeln!(out, "{}", summary_line(report))?;
    if !wide && !after_asking {
        if let Some(line) = unfinished_line(report) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// The REASON column: why a planned row is planned (the report's `reason`,
/// as JSON says it), else what became of it, with its notes.
fn reason_cell(i: &Item) -> String {
    let mut cell = match i.action {
        // Kept by the archive or hook step: the reason says so.
        Action::Delete if i.result == ItemResult::Kept => i.reason.to_string(),
        Action::Delete => {
            let r = match i.result {
                ItemResult::Planned => i.reason.to_string(),
                other => other.to_string(),
            };
            match &i.error {
                Some(e) => format!("{r}: {e}"),
                None => r,
            }
        }
        _ => format!("{}: {}", i.result, i.reason),
    };
    if let Some(n) = &i.notes {
        cell.push_str(&n.suffix());
    }
    cell
}
