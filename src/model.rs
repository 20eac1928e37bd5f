//! The domain records every stage shares: a compact `Candidate` per object
//! (never the whole object), and the `Inventory` snapshot they come in.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) mod keep;
mod run;
pub(crate) use keep::{Keep, KEEP_KEY, KEEP_REASON_KEY, KEEP_UNTIL_KEY};
pub(crate) use run::{lease_name, GuardId, RunLease, StaleRun};

pub(crate) const TEST_ID: &str = "test-id";
pub(crate) const EVAL_ID: &str = "eval-id";
/// The label that ties an object to its test run (the pytest plugin adds it),
/// and the label of that run's guard Lease.
pub(crate) const RUN_ID: &str = "crucible-clean/run";
/// The quota resource that counts every stored pod.
pub(crate) const COUNT_PODS: &str = "count/pods";
/// Namespaces that are never cleaned.
pub(crate) const PROTECTED_NAMESPACES: [&str; 3] =
    ["kube-system", "kube-public", "kube-node-lease"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Kind {
    Pod,
    Job,
}

impl Kind {
    /// The `kubectl -o name` prefix.
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Job => "job.batch",
        }
    }
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Job => "jobs",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
    /// A job with neither Complete nor Failed condition.
    Active,
    /// A job with condition Complete=True.
    Complete,
}

impl Phase {
    pub(crate) fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Complete)
    }
}

/// An owner reference: the owner's API version and kind, name and uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Owner {
    /// `batch/v1`, `v1`, `batch.volcano.sh/v1alpha1`…: with the kind, what
    /// the owner is (a kind alone names no resource).
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) uid: String,
}

impl Owner {
    /// A Job of the `batch` API group (not another group's `Job`).
    pub(crate) fn is_job(&self) -> bool {
        self.kind == "Job" && self.api_version.split_once('/').map(|(g, _)| g) == Some("batch")
    }
}

/// The owner references that matter here, as the garbage collector sees
/// them: the controller (any kind), and every other reference to a batch
/// Job (deleting that job takes the object with it all the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Owners {
    pub(crate) controller: Option<Owner>,
    pub(crate) other_jobs: Vec<Owner>,
}

/// An object's labels, compactly: one allocation holding `key=value` lines
/// sorted by key (a label key never contains `=`, a value never a line
/// break), instead of a map of separately allocated strings. Objects carry a
/// handful of labels and there may be tens of thousands of objects, so a
/// lookup's scan is cheaper than a map's nodes.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Labels(Box<str>);

