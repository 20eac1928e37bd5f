//! Completion and generated files:
//! * the checked-in completion scripts and man page match the clap definition;
//! * kubectl's plugin completion (`kubectl __complete crucible-clean …`, the
//!   protocol kubectl's shell scripts use) through the real kubectl and a
//!   `kubectl_complete-crucible_clean` link, for flags, fixed values, kubeconfig
//!   contexts, and namespaces and label values from the local control plane;
//! * an unreachable or silent API server does not hang completion.

mod support;
use support::commands::{kubectl, link_beside, plugin_binary, repo_root, PluginCmd};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crucible_clean::completion::REGENERATE;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

// ------------------------------------------------------------------------------------------
// Generated files
// ------------------------------------------------------------------------------------------

#[test]
fn checked_in_completions_and_man_page_are_up_to_date() {
    let fresh = tempfile::tempdir().expect("temp dir");
    crucible_clean::completion::write_generated(fresh.path()).expect("generate into a temp dir");

    let generated = files_under(fresh.path());
    let expected_names = [
        "completions/_kubectl-crucible-clean",
        "completions/_kubectl-crucible-clean.ps1",
        "completions/kubectl-crucible-clean.bash",
        "completions/kubectl-crucible-clean.fish",
        "man/kubectl-crucible-clean.1",
    ];
    let rel: Vec<String> = generated
        .iter()
        .map(|p| {
            p.strip_prefix(fresh.path())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(rel, expected_names);

    let mut stale = Vec::new();
    for name in &rel {
        let new = std::fs::read(fresh.path().join(name)).expect("generated file");
        match std::fs::read(repo_root().join(name)) {
            Ok(old) if old == new => {}
            Ok(_) => stale.push(format!("{name} is stale")),
            Err(_) => stale.push(format!("{name} is missing")),
        }
    }
    // Files that generation no longer writes (a renamed script) are stale too.
    for dir in ["completions", "man"] {
        for path in files_under(&repo_root().join(dir)) {
            let name = path
                .strip_prefix(repo_root())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if !rel.contains(&name) {
                stale.push(format!("{name} is not generated any more; delete it"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nThe completion scripts and the man page are generated from src/cli.rs; regenerate them \
         from the repository root with:\n    {REGENERATE}",
        stale.join("\n")
    );
}

#[test]
fn the_installed_binary_writes_no_generated_files() {
    // Generation lives in tools/generate.rs; the plugin treats the word as a bad flag.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = PluginCmd::new()
        .args(["--generate", "."])
        .current_dir(dir.path())
        .output();
    assert_eq!(out.status.code(), Some(2));
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn the_scripts_complete_the_binary_by_its_installed_name() {
    let bash = std::fs::read_to_string(repo_root().join("completions/kubectl-crucible-clean.bash"))
        .unwrap();
    let registrations: Vec<&str> = bash
        .lines()
        .filter(|l| l.trim_start().starts_with("complete -F"))
        .collect();
    assert!(!registrations.is_empty());
    assert!(
        registrations
            .iter()
            .all(|l| l.ends_with(" kubectl-crucible-clean")),
        "{registrations:?}"
    );
    assert!(bash.contains("--test-id"));
    let zsh =
        std::fs::read_to_string(repo_root().join("completions/_kubectl-crucible-clean")).unwrap();
    assert!(zsh.starts_with("#compdef kubectl-crucible-clean"));
    let man = std::fs::read_to_string(repo_root().join("man/kubectl-crucible-clean.1")).unwrap();
    assert!(man.contains("\n.TH KUBECTL-CRUCIBLE-CLEAN 1 "), "{man}");
    assert!(
        man.contains("\n.SH NAME\nkubectl\\-crucible\\-clean \\- Clean up"),
        "{man}"
    );
    assert!(
        man.contains("\n.SH SYNOPSIS\n\\fBkubectl crucible\\-clean\\fR"),
        "the synopsis shows the kubectl form: {man}"
    );
}

// ------------------------------------------------------------------------------------------
// kubectl's plugin completion
// ------------------------------------------------------------------------------------------

/// A PATH directory with the plugin installed as kubectl finds it, a HOME, and
/// a kubeconfig.
struct Installed {
    bin: tempfile::TempDir,
    home: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Installed {
    fn new(kubeconfig: &Path) -> Self {
        let bin = tempfile::tempdir().expect("bin dir");
        let home = tempfile::tempdir().expect("home dir");
        let plugin = bin.path().join("kubectl-crucible_clean");
        std::fs::copy(plugin_binary(), &plugin).expect("install the plugin");
        link_beside(
            &bin.path().join("kubectl_complete-crucible_clean"),
            "kubectl-crucible_clean",
        );
        Installed {
            bin,
            home,
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    fn kubectl(&self) -> Command {
        let kubectl = kubectl();
        let kubectl_dir = kubectl.parent().expect("kubectl's dir").to_path_buf();
        let path =
            std::env::join_paths([self.bin.path().to_path_buf(), kubectl_dir]).expect("PATH");
        let mut cmd = Command::new(kubectl);
        cmd.env_clear()
            .env("PATH", path)
            .env("HOME", self.home.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(self.home.path());
        cmd
    }

    /// `kubectl __complete crucible-clean WORDS…`: the candidate lines and the directive.
    fn complete(&self, words: &[&str]) -> (Vec<String>, u32) {
        let out = self
            .kubectl()
            .args(["__complete", "crucible-clean"])
            .args(words)
            .output()
            .expect("run kubectl");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl __complete failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines: Vec<String> = stdout.lines().map(str::to_string).collect();
        let last = lines.pop().unwrap_or_default();
        let directive = last
            .strip_prefix(':')
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no directive line in {stdout:?}"));
        (lines, directive)
    }

    /// Only the values, without descriptions.
    fn values(&self, words: &[&str]) -> Vec<String> {
        let (lines, directive) = self.complete(words);
        assert_eq!(directive, 4, "NoFileComp for {words:?}: {lines:?}");
        lines
            .into_iter()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    }
}

/// A kubeconfig with contexts `alpha` and `beta` (cluster `far`, unreachable at
/// `server`) and current context `alpha`.
fn offline_kubeconfig(dir: &Path, server: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: alpha\n\
         clusters:\n- name: far\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
         - name: near\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
         users:\n- name: u\n  user:\n    token: t\n\
         contexts:\n- name: beta\n  context:\n    cluster: near\n    user: u\n\
         - name: alpha\n  context:\n    cluster: far\n    user: u\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

fn offline() -> (tempfile::TempDir, Installed) {
    let dir = tempfile::tempdir().expect("temp dir");
    let kc = offline_kubeconfig(dir.path(), "https://127.0.0.1:1");
    let installed = Installed::new(&kc);
    (dir, installed)
}

#[test]
fn kubectl_completes_flag_names_with_descriptions() {
    let (_dir, p) = offline();
    let (lines, directive) = p.complete(&["--cas"]);
    assert_eq!(lines, ["--cascade\tDeletion propagation for jobs"]);
    assert_eq!(directive, 4);
    let all = p.values(&["--"]);
    for flag in [
        "--namespace",
        "--test-id",
        "--eval-id",
        "--older-than",
        "--dry-run",
        "--context",
        "--help",
    ] {
        assert!(
            all.contains(&flag.to_string()),
            "{flag} missing from {all:?}"
        );
    }
    // A flag given once is not offered again; a repeatable one is.
    let again = p.values(&["--yes", "--test-id", "a", "--"]);
    assert!(!again.contains(&"--yes".to_string()) && again.contains(&"--test-id".to_string()));
}

#[test]
fn kubectl_completes_fixed_values() {
    let (_dir, p) = offline();
    assert_eq!(
        p.values(&["--output", ""]),
        ["table", "wide", "json", "yaml", "name"]
    );
    assert_eq!(p.values(&["-o", "y"]), ["yaml"]);
    assert_eq!(p.values(&["--output=j"]), ["json"]);
    assert_eq!(p.values(&["--level", ""]), ["none", "pods", "jobs", "all"]);
    assert_eq!(
        p.values(&["--strategy", ""]),
        [
            "label",
            "age",
            "pressure",
            "watermark",
            "hybrid",
            "fallback"
        ]
    );
    assert_eq!(p.values(&["--cascade", "f"]), ["foreground"]);
    assert_eq!(p.values(&["--age-from", ""]), ["created", "finished"]);
    assert_eq!(p.values(&["--dry-run="]), ["client", "server"]);
    // `--dry-run` takes its value only after `=`: a separate word is not its value.
    assert_eq!(p.values(&["--dry-run", ""]), Vec::<String>::new());
    // Free-form values: nothing to offer, and no file names either.
    assert_eq!(p.values(&["--older-than", ""]), Vec::<String>::new());
}

#[test]
fn kubectl_completes_contexts_from_the_kubeconfig_without_a_cluster() {
    let (dir, p) = offline();
    let (lines, directive) = p.complete(&["--context", ""]);
    assert_eq!(lines, ["alpha\tcluster far", "beta\tcluster near"]);
    assert_eq!(directive, 4);
    assert_eq!(p.values(&["--context", "b"]), ["beta"]);
    // --kubeconfig on the line wins over KUBECONFIG.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let kc = other.join("kubeconfig");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n- name: gamma\n  context:\n    cluster: x\n    user: y\n",
    )
    .unwrap();
    assert_eq!(
        p.values(&["--kubeconfig", kc.to_str().unwrap(), "--context", ""]),
        ["gamma"]
    );
    // --kubeconfig's own value is a file name: the shell completes files.
    assert_eq!(p.complete(&["--kubeconfig", ""]), (vec![], 0));
}

#[test]
fn positional_words_get_nothing() {
    let (_dir, p) = offline();
    assert_eq!(p.values(&[""]), Vec::<String>::new());
    assert_eq!(p.values(&["--all", "x"]), Vec::<String>::new());
}

/// Runs `kubectl __complete crucible-clean WORDS` and returns the values and
/// how long the whole kubectl call took.
fn timed(p: &Installed, words: &[&str]) -> (Vec<String>, Duration) {
    let t0 = Instant::now();
    let values = p.values(words);
    (values, t0.elapsed())
}

#[test]
fn an_unreachable_cluster_answers_at_once() {
    let (_dir, p) = offline(); // 127.0.0.1:1: connection refused
    for words in [
        &["-n", ""][..],
        &["--test-id", ""],
        &["-n", "x", "--eval-id", "e"],
    ] {
        let (values, took) = timed(&p, words);
        assert_eq!(values, Vec::<String>::new());
        assert!(
            took < Duration::from_millis(1500),
            "{words:?} took {took:?}"
        );
    }
}

#[test]
fn a_server_that_never_answers_does_not_hang_completion() {
    // The kernel accepts the TCP connection (backlog) but nothing ever answers
    // the TLS handshake.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc = offline_kubeconfig(dir.path(), &format!("https://{addr}"));
    let p = Installed::new(&kc);
    for words in [
        &["--namespace", ""][..],
        &["--test-id", ""],
        &["--eval-id", ""],
    ] {
        // The completion program alone, run exactly as kubectl runs it.
        let t0 = Instant::now();
        let out = Command::new(p.bin.path().join("kubectl_complete-crucible_clean"))
            .args(words)
            .env_clear()
            .env("HOME", p.home.path())
            .env("KUBECONFIG", &kc)
            .output()
            .expect("run the completion program");
        let took = t0.elapsed();
        assert_eq!(String::from_utf8_lossy(&out.stdout), ":4\n");
        assert!(out.status.success());
        assert!(
            took < Duration::from_millis(1500),
            "{words:?} took {took:?}"
        );
        assert!(
            took >= Duration::from_millis(700),
            "{words:?} did not wait for the server at all ({took:?})"
        );
        // Through kubectl: the same empty answer. No tight bound here: some
        // kubectl builds (e.g. a version dispatcher) probe the server
        // themselves before running `__complete`.
        let (values, took) = timed(&p, words);
        assert_eq!(values, Vec::<String>::new());
        assert!(
            took < Duration::from_secs(15),
            "{words:?} took {took:?} through kubectl"
        );
    }
    drop(silent);
}

// ------------------------------------------------------------------------------------------
// Live values from the local control plane
// ------------------------------------------------------------------------------------------

use support::objects::{BarePod, EvalJob, TestNamespace};

/// Two test runs and three evaluations, plus a pod without the base label.
async fn evaluations(ns: &TestNamespace) {
    ns.create_job(&EvalJob::succeeding("e1").test_id("run-a"))
        .await;
    ns.create_job(&EvalJob::failing("e2").test_id("run-b"))
        .await;
    ns.create_pod(&BarePod::succeeded("bare").evaluation("e3").test_id("run-a"))
        .await;
    ns.create_pod(
        &BarePod::succeeded("stray")
            .label("eval-id", "e9")
            .test_id("stray-run"),
    )
    .await;
    ns.wait_job_pods_phase("evaluation-job-e1", "Succeeded")
        .await;
    ns.wait_job_pods_phase("evaluation-job-e2", "Failed").await;
}

fn live(ns: &TestNamespace) -> Installed {
    let _ = ns;
    Installed::new(&support::cluster::kubeconfig_path())
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_completes_test_ids_and_eval_ids_of_the_namespace() {
    let ns = TestNamespace::for_current_test().await;
    evaluations(&ns).await;
    let p = live(&ns);
    let name = ns.name();

    let (lines, directive) = p.complete(&["-n", name, "--test-id", ""]);
    assert_eq!(lines, ["run-a\t2 pods, 1 job", "run-b\t1 pod, 1 job"]);
    assert_eq!(directive, 4);
    assert_eq!(
        p.values(&["--namespace", name, "--eval-id", ""]),
        ["e1", "e2", "e3"]
    );
    assert_eq!(
        p.values(&[&format!("--namespace={name}"), "--eval-id", "e"]),
        ["e1", "e2", "e3"]
    );
    assert_eq!(p.values(&["-n", name, "--test-id=run-b"]), ["run-b"]);
    // The base selector on the line narrows the candidates.
    assert_eq!(
        p.values(&[
            "-n",
            name,
            "-l",
            "app=evaluation,eval-id=e2",
            "--test-id",
            ""
        ]),
        ["run-b"]
    );
    assert_eq!(
        p.values(&["-n", name, "--selector", "eval-id", "--test-id", ""]),
        ["run-a", "run-b", "stray-run"]
    );
    // Another namespace has none of them.
    assert_eq!(
        p.values(&["-n", "default", "--test-id", ""]),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_completion_honours_context_and_kubeconfig_on_the_line() {
    let ns = TestNamespace::for_current_test().await;
    evaluations(&ns).await;
    let name = ns.name();
    // KUBECONFIG points at a cluster that does not exist; --kubeconfig on the line wins.
    let dir = tempfile::tempdir().unwrap();
    let p = Installed::new(&offline_kubeconfig(dir.path(), "https://127.0.0.1:1"));
    assert_eq!(
        p.values(&["-n", name, "--test-id", ""]),
        Vec::<String>::new()
    );
    let real = support::cluster::kubeconfig_path();
    let real = real.to_str().unwrap();
    assert_eq!(
        p.values(&["--kubeconfig", real, "-n", name, "--test-id", ""]),
        ["run-a", "run-b"]
    );
    // viewer may read everywhere; ci-runner may read only the crucible namespace.
    assert_eq!(
        p.values(&[
            "--kubeconfig",
            real,
            "--context",
            "viewer",
            "-n",
            name,
            "--eval-id",
            ""
        ]),
        ["e1", "e2", "e3"]
    );
    assert_eq!(
        p.values(&[
            "--kubeconfig",
            real,
            "--context",
            "ci-runner",
            "-n",
            name,
            "--eval-id",
            ""
        ]),
        Vec::<String>::new()
    );
    assert_eq!(
        p.values(&["--kubeconfig", real, "--context", ""]),
        ["admin", "ci-runner", "viewer"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_completes_namespaces_without_the_protected_ones() {
    let ns = TestNamespace::for_current_test().await;
    let p = live(&ns);
    let all = p.values(&["-n", ""]);
    assert!(all.contains(&ns.name().to_string()), "{all:?}");
    assert!(all.contains(&"crucible".to_string()), "{all:?}");
    assert!(all.contains(&"default".to_string()), "{all:?}");
    for protected in ["kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            !all.contains(&protected.to_string()),
            "{protected} offered: {all:?}"
        );
    }
    let prefix = &ns.name()[..ns.name().len() - 3];
    assert_eq!(p.values(&["--namespace", prefix]), [ns.name()]);
}
