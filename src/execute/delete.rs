//! The one chokepoint every delete goes through, whatever chose the object
//! (a strategy, a policy rule, a plan file, the guard's reap, `--stale-runs`,
//! a watch): [`Deleter::delete`], the only caller of the only function that
//! builds a delete request of a pod or job (`tests/architecture.rs` checks).
//!
//! It applies the whole rule set (`select::guard::Rules`: finished, keep
//! marker, not terminating, not a pod of a running job, still matching what
//! selected it; for a job, none of the pods the cascade would take is kept)
//! to the freshest copy it holds — the listing, or what the archive or hook
//! step just read — and deletes with that copy's uid and resourceVersion as
//! preconditions, which prove nothing changed since: so the usual path sends
//! no request but the delete. On a 409 it reads the object again, checks
//! again and retries, at most [`CONFLICT_RETRIES`] times; an object replaced
//! under its name, or still changing, is reported `conflict`.
//!
//! A job's preconditions do not cover its pods: before a job's delete (unless
//! the cascade orphans them) its pods are read fresh (`inventory::FreshPods`,
//! one LIST shared by the jobs that reach their delete together), and a pod
//! marked keep stops the job.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions, PropagationPolicy};
use kube::{Client, Resource};

use super::{Deletion, Options, Outcome, NOT_ATTEMPTED};
use crate::cli::Cascade;
use crate::concurrency::{Answer, Limiter, Permit};
use crate::inventory::{self, FreshPods, JobPods};
use crate::model::{Candidate, Keep, Kind, OwnerState};
use crate::retry::{request_text, with_retry};
use crate::select::guard::{Protection, Ties};
use crate::stop::Stop;

/// After a stop, how long deletes already sent may still answer.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);
/// This many deletes in a row without any answer from the server (timeouts,
/// refused or dropped connections) and no more are started.
const UNANSWERED_IN_A_ROW: usize = 8;
/// How many times a delete that met a conflict (409) is read, checked and
/// sent again: the job controller removing its finalizer from a fresh pod
/// costs one; an object that keeps changing is reported.
pub(crate) const CONFLICT_RETRIES: usize = 2;

/// The deletes of one run (or one watch cycle): the rules, what the listing
/// knows of owners and kept objects, the bounds, the breaker.
pub(crate) struct Deleter<'a> {
    client: &'a Client,
    opts: &'a Options,
    ties: &'a (dyn Ties + Sync),
    stop: &'a Stop,
    limiter: Limiter,
    /// Archive reads, hooks and Events: `--concurrency N` at a time (16
    /// under auto), apart from the deletes.
    pub(crate) before: tokio::sync::Semaphore,
    pub(crate) pods: FreshPods,
    in_a_row: AtomicUsize,
    tripped: AtomicBool,
}

/// What the rules see of ties when a job's pods were just read: the kept
/// pods of that read, the rest from the listing.
struct Fresh<'a> {
    listing: &'a (dyn Ties + Sync),
    job: &'a str,
    pods: &'a JobPods,
}

impl Ties for Fresh<'_> {
    fn owner_state(&self, job_uid: &str) -> Option<OwnerState> {
        self.listing.owner_state(job_uid)
    }
    fn kept_job(&self, job_uid: &str) -> Option<(&str, Keep)> {
        self.listing.kept_job(job_uid)
    }
    fn kept_pod(&self, job_uid: &str) -> Option<(&str, Keep)> {
        if job_uid == self.job {
            self.pods
                .of(job_uid)
                .iter()
                .filter(|p| p.keep != Keep::NONE)
                .fold(None, |longest: Option<(&str, Keep)>, p| match longest {
                    Some((_, k)) if k.longer(p.keep) == k => longest,
                    _ => Some((p.name.as_str(), p.keep)),
                })
        } else {
            self.listing.kept_pod(job_uid)
        }
    }
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.listing.now()
    }
}

impl<'a> Deleter<'a> {
    pub(crate) fn new(
        client: &'a Client,
        opts: &'a Options,
        ties: &'a (dyn Ties + Sync),
        limiter: Limiter,
        stop: &'a Stop,
    ) -> Self {
        Deleter {
            client,
            opts,
            ties,
            stop,
            limiter,
            before: tokio::sync::Semaphore::new(opts.concurrency.bound()),
            pods: FreshPods::default(),
            in_a_row: AtomicUsize::new(0),
            tripped: AtomicBool::new(false),
        }
    }

    /// How many deletes may be under way at once.
    pub(crate) fn cap(&self) -> usize {
        self.limiter.cap()
    }

