//! `kubectl crucible-clean`: one selection → plan → gate → delete → report
//! pipeline. Each stage is a module; `run` wires them together.

pub mod cli;
pub mod client;
pub mod completion;
pub mod duration;
pub mod error;
pub mod execute;
pub mod gate;
pub mod inventory;
pub mod model;
pub mod plan;
pub mod policy;
pub mod quantity;
pub mod quota;
pub mod rbac;
pub mod report;
pub mod request;
pub mod retry;
pub mod select;
pub mod selector;
pub mod stop;
pub mod watch;

use std::collections::BTreeSet;
use std::time::Duration;

use cli::{Cli, Output};
use error::{exit, Error, Result};
use gate::Decision;
use model::Kind;
use request::{Mode, Request};
use stop::Stop;

/// After a prompt this slow, the plan is re-read before anything is deleted.
const STALE_AFTER: Duration = Duration::from_secs(5);
/// Show a progress bar from this many deletions on.
const PROGRESS_FROM: usize = 6;

pub fn log(req_verbosity: u8, level: u8, msg: impl AsRef<str>) {
    if req_verbosity >= level {
        eprintln!("{}", msg.as_ref());
    }
}

/// Runs the pipeline once and returns the exit code.
pub async fn run(cli: &Cli) -> Result<i32> {
    let req = Request::from_cli(cli)?;
    run_request(&req)
        .await
        .map_err(|e| e.with_forbidden_hint(|| rbac::hint(&req)))
}

