//! The flags of test runs: `--test-id-from-env`, `--guard RUN` with
//! `--lease-duration`, and `--stale-runs`. A guarded or stale run is cleaned
//! whole, so these refuse every flag that would narrow or widen what goes.

use std::ffi::OsString;
use std::time::Duration;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::selector;

/// The variable the pytest plugin exports for the duration of each test (the
/// seed's name). Read only with `--test-id-from-env`.
pub(crate) const TEST_ID_VAR: &str = "TEST_LABEL_ID";

/// A `--guard` Lease lasts this long without renewal.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(30);
const MIN_LEASE: Duration = Duration::from_secs(3);
const MAX_LEASE: Duration = Duration::from_secs(3600);

/// `--guard RUN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Guard {
    pub(crate) run: String,
    pub(crate) lease: Duration,
    /// `--parent-pid`: the process whose end reaps the run, as the end of
    /// input does.
    pub(crate) parent: Option<u32>,
}

/// `$TEST_LABEL_ID` as a test id: unset or empty is an error, never "no
/// filter".
pub(crate) fn test_id_from_env(value: Option<OsString>) -> Result<String> {
    match value.map(|v| v.into_string()) {
        None => Err(Error::usage(format!(
            "--test-id-from-env: {TEST_ID_VAR} is not set"
        ))),
        Some(Err(_)) => Err(Error::usage(format!(
            "--test-id-from-env: {TEST_ID_VAR} is not valid UTF-8"
        ))),
        Some(Ok(v)) if v.trim().is_empty() => Err(Error::usage(format!(
            "--test-id-from-env: {TEST_ID_VAR} is empty"
        ))),
        Some(Ok(v)) => Ok(v),
    }
}

/// `--guard` and `--stale-runs` checked against the rest of the flags; the
/// guard, if one is asked for.
pub(crate) fn check(cli: &Cli) -> Result<Option<Guard>> {
    let mode = match (&cli.guard, cli.stale_runs) {
        (Some(_), true) => {
            return Err(Error::usage(
                "--guard and --stale-runs exclude each other: a guard watches one live run, --stale-runs cleans dead ones",
            ))
        }
        (Some(_), false) => "--guard",
        (None, true) => "--stale-runs",
        (None, false) => {
            if cli.lease_duration.is_some() {
                return Err(Error::usage("--lease-duration needs --guard RUN"));
            }
            if cli.parent_pid.is_some() {
                return Err(Error::usage("--parent-pid needs --guard RUN"));
            }
            return Ok(None);
        }
    };
    // What these modes delete is the whole run: a flag that selects, narrows
    // or budgets would do nothing or contradict that.
    let given: [(&str, bool); 16] = [
        ("--test-id", !cli.test_id.is_empty()),
        ("--test-id-from-env", cli.test_id_from_env),
        ("--eval-id", !cli.eval_id.is_empty()),
        ("--run-id", !cli.run_id.is_empty()),
        ("--older-than", cli.older_than.is_some()),
        ("--age-from", cli.age_from.is_some()),
        ("--all", cli.all),
        ("--level", cli.level.is_some()),
        ("--include-running", cli.include_running),
        ("--strategy", cli.strategy.is_some()),
        ("--policy", cli.policy.is_some()),
        ("--threshold", cli.threshold.is_some()),
        ("--high-watermark", cli.high_watermark.is_some()),
        ("--low-watermark", cli.low_watermark.is_some()),
        ("--capacity", cli.capacity.is_some() || cli.prefer.is_some()),
        (
            "--keep-last",
            cli.keep_last.is_some()
                || cli.keep_succeeded_for.is_some()
                || cli.keep_failed_for.is_some(),
        ),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
        let what = match *flag {
            "--capacity" => "--capacity/--prefer",
            "--keep-last" => {
                "retention flags (--keep-last, --keep-succeeded-for, --keep-failed-for)"
            }
            f => f,
        };
        return Err(Error::usage(format!(
            "{mode} cleans every object of a run (all levels, running ones too); {what} does not combine with it"
        )));
    }
    let Some(run) = &cli.guard else {
        if cli.parent_pid.is_some() {
            return Err(Error::usage("--parent-pid needs --guard RUN"));
        }
        return Ok(None);
    };
    if run.trim().is_empty() {
        return Err(Error::usage("--guard needs a non-empty run id"));
    }
    selector::validate_value(run).map_err(|e| Error::usage(format!("--guard: {e}")))?;
    if !run
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    {
        // The run id names the Lease too, and object names allow less than
        // label values do.
        return Err(Error::usage(format!(
            "--guard: invalid run id {run:?}: lowercase letters, digits, '-' and '.' only (it names the run's Lease)"
        )));
    }
    if cli.all_namespaces {
        return Err(Error::usage(
            "--guard holds its Lease in one namespace: give -n NS, not -A",
        ));
    }
    for (flag, given) in [
        ("--watch", cli.watch.is_some()),
        ("--dry-run", cli.dry_run.is_some()),
        ("--wait", cli.wait),
    ] {
        if given {
            return Err(Error::usage(format!(
                "--guard does not combine with {flag}"
            )));
        }
    }
    let lease = cli.lease_duration.unwrap_or(DEFAULT_LEASE);
    if !(MIN_LEASE..=MAX_LEASE).contains(&lease) {
        return Err(Error::usage(format!(
            "--lease-duration must be between {}s and {}s",
            MIN_LEASE.as_secs(),
            MAX_LEASE.as_secs()
        )));
    }
    if cli.parent_pid == Some(0) {
        return Err(Error::usage("--parent-pid must be a process id, not 0"));
    }
    Ok(Some(Guard {
        run: run.clone(),
        lease,
        parent: cli.parent_pid,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_variable_must_be_set_and_not_blank() {
        assert!(test_id_from_env(None).is_err());
        assert!(test_id_from_env(Some("".into())).is_err());
        assert!(test_id_from_env(Some(" ".into())).is_err());
        assert_eq!(test_id_from_env(Some("t-1".into())).unwrap(), "t-1");
    }

    #[test]
    fn a_guard_takes_its_defaults_and_refuses_what_would_narrow_it() {
        let g = check(&cli(&["--guard", "r1"])).unwrap().unwrap();
        assert_eq!(g.lease, DEFAULT_LEASE);
        let g = check(&cli(&["--guard", "r1", "--lease-duration", "5s"]))
            .unwrap()
            .unwrap();
        assert_eq!(g.lease, Duration::from_secs(5));
        assert_eq!(g.parent, None);
        let g = check(&cli(&["--guard", "r1", "--parent-pid", "42"]))
            .unwrap()
            .unwrap();
        assert_eq!(g.parent, Some(42));
        for bad in [
            &["--parent-pid", "42"][..],
            &["--stale-runs", "--parent-pid", "42"],
            &["--guard", "r1", "--parent-pid", "0"],
            &["--guard", "r1", "--eval-id", "e1"][..],
            &["--guard", "r1", "--include-running"],
            &["--guard", "r1", "--lease-duration", "2h"],
            &["--guard", "r.1_x"],
            &["--stale-runs", "--run-id", "r1"],
            &["--stale-runs", "--all"],
        ] {
            assert!(check(&cli(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(check(&cli(&["--stale-runs"])).unwrap(), None);
        assert_eq!(check(&cli(&["--all"])).unwrap(), None);
    }
}
