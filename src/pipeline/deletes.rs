//! The deletes of one cycle, wired: through `execute` (with a progress bar
//! on a terminal), and a client dry run's hooks.

use crate::execute::events::Events;
use crate::predelete::{self, BeforeDelete};
use crate::request::{Mode, Request};
use crate::stop::Stop;
use crate::{execute, model, select};

use super::Survey;

/// Show a progress bar from this many deletions on.
const PROGRESS_FROM: usize = 6;

/// A client dry run with `--run-hooks-in-dry-run`: the hooks' verdicts, as
/// deletions that keep their objects (the rest stay planned).
pub(super) async fn dry_run_hooks(
    client: &kube::Client,
    req: &Request,
    s: &Survey,
    rules: &select::guard::Rules,
    before: &BeforeDelete,
    stop: &Stop,
) -> execute::Executed {
    if !before.runs_hooks() {
        return Default::default();
    }
    let refusal = |c: &model::Candidate| rules.refusal(c, &s.inv);
    let bound = req.concurrency.bound();
    let verdicts = predelete::dry_run_hooks(client, &s.plan, before, &refusal, bound, stop).await;
    let results = verdicts
        .into_iter()
        .map(|(uid, v)| {
            let (outcome, error) = match v {
                predelete::Verdict::Keep { reason, failure } => {
                    (execute::Outcome::Kept { failure }, Some(reason))
                }
                predelete::Verdict::Refused(p) if p.is_keep() => {
                    (execute::Outcome::Kept { failure: false }, Some(p.reason()))
                }
                predelete::Verdict::Refused(p) => (execute::Outcome::Skipped, Some(p.reason())),
                _ => (execute::Outcome::Cancelled, None),
            };
            execute::Deletion {
                uid,
                outcome,
                error,
                code: None,
            }
        })
        .collect();
    execute::Executed {
        results,
        unanswered: false,
    }
}

/// What a run's deletes are made of besides the request.
pub(super) struct Execution<'a> {
    pub(super) survey: &'a Survey,
    pub(super) rules: select::guard::Rules,
    pub(super) before: &'a BeforeDelete,
    pub(super) events: Option<std::sync::Arc<Events>>,
}

pub(super) async fn execute_plan(
    client: &kube::Client,
    req: &Request,
    run: Execution<'_>,
    stop: &Stop,
) -> execute::Executed {
    let plan = &run.survey.plan;
    let n = plan.delete_count();
    let bar =
        (n >= PROGRESS_FROM && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(n as u64),
                indicatif::ProgressDrawTarget::stderr(),
            );
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} deleting {pos}/{len} [{bar:30}] {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            crate::log::Progress::show(b)
        });
    let opts = execute::Options {
        server_dry_run: req.mode == Mode::DryRunServer,
        cascade: req.cascade,
        grace_period: req.grace_period,
        concurrency: req.concurrency,
        rules: run.rules,
        before_delete: run.before.clone(),
        events: run.events,
    };
    let results = execute::execute(client, plan, &run.survey.inv, &opts, stop, |_| {
        if let Some(b) = &bar {
            b.inc(1);
        }
    })
    .await;
    drop(bar);
    results
}
