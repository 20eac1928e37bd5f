//! `--watch`: keep cleaning until SIGTERM or SIGINT, for a Deployment (or a
//! long CronJob) in the cluster. Unattended, so `--yes` is required
//! (`Request::from_cli` checks). `--watch=poll` is `poll.rs`.
//!
//! Event-driven, as the TTL-after-finished controller is: the inventory's
//! watch keeps a cache of compact records current (one LIST per resource,
//! then WATCH), and each reconcile runs the same select → plan → gate →
//! execute → report stages on a snapshot of it (`super::reconcile`), when
//! `schedule` says so: after a change (debounced), when the next object
//! becomes eligible by age or retention, after a backoff when a reconcile
//! failed, and after every watch has been listed (the start, the
//! `--interval` re-list, the recovery of a failed watch). Idle, it sends
//! the API server nothing.
//!
//! A reconcile that deleted or failed something prints its report (with
//! `-o json`, one compact JSON line carrying `cycle`, the reconcile's
//! number); so does the first, and in a dry run each whose plan differs
//! from the last printed. A signal between reconciles ends the watch:
//! exit 0, or 1 when any reconcile failed; during one, it stops its deletes
//! as in a single run: the partial report, exit 130.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::WatchMode;
use crate::client::{self, Endpoint};
use crate::error::{exit, Error, Result};
use crate::inventory::{self, Change, Resource, Snapshot, Watched};
use crate::log::log;
use crate::metrics::{self, Metrics, Readiness, Trigger};
use crate::report::{CleanupReport, ItemResult};
use crate::request::watch::Watch;
use crate::request::Request;
use crate::select;
use crate::stop::Stop;

use super::holds::{Holds, FIRST_HOLD};
use super::schedule::Schedule;
use super::{print_report, reconcile, until_stopped, Cycle};

pub(crate) async fn watch(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    w: Watch,
    stop: &Stop,
) -> Result<i32> {
    match w.mode {
        WatchMode::Poll => super::poll::poll(client, target, req, w.interval, stop).await,
        WatchMode::Event => event(client, target, req, w.interval, stop).await,
    }
}

/// What a reconcile in flight gives back.
type Running<'a> = Pin<Box<dyn Future<Output = Reconciled> + 'a>>;

struct Reconciled {
    number: u64,
    trigger: Trigger,
    took: Duration,
    result: Result<(Cycle, Option<chrono::DateTime<chrono::Utc>>)>,
}

