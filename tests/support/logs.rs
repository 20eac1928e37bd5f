//! Container logs and Events for tests of `--archive`. The fake nodes serve the kubelet
//! API (see `tests/cluster/up`): a kwok `Logs` object named after a pod names the files
//! its containers' current and previous logs are read from. Also pods on the fake nodes
//! that end Failed ([`kwok_pod`]), and Events about an object ([`create_event`]).

// rustc judges dead code per test binary (see mod.rs).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, LogParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::objects::{pod_phase, KWOK_FAIL_LABEL, KWOK_NODES};
use super::wait::{poll_until, DEFAULT_TIMEOUT};

/// One container's log as a test serves it: the text of its current and (optionally)
/// previous instance.
pub struct ContainerLog<'a> {
    pub container: &'a str,
    pub current: &'a str,
    pub previous: Option<&'a str>,
}

/// `text` in the CRI log format kwok reads: one `TIME stdout F line` per line.
fn cri(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("2026-01-01T00:00:{:02}.000000000Z stdout F {l}\n", i % 60))
        .collect()
}

/// Makes the fake node serve `logs` for pod `pod` (files written under `dir`), and
/// waits until the API server returns the first container's current log.
pub async fn serve_logs(
    client: &Client,
    namespace: &str,
    pod: &str,
    dir: &Path,
    logs: &[ContainerLog<'_>],
) {
    let mut entries = vec![];
    for l in logs {
        let current = dir.join(format!("{pod}.{}.log", l.container));
        std::fs::write(&current, cri(l.current)).unwrap();
        let mut e = json!({"containers": [l.container], "logsFile": current.display().to_string()});
        if let Some(prev) = l.previous {
            let previous = dir.join(format!("{pod}.{}.previous.log", l.container));
            std::fs::write(&previous, cri(prev)).unwrap();
            e["previousLogsFile"] = json!(previous.display().to_string());
        }
        entries.push(e);
    }
    let gvk = GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", "Logs");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "logs");
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"logs": entries},
    }))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &ar)
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("cannot create Logs {namespace}/{pod}: {e}"));
    let first = &logs[0];
    let want = format!("{}\n", first.current.trim_end_matches('\n'));
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    poll_until(
        &format!("kwok to serve the log of {pod}/{}", first.container),
        DEFAULT_TIMEOUT,
        || async {
            let lp = LogParams {
                container: Some(first.container.to_string()),
                ..Default::default()
            };
            match pods.logs(pod, &lp).await {
                Ok(text) if text == want => Ok(()),
                Ok(text) => Err(format!("served {text:?}")),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
}

/// A bare pod on a fake node with `containers`, labelled `labels`, that kwok runs and
/// then (label [`KWOK_FAIL_LABEL`]) fails about a second later. Returns it once Failed.
pub async fn kwok_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    labels: &[(&str, &str)],
    annotations: &[(&str, &str)],
    containers: &[&str],
) -> Pod {
    let mut l: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    l.insert(KWOK_FAIL_LABEL.into(), json!("true"));
    let a: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": l, "annotations": a},
        "spec": {
            "nodeName": KWOK_NODES[0],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": containers.iter()
                .map(|c| json!({"name": c, "image": "crucible.invalid/evaluation:test"}))
                .collect::<Vec<_>>(),
        },
    }))
    .unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("cannot create pod {namespace}/{name}: {e}"));
    poll_until(
        &format!("pod {namespace}/{name} to fail"),
        DEFAULT_TIMEOUT,
        || async {
            let p = api.get(name).await.map_err(|e| e.to_string())?;
            if pod_phase(&p) == "Failed" {
                Ok(p)
            } else {
                Err(pod_phase(&p))
            }
        },
    )
    .await
}

/// Records an Event about the object (`kind`, `name`, `uid`) with `reason` and `message`.
pub async fn create_event(
    client: &Client,
    namespace: &str,
    kind: &str,
    name: &str,
    uid: &str,
    reason: &str,
    message: &str,
) {
    let api_version = if kind == "Job" { "batch/v1" } else { "v1" };
    let now = super::objects::rfc3339(std::time::SystemTime::now());
    let ev: Event = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{}", super::objects::random_suffix(8)), "namespace": namespace},
        "involvedObject": {"apiVersion": api_version, "kind": kind, "name": name, "namespace": namespace, "uid": uid},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "crucible-test"},
    }))
    .unwrap();
    Api::<Event>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &ev)
        .await
        .unwrap_or_else(|e| panic!("cannot create an event about {kind} {name}: {e}"));
}

/// Polls for up to `limit` until `dir` holds at least `n` entries (not hidden).
pub async fn wait_entries(dir: &Path, n: usize, limit: Duration) {
    poll_until(
        &format!("{n} archives in {}", dir.display()),
        limit,
        || async {
            let count = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                        .count()
                })
                .unwrap_or(0);
            if count >= n {
                Ok(())
            } else {
                Err(format!("{count}"))
            }
        },
    )
    .await
}
