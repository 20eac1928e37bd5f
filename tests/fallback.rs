//! The fallback strategy against the local control plane: objects with a
//! test-id by the run's ids, objects without one by age; decoys of other
//! runs and young unlabelled objects must survive.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{commands::*, objects::*};

const H: u64 = 3600;

fn matched_by(r: &Value, name: &str) -> Value {
    item(r, name)["matchedBy"].clone()
}

fn finished(name: &str, ago: u64) -> BarePod {
    BarePod::succeeded(name)
        .evaluation(&format!("e-{name}"))
        .finished_ago(Duration::from_secs(ago))
}

#[tokio::test(flavor = "multi_thread")]
async fn fallback_takes_the_runs_labelled_objects_and_old_unlabelled_ones_only() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pods([
        finished("run-a-old", 5 * H).test_id("run-a"),
        finished("run-a-young", 60).test_id("run-a"),
        // Decoys: another run's objects, however old, are never taken by age.
        finished("run-b-old", 9 * H).test_id("run-b"),
        finished("run-b-young", 60).test_id("run-b"),
        // Unlabelled: by age only.
        finished("stray-old", 5 * H),
        finished("stray-young", 10 * 60),
    ])
    .await;
    // Decoy: old, unlabelled, but outside the base selector.
    ns.create_pod(
        &BarePod::succeeded("not-an-evaluation")
            .label("app", "other")
            .finished_ago(Duration::from_secs(9 * H)),
    )
    .await;

    let args = [
        "--strategy",
        "fallback",
        "--test-id",
        "run-a",
        "--older-than",
        "1h",
        "--age-from",
        "finished",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let (code, r, err) = ns.run_json(&dry);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["strategy"], "fallback");
    assert_eq!(
        r["selector"], "app=evaluation",
        "the ids must not narrow the LIST: unlabelled objects would be missed"
    );
    assert_eq!(matched_by(&r, "run-a-old"), serde_json::json!(["label"]));
    assert_eq!(matched_by(&r, "run-a-young"), serde_json::json!(["label"]));
    assert_eq!(matched_by(&r, "stray-old"), serde_json::json!(["age"]));
    assert_eq!(r["summary"]["selected"], 3, "{r}");

    let mut real = args.to_vec();
    real.push("--yes");
    let (code, r, err) = ns.run_json(&real);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["deleted"], 3, "{r}");
    assert_eq!(
        ns.pod_names().await,
        [
            "not-an-evaluation",
            "run-b-old",
            "run-b-young",
            "stray-young"
        ]
    );

    // Without ids, no labelled object is taken at all.
    let (code, r, err) = ns.run_json(&[
        "--strategy",
        "fallback",
        "--older-than",
        "1s",
        "--age-from",
        "finished",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stray-young"], "{r}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fallback_without_an_age_is_refused() {
    let ns = TestNamespace::for_current_test().await;
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--strategy",
            "fallback",
            "--test-id",
            "t",
            "--yes",
        ])
        .output();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--strategy fallback needs --older-than"),
        "{err}"
    );
}
