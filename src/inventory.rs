//! Inventory: the only reads from the API. Lists in pages of 500, metadata
//! only where the status is not needed (a pod's phase then comes from the
//! `status.phase` field selector), restarts a list once on 410 Expired, and
//! keeps a compact `Candidate` per object instead of whole objects.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{ListParams, ObjectList};
use kube::{Api, Client};

use crate::error::{Error, Result};
use crate::model::{Inventory, Keep, Phase, PROTECTED_NAMESPACES};
use crate::request::Scope;
use crate::retry::with_retry;

mod assemble;
mod cache;
mod convert;
mod lease;
mod listed;
mod lookup;
mod needs;
mod owned;
mod watch;
pub(crate) use assemble::from_cache;
pub(crate) use cache::{Resource, Snapshot};
pub(crate) use convert::candidate_of;
use convert::{full_pod_candidate, job_candidate, phase_name, pod_candidate, pod_phase, quota};
pub(crate) use lease::{run_lease, run_leases, unreached};
use listed::{ListedMeta, ListedPod};
pub(crate) use lookup::{by_name, can_delete, cluster_uid, current};
pub(crate) use needs::Needs;
pub(crate) use owned::{FreshPods, JobPods, PodRef};
pub(crate) use watch::{Change, Watched};

pub(crate) const PAGE_SIZE: u32 = 500;

