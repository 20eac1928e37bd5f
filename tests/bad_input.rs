//! A battery of bad input against a namespace full of objects that the input
//! would select if it were accepted. Every case also gets `--yes`, so a slip
//! would really delete: each must exit 2 (4 for an unusable kubeconfig or
//! context) at once, with one `error:` line on stderr (and clap's tip, when it
//! has one, on a line of its own) and nothing on stdout,
//! and the plugin must send no mutating request at all.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{audit::*, cluster::*, commands::*, objects::*};

/// No case may take longer than this.
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// One bad command line and what it must do.
#[derive(Clone, Debug)]
struct Case {
    name: String,
    /// Placeholders: `{tid}` the fixture's test id, `{policy}` the case's
    /// policy file, `{kubeconfig}` the case's kubeconfig file, `{missing}` a
    /// path that does not exist.
    args: Vec<String>,
    policy: Option<String>,
    kubeconfig: Option<String>,
    env: Vec<(String, String)>,
    code: i32,
    /// Substrings stderr must contain (placeholders substituted).
    says: Vec<String>,
    /// A policy-file error: stderr must name the file and a line number.
    names_a_line: bool,
}

fn case(name: &str, args: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        policy: None,
        kubeconfig: None,
        env: vec![],
        code: 2,
        says: vec![],
        names_a_line: false,
    }
}

impl Case {
    fn says(mut self, text: &str) -> Self {
        self.says.push(text.to_string());
        self
    }
    fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }
    /// A policy file with `text`, passed as `--policy {policy}`; the error must
    /// name the file, a line and `key`.
    fn policy_file(name: &str, text: &str, key: &str) -> Self {
        let mut c = case(name, &["--policy", "{policy}"]);
        c.policy = Some(text.to_string());
        c.says = vec!["{policy}".into(), key.to_string()];
        c.names_a_line = true;
        c
    }
    fn kubeconfig_file(name: &str, text: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--kubeconfig", "{kubeconfig}", "--test-id", "{tid}"];
        args.extend_from_slice(extra);
        let mut c = case(name, &args).code(4);
        c.kubeconfig = Some(text.to_string());
        c
    }
    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    /// Whether the case picks its own scope (else `-n NS` is added).
    fn has_scope(&self) -> bool {
        self.args.iter().any(|a| {
            a == "-n"
                || a == "-A"
                || a == "--all-namespaces"
                || a.starts_with("--namespace")
                || a.starts_with("-n=")
        })
    }
    /// The namespace the case names, if any (its requests are checked too).
    fn named_namespace(&self) -> Option<String> {
        let i = self.args.iter().position(|a| a == "-n")?;
        self.args.get(i + 1).cloned()
    }
}

/// A minimal, valid policy rule list head, for files with one thing wrong.
const RULE: &str = "rules:\n  - name: everything\n    selector: app=evaluation\n";

