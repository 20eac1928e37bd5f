//! The command line, defined once: `--help`, the man page and the shell
//! completions are all generated from these types.
//!
//! Longer than 500 lines because every flag is here with its help text, in
//! the order `--help` shows them; split by heading, the one definition of
//! the command line would be scattered over files.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::duration;

/// `--version`: the version and the commit it was built from (build.rs; `-V`
/// and the man page carry the version alone).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CRUCIBLE_CLEAN_COMMIT"),
    ")"
);

/// Clean up finished evaluation pods and jobs: by test label, by age, by
/// quota pressure or by watermark, with a preview, a confirmation and a report.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kubectl crucible-clean",
    bin_name = "kubectl crucible-clean",
    version,
    long_version = LONG_VERSION,
    after_help = "Examples:\n  \
      kubectl crucible-clean --test-id run-42 --dry-run\n  \
      kubectl crucible-clean --older-than 2h --level all --yes\n  \
      kubectl crucible-clean --older-than 1d --age-from finished -o json --yes\n  \
      kubectl crucible-clean --strategy pressure --threshold 0.9 --dry-run\n  \
      kubectl crucible-clean --strategy watermark --high-watermark 0.8 --low-watermark 0.5 --yes\n  \
      kubectl crucible-clean --strategy hybrid --test-id \"$RUN\" --older-than 15m --high-watermark 0.7 --yes\n  \
      kubectl crucible-clean --policy policy.yaml --watch --interval 5m -o json --yes\n  \
      kubectl crucible-clean --older-than 1d --dry-run --save-plan plan.json   # review, then:\n  \
      kubectl crucible-clean --from-plan plan.json --yes\n  \
      kubectl crucible-clean --test-id run-42 -i                               # pick by hand\n\n\
      Exit codes: 0 done or nothing to do, 1 some deletions failed, 2 bad usage,\n\
      3 aborted before deleting, 4 cluster unreachable or forbidden, 130 interrupted."
)]
pub struct Cli {
    /// Namespace to clean [default: crucible]
    #[arg(short = 'n', long, value_name = "NS", help_heading = "Scope")]
    pub namespace: Option<String>,

    /// Every namespace except kube-system, kube-public and kube-node-lease
    #[arg(short = 'A', long, help_heading = "Scope")]
    pub all_namespaces: bool,

    /// Base label selector (kubectl syntax); every selected object must match it [default: app=evaluation]
    #[arg(short = 'l', long, value_name = "SEL", help_heading = "Selection")]
    pub selector: Option<String>,

    /// Objects labelled test-id=ID (repeatable)
    #[arg(long = "test-id", value_name = "ID", help_heading = "Selection")]
    pub test_id: Vec<String>,

    /// Objects labelled eval-id=ID (repeatable)
    #[arg(long = "eval-id", value_name = "ID", help_heading = "Selection")]
    pub eval_id: Vec<String>,

    /// Objects of test run RUN: labelled crucible-clean/run=RUN, as the pytest plugin labels them (repeatable)
    #[arg(long = "run-id", value_name = "RUN", help_heading = "Selection")]
    pub run_id: Vec<String>,

    /// Add the test id in $TEST_LABEL_ID (as the pytest plugin exports it) to --test-id; an error when it is unset
    /// or empty. The variable is never read without this flag
    #[arg(long, help_heading = "Selection")]
    pub test_id_from_env: bool,

    /// Objects older than DUR: 90s, 30m, 2h, 7d, 1h30m
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Selection")]
    pub older_than: Option<Duration>,

    /// What --older-than measures age from [default: created]
    #[arg(long, value_enum, value_name = "FROM", help_heading = "Selection")]
    pub age_from: Option<AgeFrom>,

    /// Every finished object that matches the base selector
    #[arg(long, help_heading = "Selection")]
    pub all: bool,

    /// Which kinds: pods, jobs, all (jobs with their pods, plus bare pods), or none (no object is selected or
    /// deleted: only the quota section is reported) [default: pods]
    #[arg(long, value_enum, value_name = "LEVEL", help_heading = "Selection")]
    pub level: Option<Level>,

    /// Also pending/running pods and active jobs (never pods of a running job); with --from-plan, the plan's
    /// unfinished objects may go
    #[arg(long, help_heading = "Selection")]
    pub include_running: bool,

