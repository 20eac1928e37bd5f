//! `--archive DIR` against the local control plane: what is archived matches the
//! objects (manifest, Events, the logs the fake nodes serve for each container), logs
//! are capped and a pod whose logs cannot be fetched is archived without them, an
//! unwritable archive keeps everything, `--archive-only failed`, and a stop mid-run
//! leaves a whole archive for every object already deleted.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{audit::*, commands::*, logs::*, objects::*};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The archive directory a report row names (it must name one).
fn archive_of(report: &Value, name: &str) -> PathBuf {
    let row = item(report, name);
    PathBuf::from(
        row["archive"]
            .as_str()
            .unwrap_or_else(|| panic!("row {name} names no archive: {row}")),
    )
}

/// The archive holds `uid`'s manifest (without managedFields) and an archive.json about it.
fn assert_archive_of(dir: &Path, kind: &str, uid: &str) -> Value {
    let manifest = yaml(&dir.join("manifest.yaml"));
    assert_eq!(manifest["kind"], kind, "{}", dir.display());
    assert_eq!(manifest["metadata"]["uid"], uid, "{}", dir.display());
    assert!(manifest["metadata"].get("managedFields").is_none());
    assert!(yaml(&dir.join("events.yaml")).is_array());
    let record = json_file(&dir.join("archive.json"));
    assert_eq!(record["object"]["uid"], uid);
    assert_eq!(record["object"]["kind"], kind);
    record
}

