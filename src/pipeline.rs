//! The orchestration: `run` takes the validated request through inventory →
//! select → plan → gate → execute → report, once or (`watch`) every
//! interval. Nothing below this module imports it.

use crate::cli::{Cli, Output};
use crate::error::{exit, Error, Result};
use crate::execute::events::Events;
use crate::gate::{self, rbac, Verdict};
use crate::log::log;
use crate::planfile::{self, Saved};
use crate::predelete::{self, BeforeDelete};
use crate::request::{Mode, Request};
use crate::stop::{self, Stop};
use crate::{client, execute, inventory, model, plan, quota, report, select};

mod deletes;
#[cfg(test)]
pub(crate) mod fixtures;
mod holds;
mod mark;
mod output;
mod poll;
mod runs;
mod schedule;
mod waiting;
mod watch;
use deletes::{dry_run_hooks, execute_plan, Execution};
pub(crate) use output::print_report;
use output::{report_for, save_plan};

/// Runs the pipeline once and returns the exit code.
pub async fn run(cli: &Cli) -> Result<i32> {
    let req = Request::from_cli(cli)?;
    if req.from_plan.is_none() {
        select::validate(&req)?;
    }
    if req.interactive && !gate::is_interactive() {
        return Err(Error::usage(
            "--interactive needs a terminal (stdin and stderr, CI unset) to pick from; for unattended runs use --yes",
        ));
    }
    let saved = req.from_plan.as_ref().map(planfile::load).transpose()?;
    run_request(&req, saved.as_ref())
        .await
        .map_err(|e| e.with_forbidden_hint(|| rbac::hint(&req)))
}

/// Whether the report records the cluster's kube-system uid: plans, and
/// runs that apply one.
fn records_cluster(req: &Request) -> bool {
    req.from_plan.is_some()
        || req.save_plan.is_some()
        || (req.mode.is_dry_run() && matches!(req.output, Output::Json | Output::Yaml))
}

async fn run_request(req: &Request, saved: Option<&Saved>) -> Result<i32> {
    // From here to exit, Ctrl-C and SIGTERM stop the run (see `stop`).
    let stop = Stop::default();
    let _listener = stop::listen(stop.clone());
    let (client, mut target) = client::connect(&req.connection).await?;
    log(
        req.verbosity,
        4,
        format!("context {:?}, server {}", target.context, target.server),
    );
    if records_cluster(req) {
        let read = async { Ok(inventory::cluster_uid(&client).await) };
        target.cluster_uid = until_stopped(&stop, read).await?;
    }
    if let (Some(saved), Some(from)) = (saved, &req.from_plan) {
        let uid = target.cluster_uid.as_deref();
        planfile::check(saved, req, from.max_age, &target, uid, chrono::Utc::now())?;
    }
    if let Some(g) = &req.guard {
        return runs::guard(&client, &target, req, g, &stop).await;
    }
    if let Some(m) = &req.mark_kept {
        return mark::mark_kept(&client, &target, req, m, &stop).await;
    }
    if let Some(w) = req.watch {
        return watch::watch(&client, &target, req, w, &stop).await;
    }
    let done = cycle(&client, &target, req, saved, None, &stop).await?;
    print_report(&done.report, req.output)?;
    if let (Some(path), false) = (&req.save_plan, done.interrupted) {
        save_plan(path, &done.report)?;
    }
    if req.output == Output::Name {
        // `-o name` lists only what went; say what did not on stderr.
        for line in report::failures(&done.report) {
            eprintln!("error: {line}");
        }
    }
    if done.interrupted {
        return Err(Error::Interrupted);
    }
    Ok(done.code)
}

/// One pass of the pipeline, from inventory to report.
pub(crate) struct Cycle {
    pub(crate) code: i32,
    pub(crate) report: report::CleanupReport,
    /// Ctrl-C or SIGTERM stopped the deletions.
    pub(crate) interrupted: bool,
}

/// What inventory → select → plan produced: the one path for the first
/// pass and for the re-plan after a slow prompt.
struct Survey {
    inv: model::Inventory,
    plan: plan::Plan,
    decisions: Vec<quota::Decision>,
}

