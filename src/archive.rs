//! `--archive DIR`: before an object is deleted, what a person debugging it
//! needs goes to `DIR/<namespace>/<kind>/<name>/`:
//!
//! - `manifest.yaml`: the object as the API server has it (managedFields stripped);
//! - `events.yaml`: its Events, oldest first;
//! - pods: `logs/<container>.log` and `logs/<container>.previous.log`, each at
//!   most `--archive-log-bytes` (the API's `limitBytes`), where the kubelet
//!   serves them; a log that cannot be fetched is left out and `archive.json`
//!   says why;
//! - jobs (unless `--cascade orphan`): the archives of the pods the delete
//!   takes with it, each in its own `DIR/<namespace>/pod/<name>/`;
//! - `archive.json`: what the archive holds and what could not be fetched.
//!
//! An archive is assembled in memory, written to a hidden directory beside
//! its place and renamed into place: it is on disk whole or not at all, and
//! it replaces an older archive of the same name. The reads go through the
//! caller's concurrency bound (`predelete`).

use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use kube::Client;
use serde_json::{json, Value};

use crate::model::{Candidate, Kind, Phase};
use crate::request::predelete::ArchiveSpec;

mod disk;
mod fetch;

pub(crate) use fetch::object;

/// The directory an object's archive goes to.
pub(crate) fn dir_of(root: &Path, c: &Candidate) -> PathBuf {
    dir_for(root, &c.namespace, c.kind, &c.name)
}

fn dir_for(root: &Path, namespace: &str, kind: Kind, name: &str) -> PathBuf {
    let kind = match kind {
        Kind::Pod => "pod",
        Kind::Job => "job",
    };
    root.join(namespace).join(kind).join(name)
}

/// Whether `--archive-only` lets this object be archived.
pub(crate) fn wanted(spec: &ArchiveSpec, c: &Candidate) -> bool {
    !spec.only_failed || c.phase == Phase::Failed
}

/// The files of one archive, by path relative to its directory.
struct Contents {
    dir: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

/// Writes the archive of `c`, whose current state is `object`, and returns
/// its directory. `with_pods`: a job's pods go with it (not orphaned).
pub(crate) async fn write(
    client: &Client,
    spec: &ArchiveSpec,
    c: &Candidate,
    object: &Value,
    with_pods: bool,
) -> Result<PathBuf, String> {
    let mut extra = json!({});
    let mut archives = vec![];
    if c.kind == Kind::Job && with_pods {
        let pods = fetch::job_pods(client, &c.namespace, &c.uid).await?;
        let mut paths = vec![];
        for pod in pods {
            let name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let dir = dir_for(&spec.dir, &c.namespace, Kind::Pod, &name);
            paths.push(dir.display().to_string());
            archives.push(contents(client, spec, Kind::Pod, &pod, dir).await?);
        }
        extra["pods"] = json!(paths);
    }
    let dir = dir_of(&spec.dir, c);
    let mut own = contents(client, spec, c.kind, object, dir.clone()).await?;
    merge_record(&mut own, extra);
    archives.push(own);
    tokio::task::spawn_blocking(move || {
        for a in archives {
            disk::put(&a.dir, &a.files).map_err(|e| format!("{}: {e}", a.dir.display()))?;
        }
        Ok::<_, String>(())
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(dir)
}

/// Adds `extra` to the `archive.json` of `a`.
fn merge_record(a: &mut Contents, extra: Value) {
    if let Some((_, bytes)) = a.files.iter_mut().find(|(p, _)| p == "archive.json") {
        let mut record: Value = serde_json::from_slice(bytes).unwrap_or_default();
        if let (Some(r), Value::Object(e)) = (record.as_object_mut(), extra) {
            for (k, v) in e {
                r.entry(k).or_insert(v);
            }
        }
        *bytes = pretty(&record);
    }
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The manifest without `metadata.managedFields`, as YAML.
fn manifest(object: &Value) -> Vec<u8> {
    let mut o = object.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    serde_norway::to_string(&o).unwrap_or_default().into_bytes()
}

/// Everything one object's archive holds.
async fn contents(
    client: &Client,
    spec: &ArchiveSpec,
    kind: Kind,
    object: &Value,
    dir: PathBuf,
) -> Result<Contents, String> {
    let meta = &object["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or_default();
    let name = meta["name"].as_str().unwrap_or_default();
    let uid = meta["uid"].as_str().unwrap_or_default();
    let events = fetch::events(client, namespace, uid).await?;
    let events_yaml: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if let Some(m) = e.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            e
        })
        .collect();
    let mut files = vec![
        ("manifest.yaml".to_string(), manifest(object)),
        (
            "events.yaml".to_string(),
            serde_norway::to_string(&events_yaml)
                .unwrap_or_default()
                .into_bytes(),
        ),
    ];
    let mut record = json!({
        "apiVersion": crate::request::policy::API_VERSION,
        "kind": "Archive",
        "object": {"kind": kind, "namespace": namespace, "name": name, "uid": uid},
        "archivedAt": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "manifest": "manifest.yaml",
        "events": {"file": "events.yaml", "count": events.len()},
    });
    if kind == Kind::Pod {
        let (logs, entries) = pod_logs(client, spec, object).await;
        files.extend(logs);
        let fetched = entries.iter().any(|e| e["file"].is_string());
        record["logs"] = json!({"limitBytes": spec.log_bytes, "containers": entries});
        if !fetched {
            record["logsMissing"] = json!(entries
                .iter()
                .find_map(|e| e["error"].as_str())
                .unwrap_or("the pod has no containers"));
        }
    }
    files.push(("archive.json".to_string(), pretty(&record)));
    Ok(Contents { dir, files })
}

/// Each container's current and previous log, and a record of each.
async fn pod_logs(
    client: &Client,
    spec: &ArchiveSpec,
    pod: &Value,
) -> (Vec<(String, Vec<u8>)>, Vec<Value>) {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mut files = vec![];
    let mut entries = vec![];
    for container in containers {
        for previous in [false, true] {
            let file = if previous {
                format!("logs/{container}.previous.log")
            } else {
                format!("logs/{container}.log")
            };
            let got =
                fetch::log(client, namespace, name, container, previous, spec.log_bytes).await;
            entries.push(match got {
                Ok(bytes) => {
                    let entry = json!({
                        "container": container, "previous": previous, "file": file,
                        "bytes": bytes.len(), "truncated": bytes.len() as u64 >= spec.log_bytes,
                    });
                    files.push((file, bytes));
                    entry
                }
                Err(e) => json!({
                    "container": container, "previous": previous, "file": null, "error": e,
                }),
            });
        }
    }
    (files, entries)
}

#[cfg(test)]
mod tests;
