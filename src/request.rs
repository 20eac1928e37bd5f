//! Flags → a validated `Request` (kubectl's Complete + Validate). Nothing
//! here touches the API, so bad input can never cause a deletion.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{AgeFrom, Cascade, Cli, Concurrency, DryRun, Level, Output, Strategy};
use crate::error::{Error, Result};
use crate::model::PROTECTED_NAMESPACES;
use crate::selector::{self, Selector};
use policy::{Params, Policy};
use predelete::{ArchiveSpec, Hooks};

mod in_cluster;
pub(crate) mod marking;
pub(crate) mod plans;
pub(crate) mod policy;
pub(crate) mod predelete;
pub(crate) mod runs;
pub(crate) mod watch;

pub(crate) const DEFAULT_NAMESPACE: &str = "crucible";
/// `-l` without a value.
pub(crate) const DEFAULT_SELECTOR: &str = "app=evaluation";
/// How long `--wait` waits without `--timeout`.
pub(crate) const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Each request's timeout without `--request-timeout` (kubectl gives up on
/// a silent server after about as long). `--request-timeout 0` means none.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Namespace(String),
    AllNamespaces,
}

impl Scope {
    pub(crate) fn label(&self) -> String {
        match self {
            Scope::Namespace(ns) => ns.clone(),
            Scope::AllNamespaces => "all namespaces".into(),
        }
    }
    /// The namespace for the report's `namespace` field (empty for -A).
    pub(crate) fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Namespace(ns) => Some(ns),
            Scope::AllNamespaces => None,
        }
    }
}

/// The rules a user can combine; strategies decide how they combine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Criteria {
    pub(crate) test_ids: Vec<String>,
    pub(crate) eval_ids: Vec<String>,
    /// `--run-id`, or the runs `--stale-runs` found (filled in each cycle).
    pub(crate) run_ids: Vec<String>,
    /// `--stale-runs`: the runs are those whose guard Lease expired.
    pub(crate) stale_runs: bool,
    /// With `--stale-runs`, each cycle's dead runs: where and since when
    /// their objects are theirs (`run_ids` holds their ids).
    pub(crate) stale: Vec<crate::model::StaleRun>,
    pub(crate) older_than: Option<Duration>,
    pub(crate) age_from: Option<AgeFrom>,
    pub(crate) all: bool,
}

impl Criteria {
    pub(crate) fn has_ids(&self) -> bool {
        !self.test_ids.is_empty()
            || !self.eval_ids.is_empty()
            || !self.run_ids.is_empty()
            || self.stale_runs
    }
}

/// The flags that only some strategies read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuotaFlag {
    Threshold,
    HighWatermark,
    LowWatermark,
    Prefer,
    Capacity,
}

