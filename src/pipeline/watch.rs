//! `--watch`: run the pipeline again every `--interval` until SIGTERM or
//! SIGINT, for a Deployment (or a long CronJob) in the cluster. Unattended,
//! so `--yes` is required (`Request::from_cli` checks). Each cycle prints its
//! report; with `-o json` that is one compact JSON line carrying `cycle`.
//!
//! A signal between cycles ends the loop: exit 0, or 1 when any cycle failed.
//! A signal during a cycle stops its deletes as in a single run: no new ones
//! start, the partial report is printed, exit 130.

use std::sync::Arc;
use std::time::Duration;

use crate::client::Endpoint;
use crate::error::{exit, Error, Result};
use crate::request::Request;

use crate::log::log;
use crate::metrics::{self, Metrics};
use crate::stop::Stop;

use super::cycle;

pub(crate) async fn watch(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    interval: Duration,
    stop: &Stop,
) -> Result<i32> {
    let (mut n, mut failed): (u64, u64) = (0, 0);
    let metrics = serve_metrics(req, interval).await?;
    loop {
        n += 1;
        let started = std::time::Instant::now();
        let result = cycle(client, target, req, None, Some(n), stop).await;
        if let Some(m) = &metrics {
            m.observe(
                outcome(&result),
                started.elapsed(),
                result.as_ref().ok().map(|d| &d.report),
            );
        }
        match result {
            Ok(done) => {
                super::print_report(&done.report, req.output)?;
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

/// `--metrics-addr`: listening before the first cycle, so a bad address
/// stops the run at once.
async fn serve_metrics(req: &Request, interval: Duration) -> Result<Option<Arc<Metrics>>> {
    let Some(addr) = req.metrics_addr else {
        return Ok(None);
    };
    let m = Arc::new(Metrics::new(interval));
    let bound = metrics::start(addr, m.clone()).await?;
    eprintln!("watch: serving http://{bound}/metrics, /healthz and /readyz");
    Ok(Some(m))
}

fn outcome(result: &Result<super::Cycle>) -> metrics::Outcome {
    match result {
        Ok(done) if done.code == exit::OK => metrics::Outcome::Success,
        Ok(_) => metrics::Outcome::Failed,
        Err(_) => metrics::Outcome::Error,
    }
}

fn human(d: Duration) -> String {
    crate::select::retention::exact(d)
}
