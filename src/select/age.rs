//! The age strategy: objects older than `--older-than`, measured from
//! creation or from when they finished (an unfinished object has no finish
//! age); with ids too, both must hold.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cli::AgeFrom;
use crate::error::Result;
use crate::model::Candidate;
use crate::request::Criteria;

use super::strategy::{Context, SelectionStrategy};
use super::{every, Selected};

pub(crate) struct Age;

impl SelectionStrategy for Age {
    fn check(&self, c: &Criteria, policy: bool) -> std::result::Result<(), String> {
        if c.older_than.is_some() || policy {
            Ok(())
        } else {
            Err("--strategy age needs --older-than DUR, e.g. --older-than 2h".into())
        }
    }

    fn pick<'a>(
        &self,
        cx: &mut Context<'_, '_, 'a>,
        members: &[&'a Candidate],
    ) -> Result<Vec<Selected<'a>>> {
        Ok(every(cx, members, false))
    }
}

/// The age rule: at least `older_than` old, measured `from`.
pub(crate) fn matches(
    c: &Candidate,
    older_than: Duration,
    from: AgeFrom,
    now: DateTime<Utc>,
) -> bool {
    let Ok(limit) = chrono::Duration::from_std(older_than) else {
        return false; // longer than chrono can represent: nothing is that old
    };
    let since = match from {
        AgeFrom::Created => Some(c.created_at),
        AgeFrom::Finished => c.finished_at,
    };
    since.is_some_and(|t| now - t >= limit)
}
