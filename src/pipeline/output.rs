//! The report of a pass (`report_for`) and where it goes: stdout, written
//! as it is produced, or a plan file; and what the stages after the plan
//! add to its rows (archives, what `--wait` left), said once on stderr
//! where a person must know it.

use std::collections::BTreeMap;
use std::path::Path;

use super::Survey;
use crate::cli::Output;
use crate::error::{Error, Result};
use crate::execute::Left;
use crate::planfile::Saved;
use crate::predelete::Archived;
use crate::request::{Mode, Request};
use crate::{client, execute, model, plan, quota, report, select};

/// Adds to each row its archive (and whether its logs are missing) and
/// what `--wait` saw still terminating. Archives without logs are said
/// once on stderr: a row in a long table is easy to miss.
pub(super) fn add_notes(
    rep: &mut report::CleanupReport,
    archives: &BTreeMap<String, Archived>,
    left: &[Left],
) {
    if archives.is_empty() && left.is_empty() {
        return;
    }
    let left: BTreeMap<&str, &Left> = left.iter().map(|l| (l.uid.as_str(), l)).collect();
    let mut without_logs = vec![];
    for item in &mut rep.items {
        let candidate = std::sync::Arc::clone(&item.candidate);
        let uid = &*candidate.uid;
        if let Some(a) = archives.get(uid) {
            let deleted = item.result == report::ItemResult::Deleted;
            let notes = item.notes_mut();
            notes.archive = Some(a.dir.clone());
            if let (true, Some(why)) = (deleted, &a.logs_missing) {
                notes.logs_missing = Some(why.clone());
                without_logs.push(format!("{} ({why})", candidate.display_name()));
            }
        }
        if let Some(l) = left.get(uid) {
            item.notes_mut().still_terminating = Some(l.finalizers.clone());
        }
    }
    if let Some(first) = without_logs.first() {
        let more = match without_logs.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        eprintln!("warning: archived without logs: {first}{more}; the rows say why");
    }
}

/// Prints the report on stdout as it is written (see `report::write`). A
/// reader that went away (`| head`) ends the output quietly, as kubectl's.
pub(crate) fn print_report(rep: &report::CleanupReport, output: Output) -> Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match report::write(&mut out, rep, output).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Runtime(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

/// `--save-plan FILE`: the report of this dry run, as `-o json` prints it.
pub(super) fn save_plan(path: &Path, rep: &report::CleanupReport) -> Result<()> {
    use std::io::Write;
    std::fs::File::create(path)
        .and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            report::write(&mut out, rep, Output::Json)?;
            out.flush()
        })
        .map_err(|e| Error::Runtime(format!("cannot write plan file {}: {e}", path.display())))?;
    eprintln!(
        "plan saved to {}: apply it with --from-plan {} --yes",
        path.display(),
        path.display()
    );
    Ok(())
}

/// The report of a pass, from its plan and the deletes' results.
pub(super) fn report_for(
    req: &Request,
    target: &client::Endpoint,
    s: &Survey,
    plan: plan::Plan,
    saved: Option<&Saved>,
    results: &[execute::Deletion],
    mode: Mode,
) -> report::CleanupReport {
    let (strategy, selector) = match saved {
        // What selected the objects: the plan's strategy and selector.
        Some(p) => (p.strategy.as_str(), p.selector.to_string()),
        None => (
            req.strategy.name(),
            select::server_selector(req).to_string(),
        ),
    };
    let mut rep = report::build(
        plan,
        results,
        &report::Context {
            namespace: req.scope.namespace(),
            context: &target.context,
            cluster: report::Cluster {
                server: target.server.clone(),
                kube_system_uid: target.cluster_uid.clone(),
            },
            mode,
            strategy,
            selector,
            now: s.inv.taken_at,
        },
    );
    rep.from_plan = saved.map(|p| p.path.display().to_string());
    if saved.is_none() && select::needs_quota(req) {
        let index = quota::Index::new(&s.inv, req.cascade);
        // A run that deleted says what it freed; a plan, what it would free.
        let done = mode == Mode::Apply;
        let units: Vec<&model::Candidate> = if done {
            rep.deleted().collect()
        } else {
            rep.planned_deletes().collect()
        };
        let decisions = s.decisions.clone();
        let section = report::quota_section(&s.inv.quotas, &index, &units, decisions, done);
        rep.quota = Some(section);
    }
    rep
}