async fn survey(
    client: &kube::Client,
    req: &Request,
    saved: Option<&Saved>,
    stop: &Stop,
) -> Result<Survey> {
    if let Some(saved) = saved {
        return survey_plan(client, req, saved, stop).await;
    }
    if req.criteria.stale_runs && req.criteria.run_ids.is_empty() {
        // No run is stale: nothing to list, nothing can be selected.
        return Ok(Survey {
            inv: model::Inventory {
                taken_at: chrono::Utc::now(),
                ..Default::default()
            },
            plan: Default::default(),
            decisions: vec![],
        });
    }
    let t0 = std::time::Instant::now();
    let inv = until_stopped(
        stop,
        inventory::take(client, &req.scope, &select::needs(req)),
    )
    .await?;
    log(
        req.verbosity,
        4,
        format!(
            "listed {} pods and {} jobs in {:?}",
            inv.pods.len(),
            inv.jobs.len(),
            t0.elapsed()
        ),
    );
    planned(req, inv)
}

/// select → plan over an inventory: pure.
fn planned(req: &Request, inv: model::Inventory) -> Result<Survey> {
    let selection = select::select(req, &inv)?;
    let plan = plan::plan_with(selection.selected, &inv, &selection.guards);
    let decisions = selection.decisions;
    Ok(Survey {
        inv,
        plan,
        decisions,
    })
}

/// `--from-plan`: the saved plan's deletes, each checked against a fresh
/// inventory (see `planfile`).
async fn survey_plan(
    client: &kube::Client,
    req: &Request,
    saved: &Saved,
    stop: &Stop,
) -> Result<Survey> {
    let needs = planfile::needs(saved, req);
    let inv = until_stopped(stop, inventory::take(client, &req.scope, &needs)).await?;
    let unseen = planfile::unseen(saved, &inv);
    let read = until_stopped(stop, inventory::by_name(client, &unseen)).await?;
    let read: Vec<_> = unseen.into_iter().zip(read).collect();
    let plan = planfile::recheck(saved, &inv, &read, req.include_running);
    Ok(Survey {
        inv,
        plan,
        decisions: vec![],
    })
}

/// Runs the pipeline once (`number`: the --watch cycle) and returns the
/// report to print and the exit code it stands for. With `--stale-runs`,
/// over the runs whose guard Lease expired. `saved`: `--from-plan`.
pub(crate) async fn cycle(
    client: &kube::Client,
    target: &client::Endpoint,
    req: &Request,
    saved: Option<&Saved>,
    number: Option<u64>,
    stop: &Stop,
) -> Result<Cycle> {
    if req.criteria.stale_runs {
        return runs::stale_cycle(client, target, req, number, stop).await;
    }
    cycle_once(client, target, req, saved, number, stop).await
}

async fn cycle_once(
    client: &kube::Client,
    target: &client::Endpoint,
    req: &Request,
    saved: Option<&Saved>,
    number: Option<u64>,
    stop: &Stop,
) -> Result<Cycle> {
    let s = survey(client, req, saved, stop).await?;
    carry_out(client, target, req, saved, number, stop, s).await
}

/// A reconcile of `--watch` (`number`): the plan from `inv` (the watch's
/// cache) less the deletes it holds back (`held`: uid → reason, see
/// `pipeline/holds.rs`), then the same stages as a cycle. Also returns when the plan
/// changes next by the clock alone (`select::next_change`).
pub(crate) async fn reconcile(
    client: &kube::Client,
    target: &client::Endpoint,
    req: &Request,
    (inv, held): (model::Inventory, std::collections::HashMap<String, String>),
    number: u64,
    stop: &Stop,
) -> Result<(Cycle, Option<chrono::DateTime<chrono::Utc>>)> {
    let mut s = planned(req, inv)?;
    plan::hold_back(&mut s.plan, &held);
    let next = select::next_change(req, &s.inv);
    let done = carry_out(client, target, req, None, Some(number), stop, s).await?;
    Ok((done, next))
}

