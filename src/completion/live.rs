//! Completion values that only the cluster or the kubeconfig knows:
//! namespaces, contexts, and the test-id/eval-id label values present. Reads
//! are metadata-only and time-boxed ([`CLUSTER_BUDGET`]): a slow or unreachable
//! cluster yields what was read so far, usually nothing, never a hung shell.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, PartialObjectMeta};
use kube::{Api, Client};

use super::kubectl::{Line, Suggestion};
use crate::inventory::{paged, PAGE_SIZE};
use crate::model::PROTECTED_NAMESPACES;
use crate::request::{DEFAULT_NAMESPACE, DEFAULT_SELECTOR};

/// Budget for everything that talks to the cluster; the whole answer must
/// come back within about a second.
pub(crate) const CLUSTER_BUDGET: Duration = Duration::from_millis(800);

/// Values that only the cluster or the kubeconfig knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    Namespaces,
    Contexts,
    /// Distinct values of this label on the evaluation pods and jobs.
    LabelValues(&'static str),
}

/// Reads what the cluster (or the kubeconfig) knows, within [`CLUSTER_BUDGET`];
/// on timeout or error, whatever was read so far (often nothing).
pub(crate) async fn live_values(live: Live, line: &Line) -> Vec<Suggestion> {
    match live {
        Live::Contexts => contexts(line),
        Live::Namespaces => {
            let mut names: Vec<String> = Vec::new();
            let _ = tokio::time::timeout(CLUSTER_BUDGET, async {
                let Ok((client, _)) = crate::client::connect(&line.connection()).await else {
                    return;
                };
                let api: Api<Namespace> = Api::all(client);
                let _ = paged(
                    |lp| {
                        let api = api.clone();
                        async move { api.list_metadata(&lp).await }
                    },
                    ListParams::default().limit(PAGE_SIZE),
                    &mut names,
                    |m: PartialObjectMeta<Namespace>| m.metadata.name.unwrap_or_default(),
                )
                .await;
            })
            .await;
            names.retain(|n| !n.is_empty() && !PROTECTED_NAMESPACES.contains(&n.as_str()));
            names.sort();
            names.dedup();
            names.into_iter().map(|n| Suggestion::new(n, "")).collect()
        }
        Live::LabelValues(key) => label_values(key, line).await,
    }
}

/// The contexts of the kubeconfig the plugin would use (`--kubeconfig`, else
/// `KUBECONFIG`, else `~/.kube/config`), with their cluster as description.
fn contexts(line: &Line) -> Vec<Suggestion> {
    let kubeconfig = crate::client::kubeconfig(&line.connection()).ok().flatten();
    let Some(kc) = kubeconfig else { return vec![] };
    let mut out: Vec<Suggestion> = kc
        .contexts
        .iter()
        .map(|c| {
            let cluster = c
                .context
                .as_ref()
                .map(|x| x.cluster.clone())
                .unwrap_or_default();
            let desc = if cluster.is_empty() {
                String::new()
            } else {
                format!("cluster {cluster}")
            };
            Suggestion::new(c.name.clone(), desc)
        })
        .collect();
    out.sort_by(|a, b| a.value.cmp(&b.value));
    out.dedup_by(|a, b| a.value == b.value);
    out
}

/// Distinct values of label `key` on the pods and jobs that the base selector
/// (`-l`, default `app=evaluation`) selects in the namespace on the line
/// (`-n`, `-A`, default `crucible`); the description counts the objects.
async fn label_values(key: &'static str, line: &Line) -> Vec<Suggestion> {
    let base = line
        .selector
        .clone()
        .unwrap_or_else(|| DEFAULT_SELECTOR.to_string());
    let selector = if base.trim().is_empty() {
        key.to_string()
    } else {
        format!("{base},{key}")
    };
    let lp = ListParams::default().labels(&selector).limit(PAGE_SIZE);
    let namespace = match (&line.namespace, line.all_namespaces) {
        (Some(ns), _) => Some(ns.clone()),
        (None, true) => None,
        (None, false) => Some(DEFAULT_NAMESPACE.to_string()),
    };
    let mut pods: Vec<Option<String>> = Vec::new();
    let mut jobs: Vec<Option<String>> = Vec::new();
    let _ = tokio::time::timeout(CLUSTER_BUDGET, async {
        let Ok((client, _)) = crate::client::connect(&line.connection()).await else {
            return;
        };
        let pod_api: Api<Pod> = scoped(&client, namespace.as_deref());
        let job_api: Api<Job> = scoped(&client, namespace.as_deref());
        let pod_list = paged(
            |lp| {
                let api = pod_api.clone();
                async move { api.list_metadata(&lp).await }
            },
            lp.clone(),
            &mut pods,
            |m: PartialObjectMeta<Pod>| label_of(&m.metadata, key),
        );
        let job_list = paged(
            |lp| {
                let api = job_api.clone();
                async move { api.list_metadata(&lp).await }
            },
            lp.clone(),
            &mut jobs,
            |m: PartialObjectMeta<Job>| label_of(&m.metadata, key),
        );
        let _ = futures::join!(pod_list, job_list);
    })
    .await;

    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for v in pods.into_iter().flatten() {
        counts.entry(v).or_default().0 += 1;
    }
    for v in jobs.into_iter().flatten() {
        counts.entry(v).or_default().1 += 1;
    }
    counts
        .into_iter()
        .map(|(value, (p, j))| {
            Suggestion::new(
                value,
                format!("{} pod{}, {} job{}", p, plural(p), j, plural(j)),
            )
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn label_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .filter(|v| !v.is_empty())
        .cloned()
}
