//! Randomised decoys: over a thousand pods and jobs in three namespaces, with
//! a random mix of labels, phases, keep marks, owners, terminating objects,
//! creation times and same-name recreations; then random cleanup command
//! lines, each checked against a model of what may be deleted written here,
//! independently of `src/` (from the product contract, design.md §3–4).
//!
//! Also (issue 19): objects of test runs with guard Leases, forged Leases and
//! Leases of other namespaces, and `--stale-runs` and `--guard` command
//! lines; pods tied to a job by a non-controller ownerReference, and jobs
//! with a manual selector; jobs whose failed attempt preceded success; and
//! keep markers added while deletes are held in admission (`decoys/runs.rs`).
//!
//! Also (issue 21): `crucible-clean/keep-until` annotations on pods, jobs
//! and jobs' pods: two days ahead (kept, across ownership, as the marker),
//! two days past (an ordinary object) and times that do not parse (kept).
//!
//! Seeded and reproducible: the seed is printed, and `CRUCIBLE_DECOY_SEED=N`
//! runs the same objects and command lines again (only the random suffixes
//! of namespace names and the creation times, which the cluster sets, differ;
//! so do the `--older-than` seconds derived from them).

#[path = "decoys/runs.rs"]
mod runs;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

use support::{cluster::*, commands::*, objects::*, wait::*};

/// Overrides the random seed.
const SEED_ENV: &str = "CRUCIBLE_DECOY_SEED";
/// Finalizer that keeps a deleted object terminating until the end of the test.
const HOLD: &str = "crucible.test/hold";
const KEEP: &str = "crucible-clean/keep";
const KEEP_UNTIL: &str = "crucible-clean/keep-until";

/// A `keep-until` value: two days ahead, two days past, or no time at all.
fn keep_until(rng: &mut fastrand::Rng) -> String {
    let two_days = Duration::from_secs(2 * 86_400);
    match rng.u32(..3) {
        0 => rfc3339(SystemTime::now() + two_days),
        1 => rfc3339(SystemTime::now() - two_days),
        _ => pick(rng, &["soon", "2030-01-01", "", "1893456000"]).to_string(),
    }
}
/// Every object of this run carries `decoy-run=<run>` (except the unlabelled
/// ones); `-A` command lines always select on it, so they never reach into
/// another test's namespace.
const RUN_LABEL: &str = "decoy-run";
const NAMESPACES: usize = 3;
const BARE_PODS: usize = 910;
const JOBS: usize = 60;
const COMMANDS: usize = 40;
/// Creation times of the two waves are at least this far apart (seconds).
const WAVE_GAP: i64 = 16;
/// A gap in creation times wide enough to place an `--older-than` cut in.
const MIN_GAP: i64 = 14;

// ------------------------------------------------------------------------------------------
// Randomness
// ------------------------------------------------------------------------------------------

fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={s:?} is not a number")),
        _ => SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(42),
    }
}

fn pick<'a, T>(rng: &mut fastrand::Rng, v: &'a [T]) -> &'a T {
    &v[rng.usize(..v.len())]
}

/// Picks by weight: `[(weight, value)]`.
fn weighted<T: Clone>(rng: &mut fastrand::Rng, v: &[(u32, T)]) -> T {
    let total: u32 = v.iter().map(|(w, _)| w).sum();
    let mut x = rng.u32(..total);
    for (w, t) in v {
        if x < *w {
            return t.clone();
        }
        x -= w;
    }
    unreachable!()
}

// ------------------------------------------------------------------------------------------
// What is created
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PodPhase {
    Succeeded,
    Failed,
    Running,
    Pending,
}

/// A pod without a Job, on a node nobody manages: its phase stays as written.
#[derive(Clone, Debug)]
struct PodSpec {
    ns: usize,
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    phase: PodPhase,
    finished_ago: Duration,
    /// A controller ownerReference to the namespace's ConfigMap.
    controlled: bool,
    /// A finalizer, then a delete: terminating.
    hold: bool,
}

/// Labels a bare pod's deletes are held in admission by (`runs::SlowDeletes`).
fn slow_label(rng: &mut fastrand::Rng, controlled: bool, labels: &mut BTreeMap<String, String>) {
    if !controlled && rng.u32(..100) < 6 {
        labels.insert(runs::SLOW.into(), "true".into());
    }
}

