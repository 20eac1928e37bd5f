//! Test runs: `--guard RUN` holds the run's Lease while its parent lives and
//! reaps the run when the parent dies; `--stale-runs` reaps the runs whose
//! guard died too (their Lease expired). Both clean through the one pipeline
//! (`cycle`) with the run's id as the selection.

use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::client::Endpoint;
use crate::error::{exit, Error, Result};
use crate::execute::lease::{self, Removed};
use crate::inventory;
use crate::log::log;
use crate::model::{GuardId, RunLease, StaleRun, RUN_ID};
use crate::request::runs::Guard;
use crate::request::{Mode, Request, Scope};
use crate::stop::Stop;

use super::{cycle_once, until_stopped, Cycle};

/// The one line a guard answers to on its standard input.
const RELEASE: &str = "release";
/// A longer line is no line a guard knows: it is skipped as it comes.
const MAX_LINE: usize = 4096;
/// After a read error, the guard waits this long before reading again.
const READ_RETRY: Duration = Duration::from_secs(1);
/// Read errors in a row (about this many seconds) after which standard input
/// is taken as broken for good: a guard with `--parent-pid` watches its
/// parent alone; one without stops renewing, deleting nothing, and leaves the
/// Lease to expire for `--stale-runs`, rather than hold the run for ever.
const READ_ERRORS_MAX: u32 = 10;

/// What the guard read on its standard input.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    /// `release`: the run cleaned up after itself.
    Release,
    /// The true end of input: every writer closed the pipe (the parent died).
    End,
    /// Anything else (another line, bytes that are no text, a line too
    /// long): ignored, with a note.
    Other(String),
    /// Not read at all: ignored, the guard reads again a moment later.
    Error(String),
}

