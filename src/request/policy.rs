//! Rule parameters and the policy file. Without `--policy`, one implicit rule
//! runs with the flags; with it, each named rule of the file (a label
//! selector plus its strategy, retention and watermarks) runs on the objects
//! it matches first, and every flag given on the command line overrides the
//! file. Retention multipliers by priority label come from the file too.
//!
//! Parsing is strict: unknown keys and bad values are usage errors (exit 2)
//! that name the file, the line and the key. No API access here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::cli::{Cli, Prefer, Strategy};
use crate::error::{Error, Result};
use crate::selector::Selector;

use super::predelete::{Hook, Hooks, DEFAULT_HOOK_TIMEOUT};

mod format;
use format::{FileSpec, HookSpec};

pub(crate) const DEFAULT_THRESHOLD: f64 = 0.8;
pub(crate) const DEFAULT_HIGH_WATERMARK: f64 = 0.8;
pub(crate) const DEFAULT_LOW_WATERMARK: f64 = 0.5;
/// The label whose value picks a retention multiplier from `priorities`.
pub(crate) const DEFAULT_PRIORITY_LABEL: &str = "crucible-clean/priority";
pub(crate) const API_VERSION: &str = "crucible-clean/v1";
pub(crate) const KIND: &str = "CleanupPolicy";

/// What one rule runs with, every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    pub(crate) strategy: Strategy,
    pub(crate) older_than: Option<Duration>,
    pub(crate) keep_succeeded_for: Option<Duration>,
    pub(crate) keep_failed_for: Option<Duration>,
    pub(crate) keep_last: Option<usize>,
    pub(crate) threshold: f64,
    pub(crate) high_watermark: f64,
    pub(crate) low_watermark: f64,
    pub(crate) prefer: Prefer,
}

impl Params {
    pub(crate) fn has_retention(&self) -> bool {
        self.keep_succeeded_for.is_some() || self.keep_failed_for.is_some()
    }
}

/// Parameters that may be left unset: the flags, and each rule of the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Partial {
    pub(crate) strategy: Option<Strategy>,
    pub(crate) older_than: Option<Duration>,
    pub(crate) keep_succeeded_for: Option<Duration>,
    pub(crate) keep_failed_for: Option<Duration>,
    pub(crate) keep_last: Option<usize>,
    pub(crate) threshold: Option<f64>,
    pub(crate) high_watermark: Option<f64>,
    pub(crate) low_watermark: Option<f64>,
    pub(crate) prefer: Option<Prefer>,
    /// `all: true` in a rule; from the command line, `--all` or ids (which
    /// narrow every rule). A rule needs a criterion beyond its selector.
    pub(crate) all: Option<bool>,
}

impl Partial {
    pub(crate) fn from_cli(cli: &Cli) -> Self {
        Partial {
            strategy: cli.strategy,
            older_than: cli.older_than,
            keep_succeeded_for: cli.keep_succeeded_for,
            keep_failed_for: cli.keep_failed_for,
            keep_last: cli.keep_last,
            threshold: cli.threshold,
            high_watermark: cli.high_watermark,
            low_watermark: cli.low_watermark,
            prefer: cli.prefer,
            all: (cli.all || !cli.test_id.is_empty() || !cli.eval_id.is_empty()).then_some(true),
        }
    }

    /// `self` where set, else `under`.
    fn over(&self, under: &Partial) -> Partial {
        Partial {
            strategy: self.strategy.or(under.strategy),
            older_than: self.older_than.or(under.older_than),
            keep_succeeded_for: self.keep_succeeded_for.or(under.keep_succeeded_for),
            keep_failed_for: self.keep_failed_for.or(under.keep_failed_for),
            keep_last: self.keep_last.or(under.keep_last),
            threshold: self.threshold.or(under.threshold),
            high_watermark: self.high_watermark.or(under.high_watermark),
            low_watermark: self.low_watermark.or(under.low_watermark),
            prefer: self.prefer.or(under.prefer),
            all: self.all.or(under.all),
        }
    }

