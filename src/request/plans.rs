//! The flags of plan files and of picking by hand — `--save-plan`,
//! `--from-plan`, `--plan-max-age`, `-i/--interactive` — and which other
//! flags they combine with. A combination that would do nothing, or that
//! contradicts itself, is refused here (exit 2), before any API request.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;
use crate::error::{Error, Result};

/// `--plan-max-age` without a value.
pub(crate) const DEFAULT_PLAN_MAX_AGE: Duration = Duration::from_secs(3600);

/// `--from-plan FILE`: apply a saved plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromPlan {
    pub(crate) path: PathBuf,
    /// `--plan-max-age`: an older plan is refused.
    pub(crate) max_age: Duration,
}

/// The selection flags given on the command line. With `--from-plan` the
/// plan file is the selection, so each of them is refused. (Not
/// `--include-running`: a plan's unfinished objects go only when the command
/// line that applies it says so; the file alone cannot.)
fn selection_flags(cli: &Cli) -> Vec<&'static str> {
    [
        ("-l/--selector", cli.selector.is_some()),
        ("--test-id", !cli.test_id.is_empty()),
        ("--test-id-from-env", cli.test_id_from_env),
        ("--eval-id", !cli.eval_id.is_empty()),
        ("--run-id", !cli.run_id.is_empty()),
        ("--guard", cli.guard.is_some()),
        ("--stale-runs", cli.stale_runs),
        ("--older-than", cli.older_than.is_some()),
        ("--age-from", cli.age_from.is_some()),
        ("--all", cli.all),
        ("--level", cli.level.is_some()),
        ("--strategy", cli.strategy.is_some()),
        ("--policy", cli.policy.is_some()),
        ("--threshold", cli.threshold.is_some()),
        ("--high-watermark", cli.high_watermark.is_some()),
        ("--low-watermark", cli.low_watermark.is_some()),
        ("--prefer", cli.prefer.is_some()),
        ("--capacity", cli.capacity.is_some()),
        ("--keep-last", cli.keep_last.is_some()),
        ("--keep-succeeded-for", cli.keep_succeeded_for.is_some()),
        ("--keep-failed-for", cli.keep_failed_for.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// `--from-plan` and `--plan-max-age`, checked against the other flags.
pub(crate) fn from_plan(cli: &Cli) -> Result<Option<FromPlan>> {
    let Some(path) = &cli.from_plan else {
        if cli.plan_max_age.is_some() {
            return Err(Error::usage(
                "--plan-max-age has no effect without --from-plan FILE",
            ));
        }
        return Ok(None);
    };
    let given = selection_flags(cli);
    if !given.is_empty() {
        return Err(Error::usage(format!(
            "{} cannot be combined with --from-plan: the plan file is the selection (make a new plan to change it)",
            given.join(", ")
        )));
    }
    if cli.watch.is_some() {
        return Err(Error::usage(
            "--watch cannot be combined with --from-plan: a plan is applied once",
        ));
    }
    if cli.save_plan.is_some() {
        return Err(Error::usage(
            "--save-plan cannot be combined with --from-plan: make a new plan from a selection instead",
        ));
    }
    let max_age = cli.plan_max_age.unwrap_or(DEFAULT_PLAN_MAX_AGE);
    if max_age.is_zero() {
        return Err(Error::usage(
            "--plan-max-age must be more than 0, e.g. --plan-max-age 30m",
        ));
    }
    Ok(Some(FromPlan {
        path: path.clone(),
        max_age,
    }))
}

/// `--save-plan FILE`: only while planning (a dry run), once.
pub(crate) fn save_plan(cli: &Cli) -> Result<Option<PathBuf>> {
    let Some(path) = &cli.save_plan else {
        return Ok(None);
    };
    if cli.dry_run.is_none() {
        return Err(Error::usage(
            "--save-plan writes a plan to review and apply later with --from-plan: add --dry-run (nothing is deleted while planning)",
        ));
    }
    if cli.watch.is_some() {
        return Err(Error::usage(
            "--save-plan cannot be combined with --watch: every cycle would overwrite the plan",
        ));
    }
    if path.as_os_str().is_empty() {
        return Err(Error::usage("--save-plan needs a file name"));
    }
    Ok(Some(path.clone()))
}

/// `-i/--interactive`: a person picks what goes, so nothing else may answer
/// for them. (Whether there is a terminal is checked by the pipeline, which
/// may look at the process's streams.)
pub(crate) fn interactive(cli: &Cli) -> Result<bool> {
    if !cli.interactive {
        return Ok(false);
    }
    if cli.yes {
        return Err(Error::usage(
            "--interactive and --yes contradict each other: -i asks which objects to delete, --yes says do not ask; drop one",
        ));
    }
    if cli.dry_run.is_some() {
        return Err(Error::usage(
            "--interactive has no effect with --dry-run: a dry run deletes nothing, so there is nothing to pick; drop one",
        ));
    }
    if cli.guard.is_some() {
        return Err(Error::usage(
            "--interactive does not combine with --guard: a guard deletes unattended, when its parent is gone",
        ));
    }
    Ok(true)
}
