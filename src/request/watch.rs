//! `--watch[=event|poll]` and `--interval`: how a cleanup keeps going, and
//! how often it starts over from a fresh list.

use std::time::Duration;

use crate::cli::{Cli, WatchMode};
use crate::error::{Error, Result};

/// `--interval` without a value under `--watch`: the period of the full
/// re-list that catches a missed event. Events drive everything else.
pub(crate) const DEFAULT_RELIST: Duration = Duration::from_secs(3600);
/// `--interval` without a value under `--watch=poll`: the time between two
/// cycles.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(300);

/// A checked `--watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Watch {
    pub(crate) mode: WatchMode,
    /// `event`: the full re-list period; `poll`: the time between cycles.
    pub(crate) interval: Duration,
}

impl Watch {
    pub(crate) fn is_event(&self) -> bool {
        self.mode == WatchMode::Event
    }
}

/// `--watch` and `--interval` checked: None without `--watch`.
pub(crate) fn watch(cli: &Cli) -> Result<Option<Watch>> {
    let mode = match (cli.watch, cli.interval) {
        (None, Some(_)) => return Err(Error::usage("--interval needs --watch")),
        (None, None) => return Ok(None),
        (Some(mode), _) => mode,
    };
    let interval = cli.interval.unwrap_or(match mode {
        WatchMode::Event => DEFAULT_RELIST,
        WatchMode::Poll => DEFAULT_POLL,
    });
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
    if cli.stale_runs && mode == WatchMode::Event {
        // A stale run is found by reading the guard Leases and their expiry,
        // which the watched pods, jobs and quotas do not show.
        return Err(Error::usage(
            "--stale-runs reads the guard Leases on every pass: use --watch=poll (e.g. --watch=poll --interval 5m) with it",
        ));
    }
    Ok(Some(Watch { mode, interval }))
}
