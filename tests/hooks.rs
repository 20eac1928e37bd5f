//! The policy file's `beforeDelete` hooks against the local control plane: a veto keeps
//! its object (the examples in `examples/hooks/`), other exits, a timeout and a crash
//! keep theirs and fail the run, the hook gets the object on stdin and `CRUCIBLE_*`
//! variables (after the archive), hooks never run in a dry run unless asked, and no
//! more run at once than `--concurrency`.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{audit::*, commands::*, objects::*};

/// A policy file in `dir` with one rule for the objects of test run `tid` and `hooks`
/// (YAML lines under `hooks:`).
fn policy(dir: &Path, tid: &str, rule: &str, hooks: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: crucible-clean/v1\nkind: CleanupPolicy\nrules:\n  - name: run\n    selector: test-id={tid}\n    {rule}\nhooks:\n{hooks}"
        ),
    )
    .unwrap();
    path
}

fn example(name: &str) -> String {
    repo_root()
        .join("examples/hooks")
        .join(name)
        .display()
        .to_string()
}

/// A hook written as a shell script file in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path.display().to_string()
}

fn run(
    ns: &TestNamespace,
    policy: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, Value, String) {
    let mut cmd = ns.plugin();
    cmd.args(["-n", ns.name(), "-o", "json"])
        .arg("--policy")
        .arg(policy)
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output_json()
}

#[tokio::test]
async fn the_example_hooks_veto_annotated_pods_and_record_jobs() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let tid = unique_name("veto");
    ns.create_pods([
        BarePod::failed("held")
            .evaluation("e1")
            .test_id(&tid)
            .annotation("crucible-clean/hold", "looking at it"),
        BarePod::failed("free").evaluation("e2").test_id(&tid),
    ])
    .await;
    let ej = EvalJob::succeeding(&unique_name("j")).test_id(&tid);
    let job = ns.create_job(&ej).await;
    ns.wait_job_complete(&ej.name()).await;
    let hooks = format!(
        "  pod:\n    beforeDelete: ['{}', crucible-clean/hold]\n  job:\n    beforeDelete: ['{}']\n    env: [CRUCIBLE_HOOK_LOG]\n",
        example("veto-annotated.py"),
        example("record.sh")
    );
    let policy = policy(tmp.path(), &tid, "all: true", &hooks);
    let log = tmp.path().join("deletions.log");

    let (code, report, stderr) = run(
        &ns,
        &policy,
        &["--level", "all", "--yes"],
        &[("CRUCIBLE_HOOK_LOG", log.to_str().unwrap())],
    );
    assert_eq!(code, 0, "{stderr}");
    let held = item(&report, "held");
    assert_eq!(held["result"], "kept", "{held}");
    assert_eq!(
        held["reason"],
        "kept by hook: crucible-clean/hold='looking at it' on Pod/held"
    );
    assert_eq!(item(&report, "free")["result"], "deleted");
    assert_eq!(item(&report, &ej.name())["result"], "deleted");
    assert_eq!(report["summary"]["kept"], 1);
    // One line for the one job, naming it.
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let uid = job.metadata.uid.unwrap();
    assert!(
        lines[0].contains(&format!("Job {}/{} uid={uid}", ns.name(), ej.name())),
        "{lines:?}"
    );
    assert!(lines[0].contains("rule=run") && lines[0].contains("dry-run=false"));
    // The held pod is there, and was never sent a delete.
    assert!(ns.pod_names().await.contains(&"held".to_string()));
    let writes = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert!(!writes.iter().any(|w| w.name() == "held"), "{writes:?}");
}