pub(crate) async fn take(client: &Client, scope: &Scope, needs: &Needs) -> Result<Inventory> {
    let taken_at = Utc::now();
    let (pods_api, jobs_api, quota_api): (Api<ListedPod>, Api<Job>, Api<ResourceQuota>) =
        match scope {
            Scope::Namespace(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            Scope::AllNamespaces => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
    let fields = |extra: Option<String>| fields(scope, extra);

    let mut pods = Vec::new();
    for phase in &needs.pod_phases {
        let lp = list_params(
            &needs.label_selector,
            fields(Some(format!("status.phase={}", phase_name(*phase)))),
        );
        if needs.pod_status {
            list_full(&pods_api, lp, &mut pods, |p: ListedPod| {
                Arc::new(full_pod_candidate(&p.into_pod(), *phase))
            })
            .await
        } else {
            list_meta(client, scope, lp, &mut pods, |p| {
                Arc::new(pod_candidate(&p.metadata, *phase, None))
            })
            .await
        }
        .map_err(|e| Error::from_kube("cannot list pods", e))?;
    }
    if needs.unfinished_pods {
        let not_finished = [Phase::Succeeded, Phase::Failed]
            .map(|p| format!("status.phase!={}", phase_name(p)))
            .join(",");
        let lp = list_params(&needs.label_selector, fields(Some(not_finished)));
        list_full(&pods_api, lp, &mut pods, |p: ListedPod| {
            let p = p.into_pod();
            Arc::new(full_pod_candidate(&p, pod_phase(&p)))
        })
        .await
        .map_err(|e| Error::from_kube("cannot list pods", e))?;
    }

    let mut jobs = Vec::new();
    if needs.jobs || pods.iter().any(|p| p.job_owners().next().is_some()) {
        let lp = list_params(&needs.label_selector, fields(None));
        list_full(&jobs_api, lp, &mut jobs, |j: Job| {
            Arc::new(job_candidate(&j))
        })
        .await
        .map_err(|e| Error::from_kube("cannot list jobs", e))?;
    }

    let (owners, kept_jobs, jobs) = assemble::owners(client, needs, &pods, jobs).await?;
    let mut kept_pods: BTreeMap<String, (String, Keep)> = BTreeMap::new();
    if needs.jobs
        && jobs
            .iter()
            .any(|j| !j.keep.holds(taken_at) && !j.terminating)
    {
        // Deleting a job deletes its pods, whatever their labels or phase: a
        // keep marker on any of them must be seen. Metadata of every pod, read
        // only when some listed job might be deleted.
        let mut marked = Vec::new();
        list_meta(
            client,
            scope,
            list_params("", fields(None)),
            &mut marked,
            |p| {
                let pod = pod_candidate(&p.metadata, Phase::Unknown, None);
                if pod.keep != Keep::NONE {
                    pod.job_owners()
                        .map(|j| (j.uid.clone(), pod.name.to_string(), pod.keep))
                        .collect()
                } else {
                    vec![]
                }
            },
        )
        .await
        .map_err(|e| Error::from_kube("cannot list pods", e))?;
        for (job_uid, pod, keep) in marked.into_iter().flatten() {
            // The pod kept longest speaks for the job.
            let slot = kept_pods.entry(job_uid).or_insert((pod.clone(), keep));
            if slot.1.longer(keep) != slot.1 {
                *slot = (pod, keep);
            }
        }
    }

    let mut quotas = Vec::new();
    if needs.quotas {
        let lp = list_params("", fields(None));
        list_full(&quota_api, lp, &mut quotas, |q: ResourceQuota| quota(&q))
            .await
            .map_err(|e| Error::from_kube("cannot list resourcequotas", e))?;
    }
    if let Some(capacity) = needs.capacity {
        // Every stored pod counts against the budget, ours or not: count them
        // all (metadata only), by namespace.
        let mut namespaces = Vec::new();
        list_meta(
            client,
            scope,
            list_params("", fields(None)),
            &mut namespaces,
            |p| p.metadata.namespace.unwrap_or_default(),
        )
        .await
        .map_err(|e| Error::from_kube("cannot count pods for --capacity", e))?;
        let mut stored: BTreeMap<String, u64> = BTreeMap::new();
        for ns in namespaces {
            *stored.entry(ns).or_default() += 1;
        }
        assemble::capacity(&mut quotas, scope, capacity, stored);
    }

    // The pages are decoded and gone; the records stay.
    crate::memory::trim();
    Ok(Inventory {
        pods,
        jobs,
        owners,
        kept_jobs,
        kept_pods,
        quotas,
        taken_at,
    })
}

/// The field selector of a list in `scope` (with `-A`, the protected
/// namespaces are left out), with `extra` terms.
fn fields(scope: &Scope, extra: Option<String>) -> Option<String> {
    let mut f: Vec<String> = match scope {
        Scope::AllNamespaces => PROTECTED_NAMESPACES
            .iter()
            .map(|n| format!("metadata.namespace!={n}"))
            .collect(),
        Scope::Namespace(_) => vec![],
    };
    f.extend(extra);
    (!f.is_empty()).then(|| f.join(","))
}

fn list_params(labels: &str, fields: Option<String>) -> ListParams {
    let mut lp = ListParams::default().limit(PAGE_SIZE);
    if !labels.is_empty() {
        lp = lp.labels(labels);
    }
    if let Some(f) = fields {
        lp = lp.fields(&f);
    }
    lp
}

/// Every object of a list, page by page (see `paged`).
async fn list_full<K, C>(
    api: &Api<K>,
    lp: ListParams,
    out: &mut Vec<C>,
    convert: impl FnMut(K) -> C,
) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    paged(|lp| async move { api.list(&lp).await }, lp, out, convert).await
}

/// Every pod's metadata only, page by page (see `paged`), decoded as
/// `ListedMeta` (without managedFields and most annotations).
async fn list_meta<C>(
    client: &Client,
    scope: &Scope,
    lp: ListParams,
    out: &mut Vec<C>,
    convert: impl FnMut(ListedMeta) -> C,
) -> Result<(), kube::Error> {
    use kube::Resource;
    let url = ListedMeta::url_path(&(), scope.namespace());
    paged(
        |lp| {
            let req = kube::core::Request::new(&url)
                .list_metadata(&lp)
                .map_err(kube::Error::BuildRequest);
            async move { client.request::<ObjectList<ListedMeta>>(req?).await }
        },
        lp,
        out,
        convert,
    )
    .await
}

/// Walks every page of a list. On 410 Expired (the continue token outlived
/// etcd's compaction) the list restarts once from the beginning, so the
/// result is one consistent snapshot rather than a stitched one.
pub(crate) async fn paged<T, C, F, Fut>(
    mut fetch: F,
    base: ListParams,
    out: &mut Vec<C>,
    mut convert: impl FnMut(T) -> C,
) -> Result<(), kube::Error>
where
    T: Clone,
    F: FnMut(ListParams) -> Fut,
    Fut: Future<Output = Result<ObjectList<T>, kube::Error>>,
{
    let start = out.len();
    let mut restarted = false;
    let mut token: Option<String> = None;
    loop {
        let mut lp = base.clone();
        lp.continue_token = token.clone();
        match with_retry(|| fetch(lp.clone())).await {
            Ok(page) => {
                token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
                out.extend(page.items.into_iter().map(&mut convert));
                if token.is_none() {
                    return Ok(());
                }
            }
            Err(kube::Error::Api(s)) if s.code == 410 && !restarted => {
                restarted = true;
                token = None;
                out.truncate(start);
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
    use kube::core::{Status, TypeMeta};
    use std::sync::Mutex;

    fn page(items: &[u32], next: Option<&str>) -> ObjectList<u32> {
        ObjectList {
            types: TypeMeta::default(),
            metadata: ListMeta {
                continue_: next.map(str::to_string),
                ..Default::default()
            },
            items: items.to_vec(),
        }
    }

    fn expired() -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("continue token expired", "Expired").with_code(410),
        ))
    }

    /// Serves scripted answers and records the continue token of each call.
    async fn run(
        script: Vec<Result<ObjectList<u32>, kube::Error>>,
    ) -> (Result<Vec<u32>, kube::Error>, Vec<Option<String>>) {
        let script = Mutex::new(script.into_iter());
        let calls = Mutex::new(vec![]);
        let mut out = vec![];
        let r = paged(
            |lp: ListParams| {
                calls.lock().unwrap().push(lp.continue_token.clone());
                assert_eq!(lp.limit, Some(PAGE_SIZE));
                let next = script
                    .lock()
                    .unwrap()
                    .next()
                    .expect("no more scripted answers");
                async move { next }
            },
            ListParams::default().limit(PAGE_SIZE),
            &mut out,
            |x| x,
        )
        .await;
        (r.map(|_| out), calls.into_inner().unwrap())
    }

    #[tokio::test]
    async fn follows_continue_tokens() {
        let (r, calls) = run(vec![
            Ok(page(&[1, 2], Some("c1"))),
            Ok(page(&[3], Some(""))),
        ])
        .await;
        assert_eq!(r.unwrap(), [1, 2, 3]);
        assert_eq!(calls, [None, Some("c1".to_string())]);
    }

    #[tokio::test]
    async fn restarts_once_on_410_expired_then_gives_up() {
        let (r, calls) = run(vec![
            Ok(page(&[1, 2], Some("c1"))),
            Err(expired()),
            Ok(page(&[7], Some("c2"))),
            Ok(page(&[8], None)),
        ])
        .await;
        assert_eq!(
            r.unwrap(),
            [7, 8],
            "the restarted list replaces the partial one"
        );
        assert_eq!(calls, [None, Some("c1".into()), None, Some("c2".into())]);

        let (r, _) = run(vec![
            Ok(page(&[1], Some("c1"))),
            Err(expired()),
            Ok(page(&[2], Some("c2"))),
            Err(expired()),
        ])
        .await;
        assert!(matches!(r, Err(kube::Error::Api(s)) if s.code == 410));
    }
}
