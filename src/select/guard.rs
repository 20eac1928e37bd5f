//! Guards: what no strategy may override — the keep marker (across
//! ownership), terminating objects, pods of unfinished jobs, unfinished
//! objects without `--include-running`, protected namespaces, retention.
//! Budgeted strategies ask them to count only what may really go; the plan
//! applies them to every selected object. Pure.

use std::collections::BTreeMap;

use crate::model::{Candidate, Inventory, Kind, OwnerState, KEEP_KEY, PROTECTED_NAMESPACES};

/// Why a guard stopped an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protection {
    Kept,
    /// A job one of whose pods is marked keep: the cascade would take it.
    KeptPod(String),
    /// A pod whose job is marked keep.
    KeptJob(String),
    Terminating,
    OwnerRunning(String),
    NotFinished,
    ProtectedNamespace,
    /// Held back by retention (`--keep-last`, `--keep-succeeded-for`…), with the reason.
    Retained(String),
}

impl Protection {
    /// A keep marker (the object's, its pod's or its job's) rather than a
    /// guard of the moment: reported `kept`, not `skipped`.
    pub(crate) fn is_keep(&self) -> bool {
        matches!(
            self,
            Protection::Kept | Protection::KeptPod(_) | Protection::KeptJob(_)
        )
    }
    pub(crate) fn reason(&self) -> String {
        match self {
            Protection::Kept => format!("{KEEP_KEY}=true"),
            Protection::KeptPod(pod) => format!("its pod {pod} is marked {KEEP_KEY}=true"),
            Protection::KeptJob(job) => format!("its job {job} is marked {KEEP_KEY}=true"),
            Protection::Terminating => "terminating".into(),
            Protection::OwnerRunning(job) => format!("job {job} has not finished"),
            Protection::NotFinished => "not finished (add --include-running)".into(),
            Protection::ProtectedNamespace => "protected namespace".into(),
            Protection::Retained(why) => why.clone(),
        }
    }
}

/// The guard that stops a candidate, if any. Strategies that budget
/// deletions (watermark) call this to count only what may really go.
pub(crate) fn protection(
    c: &Candidate,
    inv: &Inventory,
    include_running: bool,
) -> Option<Protection> {
    if PROTECTED_NAMESPACES.contains(&&*c.namespace) {
        return Some(Protection::ProtectedNamespace);
    }
    if c.terminating {
        return Some(Protection::Terminating);
    }
    if c.keep {
        return Some(Protection::Kept);
    }
    match c.kind {
        Kind::Job => {
            if let Some(pod) = inv.kept_pods.get(&*c.uid) {
                return Some(Protection::KeptPod(pod.clone()));
            }
        }
        Kind::Pod => {
            if let Some(job) = c.owner_job().and_then(|o| inv.kept_jobs.get(&o.uid)) {
                return Some(Protection::KeptJob(job.clone()));
            }
        }
    }
    if c.kind == Kind::Pod {
        if let Some(owner) = c.owner_job() {
            // Unknown owner state counts as running: the safe side.
            if inv.owners.get(&owner.uid) != Some(&OwnerState::Finished)
                && inv.owners.get(&owner.uid) != Some(&OwnerState::Gone)
            {
                return Some(Protection::OwnerRunning(owner.name.clone()));
            }
        }
    }
    if !c.phase.is_finished() && !include_running {
        return Some(Protection::NotFinished);
    }
    None
}

/// What the guards need besides the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Guards {
    pub(crate) include_running: bool,
    /// Objects retention holds back, by uid, with the reason (see `select::retention`).
    pub(crate) retained: BTreeMap<String, String>,
}

impl Guards {
    #[cfg(test)]
    pub(crate) fn new(include_running: bool) -> Self {
        Guards {
            include_running,
            retained: BTreeMap::new(),
        }
    }
}

/// `protection`, then retention: the full answer to "may this go now?".
pub(crate) fn guard(c: &Candidate, inv: &Inventory, guards: &Guards) -> Option<Protection> {
    protection(c, inv, guards.include_running).or_else(|| {
        guards
            .retained
            .get(&*c.uid)
            .map(|why| Protection::Retained(why.clone()))
    })
}
