//! Test support for integration tests that need a Kubernetes control plane.
//!
//! Use from any integration test file with `mod support;`.
//!
//! * One control plane per test binary, started lazily by the first call to
//!   [`cluster()`] (which runs `tests/cluster/up` on a fresh temp dir and arranges
//!   `tests/cluster/down` to run once the test process has exited), or an already
//!   running one named by the environment variable [`CLUSTER_ENV`]
//!   (`CRUCIBLE_TEST_CLUSTER=DIR`, a DIR started with `tests/cluster/up DIR`).
//!   If the cluster cannot be started every test that needs it fails with the
//!   log tail; nothing is skipped.
//! * Every test works in its own namespace ([`TestNamespace`]), so tests can run in
//!   parallel without seeing each other's objects.
//! * Pods of Jobs are driven by kwok (see `tests/cluster/kwok.yaml`): Pending ->
//!   Running -> Succeeded about 1-1.5 s after they are scheduled, or Failed when the
//!   pod carries [`KWOK_FAIL_LABEL`], or still Running for as long as
//!   [`KWOK_COMPLETE_DELAY_ANNOTATION`] says.
//! * Bare pods in a finished phase are created deterministically on
//!   [`STATIC_NODE`], a node name nobody manages, with their status written
//!   through the status subresource ([`BarePod`]).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

/// Environment variable naming a running cluster directory (made by `tests/cluster/up DIR`).
pub const CLUSTER_ENV: &str = "CRUCIBLE_TEST_CLUSTER";
/// The namespace `up` creates; `ci-runner` may only act here.
pub const CRUCIBLE_NAMESPACE: &str = "crucible";
/// Contexts in the cluster's kubeconfig.
pub const ADMIN_CONTEXT: &str = "admin";
pub const CI_RUNNER_CONTEXT: &str = "ci-runner";
pub const VIEWER_CONTEXT: &str = "viewer";
/// User names (client-certificate CNs) as they appear in the audit log.
pub const ADMIN_USER: &str = "admin";
pub const CI_RUNNER_USER: &str = "ci-runner";
pub const VIEWER_USER: &str = "viewer";
pub const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";
pub const SCHEDULER_USER: &str = "system:kube-scheduler";
pub const KWOK_USER: &str = "system:kwok-controller";
/// The fake nodes kwok manages.
pub const KWOK_NODES: [&str; 3] = ["kwok-node-0", "kwok-node-1", "kwok-node-2"];
/// A node name no component manages: pods bound to it keep whatever status a test writes.
/// (No Node object exists; nothing needs one.)
pub const STATIC_NODE: &str = "crucible-static-node";
/// Pod (template) label: kwok moves the pod to Failed (exit code 1) instead of Succeeded.
pub const KWOK_FAIL_LABEL: &str = "pod-container-running-failed.stage.kwok.x-k8s.io";
/// Pod (template) annotation: exact delay before kwok marks a Job's pod Succeeded,
/// a Go duration ("24h") or an RFC 3339 time. Default without it: 1-1.5 s.
pub const KWOK_COMPLETE_DELAY_ANNOTATION: &str = "pod-complete.stage.kwok.x-k8s.io/delay";
/// Same for the move to Failed of pods with [`KWOK_FAIL_LABEL`].
pub const KWOK_FAIL_DELAY_ANNOTATION: &str =
    "pod-container-running-failed.stage.kwok.x-k8s.io/delay";
/// User agent of the clients made by this module (see [`AuditFilter`]).
pub const SUPPORT_USER_AGENT: &str = "crucible-test-support";
/// Name of the plugin binary.
pub const PLUGIN_BIN: &str = "kubectl-crucible-clean";
/// Default timeout of the `wait_*` helpers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

// ------------------------------------------------------------------------------------------
// Cluster
// ------------------------------------------------------------------------------------------

/// A running control plane.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    owned: bool,
}

