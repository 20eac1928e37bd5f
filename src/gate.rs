//! The gate between plan and execution: preview, `--max-delete`, and the
//! confirmation rules. Whether we are interactive and how the question is
//! asked are injected, so the rules are unit-tested without a terminal.

use std::collections::BTreeMap;

use crate::client::Target;
use crate::error::{Error, Result};
use crate::model::Kind;
use crate::plan::Plan;
use crate::request::{Mode, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to delete: go straight to the report.
    Nothing,
    /// Render (client dry run) or send with dryRun=All (server dry run).
    Preview,
    /// Delete; `prompted` says a human took time to answer.
    Proceed { prompted: bool },
}

/// `8 pods (5 Succeeded, 3 Failed), 2 jobs (2 Complete)`.
pub fn summary(plan: &Plan) -> String {
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

pub fn decide(
    plan: &Plan,
    req: &Request,
    target: &Target,
    interactive: bool,
    confirm: impl FnOnce(&str) -> std::io::Result<bool>,
) -> Result<Decision> {
    let n = plan.delete_count();
    if n == 0 {
        return Ok(Decision::Nothing);
    }
    if let Some(max) = req.max_delete {
        if n > max {
            return Err(Error::Aborted(format!(
                "{n} objects would be deleted, more than --max-delete {max}; nothing deleted"
            )));
        }
    }
    if req.mode != Mode::Apply {
        return Ok(Decision::Preview);
    }
    if req.yes {
        return Ok(Decision::Proceed { prompted: false });
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
    match confirm(&question) {
        Ok(true) => Ok(Decision::Proceed { prompted: true }),
        Ok(false) => Err(Error::Aborted(
            "aborted at the prompt; nothing deleted".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(Error::Interrupted),
        Err(e) => Err(Error::Aborted(format!(
            "cannot ask for confirmation ({e}); pass --yes; nothing deleted"
        ))),
    }
}

/// Interactive means a human can answer: stdin and stderr are terminals and
/// CI is not set. (console would otherwise read from /dev/tty behind a pipe.)
pub fn is_interactive() -> bool {
    use std::io::IsTerminal;
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    !ci && std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The real prompt: dialoguer on stderr, default No.
pub fn ask(question: &str) -> std::io::Result<bool> {
    // A signal while the prompt owns the terminal exits at once (see `stop`).
    let _prompting = crate::stop::Prompting::start();
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .map_err(|e| match e {
            dialoguer::Error::IO(io) => io,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::model::fixtures::*;
    use crate::model::{Inventory, Phase};
    use crate::plan::plan;
    use crate::select::{Rule, Selected};
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
                    matched_by: vec![Rule::All],
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
        let t = Target::default();
        let p = three();
        assert_eq!(
            decide(&Plan::default(), &req(&[]), &t, false, never).unwrap(),
            Decision::Nothing
        );
        assert!(matches!(
            decide(&p, &req(&["--max-delete", "2", "--yes"]), &t, true, never),
            Err(Error::Aborted(_))
        ));
        assert!(matches!(
            decide(
                &p,
                &req(&["--max-delete", "2", "--dry-run"]),
                &t,
                true,
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
                never
            )
            .unwrap(),
            Decision::Preview
        );
        assert_eq!(
            decide(&p, &req(&["--yes"]), &t, false, never).unwrap(),
            Decision::Proceed { prompted: false }
        );
        let e = decide(&p, &req(&[]), &t, false, never).unwrap_err();
        assert!(e.to_string().contains("--yes") && e.exit_code() == 3, "{e}");
    }

    #[test]
    fn the_prompt_names_namespace_context_and_counts() {
        let t = Target {
            context: "admin".into(),
            server: String::new(),
        };
        let mut asked = String::new();
        let d = decide(&three(), &req(&[]), &t, true, |q| {
            asked = q.to_string();
            Ok(true)
        });
        assert_eq!(d.unwrap(), Decision::Proceed { prompted: true });
        assert_eq!(asked, "Delete 1 job (1 Complete), 2 pods (1 Failed, 1 Succeeded) in namespace crucible (context admin)?");
        assert!(matches!(
            decide(&three(), &req(&[]), &t, true, |_| Ok(false)),
            Err(Error::Aborted(_))
        ));
    }
}
