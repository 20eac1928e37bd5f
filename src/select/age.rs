//! The age rule: objects older than a duration, measured from creation or
//! from when they finished (an unfinished object has no finish age).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::cli::AgeFrom;
use crate::model::Candidate;

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