fn event_messages(dir: &Path) -> Vec<String> {
    yaml(&dir.join("events.yaml"))
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn the_archive_holds_manifest_events_and_each_containers_logs() {
    let ns = TestNamespace::for_current_test().await;
    let client = ns.client();
    let files = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let tid = unique_name("arch");
    let labels = [("app", "evaluation"), ("test-id", tid.as_str())];

    // A failed pod with two containers, each with its own log; main also restarted once.
    let pod = kwok_pod(
        &client,
        ns.name(),
        "eval-a",
        &labels,
        &[],
        &["main", "sidecar"],
    )
    .await;
    let pod_uid = pod.metadata.uid.clone().unwrap();
    serve_logs(
        &client,
        ns.name(),
        "eval-a",
        files.path(),
        &[
            ContainerLog {
                container: "main",
                current: "main: loading model\nmain: score 0.42\n",
                previous: Some("main: first attempt crashed\n"),
            },
            ContainerLog {
                container: "sidecar",
                current: "sidecar: shipped metrics\n",
                previous: None,
            },
        ],
    )
    .await;
    create_event(
        &client,
        ns.name(),
        "Pod",
        "eval-a",
        &pod_uid,
        "BackOff",
        "pod event for eval-a",
    )
    .await;

    // A finished job: its archive, and its pod's (which the delete takes with it).
    let ej = EvalJob::succeeding(&unique_name("e")).test_id(&tid);
    let job = ns.create_job(&ej).await;
    let job_uid = job.metadata.uid.clone().unwrap();
    ns.wait_job_complete(&ej.name()).await;
    let job_pod = ns
        .wait_job_pods_phase(&ej.name(), "Succeeded")
        .await
        .remove(0);
    let job_pod_name = job_pod.metadata.name.clone().unwrap();
    serve_logs(
        &client,
        ns.name(),
        &job_pod_name,
        files.path(),
        &[ContainerLog {
            container: "evaluation",
            current: "evaluation: all 12 tasks passed\n",
            previous: None,
        }],
    )
    .await;
    create_event(
        &client,
        ns.name(),
        "Job",
        &ej.name(),
        &job_uid,
        "Completed",
        "job event",
    )
    .await;

    let (code, report, stderr) = ns.run_json(&[
        "--test-id",
        &tid,
        "--level",
        "all",
        "--archive",
        archive.path().to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(item(&report, "eval-a")["result"], "deleted");
    assert_eq!(item(&report, &ej.name())["result"], "deleted");

    // The pod: where the report says, its manifest, its event, each container's logs.
    let dir = archive_of(&report, "eval-a");
    assert_eq!(dir, archive.path().join(ns.name()).join("pod/eval-a"));
    let record = assert_archive_of(&dir, "Pod", &pod_uid);
    assert_eq!(event_messages(&dir), ["pod event for eval-a"]);
    assert_eq!(
        read(&dir.join("logs/main.log")),
        "main: loading model\nmain: score 0.42\n"
    );
    assert_eq!(
        read(&dir.join("logs/main.previous.log")),
        "main: first attempt crashed\n"
    );
    assert_eq!(
        read(&dir.join("logs/sidecar.log")),
        "sidecar: shipped metrics\n"
    );
    // No previous log is served for the sidecar: left out, and archive.json says why.
    assert!(!dir.join("logs/sidecar.previous.log").exists());
    let entries = record["logs"]["containers"].as_array().unwrap();
    let sidecar_prev = entries
        .iter()
        .find(|e| e["container"] == "sidecar" && e["previous"] == true)
        .unwrap();
    assert!(
        sidecar_prev["file"].is_null() && sidecar_prev["error"].is_string(),
        "{record}"
    );

    // The job, and its pod archived beside the other pods.
    let jdir = archive_of(&report, &ej.name());
    assert_eq!(
        jdir,
        archive.path().join(ns.name()).join("job").join(ej.name())
    );
    let jrecord = assert_archive_of(&jdir, "Job", &job_uid);
    // Ours, and those the job controller recorded.
    let messages = event_messages(&jdir);
    assert!(messages.iter().any(|m| m == "job event"), "{messages:?}");
    assert!(
        messages.iter().any(|m| m == "Job completed"),
        "{messages:?}"
    );
    let pdir = archive
        .path()
        .join(ns.name())
        .join("pod")
        .join(&job_pod_name);
    assert_eq!(
        jrecord["pods"],
        serde_json::json!([pdir.display().to_string()])
    );
    assert_archive_of(&pdir, "Pod", job_pod.metadata.uid.as_deref().unwrap());
    assert_eq!(
        read(&pdir.join("logs/evaluation.log")),
        "evaluation: all 12 tasks passed\n"
    );

    ns.wait_pod_gone("eval-a").await;
    ns.wait_job_gone(&ej.name()).await;
}

#[tokio::test]
async fn logs_are_capped_and_a_pod_without_logs_is_archived_without_them() {
    let ns = TestNamespace::for_current_test().await;
    let client = ns.client();
    let files = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let tid = unique_name("cap");
    let labels = [("app", "evaluation"), ("test-id", tid.as_str())];
    let long: String = (0..200)
        .map(|i| format!("line {i:04} of a long evaluation log\n"))
        .collect();
    kwok_pod(&client, ns.name(), "talkative", &labels, &[], &["main"]).await;
    serve_logs(
        &client,
        ns.name(),
        "talkative",
        files.path(),
        &[ContainerLog {
            container: "main",
            current: &long,
            previous: None,
        }],
    )
    .await;
    // On a node no kubelet serves: its logs cannot be fetched.
    ns.create_pod(&BarePod::failed("nodeless").evaluation("e1").test_id(&tid))
        .await;

    let (code, report, stderr) = ns.run_json(&[
        "--test-id",
        &tid,
        "--archive",
        archive.path().to_str().unwrap(),
        "--archive-log-bytes",
        "1Ki",
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    for name in ["talkative", "nodeless"] {
        assert_eq!(item(&report, name)["result"], "deleted", "{name}");
    }
    // The missing logs are said once on stderr, and in the row.
    assert_eq!(
        stderr.matches("archived without logs").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.starts_with("warning: archived without logs: pod/nodeless ("),
        "{stderr}"
    );
    let missing = item(&report, "nodeless")["logsMissing"]
        .as_str()
        .unwrap_or_default();
    assert!(!missing.is_empty(), "{report}");
    assert!(stderr.contains(missing), "{stderr}");
    assert!(item(&report, "talkative").get("logsMissing").is_none());
    let dir = archive_of(&report, "talkative");
    let log = read(&dir.join("logs/main.log"));
    assert_eq!(log.len(), 1024);
    assert!(long.starts_with(&log));
    let record = json_file(&dir.join("archive.json"));
    let current = &record["logs"]["containers"][0];
    assert_eq!(current["truncated"], true, "{record}");
    assert_eq!(record["logs"]["limitBytes"], 1024);

    let dir = archive_of(&report, "nodeless");
    let uid = item(&report, "nodeless")["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let record = assert_archive_of(&dir, "Pod", &uid);
    assert!(!dir.join("logs").exists());
    assert!(
        record["logsMissing"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{record}"
    );
}

#[tokio::test]
async fn an_unwritable_archive_keeps_everything() {
    let ns = TestNamespace::for_current_test().await;
    let tid = unique_name("ro");
    ns.create_pods([
        BarePod::failed("f-1").evaluation("e1").test_id(&tid),
        BarePod::succeeded("s-1").evaluation("e2").test_id(&tid),
        BarePod::failed("f-2").evaluation("e3").test_id(&tid),
    ])
    .await;
    // A regular file where the archive directory should be: nothing can be written
    // under it, whoever runs the test.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-directory");
    std::fs::write(&file, "").unwrap();

    let (code, report, stderr) = ns.run_json(&[
        "--test-id",
        &tid,
        "--archive",
        file.to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("kept because their archive or hook failed"),
        "{stderr}"
    );
    for name in ["f-1", "s-1", "f-2"] {
        let row = item(&report, name);
        assert_eq!(row["result"], "kept", "{row}");
        assert!(
            row["reason"]
                .as_str()
                .unwrap()
                .starts_with("archive failed: "),
            "{row}"
        );
        assert!(row["archive"].is_null(), "{row}");
    }
    assert_eq!(report["summary"]["kept"], 3);
    assert_eq!(report["summary"]["deleted"], 0);
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "s-1"]);
    let writes = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn archive_only_failed_archives_only_failed_pods_and_jobs() {
    let ns = TestNamespace::for_current_test().await;
    let archive = tempfile::tempdir().unwrap();
    let tid = unique_name("only");
    ns.create_pods([
        BarePod::failed("bad").evaluation("e1").test_id(&tid),
        BarePod::succeeded("good").evaluation("e2").test_id(&tid),
    ])
    .await;
    let failing = EvalJob::failing(&unique_name("f")).test_id(&tid);
    let passing = EvalJob::succeeding(&unique_name("p")).test_id(&tid);
    ns.create_job(&failing).await;
    ns.create_job(&passing).await;
    ns.wait_job_failed(&failing.name()).await;
    ns.wait_job_complete(&passing.name()).await;

    let (code, report, stderr) = ns.run_json(&[
        "--test-id",
        &tid,
        "--level",
        "all",
        "--archive",
        archive.path().to_str().unwrap(),
        "--archive-only",
        "failed",
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let root = archive.path().join(ns.name());
    for name in [
        "bad",
        "good",
        failing.name().as_str(),
        passing.name().as_str(),
    ] {
        assert_eq!(item(&report, name)["result"], "deleted", "{name}");
    }
    assert_eq!(archive_of(&report, "bad"), root.join("pod/bad"));
    assert_eq!(
        archive_of(&report, &failing.name()),
        root.join("job").join(failing.name())
    );
    assert!(item(&report, "good")["archive"].is_null());
    assert!(item(&report, &passing.name())["archive"].is_null());
    assert!(!root.join("pod/good").exists());
    assert!(!root.join("job").join(passing.name()).exists());
    // The failed job's pod went with it, so it is archived; the passing job's is not.
    let pods: Vec<String> = std::fs::read_dir(root.join("pod"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(
        pods.iter().any(|p| p.starts_with(&failing.name())),
        "{pods:?}"
    );
}

#[tokio::test]
async fn a_stop_mid_run_leaves_a_whole_archive_for_every_deleted_object() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive");
    let tid = unique_name("stop");
    ns.create_pods((0..30).map(|i| {
        BarePod::failed(&format!("p-{i:02}"))
            .evaluation(&format!("e{i}"))
            .test_id(&tid)
    }))
    .await;
    // A hook that takes a moment per object, so that the stop lands mid-run.
    let policy = tmp.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "rules:\n  - name: run\n    selector: test-id={tid}\n    all: true\n\
             hooks:\n  pod:\n    beforeDelete: [sh, -c, 'sleep 0.3']\n"
        ),
    )
    .unwrap();

    let run = ns
        .plugin()
        .args(["-n", ns.name(), "-o", "json", "--concurrency", "2", "--yes"])
        .arg("--policy")
        .arg(&policy)
        .arg("--archive")
        .arg(&archive)
        .spawn();
    wait_entries(
        &archive.join(ns.name()).join("pod"),
        4,
        Duration::from_secs(60),
    )
    .await;
    run.signal("INT");
    let done = run.wait(Duration::from_secs(60));
    assert_eq!(done.code, Some(130), "{}", done.stderr);
    let report = done.report();

    let present = ns.pod_names().await;
    let deleted: Vec<&Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "deleted")
        .collect();
    assert!(!deleted.is_empty(), "nothing was deleted before the stop");
    assert!(deleted.len() < 30, "the run ended before the stop");
    for row in &deleted {
        let name = row["name"].as_str().unwrap();
        assert!(!present.iter().any(|p| p == name), "{name} still present");
        let dir = PathBuf::from(row["archive"].as_str().unwrap());
        assert_archive_of(&dir, "Pod", row["uid"].as_str().unwrap());
    }
    // Every pod that is gone was archived whole, and nothing half-written is left.
    for i in 0..30 {
        let name = format!("p-{i:02}");
        if !present.contains(&name) {
            assert!(
                deleted.iter().any(|r| r["name"] == name.as_str()),
                "{name} gone, not reported deleted"
            );
        }
    }
    let leftovers: Vec<String> = std::fs::read_dir(archive.join(ns.name()).join("pod"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Adds a controller ownerReference to `job` to pod `pod`: a pod the job owns
/// that the job controller did not make (a failed attempt, an adopted pod).
async fn own(
    ns: &TestNamespace,
    pod: &str,
    job: &k8s_openapi::api::batch::v1::Job,
    controller: bool,
) {
    use kube::api::{Patch, PatchParams};
    let patch = serde_json::json!({"metadata": {"ownerReferences": [{
        "apiVersion": "batch/v1", "kind": "Job",
        "name": job.metadata.name.clone().unwrap(), "uid": job.metadata.uid.clone().unwrap(),
        "controller": controller,
    }]}});
    ns.pods()
        .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Finding 4 of issue 19: a job's pods were looked up by the
/// `batch.kubernetes.io/controller-uid` label, which the pods of a job with
/// `manualSelector: true` do not carry: its archive held no pod, and the
/// cascade removed the failed pod unarchived.
#[tokio::test(flavor = "multi_thread")]
async fn a_manual_selector_jobs_archive_holds_its_pods() {
    let ns = TestNamespace::for_current_test().await;
    let archive = tempfile::tempdir().unwrap();
    let tid = unique_name("manual");
    let eval = unique_name("m");
    let name = format!("evaluation-job-{eval}");
    let labels = serde_json::json!({
        "app": "evaluation", "eval-id": eval, "test-id": tid, "manual-selector": eval,
    });
    let mut pod_labels = labels.clone();
    pod_labels[KWOK_FAIL_LABEL] = "true".into();
    let job: k8s_openapi::api::batch::v1::Job = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "manualSelector": true,
            "selector": {"matchLabels": {"manual-selector": eval}},
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "evaluation", "image": "crucible.invalid/evaluation:test"}],
                },
            },
        },
    }))
    .unwrap();
    ns.jobs().create(&Default::default(), &job).await.unwrap();
    ns.wait_job_failed(&name).await;
    let pods = ns.pod_names().await;
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod = ns.pods().get(&pods[0]).await.unwrap();
    assert!(
        !pod.metadata
            .labels
            .unwrap_or_default()
            .contains_key("batch.kubernetes.io/controller-uid"),
        "a manual selector's pod carries no controller-uid label"
    );

    let (code, report, stderr) = ns.run_json(&[
        "--test-id",
        &tid,
        "--level",
        "jobs",
        "--archive",
        archive.path().to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(item(&report, &name)["result"], "deleted", "{report}");
    let record = json_file(&archive_of(&report, &name).join("archive.json"));
    let pod_dir = archive.path().join(ns.name()).join("pod").join(&pods[0]);
    assert_eq!(
        record["pods"],
        serde_json::json!([pod_dir.display().to_string()]),
        "{record}"
    );
    assert_archive_of(&pod_dir, "Pod", pod.metadata.uid.as_deref().unwrap());
}

/// Finding 6 of issue 19: `--archive-only failed` looked only at a job's own
/// phase, so the failed attempts of a job that later succeeded went with its
/// cascade unarchived (with `--level pods` they were archived).
#[tokio::test(flavor = "multi_thread")]
async fn archive_only_failed_archives_the_failed_attempts_of_a_job_that_succeeded() {
    let ns = TestNamespace::for_current_test().await;
    let archive = tempfile::tempdir().unwrap();
    let tid = unique_name("retried");
    let ej = EvalJob::succeeding(&unique_name("r")).test_id(&tid);
    ns.create_job(&ej).await;
    let job = ns.wait_job_complete(&ej.name()).await;
    // Its first attempt, which failed.
    let attempt_uid = ns
        .create_pod(
            &BarePod::failed("attempt-1")
                .evaluation(&ej.eval_id)
                .test_id(&tid),
        )
        .await
        .metadata
        .uid
        .unwrap();
    own(&ns, "attempt-1", &job, true).await;

    let (code, report, stderr) = ns.run_json(&[
        "--test-id",
        &tid,
        "--level",
        "all",
        "--archive",
        archive.path().to_str().unwrap(),
        "--archive-only",
        "failed",
        "--yes",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(item(&report, &ej.name())["result"], "deleted", "{report}");
    let root = archive.path().join(ns.name());
    let attempt = root.join("pod/attempt-1");
    let record = json_file(&root.join("job").join(ej.name()).join("archive.json"));
    assert_eq!(
        record["pods"],
        serde_json::json!([attempt.display().to_string()]),
        "only the failed attempt: {record}"
    );
    assert_archive_of(&attempt, "Pod", &attempt_uid);
}