/// gate → execute → report: the stages after the plan.
async fn carry_out(
    client: &kube::Client,
    target: &client::Endpoint,
    req: &Request,
    saved: Option<&Saved>,
    number: Option<u64>,
    stop: &Stop,
    mut s: Survey,
) -> Result<Cycle> {
    for d in s.decisions.iter().filter(|d| d.inactive) {
        eprintln!("note: {}", d.message);
    }
    if gate::needs_permission(&s.plan, req) {
        // Before the question: a user should not confirm what RBAC will refuse.
        until_stopped(stop, gate::permitted(client, &s.plan)).await?;
    }
    let show_preview = || {
        let mut preview = report_for(
            req,
            target,
            &s,
            s.plan.clone(),
            saved,
            &[],
            Mode::DryRunClient,
        );
        preview.shown = report::Shown::BeforeAsking;
        let format = if req.output == Output::Wide {
            Output::Wide
        } else {
            Output::Table
        };
        eprint!("{}", report::render(&preview, format));
    };
    let asked = if req.interactive {
        let list = gate::pick::list_on_terminal;
        gate::pick::pick(&s.plan, req, target, show_preview, list).map(|(verdict, unticked)| {
            plan::deselect(&mut s.plan, &unticked);
            verdict
        })
    } else {
        gate::decide(
            &s.plan,
            req,
            target,
            gate::is_interactive(),
            show_preview,
            gate::prompt::ask,
        )
    };
    let verdict = match asked {
        // Interrupted while asking: nothing was deleted, and that is said once.
        Err(Error::Interrupted) => stop::interrupted_at_the_prompt(),
        other => other?,
    };
    if stop.is_set() {
        return Err(Error::Interrupted);
    }
    if gate::must_replan(verdict, s.inv.taken_at) {
        let fresh = survey(client, req, saved, stop).await?;
        let (restricted, dropped) = plan::restrict_to(fresh.plan, &s.plan);
        if dropped > 0 {
            eprintln!("{dropped} objects no longer qualify since the prompt and are left alone");
        }
        s = Survey {
            plan: restricted,
            ..fresh
        };
    }

    let before = BeforeDelete::new(req);
    let events = Events::for_run(client, req, &s.plan, number);
    let rules = match saved {
        Some(saved) => planfile::rules(saved, req),
        None => select::rules(req),
    };
    let executed = match verdict {
        Verdict::Nothing => Default::default(),
        Verdict::Preview if req.mode == Mode::DryRunClient => {
            dry_run_hooks(client, req, &s, &rules, &before, stop).await
        }
        Verdict::Preview | Verdict::Proceed { .. } => {
            let run = Execution {
                survey: &s,
                rules,
                before: &before,
                events: events.clone(),
            };
            execute_plan(client, req, run, stop).await
        }
    };
    let results = &executed.results;

    let mut code = exit_code(results);
    let kept_on_failure = results
        .iter()
        .filter(|r| r.outcome == execute::Outcome::Kept { failure: true })
        .count();
    if kept_on_failure > 0 {
        eprintln!(
            "error: {kept_on_failure} objects were kept because their archive or hook failed (the report gives each reason)"
        );
    }
    if executed.unanswered || before.unanswered() {
        eprintln!(
            "error: the API server stopped answering; the deletes not yet sent were not attempted"
        );
        code = exit::CLUSTER;
    }
    let mut left = vec![];
    if req.mode == Mode::Apply && code == exit::OK && !stop.is_set() {
        if let Some(timeout) = req.wait {
            let waited = waiting::wait_for_deleted(client, &s.plan, results, timeout, stop).await;
            if !waited.ok {
                code = exit::FAILED;
            }
            left = waited.left;
        }
    }
    let archives = if req.mode.is_dry_run() {
        predelete::would_archive(req, &s.plan, &s.inv)
    } else {
        before.archived()
    };
    let plan = std::mem::take(&mut s.plan);
    let mut rep = report_for(req, target, &s, plan, saved, results, req.mode);
    rep.cycle = number;
    if verdict == (Verdict::Proceed { prompted: true }) {
        rep.shown = report::Shown::AfterAsking;
    }
    output::add_notes(&mut rep, &archives, &left);
    rep.events = events.map(|e| e.tally().into());
    if let Some(warning) = rep.events.as_ref().and_then(|e| e.warning()) {
        eprintln!("{warning}");
    }
    Ok(Cycle {
        code,
        report: rep,
        interrupted: stop.is_set(),
    })
}

/// `work`, unless a stop comes first: then `Error::Interrupted`.
async fn until_stopped<T>(
    stop: &Stop,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = work => r,
        _ = stop.wait() => Err(Error::Interrupted),
    }
}

/// 0 unless deletions failed (or an archive or hook failed and kept its
/// object): 4 when every failure was an RBAC or authentication refusal, else 1.
fn exit_code(results: &[execute::Deletion]) -> i32 {
    let failed: Vec<&execute::Deletion> = results
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                execute::Outcome::Failed | execute::Outcome::Kept { failure: true }
            )
        })
        .collect();
    if failed.is_empty() {
        exit::OK
    } else if failed.iter().all(|r| matches!(r.code, Some(401 | 403))) {
        exit::CLUSTER
    } else {
        exit::FAILED
    }
}
