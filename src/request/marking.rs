//! `--mark-kept-for DUR` (with `--keep-reason TEXT`): instead of deleting,
//! annotate the objects of the given ids `crucible-clean/keep-until` (the
//! pytest plugin's keep-failed). It marks what the ids name, in every phase,
//! so the flags that select otherwise, narrow, budget or delete are refused.

use std::time::Duration;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// The longest `--keep-reason` (an annotation value; a test's node id fits).
pub(crate) const MAX_REASON: usize = 1024;

/// `--mark-kept-for`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkKept {
    /// How long from now the objects are kept.
    pub(crate) duration: Duration,
    pub(crate) reason: Option<String>,
}

/// `--mark-kept-for` and `--keep-reason` checked against the other flags.
pub(crate) fn check(cli: &Cli) -> Result<Option<MarkKept>> {
    let Some(duration) = cli.mark_kept_for else {
        if cli.keep_reason.is_some() {
            return Err(Error::usage("--keep-reason needs --mark-kept-for DUR"));
        }
        return Ok(None);
    };
    if cli.test_id.is_empty()
        && !cli.test_id_from_env
        && cli.eval_id.is_empty()
        && cli.run_id.is_empty()
    {
        return Err(Error::usage(
            "--mark-kept-for marks the objects of an id: add --test-id ID, --eval-id ID or --run-id RUN",
        ));
    }
    let given: [(&str, bool); 22] = [
        ("--older-than", cli.older_than.is_some()),
        ("--age-from", cli.age_from.is_some()),
        ("--all", cli.all),
        ("--level", cli.level.is_some()),
        ("--include-running", cli.include_running),
        ("--strategy", cli.strategy.is_some()),
        ("--policy", cli.policy.is_some()),
        (
            "--threshold/--high-watermark/--low-watermark",
            cli.threshold.is_some() || cli.high_watermark.is_some() || cli.low_watermark.is_some(),
        ),
        (
            "--capacity/--prefer",
            cli.capacity.is_some() || cli.prefer.is_some(),
        ),
        (
            "retention flags (--keep-last, --keep-succeeded-for, --keep-failed-for)",
            cli.keep_last.is_some()
                || cli.keep_succeeded_for.is_some()
                || cli.keep_failed_for.is_some(),
        ),
        ("--watch", cli.watch.is_some() || cli.interval.is_some()),
        ("--guard", cli.guard.is_some()),
        ("--stale-runs", cli.stale_runs),
        ("--max-delete", cli.max_delete.is_some()),
        ("--interactive", cli.interactive),
        ("--save-plan", cli.save_plan.is_some()),
        ("--from-plan", cli.from_plan.is_some()),
        ("--grace-period", cli.grace_period.is_some()),
        ("--wait", cli.wait || cli.timeout.is_some()),
        (
            "--archive",
            cli.archive.is_some() || cli.archive_only.is_some() || cli.archive_log_bytes.is_some(),
        ),
        (
            "--events/--run-hooks-in-dry-run",
            cli.events || cli.run_hooks_in_dry_run,
        ),
        ("--metrics-addr", cli.metrics_addr.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
        return Err(Error::usage(format!(
            "--mark-kept-for marks every object of the ids (pods and jobs, running ones too) and deletes nothing; {flag} does not combine with it"
        )));
    }
    if let Some(r) = &cli.keep_reason {
        if r.len() > MAX_REASON {
            return Err(Error::usage(format!(
                "--keep-reason is {} bytes; at most {MAX_REASON}",
                r.len()
            )));
        }
    }
    Ok(Some(MarkKept {
        duration,
        reason: cli.keep_reason.clone(),
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
    fn marking_needs_an_id_and_refuses_what_would_select_otherwise() {
        assert_eq!(check(&cli(&["--test-id", "t"])).unwrap(), None);
        let m = check(&cli(&[
            "--test-id",
            "t",
            "--mark-kept-for",
            "2h",
            "--keep-reason",
            "why",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(m.duration, Duration::from_secs(7200));
        assert_eq!(m.reason.as_deref(), Some("why"));
        let m = check(&cli(&["--eval-id", "e", "--mark-kept-for", "0"]))
            .unwrap()
            .unwrap();
        assert_eq!(m.duration, Duration::ZERO);
        let long = "x".repeat(MAX_REASON + 1);
        for (args, message) in [
            (
                &["--keep-reason", "r"][..],
                "--keep-reason needs --mark-kept-for",
            ),
            (&["--mark-kept-for", "1h"], "add --test-id ID"),
            (
                &["--mark-kept-for", "1h", "--test-id", "t", "--all"],
                "--all does not combine",
            ),
            (
                &["--mark-kept-for", "1h", "--test-id", "t", "--level", "pods"],
                "--level does not",
            ),
            (
                &[
                    "--mark-kept-for",
                    "1h",
                    "--run-id",
                    "r",
                    "--older-than",
                    "1h",
                ],
                "--older-than",
            ),
            (
                &["--mark-kept-for", "1h", "--test-id", "t", "--stale-runs"],
                "--stale-runs",
            ),
            (
                &["--mark-kept-for", "1h", "--test-id", "t", "--watch"],
                "--watch",
            ),
            (
                &[
                    "--mark-kept-for",
                    "1h",
                    "--test-id",
                    "t",
                    "--max-delete",
                    "3",
                ],
                "--max-delete",
            ),
            (
                &[
                    "--mark-kept-for",
                    "1h",
                    "--test-id",
                    "t",
                    "--keep-reason",
                    &long,
                ],
                "at most 1024",
            ),
        ] {
            let e = check(&cli(args)).unwrap_err().to_string();
            assert!(e.contains(message), "{args:?}: {e}");
        }
    }
}
