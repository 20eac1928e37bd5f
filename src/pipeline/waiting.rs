//! `--wait`: until every object this run deleted is gone. On a terminal a
//! line says how many are still terminating and which has been at it
//! longest, with what holds it; what is still there when the wait ends is
//! named in the report (and, on a timeout, on stderr).

use std::time::Duration;

use chrono::Utc;

use crate::execute::{self, Left};
use crate::log::Progress;
use crate::stop::Stop;
use crate::{model, plan};

/// How the wait ended.
pub(super) struct Waited {
    /// Every object went (or a stop ended the wait, which is no failure).
    pub(super) ok: bool,
    /// What was still there when the wait ended.
    pub(super) left: Vec<Left>,
}

pub(super) async fn wait_for_deleted(
    client: &kube::Client,
    plan: &plan::Plan,
    results: &[execute::Deletion],
    timeout: Duration,
    stop: &Stop,
) -> Waited {
    let deleted: std::collections::HashSet<&str> = results
        .iter()
        .filter(|r| r.outcome == execute::Outcome::Deleted)
        .map(|r| r.uid.as_str())
        .collect();
    let items: Vec<&model::Candidate> = plan
        .to_delete()
        .map(|i| &*i.candidate)
        .filter(|c| deleted.contains(&*c.uid))
        .collect();
    let total = items.len();
    let spinner = (total > 0 && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        s.set_message(format!("waiting for {total} deleted objects to go"));
        s.enable_steady_tick(Duration::from_millis(200));
        Progress::show(s)
    });
    let left = execute::wait_gone(client, &items, timeout, stop, |left| {
        if let Some(s) = &spinner {
            s.set_message(progress_line(left, total, Utc::now()));
        }
    })
    .await;
    drop(spinner);
    if left.is_empty() || stop.is_set() {
        return Waited { ok: true, left };
    }
    eprintln!(
        "error: timed out after {}s waiting for {} of {total} objects to go: {}",
        timeout.as_secs(),
        left.len(),
        left.iter().map(held_by).collect::<Vec<_>>().join(", ")
    );
    Waited { ok: false, left }
}

/// `waiting: 1 of 3 still terminating; the oldest, pod/stuck-1, for 4s
/// (finalizers: example.com/hold)`.
fn progress_line(left: &[Left], total: usize, now: chrono::DateTime<Utc>) -> String {
    let Some(oldest) = left.iter().min_by_key(|l| l.since.unwrap_or(now)) else {
        return format!("waiting: all {total} deleted objects gone");
    };
    let age = oldest
        .since
        .map(|t| format!(", for {}", crate::duration::human(now - t)))
        .unwrap_or_default();
    format!(
        "waiting: {} of {total} still terminating; the oldest, {}{age}",
        left.len(),
        held_by(oldest)
    )
}

/// `pod/stuck-1 (finalizers: example.com/hold)`.
fn held_by(l: &Left) -> String {
    if l.finalizers.is_empty() {
        l.name.clone()
    } else {
        format!("{} (finalizers: {})", l.name, l.finalizers.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::t;

    fn left(name: &str, since: i64, finalizers: &[&str]) -> Left {
        Left {
            uid: format!("uid-{name}"),
            name: format!("pod/{name}"),
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
            since: Some(t(since)),
        }
    }

    #[test]
    fn the_progress_names_the_count_and_the_oldest_with_what_holds_it() {
        let l = [
            left("young", 10, &[]),
            left("stuck-1", 3, &["example.com/hold"]),
        ];
        assert_eq!(
            progress_line(&l, 3, t(14)),
            "waiting: 2 of 3 still terminating; the oldest, pod/stuck-1 (finalizers: example.com/hold), for 11s"
        );
        assert_eq!(
            progress_line(&[], 3, t(14)),
            "waiting: all 3 deleted objects gone"
        );
    }
}