#[tokio::test]
async fn failing_hooks_keep_their_objects_and_fail_the_run() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let tid = unique_name("fail");
    let names = ["fine", "exits-3", "slow", "crashes"];
    ns.create_pods(names.iter().enumerate().map(|(i, n)| {
        BarePod::failed(n)
            .evaluation(&format!("e{i}"))
            .test_id(&tid)
    }))
    .await;
    // The slow hook leaves a child behind: the timeout must kill it too.
    let marker = format!("31.{}", fastrand_digits());
    let hook = script(
        tmp.path(),
        "hook.sh",
        &format!(
            "case \"$CRUCIBLE_NAME\" in\n\
             exits-3) echo 'cannot reach the bucket' >&2; exit 3;;\n\
             slow) sleep {marker} & wait;;\n\
             crashes) kill -KILL $$;;\n\
             esac\nexit 0\n"
        ),
    );
    let hooks = format!("  pod:\n    beforeDelete: ['{hook}']\n    timeoutSeconds: 1\n");
    let policy = policy(tmp.path(), &tid, "all: true", &hooks);

    let (code, report, stderr) = run(&ns, &policy, &["--yes"], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("3 objects were kept because their archive or hook failed"),
        "{stderr}"
    );
    assert_eq!(item(&report, "fine")["result"], "deleted");
    let reason = |n: &str| {
        let row = item(&report, n);
        assert_eq!(row["result"], "kept", "{row}");
        row["reason"].as_str().unwrap().to_string()
    };
    assert_eq!(
        reason("exits-3"),
        format!("hook {hook} exited 3: cannot reach the bucket")
    );
    assert_eq!(
        reason("slow"),
        format!("hook {hook} timed out after 1s and was killed")
    );
    assert_eq!(
        reason("crashes"),
        format!("hook {hook} was killed by signal 9 (SIGKILL)")
    );
    let present = ns.pod_names().await;
    for n in ["exits-3", "slow", "crashes"] {
        assert!(present.contains(&n.to_string()), "{n}: {present:?}");
    }
    assert!(
        !sleeping(&marker),
        "the slow hook's child outlived its timeout"
    );
}

/// A few digits that tell this test's processes apart.
fn fastrand_digits() -> String {
    random_suffix(6)
        .bytes()
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// Whether a `sleep ARG` process is alive (not a zombie).
fn sleeping(arg: &str) -> bool {
    let want = format!("sleep\0{arg}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .any(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let zombie = stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'));
            cmdline == want.as_bytes() && !zombie
        })
}

#[tokio::test]
async fn a_hook_gets_the_object_on_stdin_and_crucible_variables_after_its_archive() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let archive = tmp.path().join("archive");
    let tid = unique_name("env");
    let pod = ns
        .create_pod(&BarePod::failed("p-env").evaluation("e1").test_id(&tid))
        .await;
    let ej = EvalJob::succeeding(&unique_name("j")).test_id(&tid);
    let job = ns.create_job(&ej).await;
    ns.wait_job_complete(&ej.name()).await;
    // Both older than the rule's age.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let hook = script(
        tmp.path(),
        "dump.sh",
        &format!(
            "set -e\nf={}/$CRUCIBLE_KIND-$CRUCIBLE_NAME\n\
             cat > \"$f.json\"\n\
             env | grep '^CRUCIBLE_' | sort > \"$f.env\"\n\
             if [ -f \"$CRUCIBLE_ARCHIVE/archive.json\" ]; then echo archived > \"$f.archive\"; fi\n",
            out.display()
        ),
    );
    let hooks =
        format!("  pod:\n    beforeDelete: ['{hook}']\n  job:\n    beforeDelete: ['{hook}']\n");
    let policy = policy(tmp.path(), &tid, "olderThan: 1s", &hooks);

    let (code, report, stderr) = run(
        &ns,
        &policy,
        &[
            "--level",
            "all",
            "--archive",
            archive.to_str().unwrap(),
            "--yes",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
    for (kind, name, uid) in [
        (
            "Pod",
            "p-env".to_string(),
            pod.metadata.uid.clone().unwrap(),
        ),
        ("Job", ej.name(), job.metadata.uid.clone().unwrap()),
    ] {
        assert_eq!(item(&report, &name)["result"], "deleted", "{name}");
        let base = out.join(format!("{kind}-{name}"));
        let object: Value =
            serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap())
                .unwrap();
        assert_eq!(object["kind"], kind);
        assert_eq!(object["metadata"]["uid"], uid.as_str());
        assert_eq!(object["metadata"]["name"], name.as_str());
        let env = std::fs::read_to_string(base.with_extension("env")).unwrap();
        let dir = archive
            .join(ns.name())
            .join(kind.to_lowercase())
            .join(&name);
        for line in [
            format!("CRUCIBLE_NAMESPACE={}", ns.name()),
            format!("CRUCIBLE_KIND={kind}"),
            format!("CRUCIBLE_NAME={name}"),
            format!("CRUCIBLE_UID={uid}"),
            "CRUCIBLE_STRATEGY=age".to_string(),
            "CRUCIBLE_MATCHED_RULES=age".to_string(),
            "CRUCIBLE_POLICY_RULE=run".to_string(),
            format!("CRUCIBLE_TEST_ID={tid}"),
            "CRUCIBLE_DRY_RUN=false".to_string(),
            format!("CRUCIBLE_ARCHIVE={}", dir.display()),
        ] {
            assert!(env.lines().any(|l| l == line), "{line} not in\n{env}");
        }
        // The archive was on disk whole when the hook ran.
        assert!(base.with_extension("archive").exists(), "{name}");
    }
}

