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
//!   takes with it (every pod with an ownerReference to the job, controller
//!   or not: `inventory::JobPods`), each in its own
//!   `DIR/<namespace>/pod/<name>/`;
//! - `archive.json`: what the archive holds and what could not be fetched.
//!
//! Each archive is written to a hidden directory beside its place as its
//! parts arrive (a log is copied in 64 KiB pieces, never held whole) and
//! renamed into place: it is on disk whole or not at all, and it replaces
//! an older archive of the same name. A job's pods are archived one after
//! the other, each before the next is read, then the job itself. The reads
//! go through the caller's concurrency bound (`predelete`). What may be
//! written where, and with which modes: `archive/disk.rs`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use futures::AsyncReadExt;
use kube::Client;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::inventory::PodRef;
use crate::model::{Candidate, Inventory, Kind, Phase};
use crate::request::predelete::ArchiveSpec;

mod disk;
mod fetch;

pub(crate) use fetch::{object, why};

/// A log is copied to disk in pieces of this size.
const LOG_CHUNK: usize = 64 * 1024;

/// The directory an object's archive goes to.
pub(crate) fn dir_of(root: &Path, c: &Candidate) -> PathBuf {
    dir_for(root, &c.namespace, c.kind, &c.name)
}

fn dir_for(root: &Path, namespace: &str, kind: Kind, name: &str) -> PathBuf {
    root.join(namespace).join(kind_dir(kind)).join(name)
}

/// Whether `--archive-only` may let this object be archived: a failed one,
/// or a job (whose failed pods are archived even when it succeeded; `write`
/// decides once it has read them).
pub(crate) fn wanted(spec: &ArchiveSpec, c: &Candidate) -> bool {
    !spec.only_failed || c.phase == Phase::Failed || c.kind == Kind::Job
}

/// In a dry run: whether `c` would be archived, as far as the listing `inv`
/// tells (`with_pods`: a job's pods go with it).
pub(crate) fn would(spec: &ArchiveSpec, c: &Candidate, inv: &Inventory, with_pods: bool) -> bool {
    if !spec.only_failed || c.phase == Phase::Failed {
        return true;
    }
    c.kind == Kind::Job
        && with_pods
        && inv
            .pods
            .iter()
            .any(|p| p.phase == Phase::Failed && p.job_owners().any(|o| *o.uid == *c.uid))
}

/// An archive written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) dir: PathBuf,
    /// No log could be fetched (for a job: of one of its pods), and why.
    pub(crate) logs_missing: Option<String>,
}

/// Writes the archive of `c`, whose current state is `object`, and returns
/// where it went; None when `--archive-only failed` finds nothing failed (a
/// job that succeeded without a failed attempt). `pods`: the pods a job's
/// delete takes with it (None when they are orphaned); each one still there
/// is archived, one after the other, each before the next is read, and if
/// one cannot be, the job is not (nor deleted).
pub(crate) async fn write(
    client: &Client,
    spec: &ArchiveSpec,
    c: &Candidate,
    object: &Value,
    pods: Option<&[PodRef]>,
) -> Result<Option<Written>, String> {
    let mut extra = json!({});
    let mut logs_missing = None;
    if let (Kind::Job, Some(pods)) = (c.kind, pods) {
        let mut paths = vec![];
        for p in pods {
            let Some(pod) = fetch::pod(client, &c.namespace, p).await? else {
                continue; // gone since: the delete does not take it
            };
            let failed = pod["status"]["phase"].as_str() == Some("Failed");
            if spec.only_failed && c.phase != Phase::Failed && !failed {
                continue;
            }
            let dir = dir_for(&spec.dir, &c.namespace, Kind::Pod, &p.name);
            let missing = put(client, spec, Kind::Pod, &pod, json!({})).await?;
            if let (None, Some(why)) = (&logs_missing, missing) {
                logs_missing = Some(format!("pod {}: {why}", p.name));
            }
            paths.push(dir.display().to_string());
        }
        if spec.only_failed && c.phase != Phase::Failed && paths.is_empty() {
            return Ok(None);
        }
        extra["pods"] = json!(paths);
    } else if spec.only_failed && c.phase != Phase::Failed {
        // A job whose pods stay (orphaned): only a failed one is archived.
        return Ok(None);
    }
    let own = put(client, spec, c.kind, object, extra).await?;
    Ok(Some(Written {
        dir: dir_of(&spec.dir, c),
        logs_missing: own.or(logs_missing),
    }))
}

