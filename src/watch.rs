//! `--watch`: run the pipeline again every `--interval` until SIGTERM or
//! SIGINT, for a Deployment (or a long CronJob) in the cluster. Unattended,
//! so `--yes` is required (`Request::from_cli` checks). Each cycle prints its
//! report; with `-o json` that is one compact JSON line carrying `cycle`.
//!
//! A signal between cycles ends the loop: exit 0, or 1 when any cycle failed.
//! A signal during a cycle stops its deletes as in a single run: no new ones
//! start, the partial report is printed, exit 130.

use std::io::Write;
use std::time::Duration;

use crate::cli::Cli;
use crate::client::Target;
use crate::error::{exit, Error, Result};
use crate::request::Request;
use crate::stop::Stop;
use crate::{cycle, log, report};

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
    stop: &Stop,
) -> Result<i32> {
    let (mut n, mut failed): (u64, u64) = (0, 0);
    loop {
        n += 1;
        match cycle(client, target, req, Some(n), stop).await {
            Ok(done) => {
                print!("{}", report::render(&done.report, req.output));
                let _ = std::io::stdout().flush();
                if done.interrupted {
                    return Err(Error::Interrupted);
                }
                if done.code != exit::OK {
                    failed += 1;
                    eprintln!(
                        "watch: cycle {n} ended with exit code {}; next cycle in {}",
                        done.code,
                        human(interval)
                    );
                }
            }
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            // Bad input does not get better by waiting.
            Err(e) if e.exit_code() == exit::USAGE => return Err(e),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "error: watch cycle {n}: {e}; next cycle in {}",
                    human(interval)
                );
            }
        }
        log(
            req.verbosity,
            2,
            format!("watch: cycle {n} done; next in {}", human(interval)),
        );
        if !stop.is_set() {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait() => {}
            }
        }
        if stop.is_set() {
            break;
        }
    }
    if failed == 0 {
        eprintln!("watch: stopped by signal after {n} cycles");
        Ok(exit::OK)
    } else {
        eprintln!("watch: stopped by signal after {n} cycles, {failed} of which failed");
        Ok(exit::FAILED)
    }
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