    /// True once the breaker tripped: the server stopped answering.
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::SeqCst)
    }

    /// The rules on `c` with what the listing knows (no request): for the
    /// step before the delete, which must not archive or run a hook for an
    /// object the delete would refuse.
    pub(crate) fn refusal(&self, c: &Candidate) -> Option<Protection> {
        self.opts.rules.refusal(c, self.ties)
    }

    /// The rules on `c`; for a job whose pods go with it, with its pods read
    /// by a LIST that started at or after `asked`.
    async fn refusal_now(
        &self,
        c: &Candidate,
        asked: Instant,
    ) -> Result<Option<Protection>, Deletion> {
        if let Some(p) = self.refusal(c) {
            return Ok(Some(p));
        }
        if c.kind != Kind::Job || self.opts.cascade == Cascade::Orphan {
            return Ok(None);
        }
        let read = tokio::select! {
            r = self.pods.read_after(self.client, &c.namespace, asked) => r,
            _ = self.stop.wait() => return Err(not_started(c, None)),
        };
        let pods =
            read.map_err(|e| failed(c, format!("cannot read the job's pods: {}", why(&e))))?;
        let fresh = Fresh {
            listing: self.ties,
            job: &c.uid,
            pods: &pods,
        };
        Ok(self.opts.rules.refusal(c, &fresh))
    }

    /// The one way to delete a pod or job: `listed` is the record the plan
    /// holds, `fresh` a copy read since (by the archive or hook step).
    pub(crate) async fn delete(&self, listed: &Candidate, fresh: Option<&Candidate>) -> Deletion {
        let mut asked = Instant::now();
        let mut copy = Cow::Borrowed(fresh.unwrap_or(listed));
        if copy.uid != listed.uid {
            return replaced(listed, &copy.uid);
        }
        let mut event_sent = false;
        for attempt in 0..=CONFLICT_RETRIES {
            match self.refusal_now(&copy, asked).await {
                Err(d) => return d,
                Ok(Some(p)) => return refused(listed, &p),
                Ok(None) => {}
            }
            if let (Some(events), false) = (&self.opts.events, event_sent) {
                event_sent = true;
                let _slot = tokio::select! {
                    s = self.before.acquire() => s,
                    _ = self.stop.wait() => return not_started(listed, None),
                };
                events.before_delete(&copy, self.stop).await;
            }
            let permit = tokio::select! {
                p = self.limiter.acquire() => p,
                _ = self.stop.wait() => return not_started(listed, None),
            };
            if self.stop.is_set() {
                return not_started(listed, None);
            }
            if self.tripped() {
                return not_started(listed, Some(NOT_ATTEMPTED));
            }
            let sent = self.send(&copy, permit).await;
            if sent.outcome != Outcome::Conflict || attempt == CONFLICT_RETRIES {
                return sent;
            }
            // Changed since the copy was read, or replaced: read it again.
            let now = tokio::select! {
                r = inventory::current(self.client, listed) => r,
                _ = self.stop.wait() => return not_started(listed, None),
            };
            match now {
                Ok(None) => return deletion(listed, Outcome::Gone, None, None),
                Ok(Some(now)) if now.uid != listed.uid => return replaced(listed, &now.uid),
                Ok(Some(now)) => copy = Cow::Owned(now),
                Err(e) => {
                    return failed(
                        listed,
                        format!("cannot read it again after a conflict: {}", why(&e)),
                    )
                }
            }
            asked = Instant::now();
        }
        unreachable!("the last attempt returns")
    }

    /// Sends the delete of `c` with `first` (a retry of a transient answer
    /// waits for another permit), minding the stop and the breaker.
    async fn send(&self, c: &Candidate, first: Permit<'_>) -> Deletion {
        let mut first = Some(first);
        let request = with_retry(|| {
            let first = first.take();
            async move {
                let permit = match first {
                    Some(p) => p,
                    None => self.limiter.acquire().await,
                };
                let r = match delete_request(c, self.opts) {
                    Ok(req) => request_text(self.client, req).await,
                    Err(e) => Err(e),
                };
                permit.done(Answer::of(&r));
                r
            }
        });
        let sent = tokio::select! {
            r = request => r,
            _ = async {
                self.stop.wait().await;
                tokio::time::sleep(IN_FLIGHT_GRACE).await;
            } => {
                return failed(c, "interrupted before the server answered: the object may or may not be deleted".into());
            }
        };
        let d = match sent {
            Ok(_) if self.opts.server_dry_run => deletion(c, Outcome::WouldDelete, None, None),
            Ok(_) => deletion(c, Outcome::Deleted, None, None),
            Err(kube::Error::Api(s)) if s.code == 404 => deletion(c, Outcome::Gone, None, None),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                deletion(c, Outcome::Conflict, Some(s.message.clone()), Some(409))
            }
            Err(kube::Error::Api(s)) => {
                deletion(c, Outcome::Failed, Some(s.message.clone()), Some(s.code))
            }
            Err(e) => deletion(
                c,
                Outcome::Failed,
                Some(crate::error::source_chain(&e)),
                None,
            ),
        };
        if d.outcome == Outcome::Failed && d.code.is_none() {
            if self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1 >= UNANSWERED_IN_A_ROW {
                self.tripped.store(true, Ordering::SeqCst);
            }
        } else {
            self.in_a_row.store(0, Ordering::SeqCst);
        }
        d
    }
}

