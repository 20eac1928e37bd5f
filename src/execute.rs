//! Execution: the only writes to the API. Every delete goes through one
//! chokepoint (`delete.rs`: the whole rule set on the freshest copy, uid and
//! resourceVersion preconditions, a bounded re-read on conflict). Around it:
//! bounded concurrency, adaptive by default (`concurrency`: one permit per
//! request sent), short retries for transient answers, a stop (Ctrl-C) that
//! starts no more deletes and gives those in flight a moment to answer, and
//! a breaker that stops starting deletes once the API server has stopped
//! answering.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;

use crate::cli::{Cascade, Concurrency};
use crate::concurrency::{Controller, Limiter, CAP};
use crate::model::{Candidate, Inventory, Kind};
use crate::plan::Plan;
use crate::predelete::{BeforeDelete, Verdict};
use crate::select::guard::Rules;
use crate::stop::Stop;

mod delete;
pub(crate) mod events;
pub(crate) mod lease;
pub(crate) use delete::Deleter;
use delete::{not_started, refused};
pub(crate) mod mark;

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
    /// Replaced under its name since it was listed, or still changing after
    /// the re-reads of the chokepoint (409).
    Conflict,
    Failed,
    /// Not started: interrupted first.
    Cancelled,
    /// Not deleted: a keep marker seen at the delete, or the archive or hook
    /// before it said keep (`failure`: the archive or hook failed). The
    /// reason is the deletion's `error`.
    Kept {
        failure: bool,
    },
    /// Not deleted: at its delete a guard held it (terminating, no longer
    /// finished or matching…). The reason is the deletion's `error`.
    Skipped,
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
    /// What every object must still be at its delete.
    pub(crate) rules: Rules,
    /// Archive and hooks (`predelete`), before each delete.
    pub(crate) before_delete: BeforeDelete,
    /// Record an Event on each object before its delete (`--events`).
    pub(crate) events: Option<std::sync::Arc<events::Events>>,
}

/// What `execute` did.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    pub(crate) results: Vec<Deletion>,
    /// The breaker tripped: the server stopped answering.
    pub(crate) unanswered: bool,
}

/// Deletes every `Delete` item of the plan, at most `concurrency` requests
/// at once; `inv` is the listing the plan was made from.
pub(crate) async fn execute(
    client: &Client,
    plan: &Plan,
    inv: &Inventory,
    opts: &Options,
    stop: &Stop,
    on_done: impl Fn(&Deletion) + Send + Sync,
) -> Executed {
    let limiter = Limiter::new(match opts.concurrency {
        Concurrency::Auto => Controller::adaptive(CAP),
        Concurrency::Fixed(n) => Controller::fixed(n.into()),
    });
    let deleter = Deleter::new(client, opts, inv, limiter, stop);
    let results = stream::iter(plan.to_delete())
        .map(|item| {
            let deleter = &deleter;
            let c = &item.candidate;
            async move {
                if stop.is_set() {
                    return not_started(c, None);
                }
                let fresh = {
                    // Archive reads and hooks: `--concurrency N` at a time.
                    let _slot = tokio::select! {
                        s = deleter.before.acquire() => s,
                        _ = stop.wait() => return not_started(c, None),
                    };
                    if deleter.tripped() {
                        return not_started(c, Some(NOT_ATTEMPTED));
                    }
                    let refusal = |c: &Candidate| deleter.refusal(c);
                    match opts
                        .before_delete
                        .check(client, item, &refusal, &deleter.pods, stop)
                        .await
                    {
                        Verdict::Go { fresh } => fresh,
                        Verdict::Stopped => return not_started(c, None),
                        Verdict::Refused(p) => return refused(c, &p),
                        Verdict::Keep { reason, failure } => {
                            return Deletion {
                                uid: c.uid.to_string(),
                                outcome: Outcome::Kept { failure },
                                error: Some(reason),
                                code: None,
                            }
                        }
                    }
                };
                deleter.delete(c, fresh.as_deref()).await
            }
        })
        .buffer_unordered(deleter.cap())
        .inspect(|r| on_done(r))
        .collect()
        .await;
    Executed {
        results,
        unanswered: deleter.tripped(),
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
