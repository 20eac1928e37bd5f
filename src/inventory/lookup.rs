//! Reads by name, for plan files: what became of the objects a saved plan
//! names that a fresh listing no longer shows, and which cluster this is.

use futures::{stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::{Api, Client};

use super::convert::{job_candidate, pod_candidate, pod_finished_at, pod_phase};
use crate::error::{Error, Result};
use crate::model::{Candidate, Kind};
use crate::retry::with_retry;

/// The uid of the kube-system namespace: a cluster's identity that does not
/// depend on the URL it is reached by. None when it cannot be read (RBAC
/// allows no `get` on namespaces, or the server does not answer).
pub(crate) async fn cluster_uid(client: &Client) -> Option<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    with_retry(|| api.get_metadata_opt("kube-system"))
        .await
        .ok()
        .flatten()
        .and_then(|ns| ns.metadata.uid)
}

/// The object of each kind, namespace and name now (with its phase, as
/// the plan's rows show it), or None when there is none.
pub(crate) async fn by_name(
    client: &Client,
    keys: &[(Kind, String, String)],
) -> Result<Vec<Option<Candidate>>> {
    stream::iter(keys)
        .map(|(kind, ns, name)| async move {
            let (pods, jobs): (Api<Pod>, Api<Job>) = (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            );
            let now = match kind {
                Kind::Pod => with_retry(|| pods.get_opt(name)).await.map(|o| {
                    o.map(|p| pod_candidate(&p.metadata, pod_phase(&p), pod_finished_at(&p)))
                }),
                Kind::Job => with_retry(|| jobs.get_opt(name))
                    .await
                    .map(|o| o.map(|j| job_candidate(&j))),
            }
            .map_err(|e| Error::from_kube(&format!("cannot read {}", kind.plural()), e))?;
            Ok(now)
        })
        .buffered(16)
        .collect::<Vec<Result<Option<Candidate>>>>()
        .await
        .into_iter()
        .collect()
}