    /// Fills in the defaults; `strategy` is the one already decided.
    pub(crate) fn complete(&self, strategy: Strategy) -> Params {
        Params {
            strategy,
            older_than: self.older_than,
            keep_succeeded_for: self.keep_succeeded_for,
            keep_failed_for: self.keep_failed_for,
            keep_last: self.keep_last,
            threshold: self.threshold.unwrap_or(DEFAULT_THRESHOLD),
            high_watermark: self.high_watermark.unwrap_or(DEFAULT_HIGH_WATERMARK),
            low_watermark: self.low_watermark.unwrap_or(DEFAULT_LOW_WATERMARK),
            prefer: self.prefer.unwrap_or(Prefer::Oldest),
        }
    }
}

/// Checks the fractions of the flags: `0 < threshold ≤ 1`, `0 < low < high ≤ 1`.
pub(crate) fn validate_flags(p: &Partial) -> Result<()> {
    for (flag, v) in [
        ("--threshold", p.threshold),
        ("--high-watermark", p.high_watermark),
        ("--low-watermark", p.low_watermark),
    ] {
        if let Some(v) = v {
            if !(v > 0.0 && v <= 1.0) {
                return Err(Error::usage(format!(
                    "{flag} ({v}) must be a fraction above 0 and at most 1, e.g. 0.8"
                )));
            }
        }
    }
    let high = p.high_watermark.unwrap_or(DEFAULT_HIGH_WATERMARK);
    let low = p.low_watermark.unwrap_or(DEFAULT_LOW_WATERMARK);
    if low >= high {
        return Err(Error::usage(format!(
            "--low-watermark ({low}) must be below --high-watermark ({high})"
        )));
    }
    Ok(())
}

/// A loaded policy file, flags already merged into each rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    /// The path as given, for messages.
    pub(crate) file: String,
    pub(crate) priority_label: String,
    pub(crate) priorities: BTreeMap<String, f64>,
    pub(crate) rules: Vec<PolicyRule>,
    /// `hooks:`: what runs before each object of a kind is deleted.
    pub(crate) hooks: Hooks,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicyRule {
    pub(crate) name: String,
    pub(crate) selector: Selector,
    pub(crate) params: Params,
}

impl Policy {
    /// The retention multiplier of an object with these labels (1 without a priority).
    pub(crate) fn factor(&self, labels: &impl crate::model::LabelSet) -> f64 {
        labels
            .label(&self.priority_label)
            .and_then(|p| self.priorities.get(p))
            .copied()
            .unwrap_or(1.0)
    }
}

/// Reads and checks a policy file; `flags` override every rule.
/// The largest policy file read (a policy is a few rules and hooks).
pub(crate) const MAX_POLICY_BYTES: u64 = 1 << 20;

pub(crate) fn load(path: &Path, flags: &Partial) -> Result<Policy> {
    let file = path.display().to_string();
    let text = super::read_bounded(path, MAX_POLICY_BYTES, "policy file")?;
    parse(&file, &text, flags)
}

