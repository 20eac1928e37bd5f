//! Pressure, watermark and watch mode against the local control plane, with
//! the quota controller running: the preview's figures, what a real cleanup
//! frees once the controller has recounted, and what must survive.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use support::{commands::*, objects::*, wait::*};

async fn create_quota(ns: &TestNamespace, name: &str, hard: Value) {
    let q: ResourceQuota =
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"hard": hard}}))
            .unwrap();
    Api::<ResourceQuota>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &q)
        .await
        .unwrap();
}

/// Waits until the quota controller reports `used[resource] == want`.
async fn wait_used(ns: &TestNamespace, quota: &str, resource: &str, want: &str) {
    let api: Api<ResourceQuota> = Api::namespaced(ns.client(), ns.name());
    poll_until(
        &format!("quota {quota} to report {resource} used {want}"),
        Duration::from_secs(90),
        || async {
            let q = api.get(quota).await.map_err(|e| e.to_string())?;
            let used = q
                .status
                .and_then(|s| s.used)
                .and_then(|u| u.get(resource).map(|q| q.0.clone()));
            if used.as_deref() == Some(want) {
                Ok(())
            } else {
                Err(format!("used {used:?}"))
            }
        },
    )
    .await
}

fn line<'a>(report: &'a Value, resource: &str) -> &'a Value {
    report["quota"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["resource"] == resource)
        .unwrap_or_else(|| panic!("no {resource} line: {report}"))
}

