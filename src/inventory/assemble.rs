//! From the lists to the `Inventory`, the same way whether the lists were
//! just read (`take`) or come from the watch's cache (`from_cache`): the
//! state of each job that owns a listed pod (read by name when the job was
//! not listed), the keep markers that protect across ownership, and the
//! `--capacity` budgets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use kube::{Api, Client};

use super::cache::Snapshot;
use super::convert::job_candidate;
use super::Needs;
use crate::error::{Error, Result};
use crate::model::{Candidate, Inventory, Keep, OwnerState, Quota};
use crate::request::Scope;
use crate::retry::with_retry;

/// The owners' states, the jobs with a keep (listed ones and owners of
/// listed pods: uid → name and keep), and the jobs themselves (none unless the level
/// deletes jobs: then they were listed only for their states).
pub(super) async fn owners(
    client: &Client,
    needs: &Needs,
    pods: &[Arc<Candidate>],
    mut jobs: Vec<Arc<Candidate>>,
) -> Result<(
    BTreeMap<String, OwnerState>,
    BTreeMap<String, (String, Keep)>,
    Vec<Arc<Candidate>>,
)> {
    let (owners, mut kept_jobs) = owner_states(client, pods, &jobs).await?;
    kept_jobs.extend(
        jobs.iter()
            .filter(|j| j.keep != Keep::NONE)
            .map(|j| (j.uid.to_string(), (j.name.to_string(), j.keep))),
    );
    if !needs.jobs {
        jobs.clear();
    }
    Ok((owners, kept_jobs, jobs))
}

/// `--capacity N`: a `count/pods` budget of N for each namespace that no
/// ResourceQuota limits on `count/pods`, with its `stored` pods (every pod,
/// ours or not). The namespace of the scope counts even when it is empty.
pub(super) fn capacity(
    quotas: &mut Vec<Quota>,
    scope: &Scope,
    capacity: u64,
    mut stored: BTreeMap<String, u64>,
) {
    if let Scope::Namespace(ns) = scope {
        stored.entry(ns.clone()).or_insert(0);
    }
    for (ns, n) in stored {
        let limited = quotas
            .iter()
            .any(|q| q.namespace == ns && q.hard.contains_key(crate::quota::COUNT_PODS));
        if !limited {
            quotas.push(Quota::capacity(&ns, capacity, n));
        }
    }
}

/// The inventory from the watch's cache: its records as they are, the
/// owners of its pods resolved as `take` resolves them.
pub(crate) async fn from_cache(
    client: &Client,
    scope: &Scope,
    needs: &Needs,
    snap: Snapshot,
) -> Result<Inventory> {
    let (owners, kept_jobs, jobs) = owners(client, needs, &snap.pods, snap.jobs).await?;
    let mut quotas = if needs.quotas { snap.quotas } else { vec![] };
    if let (Some(n), Some(stored)) = (needs.capacity, snap.stored_pods) {
        capacity(&mut quotas, scope, n, stored);
    }
    Ok(Inventory {
        pods: snap.pods,
        jobs,
        owners,
        kept_jobs,
        kept_pods: if needs.job_units {
            snap.kept_pods
        } else {
            BTreeMap::new()
        },
        quotas,
        taken_at: snap.taken_at,
    })
}

/// An owner job read by name: its uid, state, and its name and keep if it has one.
type Fetched = (String, OwnerState, Option<(String, Keep)>);

/// For each job that owns a listed pod (by any reference): finished,
/// unfinished, or gone; and
/// those of the fetched owners that have a keep (uid → name and keep). Jobs
/// already listed answer for themselves; the others are fetched by name
/// (they may lack the base label) and compared by uid.
async fn owner_states(
    client: &Client,
    pods: &[Arc<Candidate>],
    jobs: &[Arc<Candidate>],
) -> Result<(
    BTreeMap<String, OwnerState>,
    BTreeMap<String, (String, Keep)>,
)> {
    let mut states: BTreeMap<String, OwnerState> = jobs
        .iter()
        .map(|j| {
            (
                j.uid.to_string(),
                if j.phase.is_finished() {
                    OwnerState::Finished
                } else {
                    OwnerState::Unfinished
                },
            )
        })
        .collect();
    let missing: BTreeSet<(String, String, String)> = pods
        .iter()
        .flat_map(|p| {
            p.job_owners()
                .map(|o| (p.namespace.to_string(), o.name.clone(), o.uid.clone()))
        })
        .filter(|(_, _, uid)| !states.contains_key(uid))
        .collect();
    let fetched: Vec<Result<Fetched>> = stream::iter(missing)
        .map(|(ns, name, uid)| {
            let api: Api<Job> = Api::namespaced(client.clone(), &ns);
            async move {
                let job = with_retry(|| api.get_opt(&name))
                    .await
                    .map_err(|e| Error::from_kube("cannot read owner job", e))?;
                let (state, kept) = match job {
                    Some(j) if j.metadata.uid.as_deref() == Some(uid.as_str()) => {
                        let c = job_candidate(&j);
                        let state = if c.phase.is_finished() {
                            OwnerState::Finished
                        } else {
                            OwnerState::Unfinished
                        };
                        let kept = (c.keep != Keep::NONE).then(|| (c.name.to_string(), c.keep));
                        (state, kept)
                    }
                    _ => (OwnerState::Gone, None),
                };
                Ok((uid, state, kept))
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut kept = BTreeMap::new();
    for r in fetched {
        let (uid, state, keep) = r?;
        if let Some(k) = keep {
            kept.insert(uid.clone(), k);
        }
        states.insert(uid, state);
    }
    Ok((states, kept))
}
