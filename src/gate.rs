//! The gate between plan and execution, every rule of it: `--max-delete`,
//! dry runs, `--yes`, no terminal means no deletion, the preview and the
//! question (or, with `-i`, the list to pick from, `gate/pick.rs`), the
//! permission check before it (with the Role a refusal prints,
//! `gate/rbac.rs`) and the re-read of a plan confirmed slowly.
//! Whether we are interactive and how the question is asked are injected,
//! so the rules are unit-tested without a terminal.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::Endpoint;
use crate::error::{Error, Result};
use crate::inventory;
use crate::model::Kind;
use crate::plan::Plan;
use crate::request::{Mode, Request};

pub(crate) mod pick;
pub(crate) mod prompt;
pub(crate) mod rbac;

/// After a prompt this slow, the plan is re-read before anything is deleted.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a plan confirmed at a prompt must be re-read first: the person
/// took long enough for the namespace to change.
pub(crate) fn must_replan(verdict: Verdict, planned_at: chrono::DateTime<chrono::Utc>) -> bool {
    verdict == (Verdict::Proceed { prompted: true })
        && chrono::Utc::now() - planned_at
            > chrono::Duration::from_std(STALE_AFTER).unwrap_or_default()
}

/// Whether the permissions must be checked before the question: only a run
/// that deletes for real.
pub(crate) fn needs_permission(plan: &Plan, req: &Request) -> bool {
    req.mode == Mode::Apply && plan.delete_count() > 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to delete: go straight to the report.
    Nothing,
    /// Render (client dry run) or send with dryRun=All (server dry run).
    Preview,
    /// Delete; `prompted` says a human took time to answer.
    Proceed { prompted: bool },
}

