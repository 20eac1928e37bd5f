//! Execution: the only writes to the API. Bounded concurrency, adaptive by
//! default (`concurrency`: one permit per request sent), a uid
//! precondition on every delete, short retries for transient answers, a stop
//! (Ctrl-C) that starts no more deletes and gives those in flight a moment to
//! answer, and a breaker that stops starting deletes once the API server has
//! stopped answering.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::{Client, Resource};

use crate::cli::{Cascade, Concurrency};
use crate::concurrency::{Answer, Controller, Limiter, Permit, CAP};
use crate::model::{Candidate, Kind};
use crate::plan::Plan;
use crate::predelete::{BeforeDelete, Verdict};
use crate::retry::{request_text, with_retry};
use crate::stop::Stop;

pub(crate) mod events;
pub(crate) mod lease;

/// After a stop, how long deletes already sent may still answer.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);
/// This many deletes in a row without any answer from the server (timeouts,
/// refused or dropped connections) and no more are started.
const UNANSWERED_IN_A_ROW: usize = 8;
/// The error of a delete the breaker did not start.
pub(crate) const NOT_ATTEMPTED: &str = "not attempted: the API server stopped answering";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Deletion accepted (the object may linger while it terminates).
    Deleted,
    /// Server dry run: the server would have deleted it.
    WouldDelete,
    /// Already gone (404): success.
    Gone,
    /// The uid precondition failed (409): a same-named replacement exists.
    Conflict,
    Failed,
    /// Not started: interrupted first.
    Cancelled,
    /// Not deleted: the archive or hook before it said keep (`failure`: the
    /// archive or hook failed). The reason is the deletion's `error`.
    Kept {
        failure: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deletion {
    pub(crate) uid: String,
    pub(crate) outcome: Outcome,
    pub(crate) error: Option<String>,
    /// HTTP status of a failure, to tell RBAC refusals (403) apart.
    pub(crate) code: Option<u16>,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) server_dry_run: bool,
    pub(crate) cascade: Cascade,
    pub(crate) grace_period: Option<u32>,
    pub(crate) concurrency: Concurrency,
    /// Also a resourceVersion precondition (`--from-plan`): an object changed
    /// since it was checked is a conflict, not a delete.
    pub(crate) pin_resource_version: bool,
    /// Archive and hooks (`predelete`), before each delete.
    pub(crate) before_delete: BeforeDelete,
    /// Record an Event on each object before its delete (`--events`).
    pub(crate) events: Option<std::sync::Arc<events::Events>>,
}

pub(crate) fn delete_params(kind: Kind, uid: &str, opts: &Options) -> DeleteParams {
    DeleteParams {
        dry_run: opts.server_dry_run,
        grace_period_seconds: opts.grace_period,
        // batch/v1 defaults to orphaning a job's pods; a cleanup tool must not.
        propagation_policy: (kind == Kind::Job).then_some(match opts.cascade {
            Cascade::Background => PropagationPolicy::Background,
            Cascade::Foreground => PropagationPolicy::Foreground,
            Cascade::Orphan => PropagationPolicy::Orphan,
        }),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
    }
}

fn delete_request(
    c: &Candidate,
    opts: &Options,
) -> std::result::Result<http::Request<Vec<u8>>, kube::Error> {
    let path = match c.kind {
        Kind::Pod => Pod::url_path(&(), Some(&c.namespace)),
        Kind::Job => Job::url_path(&(), Some(&c.namespace)),
    };
    let mut params = delete_params(c.kind, &c.uid, opts);
    if let Some(p) = params.preconditions.as_mut() {
        p.resource_version = (opts.pin_resource_version && !c.resource_version.is_empty())
            .then(|| c.resource_version.to_string());
    }
    let mut req = kube::core::Request::new(path)
        .delete(&c.name, &params)
        .map_err(kube::Error::BuildRequest)?;
    if opts.server_dry_run {
        // Also in the query string, so audit logs show the request was a dry run.
        let uri = format!("{}dryRun=All", req.uri());
        *req.uri_mut() = uri.parse().map_err(|e: http::uri::InvalidUri| {
            kube::Error::BuildRequest(kube::core::request::Error::Validation(e.to_string()))
        })?;
    }
    Ok(req)
}

/// Deletes one object: `first` is the permit to send the first attempt
/// with; a retry waits for another.
pub(crate) async fn delete_one(
    client: &Client,
    c: &Candidate,
    opts: &Options,
    limiter: &Limiter,
    first: Permit<'_>,
) -> Deletion {
    let mut first = Some(first);
    let sent = with_retry(|| {
        let first = first.take();
        async move {
            let permit = match first {
                Some(p) => p,
                None => limiter.acquire().await,
            };
            let r = match delete_request(c, opts) {
                Ok(req) => request_text(client, req).await,
                Err(e) => Err(e),
            };
            permit.done(Answer::of(&r));
            r
        }
    })
    .await;
    let (outcome, error, code) = match sent {
        Ok(_) if opts.server_dry_run => (Outcome::WouldDelete, None, None),
        Ok(_) => (Outcome::Deleted, None, None),
        Err(kube::Error::Api(s)) if s.code == 404 => (Outcome::Gone, None, None),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            (Outcome::Conflict, Some(s.message.clone()), Some(409))
        }
        Err(kube::Error::Api(s)) => (Outcome::Failed, Some(s.message.clone()), Some(s.code)),
        Err(e) => (Outcome::Failed, Some(crate::error::source_chain(&e)), None),
    };
    Deletion {
        uid: c.uid.to_string(),
        outcome,
        error,
        code,
    }
}