    /// How to select [default: label with --test-id/--eval-id, else age]
    #[arg(long, value_enum, value_name = "STRATEGY", help_heading = "Selection")]
    pub strategy: Option<Strategy>,

    /// Policy file (YAML): named rules, each a label selector with its strategy, retention and watermarks, plus
    /// retention multipliers by priority label. Flags given on the command line override the file
    #[arg(long, value_name = "FILE", help_heading = "Selection")]
    pub policy: Option<PathBuf>,

    /// Pressure: act when a quota resource that deleting can relieve is at or above this fraction of its hard limit,
    /// and delete oldest first until it is below [default: 0.8]
    #[arg(long, value_name = "F", help_heading = "Quota")]
    pub threshold: Option<f64>,

    /// Watermark: plan a cleanup when count/pods usage reaches this fraction of the budget [default: 0.8]
    #[arg(long, value_name = "F", help_heading = "Quota")]
    pub high_watermark: Option<f64>,

    /// Watermark: delete finished objects until projected count/pods usage is at or below this fraction [default: 0.5]
    #[arg(long, value_name = "F", help_heading = "Quota")]
    pub low_watermark: Option<f64>,

    /// Which finished objects pressure and watermark delete first (then oldest first) [default: oldest]
    #[arg(long, value_enum, value_name = "ORDER", help_heading = "Quota")]
    pub prefer: Option<Prefer>,

    /// Pod budget (count/pods hard limit) for pressure and watermark where the namespace has no ResourceQuota on
    /// count/pods
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Quota")]
    pub capacity: Option<u64>,

    /// Never delete the N newest finished objects of each test run (grouped by test-id)
    #[arg(long, value_name = "N", help_heading = "Retention")]
    pub keep_last: Option<usize>,

    /// Keep succeeded pods and complete jobs for DUR after they finished
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Retention")]
    pub keep_succeeded_for: Option<Duration>,

    /// Keep failed pods and jobs for DUR after they failed
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Retention")]
    pub keep_failed_for: Option<Duration>,

