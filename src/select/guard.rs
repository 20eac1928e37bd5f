//! Guards: what no strategy may override — the keep marker and a
//! `keep-until` still to come (across ownership), terminating objects, pods of unfinished jobs, unfinished
//! objects without `--include-running`, protected namespaces, retention.
//! Budgeted strategies ask them to count only what may really go; the plan
//! applies them to every selected object; and at the moment of each delete,
//! `execute`'s chokepoint applies them again, with [`Rules`], to the freshest
//! copy of the object it holds. Pure.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::{Candidate, Inventory, Keep, Kind, OwnerState, StaleRun, PROTECTED_NAMESPACES};
use crate::selector::Selector;

/// Why a guard stopped an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protection {
    /// Its own keep (`model::keep`), which holds.
    Kept(Keep),
    /// A job one of whose pods is kept: the cascade would take it.
    KeptPod(String, Keep),
    /// A pod whose job is kept.
    KeptJob(String, Keep),
    Terminating,
    OwnerRunning(String),
    NotFinished,
    ProtectedNamespace,
    /// Held back by retention (`--keep-last`, `--keep-succeeded-for`…), with the reason.
    Retained(String),
    /// Changed since it was selected: it no longer matches what selected it.
    NoLongerMatches(String),
}

impl Protection {
    /// A keep marker (the object's, its pod's or its job's) rather than a
    /// guard of the moment: reported `kept`, not `skipped`.
    pub(crate) fn is_keep(&self) -> bool {
        matches!(
            self,
            Protection::Kept(_) | Protection::KeptPod(..) | Protection::KeptJob(..)
        )
    }
    pub(crate) fn reason(&self) -> String {
        match self {
            Protection::Kept(k) => k.describe(),
            Protection::KeptPod(pod, k) => format!("its pod {pod} is marked {}", k.describe()),
            Protection::KeptJob(job, k) => format!("its job {job} is marked {}", k.describe()),
            Protection::Terminating => "terminating".into(),
            Protection::OwnerRunning(job) => format!("job {job} has not finished"),
            Protection::NotFinished => "not finished (add --include-running)".into(),
            Protection::ProtectedNamespace => "protected namespace".into(),
            Protection::Retained(why) | Protection::NoLongerMatches(why) => why.clone(),
        }
    }
}

/// What the guards need to know of an object's ties to others: the state of
/// the jobs that own pods, the jobs with a keep, and the kept pods of jobs;
/// and the time a keep is asked about. The inventory answers from its
/// listing; the chokepoint answers a job's kept pods from a fresh read.
pub(crate) trait Ties {
    /// The state of job `uid` (None: unknown).
    fn owner_state(&self, job_uid: &str) -> Option<OwnerState>;
    /// The name and keep of job `uid` if it has a keep.
    fn kept_job(&self, job_uid: &str) -> Option<(&str, Keep)>;
    /// The pod of job `uid` that is kept longest, and its keep, if any.
    fn kept_pod(&self, job_uid: &str) -> Option<(&str, Keep)>;
    /// The time keeps are measured at: when the objects were listed (a
    /// `keep-until` that ran out since still holds: the safe side).
    fn now(&self) -> DateTime<Utc>;
}

impl Ties for Inventory {
    fn owner_state(&self, job_uid: &str) -> Option<OwnerState> {
        self.owners.get(job_uid).copied()
    }
    fn kept_job(&self, job_uid: &str) -> Option<(&str, Keep)> {
        self.kept_jobs.get(job_uid).map(|(n, k)| (n.as_str(), *k))
    }
    fn kept_pod(&self, job_uid: &str) -> Option<(&str, Keep)> {
        self.kept_pods.get(job_uid).map(|(n, k)| (n.as_str(), *k))
    }
    fn now(&self) -> DateTime<Utc> {
        self.taken_at
    }
}

