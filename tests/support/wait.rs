//! Waiting for the cluster: [`poll_until`] and the `wait_*` helpers built on it.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::objects::pod_phase;

/// Default timeout of the `wait_*` helpers.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every 200 ms until it returns `Ok(value)`; panics after `timeout` with
/// `what` and the last `Err(state)` it returned.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(state) => {
                if start.elapsed() >= timeout {
                    panic!("timed out after {timeout:?} waiting for {what}; last state: {state}");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn job_conditions(job: &Job) -> Vec<(String, String)> {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until Job `name` has condition `condition` (e.g. "Complete", "Failed") = True.
/// Panics if it instead reaches the other terminal condition.
pub async fn wait_job_condition(
    client: &Client,
    namespace: &str,
    name: &str,
    condition: &str,
    timeout: Duration,
) -> Job {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let what = format!("job {namespace}/{name} to have condition {condition}=True");
    poll_until(&what, timeout, || async {
        let job = api.get_opt(name).await.map_err(|e| e.to_string())?;
        let Some(job) = job else {
            return Err("job does not exist".into());
        };
        let conds = job_conditions(&job);
        if conds.iter().any(|(t, s)| t == condition && s == "True") {
            return Ok(job);
        }
        for terminal in ["Complete", "Failed"] {
            if terminal != condition && conds.iter().any(|(t, s)| t == terminal && s == "True") {
                panic!(
                    "job {namespace}/{name} reached {terminal} instead of {condition}: {:?}",
                    job.status
                );
            }
        }
        Err(format!("conditions {conds:?}"))
    })
    .await
}

/// Waits until pod `name` has `status.phase == phase`.
pub async fn wait_pod_phase(
    client: &Client,
    namespace: &str,
    name: &str,
    phase: &str,
    timeout: Duration,
) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let what = format!("pod {namespace}/{name} to be {phase}");
    poll_until(&what, timeout, || async {
        let pod = api.get_opt(name).await.map_err(|e| e.to_string())?;
        let Some(pod) = pod else {
            return Err("pod does not exist".into());
        };
        let current = pod_phase(&pod);
        if current == phase {
            Ok(pod)
        } else {
            Err(format!(
                "phase {current:?}, node {:?}",
                pod.spec.as_ref().and_then(|s| s.node_name.clone())
            ))
        }
    })
    .await
}

/// Waits until the Job has at least one pod and all its pods are in `phase`.
pub async fn wait_job_pods_phase(
    client: &Client,
    namespace: &str,
    job_name: &str,
    phase: &str,
    timeout: Duration,
) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job_name}"));
    let what = format!("pods of job {namespace}/{job_name} to be {phase}");
    poll_until(&what, timeout, || async {
        let pods = api.list(&lp).await.map_err(|e| e.to_string())?.items;
        let phases: Vec<(String, String)> = pods
            .iter()
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), pod_phase(p)))
            .collect();
        if !pods.is_empty() && phases.iter().all(|(_, ph)| ph == phase) {
            Ok(pods)
        } else {
            Err(format!("pods {phases:?}"))
        }
    })
    .await
}

/// Waits until object `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration)
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let what = format!(
        "{} {name} to be gone",
        std::any::type_name::<K>()
            .rsplit("::")
            .next()
            .unwrap_or("object")
    );
    poll_until(&what, timeout, || async {
        match api.get_opt(name).await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(obj) => Err(format!(
                "still exists (deletionTimestamp {:?}, finalizers {:?})",
                obj.meta().deletion_timestamp,
                obj.meta().finalizers
            )),
        }
    })
    .await
}