#[derive(Clone, Debug)]
struct JobSpec {
    ns: usize,
    job: EvalJob,
    /// Finalizer + delete once finished: a terminating Job.
    hold: bool,
    /// Finalizer + delete of its pod once finished: a terminating pod of a Job.
    hold_pod: bool,
    /// Once it succeeded, a failed pod it controls: an attempt that failed
    /// before the success (its own labels and keep mark).
    failed_attempt: Option<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

fn common_labels(rng: &mut fastrand::Rng, run: &str, l: &mut BTreeMap<String, String>) {
    l.insert(RUN_LABEL.into(), run.into());
    if rng.u32(..100) < 35 {
        l.insert(runs::RUN_KEY.into(), pick(rng, &runs::run_ids(run)).clone());
    }
    if let Some(t) = weighted(
        rng,
        &[
            (30, Some("ta")),
            (25, Some("tb")),
            (15, Some("tc")),
            (30, None),
        ],
    ) {
        l.insert("test-id".into(), t.into());
    }
    if let Some(t) = weighted(rng, &[(20, Some("red")), (15, Some("blue")), (65, None)]) {
        l.insert("team".into(), t.into());
    }
}

fn keep_mark(
    rng: &mut fastrand::Rng,
    labels: &mut BTreeMap<String, String>,
    annotations: &mut BTreeMap<String, String>,
) {
    match rng.u32(..100) {
        0..=3 => {
            labels.insert(KEEP.into(), "true".into());
        }
        4..=7 => {
            annotations.insert(KEEP.into(), "true".into());
        }
        // Decoys the other way round: "false" protects nothing.
        8..=9 => {
            labels.insert(KEEP.into(), "false".into());
        }
        10..=11 => {
            annotations.insert(KEEP.into(), "false".into());
        }
        12..=19 => {
            annotations.insert(KEEP_UNTIL.into(), keep_until(rng));
        }
        _ => {}
    }
}

const FINISHED_AGO: [u64; 5] = [600, 5_400, 3 * 3_600, 6 * 3_600, 2 * 86_400];

fn random_pod(rng: &mut fastrand::Rng, run: &str, ns: usize, name: &str) -> PodSpec {
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let shape = rng.u32(..100);
    if shape >= 3 {
        common_labels(rng, run, &mut labels);
        match shape {
            3..=87 => {
                labels.insert("app".into(), "evaluation".into());
            }
            88..=94 => {
                labels.insert("app".into(), "other".into());
            }
            _ => {}
        }
        if rng.u32(..100) < 80 {
            labels.insert("eval-id".into(), format!("e{}", rng.u32(..40)));
        }
    } // else: no labels at all
    keep_mark(rng, &mut labels, &mut annotations);
    let controlled = rng.u32(..100) < 10;
    slow_label(rng, controlled, &mut labels);
    PodSpec {
        ns,
        name: name.to_string(),
        labels,
        annotations,
        phase: weighted(
            rng,
            &[
                (45, PodPhase::Succeeded),
                (30, PodPhase::Failed),
                (15, PodPhase::Running),
                (10, PodPhase::Pending),
            ],
        ),
        finished_ago: Duration::from_secs(*pick(rng, &FINISHED_AGO)),
        controlled,
        hold: rng.u32(..100) < 4,
    }
}

fn random_job(rng: &mut fastrand::Rng, run: &str, ns: usize, eval_id: &str) -> JobSpec {
    let outcome = weighted(
        rng,
        &[
            (45, Outcome::Succeed),
            (30, Outcome::Fail),
            (25, Outcome::KeepRunning),
        ],
    );
    let mut job = EvalJob::new(eval_id, outcome.clone());
    let mut labels = BTreeMap::new();
    common_labels(rng, run, &mut labels);
    for (k, v) in labels {
        if k == "test-id" {
            job = job.test_id(&v);
        } else {
            job = job.label(&k, &v);
        }
    }
    job = match rng.u32(..100) {
        // The Job alone is kept: it keeps its pod.
        0..=14 => job.annotation(KEEP, "true"),
        // Its pod alone is kept: it keeps its Job.
        15..=29 => job.pod_annotation(KEEP, "true"),
        // Both, as a label of the Job and its pod template.
        30..=34 => job.label(KEEP, "true"),
        35..=39 => job.label(KEEP, "false"),
        // A keep until a time: the Job's or its pod's.
        40..=46 => job.annotation(KEEP_UNTIL, &keep_until(rng)),
        47..=53 => job.pod_annotation(KEEP_UNTIL, &keep_until(rng)),
        _ => job,
    };
    let finishes = outcome != Outcome::KeepRunning;
    // Its pods carry no job-name label: never a held pod (found by that label).
    let manual = finishes && rng.u32(..100) < 12;
    if manual {
        job = job.manual_selector();
    }
    let hold = finishes && rng.u32(..100) < 8;
    let failed_attempt = (outcome == Outcome::Succeed && !hold && rng.u32(..100) < 25).then(|| {
        let mut labels = job
            .to_job()
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .labels
            .unwrap();
        labels.remove("manual-selector");
        let mut annotations = BTreeMap::new();
        keep_mark(rng, &mut labels, &mut annotations);
        (labels, annotations)
    });
    JobSpec {
        ns,
        job,
        hold,
        hold_pod: finishes && !manual && rng.u32(..100) < 8,
        failed_attempt,
    }
}

fn rfc3339_ago(ago: Duration) -> String {
    rfc3339(SystemTime::now() - ago)
}

/// The ConfigMap each namespace's controlled pods point at (it exists, so the
/// garbage collector leaves them alone).
async fn owner_config_map(client: &Client, ns: &str) -> (String, String) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "decoy-owner"},
        "data": {"purpose": "controller of some decoy pods"},
    }))
    .unwrap();
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("cannot create the ConfigMap in {ns}: {e}"));
    (cm.metadata.name.unwrap(), cm.metadata.uid.unwrap())
}

async fn create_pod(client: &Client, ns: &str, owner: &(String, String), p: &PodSpec) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut meta = json!({"name": p.name, "labels": p.labels, "annotations": p.annotations});
    if p.hold {
        meta["finalizers"] = json!([HOLD]);
    }
    if p.controlled {
        meta["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner.0, "uid": owner.1,
            "controller": true,
        }]);
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": STATIC_NODE,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "crucible.invalid/evaluation:test"}],
        },
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("cannot create pod {ns}/{}: {e}", p.name));
    let finished = rfc3339_ago(p.finished_ago);
    let started = rfc3339_ago(p.finished_ago + Duration::from_secs(30));
    let status = match p.phase {
        PodPhase::Pending => None,
        PodPhase::Running => Some(json!({"status": {
            "phase": "Running",
            "startTime": started,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": "True", "lastTransitionTime": started},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": started},
            ],
            "containerStatuses": [{
                "name": "main", "image": "crucible.invalid/evaluation:test", "imageID": "",
                "ready": true, "started": true, "restartCount": 0,
                "state": {"running": {"startedAt": started}},
            }],
        }})),
        PodPhase::Succeeded | PodPhase::Failed => {
            let (phase, code, reason) = if p.phase == PodPhase::Succeeded {
                ("Succeeded", 0, "Completed")
            } else {
                ("Failed", 1, "Error")
            };
            Some(json!({"status": {
                "phase": phase,
                "startTime": started,
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                    {"type": "Ready", "status": "False", "lastTransitionTime": finished},
                ],
                "containerStatuses": [{
                    "name": "main", "image": "crucible.invalid/evaluation:test", "imageID": "",
                    "ready": false, "started": false, "restartCount": 0,
                    "state": {"terminated": {
                        "exitCode": code, "reason": reason,
                        "startedAt": started, "finishedAt": finished,
                    }},
                }],
            }}))
        }
    };
    if let Some(status) = status {
        api.patch_status(&p.name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap_or_else(|e| panic!("cannot write the status of pod {ns}/{}: {e}", p.name));
    }
    if p.hold {
        api.delete(&p.name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("cannot delete held pod {ns}/{}: {e}", p.name));
    }
}

async fn create_pods(
    client: &Client,
    namespaces: &[String],
    owners: &[(String, String)],
    pods: &[PodSpec],
) {
    futures::stream::iter(pods)
        .for_each_concurrent(32, |p| async move {
            create_pod(client, &namespaces[p.ns], &owners[p.ns], p).await
        })
        .await;
}