    /// Keep cleaning until SIGTERM or SIGINT (needs --yes, or --dry-run to preview): `event` (the default) watches the objects and
    /// re-plans within a second of a change or of the moment an object becomes eligible; `poll` runs the
    /// whole cleanup again every --interval. One JSON line per reconcile that deleted or failed something
    /// with -o json
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "event", help_heading = "Watch")]
    pub watch: Option<WatchMode>,

    /// With --watch: how often everything is listed afresh, a safety net for a missed event [default: 1h];
    /// with --watch=poll: the time between two cycles [default: 5m]
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Watch")]
    pub interval: Option<Duration>,

    /// Guard test run RUN: hold a Lease for it while standard input stays open; when input ends (the parent
    /// process died), delete every object of the run (--run-id RUN, all levels, running ones too), then the Lease.
    /// A line `release` ends the guard without deleting; other input is ignored. Prints `ready` once the Lease
    /// is held
    #[arg(long, value_name = "RUN", help_heading = "Test runs")]
    pub guard: Option<String>,

    /// With --guard: PID is the guard's parent (the test run); when it is gone, reap the run as the end of
    /// input does, even if a child of the run still holds the pipe. Refused when PID is not the parent
    #[arg(long, value_name = "PID", help_heading = "Test runs")]
    pub parent_pid: Option<u32>,

    /// How long a --guard Lease lasts without renewal (it is renewed every third of it) [default: 30s]
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Test runs")]
    pub lease_duration: Option<Duration>,

    /// Delete the objects of test runs whose --guard Lease expired (the guard and its test run died), each in
    /// its Lease's namespace and created since the Lease, then those Leases; runs with a live Lease are never
    /// touched, and Leases a guard did not write are ignored
    #[arg(long, help_heading = "Test runs")]
    pub stale_runs: bool,

    /// Instead of deleting, mark the objects of --test-id, --eval-id or --run-id (every phase, pods and jobs)
    /// kept for DUR: annotation crucible-clean/keep-until=<now + DUR>, which every cleanup honours until then
    /// (the pytest plugin's keep-failed). 0 ends an earlier keep-until now
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Test runs")]
    pub mark_kept_for: Option<Duration>,

    /// With --mark-kept-for: why, as annotation crucible-clean/keep-reason (the pytest plugin: the test's node id)
    #[arg(long, value_name = "TEXT", help_heading = "Test runs")]
    pub keep_reason: Option<String>,
    /// Serve Prometheus metrics on http://HOST:PORT/metrics, and /healthz and /readyz, while --watch runs
    #[arg(long, value_name = "HOST:PORT", help_heading = "Watch")]
    pub metrics_addr: Option<String>,

    /// Record a Kubernetes Event (reason CleanedUp) on each object before deleting it [default: on with --watch]
    #[arg(long, overrides_with = "no_events", help_heading = "Watch")]
    pub events: bool,

    /// Record no Events (the default without --watch)
    #[arg(long, overrides_with = "events", help_heading = "Watch")]
    pub no_events: bool,

    /// Preview only: `client` (default) renders the plan, `server` sends each delete with dryRun=All
    #[arg(long, value_enum, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "client", help_heading = "Safety")]
    pub dry_run: Option<DryRun>,

    /// Do not ask for confirmation
    #[arg(short = 'y', long, help_heading = "Safety")]
    pub yes: bool,

    /// Abort before the first delete if more than N objects would be deleted
    #[arg(long, value_name = "N", help_heading = "Safety")]
    pub max_delete: Option<usize>,

    /// Pick by hand: after the preview, a list of the planned deletes, all ticked, grouped by test run; the
    /// unticked ones are kept. Needs a terminal
    #[arg(short = 'i', long, help_heading = "Safety")]
    pub interactive: bool,

    /// Also write the plan (the JSON report of this dry run) to FILE, to apply later with --from-plan
    #[arg(long, value_name = "FILE", help_heading = "Plan files")]
    pub save_plan: Option<PathBuf>,

    /// Delete exactly the objects a saved plan (--save-plan, or --dry-run -o json) plans to delete, by uid, each
    /// checked again first; nothing else
    #[arg(long, value_name = "FILE", help_heading = "Plan files")]
    pub from_plan: Option<PathBuf>,

    /// Refuse a --from-plan plan older than DUR [default: 1h]
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Plan files")]
    pub plan_max_age: Option<Duration>,

    /// Deletion propagation for jobs
    #[arg(long, value_enum, default_value_t = Cascade::Background, value_name = "MODE", help_heading = "Deletion")]
    pub cascade: Cascade,

    /// Grace period passed with each delete, at least 1 [default: the server's]
    #[arg(long, value_name = "SECONDS", help_heading = "Deletion")]
    pub grace_period: Option<u32>,

    /// Deletes in flight at once: auto (follows the server's pace, up to 256) or N (1-256)
    #[arg(long, value_name = "auto|N", default_value = "auto",
          value_parser = Concurrency::parse, help_heading = "Deletion")]
    pub concurrency: Concurrency,

    /// Wait until the deleted objects are gone
    #[arg(long, help_heading = "Deletion")]
    pub wait: bool,

    /// How long --wait waits [default: 5m]
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse, help_heading = "Deletion")]
    pub timeout: Option<Duration>,

    /// Before deleting an object, write its manifest, its Events and (pods) its containers' logs under
    /// DIR/<namespace>/<kind>/<name>/; an object whose archive cannot be written is kept
    #[arg(long, value_name = "DIR", help_heading = "Archive and hooks")]
    pub archive: Option<PathBuf>,

    /// Archive only these objects (the others are deleted without an archive): `failed` pods and jobs
    #[arg(
        long,
        value_enum,
        value_name = "WHICH",
        help_heading = "Archive and hooks"
    )]
    pub archive_only: Option<ArchiveOnly>,

    /// The most log bytes archived per container, current and previous each: 1048576, 512Ki, 4Mi
    /// [default: 1Mi]
    #[arg(long, value_name = "BYTES", help_heading = "Archive and hooks")]
    pub archive_log_bytes: Option<String>,

    /// Run the policy file's beforeDelete hooks in a dry run too (their verdicts show in the preview)
    #[arg(long, help_heading = "Archive and hooks")]
    pub run_hooks_in_dry_run: bool,

    /// Output format
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, value_name = "FORMAT", help_heading = "Output")]
    pub output: Output,

    /// Log verbosity on stderr (as kubectl's -v)
    #[arg(
        short = 'v',
        long = "v",
        value_name = "LEVEL",
        default_value_t = 0,
        help_heading = "Output"
    )]
    pub verbosity: u8,

    /// Path to the kubeconfig file [default: $KUBECONFIG, then ~/.kube/config]
    #[arg(long, value_name = "PATH", help_heading = "Connection")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use
    #[arg(long, value_name = "NAME", help_heading = "Connection")]
    pub context: Option<String>,

    /// Timeout of each request to the API server, as kubectl's: 30s, 1m, or a number of seconds; 0 = none
    /// [default: 30s]
    #[arg(long, value_name = "DUR", value_parser = duration::clap_parse_seconds, help_heading = "Connection")]
    pub request_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AgeFrom {
    Created,
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Level {
    /// No object is selected or deleted: only the quota section is reported
    None,
    /// Pods (of finished jobs, and bare ones)
    Pods,
    /// Jobs, with the pods the cascade takes
    Jobs,
    /// Jobs (with their pods) and bare pods
    All,
}

/// How objects are selected. `name` is the one spelling of each: clap's
/// `--strategy` values, the policy file, completion, the help text and the
/// report's `strategy` field all read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Label,
    Age,
    Pressure,
    Watermark,
    Hybrid,
    Fallback,
    /// Each rule of the policy file with its own strategy (not a flag value).
    Policy,
}