#[tokio::test]
async fn hooks_never_run_in_a_dry_run_unless_asked() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let tid = unique_name("dry");
    ns.create_pods([
        BarePod::failed("held").evaluation("e1").test_id(&tid),
        BarePod::failed("free").evaluation("e2").test_id(&tid),
    ])
    .await;
    let log = tmp.path().join("calls.log");
    let hook = script(
        tmp.path(),
        "hook.sh",
        &format!(
            "echo \"$CRUCIBLE_NAME $CRUCIBLE_DRY_RUN\" >> {}\n\
             if [ \"$CRUCIBLE_NAME\" = held ]; then echo 'on hold' >&2; exit 1; fi\n",
            log.display()
        ),
    );
    let policy = policy(
        tmp.path(),
        &tid,
        "all: true",
        &format!("  pod:\n    beforeDelete: ['{hook}']\n"),
    );

    for (mode, would) in [
        ("--dry-run", "planned"),
        ("--dry-run=server", "wouldDelete"),
    ] {
        let (code, report, stderr) = run(&ns, &policy, &[mode], &[]);
        assert_eq!(code, 0, "{mode}: {stderr}");
        for n in ["held", "free"] {
            assert_eq!(item(&report, n)["result"], would, "{mode} {n}");
        }
        assert!(!log.exists(), "{mode}: a hook ran");

        let (code, report, stderr) = run(&ns, &policy, &[mode, "--run-hooks-in-dry-run"], &[]);
        assert_eq!(code, 0, "{mode}: {stderr}");
        assert_eq!(item(&report, "held")["result"], "kept", "{mode}");
        assert_eq!(item(&report, "held")["reason"], "kept by hook: on hold");
        assert_eq!(item(&report, "free")["result"], would, "{mode}");
        let mut calls: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        calls.sort();
        assert_eq!(calls, ["free true", "held true"], "{mode}");
        std::fs::remove_file(&log).unwrap();
    }
    // Nothing was deleted: only the server dry run's deletes were sent.
    assert_eq!(ns.pod_names().await, ["free", "held"]);
    let writes = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert!(
        writes.iter().all(|w| w.request_uri.contains("dryRun=All")),
        "{writes:?}"
    );
}

#[tokio::test]
async fn no_more_hooks_run_at_once_than_the_concurrency() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let tid = unique_name("conc");
    ns.create_pods((0..6).map(|i| {
        BarePod::failed(&format!("p-{i}"))
            .evaluation(&format!("e{i}"))
            .test_id(&tid)
    }))
    .await;
    let runs = tmp.path().join("running");
    std::fs::create_dir(&runs).unwrap();
    let seen = tmp.path().join("seen");
    // Each hook marks itself running, counts the running ones, lingers, unmarks.
    let hook = script(
        tmp.path(),
        "hook.sh",
        &format!(
            "touch {r}/$CRUCIBLE_NAME\nls {r} | wc -l >> {s}\nsleep 0.3\nrm {r}/$CRUCIBLE_NAME\n",
            r = runs.display(),
            s = seen.display()
        ),
    );
    let policy = policy(
        tmp.path(),
        &tid,
        "all: true",
        &format!("  pod:\n    beforeDelete: ['{hook}']\n"),
    );
    let (code, report, stderr) = run(&ns, &policy, &["--concurrency", "2", "--yes"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["summary"]["deleted"], 6);
    let counts: Vec<usize> = std::fs::read_to_string(&seen)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 6);
    assert!(counts.iter().all(|&c| (1..=2).contains(&c)), "{counts:?}");
}