impl Cluster {
    /// The cluster directory (the DIR of `tests/cluster/up DIR`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// `DIR/kubeconfig`: contexts admin (current), ci-runner, viewer; namespace crucible.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    /// `DIR/audit.log`: the API server's audit log (JSON lines).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }
    /// `DIR/logs`: one log per component.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
    /// True if this test process started the cluster (and will have it torn down).
    pub fn owned(&self) -> bool {
        self.owned
    }
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The repository root (where Cargo.toml is).
/// The sorted names of a CleanupReport's items for which `pred` holds.
pub fn names_where(
    report: &serde_json::Value,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Vec<String> {
    let mut v: Vec<String> = report["items"]
        .as_array()
        .expect("a CleanupReport has items")
        .iter()
        .filter(|i| pred(i))
        .map(|i| i["name"].as_str().expect("an item has a name").to_string())
        .collect();
    v.sort();
    v
}

/// The plugin binary cargo built for these tests.
pub fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-crucible-clean"))
}

/// The kubectl on this process's PATH (`KUBECTL` overrides).
pub fn kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        return PathBuf::from(k);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl is needed on PATH for these tests")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/cluster/<script>` in this repository.
pub fn cluster_script(script: &str) -> PathBuf {
    repo_root().join("tests").join("cluster").join(script)
}

/// The cluster of this test binary, started on first use. Panics (failing the test)
/// with the reason and the failing component's log tail if it cannot be started.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start_or_reuse_cluster) {
        Ok(c) => c,
        Err(e) => panic!("test cluster unavailable: {e}"),
    }
}

/// Path of the cluster's kubeconfig (starts the cluster if needed).
pub fn kubeconfig_path() -> PathBuf {
    cluster().kubeconfig()
}

/// The cluster directory (starts the cluster if needed).
pub fn cluster_dir() -> PathBuf {
    cluster().dir().to_path_buf()
}

fn start_or_reuse_cluster() -> Result<Cluster, String> {
    if let Some(dir) = std::env::var_os(CLUSTER_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("{CLUSTER_ENV}={}: {e}", dir.display()))?;
        if !dir.join("kubeconfig").is_file() {
            return Err(format!(
                "{CLUSTER_ENV}={}: no kubeconfig there; start it with tests/cluster/up {}",
                dir.display(),
                dir.display()
            ));
        }
        return Ok(Cluster { dir, owned: false });
    }

    let dir = tempfile::Builder::new()
        .prefix("crucible-cluster-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir for the cluster: {e}"))?
        .keep();
    // The watchdog first: whatever happens from here on (failed start, panic, abort),
    // `down` runs once this process is gone. It lives in its own session so that a
    // terminal's Ctrl-C does not take it down together with the tests.
    let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3""#;
    StdCommand::new("setsid")
        .args(["sh", "-c", script, "crucible-cluster-watchdog"])
        .arg(std::process::id().to_string())
        .arg(cluster_script("down"))
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot spawn the cluster watchdog (setsid sh): {e}"))?;

    let started = Instant::now();
    let run_up = || {
        StdCommand::new(cluster_script("up"))
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run tests/cluster/up: {e}"))
    };
    let mut out = run_up()?;
    // Ports are picked free but released before the components bind them: another
    // cluster starting at the same moment may take one. Try once more in that case.
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("address already in use")
    {
        eprintln!("support: port collision while starting the cluster; retrying once");
        out = run_up()?;
    }
    if !out.status.success() {
        return Err(format!(
            "tests/cluster/up {} failed ({}) after {:.1}s (the directory is removed when the \
             tests end; set CRUCIBLE_CLUSTER_KEEP_LOGS=1 to keep its logs):\n{}{}",
            dir.display(),
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "support: started test cluster in {} ({:.1}s)",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Cluster { dir, owned: true })
}

// ------------------------------------------------------------------------------------------
// Clients
// ------------------------------------------------------------------------------------------

/// A client for `context` of the cluster's kubeconfig, sending `user_agent`.
pub async fn client_with(context: &str, user_agent: &str) -> Client {
    let path = kubeconfig_path();
    let kc = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let opts = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {} context {context}: {e}", path.display()));
    config.headers.push((
        "user-agent".parse().expect("header name"),
        user_agent
            .parse()
            .expect("user agent must be a valid header value"),
    ));
    Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client for {context}: {e}"))
}

/// A client for `context` of the cluster's kubeconfig (user agent [`SUPPORT_USER_AGENT`]).
pub async fn client_for(context: &str) -> Client {
    client_with(context, SUPPORT_USER_AGENT).await
}

/// An admin (system:masters) client.
pub async fn admin_client() -> Client {
    client_for(ADMIN_CONTEXT).await
}

// ------------------------------------------------------------------------------------------
// Namespaces
// ------------------------------------------------------------------------------------------

static NS_COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_suffix(len: usize) -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NS_COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    let mut v = h.finish();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            let c = alphabet[(v % alphabet.len() as u64) as usize] as char;
            v /= alphabet.len() as u64;
            c
        })
        .collect()
}