/// The failed attempt of `job` (see `JobSpec::failed_attempt`): a Failed pod
/// on the static node, controlled by the job.
async fn create_attempt(client: &Client, ns: &str, job: &Job, spec: &JobSpec) {
    let Some((labels, annotations)) = &spec.failed_attempt else {
        return;
    };
    let name = format!("{}-attempt", spec.job.name());
    let p = PodSpec {
        ns: spec.ns,
        name: name.clone(),
        labels: labels.clone(),
        annotations: annotations.clone(),
        phase: PodPhase::Failed,
        finished_ago: Duration::from_secs(600),
        controlled: false,
        hold: false,
    };
    create_pod(client, ns, &(String::new(), String::new()), &p).await;
    let owner = json!({"metadata": {"ownerReferences": [{
        "apiVersion": "batch/v1", "kind": "Job", "controller": true,
        "name": job.metadata.name.clone().unwrap(), "uid": job.metadata.uid.clone().unwrap(),
    }]}});
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&owner))
        .await
        .unwrap_or_else(|e| panic!("cannot own pod {ns}/{name}: {e}"));
}

/// Creates the jobs, waits until each settled (finished, or its pod running),
/// then makes the held ones (or their pods) terminating.
async fn create_jobs(client: &Client, namespaces: &[String], jobs: &[JobSpec]) {
    futures::stream::iter(jobs)
        .for_each_concurrent(16, |j| async move {
            let ns = &namespaces[j.ns];
            create_eval_job(client, ns, &j.job).await;
            let name = j.job.name();
            let t = Duration::from_secs(120);
            match j.job.outcome {
                Outcome::Succeed => {
                    let done = wait_job_condition(client, ns, &name, "Complete", t).await;
                    create_attempt(client, ns, &done, j).await;
                }
                Outcome::Fail => {
                    wait_job_condition(client, ns, &name, "Failed", t).await;
                }
                Outcome::KeepRunning => {
                    wait_job_pods_phase(client, ns, &name, "Running", t).await;
                }
            }
            let hold = json!({"metadata": {"finalizers": [HOLD]}});
            if j.hold_pod {
                let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
                let lp =
                    ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}"));
                for p in pods.list(&lp).await.unwrap() {
                    let pn = p.metadata.name.unwrap();
                    pods.patch(&pn, &PatchParams::default(), &Patch::Merge(&hold))
                        .await
                        .unwrap();
                    pods.delete(&pn, &DeleteParams::default()).await.unwrap();
                }
            }
            if j.hold {
                let api: Api<Job> = Api::namespaced(client.clone(), ns);
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&hold))
                    .await
                    .unwrap();
                api.delete(&name, &DeleteParams::background())
                    .await
                    .unwrap();
            }
        })
        .await;
}

// ------------------------------------------------------------------------------------------
// What is there
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pod,
    Job,
}

#[derive(Clone, Debug)]
struct Obj {
    kind: Kind,
    ns: String,
    name: String,
    uid: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    /// Pod phase, or for jobs Complete / Failed / Active.
    phase: String,
    created: i64,
    finished_at: Option<i64>,
    terminating: bool,
    /// The controller ownerReference: kind and uid.
    controller: Option<(String, String)>,
    /// The uids of every batch Job among the ownerReferences, controller or not.
    job_owners: Vec<String>,
}