pub(crate) fn parse(file: &str, text: &str, flags: &Partial) -> Result<Policy> {
    let doc: FileSpec = serde_norway::from_str(text).map_err(|e| located(file, &e))?;
    let mut rules = Vec::with_capacity(doc.rules.len());
    // Reported once every rule parsed, so that other errors come first.
    let mut unbounded: Option<Error> = None;
    for (i, spec) in doc.rules.into_iter().enumerate() {
        let nth = rules
            .iter()
            .filter(|r: &&PolicyRule| r.name == spec.name)
            .count();
        let at = |msg: String| {
            let line = rule_line(text, &spec.name, nth)
                .map(|l| format!(", line {l}"))
                .unwrap_or_default();
            Error::usage(format!(
                "policy file {file}{line}: rules[{i}] ({}): {msg}",
                spec.name
            ))
        };
        if nth > 0 {
            return Err(at(
                "a rule of this name is already defined; names must be unique".into(),
            ));
        }
        let merged = flags.over(&spec.partial());
        let strategy = merged.strategy.unwrap_or(if merged.older_than.is_some() {
            Strategy::Age
        } else {
            Strategy::Label
        });
        let params = merged.complete(strategy);
        if params.low_watermark >= params.high_watermark {
            let name = |flag: Option<f64>, key: &str, cli: &str| {
                if flag.is_some() {
                    cli.to_string()
                } else {
                    key.to_string()
                }
            };
            return Err(at(format!(
                "{} ({}) must be below {} ({})",
                name(flags.low_watermark, "lowWatermark", "--low-watermark"),
                params.low_watermark,
                name(flags.high_watermark, "highWatermark", "--high-watermark"),
                params.high_watermark
            )));
        }
        if strategy == Strategy::Age && params.older_than.is_none() {
            return Err(at("strategy age needs olderThan (or --older-than)".into()));
        }
        let criterion = params.older_than.is_some()
            || !matches!(strategy, Strategy::Label | Strategy::Age)
            || merged.all == Some(true);
        if !criterion {
            unbounded.get_or_insert_with(|| {
                at("no criterion beyond its selector: add olderThan, a quota strategy \
                    (pressure, watermark, hybrid) or `all: true` to clean every finished object it matches"
                    .into())
            });
        }
        rules.push(PolicyRule {
            name: spec.name,
            selector: spec.selector,
            params,
        });
    }
    if let Some(e) = unbounded {
        return Err(e);
    }
    Ok(Policy {
        file: file.to_string(),
        priority_label: doc
            .priority_label
            .unwrap_or_else(|| DEFAULT_PRIORITY_LABEL.to_string()),
        priorities: doc.priorities.into_iter().map(|(k, v)| (k, v.0)).collect(),
        rules,
        hooks: Hooks {
            pod: doc.hooks.pod.map(|h| hook(file, h)),
            job: doc.hooks.job.map(|h| hook(file, h)),
        },
    })
}

/// A hook as it runs: a relative program path with a `/` in it is taken
/// from the policy file's directory (`./hooks/x.sh` beside the file); a bare
/// name is looked up on PATH.
fn hook(file: &str, spec: HookSpec) -> Hook {
    let mut command = spec.before_delete;
    let program = Path::new(&command[0]);
    if program.is_relative() && command[0].contains('/') {
        // (A file in the current directory: the path is right as it is.)
        if let Some(dir) = Path::new(file)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            let program = program.strip_prefix("./").unwrap_or(program);
            command[0] = dir.join(program).display().to_string();
        }
    }
    Hook {
        command,
        timeout: spec
            .timeout_seconds
            .map_or(DEFAULT_HOOK_TIMEOUT, Duration::from_secs),
        env: spec.env,
    }
}

/// serde_norway's message ends with " at line L column C"; we lead with it.
fn located(file: &str, e: &serde_norway::Error) -> Error {
    let msg = e.to_string();
    match e.location() {
        Some(loc) => {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            let msg = msg.strip_suffix(&suffix).unwrap_or(&msg);
            Error::usage(format!(
                "policy file {file}, line {}, column {}: {msg}",
                loc.line(),
                loc.column()
            ))
        }
        None => Error::usage(format!("policy file {file}: {msg}")),
    }
}

/// The line of the `nth` `name: NAME` in the file, for checks that span
/// keys (serde reports positions only for errors met while parsing).
fn rule_line(text: &str, name: &str, nth: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start().trim_start_matches('-').trim();
            l.strip_prefix("name:")
                .map(|v| v.trim().trim_matches(['"', '\'']))
                == Some(name)
        })
        .nth(nth)
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests;