/// A DNS-1123 label from `test_name` plus a random suffix, at most 63 characters.
pub fn unique_name(test_name: &str) -> String {
    let base = test_name.rsplit("::").next().unwrap_or(test_name);
    let mut s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let mut s = s.trim_matches('-').to_string();
    s.truncate(50);
    let s = s.trim_end_matches('-');
    let s = if s.is_empty() { "test" } else { s };
    format!("{s}-{}", random_suffix(6))
}

/// A fresh namespace for one test, with helpers bound to it.
///
/// It is deleted when dropped if the test passed and the cluster is an external one
/// ([`CLUSTER_ENV`]); a cluster started by this module is removed as a whole when the
/// test process exits. Failed tests keep their namespace for inspection.
pub struct TestNamespace {
    name: String,
    client: Client,
    home: tempfile::TempDir,
}

impl TestNamespace {
    /// Creates namespace `<test_name>-<random>` (sanitised) and waits until it is usable.
    pub async fn new(test_name: &str) -> Self {
        let client = admin_client().await;
        let name = unique_name(test_name);
        let ns: Namespace = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "labels": {"crucible.test/namespace": "true"},
                "annotations": {"crucible.test/test-name": test_name},
            }
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("cannot create test namespace {name}: {e}"));
        let home = tempfile::Builder::new()
            .prefix("crucible-home-")
            .tempdir()
            .expect("temp HOME for the plugin");
        TestNamespace { name, client, home }
    }

    /// Like [`TestNamespace::new`] with the current test's name (libtest names the
    /// test's thread after the test).
    pub async fn for_current_test() -> Self {
        let name = std::thread::current().name().unwrap_or("test").to_string();
        let name = if name == "main" {
            "test".to_string()
        } else {
            name
        };
        Self::new(&name).await
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// The admin client used by this namespace's helpers.
    pub fn client(&self) -> Client {
        self.client.clone()
    }
    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.name)
    }
    pub fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.name)
    }
    /// The temp dir used as HOME by [`TestNamespace::plugin`].
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The plugin binary with KUBECONFIG = the cluster's kubeconfig, HOME = a temp dir
    /// owned by this namespace. No arguments are added (no namespace either).
    pub fn plugin(&self) -> assert_cmd::Command {
        plugin_command(self.home.path())
    }

    /// Runs the plugin on this namespace with `-o json` and `args`; returns the
    /// exit code, the parsed report and stderr (panics when stdout is not JSON).
    pub fn run_json(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let out = self
            .plugin()
            .args(["-n", self.name(), "-o", "json"])
            .args(args)
            .output()
            .expect("run the plugin");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.code().unwrap_or(-1), report, stderr)
    }

    /// Creates an evaluation Job in this namespace.
    pub async fn create_job(&self, job: &EvalJob) -> Job {
        create_eval_job(&self.client, &self.name, job).await
    }

    /// Creates a bare pod in this namespace (see [`BarePod`]).
    pub async fn create_pod(&self, pod: &BarePod) -> Pod {
        create_bare_pod(&self.client, &self.name, pod).await
    }

    /// Creates many bare pods, 24 at a time.
    pub async fn create_pods(&self, pods: impl IntoIterator<Item = BarePod>) {
        use futures::StreamExt;
        futures::stream::iter(pods)
            .for_each_concurrent(24, |pod| async move {
                self.create_pod(&pod).await;
            })
            .await;
    }

    pub async fn wait_job_complete(&self, name: &str) -> Job {
        wait_job_condition(&self.client, &self.name, name, "Complete", DEFAULT_TIMEOUT).await
    }
    pub async fn wait_job_failed(&self, name: &str) -> Job {
        wait_job_condition(&self.client, &self.name, name, "Failed", DEFAULT_TIMEOUT).await
    }
    pub async fn wait_pod_phase(&self, name: &str, phase: &str) -> Pod {
        wait_pod_phase(&self.client, &self.name, name, phase, DEFAULT_TIMEOUT).await
    }
    /// The pods of a Job (label `batch.kubernetes.io/job-name`), waiting until there is at
    /// least one and all are in `phase`.
    pub async fn wait_job_pods_phase(&self, job_name: &str, phase: &str) -> Vec<Pod> {
        wait_job_pods_phase(&self.client, &self.name, job_name, phase, DEFAULT_TIMEOUT).await
    }
    pub async fn wait_pod_gone(&self, name: &str) {
        wait_gone(&self.pods(), name, DEFAULT_TIMEOUT).await
    }
    pub async fn wait_job_gone(&self, name: &str) {
        wait_gone(&self.jobs(), name, DEFAULT_TIMEOUT).await
    }
    /// Names of the pods still present (including terminating ones), sorted.
    pub async fn pod_names(&self) -> Vec<String> {
        names(&self.pods()).await
    }
    /// Names of the Jobs still present (including terminating ones), sorted.
    pub async fn job_names(&self) -> Vec<String> {
        names(&self.jobs()).await
    }
    /// Mutating requests recorded in the audit log for this namespace (see [`mutating_requests`]).
    pub async fn mutating_requests(&self, filter: &AuditFilter) -> Vec<AuditEvent> {
        mutating_requests(&self.name, filter).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("support: test failed; namespace {} kept", self.name);
            return;
        }
        let external = matches!(CLUSTER.get(), Some(Ok(c)) if !c.owned);
        if !external {
            return;
        }
        let name = self.name.clone();
        // Drop cannot be async and may run inside the test's runtime: use a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = admin_client().await;
                let _ = Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::background())
                    .await;
            });
            Some(())
        })
        .join();
    }
}

