//! `crucible-clean/keep-until`: `--mark-kept-for` writes it (the pytest
//! plugin's keep-failed), against the local control plane.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use support::{commands::*, objects::*};

const KEEP_UNTIL: &str = "crucible-clean/keep-until";
const KEEP_REASON: &str = "crucible-clean/keep-reason";

/// The annotations of every pod and job of the namespace, by name.
async fn annotations(ns: &TestNamespace) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in ns.pods().list(&Default::default()).await.unwrap() {
        out.insert(
            p.metadata.name.clone().unwrap(),
            p.metadata.annotations.unwrap_or_default(),
        );
    }
    for j in ns.jobs().list(&Default::default()).await.unwrap() {
        out.insert(
            j.metadata.name.clone().unwrap(),
            j.metadata.annotations.unwrap_or_default(),
        );
    }
    out
}

fn seconds_from_now(rfc3339: &str) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 time");
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
}

#[tokio::test(flavor = "multi_thread")]
async fn marking_annotates_every_object_of_the_ids_in_every_phase_and_nothing_else() {
    let ns = TestNamespace::for_current_test().await;
    let done = EvalJob::succeeding(&format!("d{}", random_suffix(4))).test_id("t1");
    let running = EvalJob::running(&format!("r{}", random_suffix(4))).test_id("t1");
    let tracked = EvalJob::succeeding(&format!("e{}", random_suffix(4)));
    let other = EvalJob::succeeding(&format!("o{}", random_suffix(4))).test_id("t2");
    for j in [&done, &running, &tracked, &other] {
        ns.create_job(j).await;
    }
    ns.create_pod(
        &BarePod::failed("bare-failed")
            .evaluation("bf")
            .test_id("t1"),
    )
    .await;
    ns.create_pod(
        &BarePod::running("bare-running")
            .evaluation("br")
            .test_id("t1"),
    )
    .await;
    ns.create_pod(&BarePod::succeeded("decoy").evaluation("dc").test_id("t10"))
        .await;
    ns.wait_job_complete(&done.name()).await;
    ns.wait_job_complete(&tracked.name()).await;
    ns.wait_job_complete(&other.name()).await;
    ns.wait_job_pods_phase(&running.name(), "Running").await;

    // A dry run writes nothing.
    let (code, r, err) = ns.run_json(&["--test-id", "t1", "--mark-kept-for", "2h", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["kind"], "KeepReport");
    assert!(r["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["result"] == "wouldMark"));
    assert!(annotations(&ns)
        .await
        .values()
        .all(|a| !a.contains_key(KEEP_UNTIL)));

    let (code, r, err) = ns.run_json(&[
        "--test-id",
        "t1",
        "--mark-kept-for",
        "2h",
        "--keep-reason",
        "tests/test_x.py::test_y[a b]",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let marked: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "marked")
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    // Both jobs of t1, their pods (their template carries the test id), both bare pods.
    assert_eq!(marked.len(), 6, "{r}");
    let all = annotations(&ns).await;
    for (name, a) in &all {
        let ours = name.starts_with(&done.name())
            || name.starts_with(&running.name())
            || name.starts_with("bare-");
        assert_eq!(a.contains_key(KEEP_UNTIL), ours, "{name}: {a:?}");
        if ours {
            let left = seconds_from_now(&a[KEEP_UNTIL]);
            assert!((7100..=7200).contains(&left), "{name}: {left}");
            assert_eq!(a[KEEP_REASON], "tests/test_x.py::test_y[a b]");
            assert!(marked.contains(&name.as_str()), "{name}");
        }
    }

    // By evaluation id: the tracked job and its pod.
    let (code, r, err) = ns.run_json(&[
        "--eval-id",
        &tracked.eval_id,
        "--mark-kept-for",
        "1h",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["marked"], 2, "{r}");
    let a = &annotations(&ns).await[&tracked.name()];
    assert!((3500..=3600).contains(&seconds_from_now(&a[KEEP_UNTIL])));
    assert!(!a.contains_key(KEEP_REASON));

    // Marking again replaces the time (0: the keep ends now) and drops an old reason.
    let (code, _, err) = ns.run_json(&["--test-id", "t1", "--mark-kept-for", "0", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let a = &annotations(&ns).await["bare-failed"];
    assert!(seconds_from_now(&a[KEEP_UNTIL]) <= 0);
    assert!(!a.contains_key(KEEP_REASON), "{a:?}");

    // -o name: what was marked, as kubectl names it.
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--eval-id",
            "bf",
            "--mark-kept-for",
            "1h",
            "-o",
            "name",
            "--yes",
        ])
        .output();
    assert_eq!(stdout(&out), "pod/bare-failed\n");
}

#[test]
fn marking_refuses_what_would_widen_or_delete() {
    for (args, message) in [
        (&["--mark-kept-for", "1h"][..], "add --test-id ID"),
        (&["--mark-kept-for", "1h", "--all"], "add --test-id ID"),
        (
            &[
                "--mark-kept-for",
                "1h",
                "--test-id",
                "t",
                "--older-than",
                "1h",
            ],
            "--older-than does not combine",
        ),
        (
            &["--mark-kept-for", "soon", "--test-id", "t"],
            "invalid duration",
        ),
        (
            &["--keep-reason", "x", "--test-id", "t"],
            "--keep-reason needs --mark-kept-for",
        ),
    ] {
        let out = PluginCmd::new().args(args).output();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[allow(dead_code)]
fn in_seconds(secs: u64) -> String {
    rfc3339(SystemTime::now() + Duration::from_secs(secs))
}