/// The standard input of a guard, line by line, never failing: only a true
/// end of input or the `release` line ends the guard.
struct Lines<R> {
    reader: tokio::io::BufReader<R>,
    line: Vec<u8>,
    /// Skipping the rest of a line longer than `MAX_LINE`.
    skipping: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> Lines<R> {
    fn new(input: R) -> Self {
        Lines {
            reader: tokio::io::BufReader::new(input),
            line: Vec::new(),
            skipping: false,
        }
    }

    /// The next input. Cancel-safe: bytes read before a cancel stay in `line`.
    async fn next(&mut self) -> Input {
        loop {
            let room = (MAX_LINE + 1).saturating_sub(self.line.len()) as u64;
            let mut limited = (&mut self.reader).take(room.max(1));
            match limited.read_until(b'\n', &mut self.line).await {
                Err(e) => return Input::Error(e.to_string()),
                Ok(0) => {
                    // A last line without its line break still counts.
                    let last = std::mem::take(&mut self.line);
                    return match text(&last) {
                        Some(RELEASE) if !self.skipping => Input::Release,
                        _ => Input::End,
                    };
                }
                Ok(_) if self.line.ends_with(b"\n") => {
                    let line = std::mem::take(&mut self.line);
                    if std::mem::take(&mut self.skipping) {
                        continue;
                    }
                    return match text(&line) {
                        Some(RELEASE) => Input::Release,
                        _ => Input::Other(String::from_utf8_lossy(&line).trim().to_string()),
                    };
                }
                Ok(_) if self.line.len() > MAX_LINE => {
                    self.line.clear();
                    if !std::mem::replace(&mut self.skipping, true) {
                        return Input::Other(format!("a line longer than {MAX_LINE} bytes"));
                    }
                }
                Ok(_) => {} // part of a line: read on
            }
        }
    }
}

/// A line as trimmed text, if it is text.
fn text(line: &[u8]) -> Option<&str> {
    std::str::from_utf8(line).ok().map(str::trim)
}

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
/// itself); the true end of stdin (every writer of the pipe is gone), or
/// with `--parent-pid` the end of that parent, means the parent died: reap
/// the run, then release the Lease. Any other input — a line it does not
/// know, bytes that are no text, a read error — is noted on stderr and
/// ignored, and the Lease is still renewed; input that keeps failing to be
/// read (`READ_ERRORS_MAX`) is given up on: the parent is then watched alone,
/// or without `--parent-pid` the guard stops, deleting nothing, and the
/// Lease expires for `--stale-runs`. A signal ends the guard and
/// leaves the Lease to expire, for `--stale-runs`.
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
    let mut input = Lines::new(tokio::io::stdin());
    let mut parent_poll = tokio::time::interval(PARENT_POLL);
    let mut read_errors = 0u32;
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
            read = input.next(), if read_errors < READ_ERRORS_MAX => {
                if !matches!(read, Input::Error(_)) {
                    read_errors = 0;
                }
                match read {
                    Input::Release => {
                        lease::release(&held).await?;
                        eprintln!("guard: run {} released; nothing deleted", g.run);
                        return Ok(exit::OK);
                    }
                    Input::End => break,
                    Input::Other(line) => eprintln!(
                        "guard: ignoring a line it does not know on standard input: {line:?} (only {RELEASE:?} ends the guard; closing the pipe reaps the run)"
                    ),
                    Input::Error(e) => {
                        read_errors += 1;
                        if read_errors == 1 {
                            eprintln!(
                                "warning: guard: cannot read standard input ({e}); ignoring it and renewing the Lease"
                            );
                        }
                        if read_errors < READ_ERRORS_MAX {
                            tokio::time::sleep(READ_RETRY).await;
                        } else if let Some(pid) = g.parent {
                            eprintln!(
                                "warning: guard: standard input failed {read_errors} times in a row ({e}); no longer reading it, watching the parent (pid {pid}) alone"
                            );
                        } else {
                            return Err(Error::Runtime(format!(
                                "guard: standard input failed {read_errors} times in a row ({e}); stopping without deleting anything: Lease {ns}/{} is left to expire, then --stale-runs cleans run {}",
                                held.name(),
                                g.run
                            )));
                        }
                    }
                }
            }
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

/// Who holds a guard Lease: this guard's host, process id and start time
/// (`model::GuardId`).
fn holder() -> String {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .collect();
    GuardId {
        host,
        pid: std::process::id(),
        started: Utc::now(),
    }
    .to_string()
}

/// `--stale-runs`: one cycle over the runs whose guard Lease expired, each
/// only in its Lease's namespace and for the objects created since the
/// Lease, and only while no live guard Lease of the run exists in scope;
/// then the removal of each such Lease once nothing of its run is left (a
/// Lease renewed meanwhile stays: its run is alive). Leases no guard wrote
/// are ignored with a warning.
pub(crate) async fn stale_cycle(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    number: Option<u64>,
    stop: &Stop,
) -> Result<Cycle> {
    let leases = until_stopped(stop, inventory::run_leases(client, &req.scope, Utc::now())).await?;
    for (at, why) in &leases.ignored {
        eprintln!("warning: ignoring Lease {at}, labelled {RUN_ID} but no guard's: {why}");
    }
    let live: BTreeSet<&str> = leases.live.iter().map(|l| l.run.as_str()).collect();
    let mut stale: Vec<&RunLease> = vec![];
    for l in &leases.expired {
        if live.contains(l.run.as_str()) {
            let other = leases.live.iter().find(|o| o.run == l.run);
            eprintln!(
                "note: run {}: its Lease {}/{} expired, but Lease {} of the run is live: the run is left alone",
                l.run,
                l.namespace,
                l.name,
                other.map(|o| format!("{}/{}", o.namespace, o.name)).unwrap_or_default()
            );
            continue;
        }
        eprintln!(
            "note: run {}: its guard Lease {}/{} (holder {:?}) expired {} ago",
            l.run,
            l.namespace,
            l.name,
            l.holder,
            lease::ago(l.expires_at)
        );
        stale.push(l);
    }
    let mut narrowed = req.clone();
    narrowed.criteria.stale = stale
        .iter()
        .map(|l| StaleRun {
            run: l.run.clone(),
            namespace: l.namespace.clone(),
            since: l.created_at,
        })
        .collect();
    let mut runs: Vec<String> = stale.iter().map(|l| l.run.clone()).collect();
    runs.sort();
    runs.dedup();
    narrowed.criteria.run_ids = runs;
    let done = cycle_once(client, target, &narrowed, None, number, stop).await?;
    if req.mode != Mode::Apply || done.code != exit::OK || done.interrupted {
        return Ok(done);
    }
    let selector = crate::select::server_selector(&narrowed);
    for (l, run) in stale.iter().zip(&narrowed.criteria.stale) {
        // Kept or held objects of the run hold its Lease, and so do those
        // the selector did not reach: the run is not done.
        let held = done.report.items.iter().any(|i| {
            run.covers(&i.candidate)
                && !matches!(
                    i.result,
                    crate::report::ItemResult::Deleted | crate::report::ItemResult::Gone
                )
        });
        let unreached = match inventory::unreached(client, run, &selector).await {
            Ok(n) => n,
            Err(e) => {
                eprintln!("warning: {e}");
                continue;
            }
        };
        if held || unreached > 0 {
            eprintln!(
                "note: run {}: objects of it are left (kept, held, or outside the selector); its Lease {}/{} stays",
                l.run, l.namespace, l.name
            );
            continue;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    async fn all(input: &[u8]) -> Vec<Input> {
        let mut lines = Lines::new(input);
        let mut out = vec![];
        loop {
            let i = lines.next().await;
            let last = matches!(i, Input::End | Input::Release);
            out.push(i);
            if last {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn only_the_end_of_input_or_release_ends_the_guard() {
        assert_eq!(all(b"").await, [Input::End]);
        assert_eq!(
            all(b"hello\n\xff\xfe hello\n  release  \n").await,
            [
                Input::Other("hello".into()),
                Input::Other("\u{fffd}\u{fffd} hello".into()),
                Input::Release
            ]
        );
        // A last line without its line break.
        assert_eq!(all(b"release").await, [Input::Release]);
        assert_eq!(all(b"bye").await, [Input::End]);
        // A line too long is one note, however long.
        let mut long = vec![b'x'; 3 * MAX_LINE];
        long.extend_from_slice(b"\nrelease\n");
        assert_eq!(
            all(&long).await,
            [
                Input::Other(format!("a line longer than {MAX_LINE} bytes")),
                Input::Release
            ]
        );
    }

    /// Fails its first read, then reads `rest`.
    struct Flaky(bool, &'static [u8]);

    impl tokio::io::AsyncRead for Flaky {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if std::mem::replace(&mut self.0, false) {
                return Poll::Ready(Err(std::io::Error::other("EIO")));
            }
            let mut rest = self.1;
            let r = Pin::new(&mut rest).poll_read(cx, buf);
            self.1 = rest;
            r
        }
    }

    #[tokio::test]
    async fn a_read_error_is_no_end_of_input() {
        let mut lines = Lines::new(Flaky(true, b"release\n"));
        assert_eq!(lines.next().await, Input::Error("EIO".into()));
        assert_eq!(lines.next().await, Input::Release);
    }
}