// ------------------------------------------------------------------------------------------
// Plugin command
// ------------------------------------------------------------------------------------------

/// The plugin binary (`kubectl-crucible-clean`) with `KUBECONFIG` set to the cluster's
/// kubeconfig and `HOME` (and XDG config/cache dirs) inside `home`.
pub fn plugin_command(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin(PLUGIN_BIN)
        .unwrap_or_else(|e| panic!("plugin binary {PLUGIN_BIN} not built: {e}"));
    cmd.env("KUBECONFIG", kubeconfig_path())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_DATA_HOME");
    cmd
}

// ------------------------------------------------------------------------------------------
// Evaluation jobs
// ------------------------------------------------------------------------------------------

/// How a Job's pod ends under kwok.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded ~1-1.5 s after it runs; the Job becomes Complete.
    Succeed,
    /// Failed (exit code 1) ~1-1.5 s after it runs; the Job (backoffLimit 0) becomes Failed.
    Fail,
    /// Stays Running for 24 h (annotation [`KWOK_COMPLETE_DELAY_ANNOTATION`]).
    KeepRunning,
}

/// An evaluation Job: name `evaluation-job-<eval-id>`, labels `app=evaluation`,
/// `eval-id=<id>` and optionally `test-id=<id>` on the Job and its pod template.
#[derive(Clone, Debug)]
pub struct EvalJob {
    pub eval_id: String,
    pub test_id: Option<String>,
    pub outcome: Outcome,
    /// Extra labels for the Job and its pod template.
    pub labels: BTreeMap<String, String>,
    /// Annotations of the Job object.
    pub annotations: BTreeMap<String, String>,
    /// Annotations of the pod template (e.g. kwok delays).
    pub pod_annotations: BTreeMap<String, String>,
    pub ttl_seconds_after_finished: Option<i32>,
}