impl Obj {
    fn finished(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed" | "Complete")
    }
    fn kept(&self) -> bool {
        self.labels.get(KEEP).is_some_and(|v| v == "true")
            || self.annotations.get(KEEP).is_some_and(|v| v == "true")
            // Until a time to come, or for good when it is no time at all.
            || self.annotations.get(KEEP_UNTIL).is_some_and(|v| {
                chrono::DateTime::parse_from_rfc3339(v).map_or(true, |t| t > chrono::Utc::now())
            })
    }
    fn describe(&self) -> String {
        let mut marks = vec![self.phase.clone()];
        if self.terminating {
            marks.push("terminating".into());
        }
        if self.kept() {
            marks.push("kept".into());
        }
        if let Some((k, _)) = &self.controller {
            marks.push(format!("controller {k}"));
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .filter(|(k, _)| {
                *k != RUN_LABEL
                    && !k.contains("kubernetes.io")
                    && *k != "controller-uid"
                    && *k != "job-name"
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{}/{:?}/{} [{}] {{{}}} created {}",
            self.ns,
            self.kind,
            self.name,
            marks.join(", "),
            labels.join(","),
            self.created
        )
    }
}

fn secs(t: &Time) -> i64 {
    t.0.as_second()
}

/// Every pod and job of the namespaces, by uid.
async fn snapshot(client: &Client, namespaces: &[String]) -> BTreeMap<String, Obj> {
    let mut out = BTreeMap::new();
    for ns in namespaces {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        for p in pods.list(&ListParams::default()).await.unwrap() {
            let st = p.status.clone().unwrap_or_default();
            let finished_at = st
                .container_statuses
                .iter()
                .flatten()
                .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
                .map(secs)
                .max();
            let o = obj(
                Kind::Pod,
                &p.metadata,
                st.phase.unwrap_or_default(),
                finished_at,
            );
            out.insert(o.uid.clone(), o);
        }
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        for j in jobs.list(&ListParams::default()).await.unwrap() {
            let st = j.status.clone().unwrap_or_default();
            let cond = |t: &str| {
                st.conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == t && c.status == "True")
                    .cloned()
            };
            let (phase, finished_at) = if let Some(c) = cond("Complete") {
                let at = st
                    .completion_time
                    .as_ref()
                    .or(c.last_transition_time.as_ref());
                ("Complete", at.map(secs))
            } else if let Some(c) = cond("Failed") {
                ("Failed", c.last_transition_time.as_ref().map(secs))
            } else {
                ("Active", None)
            };
            let o = obj(Kind::Job, &j.metadata, phase.into(), finished_at);
            out.insert(o.uid.clone(), o);
        }
    }
    out
}

fn obj(
    kind: Kind,
    m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    phase: String,
    finished_at: Option<i64>,
) -> Obj {
    Obj {
        kind,
        ns: m.namespace.clone().unwrap_or_default(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
        phase,
        created: m.creation_timestamp.as_ref().map(secs).unwrap_or_default(),
        finished_at,
        terminating: m.deletion_timestamp.is_some(),
        controller: m.owner_references.iter().flatten().find_map(|r| {
            let batch = r.api_version.starts_with("batch/");
            let kind = if r.kind == "Job" && !batch {
                format!("{}.{}", r.kind, r.api_version)
            } else {
                r.kind.clone()
            };
            (r.controller == Some(true)).then(|| (kind, r.uid.clone()))
        }),
        job_owners: m
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.kind == "Job" && r.api_version.starts_with("batch/"))
            .map(|r| r.uid.clone())
            .collect(),
    }
}

/// The objects of `before` that went: no longer there, or terminating since.
/// An object already terminating before may finish going on its own (the
/// garbage collector, the job controller): that is nobody's deletion, and the
/// plugin never deletes a terminating object, so it is left out.
fn gone(before: &BTreeMap<String, Obj>, after: &BTreeMap<String, Obj>) -> BTreeSet<String> {
    before
        .values()
        .filter(|o| match after.get(&o.uid) {
            None => !o.terminating,
            Some(a) => a.terminating && !o.terminating,
        })
        .map(|o| o.uid.clone())
        .collect()
}

// ------------------------------------------------------------------------------------------
// Command lines
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Req {
    Eq(&'static str, String),
    Ne(&'static str, &'static str),
    In(&'static str, Vec<&'static str>),
    NotIn(&'static str, Vec<&'static str>),
    Exists(&'static str),
    Absent(&'static str),
}

fn selector_matches(sel: &[Req], l: &BTreeMap<String, String>) -> bool {
    sel.iter().all(|r| match r {
        Req::Eq(k, v) => l.get(*k) == Some(v),
        Req::Ne(k, v) => l.get(*k).map(String::as_str) != Some(*v),
        Req::In(k, vs) => l.get(*k).is_some_and(|x| vs.contains(&x.as_str())),
        Req::NotIn(k, vs) => l.get(*k).is_none_or(|x| !vs.contains(&x.as_str())),
        Req::Exists(k) => l.contains_key(*k),
        Req::Absent(k) => !l.contains_key(*k),
    })
}

fn selector_text(sel: &[Req]) -> String {
    sel.iter()
        .map(|r| match r {
            Req::Eq(k, v) => format!("{k}={v}"),
            Req::Ne(k, v) => format!("{k}!={v}"),
            Req::In(k, vs) => format!("{k} in ({})", vs.join(",")),
            Req::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
            Req::Exists(k) => k.to_string(),
            Req::Absent(k) => format!("!{k}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn app_evaluation() -> Req {
    Req::Eq("app", "evaluation".into())
}

/// `-l` choices (None: the default, app=evaluation).
fn selector_choices() -> Vec<Option<Vec<Req>>> {
    vec![
        None,
        None,
        None,
        Some(vec![app_evaluation(), Req::Eq("team", "red".into())]),
        Some(vec![Req::In("team", vec!["red", "blue"])]),
        Some(vec![app_evaluation(), Req::Absent("team")]),
        Some(vec![Req::Ne("app", "evaluation")]),
        Some(vec![Req::Exists(RUN_LABEL)]),
        Some(vec![app_evaluation(), Req::NotIn("test-id", vec!["ta"])]),
        Some(vec![Req::Eq("app", "other".into())]),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    None,
    Pods,
    Jobs,
    All,
}

#[derive(Clone, Debug)]
enum Older {
    /// Created at or before `cut` (a second inside a gap of creation times).
    Created { cut: i64 },
    /// Finished at or before `cut`.
    Finished { cut: i64 },
}

#[derive(Clone, Debug)]
struct Cmd {
    args: Vec<String>,
    /// Namespaces in scope.
    namespaces: Vec<String>,
    base: Vec<Req>,
    test_ids: Vec<String>,
    eval_ids: Vec<String>,
    older: Option<Older>,
    level: Level,
    include_running: bool,
    /// A test run's command line: `--stale-runs`, or `--guard RUN`.
    runs: Runs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Runs {
    None,
    Stale,
    Guard(String),
}

impl Cmd {
    fn line(&self) -> String {
        let mut s = String::from("kubectl crucible-clean");
        for a in &self.args {
            s.push(' ');
            if a.contains([' ', '!', '(']) {
                s.push_str(&format!("'{a}'"));
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Second cuts that lie in gaps of the creation times: objects created at or
/// before the cut are older than the `--older-than` derived from it, the
/// others younger, whatever the few seconds the plugin takes to start.
fn created_cuts(state: &BTreeMap<String, Obj>, now: i64) -> Vec<i64> {
    let times: BTreeSet<i64> = state.values().map(|o| o.created).collect();
    let times: Vec<i64> = times.into_iter().collect();
    let mut cuts = vec![];
    if let Some(first) = times.first() {
        cuts.push(first - 30); // nothing is that old
    }
    for w in times.windows(2) {
        if w[1] - w[0] >= MIN_GAP {
            cuts.push(w[0]);
        }
    }
    if let Some(last) = times.last() {
        if now - last >= MIN_GAP {
            cuts.push(*last);
        }
    }
    cuts
}

/// Command line number `k`: every eighth (from the fourth) cleans stale
/// runs, every eighth (from the seventh) is a guard whose parent is gone at
/// once; the others clean by labels, ids, age and levels.
fn random_command(
    k: usize,
    rng: &mut fastrand::Rng,
    state: &BTreeMap<String, Obj>,
    namespaces: &[String],
    run: &str,
) -> Cmd {
    match k % 8 {
        3 => run_command(rng, namespaces, run, Runs::Stale),
        6 => {
            let r = pick(rng, &runs::run_ids(run)).clone();
            run_command(rng, namespaces, run, Runs::Guard(r))
        }
        _ => plain_command(rng, state, namespaces, run),
    }
}

/// `--stale-runs` (in one namespace or all) or `--guard RUN -n NS`, with the
/// default selector or one of `selector_choices`.
fn run_command(rng: &mut fastrand::Rng, namespaces: &[String], run: &str, mode: Runs) -> Cmd {
    let mut args: Vec<String> = vec![];
    let all_namespaces = mode == Runs::Stale && rng.u32(..100) < 40;
    let chosen = if rng.bool() {
        None
    } else {
        pick(rng, &selector_choices()).clone()
    };
    let (scope, base) = if all_namespaces {
        args.push("-A".into());
        let mut base = chosen.unwrap_or_else(|| vec![app_evaluation()]);
        base.retain(|r| !matches!(r, Req::Exists(RUN_LABEL)));
        base.push(Req::Eq(RUN_LABEL, run.to_string()));
        args.extend(["-l".into(), selector_text(&base)]);
        (namespaces.to_vec(), base)
    } else {
        let ns = pick(rng, namespaces).clone();
        args.extend(["-n".into(), ns.clone()]);
        let base = match chosen {
            Some(sel) => {
                args.extend(["-l".into(), selector_text(&sel)]);
                sel
            }
            None => vec![app_evaluation()],
        };
        (vec![ns], base)
    };
    match &mode {
        Runs::Stale => args.extend(["--stale-runs".into(), "--yes".into()]),
        Runs::Guard(r) => args.extend(["--guard".into(), r.clone()]),
        Runs::None => unreachable!(),
    }
    args.extend(["-o".into(), "json".into()]);
    Cmd {
        args,
        namespaces: scope,
        base,
        test_ids: vec![],
        eval_ids: vec![],
        older: None,
        level: Level::All,
        include_running: true,
        runs: mode,
    }
}

fn plain_command(
    rng: &mut fastrand::Rng,
    state: &BTreeMap<String, Obj>,
    namespaces: &[String],
    run: &str,
) -> Cmd {
    let mut args: Vec<String> = vec![];
    let all_namespaces = rng.u32(..100) < 20;
    let chosen = pick(rng, &selector_choices()).clone();
    let (scope, base) = if all_namespaces {
        args.push("-A".into());
        let mut base = chosen.unwrap_or_else(|| vec![app_evaluation()]);
        base.retain(|r| !matches!(r, Req::Exists(RUN_LABEL)));
        base.push(Req::Eq(RUN_LABEL, run.to_string()));
        args.extend(["-l".into(), selector_text(&base)]);
        (namespaces.to_vec(), base)
    } else {
        let ns = pick(rng, namespaces).clone();
        args.extend(["-n".into(), ns.clone()]);
        let base = match chosen {
            Some(sel) => {
                args.extend(["-l".into(), selector_text(&sel)]);
                sel
            }
            None => vec![app_evaluation()],
        };
        (vec![ns], base)
    };

    let (mut ids, mut evals, mut age, all) = (
        rng.u32(..100) < 45,
        rng.u32(..100) < 20,
        rng.u32(..100) < 45,
        rng.u32(..100) < 15,
    );
    if !(ids || evals || age || all) {
        match rng.u32(..3) {
            0 => ids = true,
            1 => evals = true,
            _ => age = true,
        }
    }
    let mut test_ids = vec![];
    if ids {
        let n = 1 + rng.usize(..2);
        let mut pool = vec!["ta", "tb", "tc", "tz"];
        rng.shuffle(&mut pool);
        for t in &pool[..n] {
            test_ids.push(t.to_string());
            args.extend(["--test-id".into(), t.to_string()]);
        }
    }
    let mut eval_ids = vec![];
    if evals {
        let present: BTreeSet<&String> = state
            .values()
            .filter_map(|o| o.labels.get("eval-id"))
            .collect();
        let present: Vec<&String> = present.into_iter().collect();
        for _ in 0..2 + rng.usize(..6) {
            let e = if present.is_empty() || rng.u32(..10) == 0 {
                "e-none".to_string()
            } else {
                pick(rng, &present).to_string()
            };
            if !eval_ids.contains(&e) {
                args.extend(["--eval-id".into(), e.clone()]);
                eval_ids.push(e);
            }
        }
    }
    let now = now_secs();
    let mut older = None;
    if age {
        let cuts = created_cuts(state, now);
        if rng.u32(..100) < 65 && !cuts.is_empty() {
            // Mostly a cut between objects, now and then one before them all.
            let cut = if cuts.len() > 1 && rng.u32(..100) < 85 {
                *pick(rng, &cuts[1..])
            } else {
                cuts[0]
            };
            // The plugin's clock reads at least `now`, at most a few seconds
            // later: its cut falls in [cut + 4, cut + 9], inside the gap.
            let x = now - (cut + 4);
            args.extend(["--older-than".into(), format!("{x}s")]);
            if rng.bool() {
                args.extend(["--age-from".into(), "created".into()]);
            }
            older = Some(Older::Created { cut });
        } else {
            let (text, x) = *pick(
                rng,
                &[
                    ("45m", 2_700),
                    ("2h", 7_200),
                    ("4h", 14_400),
                    ("1d", 86_400),
                ],
            );
            args.extend(["--older-than".into(), text.into()]);
            args.extend(["--age-from".into(), "finished".into()]);
            older = Some(Older::Finished { cut: now - x });
        }
    }
    if all {
        args.push("--all".into());
    }
    let level = weighted(
        rng,
        &[
            (40, Level::Pods),
            (20, Level::Jobs),
            (35, Level::All),
            (5, Level::None),
        ],
    );
    let level_name = match level {
        Level::None => "none",
        Level::Pods => "pods",
        Level::Jobs => "jobs",
        Level::All => "all",
    };
    if level != Level::Pods || rng.bool() {
        args.extend(["--level".into(), level_name.into()]);
    }
    let include_running = rng.u32(..100) < 25;
    if include_running {
        args.push("--include-running".into());
    }
    args.extend(["--yes".into(), "-o".into(), "json".into()]);
    Cmd {
        args,
        namespaces: scope,
        base,
        test_ids,
        eval_ids,
        older,
        level,
        include_running,
        runs: Runs::None,
    }
}

// ------------------------------------------------------------------------------------------
// The model (design.md §3–4), written without looking at how src/ decides
// ------------------------------------------------------------------------------------------

/// What the model says a command does.
#[derive(Debug, Default)]
struct Expected {
    /// The uids that must go: what the command deletes itself, and the pods
    /// of the jobs it deletes (background cascade).
    gone: BTreeSet<String>,
    /// Selected objects that a guard keeps, by guard.
    guards: BTreeMap<&'static str, usize>,
}

/// What a command line does to `state`, with the run Leases `leases` as
/// they stand at `now` (seconds): the exit code it must end with, and what
/// must go.
fn expected(
    state: &BTreeMap<String, Obj>,
    leases: &[runs::SeenLease],
    now: i64,
    cmd: &Cmd,
) -> (i32, Expected) {
    match &cmd.runs {
        // A second guard of a live run is refused; nothing is deleted.
        Runs::Guard(r) if runs::guarded(leases, &cmd.namespaces[0], r, now) => {
            (3, Expected::default())
        }
        Runs::Guard(r) => {
            let ns = cmd.namespaces[0].clone();
            let runs = [((ns, r.clone()), i64::MIN)].into_iter().collect();
            (0, expected_gone(state, cmd, Some(&runs)))
        }
        Runs::Stale => {
            let runs = runs::stale(leases, &cmd.namespaces, now);
            (0, expected_gone(state, cmd, Some(&runs)))
        }
        Runs::None => (0, expected_gone(state, cmd, None)),
    }
}

/// `runs`: for a test run's command line, the (namespace, run) pairs it
/// cleans and since when (the second of the Lease's creation) objects are
/// the run's.
fn expected_gone(
    state: &BTreeMap<String, Obj>,
    cmd: &Cmd,
    runs: Option<&BTreeMap<(String, String), i64>>,
) -> Expected {
    let jobs: BTreeMap<&str, &Obj> = state
        .values()
        .filter(|o| o.kind == Kind::Job)
        .map(|o| (o.uid.as_str(), o))
        .collect();
    // The living Job that controls a pod (a controller that is gone, or not a
    // Job, makes the pod a bare pod).
    let owner_job = |p: &Obj| -> Option<&Obj> {
        let (kind, uid) = p.controller.as_ref()?;
        if kind != "Job" {
            return None;
        }
        jobs.get(uid.as_str()).copied()
    };
    // A job's pods: every pod with an ownerReference to it, controller or
    // not (the garbage collector takes each with the job).
    let mut pods_of: BTreeMap<&str, Vec<&Obj>> = BTreeMap::new();
    for p in state.values().filter(|o| o.kind == Kind::Pod) {
        for j in p.job_owners.iter().filter_map(|u| jobs.get(u.as_str())) {
            pods_of.entry(j.uid.as_str()).or_default().push(p);
        }
    }

    let is_unit = |o: &Obj| match cmd.level {
        Level::None => false,
        Level::Pods => o.kind == Kind::Pod,
        Level::Jobs => o.kind == Kind::Job,
        // A job with its pods, or a pod without a living owner job.
        Level::All => o.kind == Kind::Job || owner_job(o).is_none(),
    };
    let is_selected = |o: &Obj| {
        cmd.namespaces.contains(&o.ns)
            && selector_matches(&cmd.base, &o.labels)
            && (cmd.test_ids.is_empty()
                || o.labels
                    .get("test-id")
                    .is_some_and(|t| cmd.test_ids.contains(t)))
            && (cmd.eval_ids.is_empty()
                || o.labels
                    .get("eval-id")
                    .is_some_and(|e| cmd.eval_ids.contains(e)))
            && match &cmd.older {
                None => true,
                Some(Older::Created { cut }) => o.created <= *cut,
                Some(Older::Finished { cut }) => o.finished_at.is_some_and(|f| f <= *cut),
            }
            && runs.is_none_or(|runs| {
                o.labels.get(runs::RUN_KEY).is_some_and(|r| {
                    runs.get(&(o.ns.clone(), r.clone()))
                        .is_some_and(|since| o.created >= *since)
                })
            })
    };
    // Ok, or the guard that keeps a selected object.
    let may_go = |o: &Obj| -> Result<(), &'static str> {
        if o.terminating {
            return Err("terminating");
        }
        if o.kept() {
            return Err("kept");
        }
        if !o.finished() && !cmd.include_running {
            return Err("unfinished");
        }
        // Last, so that the tally counts them only where they alone decide.
        match o.kind {
            Kind::Pod => {
                // Never a pod of a job that has not finished, not even with
                // --include-running (the job controller would replace it).
                if owner_job(o).is_some_and(|j| !j.finished()) {
                    return Err("pod of an unfinished job");
                }
                // A kept job keeps its pods, controller or not.
                let owners = o.job_owners.iter().filter_map(|u| jobs.get(u.as_str()));
                if owners.clone().any(|j| j.kept()) {
                    return Err("pod of a kept job");
                }
            }
            Kind::Job => {
                // A kept pod keeps its job.
                let pods = pods_of.get(o.uid.as_str());
                if pods.is_some_and(|ps| ps.iter().any(|p| p.kept())) {
                    return Err("job with a kept pod");
                }
            }
        }
        Ok(())
    };
    let mut out = Expected::default();
    for o in state.values() {
        if !(is_unit(o) && is_selected(o)) {
            continue;
        }
        match may_go(o) {
            Err(guard) => *out.guards.entry(guard).or_default() += 1,
            Ok(()) => {
                out.gone.insert(o.uid.clone());
                if o.kind == Kind::Job {
                    for p in pods_of.get(o.uid.as_str()).into_iter().flatten() {
                        if !p.terminating {
                            out.gone.insert(p.uid.clone());
                        }
                    }
                }
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// The test
// ------------------------------------------------------------------------------------------

/// Ties about 20 bare pods (no controller, deletes not held) each to a job of
/// its namespace by a non-controller ownerReference: the garbage collector
/// takes them with the job all the same.
async fn tie_to_jobs(client: &Client, rng: &mut fastrand::Rng, state: &BTreeMap<String, Obj>) {
    let jobs: Vec<&Obj> = state.values().filter(|o| o.kind == Kind::Job).collect();
    let bare: Vec<&Obj> = state
        .values()
        .filter(|o| {
            o.kind == Kind::Pod
                && o.controller.is_none()
                && o.job_owners.is_empty()
                && !o.terminating
                && !o.labels.contains_key(runs::SLOW)
        })
        .collect();
    let mut tied = 0;
    while tied < 20 {
        let p = pick(rng, &bare);
        let mine: Vec<&&Obj> = jobs.iter().filter(|j| j.ns == p.ns).collect();
        if mine.is_empty() {
            continue;
        }
        let j = pick(rng, &mine);
        let patch = json!({"metadata": {"ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "Job", "name": j.name, "uid": j.uid,
        }]}});
        Api::<Pod>::namespaced(client.clone(), &p.ns)
            .patch(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        tied += 1;
    }
}

async fn wait_pods_gone(client: &Client, ns: &str, names: &[String]) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    for n in names {
        wait_gone(&api, n, DEFAULT_TIMEOUT).await;
    }
}

/// Removes the test's finalizers and everything in the namespaces (pods on the
/// unmanaged node would otherwise stay terminating for ever).
async fn clean_up(client: &Client, namespaces: &[String]) {
    let drop_finalizers = json!({"metadata": {"finalizers": null}});
    for ns in namespaces {
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
        for p in pods.list(&ListParams::default()).await.unwrap() {
            if p.metadata.finalizers.is_some_and(|f| !f.is_empty()) {
                let _ = pods
                    .patch(
                        &p.metadata.name.unwrap(),
                        &PatchParams::default(),
                        &Patch::Merge(&drop_finalizers),
                    )
                    .await;
            }
        }
        for j in jobs.list(&ListParams::default()).await.unwrap() {
            if j.metadata.finalizers.is_some_and(|f| !f.is_empty()) {
                let _ = jobs
                    .patch(
                        &j.metadata.name.unwrap(),
                        &PatchParams::default(),
                        &Patch::Merge(&drop_finalizers),
                    )
                    .await;
            }
        }
        let _ = jobs
            .delete_collection(&DeleteParams::background(), &ListParams::default())
            .await;
        let force = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        let _ = pods.delete_collection(&force, &ListParams::default()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_cleanups_delete_exactly_what_the_model_allows() {
    let seed = seed();
    eprintln!("decoys: seed {seed} (rerun with {SEED_ENV}={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let t_start = Instant::now();

    let mut spaces = vec![];
    for i in 0..NAMESPACES {
        spaces.push(TestNamespace::new(&format!("decoys-{i}")).await);
    }
    let namespaces: Vec<String> = spaces.iter().map(|n| n.name().to_string()).collect();
    let run = unique_name("run");
    let client = admin_client().await;
    let mut owners = vec![];
    for ns in &namespaces {
        owners.push(owner_config_map(&client, ns).await);
    }

    // Everything to create, decided up front from the seed.
    let pods: Vec<PodSpec> = (0..BARE_PODS)
        .map(|i| {
            let ns = rng.usize(..NAMESPACES);
            random_pod(&mut rng, &run, ns, &format!("bare-{i:04}"))
        })
        .collect();
    let jobs: Vec<JobSpec> = (0..JOBS)
        .map(|i| {
            let ns = rng.usize(..NAMESPACES);
            random_job(&mut rng, &run, ns, &format!("j{i}"))
        })
        .collect();
    let split_pods = BARE_PODS * 55 / 100;
    let split_jobs = JOBS * 55 / 100;

    // Wave 1.
    let t0 = Instant::now();
    tokio::join!(
        create_pods(&client, &namespaces, &owners, &pods[..split_pods]),
        create_jobs(&client, &namespaces, &jobs[..split_jobs]),
    );
    let wave1 = snapshot(&client, &namespaces).await;
    let newest = wave1.values().map(|o| o.created).max().unwrap_or(0);
    eprintln!(
        "decoys: wave 1, {} objects in {:.1?}",
        wave1.len(),
        t0.elapsed()
    );
    // The runs' Leases: wave-1 objects of a run predate them.
    runs::make_leases(&client, &namespaces, &run).await;
    let wait = (newest + WAVE_GAP + 1 - now_secs()).max(0);
    tokio::time::sleep(Duration::from_secs(wait as u64)).await;

    // Wave 2, with same-name recreations of wave-1 objects.
    let t0 = Instant::now();
    let mut recreate: Vec<PodSpec> = vec![];
    for p in pods[..split_pods].iter().filter(|p| !p.hold) {
        if recreate.len() < 30 && rng.u32(..100) < 8 {
            let fresh = random_pod(&mut rng, &run, p.ns, &p.name);
            recreate.push(PodSpec {
                hold: false,
                ..fresh
            });
        }
    }
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    for p in &recreate {
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespaces[p.ns]);
        api.delete(&p.name, &force).await.unwrap();
    }
    for p in &recreate {
        wait_pods_gone(&client, &namespaces[p.ns], std::slice::from_ref(&p.name)).await;
    }
    let recreate_jobs: Vec<JobSpec> = jobs[..split_jobs]
        .iter()
        .filter(|j| {
            !j.hold
                && !j.hold_pod
                && j.failed_attempt.is_none()
                && j.job.outcome != Outcome::KeepRunning
        })
        .take(2)
        .map(|j| random_job(&mut rng, &run, j.ns, &j.job.eval_id))
        .collect();
    for j in &recreate_jobs {
        let api: Api<Job> = Api::namespaced(client.clone(), &namespaces[j.ns]);
        api.delete(&j.job.name(), &DeleteParams::background())
            .await
            .unwrap();
        wait_gone(&api, &j.job.name(), DEFAULT_TIMEOUT).await;
    }
    let mut wave2_jobs = jobs[split_jobs..].to_vec();
    wave2_jobs.extend(recreate_jobs.iter().cloned());
    let mut wave2_pods = pods[split_pods..].to_vec();
    wave2_pods.extend(recreate.iter().cloned());
    tokio::join!(
        create_pods(&client, &namespaces, &owners, &wave2_pods),
        create_jobs(&client, &namespaces, &wave2_jobs),
    );
    tie_to_jobs(&client, &mut rng, &snapshot(&client, &namespaces).await).await;
    let slow = runs::SlowDeletes::install(&client, &namespaces, &namespaces[0]).await;
    let mut state = snapshot(&client, &namespaces).await;
    eprintln!(
        "decoys: wave 2 in {:.1?} ({} pods and {} jobs recreated under the same name)",
        t0.elapsed(),
        recreate.len(),
        recreate_jobs.len()
    );
    let count = |s: &BTreeMap<String, Obj>, k: Kind| s.values().filter(|o| o.kind == k).count();
    let total = state.len();
    eprintln!(
        "decoys: {total} objects ({} pods, {} jobs) in {} namespaces, run label {RUN_LABEL}={run}; \
         {} terminating, {} kept, {} unfinished; {} of test runs, {} tied to a job without \
         being its controller's, {} of manual-selector jobs, {} failed attempts of jobs that \
         succeeded, {} whose deletes are held in admission; set up in {:.1?}",
        count(&state, Kind::Pod),
        count(&state, Kind::Job),
        NAMESPACES,
        state.values().filter(|o| o.terminating).count(),
        state.values().filter(|o| o.kept()).count(),
        state.values().filter(|o| !o.finished()).count(),
        state.values().filter(|o| o.labels.contains_key(runs::RUN_KEY)).count(),
        state
            .values()
            .filter(|o| !o.job_owners.is_empty() && o.controller.is_none())
            .count(),
        state
            .values()
            .filter(|o| o.labels.contains_key("manual-selector"))
            .count(),
        state.values().filter(|o| o.name.ends_with("-attempt")).count(),
        state.values().filter(|o| o.labels.contains_key(runs::SLOW)).count(),
        t_start.elapsed()
    );
    assert!(total >= 1000, "only {total} objects");

    let home = tempfile::tempdir().unwrap();
    let mut failures: Vec<String> = vec![];
    let mut lost_total = 0;
    let mut guard_totals: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut deleted_total = 0;
    let mut marked_total = 0;
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    for k in 0..COMMANDS {
        let cmd = random_command(k, &mut rng, &state, &namespaces, &run);
        *kinds
            .entry(match cmd.runs {
                Runs::None => "selection",
                Runs::Stale => "--stale-runs",
                Runs::Guard(_) => "--guard",
            })
            .or_default() += 1;
        let leases = runs::leases(&client, &namespaces).await;
        let now = now_secs();
        // While the command runs: once one of its deletes is held in
        // admission, about half the held pods of its scope are marked keep.
        slow.drain();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let marking = runs::mark_while_held(
            &client,
            &slow,
            &state,
            &cmd.namespaces,
            rng.u64(..),
            done.clone(),
        );
        let t0 = Instant::now();
        let mut plugin = PluginCmd::with_home(home.path());
        plugin
            .on_cluster()
            .args(&cmd.args)
            .timeout(Duration::from_secs(120));
        let running = tokio::task::spawn_blocking(move || {
            let out = plugin.output();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            out
        });
        let (marked, out) = tokio::join!(marking, running);
        let out = out.unwrap();
        let took = t0.elapsed();
        marked_total += marked.len();
        let mut marked_state = state.clone();
        for uid in &marked {
            if let Some(o) = marked_state.get_mut(uid) {
                o.labels.insert(KEEP.into(), "true".into());
            }
        }
        let (code, model) = expected(&marked_state, &leases, now, &cmd);
        let expected = &model.gone;
        for (g, n) in &model.guards {
            *guard_totals.entry(*g).or_default() += n;
        }
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let report: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();

        // Let the garbage collector take the pods of deleted jobs.
        let settle = Instant::now();
        let mut last_change = Instant::now();
        let mut seen: Option<BTreeSet<String>> = None;
        let (after, went) = loop {
            let after = snapshot(&client, &namespaces).await;
            let went = gone(&state, &after);
            if went.is_superset(expected)
                || settle.elapsed() > Duration::from_secs(30)
                || (seen.as_ref() == Some(&went) && last_change.elapsed() > Duration::from_secs(6))
            {
                break (after, went);
            }
            if seen.as_ref() != Some(&went) {
                seen = Some(went);
                last_change = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        let lost: Vec<&String> = went.difference(expected).collect();
        let missed: Vec<&String> = expected.difference(&went).collect();
        lost_total += lost.len();
        deleted_total += went.len();
        let ok = out.status.code() == Some(code) && lost.is_empty() && missed.is_empty();
        eprintln!(
            "decoys: [{}] #{k:02} {} -> exit {:?} (expected {code}) in {took:.1?}; expected {} gone, {} went, {} lost, {} missed; \
             {} marked keep while held; guards held {:?}",
            if ok { "ok" } else { "FAIL" },
            cmd.line(),
            out.status.code(),
            expected.len(),
            went.len(),
            lost.len(),
            missed.len(),
            marked.len(),
            model.guards
        );
        if !ok {
            let mut msg = format!(
                "#{k:02} {}\n  exit {:?}, stderr: {}",
                cmd.line(),
                out.status.code(),
                stderr.trim_end()
            );
            let describe = |uids: &[&String], what: &str, msg: &mut String| {
                if !uids.is_empty() {
                    msg.push_str(&format!("\n  {what} ({}):", uids.len()));
                    for u in uids.iter().take(25) {
                        msg.push_str(&format!("\n    {}", state[*u].describe()));
                    }
                    if uids.len() > 25 {
                        msg.push_str(&format!("\n    … and {} more", uids.len() - 25));
                    }
                }
            };
            describe(
                &lost,
                "gone but the model keeps them (decoys lost)",
                &mut msg,
            );
            describe(
                &missed,
                "the model deletes them but they are still there",
                &mut msg,
            );
            if let Some(r) = &report {
                let reported =
                    names_where(r, |i| i["result"] == "deleted" || i["result"] == "gone");
                msg.push_str(&format!(
                    "\n  the report says deleted/gone: {} objects; summary {}",
                    reported.len(),
                    r["summary"]
                ));
            }
            failures.push(msg);
        }

        // Now and then, recreate some of what went under the same names.
        state = after;
        if k % 3 == 2 {
            let present: BTreeSet<(String, String)> = state
                .values()
                .map(|o| (o.ns.clone(), o.name.clone()))
                .collect();
            let mut refill: Vec<PodSpec> = vec![];
            for p in &pods {
                let absent = !present.contains(&(namespaces[p.ns].clone(), p.name.clone()));
                if absent && refill.len() < 30 && rng.u32(..100) < 15 {
                    refill.push(random_pod(&mut rng, &run, p.ns, &p.name));
                }
            }
            if !refill.is_empty() {
                create_pods(&client, &namespaces, &owners, &refill).await;
                state = snapshot(&client, &namespaces).await;
                eprintln!(
                    "decoys: recreated {} deleted pods under their names",
                    refill.len()
                );
            }
        }
    }
    eprintln!(
        "decoys: seed {seed}, {total} objects, {COMMANDS} command lines ({kinds:?}), {deleted_total} objects went, \
         {marked_total} marked keep while their deletes were held, \
         {lost_total} decoys lost, {} command lines disagreed with the model; {:.1?} in all; \
         selected objects held by each guard over all command lines: {guard_totals:?}",
        failures.len(),
        t_start.elapsed()
    );
    drop(slow);
    clean_up(&client, &namespaces).await;
    assert_eq!(
        lost_total,
        0,
        "decoys lost (seed {seed}):\n{}",
        failures.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {COMMANDS} command lines disagreed with the model (seed {seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
