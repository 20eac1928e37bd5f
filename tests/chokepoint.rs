//! The one chokepoint every delete goes through (issue 19), against the local
//! control plane: ownership as the garbage collector sees it (a kept pod tied
//! to its job by any ownerReference keeps the job; owner kinds with their API
//! group), a plan file that cannot widen what goes, a selector an unset shell
//! variable emptied, and input files that are read with a bound.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{audit::*, commands::*, objects::*};

/// Adds an ownerReference of `kind` (`api_version`) named `name` with `uid`
/// to pod `pod`.
async fn own(
    ns: &TestNamespace,
    pod: &str,
    (api_version, kind, name, uid): (&str, &str, &str, &str),
    controller: bool,
) {
    let patch = json!({"metadata": {"ownerReferences": [{
        "apiVersion": api_version, "kind": kind, "name": name, "uid": uid,
        "controller": controller,
    }]}});
    ns.pods()
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Finding 5 of issue 19: the kept-pod scan followed only `controller: true`
/// references, but the garbage collector cascades through every owner
/// reference: the job was deleted and its kept pod went with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_pod_owned_without_controller_keeps_its_job() {
    let ns = TestNamespace::for_current_test().await;
    let ej = EvalJob::succeeding(&unique_name("nc"));
    ns.create_job(&ej).await;
    let job = ns.wait_job_complete(&ej.name()).await;
    let job_uid = job.metadata.uid.clone().unwrap();
    // A pod of another app, tied to the job by a non-controller reference.
    ns.create_pod(&BarePod::succeeded("nc-kept-pod").label("crucible-clean/keep", "true"))
        .await;
    own(
        &ns,
        "nc-kept-pod",
        ("batch/v1", "Job", &ej.name(), &job_uid),
        false,
    )
    .await;

    let (code, r, err) = ns.run_json(&["--eval-id", &ej.eval_id, "--level", "jobs", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let row = item(&r, &ej.name());
    assert_eq!(row["result"], "kept", "{r}");
    assert_eq!(
        row["reason"],
        "its pod nc-kept-pod is marked crucible-clean/keep=true"
    );
    assert_eq!(ns.job_names().await, [ej.name()]);
    assert!(ns.pod_names().await.contains(&"nc-kept-pod".to_string()));
}

/// Suspicion of issue 19: the owner check matched `kind == "Job"` without the
/// API group. A pod controlled by another group's Job is no batch Job's pod:
/// the plugin must not look for a batch Job of that name, nor count the pod
/// as one's.
#[tokio::test(flavor = "multi_thread")]
async fn an_owner_of_another_api_group_is_no_batch_job() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::failed("vc-task-0").evaluation("vc"))
        .await;
    own(
        &ns,
        "vc-task-0",
        (
            "batch.volcano.sh/v1alpha1",
            "Job",
            "vc-job",
            "0e0e0e0e-1111-2222-3333-444444444444",
        ),
        true,
    )
    .await;
    let before = audit_offset();
    let (code, r, err) = ns.run_json(&["--eval-id", "vc", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(item(&r, "vc-task-0")["result"], "deleted", "{r}");
    audit_barrier().await;
    let reads: Vec<String> =
        read_audit_log(&support::cluster::cluster().audit_log(), before, "vc-job")
            .into_iter()
            .filter(|e| e.user_agent.starts_with(PLUGIN_USER_AGENT))
            .map(|e| format!("{} {}", e.verb, e.request_uri))
            .collect();
    assert!(
        reads.is_empty(),
        "the plugin looked for a batch Job: {reads:?}"
    );
}

/// Suspicion of issue 19: a hand-edited plan row saying `phase: Running` for
/// a running pod was deleted (the plan was trusted to have been made with
/// --include-running). A plan cannot widen what goes: an unfinished object
/// goes only with --include-running on the command line that applies it.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_row_edited_to_a_running_pod_deletes_nothing_without_include_running() {
    let ns = TestNamespace::for_current_test().await;
    let tid = unique_name("edited");
    ns.create_pod(&BarePod::failed("done").evaluation("e1").test_id(&tid))
        .await;
    let running = ns
        .create_pod(&BarePod::running("busy").evaluation("e2").test_id(&tid))
        .await;
    let (code, mut plan, err) = ns.run_json(&["--test-id", &tid, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    // The edit: the planned delete now names the running pod (and is the
    // plan's only row: the running pod's own row, skipped, goes).
    let mut row = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "delete")
        .unwrap_or_else(|| panic!("no planned delete: {plan}"))
        .clone();
    row["name"] = json!("busy");
    row["uid"] = json!(running.metadata.uid.clone().unwrap());
    row["phase"] = json!("Running");
    plan["items"] = json!([row]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    std::fs::write(&file, plan.to_string()).unwrap();

    let from = file.to_str().unwrap();
    let (code, r, err) = ns.run_json(&["--from-plan", from, "--yes"]);
    assert_eq!(code, 0, "{err}");
    let row = item(&r, "busy");
    assert_eq!(row["result"], "skipped", "{r}");
    assert_eq!(row["reason"], "not finished (add --include-running)");
    assert!(ns.pod_names().await.contains(&"busy".to_string()));
    // Said on the command line, it goes.
    let (code, r, err) = ns.run_json(&["--from-plan", from, "--include-running", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(item(&r, "busy")["result"], "deleted", "{r}");
}

/// Suspicion of issue 19: `-l "app!=$X"` with X unset is `app!=`, which
/// matches nearly every object; it passed the never-empty check.
#[tokio::test(flavor = "multi_thread")]
async fn a_negative_selector_with_an_empty_value_is_refused() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::succeeded("other-app").label("app", "other"))
        .await;
    for selector in ["app!=", "app!=,team=red", "app notin ()", "app notin (a,)"] {
        let out = ns
            .plugin()
            .args(["-n", ns.name(), "-l", selector, "--all", "--yes"])
            .output();
        assert_eq!(code(&out), Some(2), "{selector}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("empty value") && err.lines().count() == 1,
            "{selector}: {err}"
        );
    }
    assert_eq!(ns.pod_names().await, ["other-app"]);
    let reqs = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert!(reqs.is_empty(), "{reqs:?}");
}

/// Suspicion of issue 19: `--from-plan` and `--policy` read their file whole,
/// without a bound: `/dev/zero` never ended. Now a few MiB at most, then a
/// clear error, at once. (Run under a memory limit, so that a regression fails
/// instead of filling the machine's memory.)
#[test]
fn input_files_are_read_with_a_bound() {
    for (flag, extra) in [("--from-plan", vec![]), ("--policy", vec!["--dry-run"])] {
        let t0 = std::time::Instant::now();
        let out = PluginCmd::new()
            .under("sh", ["-c", "ulimit -v 2000000; exec \"$@\"", "sh"])
            .args([flag, "/dev/zero"])
            .args(&extra)
            .timeout(Duration::from_secs(30))
            .output();
        let took = t0.elapsed();
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{flag}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains("/dev/zero") && err.contains("MiB"),
            "{flag}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        eprintln!("{flag} /dev/zero refused in {took:?}");
    }
    // A file just past the bound is refused the same way; one under it is read.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let mut text = String::from("# padding\n");
    while text.len() <= 2 << 20 {
        text.push_str(&"#".repeat(1023));
        text.push('\n');
    }
    std::fs::write(&big, &text).unwrap();
    let out = PluginCmd::new()
        .args(["--policy", big.to_str().unwrap(), "--dry-run"])
        .output();
    assert_eq!(code(&out), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("MiB"), "{}", stderr(&out));
}

/// While alive, a DELETE of a pod labelled `held=<tag>` in `ns` waits
/// `seconds` in admission (a webhook that accepts the connection and never
/// answers; failurePolicy Ignore lets the delete go on after it). `arrived`
/// says when the first such delete reached it.
struct HeldDeletes {
    name: String,
    arrivals: std::sync::mpsc::Receiver<()>,
}

impl HeldDeletes {
    async fn install(ns: &TestNamespace, tag: &str, seconds: i32) -> Self {
        use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, arrivals) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut held = vec![];
            for c in listener.incoming().flatten() {
                held.push(c);
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        let name = format!("held-{}", ns.name());
        let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": name},
            "webhooks": [{
                "name": "held.crucible.test",
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/held")},
                "rules": [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name()}},
                "objectSelector": {"matchLabels": {"held": tag}},
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": seconds,
            }]
        }))
        .unwrap();
        kube::Api::<ValidatingWebhookConfiguration>::all(ns.client())
            .create(&Default::default(), &config)
            .await
            .unwrap();
        let held = HeldDeletes { name, arrivals };
        // In effect once a dry-run delete of a held probe reaches it.
        ns.create_pod(&BarePod::succeeded("held-probe").label("held", tag))
            .await;
        support::wait::poll_until(
            "the webhook to take effect",
            Duration::from_secs(60),
            || {
                let pods = ns.pods();
                let arrived = held.arrivals.try_recv().is_ok();
                async move {
                    if arrived {
                        return Ok(());
                    }
                    let dp = kube::api::DeleteParams {
                        dry_run: true,
                        ..Default::default()
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        pods.delete("held-probe", &dp),
                    )
                    .await;
                    Err("no call yet".to_string())
                }
            },
        )
        .await;
        while held.arrivals.try_recv().is_ok() {}
        held
    }
}

