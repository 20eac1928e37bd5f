//! Reads by name: for plan files, what became of the objects a saved plan
//! names that a fresh listing no longer shows, and which cluster this is;
//! for a delete that met a conflict, the object as it is now; and whether
//! we may delete (a SelfSubjectAccessReview).

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

/// The object `c` names (kind, namespace, name) as it is now, whole: None
/// when there is none. Its uid may differ from `c`'s (a replacement).
pub(crate) async fn current(
    client: &Client,
    c: &Candidate,
) -> Result<Option<Candidate>, kube::Error> {
    Ok(match c.kind {
        Kind::Pod => {
            let api: Api<Pod> = Api::namespaced(client.clone(), &c.namespace);
            with_retry(|| api.get_opt(&c.name))
                .await?
                .map(|p| pod_candidate(&p.metadata, pod_phase(&p), pod_finished_at(&p)))
        }
        Kind::Job => {
            let api: Api<Job> = Api::namespaced(client.clone(), &c.namespace);
            with_retry(|| api.get_opt(&c.name))
                .await?
                .map(|j| job_candidate(&j))
        }
    })
}

/// Asks the API server whether we may delete `resource` in `namespace`
/// (a SelfSubjectAccessReview: nothing is stored). Lets a run without the
/// permission stop before the first delete, naming what is missing.
pub(crate) async fn can_delete(
    client: &Client,
    namespace: &str,
    group: &str,
    resource: &str,
) -> Result<bool> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some("delete".into()),
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let pp = kube::api::PostParams::default();
    let answer = with_retry(|| api.create(&pp, &review))
        .await
        .map_err(|e| Error::from_kube("cannot check permissions", e))?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}
