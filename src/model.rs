//! The domain records every stage shares: a compact `Candidate` per object
//! (never the whole object), and the `Inventory` snapshot they come in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Label and annotation that protect an object from any cleanup.
pub const KEEP_KEY: &str = "crucible-clean/keep";
pub const TEST_ID: &str = "test-id";
pub const EVAL_ID: &str = "eval-id";
/// Namespaces that are never cleaned.
pub const PROTECTED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    Pod,
    Job,
}

impl Kind {
    /// The `kubectl -o name` prefix.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Job => "job.batch",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Job => "jobs",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Phase {
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
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Complete)
    }
    pub fn is_failure(self) -> bool {
        self == Phase::Failed
    }
}

/// The controller that owns an object (ownerReferences[controller=true]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// One pod or job, reduced to what selection, planning and reporting need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub phase: Phase,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub test_id: Option<String>,
    pub eval_id: Option<String>,
    /// Labels kept for client-side selector checks (policy rules, priority).
    pub labels: BTreeMap<String, String>,
    /// `crucible-clean/keep=true` as label or annotation.
    pub keep: bool,
    /// `deletionTimestamp` is set.
    pub terminating: bool,
    pub owner: Option<Owner>,
    /// What a non-terminal pod is charged in compute quota (`requests.cpu`,
    /// `limits.memory`…), in thousandths so the record stays `Eq`. Empty for
    /// finished pods and jobs: quota does not count them, so deleting them
    /// frees none of it.
    pub charges: BTreeMap<String, u64>,
}

impl Candidate {
    pub fn age(&self, now: DateTime<Utc>) -> chrono::Duration {
        now - self.created_at
    }

    pub fn display_name(&self) -> String {
        format!("{}/{}", self.kind.resource(), self.name)
    }

    /// The job that controls this pod, if any.
    pub fn owner_job(&self) -> Option<&Owner> {
        self.owner.as_ref().filter(|o| o.kind == "Job")
    }
}

/// What is known about the job that owns a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    Finished,
    Unfinished,
    /// The owner no longer exists: the pod is an orphan.
    Gone,
}

/// A ResourceQuota's figures, by resource name (`count/pods`, `pods`, `requests.cpu`…).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quota {
    pub namespace: String,
    pub name: String,
    pub hard: BTreeMap<String, f64>,
    pub used: BTreeMap<String, f64>,
}

/// The name of the budget `--capacity N` stands in for, where a namespace has
/// no ResourceQuota on `count/pods`.
pub const CAPACITY_QUOTA: &str = "--capacity";

impl Quota {
    /// A `count/pods` budget from `--capacity`, with the pods actually stored.
    pub fn capacity(namespace: &str, capacity: u64, stored_pods: u64) -> Self {
        Quota {
            namespace: namespace.to_string(),
            name: CAPACITY_QUOTA.to_string(),
            hard: BTreeMap::from([(crate::quota::COUNT_PODS.to_string(), capacity as f64)]),
            used: BTreeMap::from([(crate::quota::COUNT_PODS.to_string(), stored_pods as f64)]),
        }
    }
    pub fn is_capacity(&self) -> bool {
        self.name == CAPACITY_QUOTA
    }
}

/// A consistent snapshot of one or more namespaces.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub pods: Vec<Candidate>,
    pub jobs: Vec<Candidate>,
    /// State of every job that owns a listed pod, by job uid.
    pub owners: BTreeMap<String, OwnerState>,
    /// Jobs marked keep (listed ones and owners of listed pods): uid → name.
    /// Their pods are kept too.
    pub kept_jobs: BTreeMap<String, String>,
    /// For each job with a pod marked keep: job uid → that pod's name. Such
    /// a job is kept, since deleting it would take the pod with it.
    pub kept_pods: BTreeMap<String, String>,
    pub quotas: Vec<Quota>,
    pub taken_at: DateTime<Utc>,
}

impl Inventory {
    pub fn candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.jobs.iter().chain(self.pods.iter())
    }
}

#[cfg(test)]
pub mod fixtures {
    //! Hand-built candidates for unit tests of the pure stages.
    use super::*;
    use chrono::TimeZone;

    pub fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    pub fn pod(name: &str, phase: Phase, created: i64) -> Candidate {
        Candidate {
            kind: Kind::Pod,
            namespace: "crucible".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            phase,
            created_at: t(created),
            finished_at: phase.is_finished().then(|| t(created + 10)),
            test_id: None,
            eval_id: None,
            labels: BTreeMap::from([("app".to_string(), "evaluation".to_string())]),
            keep: false,
            terminating: false,
            owner: None,
            charges: BTreeMap::new(),
        }
    }

    pub fn job(name: &str, phase: Phase, created: i64) -> Candidate {
        Candidate {
            kind: Kind::Job,
            ..pod(name, phase, created)
        }
    }

    pub fn with_test(mut c: Candidate, test_id: &str) -> Candidate {
        c.test_id = Some(test_id.into());
        c.labels.insert(TEST_ID.into(), test_id.into());
        c
    }

    pub fn quota(name: &str, figures: &[(&str, f64, f64)]) -> Quota {
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

    pub fn labelled(mut c: Candidate, key: &str, value: &str) -> Candidate {
        c.labels.insert(key.into(), value.into());
        c
    }

    pub fn owned_by(mut c: Candidate, job: &Candidate) -> Candidate {
        c.owner = Some(Owner {
            kind: "Job".into(),
            name: job.name.clone(),
            uid: job.uid.clone(),
        });
        c
    }
}
