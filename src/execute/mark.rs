//! `--mark-kept-for`: the annotations that keep an object until a time
//! (`crucible-clean/keep-until`, and `crucible-clean/keep-reason`), written
//! with a JSON merge patch that also names the object's uid: a same-named
//! replacement is never marked (the server refuses to change a uid, 422).

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::{stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::model::{Candidate, Kind, KEEP_REASON_KEY, KEEP_UNTIL_KEY};
use crate::retry::with_retry;
use crate::stop::Stop;

/// Patches in flight at once (a failed test has a handful of objects).
const IN_FLIGHT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MarkOutcome {
    Marked,
    /// A dry run: nothing written (`server`: the server accepted the patch
    /// with dryRun=All).
    WouldMark,
    /// Gone before it could be marked (404).
    Gone,
    /// Not started: interrupted first.
    Cancelled,
    /// The error, and the HTTP status when the server answered.
    Failed(String, Option<u16>),
}

/// The annotations, as a JSON merge patch pinned to the object's uid.
pub(crate) fn patch(uid: &str, until: DateTime<Utc>, reason: Option<&str>) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        KEEP_UNTIL_KEY.into(),
        until.to_rfc3339_opts(SecondsFormat::Secs, true).into(),
    );
    // Without a reason, an earlier mark's reason goes: it would explain the wrong keep.
    annotations.insert(
        KEEP_REASON_KEY.into(),
        reason.map_or(serde_json::Value::Null, Into::into),
    );
    json!({"metadata": {"uid": uid, "annotations": annotations}})
}

/// Marks each object kept until `until`: `dry_run` None writes, `Some(false)`
/// writes nothing, `Some(true)` sends each patch with dryRun=All.
pub(crate) async fn mark(
    client: &Client,
    objects: &[Arc<Candidate>],
    until: DateTime<Utc>,
    reason: Option<&str>,
    dry_run: Option<bool>,
    stop: &Stop,
) -> Vec<MarkOutcome> {
    stream::iter(objects.iter())
        .map(|c| async move {
            if stop.is_set() {
                return MarkOutcome::Cancelled;
            }
            if dry_run == Some(false) {
                return MarkOutcome::WouldMark;
            }
            let params = PatchParams {
                dry_run: dry_run == Some(true),
                ..Default::default()
            };
            let body = Patch::Merge(patch(&c.uid, until, reason));
            let sent = with_retry(|| async {
                match c.kind {
                    Kind::Pod => Api::<Pod>::namespaced(client.clone(), &c.namespace)
                        .patch(&c.name, &params, &body)
                        .await
                        .map(|_| ()),
                    Kind::Job => Api::<Job>::namespaced(client.clone(), &c.namespace)
                        .patch(&c.name, &params, &body)
                        .await
                        .map(|_| ()),
                }
            })
            .await;
            match sent {
                Ok(()) if dry_run == Some(true) => MarkOutcome::WouldMark,
                Ok(()) => MarkOutcome::Marked,
                Err(kube::Error::Api(s)) if s.code == 404 => MarkOutcome::Gone,
                Err(kube::Error::Api(s)) => MarkOutcome::Failed(s.message.clone(), Some(s.code)),
                Err(e) => MarkOutcome::Failed(crate::error::source_chain(&e), None),
            }
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_patch_names_the_uid_and_both_annotations() {
        let t = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        let p = patch("u-1", t, Some("tests/test_x.py::test_y[a b]"));
        assert_eq!(
            p,
            json!({"metadata": {"uid": "u-1", "annotations": {
                "crucible-clean/keep-until": "2030-01-02T03:04:05Z",
                "crucible-clean/keep-reason": "tests/test_x.py::test_y[a b]"}}})
        );
        let p = patch("u-1", t, None);
        assert!(p["metadata"]["annotations"]["crucible-clean/keep-reason"].is_null());
    }
}
