//! What became of one row of the report.

use serde::Serialize;

use crate::execute::Outcome;

/// What became of one row. Serialized as the word `as_str` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemResult {
    /// In the plan, not executed (client dry run, or before execution).
    Planned,
    WouldDelete,
    Deleted,
    Gone,
    Conflict,
    Failed,
    Cancelled,
    Kept,
    Skipped,
}

impl ItemResult {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ItemResult::Planned => "planned",
            ItemResult::WouldDelete => "wouldDelete",
            ItemResult::Deleted => "deleted",
            ItemResult::Gone => "gone",
            ItemResult::Conflict => "conflict",
            ItemResult::Failed => "failed",
            ItemResult::Cancelled => "cancelled",
            ItemResult::Kept => "kept",
            ItemResult::Skipped => "skipped",
        }
    }

    /// Listed by `-o name`: deleted, or (dry run) would be.
    pub(super) fn is_deletion(self) -> bool {
        matches!(
            self,
            ItemResult::Deleted | ItemResult::WouldDelete | ItemResult::Planned
        )
    }

    /// A planned deletion that did not happen.
    pub(super) fn is_miss(self) -> bool {
        matches!(
            self,
            ItemResult::Failed | ItemResult::Conflict | ItemResult::Cancelled
        )
    }
}

impl From<Outcome> for ItemResult {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Deleted => ItemResult::Deleted,
            Outcome::WouldDelete => ItemResult::WouldDelete,
            Outcome::Gone => ItemResult::Gone,
            Outcome::Conflict => ItemResult::Conflict,
            Outcome::Failed => ItemResult::Failed,
            Outcome::Cancelled => ItemResult::Cancelled,
            Outcome::Kept { .. } => ItemResult::Kept,
            Outcome::Skipped => ItemResult::Skipped,
        }
    }
}

impl std::fmt::Display for ItemResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ItemResult {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