fn deletion(c: &Candidate, outcome: Outcome, error: Option<String>, code: Option<u16>) -> Deletion {
    Deletion {
        uid: c.uid.to_string(),
        outcome,
        error,
        code,
    }
}

pub(crate) fn not_started(c: &Candidate, error: Option<&str>) -> Deletion {
    deletion(c, Outcome::Cancelled, error.map(str::to_string), None)
}

fn failed(c: &Candidate, error: String) -> Deletion {
    deletion(c, Outcome::Failed, Some(error), None)
}

fn replaced(c: &Candidate, uid: &str) -> Deletion {
    let why = format!("replaced since it was listed: the name now belongs to uid {uid}");
    deletion(c, Outcome::Conflict, Some(why), Some(409))
}

/// What the rules said of `c` at its delete, as its result: a keep marker
/// keeps it, another guard skips it, with the reason.
pub(crate) fn refused(c: &Candidate, p: &Protection) -> Deletion {
    let outcome = if p.is_keep() {
        Outcome::Kept { failure: false }
    } else {
        Outcome::Skipped
    };
    deletion(c, outcome, Some(p.reason()), None)
}

fn why(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => crate::error::source_chain(other),
    }
}

pub(crate) fn delete_params(c: &Candidate, opts: &Options) -> DeleteParams {
    DeleteParams {
        dry_run: opts.server_dry_run,
        grace_period_seconds: opts.grace_period,
        // batch/v1 defaults to orphaning a job's pods; a cleanup tool must not.
        propagation_policy: (c.kind == Kind::Job).then_some(match opts.cascade {
            Cascade::Background => PropagationPolicy::Background,
            Cascade::Foreground => PropagationPolicy::Foreground,
            Cascade::Orphan => PropagationPolicy::Orphan,
        }),
        // The copy the rules were applied to, exactly: the same object
        // (uid), unchanged since (resourceVersion).
        preconditions: Some(Preconditions {
            uid: Some(c.uid.to_string()),
            resource_version: (!c.resource_version.is_empty())
                .then(|| c.resource_version.to_string()),
        }),
    }
}

/// The delete request of a pod or job: the only one in the crate, built
/// only for [`Deleter::send`].
fn delete_request(
    c: &Candidate,
    opts: &Options,
) -> std::result::Result<http::Request<Vec<u8>>, kube::Error> {
    let path = match c.kind {
        Kind::Pod => Pod::url_path(&(), Some(&c.namespace)),
        Kind::Job => Job::url_path(&(), Some(&c.namespace)),
    };
    let params = delete_params(c, opts);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Concurrency;
    use crate::model::fixtures::*;
    use crate::model::Phase;

    fn opts(dry: bool, cascade: Cascade) -> Options {
        Options {
            server_dry_run: dry,
            cascade,
            grace_period: Some(5),
            concurrency: Concurrency::Fixed(4),
            rules: Default::default(),
            before_delete: Default::default(),
            events: None,
        }
    }

    #[test]
    fn every_delete_carries_uid_and_version_preconditions_and_jobs_cascade() {
        let mut j = job("j", Phase::Complete, 0);
        j.resource_version = "42".into();
        let job_req = delete_request(&j, &opts(false, Cascade::Background)).unwrap();
        assert_eq!(job_req.method(), http::Method::DELETE);
        assert_eq!(
            job_req.uri().path(),
            "/apis/batch/v1/namespaces/crucible/jobs/j"
        );
        let body: serde_json::Value = serde_json::from_slice(job_req.body()).unwrap();
        assert_eq!(body["preconditions"]["uid"], "uid-j");
        assert_eq!(body["preconditions"]["resourceVersion"], "42");
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
        // A record without a version (never from a listing) pins the uid only.
        assert!(body["preconditions"].get("resourceVersion").is_none());

        let orphan = delete_params(&j, &opts(false, Cascade::Orphan));
        assert_eq!(orphan.propagation_policy, Some(PropagationPolicy::Orphan));
    }

    #[test]
    fn a_refusal_keeps_for_a_keep_marker_and_skips_otherwise() {
        let p = pod("p", Phase::Failed, 0);
        let kept = refused(&p, &Protection::KeptPod("x".into(), Keep::MARKED));
        assert_eq!(kept.outcome, Outcome::Kept { failure: false });
        assert_eq!(
            kept.error.as_deref(),
            Some("its pod x is marked crucible-clean/keep=true")
        );
        let skipped = refused(&p, &Protection::Terminating);
        assert_eq!(skipped.outcome, Outcome::Skipped);
        assert_eq!(skipped.error.as_deref(), Some("terminating"));
    }
}