/// `8 pods (5 Succeeded, 3 Failed), 2 jobs (2 Complete)`.
pub(crate) fn summary(plan: &Plan) -> String {
    let mut by_kind: BTreeMap<Kind, BTreeMap<String, usize>> = BTreeMap::new();
    for item in plan.to_delete() {
        *by_kind
            .entry(item.candidate.kind)
            .or_default()
            .entry(format!("{:?}", item.candidate.phase))
            .or_default() += 1;
    }
    by_kind
        .iter()
        .rev() // jobs first
        .map(|(kind, phases)| {
            let total: usize = phases.values().sum();
            let noun = if total == 1 {
                &kind.plural()[..kind.plural().len() - 1]
            } else {
                kind.plural()
            };
            let detail: Vec<String> = phases.iter().map(|(p, n)| format!("{n} {p}")).collect();
            format!("{total} {noun} ({})", detail.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every rule between the plan and the first delete, in order: nothing to
/// do; `--max-delete`; a dry run only previews; `--yes`; no terminal means no
/// deletion; else `show_preview` and the question.
pub(crate) fn decide(
    plan: &Plan,
    req: &Request,
    target: &Endpoint,
    interactive: bool,
    show_preview: impl FnOnce(),
    confirm: impl FnOnce(&str) -> std::io::Result<bool>,
) -> Result<Verdict> {
    let n = plan.delete_count();
    if n == 0 {
        return Ok(Verdict::Nothing);
    }
    over_max(plan, req)?;
    if req.mode != Mode::Apply {
        return Ok(Verdict::Preview);
    }
    if req.yes {
        return Ok(Verdict::Proceed { prompted: false });
    }
    if !interactive {
        return Err(Error::Aborted(format!(
            "refusing to delete {n} objects without confirmation: no terminal; pass --yes (or --dry-run to preview)"
        )));
    }
    let question = format!(
        "Delete {} in namespace {} (context {})?",
        summary(plan),
        req.scope.label(),
        if target.context.is_empty() {
            "-"
        } else {
            &target.context
        }
    );
    show_preview();
    match confirm(&question) {
        Ok(true) => Ok(Verdict::Proceed { prompted: true }),
        Ok(false) => Err(Error::Declined(DECLINED.into())),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(Error::Interrupted),
        Err(e) => Err(Error::Aborted(format!(
            "cannot ask for confirmation ({e}); pass --yes; nothing deleted"
        ))),
    }
}

/// What a "no" at the prompt (or Esc at `-i`'s list) prints: an answer,
/// not an error (exit 3).
pub(crate) const DECLINED: &str = "aborted: nothing deleted";

/// `--max-delete`: more planned deletes than that abort the run (exit 3).
fn over_max(plan: &Plan, req: &Request) -> Result<()> {
    let n = plan.delete_count();
    match req.max_delete {
        Some(max) if n > max => Err(Error::Aborted(format!(
            "{n} objects would be deleted, more than --max-delete {max}; nothing deleted"
        ))),
        _ => Ok(()),
    }
}

/// Interactive means a human can answer: stdin and stderr are terminals and
/// CI is not set. (console would otherwise read from /dev/tty behind a pipe.)
pub(crate) fn is_interactive() -> bool {
    use std::io::IsTerminal;
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks the API server, before any prompt, whether every planned delete is
/// allowed: a user should not confirm what RBAC will refuse.
pub(crate) async fn permitted(client: &kube::Client, plan: &Plan) -> Result<()> {
    let needed: BTreeSet<(String, Kind)> = plan
        .to_delete()
        .map(|i| (i.candidate.namespace.to_string(), i.candidate.kind))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::model::fixtures::*;
    use crate::model::{Inventory, Phase};
    use crate::plan::plan;
    use crate::select::{Criterion, Matched, Selected};
    use clap::Parser;

    fn req(args: &[&str]) -> Request {
        let mut argv = vec!["x", "--all"];
        argv.extend_from_slice(args);
        Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
    }

    fn three() -> Plan {
        let cands = [
            pod("a", Phase::Succeeded, 0),
            pod("b", Phase::Failed, 1),
            job("j", Phase::Complete, 2),
        ];
        plan(
            cands
                .iter()
                .map(|c| Selected {
                    candidate: c,
                    matched_by: Matched::of(Criterion::All),
                })
                .collect(),
            &Inventory::default(),
            false,
        )
    }

    fn never(_: &str) -> std::io::Result<bool> {
        panic!("must not prompt")
    }

    #[test]
    fn summary_counts_by_kind_and_phase() {
        assert_eq!(
            summary(&three()),
            "1 job (1 Complete), 2 pods (1 Failed, 1 Succeeded)"
        );
    }

    #[test]
    fn rules_in_order() {
        let t = Endpoint::default();
        let p = three();
        assert_eq!(
            decide(&Plan::default(), &req(&[]), &t, false, || {}, never).unwrap(),
            Verdict::Nothing
        );
        assert!(matches!(
            decide(
                &p,
                &req(&["--max-delete", "2", "--yes"]),
                &t,
                true,
                || {},
                never
            ),
            Err(Error::Aborted(_))
        ));
        assert!(matches!(
            decide(
                &p,
                &req(&["--max-delete", "2", "--dry-run"]),
                &t,
                true,
                || {},
                never
            ),
            Err(Error::Aborted(_))
        ));
        assert_eq!(
            decide(
                &p,
                &req(&["--max-delete", "3", "--dry-run"]),
                &t,
                false,
                || {},
                never
            )
            .unwrap(),
            Verdict::Preview
        );
        assert_eq!(
            decide(&p, &req(&["--yes"]), &t, false, || {}, never).unwrap(),
            Verdict::Proceed { prompted: false }
        );
        let e = decide(&p, &req(&[]), &t, false, || {}, never).unwrap_err();
        assert!(e.to_string().contains("--yes") && e.exit_code() == 3, "{e}");
    }

    #[test]
    fn the_prompt_names_namespace_context_and_counts() {
        let t = Endpoint {
            context: "admin".into(),
            ..Default::default()
        };
        let mut asked = String::new();
        let d = decide(
            &three(),
            &req(&[]),
            &t,
            true,
            || {},
            |q| {
                asked = q.to_string();
                Ok(true)
            },
        );
        assert_eq!(d.unwrap(), Verdict::Proceed { prompted: true });
        assert_eq!(asked, "Delete 1 job (1 Complete), 2 pods (1 Failed, 1 Succeeded) in namespace crucible (context admin)?");
        let no = decide(&three(), &req(&[]), &t, true, || {}, |_| Ok(false)).unwrap_err();
        assert_eq!(no.line().unwrap(), "aborted: nothing deleted");
        assert_eq!(no.exit_code(), 3);
    }
}