/// The guard that stops a candidate, if any. Strategies that budget
/// deletions (watermark) call this to count only what may really go.
pub(crate) fn protection(
    c: &Candidate,
    inv: &(impl Ties + ?Sized),
    include_running: bool,
) -> Option<Protection> {
    if PROTECTED_NAMESPACES.contains(&&*c.namespace) {
        return Some(Protection::ProtectedNamespace);
    }
    if c.terminating {
        return Some(Protection::Terminating);
    }
    let now = inv.now();
    if c.keep.holds(now) {
        return Some(Protection::Kept(c.keep));
    }
    match c.kind {
        Kind::Job => {
            if let Some((pod, k)) = inv.kept_pod(&c.uid).filter(|(_, k)| k.holds(now)) {
                return Some(Protection::KeptPod(pod.to_string(), k));
            }
        }
        Kind::Pod => {
            // Any job the pod goes with, controller or not.
            let kept = |o: &crate::model::Owner| inv.kept_job(&o.uid).filter(|(_, k)| k.holds(now));
            if let Some((job, k)) = c.job_owners().find_map(kept) {
                return Some(Protection::KeptJob(job.to_string(), k));
            }
        }
    }
    if c.kind == Kind::Pod {
        if let Some(owner) = c.owner_job() {
            // Unknown owner state counts as running: the safe side.
            if !matches!(
                inv.owner_state(&owner.uid),
                Some(OwnerState::Finished | OwnerState::Gone)
            ) {
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

/// The whole rule set at the moment of a delete: `protection`, and that the
/// object still matches what selected it. `execute`'s chokepoint applies it
/// to the freshest copy it holds of each object, whatever path chose it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) include_running: bool,
    /// The labels the selection asked for: the selector sent to the API
    /// server (`-l` and, where they narrow, the ids), or a plan's selector.
    pub(crate) selector: Selector,
    /// A policy file's rule selectors: one must match (empty: no policy).
    pub(crate) policy: Vec<Selector>,
    /// `--stale-runs`: each dead run, only in its Lease's namespace and for
    /// the objects created since that Lease.
    pub(crate) stale: Option<Vec<StaleRun>>,
}

impl Rules {
    /// Why `c` must not be deleted now, if it must not.
    pub(crate) fn refusal(&self, c: &Candidate, ties: &(impl Ties + ?Sized)) -> Option<Protection> {
        if let Some(p) = protection(c, ties, self.include_running) {
            return Some(p);
        }
        if !self.selector.matches(&c.labels) {
            return Some(Protection::NoLongerMatches(format!(
                "no longer matches {}",
                self.selector
            )));
        }
        if !self.policy.is_empty() && !self.policy.iter().any(|s| s.matches(&c.labels)) {
            return Some(Protection::NoLongerMatches(
                "no longer matches a rule of the policy".into(),
            ));
        }
        if let Some(stale) = &self.stale {
            if !stale.iter().any(|s| s.covers(c)) {
                return Some(Protection::NoLongerMatches(
                    "not an object of a stale run (its Lease's namespace, created since the Lease)"
                        .into(),
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::{Owner, Owners, Phase, KEEP_KEY};

    fn rules(selector: &str) -> Rules {
        Rules {
            selector: Selector::parse(selector).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn the_rules_hold_a_copy_that_changed_since_the_listing() {
        let inv = Inventory::default();
        let r = rules("app=evaluation");
        let p = pod("p", Phase::Failed, 0);
        assert_eq!(r.refusal(&p, &inv), None);
        let kept = labelled(p.clone(), KEEP_KEY, "true");
        let kept = Candidate {
            keep: Keep::MARKED,
            ..kept
        };
        assert_eq!(r.refusal(&kept, &inv), Some(Protection::Kept(Keep::MARKED)));
        let moved = labelled(p.clone(), "app", "other");
        assert_eq!(
            r.refusal(&moved, &inv),
            Some(Protection::NoLongerMatches(
                "no longer matches app=evaluation".into()
            ))
        );
        let running = pod("p", Phase::Running, 0);
        assert_eq!(r.refusal(&running, &inv), Some(Protection::NotFinished));
        let with_running = Rules {
            include_running: true,
            ..r.clone()
        };
        assert_eq!(with_running.refusal(&running, &inv), None);
        let going = Candidate {
            terminating: true,
            ..p.clone()
        };
        assert_eq!(r.refusal(&going, &inv), Some(Protection::Terminating));
        // With a policy, one of its rules must still match.
        let policy = Rules {
            policy: vec![Selector::parse("team=red").unwrap()],
            ..r.clone()
        };
        assert!(policy.refusal(&p, &inv).is_some());
        assert_eq!(policy.refusal(&labelled(p, "team", "red"), &inv), None);
    }

    #[test]
    fn a_stale_run_reaches_only_its_leases_namespace_and_what_came_after_it() {
        let inv = Inventory::default();
        let r = Rules {
            include_running: true,
            stale: Some(vec![StaleRun {
                run: "r1".into(),
                namespace: "crucible".into(),
                since: t(100),
            }]),
            ..rules("app=evaluation")
        };
        let of_run = |created: i64| {
            labelled(
                pod("p", Phase::Running, created),
                "crucible-clean/run",
                "r1",
            )
        };
        assert_eq!(r.refusal(&of_run(100), &inv), None);
        assert_eq!(r.refusal(&of_run(200), &inv), None);
        assert!(matches!(
            r.refusal(&of_run(99), &inv),
            Some(Protection::NoLongerMatches(_))
        ));
        let elsewhere = Candidate {
            namespace: "team-a".into(),
            ..of_run(200)
        };
        assert!(r.refusal(&elsewhere, &inv).is_some());
        let other_run = labelled(of_run(200), "crucible-clean/run", "r2");
        assert!(r.refusal(&other_run, &inv).is_some());
        let none = Rules {
            stale: Some(vec![]),
            ..r.clone()
        };
        assert!(none.refusal(&of_run(200), &inv).is_some());
    }

    #[test]
    fn every_job_owner_counts_for_the_keep_marker_but_only_the_controller_for_running() {
        let kept_job = job("kept", Phase::Complete, 0);
        let running = job("running", Phase::Active, 0);
        let inv = Inventory {
            owners: [
                (kept_job.uid.to_string(), OwnerState::Finished),
                (running.uid.to_string(), OwnerState::Unfinished),
            ]
            .into(),
            kept_jobs: [(kept_job.uid.to_string(), ("kept".to_string(), Keep::MARKED))].into(),
            ..Default::default()
        };
        let tied = |controller: Option<Owner>, others: Vec<Owner>| Candidate {
            owners: Some(Box::new(Owners {
                controller,
                other_jobs: others,
            })),
            ..pod("p", Phase::Failed, 0)
        };
        // A kept job keeps a pod it owns without being its controller.
        let p = tied(None, vec![job_ref(&kept_job)]);
        assert_eq!(
            protection(&p, &inv, false),
            Some(Protection::KeptJob("kept".into(), Keep::MARKED))
        );
        // A running job that does not control the pod does not hold it.
        let p = tied(None, vec![job_ref(&running)]);
        assert_eq!(protection(&p, &inv, false), None);
        let p = tied(Some(job_ref(&running)), vec![]);
        assert_eq!(
            protection(&p, &inv, false),
            Some(Protection::OwnerRunning("running".into()))
        );
        // Another group's Job is no job at all: neither kept nor running.
        let volcano = Owner {
            api_version: "batch.volcano.sh/v1alpha1".into(),
            ..job_ref(&running)
        };
        assert!(!volcano.is_job());
        let p = tied(Some(volcano), vec![]);
        assert_eq!(p.owner_job(), None);
        assert_eq!(p.job_owners().count(), 0);
        assert_eq!(protection(&p, &inv, false), None);
    }

    #[test]
    fn keep_until_holds_until_its_time_on_the_object_and_across_the_cascade() {
        let until = |secs: i64| Keep::until(t(secs));
        let inv_at = |now: i64, job: &Candidate, pod_keep: Keep, job_keep: Keep| Inventory {
            owners: [(job.uid.to_string(), OwnerState::Finished)].into(),
            kept_pods: [(job.uid.to_string(), ("p1".to_string(), pod_keep))].into(),
            kept_jobs: [(job.uid.to_string(), ("j1".to_string(), job_keep))].into(),
            taken_at: t(now),
            ..Default::default()
        };
        let j = job("j1", Phase::Complete, 0);
        let p = Candidate {
            owners: Some(Box::new(Owners {
                controller: Some(job_ref(&j)),
                other_jobs: vec![],
            })),
            ..pod("p1", Phase::Succeeded, 0)
        };
        // The object's own keep-until: kept before its time, not at or after it.
        let own = Candidate {
            keep: until(500),
            ..pod("own", Phase::Failed, 0)
        };
        let none = inv_at(0, &j, Keep::NONE, Keep::NONE);
        let before = Inventory {
            taken_at: t(499),
            ..none.clone()
        };
        assert_eq!(
            protection(&own, &before, false),
            Some(Protection::Kept(until(500)))
        );
        let at = Inventory {
            taken_at: t(500),
            ..none.clone()
        };
        assert_eq!(protection(&own, &at, false), None);
        // A malformed keep-until keeps at any time.
        let bad = Candidate {
            keep: Keep::MALFORMED,
            ..own.clone()
        };
        let later = Inventory {
            taken_at: t(1_000_000),
            ..none.clone()
        };
        assert_eq!(
            protection(&bad, &later, false),
            Some(Protection::Kept(Keep::MALFORMED))
        );
        // A kept pod keeps its job, a kept job its pod, while the keep holds.
        let kept_pod = inv_at(100, &j, until(200), Keep::NONE);
        assert_eq!(
            protection(&j, &kept_pod, false),
            Some(Protection::KeptPod("p1".into(), until(200)))
        );
        assert_eq!(
            Protection::KeptPod("p1".into(), until(200)).reason(),
            format!("its pod p1 is marked crucible-clean/keep-until={}", {
                t(200).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            })
        );
        assert_eq!(
            protection(&j, &inv_at(200, &j, until(200), Keep::NONE), false),
            None
        );
        let kept_job = inv_at(100, &j, Keep::NONE, until(200));
        assert_eq!(
            protection(&p, &kept_job, false),
            Some(Protection::KeptJob("j1".into(), until(200)))
        );
        assert_eq!(
            protection(&p, &inv_at(300, &j, Keep::NONE, until(200)), false),
            None
        );
    }
}
