//! The guard Lease of a test run (`--guard`): taken at start, renewed while
//! the run lives, released at its end; and the removal of the Leases of runs
//! `--stale-runs` cleaned. Every write carries a precondition so that two
//! guards, or a guard and a reaper, never overwrite each other.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, ObjectMeta, PostParams, Preconditions};
use kube::{Api, Client};

use crate::error::{Error, Result};
use crate::model::{lease_name, RunLease, RUN_ID};
use crate::retry::with_retry;

/// A Lease this process holds.
pub(crate) struct Held {
    api: Api<Lease>,
    lease: Lease,
    holder: String,
}

impl Held {
    pub(crate) fn name(&self) -> String {
        self.lease.metadata.name.clone().unwrap_or_default()
    }
}

fn now_micro() -> MicroTime {
    let now = Utc::now();
    MicroTime(
        k8s_openapi::jiff::Timestamp::new(now.timestamp(), now.timestamp_subsec_nanos() as i32)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

fn spec(holder: &str, duration: Duration) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(duration.as_secs().min(i32::MAX as u64) as i32),
        acquire_time: Some(now_micro()),
        renew_time: Some(now_micro()),
        ..Default::default()
    }
}

fn api_error(what: &str, e: kube::Error) -> Error {
    Error::from_kube(what, e)
}

/// Takes the Lease of `run` in `namespace`: creates it, or takes over one
/// that expired. A live Lease of another holder is refused (exit 3): two
/// guards of one run would reap each other's objects.
pub(crate) async fn acquire(
    client: &Client,
    namespace: &str,
    run: &str,
    duration: Duration,
    holder: &str,
) -> Result<Held> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(run);
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(BTreeMap::from([
                (RUN_ID.to_string(), run.to_string()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "crucible-clean".to_string(),
                ),
            ])),
            ..Default::default()
        },
        spec: Some(spec(holder, duration)),
    };
    let what = format!("taking Lease {namespace}/{name}");
    let pp = PostParams::default();
    let created = with_retry(|| api.create(&pp, &lease)).await;
    let lease = match created {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let current = with_retry(|| api.get(&name))
                .await
                .map_err(|e| api_error(&what, e))?;
            // A live guard's Lease is refused; an expired one, or one no
            // guard wrote, is taken over.
            let seen = crate::inventory::run_lease(&current).ok();
            if let Some(live) = seen.filter(|l| l.expires_at >= Utc::now()) {
                return Err(Error::Aborted(format!(
                    "run {run} already has a live guard: Lease {namespace}/{name} held by {:?}, valid until {}",
                    live.holder,
                    live.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )));
            }
            // Expired: take it over, unless someone else does first (the
            // resourceVersion of what was read makes that a 409).
            let mut takeover = current;
            takeover.spec = Some(spec(holder, duration));
            takeover.metadata.labels = lease.metadata.labels.clone();
            api.replace(&name, &pp, &takeover)
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => Error::Aborted(format!(
                        "run {run}: another guard took Lease {namespace}/{name} at the same time"
                    )),
                    e => api_error(&what, e),
                })?
        }
        Err(e) => return Err(api_error(&what, e)),
    };
    Ok(Held {
        api,
        lease,
        holder: holder.to_string(),
    })
}

/// Renews the Lease. A Lease someone removed is created again; one another
/// holder took is an error (the guard must stop: it no longer owns the run).
pub(crate) async fn renew(held: &mut Held) -> Result<()> {
    let name = held.name();
    let what = format!("renewing Lease {name}");
    let pp = PostParams::default();
    let mut next = held.lease.clone();
    if let Some(s) = next.spec.as_mut() {
        s.renew_time = Some(now_micro());
    }
    match with_retry(|| held.api.replace(&name, &pp, &next)).await {
        Ok(l) => {
            held.lease = l;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            next.metadata.resource_version = None;
            next.metadata.uid = None;
            held.lease = with_retry(|| held.api.create(&pp, &next))
                .await
                .map_err(|e| api_error(&what, e))?;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let current = with_retry(|| held.api.get(&name))
                .await
                .map_err(|e| api_error(&what, e))?;
            let holder = current
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default();
            if holder != held.holder {
                return Err(Error::Runtime(format!(
                    "Lease {name} was taken over by {holder:?}; this guard no longer holds its run"
                )));
            }
            // Our own Lease changed under us (e.g. a label edit): renew that.
            held.lease = current;
            Box::pin(renew(held)).await
        }
        Err(e) => Err(api_error(&what, e)),
    }
}

/// Deletes the Lease this process holds (only that version of it).
pub(crate) async fn release(held: &Held) -> Result<()> {
    let m = &held.lease.metadata;
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
        }),
        ..Default::default()
    };
    let name = held.name();
    match with_retry(|| held.api.delete(&name, &dp)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(&format!("releasing Lease {name}"), e)),
    }
}

/// What became of a stale run's Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removed {
    Removed,
    /// Renewed since it was read: the run is alive again and keeps it.
    Renewed,
}

/// Deletes the Lease of a run `--stale-runs` cleaned, unless it was renewed
/// since it was read (the resourceVersion precondition).
pub(crate) async fn remove_stale(client: &Client, l: &RunLease) -> Result<Removed> {
    let api: Api<Lease> = Api::namespaced(client.clone(), &l.namespace);
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(l.uid.clone()),
            resource_version: Some(l.resource_version.clone()),
        }),
        ..Default::default()
    };
    match with_retry(|| api.delete(&l.name, &dp)).await {
        Ok(_) => Ok(Removed::Removed),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Removed::Removed),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Removed::Renewed),
        Err(e) => Err(api_error(
            &format!("removing Lease {}/{}", l.namespace, l.name),
            e,
        )),
    }
}

/// How long ago `t` was, for messages.
pub(crate) fn ago(t: DateTime<Utc>) -> String {
    let s = (Utc::now() - t).num_seconds().max(0);
    if s < 120 {
        format!("{s}s")
    } else if s < 7200 {
        format!("{}m", s / 60)
    } else {
        format!("{}h", s / 3600)
    }
}
