//! Objects in the cluster: a namespace per test ([`TestNamespace`]), evaluation Jobs
//! driven by kwok ([`EvalJob`]) and bare pods in an exact finished state ([`BarePod`]).

// rustc judges dead code per test binary, and every test binary compiles this whole
// module while using only part of it (see mod.rs).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::audit::{mutating_requests, AuditEvent, AuditFilter};
use super::cluster::{admin_client, cluster_is_external};
use super::commands::PluginCmd;
use super::wait::{
    wait_gone, wait_job_condition, wait_job_pods_phase, wait_pod_phase, DEFAULT_TIMEOUT,
};

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

// ------------------------------------------------------------------------------------------
// Namespaces
// ------------------------------------------------------------------------------------------

static NS_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `len` random characters of `[a-z0-9]`.
pub fn random_suffix(len: usize) -> String {
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
/// (`CRUCIBLE_TEST_CLUSTER`); a cluster started by this module is removed as a whole when the
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

    /// The plugin with KUBECONFIG = the cluster's kubeconfig, HOME = a temp dir owned
    /// by this namespace. No arguments are added (no namespace either).
    pub fn plugin(&self) -> PluginCmd {
        let mut cmd = PluginCmd::with_home(self.home.path());
        cmd.on_cluster();
        cmd
    }

    /// Runs the plugin on this namespace with `-o json` and `args`; returns the
    /// exit code, the parsed report and stderr (panics when stdout is not JSON).
    pub fn run_json(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        self.plugin()
            .args(["-n", self.name(), "-o", "json"])
            .args(args)
            .output_json()
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
        if !cluster_is_external() {
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
    /// `manualSelector: true`, selecting on a label of its own: its pods carry
    /// no `controller-uid` (nor `job-name`) label.
    pub manual_selector: bool,
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
            manual_selector: false,
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
    pub fn manual_selector(mut self) -> Self {
        self.manual_selector = true;
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
        if self.manual_selector {
            spec["manualSelector"] = json!(true);
            spec["selector"] = json!({"matchLabels": {"manual-selector": self.name()}});
            spec["template"]["metadata"]["labels"]["manual-selector"] = json!(self.name());
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
    let api = Api::<Job>::namespaced(client.clone(), namespace);
    create_through_quota(&api, &job.to_job())
        .await
        .unwrap_or_else(|e| panic!("cannot create job {namespace}/{}: {e}", job.name()))
}

/// Creates `obj`, retrying the transient `409 Conflict` that quota admission returns when
/// concurrent creates in one namespace race to update the same ResourceQuota's usage (the
/// API server gives up after a few internal retries). `AlreadyExists`, also a 409, is not
/// retried: that is a real error of the test.
pub async fn create_through_quota<K>(api: &Api<K>, obj: &K) -> kube::Result<K>
where
    K: Clone + DeserializeOwned + Debug + serde::Serialize,
{
    let mut attempt = 0;
    loop {
        match api.create(&PostParams::default(), obj).await {
            Err(kube::Error::Api(e)) if e.code == 409 && e.reason == "Conflict" && attempt < 10 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            other => return other,
        }
    }
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
    create_through_quota(&api, &obj)
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

/// `status.phase` of a pod ("" when it has none yet).
pub fn pod_phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

// ------------------------------------------------------------------------------------------
// Listing
// ------------------------------------------------------------------------------------------

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
