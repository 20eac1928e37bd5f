//! The step before each delete: `--archive` (`archive`), then the policy
//! file's `beforeDelete` hook (`hooks`). `execute` calls [`BeforeDelete::check`]
//! for each object inside its concurrency bound, so archive reads, log
//! fetches and hooks run at most `--concurrency` at a time.
//!
//! The order is archive, then hook: the hook is the last word before the
//! delete (what it does — record, notify, upload — is followed by the delete
//! unless the delete itself fails), it can use the archive
//! (`CRUCIBLE_ARCHIVE` names its directory, e.g. to upload it), and a failed
//! archive keeps the object before any hook has acted on it. An object a hook
//! keeps has been archived all the same; the archive is a snapshot and the
//! object is still there.
//!
//! In a dry run nothing is archived, and hooks run only with
//! `--run-hooks-in-dry-run` (`CRUCIBLE_DRY_RUN=true`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{stream, StreamExt};
use kube::Client;

use crate::archive;
use crate::cli::Cascade;
use crate::hooks::{self, Answer};
use crate::inventory::{self, FreshPods};
use crate::log::log;
use crate::model::{Candidate, Inventory};
use crate::plan::{Plan, PlanItem};
use crate::request::predelete::{ArchiveSpec, Hooks};
use crate::request::Request;
use crate::select::guard::Protection;
use crate::selector::Selector;
use crate::stop::Stop;

/// The rules of the delete, asked of the copy this step reads (the
/// chokepoint's, `execute::Deleter::refusal`).
pub(crate) type Refusal<'a> = &'a (dyn Fn(&Candidate) -> Option<Protection> + Sync);

/// After a stop, how long an archive or hook in progress may still finish.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(2);
/// This many reads of objects in a row without any answer from the server,
/// and no more are tried (as execute's breaker for deletes): the run must
/// not wait a request timeout for every object of a silent server.
const UNANSWERED_IN_A_ROW: usize = 8;
/// The reason of an object the breaker did not read.
const NOT_ATTEMPTED: &str = "not attempted: the API server stopped answering";

/// What the step decided for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Delete it: `fresh` is the copy read for the archive or hook (None
    /// when nothing was read, or the object is gone or replaced).
    Go { fresh: Option<Box<Candidate>> },
    /// The copy read for the archive or hook is one the delete would refuse
    /// (a keep marker added since the listing…): nothing was archived and no
    /// hook ran.
    Refused(Protection),
    /// Do not delete it: why, and whether that counts as a failure (an
    /// archive that could not be written, a hook that failed) rather than a
    /// hook's veto.
    Keep { reason: String, failure: bool },
    /// A stop came first: do not start the delete.
    Stopped,
}

/// The step, shared by the deletes of one run. `Default`: nothing to do.
#[derive(Clone, Default)]
pub(crate) struct BeforeDelete(Option<Arc<Inner>>);

impl std::fmt::Debug for BeforeDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "BeforeDelete(active)"
        } else {
            "BeforeDelete(none)"
        })
    }
}

struct Inner {
    /// Written only when objects are really deleted.
    archive: Option<ArchiveSpec>,
    /// Empty when hooks do not run in this run (a dry run without
    /// `--run-hooks-in-dry-run`).
    hooks: Hooks,
    dry_run: bool,
    strategy: &'static str,
    /// The policy file's rules (name, selector, strategy), for the hook's
    /// `CRUCIBLE_POLICY_RULE`.
    rules: Vec<(String, Selector, &'static str)>,
    /// A job's pods go with it: archive them too.
    with_job_pods: bool,
    verbosity: u8,
    /// uid → each archive written.
    archived: Mutex<BTreeMap<String, Archived>>,
    in_a_row: AtomicUsize,
    tripped: AtomicBool,
}

impl BeforeDelete {
    pub(crate) fn new(req: &Request) -> Self {
        let dry_run = req.mode.is_dry_run();
        let archive = req.archive.clone().filter(|_| !dry_run);
        let hooks = if dry_run && !req.hooks_in_dry_run {
            Hooks::default()
        } else {
            req.hooks.clone()
        };
        if archive.is_none() && hooks.is_empty() {
            return BeforeDelete(None);
        }
        BeforeDelete(Some(Arc::new(Inner {
            archive,
            hooks,
            dry_run,
            strategy: req.strategy.name(),
            rules: req
                .policy
                .iter()
                .flat_map(|p| &p.rules)
                .map(|r| (r.name.clone(), r.selector.clone(), r.params.strategy.name()))
                .collect(),
            with_job_pods: req.cascade != Cascade::Orphan,
            verbosity: req.verbosity,
            archived: Mutex::default(),
            in_a_row: AtomicUsize::new(0),
            tripped: AtomicBool::new(false),
        })))
    }

