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

use crate::cli::{Cli, Prefer, StrategyArg};
use crate::error::{Error, Result};
use crate::request::Strategy;
use crate::selector::Selector;

mod format;
use format::FileSpec;

pub const DEFAULT_THRESHOLD: f64 = 0.8;
pub const DEFAULT_HIGH_WATERMARK: f64 = 0.8;
pub const DEFAULT_LOW_WATERMARK: f64 = 0.5;
/// The label whose value picks a retention multiplier from `priorities`.
pub const DEFAULT_PRIORITY_LABEL: &str = "crucible-clean/priority";
pub const API_VERSION: &str = "crucible-clean/v1";
pub const KIND: &str = "CleanupPolicy";

/// What one rule runs with, every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub strategy: Strategy,
    pub older_than: Option<Duration>,
    pub keep_succeeded_for: Option<Duration>,
    pub keep_failed_for: Option<Duration>,
    pub keep_last: Option<usize>,
    pub threshold: f64,
    pub high_watermark: f64,
    pub low_watermark: f64,
    pub prefer: Prefer,
}

impl Params {
    /// Whether this rule reads ResourceQuotas.
    pub fn needs_quota(&self) -> bool {
        matches!(
            self.strategy,
            Strategy::Pressure | Strategy::Watermark | Strategy::Hybrid
        )
    }
    pub fn has_retention(&self) -> bool {
        self.keep_succeeded_for.is_some() || self.keep_failed_for.is_some()
    }
}

/// Parameters that may be left unset: the flags, and each rule of the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    pub strategy: Option<Strategy>,
    pub older_than: Option<Duration>,
    pub keep_succeeded_for: Option<Duration>,
    pub keep_failed_for: Option<Duration>,
    pub keep_last: Option<usize>,
    pub threshold: Option<f64>,
    pub high_watermark: Option<f64>,
    pub low_watermark: Option<f64>,
    pub prefer: Option<Prefer>,
    /// `all: true` in a rule; from the command line, `--all` or ids (which
    /// narrow every rule). A rule needs a criterion beyond its selector.
    pub all: Option<bool>,
}

