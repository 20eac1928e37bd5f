//! Test runs: `--guard RUN` holds the run's Lease while its parent lives and
//! reaps the run when the parent dies; `--stale-runs` reaps the runs whose
//! guard died too (their Lease expired). Both clean through the one pipeline
//! (`cycle`) with the run's id as the selection.

use std::io::Write;

use chrono::Utc;
use tokio::io::AsyncBufReadExt;

use crate::client::Endpoint;
use crate::error::{exit, Error, Result};
use crate::execute::lease::{self, Removed};
use crate::inventory;
use crate::log::log;
use crate::model::RunLease;
use crate::request::runs::Guard;
use crate::request::{Mode, Request, Scope};
use crate::stop::Stop;

use super::{cycle_once, until_stopped, Cycle};

/// What a guard answers to on its standard input.
const RELEASE: &str = "release";

/// How often a guard with `--parent-pid` looks at its parent.
const PARENT_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The process that is this one's parent now (`None` where unknown).
fn parent_now() -> Option<u32> {
    #[cfg(unix)]
    return Some(std::os::unix::process::parent_id());
    #[cfg(not(unix))]
    return None;
}

/// `--parent-pid PID` must name the guard's parent when it starts. Later, a
/// different parent means PID is gone (the guard was re-parented; a reused
/// PID cannot be the parent again).
fn check_parent(pid: u32) -> Result<()> {
    match parent_now() {
        Some(p) if p == pid => Ok(()),
        Some(p) => Err(Error::usage(format!(
            "--parent-pid {pid} is not the guard's parent process (its parent is {p}); nothing was done"
        ))),
        None => Err(Error::usage(
            "--parent-pid is supported on Unix only; the end of input still reaps the run",
        )),
    }
}

/// `--guard RUN`: take the Lease, say `ready`, renew it every third of its
/// duration; `release` on stdin ends the guard (the run cleaned up after
/// itself); the end of stdin, or with `--parent-pid` the end of that parent,
/// means the parent died: reap the run, then release the Lease. A signal ends the guard and leaves the Lease to expire,
/// for `--stale-runs`.
pub(crate) async fn guard(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    g: &Guard,
    stop: &Stop,
) -> Result<i32> {
    let Scope::Namespace(ns) = &req.scope else {
        return Err(Error::usage("--guard needs one namespace"));
    };
    if let Some(pid) = g.parent {
        check_parent(pid)?;
    }
    let holder = holder();
    let mut held =
        until_stopped(stop, lease::acquire(client, ns, &g.run, g.lease, &holder)).await?;
    println!("ready");
    let _ = std::io::stdout().flush();
    eprintln!(
        "guard: holding Lease {ns}/{} for run {} as {holder:?}; renewing every {}s",
        held.name(),
        g.run,
        (g.lease / 3).as_secs_f32()
    );
    let period = g.lease / 3;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut parent_poll = tokio::time::interval(PARENT_POLL);
    loop {
        tokio::select! {
            _ = parent_poll.tick(), if g.parent.is_some() => {
                if parent_now() != g.parent {
                    break;
                }
            }
            _ = tick.tick() => {
                if let Err(e) = lease::renew(&mut held).await {
                    if matches!(e, Error::Runtime(_)) {
                        // Taken over: the run is no longer ours to reap.
                        return Err(e);
                    }
                    // The server may come back before the Lease expires.
                    eprintln!("warning: guard: {e}; trying again in {}s", period.as_secs_f32());
                }
            }
            line = lines.next_line() => match line {
                Ok(Some(l)) if l.trim() == RELEASE => {
                    lease::release(&held).await?;
                    eprintln!("guard: run {} released; nothing deleted", g.run);
                    return Ok(exit::OK);
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            },
            _ = stop.wait() => {
                eprintln!(
                    "guard: stopped by signal; Lease {} is left to expire (then --stale-runs cleans run {})",
                    held.name(),
                    g.run
                );
                return Err(Error::Interrupted);
            }
        }
    }
    eprintln!(
        "guard: the parent of run {} is gone; deleting the run's objects",
        g.run
    );
    let done = cycle_once(client, target, req, None, None, stop).await?;
    super::print_report(&done.report, req.output)?;
    if done.interrupted {
        return Err(Error::Interrupted);
    }
    if done.code == exit::OK {
        lease::release(&held).await?;
    } else {
        eprintln!(
            "guard: Lease {} is left to expire; --stale-runs will finish run {}",
            held.name(),
            g.run
        );
    }
    Ok(done.code)
}

/// Who holds a guard Lease: host and process, for the person reading it.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/{}", std::process::id())
}

/// `--stale-runs`: one cycle over the runs whose Lease expired, then the
/// removal of those Leases when every object of them went (a Lease renewed
/// meanwhile stays: its run is alive).
pub(crate) async fn stale_cycle(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    number: Option<u64>,
    stop: &Stop,
) -> Result<Cycle> {
    let stale: Vec<RunLease> =
        until_stopped(stop, inventory::stale_runs(client, &req.scope, Utc::now())).await?;
    for l in &stale {
        eprintln!(
            "note: run {}: its guard Lease {}/{} (holder {:?}) expired {} ago",
            l.run,
            l.namespace,
            l.name,
            l.holder,
            lease::ago(l.expires_at)
        );
    }
    let mut runs: Vec<String> = stale.iter().map(|l| l.run.clone()).collect();
    runs.sort();
    runs.dedup();
    let mut narrowed = req.clone();
    narrowed.criteria.run_ids = runs;
    let done = cycle_once(client, target, &narrowed, None, number, stop).await?;
    if req.mode != Mode::Apply || done.code != exit::OK || done.interrupted {
        return Ok(done);
    }
    for l in &stale {
        match lease::remove_stale(client, l).await {
            Ok(Removed::Removed) => log(
                req.verbosity,
                1,
                format!("removed Lease {}/{} of run {}", l.namespace, l.name, l.run),
            ),
            Ok(Removed::Renewed) => eprintln!(
                "note: run {}: its guard renewed Lease {}/{} meanwhile; the Lease stays",
                l.run, l.namespace, l.name
            ),
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    Ok(done)
}
