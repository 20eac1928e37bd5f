//! Events that say why an object went: before each delete, a Kubernetes
//! Event (events.k8s.io/v1, reason `CleanedUp`, type Normal) on the object,
//! through kube-runtime's recorder, so `kubectl get events` and `kubectl
//! describe` answer "where did it go". An Event is sent in the same bound
//! as archives and hooks (`--concurrency N`, 16 under auto), is bounded in
//! time, and its failure
//! never blocks or fails the delete: failures are only counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube_runtime::events::{Event, EventType, Recorder, Reporter};

use crate::duration::human;
use crate::model::{Candidate, Kind};
use crate::plan::{Plan, PlanItem};
use crate::stop::Stop;

/// The Event's reason, as `kubectl get events` shows it.
pub(crate) const REASON: &str = "CleanedUp";
/// The reporting controller of every Event.
pub(crate) const CONTROLLER: &str = "crucible-clean";
/// The longest an Event may hold up its delete.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The Events API limits a note to 1 kB.
const NOTE_LIMIT: usize = 1024;

/// How the Events of one run went, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) recorded: usize,
    pub(crate) failed: usize,
    /// The first failure's message (the others are usually the same).
    pub(crate) error: Option<String>,
}

/// The Events of one run's deletes: the note for each planned object,
/// written before the first delete, and the count of what was recorded.
pub(crate) struct Events {
    recorder: Recorder,
    notes: HashMap<String, String>,
    recorded: AtomicUsize,
    failed: AtomicUsize,
    error: Mutex<Option<String>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("notes", &self.notes.len())
            .field("tally", &self.tally())
            .finish()
    }
}

impl Events {
    /// The Events of one run, when it records them: `--events` (or
    /// `--watch`), and objects deleted for real (never in a dry run).
    pub(crate) fn for_run(
        client: &kube::Client,
        req: &crate::request::Request,
        plan: &Plan,
        cycle: Option<u64>,
    ) -> Option<std::sync::Arc<Self>> {
        (req.events && req.mode == crate::request::Mode::Apply).then(|| {
            let strategy = req.strategy.name();
            std::sync::Arc::new(Events::new(client, plan, strategy, cycle, Utc::now()))
        })
    }

    /// `strategy`: the report's strategy; `cycle`: the `--watch` cycle.
    pub(crate) fn new(
        client: &kube::Client,
        plan: &Plan,
        strategy: &str,
        cycle: Option<u64>,
        now: DateTime<Utc>,
    ) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER.into(),
            // In a pod: its name (the Deployment sets POD_NAME), else the host.
            instance: std::env::var("POD_NAME")
                .ok()
                .filter(|n| !n.is_empty())
                .or_else(|| Reporter::from(CONTROLLER).instance),
        };
        Events {
            recorder: Recorder::new(client.clone(), reporter),
            notes: plan
                .to_delete()
                .map(|i| (i.candidate.uid.to_string(), note(i, strategy, cycle, now)))
                .collect(),
            recorded: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            error: Mutex::new(None),
        }
    }

    /// Records the Event for `c`; returns when it is recorded, has failed,
    /// has taken too long, or the run is stopped. Never fails.
    pub(crate) async fn before_delete(&self, c: &Candidate, stop: &Stop) {
        let Some(text) = self.notes.get(&*c.uid) else {
            return;
        };
        let event = Event {
            type_: EventType::Normal,
            reason: REASON.into(),
            note: Some(text.clone()),
            action: "Delete".into(),
            secondary: None,
        };
        let about = reference(c);
        let sent = tokio::select! {
            r = tokio::time::timeout(EVENT_TIMEOUT, self.recorder.publish(&event, &about)) => r,
            _ = stop.wait() => return,
        };
        let error = match sent {
            Ok(Ok(())) => {
                self.recorded.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(Err(kube::Error::Api(s))) => format!("{} ({})", s.message, s.code),
            Ok(Err(e)) => crate::error::source_chain(&e),
            Err(_) => format!("no answer within {}s", EVENT_TIMEOUT.as_secs()),
        };
        self.failed.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut first) = self.error.lock() {
            first.get_or_insert_with(|| format!("event on {}: {error}", c.display_name()));
        }
    }

    pub(crate) fn tally(&self) -> Tally {
        Tally {
            recorded: self.recorded.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
            error: self.error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// The object the Event is about.
fn reference(c: &Candidate) -> ObjectReference {
    let (api_version, kind) = match c.kind {
        Kind::Pod => ("v1", "Pod"),
        Kind::Job => ("batch/v1", "Job"),
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(c.name.to_string()),
        namespace: Some(c.namespace.to_string()),
        uid: Some(c.uid.to_string()),
        ..Default::default()
    }
}

/// "deleted by crucible-clean: test-id=run-a (label), finished 2h ago;
/// strategy label, watch cycle 3".
pub(crate) fn note(
    item: &PlanItem,
    strategy: &str,
    cycle: Option<u64>,
    now: DateTime<Utc>,
) -> String {
    let c = &item.candidate;
    let run = match (c.test_id(), c.eval_id()) {
        (Some(t), _) => format!("test-id={t}"),
        (None, Some(e)) => format!("eval-id={e}"),
        (None, None) => "no test-id".into(),
    };
    let rules: Vec<&str> = item.matched_by.iter().map(|m| m.name()).collect();
    let when = match c.finished_at {
        Some(t) => format!("finished {} ago", human(now - t)),
        None => format!("created {} ago", human(c.age(now))),
    };
    let mut text = format!(
        "deleted by crucible-clean: {run} ({}), {when}; strategy {strategy}",
        rules.join("+")
    );
    if let Some(n) = cycle {
        text.push_str(&format!(", watch cycle {n}"));
    }
    if text.len() > NOTE_LIMIT {
        let mut end = NOTE_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::Phase;
    use crate::plan::Action;
    use crate::select::{Criterion, Matched};

    #[test]
    fn the_note_names_the_run_the_rules_the_finish_and_the_strategy() {
        let item = PlanItem {
            candidate: with_test(pod("p", Phase::Succeeded, 0), "run-a").into(),
            matched_by: [Criterion::Label, Criterion::Age].into_iter().collect(),
            action: Action::Delete,
            reason: String::new(),
        };
        // Finished at t(10); two hours later.
        let now = t(10 + 7200);
        assert_eq!(
            note(&item, "hybrid", Some(3), now),
            "deleted by crucible-clean: test-id=run-a (label+age), finished 2h ago; strategy hybrid, watch cycle 3"
        );
        let mut bare = item.clone();
        let c = std::sync::Arc::make_mut(&mut bare.candidate);
        c.labels.clear();
        c.finished_at = None;
        bare.matched_by = Matched::of(Criterion::Age);
        assert_eq!(
            note(&bare, "age", None, t(600)),
            "deleted by crucible-clean: no test-id (age), created 10m ago; strategy age"
        );
    }
}