/// Marks `name` (a pod or, with `job`, a job) `crucible-clean/keep=true` as a label.
async fn mark_keep(ns: &TestNamespace, name: &str, job: bool) {
    use kube::api::{Patch, PatchParams};
    let patch = serde_json::json!({"metadata": {"labels": {"crucible-clean/keep": "true"}}});
    let pp = PatchParams::default();
    if job {
        ns.jobs()
            .patch(name, &pp, &Patch::Merge(&patch))
            .await
            .unwrap();
    } else {
        ns.pods()
            .patch(name, &pp, &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

/// The names a hook wrote to `file` as it started, one a line.
async fn started(file: &Path, at_least: usize) -> Vec<String> {
    support::wait::poll_until(
        "a hook to start",
        std::time::Duration::from_secs(60),
        || async {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let names: Vec<String> = text.lines().map(str::to_string).collect();
            if names.len() >= at_least {
                Ok(names)
            } else {
                Err(format!("{names:?}"))
            }
        },
    )
    .await
}

/// Finding 3 of issue 19: the step before the delete read each object again
/// for its hook but never checked the keep marker on that copy, and the delete
/// carried only a uid precondition: a pod marked keep while an earlier pod's
/// slow hook ran was deleted all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_keep_marker_added_while_deletes_are_queued_is_honoured() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let tid = unique_name("late");
    for name in ["a-first", "b-second"] {
        ns.create_pod(&BarePod::failed(name).evaluation(name).test_id(&tid))
            .await;
    }
    let log = tmp.path().join("started");
    let hook = script(
        tmp.path(),
        "slow.sh",
        &format!("echo \"$CRUCIBLE_NAME\" >> {}\nsleep 3\n", log.display()),
    );
    let hooks = format!("  pod:\n    beforeDelete: ['{hook}']\n    timeoutSeconds: 30\n");
    let policy = policy(tmp.path(), &tid, "all: true", &hooks);
    let plugin = ns
        .plugin()
        .args(["-n", ns.name(), "-o", "json", "--concurrency", "1", "--yes"])
        .arg("--policy")
        .arg(&policy)
        .spawn();
    // While the first hook sleeps, the other pod is marked keep.
    let first = started(&log, 1).await.remove(0);
    let other = if first == "a-first" {
        "b-second"
    } else {
        "a-first"
    };
    mark_keep(&ns, other, false).await;
    let done = plugin.wait(std::time::Duration::from_secs(60));
    let report = done.report();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(item(&report, &first)["result"], "deleted", "{report}");
    let kept = item(&report, other);
    assert_eq!(kept["result"], "kept", "{report}");
    assert!(
        kept["reason"]
            .as_str()
            .unwrap()
            .contains("crucible-clean/keep=true"),
        "{kept}"
    );
    assert_eq!(ns.pod_names().await, [other]);
    // No hook ran for the object that was kept.
    assert_eq!(started(&log, 1).await, [first]);
}

/// A job's preconditions do not cover its pods: a pod marked keep while the
/// job's hook runs keeps the job (the cascade would have taken the pod).
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_marked_keep_before_its_jobs_delete_keeps_the_job() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let tid = unique_name("late-job");
    let ej = EvalJob::succeeding(&unique_name("j")).test_id(&tid);
    ns.create_job(&ej).await;
    ns.wait_job_complete(&ej.name()).await;
    let pod = ns
        .wait_job_pods_phase(&ej.name(), "Succeeded")
        .await
        .remove(0);
    let pod = pod.metadata.name.unwrap();
    let log = tmp.path().join("started");
    let hook = script(
        tmp.path(),
        "slow.sh",
        &format!("echo \"$CRUCIBLE_NAME\" >> {}\nsleep 2\n", log.display()),
    );
    let hooks = format!("  job:\n    beforeDelete: ['{hook}']\n    timeoutSeconds: 30\n");
    let policy = policy(tmp.path(), &tid, "all: true", &hooks);
    let plugin = ns
        .plugin()
        .args(["-n", ns.name(), "-o", "json", "--level", "jobs", "--yes"])
        .arg("--policy")
        .arg(&policy)
        .spawn();
    started(&log, 1).await;
    mark_keep(&ns, &pod, false).await;
    let done = plugin.wait(std::time::Duration::from_secs(60));
    let report = done.report();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let row = item(&report, &ej.name());
    assert_eq!(row["result"], "kept", "{report}");
    assert!(row["reason"].as_str().unwrap().contains(&pod), "{row}");
    assert_eq!(ns.job_names().await, [ej.name()]);
    assert_eq!(ns.pod_names().await, [pod]);
}
