//! The least a run needs from RBAC, written as a Role a cluster admin can pipe
//! into `kubectl apply -f -`. Printed after a refusal (exit 4) so the fix is
//! one command away. Pure.

use crate::cli::Level;
use crate::request::{Mode, Request, Scope};

/// The Role (a ClusterRole with `-A`) that allows `req`, as YAML.
pub(crate) fn minimal_role(req: &Request) -> String {
    let needs = crate::select::needs(req);
    let deletes = req.mode != Mode::DryRunClient;
    let mut pod_verbs = vec!["list"];
    let mut job_verbs = vec!["get", "list"];
    // `--archive` and hooks read each object before its delete; the archive
    // also lists its Events (and a job's pods) and reads its pods' logs.
    let archives = req.archive.is_some() && !req.mode.is_dry_run();
    let hooks = !req.hooks.is_empty() && (!req.mode.is_dry_run() || req.hooks_in_dry_run);
    // A delete that meets a conflict reads its object again (`get`); a
    // job's delete first lists its pods (`list`, always granted).
    if req.wait.is_some() || archives || hooks || deletes {
        pod_verbs.insert(0, "get");
    }
    if deletes && matches!(req.level, Level::Pods | Level::All) {
        pod_verbs.push("delete");
    }
    if deletes && matches!(req.level, Level::Jobs | Level::All) {
        job_verbs.push("delete");
    }
    let mut quota_verbs = vec!["list"];
    if req.watch.is_some_and(|w| w.is_event()) {
        // `--watch` lists each resource once, then watches it.
        for verbs in [&mut pod_verbs, &mut job_verbs, &mut quota_verbs] {
            verbs.insert(
                verbs.iter().position(|v| *v == "list").map_or(0, |i| i + 1),
                "watch",
            );
        }
    }
    let mut rules = vec![("\"\"", "pods", pod_verbs), ("batch", "jobs", job_verbs)];
    if needs.quotas {
        rules.push(("\"\"", "resourcequotas", quota_verbs));
    }
    if req.guard.is_some() {
        rules.push((
            "coordination.k8s.io",
            "leases",
            vec!["get", "create", "update", "delete"],
        ));
    } else if req.criteria.stale_runs {
        let mut verbs = vec!["list"];
        if deletes {
            verbs.push("delete");
        }
        rules.push(("coordination.k8s.io", "leases", verbs));
    }
    if archives {
        rules.push(("\"\"", "pods/log", vec!["get"]));
        rules.push(("\"\"", "events", vec!["list"]));
    }
    if req.events {
        // The Event recorded on each object before its delete.
        rules.push(("events.k8s.io", "events", vec!["create"]));
    }
    let (kind, namespace) = match &req.scope {
        Scope::Namespace(ns) => ("Role", format!("\n  namespace: {ns}")),
        Scope::AllNamespaces => ("ClusterRole", String::new()),
    };
    let mut out = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: crucible-clean{namespace}\nrules:\n"
    );
    for (group, resource, verbs) in rules {
        let verbs: Vec<String> = verbs.iter().map(|v| format!("\"{v}\"")).collect();
        out.push_str(&format!(
            "- apiGroups: [{group}]\n  resources: [\"{resource}\"]\n  verbs: [{}]\n",
            verbs.join(", ")
        ));
    }
    out
}

/// What follows the one-line refusal on stderr.
pub(crate) fn hint(req: &Request) -> String {
    let bind = match &req.scope {
        Scope::Namespace(ns) => format!(
            "kubectl create rolebinding crucible-clean --role crucible-clean --user USER -n {ns}"
        ),
        Scope::AllNamespaces => {
            "kubectl create clusterrolebinding crucible-clean --clusterrole crucible-clean --user USER"
                .to_string()
        }
    };
    format!(
        "# This run needs the permissions below. Apply them with `kubectl apply -f -`,\n# then bind them: {bind}\n{}",
        minimal_role(req)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn role(args: &[&str]) -> String {
        let mut argv = vec!["x"];
        argv.extend_from_slice(args);
        minimal_role(&Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap())
    }

    #[test]
    fn verbs_follow_the_run() {
        let r = role(&["--test-id", "t", "-n", "team-a"]);
        assert!(
            r.contains("kind: Role\n") && r.contains("namespace: team-a"),
            "{r}"
        );
        assert!(
            r.contains("resources: [\"pods\"]\n  verbs: [\"get\", \"list\", \"delete\"]"),
            "{r}"
        );
        assert!(
            r.contains("resources: [\"jobs\"]\n  verbs: [\"get\", \"list\"]\n"),
            "{r}"
        );
        let r = role(&["--all", "--level", "all", "--wait"]);
        assert!(r.contains("verbs: [\"get\", \"list\", \"delete\"]"), "{r}");
        let r = role(&["--all", "--dry-run"]);
        assert!(!r.contains("delete"), "{r}");
        let r = role(&["--all", "--archive", "a"]);
        assert!(
            r.contains("resources: [\"pods\"]\n  verbs: [\"get\", \"list\", \"delete\"]"),
            "{r}"
        );
        assert!(
            r.contains("resources: [\"pods/log\"]\n  verbs: [\"get\"]"),
            "{r}"
        );
        assert!(
            r.contains("resources: [\"events\"]\n  verbs: [\"list\"]"),
            "{r}"
        );
        let r = role(&["--all", "--archive", "a", "--dry-run"]);
        assert!(!r.contains("events"), "{r}");
        let r = role(&["--all", "--watch", "--yes"]);
        assert!(
            r.contains(
                "- apiGroups: [events.k8s.io]\n  resources: [\"events\"]\n  verbs: [\"create\"]\n"
            ),
            "{r}"
        );
        assert!(
            r.contains(
                "resources: [\"pods\"]\n  verbs: [\"get\", \"list\", \"watch\", \"delete\"]"
            ),
            "{r}"
        );
        assert!(
            r.contains("resources: [\"jobs\"]\n  verbs: [\"get\", \"list\", \"watch\"]"),
            "{r}"
        );
        let r = role(&["--strategy", "watermark", "--watch", "--yes"]);
        assert!(
            r.contains("resources: [\"resourcequotas\"]\n  verbs: [\"list\", \"watch\"]"),
            "{r}"
        );
        let r = role(&["--all", "--watch=poll", "--yes"]);
        assert!(!r.contains("watch\""), "polling needs no watch: {r}");
        assert!(!role(&["--all", "--watch", "--yes", "--no-events"]).contains("events"));
        assert!(!role(&["--all", "--watch", "--dry-run"]).contains("events"));
        assert!(role(&["--all", "--events"]).contains("events.k8s.io"));
        let r = role(&["--strategy", "pressure", "-A"]);
        assert!(
            r.contains("kind: ClusterRole") && r.contains("resourcequotas"),
            "{r}"
        );
    }
}
