//! The pods a job's delete takes with it, as the garbage collector sees
//! them: every pod with an ownerReference to the job's uid, controller or
//! not (`Candidate::job_owners`), found by reading the namespace's pods
//! (metadata only) and never by a label — the pods of a job with
//! `manualSelector: true` carry no `controller-uid` label. The one set for
//! the keep marker at the delete, the archive and what the cascade frees.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kube::Client;

use super::convert::pod_candidate;
use super::{list_meta, list_params};
use crate::model::{Keep, Phase};
use crate::request::Scope;

/// A pod that a job owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodRef {
    pub(crate) name: String,
    pub(crate) uid: String,
    /// Its keep (`model::keep`).
    pub(crate) keep: Keep,
}

/// The pods of each job of one namespace, by job uid.
#[derive(Debug, Default)]
pub(crate) struct JobPods(HashMap<String, Vec<PodRef>>);

impl JobPods {
    /// The pods of the job with `uid`.
    pub(crate) fn of(&self, job_uid: &str) -> &[PodRef] {
        self.0.get(job_uid).map(Vec::as_slice).unwrap_or_default()
    }
}

/// Reads the pods of every job of `namespace` (one paged metadata LIST).
pub(crate) async fn job_pods(client: &Client, namespace: &str) -> Result<JobPods, kube::Error> {
    let mut owned: Vec<Vec<(String, PodRef)>> = Vec::new();
    list_meta(
        client,
        &Scope::Namespace(namespace.to_string()),
        list_params("", None),
        &mut owned,
        |p| {
            let pod = pod_candidate(&p.metadata, Phase::Unknown, None);
            pod.job_owners()
                .map(|job| {
                    let r = PodRef {
                        name: pod.name.to_string(),
                        uid: pod.uid.to_string(),
                        keep: pod.keep,
                    };
                    (job.uid.clone(), r)
                })
                .collect()
        },
    )
    .await?;
    let mut by_job: HashMap<String, Vec<PodRef>> = HashMap::new();
    for (job, pod) in owned.into_iter().flatten() {
        by_job.entry(job).or_default().push(pod);
    }
    Ok(JobPods(by_job))
}

/// The last read of one namespace's job pods and when it started.
type Last = Option<(Instant, Arc<JobPods>)>;

/// Fresh reads of the pods of jobs, shared by the deletes of one run. A read
/// serves every job that asked before it started; a job that asks later
/// waits for the next one. So each job's pods are read after the job reached
/// its delete, and jobs that reach it together share one LIST.
#[derive(Debug, Default)]
pub(crate) struct FreshPods {
    by_namespace: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Last>>>>,
}

impl FreshPods {
    /// The job pods of `namespace` as a read that started at or after `asked`.
    pub(crate) async fn read_after(
        &self,
        client: &Client,
        namespace: &str,
        asked: Instant,
    ) -> Result<Arc<JobPods>, kube::Error> {
        let slot = match self.by_namespace.lock() {
            Ok(mut m) => Arc::clone(m.entry(namespace.to_string()).or_default()),
            Err(_) => Arc::default(),
        };
        let mut last = slot.lock().await;
        if let Some((started, pods)) = last.as_ref() {
            if *started >= asked {
                return Ok(Arc::clone(pods));
            }
        }
        let started = Instant::now();
        let pods = Arc::new(job_pods(client, namespace).await?);
        *last = Some((started, Arc::clone(&pods)));
        Ok(pods)
    }
}
