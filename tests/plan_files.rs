//! Plan files against the local control plane: a dry run's JSON report (or
//! `--save-plan`) applied later with `--from-plan` deletes exactly the
//! objects it plans to delete that still qualify, and nothing the selection
//! would add today; a plan from elsewhere, too old, or edited into another
//! shape is refused (exit 2) without a single mutating request.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use serde_json::{json, Value};

use support::{audit::*, cluster::*, commands::*, objects::*};

/// Makes a plan of `args` (a client dry run, `-o json`) into `dir/plan.json`.
fn make_plan(ns: &TestNamespace, dir: &Path, args: &[&str]) -> (PathBuf, Value) {
    let (code, plan, err) = ns.run_json(&[args, &["--dry-run"]].concat());
    assert_eq!(code, 0, "{err}");
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    (path, plan)
}

fn uid_of(report: &Value, name: &str) -> String {
    item(report, name)["uid"].as_str().unwrap().to_string()
}

async fn patch_pod(ns: &TestNamespace, name: &str, patch: Value, status: bool) {
    let pp = PatchParams::default();
    let api = ns.pods();
    if status {
        api.patch_status(name, &pp, &Patch::Merge(&patch)).await
    } else {
        api.patch(name, &pp, &Patch::Merge(&patch)).await
    }
    .unwrap_or_else(|e| panic!("patch pod {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_applied_later_deletes_exactly_what_still_qualifies() {
    let ns = TestNamespace::for_current_test().await;
    let dir = tempfile::tempdir().unwrap();
    for name in ["go-1", "go-2", "recreated", "marked", "revived", "vanished"] {
        ns.create_pod(&BarePod::succeeded(name).evaluation(name).test_id("t1"))
            .await;
    }
    ns.create_job(&EvalJob::succeeding("j1").test_id("t1"))
        .await;
    ns.wait_job_complete("evaluation-job-j1").await;
    let selection = ["--test-id", "t1", "--level", "all"];
    let (plan_path, plan) = make_plan(&ns, dir.path(), &selection);
    let planned = names_where(&plan, |i| i["action"] == "delete");
    assert_eq!(
        planned,
        [
            "evaluation-job-j1",
            "go-1",
            "go-2",
            "marked",
            "recreated",
            "revived",
            "vanished"
        ]
    );
    assert!(plan["generatedAt"].is_string(), "{plan}");
    assert!(plan["cluster"]["server"].is_string(), "{plan}");
    assert!(
        plan["cluster"]["kubeSystemUid"].is_string(),
        "admin may read it: {plan}"
    );

    // --save-plan writes the same plan while the table is printed.
    let saved = dir.path().join("saved.json");
    let out = ns
        .plugin()
        .args(["-n", ns.name()])
        .args(selection)
        .args(["--dry-run", "--save-plan"])
        .arg(&saved)
        .output();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("dry run: would delete 7 objects"),
        "{}",
        stdout(&out)
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let uids = |r: &Value| {
        let mut v: Vec<String> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["uid"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(uids(&saved), uids(&plan));

    // The namespace changes between the review and the apply.
    let old_recreated = uid_of(&plan, "recreated");
    ns.pods()
        .delete("recreated", &Default::default())
        .await
        .unwrap();
    ns.wait_pod_gone("recreated").await;
    ns.create_pod(
        &BarePod::succeeded("recreated")
            .evaluation("again")
            .test_id("t1"),
    )
    .await;
    let labels = json!({"metadata": {"labels": {"crucible-clean/keep": "true"}}});
    patch_pod(&ns, "marked", labels, false).await;
    patch_pod(
        &ns,
        "revived",
        json!({"status": {"phase": "Running"}}),
        true,
    )
    .await;
    ns.pods()
        .delete("vanished", &Default::default())
        .await
        .unwrap();
    ns.wait_pod_gone("vanished").await;
    // Matches the selection today, but was never reviewed.
    ns.create_pod(
        &BarePod::succeeded("newcomer")
            .evaluation("new")
            .test_id("t1"),
    )
    .await;

    let offset = audit_offset();
    let plan_arg = plan_path.to_str().unwrap();
    let (code, report, err) = ns.run_json(&["--from-plan", plan_arg, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["fromPlan"], plan_arg);
    let result = |name: &str| {
        let i = item(&report, name);
        (
            i["result"].as_str().unwrap().to_string(),
            i["reason"].as_str().unwrap().to_string(),
        )
    };
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(result("go-1"), s("deleted", "matched label"));
    assert_eq!(result("go-2"), s("deleted", "matched label"));
    assert_eq!(result("evaluation-job-j1"), s("deleted", "matched label"));
    let (r, why) = result("recreated");
    assert!(
        r == "skipped" && why.starts_with("recreated since the plan"),
        "{why}"
    );
    assert_eq!(result("marked"), s("kept", "crucible-clean/keep=true"));
    assert_eq!(
        result("revived"),
        s("skipped", "no longer finished (Running since the plan)")
    );
    assert_eq!(result("vanished"), s("skipped", "gone since the plan"));
    assert!(
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["name"] != "newcomer"),
        "an object not in the plan is never looked at: {report}"
    );

    // Exactly the three reviewed objects that still qualify were deleted, by the plugin.
    let writes =
        mutating_requests_since(offset, &[ns.name().to_string()], &AuditFilter::plugin()).await;
    let mut deleted: Vec<String> = writes
        .iter()
        .map(|e| format!("{} {}/{}", e.verb, e.resource(), e.name()))
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "delete jobs/evaluation-job-j1",
            "delete pods/go-1",
            "delete pods/go-2"
        ]
    );
    ns.wait_pod_gone("go-1").await;
    ns.wait_job_gone("evaluation-job-j1").await;
    let left: Vec<String> = ns
        .pod_names()
        .await
        .into_iter()
        .filter(|n| !n.starts_with("evaluation-job-j1"))
        .collect();
    assert_eq!(left, ["marked", "newcomer", "recreated", "revived"]);
    let survivor: Pod = ns.pods().get("recreated").await.unwrap();
    assert_ne!(survivor.metadata.uid.unwrap(), old_recreated);
}

/// Writes `plan` edited by `edit` to `dir/name`.
fn edited(dir: &Path, name: &str, plan: &Value, edit: impl FnOnce(&mut Value)) -> String {
    let mut v = plan.clone();
    edit(&mut v);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_from_elsewhere_too_old_or_edited_is_refused_without_a_write() {
    let ns = TestNamespace::for_current_test().await;
    let other = TestNamespace::for_current_test().await;
    let dir = tempfile::tempdir().unwrap();
    for space in [&ns, &other] {
        for name in ["p-1", "p-2"] {
            space
                .create_pod(&BarePod::succeeded(name).evaluation(name).test_id("t1"))
                .await;
        }
    }
    let (plan_path, plan) = make_plan(&ns, dir.path(), &["--test-id", "t1"]);
    let plan_arg = plan_path.display().to_string();
    let d = dir.path();
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let port = plan["cluster"]["server"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let elsewhere = kubeconfig_with_server(d, &format!("https://127.0.0.2:{port}"));
    // Old enough for --plan-max-age 1s.
    std::thread::sleep(Duration::from_millis(2100));

    type Case = (&'static str, Vec<String>, Option<PathBuf>, &'static str);
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: Vec<Case> = vec![
        (
            "another namespace",
            a(&["-n", other.name(), "--from-plan", &plan_arg]),
            None,
            "add -n",
        ),
        (
            "all namespaces",
            a(&["-A", "--from-plan", &plan_arg]),
            None,
            "add -n",
        ),
        (
            "another context",
            a(&["--context", "ci-runner", "--from-plan", &plan_arg]),
            None,
            "context \"admin\"",
        ),
        (
            "another server under the same context name",
            a(&["--from-plan", &plan_arg]),
            Some(elsewhere),
            "made on the cluster at",
        ),
        (
            "another cluster's kube-system uid",
            a(&[
                "--from-plan",
                &edited(d, "uid.json", &plan, |v| {
                    v["cluster"]["kubeSystemUid"] = json!("5e1f0000-0000-4000-8000-000000000000")
                }),
            ]),
            None,
            "another cluster",
        ),
        (
            "older than the default hour",
            a(&[
                "--from-plan",
                &edited(d, "old.json", &plan, |v| {
                    v["generatedAt"] = json!(two_hours_ago)
                }),
            ]),
            None,
            "--plan-max-age 1h",
        ),
        (
            "older than --plan-max-age",
            a(&["--from-plan", &plan_arg, "--plan-max-age", "1s"]),
            None,
            "--plan-max-age 1s",
        ),
        (
            "not JSON",
            a(&["--from-plan", &{
                let p = d.join("cut.json");
                let text = serde_json::to_string_pretty(&plan).unwrap();
                std::fs::write(&p, &text[..text.len() / 2]).unwrap();
                p.display().to_string()
            }]),
            None,
            "not valid JSON",
        ),
        (
            "an unknown kind",
            a(&[
                "--from-plan",
                &edited(d, "kind.json", &plan, |v| {
                    v["items"][0]["kind"] = json!("Deployment")
                }),
            ]),
            None,
            "unknown variant `Deployment`",
        ),
        (
            "a row without a uid",
            a(&[
                "--from-plan",
                &edited(d, "uid-less.json", &plan, |v| {
                    v["items"][1].as_object_mut().unwrap().remove("uid");
                }),
            ]),
            None,
            "missing field `uid`",
        ),
        (
            "another apiVersion",
            a(&[
                "--from-plan",
                &edited(d, "v2.json", &plan, |v| {
                    v["apiVersion"] = json!("crucible-clean/v2")
                }),
            ]),
            None,
            "apiVersion",
        ),
        (
            "the report of a run that deleted",
            a(&[
                "--from-plan",
                &edited(d, "done.json", &plan, |v| v["dryRun"] = json!(false)),
            ]),
            None,
            "dryRun: false",
        ),
        (
            "a missing file",
            a(&["--from-plan", &d.join("absent.json").display().to_string()]),
            None,
            "cannot read plan file",
        ),
    ];
    let namespaces = [ns.name().to_string(), other.name().to_string()];
    let mut failures = vec![];
    for (what, args, kubeconfig, says) in cases {
        let offset = audit_offset();
        let mut cmd = ns.plugin();
        if let Some(k) = &kubeconfig {
            cmd.kubeconfig(k);
        }
        if !args.iter().any(|x| x == "-n" || x == "-A") {
            cmd.args(["-n", ns.name()]);
        }
        let out = cmd
            .args(&args)
            .args(["--yes"])
            .timeout(Duration::from_secs(60))
            .output();
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        let writes = mutating_requests_since(offset, &namespaces, &AuditFilter::plugin()).await;
        eprintln!("[{what}] exit {:?}: {}", code(&out), err.trim_end());
        let ok = code(&out) == Some(2)
            && lines.len() == 1
            && lines[0].starts_with("error:")
            && err.contains(says)
            && stdout(&out).is_empty()
            && writes.is_empty();
        if !ok {
            failures.push(format!(
                "{what}: exit {:?}, {} writes, stderr {err:?}",
                code(&out),
                writes.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    for space in [&ns, &other] {
        assert_eq!(space.pod_names().await, ["p-1", "p-2"]);
    }

    // The same plan, fresh and unedited, goes.
    let (code, report, err) = ns.run_json(&["--from-plan", &plan_arg, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["summary"]["deleted"], 2, "{report}");
    assert_eq!(other.pod_names().await, ["p-1", "p-2"]);
}

/// A kubeconfig whose server URL carries `user:password@`: the password is
/// in no report, plan file, `-v 9` line or error; a plan made that way
/// applies to the same server.
#[tokio::test]
async fn credentials_in_the_server_url_never_show() {
    const SECRET: &str = "s3cr3tpass";
    let ns = TestNamespace::for_current_test().await;
    ns.create_pods([BarePod::succeeded("p").evaluation("e1").test_id("cred")])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(kubeconfig_path()).unwrap();
    assert!(text.contains("server: https://"), "{text}");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(
            "server: https://",
            &format!("server: https://alice:{SECRET}@"),
        ),
    )
    .unwrap();
    let plan = dir.path().join("plan.json");
    let run = |args: &[&str]| {
        let mut cmd = ns.plugin();
        cmd.kubeconfig(&kubeconfig)
            .args(["-n", ns.name(), "-o", "json", "-v", "9"])
            .args(args);
        cmd.output()
    };
    let out = run(&[
        "--test-id",
        "cred",
        "--dry-run",
        "--save-plan",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let server = report["cluster"]["server"].as_str().unwrap();
    assert!(server.starts_with("https://127.0.0.1:"), "{report}");
    let saved = std::fs::read_to_string(&plan).unwrap();
    for (what, text) in [
        ("stdout", stdout(&out)),
        ("stderr", stderr(&out)),
        ("plan", saved),
    ] {
        assert!(
            !text.contains(SECRET) && !text.contains("alice"),
            "{what}: {text}"
        );
    }
    assert!(stderr(&out).contains(server), "{}", stderr(&out));
    let out = run(&["--from-plan", plan.to_str().unwrap(), "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains(SECRET) && !stderr(&out).contains(SECRET));
    assert!(ns.pod_names().await.is_empty());

    // An unreachable server: the error and -v 9 do not show it either.
    let unreachable = dir.path().join("unreachable");
    std::fs::write(
        &unreachable,
        text.replace(
            &format!("server: {}", server.trim_end_matches('/')),
            &format!("server: https://alice:{SECRET}@127.0.0.1:1"),
        ),
    )
    .unwrap();
    let mut cmd = ns.plugin();
    let out = cmd
        .kubeconfig(&unreachable)
        .args(["-n", ns.name(), "--all", "--dry-run", "-v", "9"])
        .output();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1:1"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(SECRET), "{}", stderr(&out));
}