impl EvalJob {
    pub fn new(eval_id: &str, outcome: Outcome) -> Self {
        EvalJob {
            eval_id: eval_id.to_string(),
            test_id: None,
            outcome,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            ttl_seconds_after_finished: None,
        }
    }
    pub fn succeeding(eval_id: &str) -> Self {
        Self::new(eval_id, Outcome::Succeed)
    }
    pub fn failing(eval_id: &str) -> Self {
        Self::new(eval_id, Outcome::Fail)
    }
    pub fn running(eval_id: &str) -> Self {
        Self::new(eval_id, Outcome::KeepRunning)
    }
    pub fn test_id(mut self, test_id: &str) -> Self {
        self.test_id = Some(test_id.to_string());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }
    pub fn pod_annotation(mut self, key: &str, value: &str) -> Self {
        self.pod_annotations
            .insert(key.to_string(), value.to_string());
        self
    }
    pub fn ttl_seconds_after_finished(mut self, seconds: i32) -> Self {
        self.ttl_seconds_after_finished = Some(seconds);
        self
    }
    /// `evaluation-job-<eval-id>`.
    pub fn name(&self) -> String {
        format!("evaluation-job-{}", self.eval_id)
    }

    /// The Job object.
    pub fn to_job(&self) -> Job {
        let mut labels = self.labels.clone();
        labels.insert("app".into(), "evaluation".into());
        labels.insert("eval-id".into(), self.eval_id.clone());
        if let Some(t) = &self.test_id {
            labels.insert("test-id".into(), t.clone());
        }
        let mut pod_labels = labels.clone();
        let mut pod_annotations = self.pod_annotations.clone();
        match self.outcome {
            Outcome::Succeed => {}
            Outcome::Fail => {
                pod_labels.insert(KWOK_FAIL_LABEL.into(), "true".into());
            }
            Outcome::KeepRunning => {
                pod_annotations
                    .entry(KWOK_COMPLETE_DELAY_ANNOTATION.into())
                    .or_insert_with(|| "24h".into());
            }
        }
        let mut spec = json!({
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "evaluation",
                        "image": "crucible.invalid/evaluation:test",
                        "command": ["run-evaluation", self.eval_id.as_str()],
                    }],
                },
            },
        });
        if let Some(ttl) = self.ttl_seconds_after_finished {
            spec["ttlSecondsAfterFinished"] = json!(ttl);
        }
        serde_json::from_value(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": self.name(),
                "labels": labels,
                "annotations": self.annotations,
            },
            "spec": spec,
        }))
        .expect("valid Job")
    }
}

/// Creates `job` in `namespace`.
pub async fn create_eval_job(client: &Client, namespace: &str, job: &EvalJob) -> Job {
    Api::<Job>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &job.to_job())
        .await
        .unwrap_or_else(|e| panic!("cannot create job {namespace}/{}: {e}", job.name()))
}

// ------------------------------------------------------------------------------------------
// Bare pods
// ------------------------------------------------------------------------------------------

/// Final state of a [`BarePod`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodState {
    /// Phase Succeeded, container terminated with exit code 0 at `finished_at`.
    Succeeded,
    /// Phase Failed, container terminated with `exit_code` (default 1) at `finished_at`.
    Failed,
    /// Scheduled onto a kwok node, Running (kwok never completes pods without a Job owner).
    Running,
}

/// A pod without owner. Succeeded/Failed pods are bound to [`STATIC_NODE`] (not managed
/// by anything) and get their status written through the status subresource, so their
/// phase and `containerStatuses[].state.terminated.finishedAt` are exactly as given.
#[derive(Clone, Debug)]
pub struct BarePod {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: PodState,
    pub started_at: Option<SystemTime>,
    pub finished_at: SystemTime,
    pub exit_code: Option<i32>,
}