impl Drop for HeldDeletes {
    fn drop(&mut self) {
        let _ = support::cluster::kubectl_as(
            support::cluster::ADMIN_CONTEXT,
            &[
                "delete",
                "validatingwebhookconfiguration",
                &self.name,
                "--wait=false",
            ],
            None,
        );
    }
}

/// The delete carries the resourceVersion of the copy its rules were checked
/// on: while deletes wait in admission, a pod marked keep is kept (the delete
/// meets a conflict, the pod is read again and the marker seen), and a pod
/// changed in another way is read again and deleted, not reported a conflict.
#[tokio::test(flavor = "multi_thread")]
async fn a_change_while_the_delete_waits_in_admission_is_read_and_checked_again() {
    let ns = TestNamespace::for_current_test().await;
    let tid = unique_name("held");
    for name in ["to-keep", "touched"] {
        ns.create_pod(
            &BarePod::failed(name)
                .evaluation(name)
                .test_id(&tid)
                .label("held", &tid),
        )
        .await;
    }
    let held = HeldDeletes::install(&ns, &tid, 4).await;
    let plugin = ns
        .plugin()
        .args(["-n", ns.name(), "-o", "json", "--test-id", &tid, "--yes"])
        .spawn();
    held.arrivals
        .recv_timeout(Duration::from_secs(60))
        .expect("a delete held in admission");
    let pp = PatchParams::default();
    let keep = json!({"metadata": {"labels": {"crucible-clean/keep": "true"}}});
    let touch = json!({"metadata": {"annotations": {"touched-by": "a person"}}});
    ns.pods()
        .patch("to-keep", &pp, &Patch::Merge(&keep))
        .await
        .unwrap();
    ns.pods()
        .patch("touched", &pp, &Patch::Merge(&touch))
        .await
        .unwrap();
    let done = plugin.wait(Duration::from_secs(120));
    let r = done.report();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let kept = item(&r, "to-keep");
    assert_eq!(kept["result"], "kept", "{r}");
    assert_eq!(kept["reason"], "crucible-clean/keep=true");
    assert_eq!(item(&r, "touched")["result"], "deleted", "{r}");
    assert_eq!(r["summary"]["conflict"], 0, "{r}");
    assert!(ns.pod_names().await.contains(&"to-keep".to_string()));
    drop(held);
}
