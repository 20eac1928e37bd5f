//! Flags → a validated `Request` (kubectl's Complete + Validate). Nothing
//! here touches the API, so bad input can never cause a deletion.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AgeFrom, Cascade, Cli, DryRunArg, Level, Output, StrategyArg};
use crate::error::{Error, Result};
use crate::model::PROTECTED_NAMESPACES;
use crate::policy::{self, Params, Policy};
use crate::selector::{self, Selector};

pub const DEFAULT_NAMESPACE: &str = "crucible";
/// How long `--wait` waits without `--timeout`.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Each request's timeout without `--request-timeout` (kubectl gives up on
/// a silent server after about as long). `--request-timeout 0` means none.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    AllNamespaces,
}

impl Scope {
    pub fn label(&self) -> String {
        match self {
            Scope::Namespace(ns) => ns.clone(),
            Scope::AllNamespaces => "all namespaces".into(),
        }
    }
    /// The namespace for the report's `namespace` field (empty for -A).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Namespace(ns) => Some(ns),
            Scope::AllNamespaces => None,
        }
    }
}

/// The rules a user can combine; strategies decide how they combine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Criteria {
    pub test_ids: Vec<String>,
    pub eval_ids: Vec<String>,
    pub older_than: Option<Duration>,
    pub age_from: Option<AgeFrom>,
    pub all: bool,
}

impl Criteria {
    pub fn has_ids(&self) -> bool {
        !self.test_ids.is_empty() || !self.eval_ids.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Label,
    Age,
    Pressure,
    Watermark,
    Hybrid,
    /// Each rule of the policy file with its own strategy.
    Policy,
}

/// The flags that only some strategies read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaFlag {
    Threshold,
    HighWatermark,
    LowWatermark,
    Prefer,
    Capacity,
}

impl QuotaFlag {
    pub fn name(self) -> &'static str {
        match self {
            QuotaFlag::Threshold => "--threshold",
            QuotaFlag::HighWatermark => "--high-watermark",
            QuotaFlag::LowWatermark => "--low-watermark",
            QuotaFlag::Prefer => "--prefer",
            QuotaFlag::Capacity => "--capacity",
        }
    }
}

impl Strategy {
    /// The strategies `--strategy` offers.
    pub const SELECTABLE: [Strategy; 5] = [
        Strategy::Label,
        Strategy::Age,
        Strategy::Pressure,
        Strategy::Watermark,
        Strategy::Hybrid,
    ];