async fn run_request(req: &Request) -> Result<i32> {
    // From here to exit, Ctrl-C and SIGTERM stop the run (see `stop`).
    let stop = Stop::default();
    let _listener = stop::listen(stop.clone());
    let (client, target) = client::connect(&req.connection).await?;
    log(
        req.verbosity,
        4,
        format!("context {:?}, server {}", target.context, target.server),
    );
    if let Some(interval) = req.watch {
        return watch::watch(&client, &target, req, interval, &stop).await;
    }
    let done = cycle(&client, &target, req, None, &stop).await?;
    print!("{}", report::render(&done.report, req.output));
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
pub struct Cycle {
    pub code: i32,
    pub report: report::CleanupReport,
    /// Ctrl-C or SIGTERM stopped the deletions.
    pub interrupted: bool,
}

/// Runs the pipeline once (`number`: the --watch cycle) and returns the
/// report to print and the exit code it stands for.
pub async fn cycle(
    client: &kube::Client,
    target: &client::Target,
    req: &Request,
    number: Option<u64>,
    stop: &Stop,
) -> Result<Cycle> {
    let t0 = std::time::Instant::now();
    let inv = until_stopped(stop, inventory::take(client, req)).await?;
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
    let selection = select::select(req, &inv)?;
    let decisions = selection.decisions;
    for d in decisions.iter().filter(|d| d.inactive) {
        eprintln!("note: {}", d.message);
    }
    let mut plan = plan::plan_with(selection.selected, &inv, &selection.guards);

    let interactive = gate::is_interactive();
    let will_prompt = interactive && req.mode == Mode::Apply && !req.yes && plan.delete_count() > 0;
    if req.mode == Mode::Apply && plan.delete_count() > 0 {
        // Ask before prompting: a user should not confirm what RBAC will refuse.
        until_stopped(stop, preflight(client, &plan)).await?;
    }
    if will_prompt && req.max_delete.is_none_or(|m| plan.delete_count() <= m) {
        let preview = report_for(
            req,
            target,
            &plan,
            &[],
            Mode::DryRunClient,
            &inv,
            &decisions,
        );
        eprint!("{}", report::render(&preview, Output::Table));
    }
    let decision = gate::decide(&plan, req, target, interactive, gate::ask)?;
    if stop.is_set() {
        return Err(Error::Interrupted);
    }

    let executed = match decision {
        Decision::Nothing => Default::default(),
        Decision::Preview if req.mode == Mode::DryRunClient => Default::default(),
        Decision::Preview | Decision::Proceed { .. } => {
            if let Decision::Proceed { prompted: true } = decision {
                if chrono::Utc::now() - inv.taken_at
                    > chrono::Duration::from_std(STALE_AFTER).unwrap_or_default()
                {
                    let fresh_inv = until_stopped(stop, inventory::take(client, req)).await?;
                    let fresh_sel = select::select(req, &fresh_inv)?;
                    let fresh = plan::plan_with(fresh_sel.selected, &fresh_inv, &fresh_sel.guards);
                    let (restricted, dropped) = plan::restrict_to(fresh, &plan);
                    if dropped > 0 {
                        eprintln!("{dropped} objects no longer qualify since the prompt and are left alone");
                    }
                    plan = restricted;
                }
            }
            execute_plan(client, req, &plan, stop).await
        }
    };
    let results = &executed.results;

    let mut code = exit_code(results);
    if executed.unanswered {
        eprintln!(
            "error: the API server stopped answering; the deletes not yet sent were not attempted"
        );
        code = exit::CLUSTER;
    }
    if req.mode == Mode::Apply && code == exit::OK && !stop.is_set() {
        if let Some(timeout) = req.wait {
            if !wait_for_deleted(client, &plan, results, timeout, stop).await {
                code = exit::FAILED;
            }
        }
    }
    let mut rep = report_for(req, target, &plan, results, req.mode, &inv, &decisions);
    rep.cycle = number;
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

/// 0 unless deletions failed: 4 when every failure was an RBAC or
/// authentication refusal, else 1.
fn exit_code(results: &[execute::Result]) -> i32 {
    let failed: Vec<&execute::Result> = results
        .iter()
        .filter(|r| r.outcome == execute::Outcome::Failed)
        .collect();
    if failed.is_empty() {
        exit::OK
    } else if failed.iter().all(|r| matches!(r.code, Some(401 | 403))) {
        exit::CLUSTER
    } else {
        exit::FAILED
    }
}

/// `--wait`: until every object this run deleted is gone. False (after
/// saying which) when the timeout ran out first.
async fn wait_for_deleted(
    client: &kube::Client,
    plan: &plan::Plan,
    results: &[execute::Result],
    timeout: Duration,
    stop: &Stop,
) -> bool {
    let deleted: std::collections::HashSet<&str> = results
        .iter()
        .filter(|r| r.outcome == execute::Outcome::Deleted)
        .map(|r| r.uid.as_str())
        .collect();
    let items: Vec<&model::Candidate> = plan
        .to_delete()
        .map(|i| &i.candidate)
        .filter(|c| deleted.contains(c.uid.as_str()))
        .collect();
    let left = execute::wait_gone(client, &items, timeout, stop).await;
    if left.is_empty() || stop.is_set() {
        return true;
    }
    eprintln!(
        "error: timed out after {}s waiting for {} objects to go: {}",
        timeout.as_secs(),
        left.len(),
        left.join(", ")
    );
    false
}

fn report_for(
    req: &Request,
    target: &client::Target,
    plan: &plan::Plan,
    results: &[execute::Result],
    mode: Mode,
    inv: &model::Inventory,
    decisions: &[quota::Decision],
) -> report::CleanupReport {
    let mut rep = report::build(
        plan,
        results,
        &report::Context {
            namespace: req.scope.namespace(),
            context: &target.context,
            mode,
            strategy: req.strategy.name(),
            selector: req.server_selector().to_string(),
            now: inv.taken_at,
        },
    );
    if inventory::Needs::of(req).quotas {
        let index = quota::Index::new(inv, req.cascade);
        let units: Vec<&model::Candidate> = plan.to_delete().map(|i| &i.candidate).collect();
        rep.quota = Some(report::quota_section(
            &inv.quotas,
            &index,
            &units,
            decisions.to_vec(),
        ));
    }
    rep
}

async fn preflight(client: &kube::Client, plan: &plan::Plan) -> Result<()> {
    let needed: BTreeSet<(String, Kind)> = plan
        .to_delete()
        .map(|i| (i.candidate.namespace.clone(), i.candidate.kind))
        .collect();
    for (ns, kind) in needed {
        let (group, resource) = match kind {
            Kind::Pod => ("", "pods"),
            Kind::Job => ("batch", "jobs"),
        };
        if !inventory::can_delete(client, &ns, group, resource).await? {
            let what = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            };
            return Err(Error::forbidden(format!(
                "forbidden: you may not delete {what} in namespace {ns} (RBAC verb \"delete\" on {what} is missing); nothing deleted"
            )));
        }
    }
    Ok(())
}

async fn execute_plan(
    client: &kube::Client,
    req: &Request,
    plan: &plan::Plan,
    stop: &Stop,
) -> execute::Executed {
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
            b
        });
    let opts = execute::Options {
        server_dry_run: req.mode == Mode::DryRunServer,
        cascade: req.cascade,
        grace_period: req.grace_period,
        concurrency: req.concurrency,
    };
    let results = execute::execute(client, plan, &opts, stop, |_| {
        if let Some(b) = &bar {
            b.inc(1);
        }
    })
    .await;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    results
}
