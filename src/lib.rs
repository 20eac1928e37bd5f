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
pub mod report;
pub mod request;
pub mod retry;
pub mod select;
pub mod selector;
pub mod watch;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cli::{Cli, Output};
use error::{exit, Error, Result};
use gate::Decision;
use model::Kind;
use request::{Mode, Request};

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
    let (client, target) = client::connect(&req.connection).await?;
    log(
        req.verbosity,
        4,
        format!("context {:?}, server {}", target.context, target.server),
    );
    if let Some(interval) = req.watch {
        return watch::watch(&client, &target, &req, interval).await;
    }
    let done = cycle(&client, &target, &req, None).await?;
    print!("{}", report::render(&done.report, req.output));
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
) -> Result<Cycle> {
    let t0 = std::time::Instant::now();
    let inv = inventory::take(client, req).await?;
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
    let mut plan = plan::plan_with(selection.selected, &inv, &selection.guards);

    let interactive = gate::is_interactive();
    let will_prompt = interactive && req.mode == Mode::Apply && !req.yes && plan.delete_count() > 0;
    if req.mode == Mode::Apply && plan.delete_count() > 0 {
        // Ask before prompting: a user should not confirm what RBAC will refuse.
        preflight(client, &plan).await?;
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

    let stop = Arc::new(AtomicBool::new(false));
    let results = match decision {
        Decision::Nothing => vec![],
        Decision::Preview if req.mode == Mode::DryRunClient => vec![],
        Decision::Preview | Decision::Proceed { .. } => {
            if let Decision::Proceed { prompted: true } = decision {
                if chrono::Utc::now() - inv.taken_at
                    > chrono::Duration::from_std(STALE_AFTER).unwrap_or_default()
                {
                    let fresh_inv = inventory::take(client, req).await?;
                    let fresh_sel = select::select(req, &fresh_inv)?;
                    let fresh = plan::plan_with(fresh_sel.selected, &fresh_inv, &fresh_sel.guards);
                    let (restricted, dropped) = plan::restrict_to(fresh, &plan);
                    if dropped > 0 {
                        eprintln!("{dropped} objects no longer qualify since the prompt and are left alone");
                    }
                    plan = restricted;
                }
            }
            execute_plan(client, req, &plan, stop.clone()).await
        }
    };

    let mut code = exit_code(&results);
    if req.mode == Mode::Apply && code == exit::OK {
        if let Some(timeout) = req.wait {
            if !wait_for_deleted(client, &plan, &results, timeout, stop.clone()).await {
                code = exit::FAILED;
            }
        }
    }
    let mut rep = report_for(req, target, &plan, &results, req.mode, &inv, &decisions);
    rep.cycle = number;
    Ok(Cycle {
        code,
        report: rep,
        interrupted: stop.load(Ordering::SeqCst),
    })
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
    stop: Arc<AtomicBool>,
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
    let left = execute::wait_gone(client, &items, timeout, stop.clone()).await;
    if left.is_empty() || stop.load(Ordering::SeqCst) {
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
            return Err(Error::Cluster(format!(
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
    stop: Arc<AtomicBool>,
) -> Vec<execute::Result> {
    let listener = {
        let stop = stop.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            stop.store(true, Ordering::SeqCst);
            eprintln!("interrupted: no new deletes start; waiting for those in flight");
        })
    };
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
    listener.abort();
    results
}

/// Ctrl-C, or SIGTERM on Unix.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