    /// Whether this strategy reads `flag`.
    pub fn reads(self, flag: QuotaFlag) -> bool {
        use QuotaFlag::*;
        match self {
            Strategy::Label | Strategy::Age | Strategy::Policy => false,
            Strategy::Pressure => matches!(flag, Threshold | Prefer | Capacity),
            Strategy::Watermark | Strategy::Hybrid => {
                matches!(flag, HighWatermark | LowWatermark | Prefer | Capacity)
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Label => "label",
            Strategy::Age => "age",
            Strategy::Pressure => "pressure",
            Strategy::Watermark => "watermark",
            Strategy::Hybrid => "hybrid",
            Strategy::Policy => "policy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    DryRunClient,
    DryRunServer,
}

impl Mode {
    pub fn is_dry_run(self) -> bool {
        self != Mode::Apply
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub request_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub scope: Scope,
    /// `-l`, always applied server-side.
    pub base: Selector,
    pub criteria: Criteria,
    pub strategy: Strategy,
    pub level: Level,
    pub include_running: bool,
    pub mode: Mode,
    pub yes: bool,
    pub max_delete: Option<usize>,
    pub cascade: Cascade,
    pub grace_period: Option<u32>,
    pub concurrency: usize,
    pub wait: Option<Duration>,
    pub output: Output,
    pub connection: Connection,
    pub verbosity: u8,
    /// What the flags ask for, defaults filled in (the rule without `--policy`).
    pub params: Params,
    /// `--policy`, with the flags merged into each rule.
    pub policy: Option<Policy>,
    /// `--capacity`: the pod budget where no quota limits `count/pods`.
    pub capacity: Option<u64>,
    /// `--watch`: the interval between cycles.
    pub watch: Option<Duration>,
}

impl Request {
    pub fn from_cli(cli: &Cli) -> Result<Self> {
        let scope = match (&cli.namespace, cli.all_namespaces) {
            (Some(_), true) => {
                return Err(Error::usage(
                    "--namespace and --all-namespaces exclude each other; give one",
                ))
            }
            (None, true) => Scope::AllNamespaces,
            (ns, false) => {
                let ns = ns.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
                validate_namespace(&ns)?;
                Scope::Namespace(ns)
            }
        };

        let base = Selector::parse(&cli.selector)
            .map_err(|e| Error::usage(format!("-l/--selector: {e}")))?;
        if base.is_empty() {
            // An empty selector matches every object: an unset shell variable
            // must never widen a cleanup to the whole namespace.
            return Err(Error::usage(format!(
                "-l/--selector {:?} is empty and would match every object; give a selector such as app=evaluation",
                cli.selector
            )));
        }
        for (flag, ids) in [("--test-id", &cli.test_id), ("--eval-id", &cli.eval_id)] {
            for id in ids {
                if id.is_empty() {
                    return Err(Error::usage(format!("{flag} needs a non-empty value")));
                }
                selector::validate_value(id).map_err(|e| Error::usage(format!("{flag}: {e}")))?;
            }
        }

        let criteria = Criteria {
            test_ids: cli.test_id.clone(),
            eval_ids: cli.eval_id.clone(),
            older_than: cli.older_than,
            age_from: cli.age_from.or(cli.older_than.map(|_| AgeFrom::Created)),
            all: cli.all,
        };

        let strategy = match cli.strategy {
            Some(StrategyArg::Label) => {
                if !criteria.has_ids() && !criteria.all && cli.policy.is_none() {
                    return Err(Error::usage("--strategy label needs --test-id ID or --eval-id ID (or --all)"));
                }
                Strategy::Label
            }
            Some(StrategyArg::Age) => {
                if criteria.older_than.is_none() && cli.policy.is_none() {
                    return Err(Error::usage("--strategy age needs --older-than DUR, e.g. --older-than 2h"));
                }
                Strategy::Age
            }
            Some(other) => Strategy::from(other),
            None if cli.policy.is_some() => Strategy::Policy,
            None if criteria.has_ids() || criteria.all => Strategy::Label,
            None if criteria.older_than.is_some() => Strategy::Age,
            None => {
                return Err(Error::usage(
                    "no selection given: add --test-id ID, --eval-id ID, --older-than DUR, --all, --strategy or --policy \
                     (nothing is deleted without one)",
                ))
            }
        };

        if cli.older_than.is_some_and(|d| d.is_zero()) {
            return Err(Error::usage(
                "--older-than must be more than 0, e.g. --older-than 30m (use --all for every finished object)",
            ));
        }
        let flags = policy::Partial::from_cli(cli);
        policy::validate_flags(&flags)?;
        let policy = match &cli.policy {
            Some(path) => Some(policy::load(path, &flags)?),
            None => None,
        };
        let params = flags.complete(strategy);
        refuse_unread_flags(cli, &params, policy.as_ref())?;
        let watch = crate::watch::interval(cli)?;

        if cli.grace_period == Some(0) {
            // As kubectl without --force: 0 would remove running pods from the
            // API at once while their processes may go on running on the node.
            return Err(Error::usage(
                "--grace-period 0 would force-delete pods whose processes may keep running; use 1 or more",
            ));
        }
        let timeout = match (cli.wait, cli.timeout) {
            (false, Some(_)) => {
                return Err(Error::usage(
                    "--timeout has no effect without --wait: add --wait, or drop --timeout",
                ))
            }
            (true, Some(t)) if t.is_zero() => {
                return Err(Error::usage("--timeout must be more than 0 with --wait"))
            }
            (_, t) => t.unwrap_or(DEFAULT_WAIT_TIMEOUT),
        };

        Ok(Request {
            scope,
            base,
            criteria,
            strategy,
            level: cli.level,
            include_running: cli.include_running,
            mode: match cli.dry_run {
                None => Mode::Apply,
                Some(DryRunArg::Client) => Mode::DryRunClient,
                Some(DryRunArg::Server) => Mode::DryRunServer,
            },
            yes: cli.yes,
            max_delete: cli.max_delete,
            cascade: cli.cascade,
            grace_period: cli.grace_period,
            concurrency: usize::from(cli.concurrency),
            wait: cli.wait.then_some(timeout),
            output: cli.output,
            connection: Connection {
                kubeconfig: cli.kubeconfig.clone(),
                context: cli.context.clone(),
                request_timeout: match cli.request_timeout {
                    None => Some(DEFAULT_REQUEST_TIMEOUT),
                    Some(t) if t.is_zero() => None,
                    Some(t) => Some(t),
                },
            },
            verbosity: cli.verbosity,
            params,
            policy,
            capacity: cli.capacity,
            watch,
        })
    }

    /// The label selector sent to the API server: the base selector plus, when
    /// every rule must hold, the id filters (narrowing the LIST server-side).
    /// Hybrid is a union: objects the ids do not match may still be picked by
    /// age or watermark, so there the ids filter client-side only.
    pub fn server_selector(&self) -> Selector {
        let hybrid = |p: &Params| p.strategy == Strategy::Hybrid;
        if hybrid(&self.params)
            || self
                .policy
                .iter()
                .flat_map(|p| &p.rules)
                .any(|r| hybrid(&r.params))
        {
            return self.base.clone();
        }
        self.base
            .clone()
            .with_in(crate::model::TEST_ID, &self.criteria.test_ids)
            .with_in(crate::model::EVAL_ID, &self.criteria.eval_ids)
    }
}

/// A flag that the chosen strategies do not read would do nothing: refuse it,
/// naming the flag and what would give it meaning.
fn refuse_unread_flags(cli: &Cli, params: &Params, policy: Option<&Policy>) -> Result<()> {
    let strategies: Vec<Strategy> = match policy {
        Some(p) => p.rules.iter().map(|r| r.params.strategy).collect(),
        None => vec![params.strategy],
    };
    let reads = |flag: QuotaFlag| strategies.iter().any(|s| s.reads(flag));
    for (flag, given) in [
        (QuotaFlag::Threshold, cli.threshold.is_some()),
        (QuotaFlag::HighWatermark, cli.high_watermark.is_some()),
        (QuotaFlag::LowWatermark, cli.low_watermark.is_some()),
        (QuotaFlag::Prefer, cli.prefer.is_some()),
        (QuotaFlag::Capacity, cli.capacity.is_some()),
    ] {
        if given && !reads(flag) {
            let readers: Vec<String> = Strategy::SELECTABLE
                .iter()
                .filter(|s| s.reads(flag))
                .map(|s| format!("--strategy {}", s.name()))
                .collect();
            return Err(Error::usage(format!(
                "{} has no effect with the {} strategy: add {}",
                flag.name(),
                strategies
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join("/"),
                readers.join(" or ")
            )));
        }
    }
    let age_rule = cli.older_than.is_some()
        || policy.is_some_and(|p| p.rules.iter().any(|r| r.params.older_than.is_some()));
    if cli.age_from.is_some() && !age_rule {
        return Err(Error::usage(
            "--age-from has no effect without an age rule: add --older-than DUR",
        ));
    }
    Ok(())
}

fn validate_namespace(ns: &str) -> Result<()> {
    if PROTECTED_NAMESPACES.contains(&ns) {
        return Err(Error::usage(format!(
            "namespace {ns:?} is protected: crucible-clean never deletes in {}",
            PROTECTED_NAMESPACES.join(", ")
        )));
    }
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if !ok {
        return Err(Error::usage(format!(
            "invalid namespace {ns:?}: must be lowercase letters, digits and '-', at most 63 characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn req(args: &[&str]) -> Result<Request> {
        let mut argv = vec!["kubectl-crucible-clean"];
        argv.extend_from_slice(args);
        Request::from_cli(&Cli::try_parse_from(argv).unwrap())
    }

    fn usage_message(args: &[&str]) -> String {
        match req(args) {
            Err(Error::Usage(m)) => m,
            other => panic!("expected a usage error for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn no_selection_is_refused_with_what_to_add() {
        let m = usage_message(&[]);
        assert!(
            m.contains("--test-id") && m.contains("--older-than") && m.contains("--all"),
            "{m}"
        );
        assert!(usage_message(&["-n", "crucible", "--level", "all"]).starts_with("no selection"));
    }

    #[test]
    fn strategy_is_inferred() {
        assert_eq!(req(&["--test-id", "t1"]).unwrap().strategy, Strategy::Label);
        assert_eq!(
            req(&["--older-than", "1h"]).unwrap().strategy,
            Strategy::Age
        );
        assert_eq!(
            req(&["--eval-id", "e", "--older-than", "1h"])
                .unwrap()
                .strategy,
            Strategy::Label
        );
        assert_eq!(req(&["--all"]).unwrap().strategy, Strategy::Label);
        assert_eq!(
            req(&["--strategy", "age", "--older-than", "5m", "--test-id", "x"])
                .unwrap()
                .strategy,
            Strategy::Age
        );
        assert!(usage_message(&["--strategy", "age", "--test-id", "x"]).contains("--older-than"));
        assert!(
            usage_message(&["--strategy", "label", "--older-than", "1h"]).contains("--test-id")
        );
    }

    #[test]
    fn protected_and_malformed_namespaces_are_refused() {
        for ns in ["kube-system", "kube-public", "kube-node-lease"] {
            assert!(usage_message(&["-n", ns, "--all"]).contains("protected"));
        }
        assert!(usage_message(&["-n", "Bad_NS", "--all"]).contains("invalid namespace"));
        assert!(usage_message(&["-n", "x", "-A", "--all"]).contains("exclude"));
        assert_eq!(
            req(&["--all"]).unwrap().scope,
            Scope::Namespace("crucible".into())
        );
        assert_eq!(req(&["-A", "--all"]).unwrap().scope, Scope::AllNamespaces);
    }

    #[test]
    fn bad_selector_and_ids_are_usage_errors() {
        assert!(usage_message(&["-l", "app in (x", "--all"]).contains("-l/--selector"));
        assert!(usage_message(&["--test-id", "has space"]).contains("--test-id"));
        assert!(usage_message(&["--test-id", ""]).contains("non-empty"));
    }

    #[test]
    fn server_selector_narrows_by_ids() {
        let r = req(&["--test-id", "a", "--test-id", "b", "--eval-id", "e1"]).unwrap();
        assert_eq!(
            r.server_selector().to_string(),
            "app=evaluation,test-id in (a,b),eval-id in (e1)"
        );
        assert_eq!(
            req(&["--older-than", "1h", "-l", "team=x"])
                .unwrap()
                .server_selector()
                .to_string(),
            "team=x"
        );
    }

    #[test]
    fn an_empty_selector_is_refused() {
        for sel in ["", "   "] {
            let m = usage_message(&["-l", sel, "--all"]);
            assert!(m.contains("empty") && m.contains("every object"), "{m}");
        }
    }

    #[test]
    fn flags_without_effect_are_refused() {
        for (args, flag) in [
            (&["--test-id", "t", "--threshold", "0.5"][..], "--threshold"),
            (
                &["--test-id", "t", "--high-watermark", "0.9"][..],
                "--high-watermark",
            ),
            (
                &["--test-id", "t", "--low-watermark", "0.1"][..],
                "--low-watermark",
            ),
            (
                &["--older-than", "1h", "--prefer", "failed"][..],
                "--prefer",
            ),
            (&["--all", "--capacity", "10"][..], "--capacity"),
            (
                &["--strategy", "pressure", "--high-watermark", "0.9"][..],
                "--high-watermark",
            ),
            (
                &["--strategy", "watermark", "--threshold", "0.9"][..],
                "--threshold",
            ),
            (
                &["--test-id", "t", "--age-from", "finished"][..],
                "--age-from",
            ),
        ] {
            let m = usage_message(args);
            assert!(
                m.starts_with(flag) && m.contains("no effect"),
                "{args:?}: {m}"
            );
        }
        assert!(usage_message(&["--threshold", "0.5", "--all"]).contains("--strategy pressure"));
        assert!(usage_message(&["--older-than", "0"]).contains("more than 0"));
        assert!(usage_message(&["--older-than", "0s"]).contains("more than 0"));
        // Read by the strategy: accepted.
        req(&[
            "--strategy",
            "pressure",
            "--threshold",
            "0.5",
            "--prefer",
            "failed",
        ])
        .unwrap();
        req(&["--strategy", "hybrid", "--test-id", "t", "--capacity", "9"]).unwrap();
        req(&["--older-than", "1h", "--age-from", "finished"]).unwrap();
    }

    #[test]
    fn grace_period_zero_is_refused() {
        assert!(usage_message(&["--all", "--grace-period", "0"]).contains("force-delete"));
        assert_eq!(
            req(&["--all", "--grace-period", "1"]).unwrap().grace_period,
            Some(1)
        );
    }

    #[test]
    fn modes_and_waits() {
        assert_eq!(req(&["--all"]).unwrap().mode, Mode::Apply);
        assert_eq!(
            req(&["--all", "--dry-run"]).unwrap().mode,
            Mode::DryRunClient
        );
        assert_eq!(
            req(&["--all", "--dry-run=server"]).unwrap().mode,
            Mode::DryRunServer
        );
        assert_eq!(
            req(&["--all", "--wait", "--timeout", "30s"]).unwrap().wait,
            Some(Duration::from_secs(30))
        );
        assert!(usage_message(&["--all", "--timeout", "30s"]).contains("without --wait"));
        assert_eq!(
            req(&["--all", "--wait"]).unwrap().wait,
            Some(DEFAULT_WAIT_TIMEOUT)
        );
        let timeout = |args: &[&str]| req(args).unwrap().connection.request_timeout;
        assert_eq!(timeout(&["--all", "--request-timeout", "0"]), None);
        assert_eq!(timeout(&["--all"]), Some(DEFAULT_REQUEST_TIMEOUT));
        assert_eq!(
            timeout(&["--all", "--request-timeout", "5"]),
            Some(Duration::from_secs(5)),
            "a bare number is seconds, as kubectl's"
        );
    }

    #[test]
    fn quota_strategies_and_their_checks() {
        assert_eq!(
            req(&["--strategy", "pressure"]).unwrap().strategy,
            Strategy::Pressure
        );
        let w = req(&["--strategy", "watermark", "--high-watermark", "0.9"]).unwrap();
        assert_eq!(
            (w.strategy, w.params.high_watermark, w.params.low_watermark),
            (Strategy::Watermark, 0.9, 0.5)
        );
        assert_eq!(
            usage_message(&[
                "--strategy",
                "watermark",
                "--high-watermark",
                "0.8",
                "--low-watermark",
                "0.9"
            ]),
            "--low-watermark (0.9) must be below --high-watermark (0.8)"
        );
        assert!(
            usage_message(&["--strategy", "pressure", "--threshold", "1.5"])
                .starts_with("--threshold (1.5)")
        );
        let h = req(&[
            "--strategy",
            "hybrid",
            "--test-id",
            "r1",
            "--older-than",
            "15m",
            "--high-watermark",
            "0.7",
        ])
        .unwrap();
        assert_eq!(
            h.server_selector().to_string(),
            "app=evaluation",
            "hybrid ids filter client-side only"
        );
        assert_eq!(h.criteria.test_ids, ["r1"]);
    }

    #[test]
    fn a_policy_file_is_a_selection_and_its_errors_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        let p = path.to_str().unwrap();
        std::fs::write(
            &path,
            "rules:\n  - name: a\n    selector: test-id\n    olderThan: 1h\n",
        )
        .unwrap();
        let r = req(&["--policy", p]).unwrap();
        assert_eq!(r.strategy, Strategy::Policy);
        assert_eq!(r.policy.unwrap().rules[0].params.strategy, Strategy::Age);
        std::fs::write(
            &path,
            "rules:\n  - name: a\n    selector: test-id\n    keepLast: many\n",
        )
        .unwrap();
        let m = usage_message(&["--policy", p]);
        assert!(
            m.contains("line 4") && m.contains("rules[0].keepLast"),
            "{m}"
        );
        assert!(usage_message(&["--policy", "/nonexistent/p.yaml"])
            .starts_with("cannot read policy file"));
    }
}
