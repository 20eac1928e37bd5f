//! Objects of the API → the compact records the pipeline keeps: a
//! `Candidate` per pod or job (never the whole object), a `Quota` per
//! ResourceQuota. Pure.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

use crate::model::{
    keep, Candidate, Keep, Kind, Labels, Owner, Owners, Phase, Quota, KEEP_KEY, KEEP_UNTIL_KEY,
};

pub(crate) fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Pending => "Pending",
        Phase::Running => "Running",
        Phase::Succeeded => "Succeeded",
        Phase::Failed => "Failed",
        _ => "Unknown",
    }
}

/// A pod's phase as its status gives it (a pod without one is pending).
pub(crate) fn pod_phase(p: &Pod) -> Phase {
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Running") => Phase::Running,
        Some("Succeeded") => Phase::Succeeded,
        Some("Failed") => Phase::Failed,
        Some("Pending") | None => Phase::Pending,
        Some(_) => Phase::Unknown,
    }
}

pub(crate) fn time(t: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

/// The keep rule (`model::keep`) on an object's metadata. A `keep-until`
/// that is no time keeps the object, and a warning naming it says so on
/// stderr (once per object and run, however often it is read).
pub(crate) fn keep_of(kind: Kind, meta: &ObjectMeta) -> Keep {
    let k = keep::keep(meta.labels.as_ref(), meta.annotations.as_ref());
    if k == Keep::MALFORMED {
        static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let what = format!(
            "{}/{} in namespace {}",
            kind.resource(),
            meta.name.as_deref().unwrap_or_default(),
            meta.namespace.as_deref().unwrap_or_default()
        );
        let value = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(KEEP_UNTIL_KEY))
            .map(String::as_str)
            .unwrap_or_default();
        if WARNED.lock().map_or(true, |mut w| w.insert(what.clone())) {
            crate::log::say(&format!(
                "warning: {what}: annotation {}={value:?} is not an RFC 3339 time; it is kept as if marked {}=true",
                KEEP_UNTIL_KEY,
                KEEP_KEY
            ));
        }
    }
    k
}

/// The owner references that matter (`model::Owners`): the controller, and
/// every other reference to a batch Job. None when there are neither.
pub(crate) fn owners(meta: &ObjectMeta) -> Option<Box<Owners>> {
    let refs = meta.owner_references.as_deref().unwrap_or_default();
    let owner = |r: &OwnerReference| Owner {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        name: r.name.clone(),
        uid: r.uid.clone(),
    };
    let controller = refs.iter().find(|r| r.controller == Some(true)).map(owner);
    let other_jobs: Vec<Owner> = refs
        .iter()
        .filter(|r| r.controller != Some(true))
        .map(owner)
        .filter(Owner::is_job)
        .collect();
    (controller.is_some() || !other_jobs.is_empty()).then(|| {
        Box::new(Owners {
            controller,
            other_jobs,
        })
    })
}

/// A list returns objects namespace by namespace: consecutive records share
/// one allocation of their namespace's name instead of a copy each.
fn namespace(meta: &ObjectMeta) -> Arc<str> {
    thread_local! {
        static LAST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
    }
    let ns = meta.namespace.as_deref().unwrap_or_default();
    LAST.with_borrow_mut(|last| match last {
        Some(a) if &**a == ns => Arc::clone(a),
        _ => Arc::clone(last.insert(Arc::from(ns))),
    })
}

pub(crate) fn base_candidate(
    kind: Kind,
    meta: &ObjectMeta,
    phase: Phase,
    finished_at: Option<DateTime<Utc>>,
) -> Candidate {
    let labels = meta.labels.as_ref().map(Labels::from).unwrap_or_default();
    Candidate {
        kind,
        namespace: namespace(meta),
        name: meta.name.as_deref().unwrap_or_default().into(),
        uid: meta.uid.as_deref().unwrap_or_default().into(),
        resource_version: meta.resource_version.as_deref().unwrap_or_default().into(),
        phase,
        created_at: meta
            .creation_timestamp
            .as_ref()
            .map(time)
            .unwrap_or_default(),
        finished_at,
        keep: keep_of(kind, meta),
        terminating: meta.deletion_timestamp.is_some(),
        owners: owners(meta),
        labels,
        charges: Box::default(),
    }
}

pub(crate) fn pod_candidate(
    meta: &ObjectMeta,
    phase: Phase,
    finished_at: Option<DateTime<Utc>>,
) -> Candidate {
    base_candidate(Kind::Pod, meta, phase, finished_at)
}

/// The record of a pod or job read whole (as JSON, e.g. for an archive or
/// a hook); None when it is not an object of that kind.
pub(crate) fn candidate_of(kind: Kind, object: &serde_json::Value) -> Option<Candidate> {
    match kind {
        Kind::Pod => {
            let p: Pod = serde_json::from_value(object.clone()).ok()?;
            Some(pod_candidate(
                &p.metadata,
                pod_phase(&p),
                pod_finished_at(&p),
            ))
        }
        Kind::Job => {
            let j: Job = serde_json::from_value(object.clone()).ok()?;
            Some(job_candidate(&j))
        }
    }
}

/// A listed pod's record (`phase`: what the list asked for, or its status
/// said): a non-terminal pod also carries its quota charges.
pub(crate) fn full_pod_candidate(p: &Pod, phase: Phase) -> Candidate {
    let mut c = pod_candidate(&p.metadata, phase, pod_finished_at(p));
    if !phase.is_finished() {
        c.charges = crate::quota::pod_charges(p).into_iter().collect();
    }
    c
}

/// When the last container stopped.
pub(crate) fn pod_finished_at(p: &Pod) -> Option<DateTime<Utc>> {
    let status = p.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|cs| {
            cs.state
                .as_ref()?
                .terminated
                .as_ref()?
                .finished_at
                .as_ref()
                .map(time)
        })
        .max()
}

pub(crate) fn job_candidate(j: &Job) -> Candidate {
    let status = j.status.as_ref();
    let cond = |t: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t && c.status == "True"))
    };
    let (phase, finished_at) = if let Some(c) = cond("Complete") {
        let at = status
            .and_then(|s| s.completion_time.as_ref())
            .or(c.last_transition_time.as_ref())
            .map(time);
        (Phase::Complete, at)
    } else if let Some(c) = cond("Failed") {
        (Phase::Failed, c.last_transition_time.as_ref().map(time))
    } else {
        (Phase::Active, None)
    };
    base_candidate(Kind::Job, &j.metadata, phase, finished_at)
}

pub(crate) fn quota(q: &ResourceQuota) -> Quota {
    let read =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.map(|m| {
                m.iter()
                    .filter_map(|(k, v)| crate::quantity::parse(&v.0).map(|n| (k.clone(), n)))
                    .collect()
            })
            .unwrap_or_default()
        };
    let status = q.status.as_ref();
    Quota {
        namespace: q.metadata.namespace.clone().unwrap_or_default(),
        name: q.metadata.name.clone().unwrap_or_default(),
        hard: read(status.and_then(|s| s.hard.as_ref())),
        used: read(status.and_then(|s| s.used.as_ref())),
    }
}
