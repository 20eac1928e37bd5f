//! What runs before each delete, as the request states it: `--archive DIR`
//! (with `--archive-only` and `--archive-log-bytes`), the policy file's
//! `hooks:` and `--run-hooks-in-dry-run`. Checked here like every other flag:
//! a flag that would do nothing is refused.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{ArchiveOnly, Cli};
use crate::error::{Error, Result};
use crate::model::Kind;

use super::policy::Policy;

/// Log bytes archived per container (current and previous each) without
/// `--archive-log-bytes`.
pub(crate) const DEFAULT_ARCHIVE_LOG_BYTES: u64 = 1 << 20;
/// The most `--archive-log-bytes` may ask for (logs are copied to disk in
/// pieces; the cap bounds the disk an archive takes).
pub(crate) const MAX_ARCHIVE_LOG_BYTES: u64 = 64 << 20;
/// A hook's time without `timeoutSeconds`.
pub(crate) const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// The most `timeoutSeconds` may be.
pub(crate) const MAX_HOOK_TIMEOUT_SECONDS: u64 = 3600;

/// The variables the cleaner sets for each hook (`predelete`), which a
/// policy's `env:` may not list.
pub(crate) const HOOK_VARIABLES: [&str; 12] = [
    "CRUCIBLE_NAMESPACE",
    "CRUCIBLE_KIND",
    "CRUCIBLE_NAME",
    "CRUCIBLE_UID",
    "CRUCIBLE_PHASE",
    "CRUCIBLE_STRATEGY",
    "CRUCIBLE_MATCHED_RULES",
    "CRUCIBLE_DRY_RUN",
    "CRUCIBLE_POLICY_RULE",
    "CRUCIBLE_TEST_ID",
    "CRUCIBLE_EVAL_ID",
    "CRUCIBLE_ARCHIVE",
];

/// `--archive DIR` and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchiveSpec {
    pub(crate) dir: PathBuf,
    /// `--archive-only failed`: only failed pods and jobs are archived.
    pub(crate) only_failed: bool,
    /// `--archive-log-bytes`: the API's `limitBytes` for each log.
    pub(crate) log_bytes: u64,
}

/// One kind's `beforeDelete` hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    /// The program and its arguments (a relative program path containing a
    /// `/` is already resolved against the policy file's directory).
    pub(crate) command: Vec<String>,
    pub(crate) timeout: Duration,
    /// `env:`: the names of the cleaner's variables the hook also gets
    /// (besides `hooks::INHERITED` and the `CRUCIBLE_*` variables).
    pub(crate) env: Vec<String>,
}

/// The policy file's `hooks:` by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hooks {
    pub(crate) pod: Option<Hook>,
    pub(crate) job: Option<Hook>,
}

impl Hooks {
    pub(crate) fn of(&self, kind: Kind) -> Option<&Hook> {
        match kind {
            Kind::Pod => self.pod.as_ref(),
            Kind::Job => self.job.as_ref(),
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pod.is_none() && self.job.is_none()
    }
}

/// `--archive`, `--archive-only` and `--archive-log-bytes` checked.
pub(crate) fn archive(cli: &Cli) -> Result<Option<ArchiveSpec>> {
    let Some(dir) = &cli.archive else {
        for (flag, given) in [
            ("--archive-only", cli.archive_only.is_some()),
            ("--archive-log-bytes", cli.archive_log_bytes.is_some()),
        ] {
            if given {
                return Err(Error::usage(format!(
                    "{flag} has no effect without --archive DIR: add --archive DIR, or drop {flag}"
                )));
            }
        }
        return Ok(None);
    };
    if dir.as_os_str().is_empty() {
        return Err(Error::usage(
            "--archive needs a directory, e.g. --archive ./archive",
        ));
    }
    let log_bytes = match &cli.archive_log_bytes {
        None => DEFAULT_ARCHIVE_LOG_BYTES,
        Some(text) => log_bytes(text)?,
    };
    Ok(Some(ArchiveSpec {
        dir: dir.clone(),
        only_failed: cli.archive_only == Some(ArchiveOnly::Failed),
        log_bytes,
    }))
}

/// A byte count such as 1048576, 512Ki or 4Mi, from 1 to [`MAX_ARCHIVE_LOG_BYTES`].
fn log_bytes(text: &str) -> Result<u64> {
    let bad = || {
        Error::usage(format!(
            "--archive-log-bytes {text:?}: give a whole number of bytes from 1 to 64Mi, e.g. 1048576, 512Ki or 4Mi"
        ))
    };
    let n = crate::quantity::parse(text).ok_or_else(bad)?;
    if !(n.is_finite() && n.fract() == 0.0 && n >= 1.0 && n <= MAX_ARCHIVE_LOG_BYTES as f64) {
        return Err(bad());
    }
    Ok(n as u64)
}

/// `--run-hooks-in-dry-run` checked: it needs a dry run and hooks to run.
pub(crate) fn hooks_in_dry_run(cli: &Cli, policy: Option<&Policy>) -> Result<bool> {
    if !cli.run_hooks_in_dry_run {
        return Ok(false);
    }
    if cli.dry_run.is_none() {
        return Err(Error::usage(
            "--run-hooks-in-dry-run has no effect without --dry-run (hooks always run before real deletes)",
        ));
    }
    if policy.is_none_or(|p| p.hooks.is_empty()) {
        return Err(Error::usage(
            "--run-hooks-in-dry-run has no effect: no hooks are defined (add `hooks:` to the policy file given with --policy)",
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from([&["x", "--all"], args].concat()).unwrap()
    }

    fn usage(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn archive_options_need_archive() {
        assert!(usage(archive(&cli(&["--archive-only", "failed"]))).contains("--archive-only"));
        assert!(usage(archive(&cli(&["--archive-log-bytes", "1Ki"]))).contains("without --archive"));
        assert_eq!(archive(&cli(&[])).unwrap(), None);
    }

    #[test]
    fn log_bytes_take_quantities_within_bounds() {
        let spec = archive(&cli(&["--archive", "a"])).unwrap().unwrap();
        assert_eq!(spec.log_bytes, DEFAULT_ARCHIVE_LOG_BYTES);
        assert!(!spec.only_failed);
        for (text, bytes) in [("512Ki", 512 * 1024), ("100", 100), ("4Mi", 4 << 20)] {
            let s = archive(&cli(&["--archive", "a", "--archive-log-bytes", text]))
                .unwrap()
                .unwrap();
            assert_eq!(s.log_bytes, bytes, "{text}");
        }
        for bad in ["0", "-1", "1.5", "1Gi", "lots", "500m"] {
            let flag = format!("--archive-log-bytes={bad}");
            let r = archive(&cli(&["--archive", "a", &flag]));
            assert!(usage(r).contains("--archive-log-bytes"), "{bad}");
        }
        let only = archive(&cli(&["--archive", "a", "--archive-only", "failed"]))
            .unwrap()
            .unwrap();
        assert!(only.only_failed);
    }

    #[test]
    fn hooks_in_dry_run_needs_a_dry_run_and_hooks() {
        assert!(!hooks_in_dry_run(&cli(&[]), None).unwrap());
        let m = usage(hooks_in_dry_run(&cli(&["--run-hooks-in-dry-run"]), None));
        assert!(m.contains("without --dry-run"), "{m}");
        let m = usage(hooks_in_dry_run(
            &cli(&["--run-hooks-in-dry-run", "--dry-run"]),
            None,
        ));
        assert!(m.contains("no hooks"), "{m}");
    }
}
