//! The reads an archive needs: the object as the API server has it now, its
//! Events, a job's pods (named by `inventory::JobPods`) and a container's
//! log (capped with `limitBytes`).

use futures::AsyncReadExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};
use serde_json::Value;

use crate::inventory::PodRef;
use crate::model::{Candidate, Kind};
use crate::retry::with_retry;

/// A read that failed, as one line.
pub(crate) fn why(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => crate::error::source_chain(other),
    }
}

/// A read that failed, and whether the API server answered it at all.
#[derive(Debug)]
pub(crate) struct ReadError {
    pub(crate) message: String,
    /// False for timeouts, refused and dropped connections.
    pub(crate) answered: bool,
}

/// The object named by `c` as JSON, or None when it is gone or its name now
/// belongs to another object (another uid).
pub(crate) async fn object(client: &Client, c: &Candidate) -> Result<Option<Value>, ReadError> {
    let found = match c.kind {
        Kind::Pod => {
            let api = Api::<Pod>::namespaced(client.clone(), &c.namespace);
            with_retry(|| api.get_opt(&c.name))
                .await
                .map(|o| o.map(|p| serde_json::to_value(p).unwrap_or_default()))
        }
        Kind::Job => {
            let api = Api::<Job>::namespaced(client.clone(), &c.namespace);
            with_retry(|| api.get_opt(&c.name))
                .await
                .map(|o| o.map(|j| serde_json::to_value(j).unwrap_or_default()))
        }
    }
    .map_err(|e| ReadError {
        message: format!("cannot read {}: {}", c.display_name(), why(&e)),
        answered: matches!(e, kube::Error::Api(_)),
    })?;
    Ok(found.filter(|o| o["metadata"]["uid"].as_str() == Some(&*c.uid)))
}

/// Every Event about the object with `uid` in `namespace`, oldest first.
pub(crate) async fn events(
    client: &Client,
    namespace: &str,
    uid: &str,
) -> Result<Vec<Value>, String> {
    let api = Api::<Event>::namespaced(client.clone(), namespace);
    let mut out = vec![];
    let mut token: Option<String> = None;
    loop {
        let mut lp = ListParams::default()
            .fields(&format!("involvedObject.uid={uid}"))
            .limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = with_retry(|| api.list(&lp))
            .await
            .map_err(|e| format!("cannot list its events: {}", why(&e)))?;
        token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        out.extend(
            page.items
                .into_iter()
                .map(|e| serde_json::to_value(e).unwrap_or_default()),
        );
        if token.is_none() {
            break;
        }
    }
    out.sort_by_key(when);
    Ok(out)
}

/// When an event happened, as a sortable RFC 3339 string.
fn when(e: &Value) -> String {
    ["eventTime", "lastTimestamp", "firstTimestamp"]
        .iter()
        .find_map(|k| e[k].as_str())
        .or_else(|| e["metadata"]["creationTimestamp"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The pod `p` names, whole, as JSON; None when it is gone (or its name
/// now belongs to another pod).
pub(crate) async fn pod(
    client: &Client,
    namespace: &str,
    p: &PodRef,
) -> Result<Option<Value>, String> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let found = with_retry(|| api.get_opt(&p.name))
        .await
        .map_err(|e| format!("cannot read the job's pod {}: {}", p.name, why(&e)))?;
    Ok(found
        .filter(|pod| pod.metadata.uid.as_deref() == Some(p.uid.as_str()))
        .map(|pod| serde_json::to_value(pod).unwrap_or_default()))
}

/// One container's log as it arrives, at most `limit` bytes (one attempt:
/// logs are archived where the kubelet serves them, and a missing log is no
/// failure).
pub(crate) async fn log(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
    limit: u64,
) -> Result<impl futures::AsyncRead + Unpin, String> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let lp = LogParams {
        container: Some(container.to_string()),
        limit_bytes: Some(limit as i64),
        previous,
        ..LogParams::default()
    };
    let stream = api.log_stream(pod, &lp).await.map_err(|e| why(&e))?;
    // The kubelet may send slightly more than limitBytes; never keep more.
    Ok(stream.take(limit))
}