/// Finished bare pods `prefix0`, `prefix1`… created in name order (so
/// oldest-first and name order agree), every `fail_every`-th one failed.
async fn finished_pods(
    ns: &TestNamespace,
    prefix: &str,
    n: usize,
    fail_every: usize,
) -> Vec<String> {
    let mut names = vec![];
    for i in 0..n {
        let name = format!("{prefix}{i:02}");
        let pod = if fail_every > 0 && i % fail_every == fail_every - 1 {
            BarePod::failed(&name)
        } else {
            BarePod::succeeded(&name)
        };
        ns.create_pod(&pod.evaluation(&format!("e-{name}"))).await;
        names.push(name);
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_figures_for_count_pods_and_pods_with_finished_and_running_pods() {
    let ns = TestNamespace::for_current_test().await;
    create_quota(&ns, "objects", json!({"count/pods": "10"})).await;
    create_quota(&ns, "live", json!({"pods": "4"})).await;
    finished_pods(&ns, "done", 3, 0).await;
    for name in ["run0", "run1"] {
        ns.create_pod(&BarePod::running(name).evaluation(name))
            .await;
    }
    wait_used(&ns, "objects", "count/pods", "5").await;
    wait_used(&ns, "live", "pods", "2").await;

    // Finished pods only: 5/10 ≥ 40% → below means 3 → the two oldest; pods (2/4) stays.
    let (code, r, err) =
        ns.run_json(&["--strategy", "pressure", "--threshold", "0.4", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let cp = line(&r, "count/pods");
    assert_eq!(
        (
            cp["hard"].as_f64(),
            cp["used"].as_f64(),
            cp["frees"].as_f64(),
            cp["projected"].as_f64()
        ),
        (Some(10.0), Some(5.0), Some(2.0), Some(3.0))
    );
    // Counts are integers in JSON.
    for key in ["hard", "used", "frees", "projected"] {
        assert!(cp[key].is_u64(), "{key}: {cp}");
    }
    let target = &r["quota"]["decisions"][0]["targets"][0];
    for key in ["hard", "used", "limit", "needed", "planned", "shortfall"] {
        assert!(target[key].is_u64(), "{key}: {target}");
    }
    let pods = line(&r, "pods");
    assert_eq!(
        (
            pods["used"].as_f64(),
            pods["frees"].as_f64(),
            pods["projected"].as_f64()
        ),
        (Some(2.0), Some(0.0), Some(2.0))
    );
    assert_eq!(pods["counts"], "nonTerminalPods");
    assert_eq!(
        r["quota"]["summary"],
        "deleting 2 finished pods frees 2 of count/pods and 0 of pods"
    );
    let msg = r["quota"]["decisions"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("pods of quota live is 2/4 (50%) counts non-terminal pods only"),
        "{msg}"
    );
    assert_eq!(
        names_where(&r, |i| i["action"] == "delete"),
        ["done00", "done01"]
    );

    // With --include-running a running pod relieves `pods` too.
    let (code, r, err) = ns.run_json(&[
        "--strategy",
        "pressure",
        "--threshold",
        "0.4",
        "--include-running",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["action"] == "delete"),
        ["done00", "done01", "run0"]
    );
    let cp = line(&r, "count/pods");
    assert_eq!(
        (cp["frees"].as_f64(), cp["projected"].as_f64()),
        (Some(3.0), Some(2.0))
    );
    let pods = line(&r, "pods");
    assert_eq!(
        (pods["frees"].as_f64(), pods["projected"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(
        r["quota"]["summary"],
        "deleting 2 finished pods and 1 unfinished pod frees 3 of count/pods and 1 of pods"
    );

    // The table preview says the same in plain words above the rows.
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--strategy",
            "pressure",
            "--threshold",
            "0.4",
            "--dry-run",
        ])
        .output();
    let text = stdout(&out);
    // One line before the quota table (what triggered), one after (what
    // the plan frees): each said once.
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with(
            "pressure: count/pods of quota objects is 5/10 (50%): at or above the threshold (40%); pods of quota live is 2/4 (50%) counts non-terminal pods only"
        ),
        "{text}"
    );
    assert_eq!(
        lines.next(),
        Some("QUOTA     RESOURCE     HARD   USED   RATIO   FREES   AFTER   AFTER-RATIO   COUNTS"),
        "{text}"
    );
    assert!(
        text.contains("\ndeleting 2 finished pods frees 2 of count/pods and 0 of pods\n"),
        "{text}"
    );
    assert!(!text.contains("down to"), "{text}");
    assert_eq!(ns.pod_names().await.len(), 5, "a dry run deletes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn pressure_cleanup_lowers_count_pods_and_leaves_running_pods() {
    let ns = TestNamespace::for_current_test().await;
    create_quota(&ns, "objects", json!({"count/pods": "10"})).await;
    let done = finished_pods(&ns, "done", 8, 3).await;
    ns.create_pod(&BarePod::running("runner").evaluation("r"))
        .await;
    wait_used(&ns, "objects", "count/pods", "9").await;

    // 9/10 ≥ 80%: below it means 7, so the two oldest finished pods go.
    let (code, r, err) = ns.run_json(&["--strategy", "pressure", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["done00", "done01"]
    );
    // After the deletes the quota section says what was freed.
    assert_eq!(
        r["quota"]["summary"],
        "deleted 2 finished pods: freed 2 of count/pods"
    );
    wait_used(&ns, "objects", "count/pods", "7").await;
    let mut expected: Vec<String> = done[2..].to_vec();
    expected.push("runner".into());
    assert_eq!(ns.pod_names().await, expected);

    // Now below the threshold: nothing relievable is over it, nothing goes, exit 0.
    let (code, r, err) = ns.run_json(&["--strategy", "pressure", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["planned"], 0);
    let msg = r["quota"]["decisions"][0]["message"].as_str().unwrap();
    assert!(msg.starts_with("pressure: no quota resource that this cleanup can relieve is at or above the threshold (80%)"), "{msg}");
    assert_eq!(ns.pod_names().await.len(), 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_jobs_frees_their_pods_in_count_pods() {
    let ns = TestNamespace::for_current_test().await;
    create_quota(
        &ns,
        "objects",
        json!({"count/pods": "4", "count/jobs.batch": "10"}),
    )
    .await;
    for id in ["j1", "j2", "j3"] {
        ns.create_job(&EvalJob::succeeding(id)).await;
        ns.wait_job_complete(&format!("evaluation-job-{id}")).await;
    }
    wait_used(&ns, "objects", "count/pods", "3").await;
    // 3/4 ≥ 50%: below means 1: two jobs go, each with its pod.
    let (code, r, err) = ns.run_json(&[
        "--strategy",
        "pressure",
        "--threshold",
        "0.5",
        "--level",
        "all",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["evaluation-job-j1", "evaluation-job-j2"]
    );
    assert_eq!(r["quota"]["summary"], "deleted 2 finished jobs (with their 2 pods): freed 2 of count/jobs.batch and 2 of count/pods");
    assert_eq!(line(&r, "count/pods")["projected"].as_f64(), Some(1.0));
    wait_used(&ns, "objects", "count/pods", "1").await;
    wait_used(&ns, "objects", "count/jobs.batch", "1").await;
    assert_eq!(ns.job_names().await, ["evaluation-job-j3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn watermark_stops_exactly_at_the_low_watermark() {
    let ns = TestNamespace::for_current_test().await;
    create_quota(&ns, "objects", json!({"count/pods": "20"})).await;
    let done = finished_pods(&ns, "p", 16, 0).await;
    wait_used(&ns, "objects", "count/pods", "16").await;
    // 16/20 = 80% reaches the high watermark; 50% of 20 is 10: six go, oldest first.
    let (code, r, err) = ns.run_json(&["--strategy", "watermark", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        done[..6].to_vec()
    );
    let t = &r["quota"]["decisions"][0]["targets"][0];
    assert_eq!(
        (
            t["limit"].as_f64(),
            t["needed"].as_f64(),
            t["planned"].as_f64(),
            t["shortfall"].as_f64()
        ),
        (Some(10.0), Some(6.0), Some(6.0), Some(0.0))
    );
    wait_used(&ns, "objects", "count/pods", "10").await;
    assert_eq!(ns.pod_names().await, done[6..].to_vec());
    // At 50% it is below the high watermark: nothing more.
    let (code, r, _) = ns.run_json(&["--strategy", "watermark", "--yes"]);
    assert_eq!((code, r["summary"]["planned"].as_u64()), (0, Some(0)));
}

#[tokio::test(flavor = "multi_thread")]
async fn watermark_reports_a_shortfall_when_finished_objects_are_too_few() {
    let ns = TestNamespace::for_current_test().await;
    create_quota(&ns, "objects", json!({"count/pods": "10"})).await;
    let done = finished_pods(&ns, "done", 4, 0).await;
    let mut kept = BarePod::succeeded("kept").evaluation("k");
    kept = kept.label("crucible-clean/keep", "true");
    ns.create_pod(&kept).await;
    for i in 0..4 {
        ns.create_pod(&BarePod::running(&format!("run{i}")).evaluation(&format!("r{i}")))
            .await;
    }
    wait_used(&ns, "objects", "count/pods", "9").await;
    // Down to 30% means 3: six must go, only the four unkept finished ones may.
    let (code, r, err) =
        ns.run_json(&["--strategy", "watermark", "--low-watermark", "0.3", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names_where(&r, |i| i["result"] == "deleted"), done);
    assert_eq!(names_where(&r, |i| i["result"] == "kept"), ["kept"]);
    let t = &r["quota"]["decisions"][0]["targets"][0];
    assert_eq!(
        (
            t["needed"].as_f64(),
            t["planned"].as_f64(),
            t["shortfall"].as_f64()
        ),
        (Some(6.0), Some(4.0), Some(2.0))
    );
    let msg = r["quota"]["decisions"][0]["message"].as_str().unwrap();
    assert!(msg.contains("only 4 finished objects may be deleted, freeing 4 of the 6 needed; it stays at 5 (50%), shortfall 2"), "{msg}");
    assert_eq!(
        ns.pod_names().await,
        ["kept", "run0", "run1", "run2", "run3"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prefer_failed_deletes_failed_ones_first() {
    let ns = TestNamespace::for_current_test().await;
    create_quota(&ns, "objects", json!({"count/pods": "10"})).await;
    // p00 ok, p01 failed, p02 ok, p03 failed, … : 8/10 used.
    let done = finished_pods(&ns, "p", 8, 2).await;
    wait_used(&ns, "objects", "count/pods", "8").await;
    // 80% → 50% = 5: three go, failed first: p01, p03, p05.
    let (code, r, err) = ns.run_json(&["--strategy", "watermark", "--prefer", "failed", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["p01", "p03", "p05"]
    );
    let left: Vec<String> = done
        .iter()
        .filter(|n| !["p01", "p03", "p05"].contains(&n.as_str()))
        .cloned()
        .collect();
    assert_eq!(ns.pod_names().await, left);
}

#[tokio::test(flavor = "multi_thread")]
async fn watermark_without_quota_uses_capacity_or_explains_both() {
    let ns = TestNamespace::for_current_test().await;
    finished_pods(&ns, "p", 4, 0).await;
    ns.create_pod(&BarePod::succeeded("not-ours")).await; // no app=evaluation, still stored
    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--strategy", "watermark", "--yes"])
        .output();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no ResourceQuota on count/pods") && err.contains("--capacity N"),
        "{err}"
    );
    // --capacity 6: 5 stored pods (83%) → 3 (50%): the two oldest of ours.
    let (code, r, err) = ns.run_json(&["--strategy", "watermark", "--capacity", "6", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["p00", "p01"]
    );
    assert_eq!(line(&r, "count/pods")["quota"], "--capacity");
    assert_eq!(ns.pod_names().await, ["not-ours", "p02", "p03"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_runs_cycles_against_a_filling_namespace_and_stops_cleanly_on_sigterm() {
    let ns = TestNamespace::for_current_test().await;
    finished_pods(&ns, "first", 2, 0).await;
    let mut child = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--all",
            "--watch=poll",
            "--interval",
            "3s",
            "--yes",
            "-o",
            "json",
        ])
        .spawn();
    let mut reports = vec![];
    for cycle in 1..=3 {
        let l = tokio::task::block_in_place(|| child.stdout_line()).expect("a line per cycle");
        let r: Value = serde_json::from_str(&l)
            .unwrap_or_else(|e| panic!("cycle {cycle}: not one JSON line ({e}): {l}"));
        assert_eq!(
            (r["kind"].as_str(), r["cycle"].as_u64()),
            (Some("CleanupReport"), Some(cycle))
        );
        reports.push(r);
        if cycle < 3 {
            // The namespace keeps filling up between cycles.
            finished_pods(&ns, &format!("c{cycle}-"), 2, 0).await;
        }
    }
    // Between cycles now (the interval is 3s): stop it.
    child.signal("TERM");
    let end = tokio::task::block_in_place(|| child.wait(Duration::from_secs(300)));
    let err = &end.stderr;
    assert_eq!(end.code, Some(0), "{err}");
    assert!(
        err.contains("watch: stopped by signal after 3 cycles"),
        "{err}"
    );
    assert_eq!(end.stdout, "", "nothing after the signal");
    let deleted: Vec<Vec<String>> = reports
        .iter()
        .map(|r| names_where(r, |i| i["result"] == "deleted"))
        .collect();
    assert_eq!(
        deleted,
        [
            vec!["first00", "first01"],
            vec!["c1-00", "c1-01"],
            vec!["c2-00", "c2-01"]
        ]
    );
    assert!(ns.pod_names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn pressure_without_a_quota_is_refused_and_hybrid_runs_without_its_watermark() {
    let ns = TestNamespace::for_current_test().await;
    finished_pods(&ns, "p", 3, 0).await;
    ns.create_pod(
        &BarePod::succeeded("run-a-0")
            .evaluation("e-a0")
            .test_id("run-a"),
    )
    .await;
    // Pressure with nothing to measure: exit 2, before any delete.
    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--strategy", "pressure", "--yes"])
        .output();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("has no ResourceQuota") && err.contains("--capacity N"),
        "{err}"
    );
    assert_eq!(ns.pod_names().await.len(), 4, "nothing deleted");
    // The seed's CI example in a namespace without a quota: the label and age
    // rules run, the watermark rule is reported inactive, once.
    let (code, r, err) = ns.run_json(&[
        "--strategy",
        "hybrid",
        "--test-id",
        "run-a",
        "--older-than",
        "15m",
        "--high-watermark",
        "0.7",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("watermark rule inactive").count(), 1, "{err}");
    assert_eq!(names_where(&r, |i| i["result"] == "deleted"), ["run-a-0"]);
    let decision = &r["quota"]["decisions"][0];
    assert_eq!(decision["inactive"], true, "{r}");
    assert_eq!(ns.pod_names().await, ["p00", "p01", "p02"]);
}