impl QuotaFlag {
    pub(crate) fn name(self) -> &'static str {
        match self {
            QuotaFlag::Threshold => "--threshold",
            QuotaFlag::HighWatermark => "--high-watermark",
            QuotaFlag::LowWatermark => "--low-watermark",
            QuotaFlag::Prefer => "--prefer",
            QuotaFlag::Capacity => "--capacity",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Apply,
    DryRunClient,
    DryRunServer,
}

impl Mode {
    pub(crate) fn is_dry_run(self) -> bool {
        self != Mode::Apply
    }
    pub(crate) fn dry_run(self) -> Option<DryRun> {
        match self {
            Mode::Apply => None,
            Mode::DryRunClient => Some(DryRun::Client),
            Mode::DryRunServer => Some(DryRun::Server),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Connection {
    pub(crate) kubeconfig: Option<PathBuf>,
    pub(crate) context: Option<String>,
    pub(crate) request_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) scope: Scope,
    /// `-l`, always applied server-side.
    pub(crate) base: Selector,
    pub(crate) criteria: Criteria,
    pub(crate) strategy: Strategy,
    pub(crate) level: Level,
    pub(crate) include_running: bool,
    pub(crate) mode: Mode,
    pub(crate) yes: bool,
    pub(crate) max_delete: Option<usize>,
    pub(crate) cascade: Cascade,
    pub(crate) grace_period: Option<u32>,
    pub(crate) concurrency: Concurrency,
    pub(crate) wait: Option<Duration>,
    pub(crate) output: Output,
    pub(crate) connection: Connection,
    pub(crate) verbosity: u8,
    /// What the flags ask for, defaults filled in (the rule without `--policy`).
    pub(crate) params: Params,
    /// `--policy`, with the flags merged into each rule.
    pub(crate) policy: Option<Policy>,
    /// `--capacity`: the pod budget where no quota limits `count/pods`.
    pub(crate) capacity: Option<u64>,
    /// The flags only some strategies read that were given (see
    /// `select::validate`).
    pub(crate) quota_flags: Vec<QuotaFlag>,
    /// `--watch`: event-driven or polling, and the interval.
    pub(crate) watch: Option<watch::Watch>,
    /// `--guard RUN`.
    pub(crate) guard: Option<runs::Guard>,
    /// `-i`: a person picks what goes from the planned deletes.
    pub(crate) interactive: bool,
    /// `--save-plan FILE`: also write the dry run's report there.
    pub(crate) save_plan: Option<PathBuf>,
    /// `--from-plan FILE`: the plan file is the selection (`strategy`,
    /// `criteria` and `params` are then unused).
    pub(crate) from_plan: Option<plans::FromPlan>,
    /// `--archive DIR` and its options.
    pub(crate) archive: Option<ArchiveSpec>,
    /// The policy file's `hooks:` (none without `--policy`).
    pub(crate) hooks: Hooks,
    /// `--run-hooks-in-dry-run`.
    pub(crate) hooks_in_dry_run: bool,
    /// Record a `CleanedUp` Event on each object before deleting it
    /// (`--events`, on by default with `--watch`; never in a dry run).
    pub(crate) events: bool,
    /// `--metrics-addr`: where `--watch` serves /metrics, /healthz, /readyz.
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// `--mark-kept-for`: mark the objects of the ids kept instead of
    /// deleting anything.
    pub(crate) mark_kept: Option<marking::MarkKept>,
}

impl Request {
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self> {
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

        let selector = cli.selector.as_deref().unwrap_or(DEFAULT_SELECTOR);
        let base =
            Selector::parse(selector).map_err(|e| Error::usage(format!("-l/--selector: {e}")))?;
        if let Some(r) = base.empty_negation() {
            // `app!=$X` with X unset: "app is not empty" matches nearly
            // every object, never what was meant.
            return Err(Error::usage(format!(
                "-l/--selector {selector:?}: {r} has an empty value and would match nearly every object (is a shell variable unset?)"
            )));
        }
        if base.is_empty() {
            // An empty selector matches every object: an unset shell variable
            // must never widen a cleanup to the whole namespace.
            return Err(Error::usage(format!(
                "-l/--selector {selector:?} is empty and would match every object; give a selector such as app=evaluation"
            )));
        }
        let mut test_ids = cli.test_id.clone();
        if cli.test_id_from_env {
            test_ids.push(runs::test_id_from_env(std::env::var_os(runs::TEST_ID_VAR))?);
        }
        for (flag, ids) in [
            ("--test-id", &test_ids),
            ("--eval-id", &cli.eval_id),
            ("--run-id", &cli.run_id),
        ] {
            for id in ids {
                if id.is_empty() {
                    return Err(Error::usage(format!("{flag} needs a non-empty value")));
                }
                selector::validate_value(id).map_err(|e| Error::usage(format!("{flag}: {e}")))?;
            }
        }

        let guard = runs::check(cli)?;
        let mark_kept = marking::check(cli)?;
        let criteria = Criteria {
            test_ids,
            eval_ids: cli.eval_id.clone(),
            run_ids: match &guard {
                Some(g) => vec![g.run.clone()],
                None => cli.run_id.clone(),
            },
            stale_runs: cli.stale_runs,
            stale: vec![],
            older_than: cli.older_than,
            age_from: cli.age_from.or(cli.older_than.map(|_| AgeFrom::Created)),
            all: cli.all,
        };

        let from_plan = plans::from_plan(cli)?;
        let strategy = match cli.strategy {
            // What each strategy requires is its own `check` (select::validate).
            Some(chosen) => chosen,
            // Unused: the plan file is the selection.
            None if from_plan.is_some() => Strategy::Label,
            None if cli.policy.is_some() => Strategy::Policy,
            None if criteria.has_ids() || criteria.all => Strategy::Label,
            None if criteria.older_than.is_some() => Strategy::Age,
            None => {
                return Err(Error::usage(
                    "no selection given: add --test-id ID, --eval-id ID, --run-id RUN, --older-than DUR, --all, --strategy, --policy or --from-plan FILE \
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
        refuse_age_from_without_age(cli, policy.as_ref())?;
        let watch = watch::watch(cli)?;
        let save_plan = plans::save_plan(cli)?;
        let interactive = plans::interactive(cli)?;
        let archive = predelete::archive(cli)?;
        let hooks_in_dry_run = predelete::hooks_in_dry_run(cli, policy.as_ref())?;
        let mode = match cli.dry_run {
            None => Mode::Apply,
            Some(DryRun::Client) => Mode::DryRunClient,
            Some(DryRun::Server) => Mode::DryRunServer,
        };
        let events = in_cluster::events(cli, watch.is_some(), mode)?;
        let metrics_addr = in_cluster::metrics_addr(cli, watch.is_some())?;

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
            // A guarded or stale run goes whole: its jobs, their pods and its
            // bare pods, running or not (`runs::check` refuses --level).
            // Marking kept takes every object of the ids, as a guard reaps them.
            level: match (&guard, cli.stale_runs, &mark_kept) {
                (None, false, None) => cli.level.unwrap_or(Level::Pods),
                _ => Level::All,
            },
            include_running: cli.include_running
                || guard.is_some()
                || cli.stale_runs
                || mark_kept.is_some(),
            mode,
            // A guard runs unattended by design: nobody is there to ask.
            yes: cli.yes || guard.is_some(),
            max_delete: cli.max_delete,
            cascade: cli.cascade,
            grace_period: cli.grace_period,
            concurrency: cli.concurrency,
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
            quota_flags: quota_flags(cli),
            capacity: cli.capacity,
            watch,
            guard,
            interactive,
            save_plan,
            from_plan,
            archive,
            hooks: policy.as_ref().map(|p| p.hooks.clone()).unwrap_or_default(),
            hooks_in_dry_run,
            policy,
            events,
            metrics_addr,
            mark_kept,
        })
    }
}

/// A flag that the chosen strategies do not read would do nothing: refuse it,
/// naming the flag and what would give it meaning.
/// `--age-from` without an age rule would do nothing. (The flags that only
/// some strategies read are checked against them in `select::validate`.)
fn refuse_age_from_without_age(cli: &Cli, policy: Option<&Policy>) -> Result<()> {
    let age_rule = cli.older_than.is_some()
        || policy.is_some_and(|p| p.rules.iter().any(|r| r.params.older_than.is_some()));
    if cli.age_from.is_some() && !age_rule {
        return Err(Error::usage(
            "--age-from has no effect without an age rule: add --older-than DUR",
        ));
    }
    Ok(())
}

/// The flags of `QuotaFlag` given on the command line.
fn quota_flags(cli: &Cli) -> Vec<QuotaFlag> {
    [
        (QuotaFlag::Threshold, cli.threshold.is_some()),
        (QuotaFlag::HighWatermark, cli.high_watermark.is_some()),
        (QuotaFlag::LowWatermark, cli.low_watermark.is_some()),
        (QuotaFlag::Prefer, cli.prefer.is_some()),
        (QuotaFlag::Capacity, cli.capacity.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
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

/// Reads the text file `path` (`what`: "plan file", "policy file"), at most
/// `limit` bytes: a longer one (or `/dev/zero`) is a usage error at once,
/// never a read without end.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64, what: &str) -> Result<String> {
    use std::io::Read;
    let file = path.display();
    let cannot = |e: std::io::Error| Error::usage(format!("cannot read {what} {file}: {e}"));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(Error::usage(format!(
            "{what} {file} is larger than {} MiB; no {what} is that large",
            limit >> 20
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::usage(format!("cannot read {what} {file}: it is not UTF-8 text")))
}

#[cfg(test)]
mod tests;