async fn event(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    interval: Duration,
    stop: &Stop,
) -> Result<i32> {
    let metrics = serve_metrics(req, Readiness::Watching).await?;
    let needs = select::needs(req);
    // Watches stay open for minutes: a client without --request-timeout's
    // read timeout (kube-runtime's watcher notices a silent stream itself).
    let watching = client::connect_watch(&req.connection).await?;
    let mut watched = Watched::start(&watching, &req.scope, &needs);
    let mut plan = Schedule::new(interval, Instant::now());
    let mut running: Option<Running> = None;
    let (mut n, mut failed): (u64, u64) = (0, 0);
    let mut printed = Printed::default();
    let mut holds = Holds::default();
    let mut down: BTreeMap<Resource, String> = BTreeMap::new();
    log(
        req.verbosity,
        2,
        format!(
            "watch: listing and watching {}; a full re-list every {}",
            resource_names(&watched),
            human(interval)
        ),
    );
    loop {
        let now = Instant::now();
        if plan.relist_due(now) {
            log(req.verbosity, 2, "watch: the interval's full re-list");
            for (r, _) in watched.sizes() {
                if let Some(m) = &metrics {
                    m.restarted(r.name(), "interval");
                }
            }
            watched.relist();
        }
        if running.is_none() && !stop.is_set() {
            if let Some(trigger) = plan.due(now, watched.synced()) {
                plan.starting();
                n += 1;
                log(
                    req.verbosity,
                    2,
                    format!("watch: reconcile {n} ({})", trigger.label()),
                );
                let snap = watched.snapshot();
                let held = holds.held(&snap, now);
                running = Some(Box::pin(run(
                    client,
                    target,
                    req,
                    (snap, held),
                    n,
                    trigger,
                    stop,
                )));
            }
        }
        let can_start = running.is_none() && watched.synced();
        let wake = tokio::time::Instant::from_std(plan.wake(can_start));
        tokio::select! {
            change = watched.next() => match change {
                Change::Changed => plan.changed(Instant::now()),
                Change::Listed(r) => {
                    if let Some(why) = down.remove(&r) {
                        eprintln!("watch: {} listed again after: {why}", r.name());
                    }
                    if watched.synced() {
                        plan.listed();
                    }
                    if let Some(m) = &metrics {
                        m.watch_down(first_down(&down));
                        for (r, size) in watched.sizes() {
                            m.cached(r.name(), size);
                        }
                    }
                }
                Change::Failed { resource, error, retry, fatal } => {
                    if fatal {
                        return Err(refused(error));
                    }
                    eprintln!(
                        "warning: watch: {error}; listing {} again in {}",
                        resource.name(),
                        human(retry)
                    );
                    down.insert(resource, error.to_string());
                    if let Some(m) = &metrics {
                        m.restarted(resource.name(), "error");
                        m.watch_down(first_down(&down));
                    }
                }
            },
            done = async {
                match running.as_mut() {
                    Some(r) => r.await,
                    None => std::future::pending().await,
                }
            }, if running.is_some() => {
                running = None;
                let mut state = Settle { plan: &mut plan, printed: &mut printed, holds: &mut holds, failed: &mut failed };
                settle(done, req, &metrics, &mut state)?;
                if let Some(m) = &metrics {
                    for (r, size) in watched.sizes() {
                        m.cached(r.name(), size);
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.wait(), if running.is_none() => break,
        }
    }
    Ok(farewell(n, failed, "reconciles"))
}

/// One reconcile: the snapshot's owners resolved, then the pipeline, with
/// the deletes `held` back (uid → reason).
async fn run<'a>(
    client: &'a kube::Client,
    target: &'a Endpoint,
    req: &'a Request,
    (snap, held): (Snapshot, HashMap<String, String>),
    number: u64,
    trigger: Trigger,
    stop: &'a Stop,
) -> Reconciled {
    let started = Instant::now();
    let result = async {
        let needs = select::needs(req);
        let read = inventory::from_cache(client, &req.scope, &needs, snap);
        let inv = until_stopped(stop, read).await?;
        reconcile(client, target, req, (inv, held), number, stop).await
    }
    .await;
    Reconciled {
        number,
        trigger,
        took: started.elapsed(),
        result,
    }
}

/// What `settle` updates.
struct Settle<'a> {
    plan: &'a mut Schedule,
    printed: &'a mut Printed,
    holds: &'a mut Holds,
    failed: &'a mut u64,
}

/// After a reconcile: count it, print its report if it says something new,
/// hold back what failed, and schedule what follows. An error ends the
/// watch (a signal during the reconcile, bad input).
fn settle(
    done: Reconciled,
    req: &Request,
    metrics: &Option<Arc<Metrics>>,
    st: &mut Settle,
) -> Result<()> {
    let Reconciled {
        number,
        trigger,
        took,
        result,
    } = done;
    let (result, next) = match result {
        Ok((c, next)) => (Ok(c), next),
        Err(e) => (Err(e), None),
    };
    if let Some(m) = metrics {
        m.observe(
            trigger,
            outcome(&result),
            took,
            result.as_ref().ok().map(|d| &d.report),
        );
    }
    let now = Instant::now();
    let next = next.map(|at| {
        // The timer fires a little after the moment, never before it.
        let ahead = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        now + ahead + Duration::from_millis(10)
    });
    let done = match result {
        Ok(done) => done,
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        // Bad input does not get better by waiting.
        Err(e) if e.exit_code() == exit::USAGE => return Err(e),
        Err(e) => {
            st.plan.finished(now, false, next);
            *st.failed += 1;
            let again = st.plan.retry_in(now).unwrap_or_default();
            eprintln!(
                "error: watch reconcile {number}: {e}; trying again in {}",
                human(again)
            );
            return Ok(());
        }
    };
    if st
        .printed
        .worth_printing(&done.report, done.code != exit::OK)
    {
        print_report(&done.report, req.output)?;
    }
    if done.interrupted {
        return Err(Error::Interrupted);
    }
    // What failed is tried again object by object, when its hold ends.
    st.holds.record(&done.report, number, now);
    let next = [next, st.holds.next_release()].into_iter().flatten().min();
    st.plan.finished(now, true, next);
    if done.code != exit::OK {
        *st.failed += 1;
        eprintln!(
            "watch: reconcile {number} ended with exit code {}; trying again in {}",
            done.code,
            human(st.holds.longest().unwrap_or(FIRST_HOLD))
        );
    }
    Ok(())
}

/// Which reports are printed: the first; each that deleted or failed
/// something (a conflict, a cancelled or refused delete, a failed archive
/// or hook); in a dry run, each whose planned deletes differ from the last
/// printed. A reconcile that changed nothing says nothing.
#[derive(Debug, Default)]
struct Printed {
    any: bool,
    /// The planned deletes of the last dry run printed, by uid.
    planned: BTreeSet<Box<str>>,
}

impl Printed {
    fn worth_printing(&mut self, r: &CleanupReport, failed: bool) -> bool {
        let planned: BTreeSet<Box<str>> = r
            .items
            .iter()
            .filter(|i| matches!(i.result, ItemResult::Planned | ItemResult::WouldDelete))
            .map(|i| i.candidate.uid.clone())
            .collect();
        let acted = r.items.iter().any(|i| {
            matches!(
                i.result,
                ItemResult::Deleted
                    | ItemResult::Conflict
                    | ItemResult::Failed
                    | ItemResult::Cancelled
            )
        });
        let worth = !self.any || failed || acted || (r.dry_run && planned != self.planned);
        if worth {
            self.any = true;
            self.planned = planned;
        }
        worth
    }
}

/// A watch the server refuses (401, 403) will not get better by waiting:
/// the run ends (exit 4), saying what `--watch` needs.
fn refused(e: Error) -> Error {
    match e {
        Error::Forbidden { message, .. } => Error::forbidden(format!(
            "{message} (--watch lists and watches pods, jobs and quotas: grant the watch verb, or use --watch=poll)"
        )),
        other => other,
    }
}

fn first_down(down: &BTreeMap<Resource, String>) -> Option<String> {
    down.iter()
        .next()
        .map(|(r, why)| format!("{}: {why}", r.name()))
}

fn resource_names(w: &Watched) -> String {
    let names: Vec<&str> = w.sizes().iter().map(|(r, _)| r.name()).collect();
    names.join(", ")
}

/// `--metrics-addr`: listening before the first reconcile, so a bad
/// address stops the run at once.
pub(super) async fn serve_metrics(
    req: &Request,
    readiness: Readiness,
) -> Result<Option<Arc<Metrics>>> {
    let Some(addr) = req.metrics_addr else {
        return Ok(None);
    };
    let m = Arc::new(Metrics::new(readiness));
    let bound = metrics::start(addr, m.clone()).await?;
    eprintln!("watch: serving http://{bound}/metrics, /healthz and /readyz");
    Ok(Some(m))
}

/// The outcome label of a pass, and why it failed.
pub(super) fn outcome(result: &Result<Cycle>) -> (metrics::Outcome, String) {
    match result {
        Ok(done) if done.code == exit::OK => (metrics::Outcome::Success, String::new()),
        Ok(done) => (
            metrics::Outcome::Failed,
            format!("exit code {} (the report gives each failure)", done.code),
        ),
        Err(e) => (metrics::Outcome::Error, e.to_string()),
    }
}

/// The last line of a watch stopped by a signal, and its exit code.
pub(super) fn farewell(n: u64, failed: u64, what: &str) -> i32 {
    if failed == 0 {
        eprintln!("watch: stopped by signal after {n} {what}");
        exit::OK
    } else {
        eprintln!("watch: stopped by signal after {n} {what}, {failed} of which failed");
        exit::FAILED
    }
}

pub(super) fn human(d: Duration) -> String {
    crate::select::retention::exact(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::Outcome;
    use crate::model::fixtures::*;
    use crate::model::{Candidate, Phase};
    use crate::request::Mode;

    /// A report of pods `planned`, of which `went` were deleted (`how`).
    fn report(mode: Mode, planned: &[&str], went: &[(&str, Outcome)]) -> CleanupReport {
        let cands: Vec<Candidate> = planned
            .iter()
            .map(|n| pod(n, Phase::Succeeded, 0))
            .collect();
        crate::pipeline::fixtures::report(mode, &cands, went)
    }

    #[test]
    fn only_reconciles_that_deleted_or_failed_something_are_printed() {
        let mut p = Printed::default();
        assert!(
            p.worth_printing(&report(Mode::Apply, &[], &[]), false),
            "the first"
        );
        assert!(!p.worth_printing(&report(Mode::Apply, &[], &[]), false));
        let deleted = report(Mode::Apply, &["a"], &[("a", Outcome::Deleted)]);
        assert!(p.worth_printing(&deleted, false));
        // Someone else deleted it first: nothing new to say.
        let gone = report(Mode::Apply, &["a"], &[("a", Outcome::Gone)]);
        assert!(!p.worth_printing(&gone, false));
        for outcome in [Outcome::Failed, Outcome::Conflict, Outcome::Cancelled] {
            let r = report(Mode::Apply, &["a"], &[("a", outcome)]);
            assert!(p.worth_printing(&r, false), "{outcome:?}");
        }
        // A failed archive or hook keeps its object and fails the reconcile.
        let kept = report(
            Mode::Apply,
            &["a"],
            &[("a", Outcome::Kept { failure: true })],
        );
        assert!(p.worth_printing(&kept, true));
        let vetoed = report(
            Mode::Apply,
            &["a"],
            &[("a", Outcome::Kept { failure: false })],
        );
        assert!(!p.worth_printing(&vetoed, false));
    }

    #[test]
    fn a_dry_run_is_printed_when_its_plan_changes() {
        let mut p = Printed::default();
        assert!(p.worth_printing(&report(Mode::DryRunClient, &["a"], &[]), false));
        assert!(!p.worth_printing(&report(Mode::DryRunClient, &["a"], &[]), false));
        assert!(p.worth_printing(&report(Mode::DryRunClient, &["a", "b"], &[]), false));
        assert!(p.worth_printing(&report(Mode::DryRunClient, &["b"], &[]), false));
        let server = |went| report(Mode::DryRunServer, &["b"], went);
        assert!(!p.worth_printing(&server(&[("b", Outcome::WouldDelete)]), false));
        assert!(p.worth_printing(&report(Mode::DryRunClient, &[], &[]), false));
    }
}
