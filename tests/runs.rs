//! Test runs against the local control plane: `--run-id`,
//! `--test-id-from-env`, the `--guard` that reaps a run whose parent died,
//! and `--stale-runs` for runs whose guard died too. Decoys of other runs and
//! unlabelled objects must survive every one of them.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use support::{commands::*, objects::*};

const RUN: &str = "crucible-clean/run";

/// A `--guard` process with its stdin held open by the test.
struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl Guard {
    fn start(ns: &TestNamespace, run: &str, extra: &[&str]) -> Guard {
        let cmd = ns
            .plugin()
            .args(["-n", ns.name(), "-o", "json", "--guard", run])
            .args(extra)
            .command();
        Guard::spawn(cmd)
    }

    /// The guard started by a shell that passes it `--parent-pid $$` and the
    /// test's pipe as its stdin: killing `child` (the shell) ends the parent
    /// while the test still holds the pipe open.
    fn start_under_shell(ns: &TestNamespace, run: &str) -> Guard {
        Guard::start_by_shell(
            ns,
            run,
            r#"exec 3<&0; "$0" --parent-pid $$ "$@" <&3 3<&- & wait"#,
        )
    }

    /// The guard started by `sh -c script`, which gets the guard's command
    /// line as `"$0" "$@"`.
    fn start_by_shell(ns: &TestNamespace, run: &str, script: &str) -> Guard {
        let plugin = ns
            .plugin()
            .args(["-n", ns.name(), "-o", "json", "--guard", run])
            .command();
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg(plugin.get_program())
            .args(plugin.get_args());
        for (k, v) in plugin.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        Guard::spawn(cmd)
    }

    fn spawn(cmd: std::process::Command) -> Guard {
        Guard::spawn_with_stdin(cmd, Stdio::piped())
    }

    fn spawn_with_stdin(mut cmd: std::process::Command, stdin: Stdio) -> Guard {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the guard");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Guard {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Waits for `ready` (the Lease is held).
    fn ready(&mut self) {
        let line = self
            .stdout
            .recv_timeout(Duration::from_secs(30))
            .expect("the guard says ready within 30 s");
        assert_eq!(line, "ready");
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin, as a parent's death does.
    fn close(&mut self) {
        self.stdin.take();
    }

    /// Exit code, stdout (after `ready`) and stderr; kills after `limit`.
    fn finish(mut self, limit: Duration) -> (Option<i32>, String, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out: Vec<String> = self.stdout.try_iter().collect();
        (status.code(), out.join("\n"), self.stderr.join().unwrap())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn lease(ns: &TestNamespace, run: &str) -> Option<Lease> {
    let api: Api<Lease> = Api::namespaced(ns.client(), ns.name());
    api.get_opt(&format!("crucible-clean-run-{run}"))
        .await
        .expect("get lease")
}

/// A run's objects: a finished job (with its pod), a still running job and a
/// finished bare pod; all labelled with the run.
async fn run_objects(ns: &TestNamespace, run: &str) {
    ns.create_job(
        &EvalJob::succeeding(&format!("{run}-done"))
            .test_id(&format!("{run}-t1"))
            .label(RUN, run),
    )
    .await;
    ns.create_job(&EvalJob::running(&format!("{run}-live")).label(RUN, run))
        .await;
    ns.create_pod(
        &BarePod::failed(&format!("{run}-bare"))
            .evaluation(&format!("{run}-bare"))
            .label(RUN, run),
    )
    .await;
    ns.wait_job_complete(&format!("evaluation-job-{run}-done"))
        .await;
    ns.wait_job_pods_phase(&format!("evaluation-job-{run}-live"), "Running")
        .await;
}

async fn decoys(ns: &TestNamespace) {
    // Another run's objects, and objects of no run at all.
    run_objects(ns, "other").await;
    ns.create_pod(&BarePod::succeeded("no-run").evaluation("no-run"))
        .await;
}

async fn names(ns: &TestNamespace) -> (Vec<String>, Vec<String>) {
    (ns.job_names().await, ns.pod_names().await)
}

/// Whether an object's name is one of `run_objects(_, run)` or their pods.
fn of_run(name: &str, run: &str) -> bool {
    name.starts_with(&format!("{run}-")) || name.starts_with(&format!("evaluation-job-{run}-"))
}

/// Everything left is a decoy: no object of `run` remains.
async fn assert_only_decoys_left(ns: &TestNamespace, run: &str) {
    let (jobs, pods) = names(ns).await;
    assert!(
        jobs.iter().chain(&pods).all(|n| !of_run(n, run)),
        "objects of run {run} remain: jobs {jobs:?}, pods {pods:?}"
    );
    assert_eq!(
        jobs,
        ["evaluation-job-other-done", "evaluation-job-other-live"]
    );
    assert!(pods.contains(&"no-run".to_string()), "{pods:?}");
    assert!(pods.contains(&"other-bare".to_string()), "{pods:?}");
    assert_eq!(pods.len(), 4, "the decoys' pods: {pods:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_id_selects_one_runs_objects_only() {
    let ns = TestNamespace::for_current_test().await;
    run_objects(&ns, "r1").await;
    decoys(&ns).await;
    let (code, r, err) = ns.run_json(&["--run-id", "r1", "--level", "all", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["selector"], "app=evaluation,crucible-clean/run in (r1)");
    // Finished ones only without --include-running.
    assert_eq!(r["summary"]["deleted"], 2, "{r}");
    let (jobs, _) = names(&ns).await;
    assert!(jobs.contains(&"evaluation-job-r1-live".to_string()));
    assert!(!jobs.contains(&"evaluation-job-r1-done".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn test_id_comes_from_the_environment_only_when_asked() {
    let ns = TestNamespace::for_current_test().await;
    for (name, test) in [("a-1", "test-a"), ("b-1", "test-b")] {
        ns.create_pod(&BarePod::succeeded(name).evaluation(name).test_id(test))
            .await;
    }
    // A stray TEST_LABEL_ID changes nothing without the flag.
    let (code, r, err) = ns
        .plugin()
        .env("TEST_LABEL_ID", "test-a")
        .args([
            "-n",
            ns.name(),
            "-o",
            "json",
            "--test-id",
            "test-b",
            "--dry-run",
        ])
        .output_json();
    assert_eq!(code, 0, "{err}");
    assert_eq!(names_where(&r, |_| true), ["b-1"]);
    // With it, the variable is the test id.
    let (code, r, err) = ns
        .plugin()
        .env("TEST_LABEL_ID", "test-a")
        .args(["-n", ns.name(), "-o", "json", "--test-id-from-env", "--yes"])
        .output_json();
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["deleted"], 1, "{r}");
    assert_eq!(ns.pod_names().await, ["b-1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guard_reaps_its_run_when_its_parent_dies() {
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start(&ns, "r2", &[]);
    g.ready();
    let l = lease(&ns, "r2").await.expect("the guard's Lease exists");
    let spec = l.spec.unwrap();
    assert_eq!(spec.lease_duration_seconds, Some(30));
    assert!(spec.holder_identity.unwrap().contains('/'));
    assert_eq!(l.metadata.labels.unwrap()[RUN], "r2");

    run_objects(&ns, "r2").await;
    decoys(&ns).await;
    let t0 = Instant::now();
    g.close();
    let (code, out, err) = g.finish(Duration::from_secs(60));
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    // Both jobs (the running one too) and the bare pod; the jobs' pods go
    // with them.
    assert_eq!(r["summary"]["deleted"], 3, "{r}");
    eprintln!("guard: parent gone → run reaped in {took:?}");
    ns.wait_job_gone("evaluation-job-r2-live").await;
    ns.wait_job_gone("evaluation-job-r2-done").await;
    ns.wait_pod_gone("r2-bare").await;
    support::wait::poll_until("the run's pods gone", Duration::from_secs(30), || async {
        let pods = ns.pod_names().await;
        if pods.iter().any(|p| of_run(p, "r2")) {
            Err(format!("{pods:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert_only_decoys_left(&ns, "r2").await;
    assert!(lease(&ns, "r2").await.is_none(), "the Lease is released");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guard_reaps_its_run_when_its_parent_pid_dies_though_the_pipe_stays_open() {
    // A child of the run (a forked worker) may hold the pipe: --parent-pid
    // makes the parent's death enough.
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start_under_shell(&ns, "r7");
    g.ready();
    run_objects(&ns, "r7").await;
    decoys(&ns).await;
    let t0 = Instant::now();
    let _ = g.child.kill(); // the shell, the guard's parent; the test keeps stdin open
    let _ = g.child.wait();
    ns.wait_job_gone("evaluation-job-r7-live").await;
    ns.wait_job_gone("evaluation-job-r7-done").await;
    ns.wait_pod_gone("r7-bare").await;
    eprintln!(
        "guard --parent-pid: parent killed → run reaped in {:?}",
        t0.elapsed()
    );
    support::wait::poll_until("the Lease released", Duration::from_secs(30), || async {
        match lease(&ns, "r7").await {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
    assert!(g.stdin.is_some(), "the pipe stayed open throughout");
    assert_only_decoys_left(&ns, "r7").await;
    let err = g.stderr.join().unwrap();
    assert!(err.contains("the parent of run r7 is gone"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_pid_that_is_not_the_parent_is_refused_before_the_lease() {
    let ns = TestNamespace::for_current_test().await;
    let g = Guard::start(&ns, "r8", &["--parent-pid", "1"]);
    let (code, out, err) = g.finish(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("--parent-pid 1 is not the guard's parent"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(lease(&ns, "r8").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_released_guard_deletes_nothing() {
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start(&ns, "r3", &[]);
    g.ready();
    ns.create_pod(
        &BarePod::succeeded("r3-pod")
            .evaluation("r3")
            .label(RUN, "r3"),
    )
    .await;
    g.say("release");
    let (code, out, err) = g.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.is_empty(), "no report: nothing was cleaned: {out}");
    assert_eq!(ns.pod_names().await, ["r3-pod"]);
    assert!(lease(&ns, "r3").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_guard_is_renewed_and_a_second_guard_of_its_run_is_refused() {
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start(&ns, "r4", &["--lease-duration", "3s"]);
    g.ready();
    let first = lease(&ns, "r4").await.unwrap().spec.unwrap().renew_time;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = lease(&ns, "r4").await.unwrap().spec.unwrap().renew_time;
    assert!(later > first, "renewed every second: {first:?} → {later:?}");

    let mut second = Guard::start(&ns, "r4", &[]);
    let (code, _, err) = {
        second.close();
        second.finish(Duration::from_secs(30))
    };
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("already has a live guard"), "{err}");
    g.say("release");
    let (code, _, err) = g.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_runs_cleans_exactly_the_runs_whose_lease_expired() {
    let ns = TestNamespace::for_current_test().await;
    // Run r5: its guard and its parent die together (SIGKILL): the Lease
    // stays until it expires.
    let mut dead = Guard::start(&ns, "r5", &["--lease-duration", "3s"]);
    dead.ready();
    // Run "other": alive, with a live guard.
    let mut live = Guard::start(&ns, "other", &["--lease-duration", "3s"]);
    live.ready();
    run_objects(&ns, "r5").await;
    decoys(&ns).await;
    dead.kill();
    let killed = Instant::now();

    // While r5's Lease is live, --stale-runs leaves it alone.
    let (code, r, err) = ns.run_json(&["--stale-runs", "--yes"]);
    if killed.elapsed() < Duration::from_secs(3) {
        assert_eq!(code, 0, "{err}");
        assert_eq!(r["summary"]["selected"], 0, "{r}\n{err}");
    }
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(killed.elapsed())).await;

    let (code, r, err) = ns.run_json(&["--stale-runs", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("run r5: its guard Lease"), "{err}");
    assert_eq!(r["summary"]["selected"], 3, "{r}");
    let (code, r, err) = ns.run_json(&["--stale-runs", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["deleted"], 3, "{r}\n{err}");
    assert!(
        lease(&ns, "r5").await.is_none(),
        "the stale Lease is removed"
    );
    ns.wait_job_gone("evaluation-job-r5-live").await;
    ns.wait_job_gone("evaluation-job-r5-done").await;
    support::wait::poll_until("r5's pods gone", Duration::from_secs(30), || async {
        let pods = ns.pod_names().await;
        if pods.iter().any(|p| of_run(p, "r5")) {
            Err(format!("{pods:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert_only_decoys_left(&ns, "r5").await;
    assert!(
        lease(&ns, "other").await.is_some(),
        "the live run keeps its Lease"
    );

    // Nothing stale any more: nothing to do, nothing listed.
    let (code, r, err) = ns.run_json(&["--stale-runs", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["selected"], 0, "{r}");
    live.say("release");
    let (code, _, err) = live.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
}

/// A Lease for `run` as a guard leaves it: last renewed `ago` before now.
async fn expired_lease(ns: &TestNamespace, run: &str, ago: Duration) {
    forge_lease(
        ns.name(),
        &format!("crucible-clean-run-{run}"),
        serde_json::json!({RUN: run}),
        guard_spec(ago),
    )
    .await;
}

fn rfc3339_micro(t: std::time::SystemTime) -> String {
    let ts = k8s_openapi::jiff::Timestamp::try_from(t).unwrap();
    ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_reaps_stale_runs_as_they_appear() {
    let ns = TestNamespace::for_current_test().await;
    decoys(&ns).await;
    let mut live = Guard::start(&ns, "other", &[]);
    live.ready();
    let mut watch = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "-o",
            "json",
            "--watch=poll",
            "--interval",
            "1s",
        ])
        .args(["--stale-runs", "--yes"])
        .spawn();
    let first: serde_json::Value = serde_json::from_str(&watch.stdout_line().unwrap()).unwrap();
    assert_eq!(first["summary"]["selected"], 0, "{first}");

    // A run dies while the watch runs: its Lease (taken before the run made
    // its pod) expired an hour ago.
    expired_lease(&ns, "r6", Duration::from_secs(3600)).await;
    ns.create_pod(
        &BarePod::succeeded("r6-pod")
            .evaluation("r6")
            .label(RUN, "r6"),
    )
    .await;
    let t0 = Instant::now();
    let reaped = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no cycle reaped run r6 within 2 minutes"
        );
        let line = watch.stdout_line().expect("a report per cycle");
        let r: serde_json::Value = serde_json::from_str(&line).unwrap();
        if r["summary"]["deleted"] != 0 {
            break r;
        }
    };
    assert_eq!(names_where(&reaped, |_| true), ["r6-pod"], "{reaped}");
    assert!(lease(&ns, "r6").await.is_none());
    assert!(lease(&ns, "other").await.is_some());
    watch.signal("TERM");
    let done = watch.wait(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_only_decoys_left(&ns, "r6").await;
    live.say("release");
    let _ = live.finish(Duration::from_secs(30));
}

// ------------------------------------------------------------------------------------------
// Leases that are not a guard's, and a guard's input that is not a line it knows
// ------------------------------------------------------------------------------------------

/// A Lease named `name` in `ns` with `labels` and `spec` (null: none), as anyone
/// allowed to create Leases could write it.
async fn forge_lease(ns: &str, name: &str, labels: serde_json::Value, spec: serde_json::Value) {
    let api: Api<Lease> = Api::namespaced(support::cluster::admin_client().await, ns);
    let mut lease = serde_json::json!({"metadata": {"name": name, "labels": labels}});
    if !spec.is_null() {
        lease["spec"] = spec;
    }
    api.create(&Default::default(), &serde_json::from_value(lease).unwrap())
        .await
        .expect("create lease");
}

/// A guard's spec, as the guard writes it, last renewed `ago` before now.
fn guard_spec(ago: Duration) -> serde_json::Value {
    let renewed = rfc3339_micro(std::time::SystemTime::now() - ago);
    serde_json::json!({
        "holderIdentity": format!("gone-host/4242/{}Z", &renewed[..19]),
        "leaseDurationSeconds": 30, "acquireTime": renewed, "renewTime": renewed,
    })
}

/// Finding 1 of issue 19: any Lease carrying the run label counted as a dead
/// guard, so a Lease of another name made `--stale-runs` delete a live run's
/// running job.
#[tokio::test(flavor = "multi_thread")]
async fn a_forged_lease_never_reaps_a_live_run() {
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start(&ns, "r1", &[]);
    g.ready();
    ns.create_job(&EvalJob::running("r1-live").label(RUN, "r1"))
        .await;
    ns.wait_job_pods_phase("evaluation-job-r1-live", "Running")
        .await;
    let hour = Duration::from_secs(3600);
    forge_lease(
        ns.name(),
        "unrelated-lease",
        serde_json::json!({RUN: "r1"}),
        guard_spec(hour),
    )
    .await;
    // A run without a guard: a Lease of its name but no spec at all.
    ns.create_pod(&BarePod::running("r8-pod").evaluation("r8").label(RUN, "r8"))
        .await;
    forge_lease(
        ns.name(),
        "crucible-clean-run-r8",
        serde_json::json!({RUN: "r8"}),
        serde_json::Value::Null,
    )
    .await;

    let (code, r, err) = ns.run_json(&["--stale-runs", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["selected"], 0, "{r}\n{err}");
    assert_eq!(
        ns.job_names().await,
        ["evaluation-job-r1-live"],
        "the live run's running job stays"
    );
    assert!(ns.pod_names().await.contains(&"r8-pod".to_string()));
    for lease in ["unrelated-lease", "crucible-clean-run-r8"] {
        assert!(
            err.contains(&format!("ignoring Lease {}/{lease}", ns.name())),
            "{lease}: {err}"
        );
    }
    g.say("release");
    let (code, _, err) = g.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
}

/// Finding 1 of issue 19: a stale run was cleaned across the whole scope, so a
/// Lease in one namespace reaped the run's objects in another (even a live one).
#[tokio::test(flavor = "multi_thread")]
async fn a_stale_run_is_cleaned_only_in_its_leases_namespace_and_never_while_live_elsewhere() {
    let team_a = TestNamespace::new("stale-team-a").await;
    let ns = TestNamespace::for_current_test().await;
    let suite = support::objects::unique_name("suite");
    // Run r2 is alive in `ns`; a Lease of r2 without spec in team-a.
    let mut g = Guard::start(&ns, "r2", &[]);
    g.ready();
    ns.create_job(
        &EvalJob::running("r2-live")
            .label(RUN, "r2")
            .label("suite", &suite),
    )
    .await;
    forge_lease(
        team_a.name(),
        "crucible-clean-run-r2",
        serde_json::json!({RUN: "r2"}),
        serde_json::Value::Null,
    )
    .await;
    // The run ids r2 and r9 are this test's alone in this file: it looks at
    // every namespace, so another test's live Lease of run r9 holds the run.
    // Run r9 died: its Lease is in team-a, expired an hour ago; it has objects
    // in both namespaces (created after its Lease).
    forge_lease(
        team_a.name(),
        "crucible-clean-run-r9",
        serde_json::json!({RUN: "r9"}),
        guard_spec(Duration::from_secs(3600)),
    )
    .await;
    for n in [&team_a, &ns] {
        n.create_pod(
            &BarePod::succeeded("r9-pod")
                .evaluation("r9")
                .label(RUN, "r9")
                .label("suite", &suite),
        )
        .await;
    }
    ns.wait_job_pods_phase("evaluation-job-r2-live", "Running")
        .await;

    let (code, r, err) = ns
        .plugin()
        .args(["-A", "-o", "json", "-l", &format!("suite={suite}")])
        .args(["--stale-runs", "--yes"])
        .output_json();
    assert_eq!(code, 0, "{err}");
    let gone: Vec<String> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "deleted")
        .map(|i| {
            format!(
                "{}/{}",
                i["namespace"].as_str().unwrap(),
                i["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(gone, [format!("{}/r9-pod", team_a.name())], "{r}\n{err}");
    assert_eq!(ns.job_names().await, ["evaluation-job-r2-live"]);
    assert!(ns.pod_names().await.contains(&"r9-pod".to_string()));
    g.say("release");
    let (code, _, err) = g.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
}

/// Finding 2 of issue 19: a read error on the guard's input (invalid UTF-8)
/// was taken for the end of input, and the guard reaped a live run.
#[tokio::test(flavor = "multi_thread")]
async fn a_guard_ignores_input_it_cannot_read_and_keeps_renewing() {
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start(&ns, "r3", &["--lease-duration", "3s"]);
    g.ready();
    ns.create_job(&EvalJob::running("live-r3").label(RUN, "r3"))
        .await;
    ns.wait_job_pods_phase("evaluation-job-live-r3", "Running")
        .await;
    {
        let stdin = g.stdin.as_mut().unwrap();
        stdin.write_all(b"\xff\xfe hello\n").unwrap();
        stdin.flush().unwrap();
    }
    g.say("what is this");
    // Two renewals later (every second) the guard still holds the run.
    let written = std::time::SystemTime::now();
    let api: Api<Lease> = Api::namespaced(ns.client(), ns.name());
    support::wait::poll_until(
        "two renewals after the bad input",
        Duration::from_secs(30),
        || {
            let api = api.clone();
            let exited = g.child.try_wait().unwrap().is_some();
            async move {
                if exited {
                    return Ok(());
                }
                let l = api
                    .get("crucible-clean-run-r3")
                    .await
                    .map_err(|e| e.to_string())?;
                let renewed = l.spec.and_then(|s| s.renew_time).ok_or("no renewTime")?;
                let renewed = std::time::SystemTime::from(renewed.0);
                match renewed.duration_since(written) {
                    Ok(d) if d > Duration::from_millis(1500) => Ok(()),
                    _ => Err(format!("renewed {renewed:?}")),
                }
            }
        },
    )
    .await;
    assert!(
        g.child.try_wait().unwrap().is_none(),
        "the guard exited on input it could not read"
    );
    assert_eq!(ns.job_names().await, ["evaluation-job-live-r3"]);
    g.say("release");
    let (code, out, err) = g.finish(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.is_empty(), "nothing cleaned: {out}");
    assert!(err.contains("guard: ignoring a line"), "{err}");
    assert_eq!(ns.job_names().await, ["evaluation-job-live-r3"]);
}

/// Waits until run `run`'s Lease was renewed `after` past `since` while the
/// guard still runs: the guard held on that long.
async fn wait_renewed_past(
    g: &mut Guard,
    ns: &TestNamespace,
    run: &str,
    since: std::time::SystemTime,
    after: Duration,
) {
    let api: Api<Lease> = Api::namespaced(ns.client(), ns.name());
    let name = format!("crucible-clean-run-{run}");
    support::wait::poll_until("the Lease renewed", Duration::from_secs(90), || {
        let api = api.clone();
        let name = name.clone();
        let exited = g.child.try_wait().unwrap();
        async move {
            if let Some(status) = exited {
                panic!("the guard exited ({status}) before the Lease was renewed");
            }
            let l = api.get(&name).await.map_err(|e| e.to_string())?;
            let renewed = l.spec.and_then(|s| s.renew_time).ok_or("no renewTime")?;
            match std::time::SystemTime::from(renewed.0).duration_since(since) {
                Ok(d) if d > after => Ok(()),
                _ => Err(format!("renewed {:?}", renewed.0)),
            }
        }
    })
    .await;
}

/// A standard input that can never be read (a directory: every read fails)
/// must neither reap the run nor hold it for ever: after ten failures in a
/// row the guard stops, deleting nothing, and leaves the Lease to expire
/// for `--stale-runs`.
#[tokio::test(flavor = "multi_thread")]
async fn a_guard_whose_input_keeps_failing_stops_without_deleting_and_leaves_the_lease() {
    let ns = TestNamespace::for_current_test().await;
    let cmd = ns
        .plugin()
        .args(["-n", ns.name(), "-o", "json", "--guard", "r11"])
        .command();
    let dir = std::fs::File::open(std::env::temp_dir()).expect("open a directory");
    let mut g = Guard::spawn_with_stdin(cmd, Stdio::from(dir));
    g.ready();
    ns.create_job(&EvalJob::running("live-r11").label(RUN, "r11"))
        .await;
    let (code, out, err) = g.finish(Duration::from_secs(90));
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.is_empty(), "nothing cleaned: {out}");
    assert!(
        err.contains("standard input failed 10 times in a row"),
        "{err}"
    );
    assert!(err.contains("is left to expire"), "{err}");
    assert_eq!(
        err.matches("cannot read standard input").count(),
        1,
        "the failure is said once: {err}"
    );
    assert_eq!(ns.job_names().await, ["evaluation-job-live-r11"]);
    assert!(
        lease(&ns, "r11").await.is_some(),
        "the Lease is not released"
    );
}

/// With `--parent-pid`, input that keeps failing leaves the parent to watch:
/// the guard keeps the run while the parent lives and reaps it when it dies.
#[tokio::test(flavor = "multi_thread")]
async fn a_guard_whose_input_keeps_failing_still_watches_its_parent() {
    let ns = TestNamespace::for_current_test().await;
    let mut g = Guard::start_by_shell(&ns, "r10", r#""$0" --parent-pid $$ "$@" </ & wait"#);
    g.ready();
    let since = std::time::SystemTime::now();
    ns.create_job(&EvalJob::running("live-r10").label(RUN, "r10"))
        .await;
    // Past the ten failed reads (one a second), the guard still holds the run.
    wait_renewed_past(&mut g, &ns, "r10", since, Duration::from_secs(13)).await;
    assert_eq!(ns.job_names().await, ["evaluation-job-live-r10"]);
    let _ = g.child.kill(); // the shell, the guard's parent
    let _ = g.child.wait();
    ns.wait_job_gone("evaluation-job-live-r10").await;
    let err = g.stderr.join().unwrap();
    assert!(err.contains("watching the parent"), "{err}");
    assert!(err.contains("the parent of run r10 is gone"), "{err}");
}
