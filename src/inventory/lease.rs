//! The guard Leases of test runs: which runs' guards stopped renewing
//! (`--stale-runs`).

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::{Api, Client};

use crate::error::{Error, Result};
use crate::model::{RunLease, PROTECTED_NAMESPACES, RUN_ID};
use crate::request::Scope;

use super::{list_full, list_params};

/// The runs whose guard Lease had expired at `now`, oldest expiry first.
pub(crate) async fn stale_runs(
    client: &Client,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Result<Vec<RunLease>> {
    let api: Api<Lease> = match scope {
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        Scope::AllNamespaces => Api::all(client.clone()),
    };
    let mut leases = vec![];
    list_full(&api, list_params(RUN_ID, None), &mut leases, |l| {
        run_lease(&l)
    })
    .await
    .map_err(|e| Error::from_kube("listing test run leases", e))?;
    let mut stale: Vec<RunLease> = leases
        .into_iter()
        .flatten()
        .filter(|l| !PROTECTED_NAMESPACES.contains(&l.namespace.as_str()))
        .filter(|l| l.expires_at < now)
        .collect();
    stale.sort_by_key(|l| l.expires_at);
    Ok(stale)
}

/// A Lease labelled with a run, as a `RunLease`; None without the label.
pub(crate) fn run_lease(l: &Lease) -> Option<RunLease> {
    let m = &l.metadata;
    let run = m.labels.as_ref()?.get(RUN_ID)?.clone();
    let spec = l.spec.clone().unwrap_or_default();
    // A Lease never renewed counts from its acquisition, then its creation.
    let last = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(micro_time)
        .or_else(|| m.creation_timestamp.as_ref().map(super::convert::time))
        .unwrap_or_default();
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    Some(RunLease {
        namespace: m.namespace.clone().unwrap_or_default(),
        name: m.name.clone().unwrap_or_default(),
        run,
        uid: m.uid.clone().unwrap_or_default(),
        resource_version: m.resource_version.clone().unwrap_or_default(),
        holder: spec.holder_identity.unwrap_or_default(),
        expires_at: last + chrono::Duration::seconds(duration),
    })
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
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("host/1".into()),
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
        assert_eq!(l.holder, "host/1");
        assert_eq!(
            l.expires_at,
            DateTime::from_timestamp(1_800_000_030, 0).unwrap()
        );
        // No duration: expired at its last renewal.
        let l = run_lease(&lease(&[(RUN_ID, "r1")], 0, None)).unwrap();
        assert_eq!(
            l.expires_at,
            DateTime::from_timestamp(1_800_000_000, 0).unwrap()
        );
    }

    #[test]
    fn a_lease_without_the_run_label_is_no_run() {
        assert!(run_lease(&lease(&[("app", "x")], 0, Some(30))).is_none());
    }
}
