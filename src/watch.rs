//! `--watch`: run the pipeline again every `--interval` until SIGTERM or
//! SIGINT, for a Deployment (or a long CronJob) in the cluster. Unattended,
//! so `--yes` is required (`Request::from_cli` checks). Each cycle prints its
//! report; with `-o json` that is one compact JSON line carrying `cycle`.
//!
//! A signal between cycles ends the loop cleanly: exit 0. A signal during a
//! cycle lets in-flight deletes finish, starts no new ones, prints the
//! partial report and exits 130, as a single run does.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Cli;
use crate::client::Target;
use crate::error::{exit, Error, Result};
use crate::request::Request;
use crate::{cycle, log, report, wait_for_signal};

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// `--watch` and `--interval` checked: the interval, or None without `--watch`.
pub fn interval(cli: &Cli) -> Result<Option<Duration>> {
    let interval = match (cli.watch, cli.interval) {
        (false, Some(_)) => return Err(Error::usage("--interval needs --watch")),
        (false, None) => return Ok(None),
        (true, interval) => interval.unwrap_or(DEFAULT_INTERVAL),
    };
    if interval.is_zero() {
        return Err(Error::usage(
            "--interval must be more than 0, e.g. --interval 5m",
        ));
    }
    if !cli.yes && cli.dry_run.is_none() {
        return Err(Error::usage(
            "--watch runs unattended and cannot ask for confirmation: add --yes (or --dry-run to preview each cycle)",
        ));
    }
    Ok(Some(interval))
}

pub async fn watch(
    client: &kube::Client,
    target: &Target,
    req: &Request,
    interval: Duration,
) -> Result<i32> {
    // Listen from the start: a signal that arrives while a cycle lists or
    // plans must not be lost (nor kill the process with the default action).
    let stopped = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    let listener = {
        let stopped = stopped.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stopped.store(true, Ordering::SeqCst);
            let _ = tx.send(true);
        })
    };
    let mut n: u64 = 0;
    let outcome = loop {
        n += 1;
        match cycle(client, target, req, Some(n)).await {
            Ok(done) => {
                print!("{}", report::render(&done.report, req.output));
                let _ = std::io::stdout().flush();
                if done.interrupted {
                    break Err(Error::Interrupted);
                }
                if done.code != exit::OK {
                    eprintln!(
                        "watch: cycle {n} ended with exit code {}; next cycle in {}",
                        done.code,
                        human(interval)
                    );
                }
            }
            // Bad input does not get better by waiting.
            Err(e) if e.exit_code() == exit::USAGE => break Err(e),
            Err(e) => eprintln!(
                "error: watch cycle {n}: {e}; next cycle in {}",
                human(interval)
            ),
        }
        if stopped.load(Ordering::SeqCst) {
            break Ok(exit::OK);
        }
        log(
            req.verbosity,
            2,
            format!("watch: cycle {n} done; next in {}", human(interval)),
        );
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = rx.wait_for(|s| *s) => {}
        }
        if stopped.load(Ordering::SeqCst) {
            break Ok(exit::OK);
        }
    };
    listener.abort();
    if outcome.is_ok() {
        eprintln!("watch: stopped by signal after {n} cycles");
    }
    outcome
}

fn human(d: Duration) -> String {
    crate::select::retention::exact(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn interval_of(args: &[&str]) -> Result<Option<Duration>> {
        let mut argv = vec!["x", "--all"];
        argv.extend_from_slice(args);
        interval(&Cli::try_parse_from(argv).unwrap())
    }

    #[test]
    fn watch_needs_yes_and_interval_needs_watch() {
        assert!(interval_of(&["--watch"])
            .unwrap_err()
            .to_string()
            .contains("add --yes"));
        assert_eq!(
            interval_of(&["--watch", "--yes"]).unwrap(),
            Some(DEFAULT_INTERVAL)
        );
        assert_eq!(
            interval_of(&["--watch", "--yes", "--interval", "30s"]).unwrap(),
            Some(Duration::from_secs(30))
        );
        assert!(interval_of(&["--watch", "--dry-run"]).unwrap().is_some());
        assert_eq!(interval_of(&[]).unwrap(), None);
        assert_eq!(
            interval_of(&["--interval", "30s"]).unwrap_err().to_string(),
            "--interval needs --watch"
        );
        assert!(interval_of(&["--watch", "--yes", "--interval", "0"])
            .unwrap_err()
            .to_string()
            .contains("more than 0"));
    }
}