fn cases(real_kubeconfig: &Path) -> Vec<Case> {
    let long_id = "a".repeat(64);
    let long_ns = "n".repeat(64);
    let long_value = format!("app={}", "v".repeat(64));
    let v = vec![
        // --- selectors: never empty, always kubectl syntax ---------------------------------
        case("empty selector", &["-l", "", "--all"]).says("selector"),
        case("blank selector", &["-l", "   ", "--all"]).says("selector"),
        case("comma selector", &["-l", ",", "--all"]),
        case("unbalanced parenthesis", &["-l", "app in (x", "--all"]),
        case("bare negation", &["-l", "!", "--all"]),
        case("key with a space", &["-l", "bad key=x", "--all"]),
        case("key with a bang", &["-l", "bad!key=x", "--all"]),
        case("key starting with a dash", &["--selector=-app=evaluation", "--all"]),
        case("key with a bad prefix", &["-l", "Bad_Prefix/app=evaluation", "--all"]),
        case("value with a space", &["-l", "app=eval uation", "--all"]),
        case("value ending in a dash", &["-l", "app=evaluation-", "--all"]),
        case("value of 64 characters", &["-l", long_value.as_str(), "--all"]),
        case("trailing comma", &["-l", "app=evaluation,", "--all"]),
        // (`app in ()` is legal: kubectl reads it as `app in ("")`.)
        case("set without commas", &["-l", "app in (a b)", "--all"]),
        case("set without parentheses", &["-l", "app notin x", "--all"]),
        case("two equals signs", &["-l", "app=a=b", "--all"]),
        case("unknown operator", &["-l", "app ~ evaluation", "--all"]),
        // --- ids ------------------------------------------------------------------------------
        case("empty test id", &["--test-id", ""]),
        case("test id with a space", &["--test-id", "has space"]),
        case("test id of 64 characters", &["--test-id", long_id.as_str()]),
        case("test id with a slash", &["--test-id", "a/b"]),
        case("empty eval id", &["--eval-id", ""]),
        case("eval id with a space", &["--eval-id", "e 1", "--test-id", "{tid}"]),
        case("missing test id value", &["--test-id"]),
        // --- durations ------------------------------------------------------------------------
        case("older than 0", &["--older-than", "0"]).says("--older-than"),
        case("older than 0s", &["--older-than", "0s"]).says("--older-than"),
        case("older than 0ms", &["--older-than", "0ms"]).says("--older-than"),
        case("negative duration", &["--older-than=-5m"]),
        case("duration without unit", &["--older-than", "5"]),
        case("unknown unit", &["--older-than", "5x"]),
        case("fractional duration", &["--older-than", "1.5h"]),
        case("empty duration", &["--older-than", ""]),
        case("absurd duration", &["--older-than", "99999999999d"]).says("--older-than"),
        case(
            "age from finished without older-than",
            &["--test-id", "{tid}", "--age-from", "finished"],
        )
        .says("--age-from"),
        case("unknown age origin", &["--older-than", "1s", "--age-from", "started"]),
        case(
            "bad retention duration",
            &["--test-id", "{tid}", "--keep-failed-for", "1x"],
        ),
        // --- flags the strategy does not read ------------------------------------------------
        case("threshold with label", &["--test-id", "{tid}", "--threshold", "0.9"])
            .says("--threshold"),
        case(
            "high watermark with label",
            &["--test-id", "{tid}", "--high-watermark", "0.9"],
        )
        .says("--high-watermark"),
        case(
            "low watermark with label",
            &["--test-id", "{tid}", "--low-watermark", "0.3"],
        )
        .says("--low-watermark"),
        case("prefer with label", &["--test-id", "{tid}", "--prefer", "failed"])
            .says("--prefer"),
        case("capacity with label", &["--test-id", "{tid}", "--capacity", "10"])
            .says("--capacity"),
        case(
            "prefer with age",
            &["--older-than", "1s", "--strategy", "age", "--prefer", "oldest"],
        )
        .says("--prefer"),
        case(
            "threshold with watermark",
            &["--strategy", "watermark", "--capacity", "10", "--threshold", "0.9"],
        )
        .says("--threshold"),
        case(
            "high watermark with pressure",
            &["--strategy", "pressure", "--high-watermark", "0.9"],
        )
        .says("--high-watermark"),
        // --- quota values ---------------------------------------------------------------------
        case("threshold 0", &["--strategy", "pressure", "--threshold", "0"]),
        case("threshold 1.5", &["--strategy", "pressure", "--threshold", "1.5"]),
        case("threshold -1", &["--strategy", "pressure", "--threshold=-1"]),
        case("threshold nan", &["--strategy", "pressure", "--threshold", "nan"]),
        case("threshold abc", &["--strategy", "pressure", "--threshold", "abc"]),
        case(
            "low equal to high",
            &[
                "--strategy",
                "watermark",
                "--capacity",
                "10",
                "--high-watermark",
                "0.5",
                "--low-watermark",
                "0.5",
            ],
        ),
        case(
            "low above the default high",
            &["--strategy", "watermark", "--capacity", "10", "--low-watermark", "0.9"],
        ),
        case("capacity 0", &["--strategy", "watermark", "--capacity", "0"]),
        case("watermark without quota or capacity", &["--strategy", "watermark"])
            .says("--capacity"),
        // --- strategies and enums ---------------------------------------------------------------
        case("unknown strategy", &["--strategy", "bogus"]),
        case("age without older-than", &["--strategy", "age", "--test-id", "{tid}"])
            .says("--older-than"),
        case("label without ids", &["--strategy", "label"]),
        // Test runs: the environment is read only when asked, and never as "no filter".
        case("test id from an unset variable", &["--test-id-from-env"]).says("TEST_LABEL_ID"),
        case("test id from an empty variable", &["--test-id-from-env"])
            .env("TEST_LABEL_ID", "")
            .says("TEST_LABEL_ID"),
        case("test id from a blank variable", &["--test-id-from-env"])
            .env("TEST_LABEL_ID", "  ")
            .says("TEST_LABEL_ID"),
        case("test id from a variable with a space", &["--test-id-from-env"])
            .env("TEST_LABEL_ID", "a b"),
        case("empty run id", &["--run-id", ""]),
        case("run id with a slash", &["--run-id", "a/b"]),
        case("empty guard run", &["--guard", ""]).says("--guard"),
        case("guard run with capitals", &["--guard", "Run1"]).says("--guard"),
        case("guard with a test id", &["--guard", "r1", "--test-id", "{tid}"]).says("--test-id"),
        case("guard with a level", &["--guard", "r1", "--level", "pods"]).says("--level"),
        case("guard with an age", &["--guard", "r1", "--older-than", "1h"]).says("--older-than"),
        case("guard with a dry run", &["--guard", "r1", "--dry-run"]).says("--dry-run"),
        case("guard with watch", &["--guard", "r1", "--watch"]).says("--watch"),
        case("guard in every namespace", &["--guard", "r1", "-A"]).says("-A"),
        case("guard lease of 1s", &["--guard", "r1", "--lease-duration", "1s"])
            .says("--lease-duration"),
        case("lease duration without guard", &["--test-id", "{tid}", "--lease-duration", "30s"])
            .says("--lease-duration"),
        case("guard and stale runs", &["--guard", "r1", "--stale-runs"]).says("--stale-runs"),
        case("stale runs with a strategy", &["--stale-runs", "--strategy", "age"])
            .says("--strategy"),
        case("stale runs with a level", &["--stale-runs", "--level", "pods"]).says("--level"),
        case("stale runs with retention", &["--stale-runs", "--keep-last", "2"])
            .says("retention"),
        case("stale runs with a policy", &["--stale-runs", "--policy", "policy.yaml"])
            .says("--policy"),
        case("unknown level", &["--test-id", "{tid}", "--level", "bogus"]),
        case("unknown cascade", &["--test-id", "{tid}", "--cascade", "bogus"]),
        case("grace period 0", &["--test-id", "{tid}", "--grace-period", "0"]),
        case("grace period -1", &["--test-id", "{tid}", "--grace-period=-1"]),
        case("concurrency 0", &["--test-id", "{tid}", "--concurrency", "0"]),
        case("concurrency 100000", &["--test-id", "{tid}", "--concurrency", "100000"]),
        case("concurrency 257", &["--test-id", "{tid}", "--concurrency", "257"]),
        case("concurrency word", &["--test-id", "{tid}", "--concurrency", "fast"]),
        case("concurrency Auto", &["--test-id", "{tid}", "--concurrency", "Auto"]),
        case("max delete -1", &["--test-id", "{tid}", "--max-delete=-1"]),
        case("max delete abc", &["--test-id", "{tid}", "--max-delete", "abc"]),
        case("keep last many", &["--test-id", "{tid}", "--keep-last", "many"]),
        case("unknown output", &["--test-id", "{tid}", "-o", "bogus"]),
        case("two outputs", &["--test-id", "{tid}", "-o", "json", "-o", "yaml"]),
        case("unknown dry-run mode", &["--test-id", "{tid}", "--dry-run=bogus"]),
        case("verbosity abc", &["--test-id", "{tid}", "-v", "abc"]),
        // --- namespaces -------------------------------------------------------------------------
        case("kube-system", &["-n", "kube-system", "--test-id", "{tid}"]),
        case("kube-public", &["-n", "kube-public", "--all"]),
        case("kube-node-lease", &["-n", "kube-node-lease", "--all"]),
        case("empty namespace", &["-n", "", "--test-id", "{tid}"]),
        case("upper-case namespace", &["-n", "Bad_NS", "--test-id", "{tid}"]),
        case("namespace of 64 characters", &["-n", long_ns.as_str(), "--test-id", "{tid}"]),
        case("namespace starting with a dash", &["--namespace=-ns", "--test-id", "{tid}"]),
        case("namespace and all namespaces", &["-n", "x", "-A", "--test-id", "{tid}"]),
        // --- watch, wait, timeouts --------------------------------------------------------------
        case("interval without watch", &["--test-id", "{tid}", "--interval", "5m"])
            .says("--watch"),
        case("watch with interval 0", &["--test-id", "{tid}", "--watch", "--interval", "0"]),
        case("watch with a bad interval", &["--test-id", "{tid}", "--watch", "--interval", "5x"]),
        case("watch in an unknown mode", &["--test-id", "{tid}", "--watch=sometimes"]),
        case("watch mode as a separate word", &["--test-id", "{tid}", "--watch", "poll"]),
        case("stale runs with an event-driven watch", &["--stale-runs", "--watch"])
            .says("--watch=poll"),
        case("wait with timeout 0", &["--test-id", "{tid}", "--wait", "--timeout", "0"]),
        // --- in the cluster: events and metrics -------------------------------------------------
        case("metrics address without watch", &["--test-id", "{tid}", "--metrics-addr", ":9090"])
            .says("--watch"),
        case("metrics address without a port", &["--test-id", "{tid}", "--watch", "--metrics-addr", "127.0.0.1"])
            .says("--metrics-addr"),
        case("metrics address on port 0", &["--test-id", "{tid}", "--watch", "--metrics-addr", "127.0.0.1:0"])
            .says("port 0"),
        case("metrics address on port 70000", &["--test-id", "{tid}", "--watch", "--metrics-addr", ":70000"])
            .says("--metrics-addr"),
        case("metrics address with a host name", &["--test-id", "{tid}", "--watch", "--metrics-addr", "example.org:9090"])
            .says("IP address"),
        case("events in a dry run", &["--test-id", "{tid}", "--events", "--dry-run"])
            .says("dry run"),
        case("events in a server dry run", &["--test-id", "{tid}", "--events", "--dry-run=server"])
            .says("dry run"),
        case("no events without watch", &["--test-id", "{tid}", "--no-events"])
            .says("--watch"),
        case("no events in a watched dry run", &["--test-id", "{tid}", "--watch", "--dry-run", "--no-events"])
            .says("dry run"),
        case("timeout without wait", &["--test-id", "{tid}", "--timeout", "1m"])
            .says("--wait"),
        case("request timeout abc", &["--test-id", "{tid}", "--request-timeout", "abc"]),
        case("negative request timeout", &["--test-id", "{tid}", "--request-timeout=-1s"]),
        // --- plan files and picking by hand -------------------------------------------------------
        case("from-plan with a test id", &["--from-plan", "{missing}", "--test-id", "{tid}"])
            .says("--test-id")
            .says("--from-plan"),
        case("from-plan with all", &["--from-plan", "{missing}", "--all"]).says("--all"),
        case("from-plan with a selector", &["--from-plan", "{missing}", "-l", "app=evaluation"])
            .says("-l/--selector"),
        case("from-plan with a level", &["--from-plan", "{missing}", "--level", "all"])
            .says("--level"),
        case("from-plan with a strategy", &["--from-plan", "{missing}", "--strategy", "age"])
            .says("--strategy"),
        case("from-plan with watch", &["--from-plan", "{missing}", "--watch"]).says("--watch"),
        case("from-plan of a missing file", &["--from-plan", "{missing}"]).says("{missing}"),
        case("plan max age without from-plan", &["--test-id", "{tid}", "--plan-max-age", "1h"])
            .says("--from-plan"),
        case("plan max age 0", &["--from-plan", "{missing}", "--plan-max-age", "0"])
            .says("--plan-max-age"),
        case("plan max age 5x", &["--from-plan", "{missing}", "--plan-max-age", "5x"]),
        case("save-plan without dry-run", &["--test-id", "{tid}", "--save-plan", "{missing}"])
            .says("--dry-run"),
        case("interactive with yes", &["--test-id", "{tid}", "-i"]).says("--yes"),
        case("interactive with dry-run", &["--test-id", "{tid}", "--interactive", "--dry-run"])
            .says("--interactive"),
        // --- archive and hooks ---------------------------------------------------------------------
        case("archive-only without archive", &["--test-id", "{tid}", "--archive-only", "failed"])
            .says("--archive"),
        case("archive-log-bytes without archive", &["--test-id", "{tid}", "--archive-log-bytes", "1Ki"])
            .says("--archive"),
        case("archive-only everything", &["--test-id", "{tid}", "--archive", "{missing}", "--archive-only", "all"]),
        case("archive-log-bytes 0", &["--test-id", "{tid}", "--archive", "{missing}", "--archive-log-bytes", "0"])
            .says("--archive-log-bytes"),
        case("archive-log-bytes 2Gi", &["--test-id", "{tid}", "--archive", "{missing}", "--archive-log-bytes", "2Gi"])
            .says("--archive-log-bytes"),
        case("archive with an empty directory", &["--test-id", "{tid}", "--archive", ""]),
        case("hooks in dry run without a dry run", &["--test-id", "{tid}", "--run-hooks-in-dry-run"])
            .says("--dry-run"),
        case("hooks in dry run without hooks", &["--test-id", "{tid}", "--dry-run", "--run-hooks-in-dry-run"])
            .says("hooks"),
        Case::policy_file(
            "policy: unknown hook kind",
            &format!("{RULE}    all: true\nhooks:\n  deployment:\n    beforeDelete: [./hook.sh]\n"),
            "deployment",
        )
        .says("line 6"),
        Case::policy_file(
            "policy: unknown hook key",
            &format!("{RULE}    all: true\nhooks:\n  pod:\n    afterDelete: [true]\n"),
            "afterDelete",
        )
        .says("line 7"),
        Case::policy_file(
            "policy: empty beforeDelete",
            &format!("{RULE}    all: true\nhooks:\n  pod:\n    beforeDelete: []\n"),
            "beforeDelete",
        )
        .says("line 7"),
        Case::policy_file(
            "policy: hook timeout 0",
            &format!("{RULE}    all: true\nhooks:\n  job:\n    beforeDelete: [./hook.sh]\n    timeoutSeconds: 0\n"),
            "timeoutSeconds",
        )
        .says("line 8"),
        Case::policy_file(
            "policy: hook timeout 1.5",
            &format!("{RULE}    all: true\nhooks:\n  job:\n    beforeDelete: [./hook.sh]\n    timeoutSeconds: 1.5\n"),
            "timeoutSeconds",
        ),
        // --- the command line as a whole ---------------------------------------------------------
        case("no selection", &[]).says("--test-id"),
        case("unknown flag", &["--test-id", "{tid}", "--frobnicate"]),
        // clap's tip stays on a line of its own under the one error line.
        case("misspelt flag", &["--tset-id", "{tid}"])
            .says("error: unexpected argument '--tset-id' found (see --help)\n  tip: a similar argument exists: '--test-id'\n"),
        case("stray argument", &["--test-id", "{tid}", "everything"]),
        // --- policy files ----------------------------------------------------------------------------
        Case::policy_file(
            "policy: not YAML",
            "rules:\n  - name: a\n    selector: app=evaluation\n    olderThan: 1s\n  - [unclosed\n",
            "policy file",
        ),
        Case::policy_file(
            "policy: unknown key",
            &format!("{RULE}    olderThan: 1s\n    keepLastt: 2\n"),
            "keepLastt",
        )
        .says("line 5"),
        Case::policy_file(
            "policy: unknown top-level key",
            &format!("rule: x\n{RULE}    olderThan: 1s\n"),
            "rule",
        )
        .says("line 1"),
        Case::policy_file(
            "policy: rule without selector",
            "rules:\n  - name: a\n    olderThan: 1s\n",
            "selector",
        ),
        Case::policy_file(
            "policy: rule without name",
            "rules:\n  - selector: app=evaluation\n    olderThan: 1s\n",
            "name",
        ),
        Case::policy_file(
            "policy: empty selector",
            "rules:\n  - name: a\n    selector: \"\"\n    olderThan: 1s\n",
            "selector",
        ),
        Case::policy_file(
            "policy: blank selector",
            "rules:\n  - name: a\n    selector: \"  \"\n    olderThan: 1s\n",
            "selector",
        ),
        Case::policy_file(
            "policy: invalid selector",
            "rules:\n  - name: a\n    selector: 'app in (x'\n    olderThan: 1s\n",
            "selector",
        )
        .says("line 3"),
        Case::policy_file("policy: selector and no criterion", RULE, "rules[0]"),
        Case::policy_file(
            "policy: olderThan 0s",
            &format!("{RULE}    olderThan: 0s\n"),
            "olderThan",
        )
        .says("line 4"),
        Case::policy_file(
            "policy: olderThan 5x",
            &format!("{RULE}    olderThan: 5x\n"),
            "olderThan",
        )
        .says("line 4"),
        Case::policy_file(
            "policy: bad priorityLabel",
            &format!("priorityLabel: \"bad key!\"\n{RULE}    olderThan: 1s\n"),
            "priorityLabel",
        )
        .says("line 1"),
        Case::policy_file(
            "policy: priority 0",
            &format!("priorities:\n  high: 0\n{RULE}    olderThan: 1s\n"),
            "priorities.high",
        )
        .says("line 2"),
        Case::policy_file(
            "policy: keepLast many",
            &format!("{RULE}    olderThan: 1s\n    keepLast: many\n"),
            "keepLast",
        )
        .says("line 5"),
        Case::policy_file(
            "policy: keepLast -1",
            &format!("{RULE}    olderThan: 1s\n    keepLast: -1\n"),
            "keepLast",
        )
        .says("line 5"),
        Case::policy_file(
            "policy: duplicate rule names",
            &format!("{RULE}    olderThan: 1s\n  - name: everything\n    selector: test-id\n    olderThan: 1s\n"),
            "rules[1]",
        )
        .says("line 5"),
        Case::policy_file(
            "policy: low watermark not below high",
            &format!("{RULE}    strategy: watermark\n    highWatermark: 0.5\n    lowWatermark: 0.5\n"),
            "lowWatermark",
        ),
        Case::policy_file(
            "policy: threshold 2",
            &format!("{RULE}    strategy: pressure\n    threshold: 2\n"),
            "threshold",
        )
        .says("line 5"),
        Case::policy_file(
            "policy: unknown strategy",
            &format!("{RULE}    strategy: fastest\n"),
            "strategy",
        )
        .says("line 4"),
        Case::policy_file(
            "policy: age without olderThan",
            &format!("{RULE}    strategy: age\n"),
            "olderThan",
        ),
        Case::policy_file(
            "policy: unknown prefer",
            &format!("{RULE}    strategy: watermark\n    prefer: newest\n"),
            "prefer",
        )
        .says("line 5"),
        Case::policy_file("policy: no rules", "rules: []\n", "rules").says("line 1"),
        Case::policy_file(
            "policy: wrong apiVersion",
            &format!("apiVersion: crucible-clean/v9\n{RULE}    olderThan: 1s\n"),
            "apiVersion",
        )
        .says("line 1"),
        case("policy: missing file", &["--policy", "{missing}"]).says("{missing}"),
        // --- kubeconfig and context: unusable is exit 4 -------------------------------------------
        case("kubeconfig: missing file", &["--kubeconfig", "{missing}", "--test-id", "{tid}"])
            .code(4)
            .says("{missing}"),
        Case::kubeconfig_file("kubeconfig: not YAML", "clusters: [\n  - {name: x\n", &[]),
        Case::kubeconfig_file(
            "kubeconfig: wrong shape",
            "apiVersion: v1\nkind: Config\nclusters: 5\n",
            &[],
        ),
        case("kubeconfig: unknown context", &["--context", "nope", "--test-id", "{tid}"])
            .code(4)
            .says("context \"nope\" not found in the kubeconfig; it has admin, ci-runner, viewer"),
        Case::kubeconfig_file(
            "kubeconfig: context without its cluster",
            &without(real_kubeconfig, Missing::Cluster),
            &[],
        )
        .says("ghost-cluster"),
        Case::kubeconfig_file(
            "kubeconfig: context without its user",
            &without(real_kubeconfig, Missing::User),
            &[],
        )
        .says("ghost-user"),
        {
            let mut c = case("kubeconfig: KUBECONFIG not YAML", &["--test-id", "{tid}"])
                .code(4)
                .env("KUBECONFIG", "{kubeconfig}");
            c.kubeconfig = Some(": : :\n\t- [\n".into());
            c
        },
    ];
    // Case names are unique, so that the failure list is unambiguous.
    let mut seen = std::collections::BTreeSet::new();
    for c in &v {
        assert!(
            seen.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
    }
    v
}

enum Missing {
    Cluster,
    User,
}

/// The cluster's kubeconfig (as JSON, which is YAML) with one context whose
/// cluster or user is not defined, made current.
fn without(real: &Path, missing: Missing) -> String {
    let mut kc: serde_json::Value = {
        let text = std::fs::read_to_string(real).expect("read the cluster's kubeconfig");
        let kc = kube::config::Kubeconfig::from_yaml(&text).expect("parse the kubeconfig");
        serde_json::to_value(kc).expect("kubeconfig as JSON")
    };
    let contexts = kc["contexts"].as_array().expect("contexts").clone();
    let admin = contexts
        .iter()
        .find(|c| c["name"] == ADMIN_CONTEXT)
        .expect("the admin context")
        .clone();
    let mut broken = admin.clone();
    broken["name"] = "broken".into();
    match missing {
        Missing::Cluster => broken["context"]["cluster"] = "ghost-cluster".into(),
        Missing::User => broken["context"]["user"] = "ghost-user".into(),
    }
    kc["contexts"] = serde_json::Value::Array(vec![broken]);
    kc["current-context"] = "broken".into();
    serde_json::to_string_pretty(&kc).expect("JSON")
}

/// name → uid of every pod and job in the namespace, and which are terminating.
async fn objects(ns: &TestNamespace) -> BTreeMap<String, (String, bool)> {
    use kube::api::ListParams;
    let mut out = BTreeMap::new();
    for p in ns.pods().list(&ListParams::default()).await.unwrap() {
        out.insert(
            format!("pod/{}", p.metadata.name.unwrap()),
            (
                p.metadata.uid.unwrap(),
                p.metadata.deletion_timestamp.is_some(),
            ),
        );
    }
    for j in ns.jobs().list(&ListParams::default()).await.unwrap() {
        out.insert(
            format!("job/{}", j.metadata.name.unwrap()),
            (
                j.metadata.uid.unwrap(),
                j.metadata.deletion_timestamp.is_some(),
            ),
        );
    }
    out
}

/// What changed between two snapshots: objects gone, replaced or terminating.
fn lost(
    before: &BTreeMap<String, (String, bool)>,
    after: &BTreeMap<String, (String, bool)>,
) -> Vec<String> {
    before
        .iter()
        .filter(|(k, (uid, _))| match after.get(*k) {
            None => true,
            Some((u, terminating)) => u != uid || *terminating,
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// The fixture: finished evaluation pods and jobs that most cases would select.
struct Fixture {
    pods: Vec<BarePod>,
    jobs: Vec<EvalJob>,
}

fn fixture(tid: &str) -> Fixture {
    let old = Duration::from_secs(3 * 86_400);
    let mut pods = vec![];
    for i in 0..6 {
        pods.push(
            BarePod::succeeded(&format!("run-ok-{i}"))
                .evaluation(&format!("e{i}"))
                .test_id(tid),
        );
    }
    for i in 0..3 {
        pods.push(
            BarePod::failed(&format!("run-failed-{i}"))
                .evaluation(&format!("e1{i}"))
                .test_id(tid),
        );
    }
    for i in 0..4 {
        pods.push(
            BarePod::succeeded(&format!("old-{i}"))
                .evaluation(&format!("o{i}"))
                .finished_ago(old),
        );
    }
    for i in 0..3 {
        pods.push(BarePod::failed(&format!("unlabelled-{i}")).finished_ago(old));
    }
    pods.push(
        BarePod::succeeded("other-team")
            .label("team", "x")
            .label("test-id", tid)
            .finished_ago(old),
    );
    let jobs = vec![
        EvalJob::succeeding("j1").test_id(tid),
        EvalJob::succeeding("j2"),
        EvalJob::failing("j3").test_id(tid),
    ];
    Fixture { pods, jobs }
}

/// Creates whatever of the fixture is missing and waits until the jobs finished.
async fn fill(ns: &TestNamespace, fx: &Fixture) {
    let have = objects(ns).await;
    let pods: Vec<BarePod> = fx
        .pods
        .iter()
        .filter(|p| !have.contains_key(&format!("pod/{}", p.name)))
        .cloned()
        .collect();
    ns.create_pods(pods).await;
    let jobs: Vec<&EvalJob> = fx
        .jobs
        .iter()
        .filter(|j| !have.contains_key(&format!("job/{}", j.name())))
        .collect();
    for j in &jobs {
        ns.create_job(j).await;
    }
    for j in &jobs {
        if j.outcome == Outcome::Fail {
            ns.wait_job_failed(&j.name()).await;
        } else {
            ns.wait_job_complete(&j.name()).await;
        }
    }
}

fn substitute(s: &str, vars: &[(&str, String)]) -> String {
    let mut s = s.to_string();
    for (k, v) in vars {
        s = s.replace(k, v);
    }
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_never_deletes_and_exits_at_once_with_one_line() {
    let ns = TestNamespace::for_current_test().await;
    let tid = format!("t1-{}", &ns.name()[ns.name().len() - 6..]);
    let fx = fixture(&tid);
    fill(&ns, &fx).await;
    let baseline = objects(&ns).await;
    let cases = cases(&kubeconfig_path());
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let files = tempfile::tempdir().unwrap();
    let t_all = Instant::now();

    let mut failures: Vec<(String, Vec<String>)> = vec![];
    let mut before = baseline.clone();
    for (i, c) in cases.iter().enumerate() {
        let dir = files.path().join(format!("case-{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let policy = dir.join("policy.yaml");
        let kubeconfig = dir.join("kubeconfig");
        let missing = dir.join("absent").join("file.yaml");
        if let Some(text) = &c.policy {
            std::fs::write(&policy, text).unwrap();
        }
        if let Some(text) = &c.kubeconfig {
            std::fs::write(&kubeconfig, text).unwrap();
        }
        let vars = [
            ("{tid}", tid.clone()),
            ("{policy}", policy.display().to_string()),
            ("{kubeconfig}", kubeconfig.display().to_string()),
            ("{missing}", missing.display().to_string()),
        ];
        let mut args: Vec<String> = vec![];
        if !c.has_scope() {
            args.extend(["-n".to_string(), ns.name().to_string()]);
        }
        args.extend(c.args.iter().map(|a| substitute(a, &vars)));
        args.push("--yes".into());

        let offset = audit_offset();
        let mut cmd = ns.plugin();
        for (k, v) in &c.env {
            cmd.env(k, substitute(v, &vars));
        }
        let t0 = Instant::now();
        let out = cmd
            .args(&args)
            .timeout(CASE_LIMIT + Duration::from_secs(5))
            .output();
        let took = t0.elapsed();
        let stdout = stdout(&out);
        let stderr = stderr(&out);

        let mut problems = vec![];
        if out.status.code() != Some(c.code) {
            problems.push(format!("exit {:?}, expected {}", out.status.code(), c.code));
        }
        if took > CASE_LIMIT {
            problems.push(format!("took {took:.1?}"));
        }
        // One `error:` line; clap's tip, when it has one, on its own line.
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("  tip: "))
            .collect();
        if lines.len() != 1 || !lines[0].starts_with("error:") {
            problems.push(format!(
                "stderr must be one `error:` line, got {} lines",
                lines.len()
            ));
        }
        if !stdout.is_empty() {
            problems.push(format!("stdout not empty ({} bytes)", stdout.len()));
        }
        for s in &c.says {
            let s = substitute(s, &vars);
            if !stderr.contains(&s) {
                problems.push(format!("stderr does not name {s:?}"));
            }
        }
        if c.names_a_line {
            let has_line = stderr
                .match_indices("line ")
                .any(|(at, _)| stderr[at + 5..].starts_with(|ch: char| ch.is_ascii_digit()));
            if !has_line {
                problems.push("stderr names no line number".into());
            }
        }
        let mut watched = vec![ns.name().to_string()];
        watched.extend(c.named_namespace());
        let writes = mutating_requests_since(offset, &watched, &AuditFilter::plugin()).await;
        if !writes.is_empty() {
            problems.push(format!(
                "{} mutating requests: {}",
                writes.len(),
                writes
                    .iter()
                    .map(|e| format!("{} {}", e.verb, e.request_uri))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let after = objects(&ns).await;
        let gone = lost(&before, &after);
        if !gone.is_empty() {
            problems.push(format!("deleted {}: {}", gone.len(), gone.join(" ")));
            // Put the fixture back so that the following cases still have
            // something to (not) delete.
            fill(&ns, &fx).await;
        }
        before = objects(&ns).await;

        let shown = args
            .iter()
            .map(|a| {
                if a.is_empty() || a.contains(' ') {
                    format!("{a:?}")
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!(
            "[{}] {:<45} exit {:?} in {:>6.0?}: {}\n      {}",
            if problems.is_empty() { "ok" } else { "FAIL" },
            c.name,
            out.status.code(),
            took,
            shown,
            stderr.trim_end().replace('\n', "\n      ")
        );
        if !problems.is_empty() {
            problems.push(format!("stderr: {:?}", stderr.trim_end()));
            failures.push((format!("{} ({shown})", c.name), problems));
        }
    }
    eprintln!(
        "{} cases in {:.1?}, {} failed",
        cases.len(),
        t_all.elapsed(),
        failures.len()
    );

    // Nothing of the original fixture went, and the plugin wrote nothing here.
    let end = objects(&ns).await;
    let gone = lost(&baseline, &end);
    let writes = ns.mutating_requests(&AuditFilter::plugin()).await;
    let mut report = String::new();
    for (name, problems) in &failures {
        report.push_str(&format!("\n- {name}"));
        for p in problems {
            report.push_str(&format!("\n    {p}"));
        }
    }
    assert!(
        failures.is_empty() && gone.is_empty() && writes.is_empty(),
        "{} of {} bad-input cases failed:{report}\n\nobjects gone over the whole battery: {gone:?}\n\
         mutating requests by the plugin in {}: {}",
        failures.len(),
        cases.len(),
        ns.name(),
        writes.len()
    );
}