impl Labels {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .split('\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.split_once('=').unwrap_or((l, "")))
    }
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: &str, value: &str) {
        let mut all: BTreeMap<&str, &str> = self.iter().filter(|(k, _)| *k != key).collect();
        all.insert(key, value);
        *self = Labels::from_pairs(all);
    }
    #[cfg(test)]
    pub(crate) fn clear(&mut self) {
        *self = Labels::default();
    }
    fn from_pairs<'a>(sorted: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out = String::new();
        for (k, v) in sorted {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
        Labels(out.into_boxed_str())
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(m: &BTreeMap<String, String>) -> Self {
        Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// What a label selector is evaluated against.
pub(crate) trait LabelSet {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelSet for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl LabelSet for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// One pod or job, reduced to what selection, planning and reporting need.
/// Listed once and shared (`Arc`) by the plan and the report, never copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) kind: Kind,
    /// Shared by the records of one namespace (see `inventory::convert`).
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Box<str>,
    pub(crate) uid: Box<str>,
    /// `metadata.resourceVersion` when listed (empty when unknown): a delete
    /// from a plan file is pinned to the version that was checked.
    pub(crate) resource_version: Box<str>,
    pub(crate) phase: Phase,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// Labels kept for client-side selector checks (policy rules, priority).
    pub(crate) labels: Labels,
    /// What keeps it (`model::keep`): the marker, or `keep-until` and its
    /// time; whether that still holds is asked with the time of the question.
    pub(crate) keep: Keep,
    /// `deletionTimestamp` is set.
    pub(crate) terminating: bool,
    /// Boxed: most objects have none, and a record should stay small.
    pub(crate) owners: Option<Box<Owners>>,
    /// What a non-terminal pod is charged in compute quota (`requests.cpu`,
    /// `limits.memory`…), in thousandths so the record stays `Eq`. Empty for
    /// finished pods and jobs: quota does not count them, so deleting them
    /// frees none of it. A boxed slice: empty (no allocation) for most.
    pub(crate) charges: Box<[(String, u64)]>,
}

impl Candidate {
    pub(crate) fn age(&self, now: DateTime<Utc>) -> chrono::Duration {
        now - self.created_at
    }

    /// The `test-id` label.
    pub(crate) fn test_id(&self) -> Option<&str> {
        self.labels.get(TEST_ID)
    }

    /// The `eval-id` label.
    pub(crate) fn eval_id(&self) -> Option<&str> {
        self.labels.get(EVAL_ID)
    }

    pub(crate) fn display_name(&self) -> String {
        format!("{}/{}", self.kind.resource(), self.name)
    }

    /// The controller of this object, of any kind.
    pub(crate) fn controller(&self) -> Option<&Owner> {
        self.owners.as_deref()?.controller.as_ref()
    }

    /// The batch Job that controls this pod, if any: the job controller
    /// would replace the pod while the job runs.
    pub(crate) fn owner_job(&self) -> Option<&Owner> {
        self.controller().filter(|o| o.is_job())
    }

    /// Every batch Job among the owners, controller or not: the jobs whose
    /// delete takes this pod with it. The one set of a job's pods, for the
    /// keep marker, the archive and what a delete frees.
    pub(crate) fn job_owners(&self) -> impl Iterator<Item = &Owner> {
        let owners = self.owners.as_deref();
        owners
            .and_then(|o| o.controller.as_ref())
            .filter(|o| o.is_job())
            .into_iter()
            .chain(owners.into_iter().flat_map(|o| &o.other_jobs))
    }
}

/// What is known about the job that owns a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerState {
    Finished,
    Unfinished,
    /// The owner no longer exists: the pod is an orphan.
    Gone,
}

/// A ResourceQuota's figures, by resource name (`count/pods`, `pods`, `requests.cpu`…).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Quota {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) hard: BTreeMap<String, f64>,
    pub(crate) used: BTreeMap<String, f64>,
}

/// The name of the budget `--capacity N` stands in for, where a namespace has
/// no ResourceQuota on `count/pods`.
pub(crate) const CAPACITY_QUOTA: &str = "--capacity";

impl Quota {
    /// A `count/pods` budget from `--capacity`, with the pods actually stored.
    pub(crate) fn capacity(namespace: &str, capacity: u64, stored_pods: u64) -> Self {
        Quota {
            namespace: namespace.to_string(),
            name: CAPACITY_QUOTA.to_string(),
            hard: BTreeMap::from([(COUNT_PODS.to_string(), capacity as f64)]),
            used: BTreeMap::from([(COUNT_PODS.to_string(), stored_pods as f64)]),
        }
    }
    pub(crate) fn is_capacity(&self) -> bool {
        self.name == CAPACITY_QUOTA
    }
}