impl Partial {
    pub fn from_cli(cli: &Cli) -> Self {
        Partial {
            strategy: cli.strategy.map(Strategy::from),
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
    pub fn complete(&self, strategy: Strategy) -> Params {
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

impl From<StrategyArg> for Strategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Label => Strategy::Label,
            StrategyArg::Age => Strategy::Age,
            StrategyArg::Pressure => Strategy::Pressure,
            StrategyArg::Watermark => Strategy::Watermark,
            StrategyArg::Hybrid => Strategy::Hybrid,
        }
    }
}

/// Checks the fractions of the flags: `0 < threshold ≤ 1`, `0 < low < high ≤ 1`.
pub fn validate_flags(p: &Partial) -> Result<()> {
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
pub struct Policy {
    /// The path as given, for messages.
    pub file: String,
    pub priority_label: String,
    pub priorities: BTreeMap<String, f64>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub selector: Selector,
    pub params: Params,
}

impl Policy {
    /// The retention multiplier of an object with these labels (1 without a priority).
    pub fn factor(&self, labels: &BTreeMap<String, String>) -> f64 {
        labels
            .get(&self.priority_label)
            .and_then(|p| self.priorities.get(p))
            .copied()
            .unwrap_or(1.0)
    }
}

/// Reads and checks a policy file; `flags` override every rule.
pub fn load(path: &Path, flags: &Partial) -> Result<Policy> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read policy file {file}: {e}")))?;
    parse(&file, &text, flags)
}

pub fn parse(file: &str, text: &str, flags: &Partial) -> Result<Policy> {
    let doc: FileSpec = serde_norway::from_str(text).map_err(|e| located(file, &e))?;
    let mut rules = Vec::with_capacity(doc.rules.len());
    // Reported once every rule parsed, so that other errors come first.
    let mut unbounded: Option<Error> = None;
    for (i, spec) in doc.rules.into_iter().enumerate() {
        let nth = rules.iter().filter(|r: &&Rule| r.name == spec.name).count();
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
        rules.push(Rule {
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
    })
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
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse("p.yaml", text, &Partial::default()) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    const GOOD: &str = "\
apiVersion: crucible-clean/v1
kind: CleanupPolicy
priorities:
  high: 4
  low: 0.5
rules:
  - name: ci
    selector: test-id
    olderThan: 30m
    keepLast: 2
    keepFailedFor: 1d
  - name: rest
    selector: app=evaluation
    strategy: watermark
    highWatermark: 0.9
    lowWatermark: 0.6
    prefer: failed
";

    #[test]
    fn a_complete_file_parses_with_defaults_filled_in() {
        let p = parse("p.yaml", GOOD, &Partial::default()).unwrap();
        assert_eq!(p.priority_label, "crucible-clean/priority");
        assert_eq!(
            p.priorities,
            BTreeMap::from([("high".into(), 4.0), ("low".into(), 0.5)])
        );
        let ci = &p.rules[0].params;
        assert_eq!(ci.strategy, Strategy::Age, "olderThan implies age");
        assert_eq!(
            (ci.older_than, ci.keep_last, ci.keep_failed_for),
            (
                Some(Duration::from_secs(1800)),
                Some(2),
                Some(Duration::from_secs(86400))
            )
        );
        assert_eq!(
            (ci.high_watermark, ci.low_watermark, ci.threshold),
            (0.8, 0.5, 0.8)
        );
        let rest = &p.rules[1].params;
        assert_eq!(
            (
                rest.strategy,
                rest.high_watermark,
                rest.low_watermark,
                rest.prefer
            ),
            (Strategy::Watermark, 0.9, 0.6, Prefer::Failed)
        );
        assert_eq!(p.rules[1].selector.to_string(), "app=evaluation");
        let labels = BTreeMap::from([("crucible-clean/priority".to_string(), "high".to_string())]);
        assert_eq!(p.factor(&labels), 4.0);
        assert_eq!(p.factor(&BTreeMap::new()), 1.0);
    }

    #[test]
    fn the_example_policy_parses() {
        let p = parse(
            "examples/policy.yaml",
            include_str!("../examples/policy.yaml"),
            &Partial::default(),
        )
        .unwrap();
        let names: Vec<&str> = p.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["test-runs", "quota-guard"]);
        assert_eq!(p.rules[1].params.strategy, Strategy::Watermark);
        assert_eq!(p.priorities.get("low"), Some(&0.5));
    }

    #[test]
    fn flags_override_the_file() {
        let flags = Partial {
            older_than: Some(Duration::from_secs(60)),
            low_watermark: Some(0.3),
            ..Default::default()
        };
        let p = parse("p.yaml", GOOD, &flags).unwrap();
        assert_eq!(p.rules[0].params.older_than, Some(Duration::from_secs(60)));
        assert_eq!(p.rules[1].params.low_watermark, 0.3);
        assert_eq!(p.rules[1].params.high_watermark, 0.9);
        let flags = Partial {
            strategy: Some(Strategy::Pressure),
            ..Default::default()
        };
        assert!(parse("p.yaml", GOOD, &flags)
            .unwrap()
            .rules
            .iter()
            .all(|r| r.params.strategy == Strategy::Pressure));
        let m = match parse(
            "p.yaml",
            GOOD,
            &Partial {
                high_watermark: Some(0.55),
                ..Default::default()
            },
        ) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("0.6 is not below 0.55"),
        };
        assert_eq!(m, "policy file p.yaml, line 12: rules[1] (rest): lowWatermark (0.6) must be below --high-watermark (0.55)");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_line_and_key() {
        let m = err("rules:\n  - name: a\n    selector: x=y\n    olderthan: 5m\n");
        assert!(
            m.starts_with(
                "policy file p.yaml, line 4, column 5: rules[0]: unknown field `olderthan`"
            ),
            "{m}"
        );
        let m = err("rules:\n  - name: a\n    selector: x=y\n    olderThan: 5 minutes\n");
        assert!(
            m.starts_with(
                "policy file p.yaml, line 4, column 16: rules[0].olderThan: invalid duration"
            ),
            "{m}"
        );
        let m = err("rules:\n  - name: a\n    selector: x=y\n    highWatermark: 1.5\n");
        assert!(
            m.starts_with(
                "policy file p.yaml, line 4, column 20: rules[0].highWatermark: must be a fraction"
            ),
            "{m}"
        );
        let m = err("priorities:\n  high: -1\nrules:\n  - name: a\n    selector: x=y\n");
        assert!(
            m.starts_with("policy file p.yaml, line 2, column 9: priorities.high:"),
            "{m}"
        );
        let m = err("rules:\n  - name: a\n    selector: 'x in (y'\n");
        assert!(
            m.starts_with(
                "policy file p.yaml, line 3, column 15: rules[0].selector: invalid selector"
            ),
            "{m}"
        );
        let m = err("rules:\n  - name: a\n    selector: x\n    strategy: fastest\n");
        assert!(
            m.contains("line 4") && m.contains("rules[0].strategy: unknown strategy \"fastest\""),
            "{m}"
        );
        let m = err("apiVersion: v2\nrules: []\n");
        assert!(m.contains("line 1") && m.contains("apiVersion"), "{m}");
        let m = err("rules: []\n");
        assert!(m.contains("no rules"), "{m}");
        let m = err("rule:\n  - name: a\n");
        assert!(
            m.contains("line 1, column 1") && m.contains("unknown field `rule`"),
            "{m}"
        );
    }

    #[test]
    fn checks_across_keys_point_at_the_rule() {
        let m = err("rules:\n  - name: a\n    selector: x\n  - name: b\n    selector: y\n    highWatermark: 0.5\n    lowWatermark: 0.7\n");
        assert_eq!(m, "policy file p.yaml, line 4: rules[1] (b): lowWatermark (0.7) must be below highWatermark (0.5)");
        let m = err("rules:\n  - name: a\n    selector: x\n    strategy: age\n");
        assert!(
            m.contains("line 2") && m.contains("strategy age needs olderThan"),
            "{m}"
        );
        let m = err("rules:\n  - name: a\n    selector: x\n  - name: a\n    selector: y\n");
        assert!(m.contains("line 4") && m.contains("unique"), "{m}");
    }

    #[test]
    fn flag_fractions_are_checked() {
        let p = |h: Option<f64>, l: Option<f64>| {
            validate_flags(&Partial {
                high_watermark: h,
                low_watermark: l,
                ..Default::default()
            })
        };
        assert_eq!(
            p(Some(0.8), Some(0.9)).unwrap_err().to_string(),
            "--low-watermark (0.9) must be below --high-watermark (0.8)"
        );
        assert_eq!(
            p(None, Some(0.8)).unwrap_err().to_string(),
            "--low-watermark (0.8) must be below --high-watermark (0.8)"
        );
        assert!(p(Some(1.2), None)
            .unwrap_err()
            .to_string()
            .starts_with("--high-watermark (1.2) must be a fraction"));
        assert!(p(None, Some(0.0)).is_err());
        assert!(p(Some(1.0), Some(0.1)).is_ok());
        assert!(validate_flags(&Partial {
            threshold: Some(0.0),
            ..Default::default()
        })
        .is_err());
    }
}