impl BarePod {
    pub fn new(name: &str, state: PodState) -> Self {
        BarePod {
            name: name.to_string(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            state,
            started_at: None,
            finished_at: SystemTime::now(),
            exit_code: None,
        }
    }
    pub fn succeeded(name: &str) -> Self {
        Self::new(name, PodState::Succeeded)
    }
    pub fn failed(name: &str) -> Self {
        Self::new(name, PodState::Failed)
    }
    pub fn running(name: &str) -> Self {
        Self::new(name, PodState::Running)
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }
    /// Labels `app=evaluation`, `eval-id=<eval_id>`.
    pub fn evaluation(self, eval_id: &str) -> Self {
        self.label("app", "evaluation").label("eval-id", eval_id)
    }
    pub fn test_id(self, test_id: &str) -> Self {
        self.label("test-id", test_id)
    }
    pub fn finished_at(mut self, at: SystemTime) -> Self {
        self.finished_at = at;
        self
    }
    /// Finished `ago` before now.
    pub fn finished_ago(self, ago: Duration) -> Self {
        self.finished_at(SystemTime::now() - ago)
    }
    /// Start time (default: 10 s before `finished_at`).
    pub fn started_at(mut self, at: SystemTime) -> Self {
        self.started_at = Some(at);
        self
    }
    pub fn exit_code(mut self, code: i32) -> Self {
        self.exit_code = Some(code);
        self
    }
}

/// RFC 3339 (seconds, UTC) as Kubernetes writes times.
pub fn rfc3339(t: SystemTime) -> String {
    let ts = k8s_openapi::jiff::Timestamp::try_from(t).expect("time in range");
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Creates `pod` in `namespace` and brings it to its state (see [`BarePod`]). For
/// [`PodState::Running`] this waits until kwok reports it Running.
pub async fn create_bare_pod(client: &Client, namespace: &str, pod: &BarePod) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut spec = json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": "crucible.invalid/evaluation:test"}],
    });
    if pod.state != PodState::Running {
        spec["nodeName"] = json!(STATIC_NODE);
    }
    let obj: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "labels": pod.labels, "annotations": pod.annotations},
        "spec": spec,
    }))
    .expect("valid Pod");
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("cannot create pod {namespace}/{}: {e}", pod.name));
    let (phase, exit_code, reason) = match pod.state {
        PodState::Running => {
            return wait_pod_phase(client, namespace, &pod.name, "Running", DEFAULT_TIMEOUT).await
        }
        PodState::Succeeded => ("Succeeded", pod.exit_code.unwrap_or(0), "Completed"),
        PodState::Failed => ("Failed", pod.exit_code.unwrap_or(1), "Error"),
    };
    let finished = rfc3339(pod.finished_at);
    let started = rfc3339(
        pod.started_at
            .unwrap_or_else(|| pod.finished_at - Duration::from_secs(10)),
    );
    let ready_reason = if phase == "Succeeded" {
        "PodCompleted"
    } else {
        "PodFailed"
    };
    let status = json!({
        "status": {
            "phase": phase,
            "startTime": started,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": "False", "reason": ready_reason, "lastTransitionTime": finished},
                {"type": "ContainersReady", "status": "False", "reason": ready_reason, "lastTransitionTime": finished},
            ],
            "containerStatuses": [{
                "name": "main",
                "image": "crucible.invalid/evaluation:test",
                "imageID": "",
                "ready": false,
                "started": false,
                "restartCount": 0,
                "state": {"terminated": {
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": started,
                    "finishedAt": finished,
                }},
            }],
        }
    });
    api.patch_status(&pod.name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("cannot write status of pod {namespace}/{}: {e}", pod.name))
}

// ------------------------------------------------------------------------------------------
// Waiting
// ------------------------------------------------------------------------------------------