/// What `execute` did.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    pub(crate) results: Vec<Deletion>,
    /// The breaker tripped: the server stopped answering.
    pub(crate) unanswered: bool,
}

/// Deletes every `Delete` item of the plan, at most `concurrency` requests
/// at once.
pub(crate) async fn execute(
    client: &Client,
    plan: &Plan,
    opts: &Options,
    stop: &Stop,
    on_done: impl Fn(&Deletion) + Send + Sync,
) -> Executed {
    let in_a_row = AtomicUsize::new(0);
    let tripped = AtomicBool::new(false);
    let limiter = Limiter::new(match opts.concurrency {
        Concurrency::Auto => Controller::adaptive(CAP),
        Concurrency::Fixed(n) => Controller::fixed(n.into()),
    });
    let before = tokio::sync::Semaphore::new(opts.concurrency.bound());
    let results = stream::iter(plan.to_delete())
        .map(|item| {
            let (in_a_row, tripped, limiter, before) = (&in_a_row, &tripped, &limiter, &before);
            let c = &item.candidate;
            async move {
                let not_started = |error: Option<&str>| Deletion {
                    uid: c.uid.to_string(),
                    outcome: Outcome::Cancelled,
                    error: error.map(str::to_string),
                    code: None,
                };
                if stop.is_set() {
                    return not_started(None);
                }
                {
                    // Archive reads, hooks and Events: `--concurrency N`
                    // at a time (16 under auto), apart from the deletes.
                    let _slot = tokio::select! {
                        s = before.acquire() => s,
                        _ = stop.wait() => return not_started(None),
                    };
                    if tripped.load(Ordering::SeqCst) {
                        return not_started(Some(NOT_ATTEMPTED));
                    }
                    match opts.before_delete.check(client, item, stop).await {
                        Verdict::Go => {}
                        Verdict::Stopped => return not_started(None),
                        Verdict::Keep { reason, failure } => {
                            return Deletion {
                                uid: c.uid.to_string(),
                                outcome: Outcome::Kept { failure },
                                error: Some(reason),
                                code: None,
                            }
                        }
                    }
                    if let Some(events) = &opts.events {
                        events.before_delete(c, stop).await;
                        if stop.is_set() {
                            return not_started(None);
                        }
                    }
                }
                let permit = tokio::select! {
                    p = limiter.acquire() => p,
                    _ = stop.wait() => return not_started(None),
                };
                if stop.is_set() {
                    return not_started(None);
                }
                if tripped.load(Ordering::SeqCst) {
                    return not_started(Some(NOT_ATTEMPTED));
                }
                let r = tokio::select! {
                    r = delete_one(client, c, opts, limiter, permit) => r,
                    _ = async {
                        stop.wait().await;
                        tokio::time::sleep(IN_FLIGHT_GRACE).await;
                    } => Deletion {
                        uid: c.uid.to_string(),
                        outcome: Outcome::Failed,
                        error: Some("interrupted before the server answered: the object may or may not be deleted".into()),
                        code: None,
                    },
                };
                if r.outcome == Outcome::Failed && r.code.is_none() {
                    if in_a_row.fetch_add(1, Ordering::SeqCst) + 1 >= UNANSWERED_IN_A_ROW {
                        tripped.store(true, Ordering::SeqCst);
                    }
                } else {
                    in_a_row.store(0, Ordering::SeqCst);
                }
                r
            }
        })
        .buffer_unordered(limiter.cap())
        .inspect(|r| on_done(r))
        .collect()
        .await;
    Executed {
        results,
        unanswered: tripped.load(Ordering::SeqCst),
    }
}

/// A deleted object still there while `--wait` waits (it terminates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Left {
    pub(crate) uid: String,
    /// `pod/name`.
    pub(crate) name: String,
    /// What holds it: its finalizers, as last read.
    pub(crate) finalizers: Vec<String>,
    /// When its deletion began (its deletionTimestamp), once read.
    pub(crate) since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Waits until each deleted object is gone (or replaced by a new uid),
