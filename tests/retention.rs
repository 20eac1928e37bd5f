//! Retention (`--keep-last`, `--keep-succeeded-for`, `--keep-failed-for`)
//! and hybrid cleanups against the local control plane, with decoys that
//! must survive.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, PostParams};
use serde_json::json;
use support::{commands::*, objects::*, wait::*};

const H: u64 = 3600;

/// A finished bare pod of test run `run`, finished `ago` seconds ago.
async fn done(ns: &TestNamespace, name: &str, run: &str, failed: bool, ago: u64) {
    let pod = if failed {
        BarePod::failed(name)
    } else {
        BarePod::succeeded(name)
    };
    ns.create_pod(
        &pod.evaluation(&format!("e-{name}"))
            .test_id(run)
            .finished_ago(Duration::from_secs(ago)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_last_and_separate_success_and_failure_retention_are_honoured() {
    let ns = TestNamespace::for_current_test().await;
    // Created in this order (keep-last ranks by creation, newest first).
    done(&ns, "a1", "a", false, 5 * H).await; // old success: goes
    done(&ns, "a2", "a", true, 5 * H).await; // old failure: goes
    done(&ns, "a3", "a", false, 2 * H).await; // success older than 1h: goes
    done(&ns, "a4", "a", false, 5 * H).await; // decoy: newest of run a
    done(&ns, "b0", "b", false, 90 * 60).await; // success older than 1h: goes
    done(&ns, "b1", "b", true, 2 * H).await; // decoy: failure younger than 4h
    done(&ns, "b2", "b", false, 30 * 60).await; // decoy: success younger than 1h
    done(&ns, "b3", "b", true, 9 * H).await; // decoy: newest of run b
    ns.create_pod(
        &BarePod::running("b-running")
            .evaluation("e-br")
            .test_id("b"),
    )
    .await; // decoy: running

    let (code, r, err) = ns.run_json(&[
        "--all",
        "--keep-last",
        "1",
        "--keep-succeeded-for",
        "1h",
        "--keep-failed-for",
        "4h",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["a1", "a2", "a3", "b0"]
    );
    assert_eq!(
        item(&r, "a4")["reason"],
        "the newest finished pod of test run a (--keep-last 1)"
    );
    assert_eq!(
        item(&r, "b3")["reason"],
        "the newest finished pod of test run b (--keep-last 1)"
    );
    assert_eq!(
        item(&r, "b1")["reason"],
        "failed 2h ago, kept for 4h (--keep-failed-for 4h)"
    );
    let b2 = item(&r, "b2")["reason"].as_str().unwrap();
    assert!(
        b2.starts_with("succeeded 30m ago, kept for 1h")
            || b2.starts_with("succeeded 29m ago, kept for 1h"),
        "{b2}"
    );
    assert_eq!(item(&r, "b2")["result"], "skipped");
    assert_eq!(ns.pod_names().await, ["a4", "b-running", "b1", "b2", "b3"]);

    // The table shows skipped rows with their reason in wide output.
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--all",
            "--keep-last",
            "1",
            "--keep-failed-for",
            "4h",
            "--dry-run",
            "-o",
            "wide",
        ])
        .output();
    let text = stdout(&out);
    assert!(
        text.contains("skipped: failed 2h ago, kept for 4h (--keep-failed-for 4h)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_last_groups_jobs_by_test_run() {
    let ns = TestNamespace::for_current_test().await;
    for (id, run) in [("x1", "x"), ("x2", "x"), ("y1", "y")] {
        ns.create_job(&EvalJob::succeeding(id).test_id(run)).await;
        ns.wait_job_complete(&format!("evaluation-job-{id}")).await;
        tokio::time::sleep(Duration::from_millis(1100)).await; // distinct creation seconds
    }
    let (code, r, err) = ns.run_json(&["--all", "--level", "all", "--keep-last", "1", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["evaluation-job-x1"]
    );
    assert_eq!(
        item(&r, "evaluation-job-x2")["reason"],
        "the newest finished job of test run x (--keep-last 1)"
    );
    ns.wait_job_gone("evaluation-job-x1").await;
    assert_eq!(
        ns.job_names().await,
        ["evaluation-job-x2", "evaluation-job-y1"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hybrid_rows_carry_every_rule_that_matched_them() {
    let ns = TestNamespace::for_current_test().await;
    let q: ResourceQuota = serde_json::from_value(
        json!({"metadata": {"name": "objects"}, "spec": {"hard": {"count/pods": "10"}}}),
    )
    .unwrap();
    Api::<ResourceQuota>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &q)
        .await
        .unwrap();
    // Creation order = name order. Old (finished 2h ago) pods of another run,
    // two pods of this CI run, and four recent ones of other runs.
    done(&ns, "p1-old", "other", false, 2 * H).await;
    done(&ns, "p2-old", "other", true, 2 * H).await;
    done(&ns, "p3-run", "run-42", false, 60).await;
    done(&ns, "p4-run", "run-42", true, 60).await;
    for i in 5..=8 {
        done(&ns, &format!("p{i}-recent"), "other", false, 60).await;
    }
    let api: Api<ResourceQuota> = Api::namespaced(ns.client(), ns.name());
    poll_until("count/pods used 8", Duration::from_secs(90), || async {
        let used = api
            .get("objects")
            .await
            .map_err(|e| e.to_string())?
            .status
            .and_then(|s| s.used)
            .and_then(|u| u.get("count/pods").map(|q| q.0.clone()));
        if used.as_deref() == Some("8") {
            Ok(())
        } else {
            Err(format!("{used:?}"))
        }
    })
    .await;

    // 8/10 = 80% reaches 0.8; 50% is 5: the watermark rule alone picks the three oldest.
    let (code, r, err) = ns.run_json(&[
        "--strategy",
        "hybrid",
        "--test-id",
        "run-42",
        "--older-than",
        "1h",
        "--age-from",
        "finished",
        "--high-watermark",
        "0.8",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        r["selector"], "app=evaluation",
        "in hybrid the ids must not narrow the LIST"
    );
    let by = |name: &str| item(&r, name)["matchedBy"].clone();
    assert_eq!(by("p1-old"), json!(["age", "watermark"]));
    assert_eq!(by("p2-old"), json!(["age", "watermark"]));
    assert_eq!(by("p3-run"), json!(["label", "watermark"]));
    assert_eq!(by("p4-run"), json!(["label"]));
    assert_eq!(
        names_where(&r, |i| i["result"] == "deleted"),
        ["p1-old", "p2-old", "p3-run", "p4-run"]
    );
    assert_eq!(
        ns.pod_names().await,
        ["p5-recent", "p6-recent", "p7-recent", "p8-recent"]
    );
}