/// Polls `check` every 200 ms until it returns `Ok(value)`; panics after `timeout` with
/// `what` and the last `Err(state)` it returned.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(state) => {
                if start.elapsed() >= timeout {
                    panic!("timed out after {timeout:?} waiting for {what}; last state: {state}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn job_conditions(job: &Job) -> Vec<(String, String)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until Job `name` has condition `condition` (e.g. "Complete", "Failed") = True.
/// Panics if it instead reaches the other terminal condition.
pub async fn wait_job_condition(
    client: &Client,
    namespace: &str,
    name: &str,
    condition: &str,
    timeout: Duration,
) -> Job {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let what = format!("job {namespace}/{name} to have condition {condition}=True");
    poll_until(&what, timeout, || async {
        let job = api.get_opt(name).await.map_err(|e| e.to_string())?;
        let Some(job) = job else {
            return Err("job does not exist".into());
        };
        let conds = job_conditions(&job);
        if conds.iter().any(|(t, s)| t == condition && s == "True") {
            return Ok(job);
        }
        for terminal in ["Complete", "Failed"] {
            if terminal != condition && conds.iter().any(|(t, s)| t == terminal && s == "True") {
                panic!(
                    "job {namespace}/{name} reached {terminal} instead of {condition}: {:?}",
                    job.status
                );
            }
        }
        Err(format!("conditions {conds:?}"))
    })
    .await
}

/// Waits until pod `name` has `status.phase == phase`.
pub async fn wait_pod_phase(
    client: &Client,
    namespace: &str,
    name: &str,
    phase: &str,
    timeout: Duration,
) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = format!("pod {namespace}/{name} to be {phase}");
    poll_until(&what, timeout, || async {
        let pod = api.get_opt(name).await.map_err(|e| e.to_string())?;
        let Some(pod) = pod else {
            return Err("pod does not exist".into());
        };
        let current = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if current == phase {
            Ok(pod)
        } else {
            Err(format!(
                "phase {current:?}, node {:?}",
                pod.spec.as_ref().and_then(|s| s.node_name.clone())
            ))
        }
    })
    .await
}

/// Waits until the Job has at least one pod and all its pods are in `phase`.
pub async fn wait_job_pods_phase(
    client: &Client,
    namespace: &str,
    job_name: &str,
    phase: &str,
    timeout: Duration,
) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job_name}"));
    let what = format!("pods of job {namespace}/{job_name} to be {phase}");
    poll_until(&what, timeout, || async {
        let pods = api.list(&lp).await.map_err(|e| e.to_string())?.items;
        let phases: Vec<(String, String)> = pods
            .iter()
            .map(|p| {
                let ph = p
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                (p.metadata.name.clone().unwrap_or_default(), ph)
            })
            .collect();
        if !pods.is_empty() && phases.iter().all(|(_, ph)| ph == phase) {
            Ok(pods)
        } else {
            Err(format!("pods {phases:?}"))
        }
    })
    .await
}

/// Waits until object `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let what = format!(
        "{} {name} to be gone",
        std::any::type_name::<K>()
            .rsplit("::")
            .next()
            .unwrap_or("object")
    );
    poll_until(&what, timeout, || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(obj) => Err(format!(
                "still exists (deletionTimestamp {:?}, finalizers {:?})",
                obj.meta().deletion_timestamp,
                obj.meta().finalizers
            )),
        }
    })
    .await
}

/// Sorted names of all objects of `api` (all present, terminating ones included).
pub async fn names<K>(api: &Api<K>) -> Vec<String>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut v: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("cannot list: {e}"))
        .items
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect();
    v.sort();
    v
}

/// Sorted names of the pods in `namespace`.
pub async fn pod_names(client: &Client, namespace: &str) -> Vec<String> {
    names(&Api::<Pod>::namespaced(client.clone(), namespace)).await
}

/// Sorted names of the Jobs in `namespace`.
pub async fn job_names(client: &Client, namespace: &str) -> Vec<String> {
    names(&Api::<Job>::namespaced(client.clone(), namespace)).await
}

// ------------------------------------------------------------------------------------------
// Audit log
// ------------------------------------------------------------------------------------------

/// One audit event (stage ResponseComplete) of `DIR/audit.log`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    #[serde(rename = "auditID", default)]
    pub audit_id: String,
    #[serde(default)]
    pub stage: String,
    pub verb: String,
    #[serde(rename = "requestURI", default)]
    pub request_uri: String,
    pub user: AuditUser,
    #[serde(default)]
    pub user_agent: String,
    #[serde(default)]
    pub object_ref: Option<AuditObjectRef>,
    #[serde(default)]
    pub response_status: Option<AuditResponseStatus>,
    #[serde(default)]
    pub request_received_timestamp: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuditUser {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditObjectRef {
    pub resource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub api_group: Option<String>,
    pub api_version: Option<String>,
    pub subresource: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct AuditResponseStatus {
    #[serde(default)]
    pub code: i32,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl AuditEvent {
    pub fn code(&self) -> i32 {
        self.response_status.as_ref().map(|s| s.code).unwrap_or(0)
    }
    pub fn resource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.resource.as_deref())
            .unwrap_or("")
    }
    pub fn subresource(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.subresource.as_deref())
            .unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.namespace.as_deref())
            .unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|o| o.name.as_deref())
            .unwrap_or("")
    }
    pub fn is_mutating(&self) -> bool {
        MUTATING_VERBS.contains(&self.verb.as_str())
    }
}