/// A consistent snapshot of one or more namespaces.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inventory {
    pub(crate) pods: Vec<Arc<Candidate>>,
    pub(crate) jobs: Vec<Arc<Candidate>>,
    /// State of every job that owns a listed pod, by job uid.
    pub(crate) owners: BTreeMap<String, OwnerState>,
    /// Jobs with a keep (listed ones and owners of listed pods): uid → name
    /// and keep. While it holds, their pods are kept too.
    pub(crate) kept_jobs: BTreeMap<String, (String, Keep)>,
    /// For each job with a pod that has a keep: job uid → the pod that is
    /// kept longest, and its keep. While it holds the job is kept, since
    /// deleting it would take the pod with it.
    pub(crate) kept_pods: BTreeMap<String, (String, Keep)>,
    pub(crate) quotas: Vec<Quota>,
    pub(crate) taken_at: DateTime<Utc>,
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Hand-built candidates for unit tests of the pure stages.
    use super::*;
    use chrono::TimeZone;

    /// Records as the inventory holds them.
    pub(crate) fn shared(v: Vec<Candidate>) -> Vec<Arc<Candidate>> {
        v.into_iter().map(Arc::new).collect()
    }

    pub(crate) fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    pub(crate) fn pod(name: &str, phase: Phase, created: i64) -> Candidate {
        Candidate {
            kind: Kind::Pod,
            namespace: "crucible".into(),
            name: name.into(),
            uid: format!("uid-{name}").into(),
            resource_version: "".into(),
            phase,
            created_at: t(created),
            finished_at: phase.is_finished().then(|| t(created + 10)),
            labels: Labels::from(&BTreeMap::from([(
                "app".to_string(),
                "evaluation".to_string(),
            )])),
            keep: Keep::NONE,
            terminating: false,
            owners: None,
            charges: Box::default(),
        }
    }

    pub(crate) fn job(name: &str, phase: Phase, created: i64) -> Candidate {
        Candidate {
            kind: Kind::Job,
            ..pod(name, phase, created)
        }
    }

    pub(crate) fn with_test(mut c: Candidate, test_id: &str) -> Candidate {
        c.labels.insert(TEST_ID, test_id);
        c
    }

    pub(crate) fn quota(name: &str, figures: &[(&str, f64, f64)]) -> Quota {
        Quota {
            namespace: "crucible".into(),
            name: name.into(),
            hard: figures
                .iter()
                .map(|(r, h, _)| (r.to_string(), *h))
                .collect(),
            used: figures
                .iter()
                .map(|(r, _, u)| (r.to_string(), *u))
                .collect(),
        }
    }

    pub(crate) fn labelled(mut c: Candidate, key: &str, value: &str) -> Candidate {
        c.labels.insert(key, value);
        c
    }

    pub(crate) fn owned_by(mut c: Candidate, job: &Candidate) -> Candidate {
        c.owners = Some(Box::new(Owners {
            controller: Some(job_ref(job)),
            other_jobs: vec![],
        }));
        c
    }

    /// A reference to `job` as a batch Job.
    pub(crate) fn job_ref(job: &Candidate) -> Owner {
        Owner {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            name: job.name.to_string(),
            uid: job.uid.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_every_pair_sorted_and_answer_lookups() {
        let map: BTreeMap<String, String> = [
            ("test-id", "run-a"),
            ("app", "evaluation"),
            ("batch.kubernetes.io/job-name", "evaluation-job-1"),
            ("empty", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut labels = Labels::from(&map);
        assert_eq!(labels.get("test-id"), Some("run-a"));
        assert_eq!(labels.get("empty"), Some(""));
        assert_eq!(labels.get("test"), None, "a prefix of a key is not the key");
        assert_eq!(labels.get("run-a"), None, "a value is not a key");
        let pairs: Vec<(&str, &str)> = labels.iter().collect();
        let expected: Vec<(&str, &str)> =
            map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, expected);
        labels.insert("test-id", "run-b");
        labels.insert("zz", "last");
        assert_eq!(labels.get("test-id"), Some("run-b"));
        assert_eq!(labels.iter().count(), 5);
        assert_eq!(Labels::default().iter().count(), 0);
        let s =
            crate::selector::Selector::parse("app=evaluation,test-id in (run-b),!gone").unwrap();
        assert!(s.matches(&labels));
        labels.clear();
        assert!(!s.matches(&labels));
    }
}
#[cfg(test)]
mod size {
    /// Tens of thousands of records may be held at once: a field added
    /// carelessly (an inline map, a copied string) shows here first.
    #[test]
    fn a_record_stays_small() {
        assert!(std::mem::size_of::<super::Candidate>() <= 136);
    }
}
