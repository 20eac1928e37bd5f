//! The guard Leases of test runs: which runs' guards stopped renewing
//! (`--stale-runs`). Anyone allowed to create Leases in a namespace can
//! write one, so a Lease counts only in the exact shape a guard writes
//! (`model::RunLease`); any other Lease labelled with a run is ignored, with
//! a warning, never trusted.

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::{Api, Client};

use k8s_openapi::api::batch::v1::Job;

use crate::error::{Error, Result};
use crate::model::{
    lease_name, Candidate, GuardId, Phase, RunLease, StaleRun, PROTECTED_NAMESPACES, RUN_ID,
};
use crate::request::Scope;
use crate::selector::Selector;

use super::convert::{job_candidate, pod_candidate};
use super::{list_full, list_meta, list_params};

/// The Leases labelled with a run in a scope, sorted out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RunLeases {
    /// Guard Leases not renewed within their duration, oldest expiry first.
    pub(crate) expired: Vec<RunLease>,
    /// Guard Leases still live.
    pub(crate) live: Vec<RunLease>,
    /// Leases labelled with a run that are no guard's: `namespace/name` and why.
    pub(crate) ignored: Vec<(String, String)>,
}

/// The guard Leases of `scope` as they stand at `now`.
pub(crate) async fn run_leases(
    client: &Client,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Result<RunLeases> {
    let api: Api<Lease> = match scope {
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        Scope::AllNamespaces => Api::all(client.clone()),
    };
    let mut leases = vec![];
    list_full(&api, list_params(RUN_ID, None), &mut leases, |l| {
        let m = &l.metadata;
        let at = format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default()
        );
        (at, run_lease(&l))
    })
    .await
    .map_err(|e| Error::from_kube("listing test run leases", e))?;
    let mut out = RunLeases::default();
    for (at, lease) in leases {
        match lease {
            Ok(l) if PROTECTED_NAMESPACES.contains(&l.namespace.as_str()) => {}
            Ok(l) if l.expires_at < now => out.expired.push(l),
            Ok(l) => out.live.push(l),
            Err(why) => out.ignored.push((at, why)),
        }
    }
    out.expired.sort_by_key(|l| l.expires_at);
    Ok(out)
}

/// A Lease as the guard Lease of its run, or why it is none.
pub(crate) fn run_lease(l: &Lease) -> std::result::Result<RunLease, String> {
    let m = &l.metadata;
    let run = m
        .labels
        .as_ref()
        .and_then(|l| l.get(RUN_ID))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("it has no {RUN_ID} label"))?;
    let name = m.name.clone().unwrap_or_default();
    if name != lease_name(run) {
        return Err(format!(
            "a guard's Lease of run {run} is named {}",
            lease_name(run)
        ));
    }
    let spec = l
        .spec
        .as_ref()
        .ok_or("it has no spec (a guard writes one)")?;
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if GuardId::parse(&holder).is_none() {
        return Err(format!(
            "its holderIdentity {holder:?} is not a guard's (host/pid/start time)"
        ));
    }
    let last = spec
        .renew_time
        .as_ref()
        .map(micro_time)
        .ok_or("it has no renewTime")?;
    let duration = spec
        .lease_duration_seconds
        .filter(|d| *d > 0)
        .ok_or("it has no leaseDurationSeconds")?;
    let created_at = m
        .creation_timestamp
        .as_ref()
        .map(super::convert::time)
        .ok_or("it has no creationTimestamp")?;
    Ok(RunLease {
        namespace: m.namespace.clone().unwrap_or_default(),
        name,
        run: run.clone(),
        uid: m.uid.clone().unwrap_or_default(),
        resource_version: m.resource_version.clone().unwrap_or_default(),
        holder,
        created_at,
        expires_at: last + chrono::Duration::seconds(i64::from(duration)),
    })
}

