//! `--mark-kept-for DUR`: list the objects of the ids (every phase, pods and
//! jobs), annotate each `crucible-clean/keep-until=<now + DUR>`, print a
//! `KeepReport`. Deletes nothing.

use std::sync::Arc;

use crate::client::Endpoint;
use crate::error::{exit, Error, Result};
use crate::execute::mark::{self, MarkOutcome};
use crate::model::Candidate;
use crate::report::marked::{self, MarkContext};
use crate::request::marking::MarkKept;
use crate::request::{Mode, Request};
use crate::stop::Stop;
use crate::{inventory, select};

use super::until_stopped;

pub(crate) async fn mark_kept(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    m: &MarkKept,
    stop: &Stop,
) -> Result<i32> {
    let needs = select::needs(req);
    let inv = until_stopped(stop, inventory::take(client, &req.scope, &needs)).await?;
    // The server-side selector names the ids; a terminating object cannot be kept.
    let objects: Vec<Arc<Candidate>> = inv
        .jobs
        .iter()
        .chain(inv.pods.iter())
        .filter(|c| !c.terminating)
        .cloned()
        .collect();
    let now = chrono::Utc::now();
    let until = now
        + chrono::Duration::from_std(m.duration)
            .map_err(|_| Error::usage("--mark-kept-for is too long"))?;
    let dry_run = match req.mode {
        Mode::Apply => None,
        Mode::DryRunClient => Some(false),
        Mode::DryRunServer => Some(true),
    };
    let marks = mark::mark(client, &objects, until, m.reason.as_deref(), dry_run, stop).await;
    let report = marked::build(
        &objects,
        &marks,
        &MarkContext {
            namespace: req.scope.namespace(),
            context: &target.context,
            dry_run: req.mode.is_dry_run(),
            until,
            reason: m.reason.as_deref(),
            selector: needs.label_selector.clone(),
            now,
        },
    );
    {
        use std::io::Write;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        match marked::write(&mut out, &report, req.output).and_then(|()| out.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Error::Runtime(format!("cannot write the report: {e}")))
            }
            _ => {}
        }
    }
    if stop.is_set() {
        return Err(Error::Interrupted);
    }
    let failed: Vec<Option<u16>> = marks
        .iter()
        .filter_map(|m| match m {
            MarkOutcome::Failed(_, code) => Some(*code),
            _ => None,
        })
        .collect();
    Ok(if failed.is_empty() {
        exit::OK
    } else if failed.iter().all(|c| matches!(c, Some(401 | 403))) {
        exit::CLUSTER
    } else {
        exit::FAILED
    })
}