impl Strategy {
    /// What `--strategy` and a policy rule's `strategy:` accept.
    pub const SELECTABLE: [Strategy; 6] = [
        Strategy::Label,
        Strategy::Age,
        Strategy::Pressure,
        Strategy::Watermark,
        Strategy::Hybrid,
        Strategy::Fallback,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Label => "label",
            Strategy::Age => "age",
            Strategy::Pressure => "pressure",
            Strategy::Watermark => "watermark",
            Strategy::Hybrid => "hybrid",
            Strategy::Fallback => "fallback",
            Strategy::Policy => "policy",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Strategy::Label => "Objects labelled with the given test or evaluation ids",
            Strategy::Age => "Objects older than --older-than",
            Strategy::Pressure => {
                "Oldest finished objects while a quota resource is at or above --threshold"
            }
            Strategy::Watermark => {
                "Oldest finished objects from --high-watermark down to --low-watermark"
            }
            Strategy::Hybrid => "Label, age and watermark rules together",
            Strategy::Fallback => {
                "Objects with a test-id by the run's ids, objects without one by --older-than"
            }
            Strategy::Policy => "Each rule of the policy file with its own strategy",
        }
    }
}

impl ValueEnum for Strategy {
    fn value_variants<'a>() -> &'a [Self] {
        &Strategy::SELECTABLE
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()).help(self.help()))
    }
}

impl serde::Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The order in which pressure and watermark pick finished objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefer {
    /// Oldest first
    Oldest,
    /// Failed ones first (oldest first among them), then the rest
    Failed,
    /// Succeeded ones first (oldest first among them), then the rest
    Succeeded,
}

/// `--dry-run=client|server`; the report's `dryRunMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    Client,
    Server,
}

/// `--watch[=MODE]`: how the cleanup keeps going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WatchMode {
    /// Watch pods, jobs and quotas; re-plan after each change and when an object becomes eligible
    Event,
    /// List and clean everything again every --interval
    Poll,
}

/// `--archive-only`: which of the objects to delete are archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchiveOnly {
    /// Failed pods and failed jobs
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cascade {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Wide,
    Json,
    Yaml,
    Name,
}

/// `--concurrency auto|N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// As many as the server answers fastest with, never above 256.
    Auto,
    Fixed(u16),
}

impl Concurrency {
    /// What runs beside the deletes (archive reads, hooks, Events): N, or
    /// under auto the former default of 16.
    pub fn bound(self) -> usize {
        match self {
            Concurrency::Auto => 16,
            Concurrency::Fixed(n) => n.into(),
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(Concurrency::Auto);
        }
        match s.parse::<u16>() {
            Ok(n @ 1..=256) => Ok(Concurrency::Fixed(n)),
            _ => Err("expected auto or a number from 1 to 256".into()),
        }
    }
}

#[cfg(test)]
mod tests;
