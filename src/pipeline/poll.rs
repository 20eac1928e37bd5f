//! `--watch=poll`: run the whole pipeline again every `--interval` until
//! SIGTERM or SIGINT. Kept for where a watch cannot be held: RBAC that grants
//! `list` but not `watch`, or a proxy that cuts long-lived connections; and
//! for `--stale-runs`, whose runs are found from the guard Leases on each
//! pass. Each cycle prints its report; with `-o json` that is one compact
//! JSON line carrying `cycle`.
//!
//! A signal between cycles ends the loop: exit 0, or 1 when any cycle failed.
//! A signal during a cycle stops its deletes as in a single run: no new ones
//! start, the partial report is printed, exit 130.

use std::time::Duration;

use crate::client::Endpoint;
use crate::error::{exit, Error, Result};
use crate::log::log;
use crate::metrics::{Readiness, Trigger};
use crate::request::Request;
use crate::stop::Stop;

use super::watch::{human, outcome, serve_metrics};
use super::{cycle, print_report};

pub(super) async fn poll(
    client: &kube::Client,
    target: &Endpoint,
    req: &Request,
    interval: Duration,
    stop: &Stop,
) -> Result<i32> {
    let (mut n, mut failed): (u64, u64) = (0, 0);
    let metrics = serve_metrics(req, Readiness::Polling(interval)).await?;
    loop {
        n += 1;
        let started = std::time::Instant::now();
        let result = cycle(client, target, req, None, Some(n), stop).await;
        if let Some(m) = &metrics {
            m.observe(
                Trigger::Cycle,
                outcome(&result),
                started.elapsed(),
                result.as_ref().ok().map(|d| &d.report),
            );
        }
        match result {
            Ok(done) => {
                print_report(&done.report, req.output)?;
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
    Ok(super::watch::farewell(n, failed, "cycles"))
}
