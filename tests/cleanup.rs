//! End-to-end cleanups against the local control plane: each scenario has
//! decoys that must survive, and asserts exactly which objects remain.

mod support;

use std::time::Duration;

use support::{audit::*, cluster::*, commands::*, objects::*};

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The pod names of a job (its pods are named `<job>-<suffix>`).
async fn pods_of(ns: &TestNamespace, job: &str) -> Vec<String> {
    ns.pod_names()
        .await
        .into_iter()
        .filter(|p| p.starts_with(&format!("{job}-")))
        .collect()
}

/// Two test runs in one namespace: t1 has a succeeded, a failed and a still
/// running job, plus bare pods; t2 has a succeeded job. Decoys: a pod without
/// the base label, a kept pod, a running bare pod.
async fn two_test_runs(ns: &TestNamespace) {
    ns.create_job(&EvalJob::succeeding("a1").test_id("t1"))
        .await;
    ns.create_job(&EvalJob::failing("a2").test_id("t1")).await;
    ns.create_job(&EvalJob::running("a3").test_id("t1")).await;
    ns.create_job(&EvalJob::succeeding("b1").test_id("t2"))
        .await;
    ns.create_pod(
        &BarePod::succeeded("bare-done")
            .evaluation("e10")
            .test_id("t1"),
    )
    .await;
    ns.create_pod(
        &BarePod::failed("no-base-label")
            .label("eval-id", "e11")
            .test_id("t1"),
    )
    .await;
    ns.create_pod(
        &BarePod::succeeded("kept-label")
            .evaluation("e12")
            .test_id("t1")
            .label("crucible-clean/keep", "true"),
    )
    .await;
    ns.create_pod(
        &BarePod::failed("kept-annotation")
            .evaluation("e13")
            .test_id("t1")
            .annotation("crucible-clean/keep", "true"),
    )
    .await;
    ns.create_pod(
        &BarePod::running("bare-running")
            .evaluation("e14")
            .test_id("t1"),
    )
    .await;
    ns.wait_job_complete("evaluation-job-a1").await;
    ns.wait_job_failed("evaluation-job-a2").await;
    ns.wait_job_complete("evaluation-job-b1").await;
    ns.wait_job_pods_phase("evaluation-job-a3", "Running").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn per_test_cleanup_deletes_exactly_that_tests_finished_pods() {
    let ns = TestNamespace::for_current_test().await;
    let other = TestNamespace::new("per-test-decoy-namespace").await;
    two_test_runs(&ns).await;
    other
        .create_pod(
            &BarePod::succeeded("other-ns-t1")
                .evaluation("e20")
                .test_id("t1"),
        )
        .await;
    let a3_pods = pods_of(&ns, "evaluation-job-a3").await;
    let b1_pods = pods_of(&ns, "evaluation-job-b1").await;

    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--test-id", "t1", "--yes"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(
        stdout.contains("deleted 3, 0 already gone, 0 conflict, 0 failed"),
        "{stdout}"
    );

    let mut expected = vec![
        "no-base-label",
        "kept-label",
        "kept-annotation",
        "bare-running",
    ];
    let keep: Vec<&str> = a3_pods
        .iter()
        .chain(b1_pods.iter())
        .map(String::as_str)
        .collect();
    expected.extend(keep);
    assert_eq!(ns.pod_names().await, sorted(&expected));
    // --level pods leaves every job in place.
    assert_eq!(
        ns.job_names().await,
        sorted(&[
            "evaluation-job-a1",
            "evaluation-job-a2",
            "evaluation-job-a3",
            "evaluation-job-b1"
        ])
    );
    assert_eq!(other.pod_names().await, ["other-ns-t1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn level_all_deletes_finished_jobs_and_their_pods_go_with_them() {
    let ns = TestNamespace::for_current_test().await;
    two_test_runs(&ns).await;
    let a1_pods = pods_of(&ns, "evaluation-job-a1").await;
    assert_eq!(a1_pods.len(), 1);
    let a2_pods = pods_of(&ns, "evaluation-job-a2").await;
    let a3_pods = pods_of(&ns, "evaluation-job-a3").await;
    let b1_pods = pods_of(&ns, "evaluation-job-b1").await;

    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--level",
            "all",
            "--yes",
            "--wait",
            "--timeout",
            "60s",
            "-o",
            "json",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let deleted: Vec<String> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "deleted")
        .map(|i| {
            format!(
                "{}/{}",
                i["kind"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        deleted,
        [
            "Job/evaluation-job-a1",
            "Job/evaluation-job-a2",
            "Pod/bare-done"
        ]
    );

    // Background propagation: the garbage collector removes the jobs' pods
    // (each job's in its own time: wait for both).
    for p in a1_pods.iter().chain(&a2_pods) {
        ns.wait_pod_gone(p).await;
    }
    assert_eq!(
        ns.job_names().await,
        sorted(&["evaluation-job-a3", "evaluation-job-b1"])
    );
    let mut expected = vec![
        "no-base-label",
        "kept-label",
        "kept-annotation",
        "bare-running",
    ];
    expected.extend(a3_pods.iter().chain(b1_pods.iter()).map(String::as_str));
    assert_eq!(ns.pod_names().await, sorted(&expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn cascade_orphan_leaves_the_pods() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_job(&EvalJob::succeeding("c1").test_id("t1"))
        .await;
    ns.wait_job_complete("evaluation-job-c1").await;
    let pods = pods_of(&ns, "evaluation-job-c1").await;
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--level",
            "jobs",
            "--cascade",
            "orphan",
            "--yes",
            "--wait",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(ns.job_names().await.is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ns.pod_names().await, pods, "orphaned pods stay");
}

#[tokio::test(flavor = "multi_thread")]
async fn age_cleanup_measured_from_creation() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::succeeded("old-done").evaluation("e1"))
        .await;
    ns.create_pod(&BarePod::failed("old-failed").evaluation("e2"))
        .await;
    ns.create_pod(&BarePod::running("old-running").evaluation("e3"))
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    ns.create_pod(&BarePod::succeeded("new-done").evaluation("e4"))
        .await;

    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--older-than", "4s", "--yes", "-o", "name"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "pod/old-done\npod/old-failed\n");
    assert_eq!(ns.pod_names().await, sorted(&["new-done", "old-running"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn age_cleanup_measured_from_finish() {
    let ns = TestNamespace::for_current_test().await;
    let hour = Duration::from_secs(3600);
    ns.create_pod(
        &BarePod::succeeded("finished-2h-ago")
            .evaluation("e1")
            .finished_ago(2 * hour),
    )
    .await;
    ns.create_pod(
        &BarePod::failed("failed-3h-ago")
            .evaluation("e2")
            .finished_ago(3 * hour),
    )
    .await;
    ns.create_pod(
        &BarePod::succeeded("finished-1m-ago")
            .evaluation("e3")
            .finished_ago(Duration::from_secs(60)),
    )
    .await;

    // Everything was created just now: by creation age nothing is an hour old.
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--older-than",
            "1h",
            "--dry-run",
            "-o",
            "name",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");

    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--older-than",
            "1h",
            "--age-from",
            "finished",
            "--yes",
            "-o",
            "name",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Rows are ordered by creation time, and the two pods may have been
    // created a second apart: compare them as a set.
    let deleted = stdout(&out);
    let mut deleted: Vec<&str> = deleted.lines().collect();
    deleted.sort();
    assert_eq!(deleted, ["pod/failed-3h-ago", "pod/finished-2h-ago"]);
    assert_eq!(ns.pod_names().await, ["finished-1m-ago"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn include_running_deletes_running_bare_pods_but_never_pods_of_a_running_job() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_job(&EvalJob::running("r1").test_id("t1")).await;
    ns.create_pod(
        &BarePod::running("bare-running")
            .evaluation("e2")
            .test_id("t1"),
    )
    .await;
    let job_pods = ns.wait_job_pods_phase("evaluation-job-r1", "Running").await;
    let job_pod = job_pods[0].metadata.name.clone().unwrap();

    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--include-running",
            "--yes",
            "--wait",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ns.pod_names().await, [job_pod]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_pod_of_the_test_is_a_skipped_row_and_is_never_deleted() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::succeeded("done").evaluation("e1").test_id("run-b"))
        .await;
    ns.create_pod(&BarePod::running("busy").evaluation("e2").test_id("run-b"))
        .await;
    // Another run's running pod is not part of the answer.
    ns.create_pod(&BarePod::running("other").evaluation("e3").test_id("run-c"))
        .await;
    let (code, r, err) = ns.run_json(&["--test-id", "run-b", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let busy = item(&r, "busy");
    assert_eq!(
        (
            &busy["phase"],
            &busy["action"],
            &busy["result"],
            &busy["reason"]
        ),
        (
            &serde_json::json!("Running"),
            &serde_json::json!("skip"),
            &serde_json::json!("skipped"),
            &serde_json::json!("not finished (add --include-running)")
        ),
        "{r}"
    );
    assert_eq!(r["summary"]["selected"], 2, "{r}");
    assert_eq!(r["summary"]["skipped"], 1, "{r}");
    assert!(r["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["name"] != "other"));

    let base = ["-n", ns.name(), "--test-id", "run-b"];
    let wide = ns
        .plugin()
        .args([&base[..], &["--dry-run", "-o", "wide"]].concat())
        .output();
    let text = stdout(&wide);
    assert!(
        text.lines().any(|l| l.contains(" busy ")
            && l.ends_with("skipped: not finished (add --include-running)")),
        "{text}"
    );
    // Scripts that pipe -o name get only what goes.
    let names = ns
        .plugin()
        .args([&base[..], &["--dry-run", "-o", "name"]].concat())
        .output();
    assert_eq!(stdout(&names), "pod/done\n");

    let (code, r, err) = ns.run_json(&["--test-id", "run-b", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names_where(&r, |i| i["result"] == "deleted"), ["done"]);
    assert_eq!(ns.pod_names().await, ["busy", "other"]);
    let deletes = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn terminating_objects_are_reported_not_deleted_again() {
    let ns = TestNamespace::for_current_test().await;
    // A finalizer keeps the pod terminating after its delete.
    ns.create_pod(&BarePod::succeeded("stuck").evaluation("e1"))
        .await;
    let patch = serde_json::json!({"metadata": {"finalizers": ["crucible.test/hold"]}});
    ns.pods()
        .patch(
            "stuck",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    ns.pods()
        .delete("stuck", &Default::default())
        .await
        .unwrap();

    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--all", "--yes", "-o", "json"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["items"][0]["reason"], "terminating");
    assert_eq!(report["items"][0]["result"], "skipped");
    assert!(ns
        .mutating_requests(&AuditFilter::user_agent("kubectl-crucible-clean"))
        .await
        .is_empty());
    let unpatch = serde_json::json!({"metadata": {"finalizers": null}});
    ns.pods()
        .patch(
            "stuck",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&unpatch),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_in_pages_of_500() {
    let ns = TestNamespace::for_current_test().await;
    let n = 520;
    ns.create_pods(
        (0..n).map(|i| BarePod::succeeded(&format!("p-{i:04}")).evaluation(&format!("e{i}"))),
    )
    .await;
    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--all", "--dry-run", "-o", "name"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), n);

    audit_barrier().await;
    let lists: Vec<AuditEvent> = read_audit_events(&format!("/namespaces/{}/pods?", ns.name()))
        .into_iter()
        .filter(|e| {
            e.verb == "list"
                && e.user_agent.starts_with("kubectl-crucible-clean")
                && e.stage == "ResponseComplete"
        })
        .collect();
    assert!(
        lists.iter().all(|e| e.request_uri.contains("limit=500")),
        "{lists:?}"
    );
    assert!(
        lists.iter().any(|e| e.request_uri.contains("continue=")),
        "a second page was fetched: {lists:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn all_namespaces_never_touches_the_protected_ones() {
    let ns = TestNamespace::for_current_test().await;
    let run = unique_name("all-ns-run");
    ns.create_pod(&BarePod::succeeded("mine").evaluation("e1").test_id(&run))
        .await;
    let client = admin_client().await;
    create_bare_pod(
        &client,
        "kube-system",
        &BarePod::succeeded(&run).evaluation("e2").test_id(&run),
    )
    .await;

    let out = ns
        .plugin()
        .args(["-A", "--test-id", &run, "--yes"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("NAMESPACE "), "{table}");
    assert!(
        table.contains("deleted 1,") && table.contains("in all namespaces"),
        "{table}"
    );
    assert!(ns.pod_names().await.is_empty());
    let kube_system: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(client, "kube-system");
    assert!(
        kube_system.get_opt(&run).await.unwrap().is_some(),
        "kube-system is never cleaned"
    );
    kube_system.delete(&run, &Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_gives_up_after_its_timeout_with_exit_1() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::succeeded("held").evaluation("e1"))
        .await;
    // A finalizer keeps the pod after its delete is accepted.
    let hold = serde_json::json!({"metadata": {"finalizers": ["crucible.test/hold"]}});
    let pp = kube::api::PatchParams::default();
    ns.pods()
        .patch("held", &pp, &kube::api::Patch::Merge(&hold))
        .await
        .unwrap();

    let t0 = std::time::Instant::now();
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--all",
            "--yes",
            "--wait",
            "--timeout",
            "2s",
        ])
        .output();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(t0.elapsed() < Duration::from_secs(20));
    let err = stderr(&out);
    assert_eq!(
        err.trim(),
        "error: timed out after 2s waiting for 1 of 1 objects to go: pod/held (finalizers: crucible.test/hold)"
    );

    let release = serde_json::json!({"metadata": {"finalizers": null}});
    ns.pods()
        .patch("held", &pp, &kube::api::Patch::Merge(&release))
        .await
        .unwrap();
    ns.wait_pod_gone("held").await;
}

/// Merges `labels` and `annotations` into an object's metadata (JSON merge
/// patch; a null value removes the key).
async fn patch_meta<K>(api: &kube::Api<K>, name: &str, meta: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({ "metadata": meta })),
    )
    .await
    .unwrap_or_else(|e| panic!("patch {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_pod_keeps_its_job_and_a_kept_job_keeps_its_pods() {
    let ns = TestNamespace::for_current_test().await;
    for id in ["k1", "k2", "k3", "k4"] {
        ns.create_job(&EvalJob::succeeding(id).test_id("t1")).await;
    }
    for id in ["k1", "k2", "k3", "k4"] {
        ns.wait_job_complete(&format!("evaluation-job-{id}")).await;
        ns.wait_job_pods_phase(&format!("evaluation-job-{id}"), "Succeeded")
            .await;
    }
    // k1's pod is kept by label; k2's pod by annotation, and it no longer
    // even matches the base selector (its app label is gone); k3's Job is kept.
    let k1_pod = pods_of(&ns, "evaluation-job-k1").await.remove(0);
    let k2_pod = pods_of(&ns, "evaluation-job-k2").await.remove(0);
    let k3_pod = pods_of(&ns, "evaluation-job-k3").await.remove(0);
    patch_meta(
        &ns.pods(),
        &k1_pod,
        serde_json::json!({"labels": {"crucible-clean/keep": "true"}}),
    )
    .await;
    patch_meta(
        &ns.pods(),
        &k2_pod,
        serde_json::json!({"labels": {"app": null}, "annotations": {"crucible-clean/keep": "true"}}),
    )
    .await;
    patch_meta(
        &ns.jobs(),
        "evaluation-job-k3",
        serde_json::json!({"annotations": {"crucible-clean/keep": "true"}}),
    )
    .await;

    // --level pods: the pod of the kept job k3 stays, named with its job.
    let (code, report, err) = ns.run_json(&["--test-id", "t1", "--level", "pods", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let k3 = item(&report, &k3_pod);
    assert_eq!(k3["result"], "kept", "{k3}");
    assert_eq!(
        k3["reason"],
        "its job evaluation-job-k3 is marked crucible-clean/keep=true"
    );
    assert!(ns.pods().get_opt(&k3_pod).await.unwrap().is_some());
    assert!(pods_of(&ns, "evaluation-job-k4").await.is_empty());

    // --level jobs and all: the jobs of kept pods stay (the cascade would
    // take the pods), each reported kept naming its pod.
    for level in ["jobs", "all"] {
        let (code, report, err) = ns.run_json(&["--test-id", "t1", "--level", level, "--yes"]);
        assert_eq!(code, 0, "{err}");
        for (job, pod) in [
            ("evaluation-job-k1", &k1_pod),
            ("evaluation-job-k2", &k2_pod),
        ] {
            let r = item(&report, job);
            assert_eq!(r["result"], "kept", "{level}: {r}");
            assert_eq!(
                r["reason"],
                format!("its pod {pod} is marked crucible-clean/keep=true"),
                "{level}"
            );
        }
        assert_eq!(item(&report, "evaluation-job-k3")["result"], "kept");
    }
    ns.wait_job_gone("evaluation-job-k4").await;
    assert_eq!(
        ns.job_names().await,
        [
            "evaluation-job-k1",
            "evaluation-job-k2",
            "evaluation-job-k3"
        ]
    );
    let mut pods = vec![k1_pod, k2_pod, k3_pod];
    pods.sort();
    assert_eq!(ns.pod_names().await, pods, "no kept pod was lost");
}
