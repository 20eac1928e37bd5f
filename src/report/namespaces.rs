//! The report's per-namespace summaries (with --all-namespaces) and its
//! Events section.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Item, ItemResult, Summary};
use crate::execute::events::Tally;
use crate::plan::Action;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NamespaceSummary {
    pub(crate) namespace: String,
    pub(crate) summary: Summary,
}

/// One summary per namespace that has a row, by name; counted as the
/// report's own summary is.
pub(crate) fn of(items: &[Item]) -> Vec<NamespaceSummary> {
    let mut by: BTreeMap<&str, Summary> = BTreeMap::new();
    for i in items {
        let s = by.entry(&*i.candidate.namespace).or_default();
        s.selected += 1;
        if i.action == Action::Delete {
            s.planned += 1;
        }
        match i.result {
            ItemResult::Planned => {}
            ItemResult::WouldDelete => s.would_delete += 1,
            ItemResult::Deleted => s.deleted += 1,
            ItemResult::Gone => s.gone += 1,
            ItemResult::Conflict => s.conflict += 1,
            ItemResult::Failed => s.failed += 1,
            ItemResult::Cancelled => s.cancelled += 1,
            ItemResult::Kept => s.kept += 1,
            ItemResult::Skipped => s.skipped += 1,
        }
    }
    by.into_iter()
        .map(|(namespace, summary)| NamespaceSummary {
            namespace: namespace.to_string(),
            summary,
        })
        .collect()
}

/// `events: {recorded, failed, error}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventsSection {
    /// Events recorded (one per object, before its delete).
    pub(crate) recorded: usize,
    /// Events the API server refused or did not answer; their deletes went
    /// ahead all the same.
    pub(crate) failed: usize,
    /// The first failure, e.g. an RBAC refusal; null when none failed.
    pub(crate) error: Option<String>,
}

impl EventsSection {
    /// The line for stderr when some Events failed.
    pub(crate) fn warning(&self) -> Option<String> {
        (self.failed > 0).then(|| {
            format!(
                "warning: {} of {} Events could not be recorded (their deletes went ahead): {}",
                self.failed,
                self.recorded + self.failed,
                self.error.as_deref().unwrap_or("unknown error")
            )
        })
    }
}

impl From<Tally> for EventsSection {
    fn from(t: Tally) -> Self {
        EventsSection {
            recorded: t.recorded,
            failed: t.failed,
            error: t.error,
        }
    }
}