/// Runs a blocking step of `disk` off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// Writes one object's archive: begun in a hidden directory, each part
/// written as it arrives (a log never whole in memory), renamed into place.
/// `extra` joins its `archive.json`. Returns why a pod's archive holds no
/// log at all, if it does not (`archive.json`'s `logsMissing`).
async fn put(
    client: &Client,
    spec: &ArchiveSpec,
    kind: Kind,
    object: &Value,
    extra: Value,
) -> Result<Option<String>, String> {
    let meta = &object["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or_default().to_string();
    let name = meta["name"].as_str().unwrap_or_default().to_string();
    let uid = meta["uid"].as_str().unwrap_or_default();
    let dir = dir_for(&spec.dir, &namespace, kind, &name);
    let failed = |e: io::Error| format!("{}: {e}", dir.display());
    let events = fetch::events(client, &namespace, uid).await?;
    let partial = {
        let (root, namespace, name) = (spec.dir.clone(), namespace.clone(), name.clone());
        blocking(move || {
            disk::Partial::begin(&disk::Place {
                root: &root,
                namespace: &namespace,
                kind: kind_dir(kind),
                name: &name,
            })
        })
        .await
        .map_err(failed)?
    };
    let events_yaml: Vec<Value> = events
        .into_iter()
        .map(|mut e| {
            if let Some(m) = e.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            e
        })
        .collect();
    let mut record = json!({
        "apiVersion": crate::request::policy::API_VERSION,
        "kind": "Archive",
        "object": {"kind": kind, "namespace": namespace, "name": name, "uid": uid},
        "archivedAt": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "manifest": "manifest.yaml",
        "events": {"file": "events.yaml", "count": events_yaml.len()},
    });
    let events_text = serde_norway::to_string(&events_yaml).unwrap_or_default();
    drop(events_yaml);
    small(&partial, "manifest.yaml", manifest(object))
        .await
        .map_err(failed)?;
    small(&partial, "events.yaml", events_text.into_bytes())
        .await
        .map_err(failed)?;
    let mut logs_missing = None;
    if kind == Kind::Pod {
        let entries = pod_logs(client, spec, object, &partial)
            .await
            .map_err(failed)?;
        let fetched = entries.iter().any(|e| e["file"].is_string());
        record["logs"] = json!({"limitBytes": spec.log_bytes, "containers": entries});
        if !fetched {
            let why = entries
                .iter()
                .find_map(|e| e["error"].as_str())
                .unwrap_or("the pod has no containers")
                .to_string();
            record["logsMissing"] = json!(why);
            logs_missing = Some(why);
        }
    }
    if let (Some(r), Value::Object(e)) = (record.as_object_mut(), extra) {
        for (k, v) in e {
            r.entry(k).or_insert(v);
        }
    }
    small(&partial, "archive.json", pretty(&record))
        .await
        .map_err(failed)?;
    blocking(move || partial.commit()).await.map_err(failed)?;
    Ok(logs_missing)
}

fn kind_dir(kind: Kind) -> &'static str {
    match kind {
        Kind::Pod => "pod",
        Kind::Job => "job",
    }
}

/// Writes and syncs one small file of the archive.
async fn small(partial: &disk::Partial, rel: &str, bytes: Vec<u8>) -> io::Result<()> {
    let mut f = tokio::fs::File::from_std(partial.create(rel)?);
    f.write_all(&bytes).await?;
    f.sync_all().await
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

/// How a log's copy to disk broke off.
enum Broke {
    /// The fetch: the log is left out, and `archive.json` says why.
    Read(String),
    /// The disk: the archive fails.
    Write(io::Error),
}

/// Copies a log to `file` as it arrives, in chunks; its length.
async fn copy(reader: &mut (impl futures::AsyncRead + Unpin), file: File) -> Result<u64, Broke> {
    let mut out = tokio::fs::File::from_std(file);
    let mut buf = vec![0u8; LOG_CHUNK];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Broke::Read(e.to_string()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).await.map_err(Broke::Write)?;
        total += n as u64;
    }
    out.sync_all().await.map_err(Broke::Write)?;
    Ok(total)
}

/// Each container's current and previous log, written into `partial` as
/// they arrive; a record of each.
async fn pod_logs(
    client: &Client,
    spec: &ArchiveSpec,
    pod: &Value,
    partial: &disk::Partial,
) -> io::Result<Vec<Value>> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers: Vec<&str> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mut entries = vec![];
    for container in containers {
        for previous in [false, true] {
            let file = if previous {
                format!("logs/{container}.previous.log")
            } else {
                format!("logs/{container}.log")
            };
            let missing = |e: String| json!({"container": container, "previous": previous, "file": null, "error": e});
            let mut reader = match fetch::log(
                client,
                namespace,
                name,
                container,
                previous,
                spec.log_bytes,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    entries.push(missing(e));
                    continue;
                }
            };
            entries.push(match copy(&mut reader, partial.create(&file)?).await {
                Ok(bytes) => json!({
                    "container": container, "previous": previous, "file": file,
                    "bytes": bytes, "truncated": bytes >= spec.log_bytes,
                }),
                Err(Broke::Read(e)) => {
                    partial.remove(&file)?;
                    missing(e)
                }
                Err(Broke::Write(e)) => return Err(e),
            });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