    /// True when hooks run in this (dry) run.
    pub(crate) fn runs_hooks(&self) -> bool {
        self.0.as_ref().is_some_and(|i| !i.hooks.is_empty())
    }

    /// True once reads of objects went unanswered too many times in a row.
    pub(crate) fn unanswered(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|i| i.tripped.load(Ordering::SeqCst))
    }

    /// uid → each archive written so far.
    pub(crate) fn archived(&self) -> BTreeMap<String, Archived> {
        self.0
            .as_ref()
            .map(|i| i.archived.lock().map(|m| m.clone()).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Reads the object again, asks `refusal` of that copy, archives the
    /// object and runs its hook, unless a stop comes first. `pods`: the
    /// fresh reads of a job's pods, for its archive.
    pub(crate) async fn check(
        &self,
        client: &Client,
        item: &PlanItem,
        refusal: Refusal<'_>,
        pods: &FreshPods,
        stop: &Stop,
    ) -> Verdict {
        let go = Verdict::Go { fresh: None };
        let Some(inner) = &self.0 else {
            return go;
        };
        let c = &item.candidate;
        let archive = inner.archive.as_ref().filter(|s| archive::wanted(s, c));
        let hook = inner.hooks.of(c.kind);
        if archive.is_none() && hook.is_none() {
            return go;
        }
        tokio::select! {
            v = inner.run(client, item, archive, hook.is_some(), refusal, pods) => {
                if matches!(v, Verdict::Go { .. }) && stop.is_set() { Verdict::Stopped } else { v }
            }
            _ = async {
                stop.wait().await;
                tokio::time::sleep(IN_FLIGHT_GRACE).await;
            } => Verdict::Stopped,
        }
    }
}

impl Inner {
    async fn run(
        &self,
        client: &Client,
        item: &PlanItem,
        archive: Option<&ArchiveSpec>,
        hook: bool,
        refusal: Refusal<'_>,
        pods: &FreshPods,
    ) -> Verdict {
        let c = &item.candidate;
        let failed = |reason: String| Verdict::Keep {
            reason,
            failure: true,
        };
        let what = if archive.is_some() {
            "archive failed"
        } else {
            "hook not run"
        };
        if self.tripped.load(Ordering::SeqCst) {
            return failed(format!("{what}: {NOT_ATTEMPTED}"));
        }
        let read = archive::object(client, c).await;
        match &read {
            Err(e) if !e.answered => {
                if self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1 >= UNANSWERED_IN_A_ROW {
                    self.tripped.store(true, Ordering::SeqCst);
                }
            }
            _ => self.in_a_row.store(0, Ordering::SeqCst),
        }
        let object = match read {
            Ok(Some(o)) => o,
            // Gone, or its name taken by another object: the delete's uid
            // precondition reports which.
            Ok(None) => return Verdict::Go { fresh: None },
            Err(e) => return failed(format!("{what}: {}", e.message)),
        };
        let Some(fresh) = inventory::candidate_of(c.kind, &object) else {
            return failed(format!("{what}: cannot read {}", c.display_name()));
        };
        // The delete would refuse this copy: neither archive nor hook.
        if let Some(p) = refusal(&fresh) {
            return Verdict::Refused(p);
        }
        let mut path = None;
        if let Some(spec) = archive {
            let job_pods = if c.kind == crate::model::Kind::Job && self.with_job_pods {
                match pods
                    .read_after(client, &c.namespace, std::time::Instant::now())
                    .await
                {
                    Ok(p) => Some(p.of(&c.uid).to_vec()),
                    Err(e) => {
                        return failed(format!(
                            "archive failed: cannot list the job's pods: {}",
                            archive::why(&e)
                        ))
                    }
                }
            } else {
                None
            };
            match archive::write(client, spec, &fresh, &object, job_pods.as_deref()).await {
                Ok(None) => {}
                Ok(Some(written)) => {
                    let dir = written.dir.display().to_string();
                    log(
                        self.verbosity,
                        2,
                        format!("archived {} to {dir}", c.display_name()),
                    );
                    if let Ok(mut m) = self.archived.lock() {
                        let logs_missing = written.logs_missing;
                        let a = Archived {
                            dir: dir.clone(),
                            logs_missing,
                        };
                        m.insert(c.uid.to_string(), a);
                    }
                    path = Some(dir);
                }
                Err(e) => return failed(format!("archive failed: {e}")),
            }
        }
        let go = Verdict::Go {
            fresh: Some(Box::new(fresh)),
        };
        let Some(hook) = hook.then(|| self.hooks.of(c.kind)).flatten() else {
            return go;
        };
        let env = self.env(item, path.as_deref());
        let stdin = serde_json::to_vec(&object).unwrap_or_default();
        match hooks::run(hook, &env, stdin).await {
            Answer::Proceed => go,
            Answer::Veto(line) => Verdict::Keep {
                reason: format!("kept by hook: {line}"),
                failure: false,
            },
            Answer::Failed(why) => failed(why),
        }
    }

    /// The hook's `CRUCIBLE_*` variables.
    fn env(&self, item: &PlanItem, archive: Option<&str>) -> Vec<(String, String)> {
        let c = &item.candidate;
        let rule = self.rules.iter().find(|(_, s, _)| s.matches(&c.labels));
        let mut env = vec![
            ("CRUCIBLE_NAMESPACE", c.namespace.to_string()),
            ("CRUCIBLE_KIND", format!("{:?}", c.kind)),
            ("CRUCIBLE_NAME", c.name.to_string()),
            ("CRUCIBLE_UID", c.uid.to_string()),
            ("CRUCIBLE_PHASE", format!("{:?}", c.phase)),
            (
                "CRUCIBLE_STRATEGY",
                rule.map_or(self.strategy, |r| r.2).to_string(),
            ),
            (
                "CRUCIBLE_MATCHED_RULES",
                item.matched_by
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("CRUCIBLE_DRY_RUN", self.dry_run.to_string()),
        ];
        let optional = [
            ("CRUCIBLE_POLICY_RULE", rule.map(|r| r.0.clone())),
            ("CRUCIBLE_TEST_ID", c.test_id().map(str::to_string)),
            ("CRUCIBLE_EVAL_ID", c.eval_id().map(str::to_string)),
            ("CRUCIBLE_ARCHIVE", archive.map(str::to_string)),
        ];
        env.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// A dry run with `--run-hooks-in-dry-run`: each object's hook, at most
/// `concurrency` at once; the objects a hook would keep (or the rules would
/// refuse, read again), by uid.
pub(crate) async fn dry_run_hooks(
    client: &Client,
    plan: &Plan,
    before: &BeforeDelete,
    refusal: Refusal<'_>,
    concurrency: usize,
    stop: &Stop,
) -> Vec<(String, Verdict)> {
    let pods = FreshPods::default();
    let pods = &pods;
    stream::iter(plan.to_delete())
        .map(|item| async move {
            let v = if stop.is_set() {
                Verdict::Stopped
            } else {
                before.check(client, item, refusal, pods, stop).await
            };
            (item.candidate.uid.to_string(), v)
        })
        .buffer_unordered(concurrency.max(1))
        .filter(|(_, v)| std::future::ready(!matches!(v, Verdict::Go { .. })))
        .collect()
        .await
}

/// An object's archive: where it is, and whether it lacks the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Archived {
    pub(crate) dir: String,
    /// No log could be fetched, and why.
    pub(crate) logs_missing: Option<String>,
}

/// In a dry run: where each planned object's archive would go (`inv`: the
/// listing, for the failed pods of jobs under `--archive-only failed`).
pub(crate) fn would_archive(
    req: &Request,
    plan: &Plan,
    inv: &Inventory,
) -> BTreeMap<String, Archived> {
    let Some(spec) = &req.archive else {
        return BTreeMap::new();
    };
    let with_pods = req.cascade != Cascade::Orphan;
    plan.to_delete()
        .map(|i| &*i.candidate)
        .filter(|c: &&Candidate| archive::would(spec, c, inv, with_pods))
        .map(|c| {
            let dir = archive::dir_of(&spec.dir, c).display().to_string();
            let a = Archived {
                dir,
                logs_missing: None,
            };
            (c.uid.to_string(), a)
        })
        .collect()
}