pub const MUTATING_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// Which requests [`mutating_requests`] returns.
///
/// By default: everyone's except this module's own clients (user agent
/// [`SUPPORT_USER_AGENT`]), i.e. the plugin's, the controllers' and kwok's. Narrow it
/// with a user-agent prefix and/or a user name.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub user_agent_prefix: Option<String>,
    pub username: Option<String>,
    pub include_support: bool,
}

impl AuditFilter {
    /// Everything except this module's own requests.
    pub fn all() -> Self {
        Self::default()
    }
    /// Requests whose user agent starts with `prefix`.
    pub fn user_agent(prefix: &str) -> Self {
        Self::default().and_user_agent(prefix)
    }
    /// Requests made by user `name` (e.g. [`ADMIN_USER`], [`CI_RUNNER_USER`]).
    pub fn username(name: &str) -> Self {
        Self::default().and_username(name)
    }
    pub fn and_user_agent(mut self, prefix: &str) -> Self {
        self.user_agent_prefix = Some(prefix.to_string());
        self
    }
    pub fn and_username(mut self, name: &str) -> Self {
        self.username = Some(name.to_string());
        self
    }
    /// Also return requests made by this module's clients.
    pub fn including_support(mut self) -> Self {
        self.include_support = true;
        self
    }
    pub fn matches(&self, e: &AuditEvent) -> bool {
        if !self.include_support && e.user_agent.starts_with(SUPPORT_USER_AGENT) {
            return false;
        }
        if let Some(p) = &self.user_agent_prefix {
            if !e.user_agent.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some(u) = &self.username {
            if &e.user.username != u {
                return false;
            }
        }
        true
    }
}

/// All ResponseComplete events of the audit log whose raw line contains `needle`
/// (a cheap pre-filter; pass "" for all).
pub fn read_audit_events(needle: &str) -> Vec<AuditEvent> {
    read_audit_events_from(0, needle)
}

fn read_audit_events_from(offset: u64, needle: &str) -> Vec<AuditEvent> {
    use std::io::{Read, Seek, SeekFrom};
    let path = cluster().audit_log();
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(offset))?;
            f.read_to_string(&mut text)
        })
        .unwrap_or_else(|e| panic!("cannot read audit log {}: {e}", path.display()));
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| serde_json::from_str::<AuditEvent>(l).ok())
        .filter(|e| e.stage == "ResponseComplete" || e.stage == "Panic")
        .collect()
}

/// Makes a marker request and waits until the audit log has it. Requests that
/// completed before the call are then in the log too (the API server writes the
/// entry at the end of each request, in blocking mode).
pub async fn audit_barrier() {
    let client = admin_client().await;
    let marker = format!("audit-barrier-{}", random_suffix(10));
    let path = cluster().audit_log();
    let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let api: Api<Namespace> = Api::all(client);
    let _ = api.get_opt(&marker).await;
    let needle = format!("\"name\":\"{marker}\"");
    poll_until(
        "the audit barrier request in the audit log",
        Duration::from_secs(15),
        || async {
            if read_audit_events_from(offset, &needle).is_empty() {
                Err("not logged yet".into())
            } else {
                Ok(())
            }
        },
    )
    .await
}

/// The mutating requests (create, update, patch, delete, deletecollection) recorded
/// for objects in `namespace`, in log order, that match `filter`. Waits for the audit
/// log to catch up with requests already answered (see [`audit_barrier`]).
pub async fn mutating_requests(namespace: &str, filter: &AuditFilter) -> Vec<AuditEvent> {
    audit_barrier().await;
    let needle = format!("\"namespace\":\"{namespace}\"");
    read_audit_events(&needle)
        .into_iter()
        .filter(|e| e.is_mutating() && e.namespace() == namespace && filter.matches(e))
        .collect()
}