/// calling `progress` with what is still there after each round of reads.
/// Returns what was still there when the timeout ran out or a stop came.
pub(crate) async fn wait_gone(
    client: &Client,
    items: &[&Candidate],
    timeout: Duration,
    stop: &Stop,
    mut progress: impl FnMut(&[Left]),
) -> Vec<Left> {
    let deadline = Instant::now() + timeout;
    let mut remaining: Vec<Left> = items
        .iter()
        .map(|c| Left {
            uid: c.uid.to_string(),
            name: c.display_name(),
            finalizers: vec![],
            since: None,
        })
        .collect();
    let by_uid: std::collections::HashMap<&str, &Candidate> =
        items.iter().map(|c| (&*c.uid, *c)).collect();
    let by_uid = &by_uid;
    while !remaining.is_empty() && Instant::now() < deadline && !stop.is_set() {
        let check = stream::iter(remaining.iter())
            .map(|l| async move {
                match by_uid.get(l.uid.as_str()) {
                    Some(c) => still_there(client, c).await,
                    None => Seen::Gone,
                }
            })
            .buffered(16)
            .collect::<Vec<Seen>>();
        let seen = tokio::select! {
            seen = check => seen,
            _ = stop.wait() => break,
        };
        remaining = remaining
            .into_iter()
            .zip(seen)
            .filter_map(|(mut l, s)| match s {
                Seen::Gone => None,
                Seen::Unknown => Some(l),
                Seen::There { finalizers, since } => {
                    l.finalizers = finalizers;
                    l.since = since;
                    Some(l)
                }
            })
            .collect();
        progress(&remaining);
        if !remaining.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.wait() => {}
            }
        }
    }
    remaining
}

/// What a read of a deleted object found.
enum Seen {
    /// Gone, or its name taken by a new object.
    Gone,
    There {
        finalizers: Vec<String>,
        since: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The read failed: keep waiting until the deadline.
    Unknown,
}

async fn still_there(client: &Client, c: &Candidate) -> Seen {
    let found = match c.kind {
        Kind::Pod => kube::Api::<Pod>::namespaced(client.clone(), &c.namespace)
            .get_metadata_opt(&c.name)
            .await
            .map(|o| o.map(|m| m.metadata)),
        Kind::Job => kube::Api::<Job>::namespaced(client.clone(), &c.namespace)
            .get_metadata_opt(&c.name)
            .await
            .map(|o| o.map(|m| m.metadata)),
    };
    match found {
        Ok(Some(m)) if m.uid.as_deref() == Some(&*c.uid) => Seen::There {
            finalizers: m.finalizers.unwrap_or_default(),
            since: m
                .deletion_timestamp
                .map(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0).unwrap_or_default()),
        },
        Ok(_) => Seen::Gone,
        Err(_) => Seen::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::Phase;

    fn opts(dry: bool, cascade: Cascade) -> Options {
        Options {
            server_dry_run: dry,
            cascade,
            grace_period: Some(5),
            concurrency: Concurrency::Fixed(4),
            pin_resource_version: false,
            before_delete: Default::default(),
            events: None,
        }
    }

    #[test]
    fn every_delete_carries_a_uid_precondition_and_jobs_cascade() {
        let job_req = delete_request(
            &job("j", Phase::Complete, 0),
            &opts(false, Cascade::Background),
        )
        .unwrap();
        assert_eq!(job_req.method(), http::Method::DELETE);
        assert_eq!(
            job_req.uri().path(),
            "/apis/batch/v1/namespaces/crucible/jobs/j"
        );
        let body: serde_json::Value = serde_json::from_slice(job_req.body()).unwrap();
        assert_eq!(body["preconditions"]["uid"], "uid-j");
        assert_eq!(body["propagationPolicy"], "Background");
        assert_eq!(body["gracePeriodSeconds"], 5);
        assert!(body.get("dryRun").is_none());

        let pod_req =
            delete_request(&pod("p", Phase::Failed, 0), &opts(true, Cascade::Orphan)).unwrap();
        assert_eq!(pod_req.uri().path(), "/api/v1/namespaces/crucible/pods/p");
        assert!(pod_req
            .uri()
            .query()
            .unwrap_or_default()
            .contains("dryRun=All"));
        let body: serde_json::Value = serde_json::from_slice(pod_req.body()).unwrap();
        assert_eq!(body["dryRun"], serde_json::json!(["All"]));
        assert!(body.get("propagationPolicy").is_none());

        let orphan = delete_params(Kind::Job, "u", &opts(false, Cascade::Orphan));
        assert_eq!(orphan.propagation_policy, Some(PropagationPolicy::Orphan));
    }

    #[test]
    fn a_pinned_delete_carries_the_checked_resource_version() {
        let mut p = pod("p", Phase::Failed, 0);
        p.resource_version = "42".into();
        let body = |pin: bool| {
            let o = Options {
                pin_resource_version: pin,
                ..opts(false, Cascade::Background)
            };
            let r = delete_request(&p, &o).unwrap();
            serde_json::from_slice::<serde_json::Value>(r.body()).unwrap()
        };
        assert_eq!(body(true)["preconditions"]["resourceVersion"], "42");
        assert_eq!(body(true)["preconditions"]["uid"], "uid-p");
        assert!(body(false)["preconditions"]
            .get("resourceVersion")
            .is_none());
    }
}