/// How many objects of stale run `run` (pods and jobs labelled with it in
/// its Lease's namespace, created since the Lease, not terminating) the
/// cleanup could not reach: those `selector` does not match. While there
/// are any, the run's Lease stays (its run is not done).
pub(crate) async fn unreached(
    client: &Client,
    run: &StaleRun,
    selector: &Selector,
) -> Result<usize> {
    let scope = Scope::Namespace(run.namespace.clone());
    let labels = format!("{RUN_ID}={}", run.run);
    let left = |c: &Candidate| run.covers(c) && !c.terminating && !selector.matches(&c.labels);
    let mut pods = vec![];
    list_meta(client, &scope, list_params(&labels, None), &mut pods, |p| {
        left(&pod_candidate(&p.metadata, Phase::Unknown, None))
    })
    .await
    .map_err(|e| Error::from_kube("cannot list pods", e))?;
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), &run.namespace);
    let mut jobs = vec![];
    list_full(
        &jobs_api,
        list_params(&labels, None),
        &mut jobs,
        |j: Job| left(&job_candidate(&j)),
    )
    .await
    .map_err(|e| Error::from_kube("cannot list jobs", e))?;
    Ok(pods.into_iter().chain(jobs).filter(|l| *l).count())
}

fn micro_time(t: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use kube::api::ObjectMeta;

    fn lease(labels: &[(&str, &str)], renewed: i64, duration: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("crucible-clean-run-r1".into()),
                namespace: Some("crucible".into()),
                creation_timestamp: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap(),
                )),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("host/1/2026-01-01T00:00:00Z".into()),
                lease_duration_seconds: duration,
                renew_time: Some(MicroTime(
                    k8s_openapi::jiff::Timestamp::from_second(1_800_000_000 + renewed).unwrap(),
                )),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn expiry_is_the_last_renewal_plus_the_duration() {
        let l = run_lease(&lease(&[(RUN_ID, "r1")], 0, Some(30))).unwrap();
        assert_eq!(l.run, "r1");
        assert_eq!(l.holder, "host/1/2026-01-01T00:00:00Z");
        assert_eq!(
            l.expires_at,
            DateTime::from_timestamp(1_800_000_030, 0).unwrap()
        );
        assert_eq!(
            l.created_at,
            DateTime::from_timestamp(1_700_000_000, 0).unwrap()
        );
    }

    #[test]
    fn a_lease_not_in_a_guards_shape_is_none() {
        let why = |l: &Lease| run_lease(l).unwrap_err();
        assert!(why(&lease(&[("app", "x")], 0, Some(30))).contains("no crucible-clean/run label"));
        // Another name than the run's.
        let mut other = lease(&[(RUN_ID, "r1")], 0, Some(30));
        other.metadata.name = Some("unrelated-lease".into());
        assert!(why(&other).contains("is named crucible-clean-run-r1"));
        // The name of another run.
        let l = lease(&[(RUN_ID, "r2")], 0, Some(30));
        assert!(why(&l).contains("crucible-clean-run-r2"));
        // No spec, no renewal, no duration, a holder no guard writes.
        let mut bare = lease(&[(RUN_ID, "r1")], 0, Some(30));
        bare.spec = None;
        assert!(why(&bare).contains("no spec"));
        let mut unrenewed = lease(&[(RUN_ID, "r1")], 0, Some(30));
        unrenewed.spec.as_mut().unwrap().renew_time = None;
        assert!(why(&unrenewed).contains("no renewTime"));
        assert!(why(&lease(&[(RUN_ID, "r1")], 0, None)).contains("no leaseDurationSeconds"));
        assert!(why(&lease(&[(RUN_ID, "r1")], 0, Some(0))).contains("no leaseDurationSeconds"));
        for holder in [
            "",
            "host/1",
            "host/x/2026-01-01T00:00:00Z",
            "/1/2026-01-01T00:00:00Z",
            "h/1/yesterday",
        ] {
            let mut l = lease(&[(RUN_ID, "r1")], 0, Some(30));
            l.spec.as_mut().unwrap().holder_identity = Some(holder.into());
            assert!(why(&l).contains("holderIdentity"), "{holder}");
        }
    }
}
