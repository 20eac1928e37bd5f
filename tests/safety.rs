//! Safety against the local control plane: the gate, dry runs, bad input,
//! RBAC, connection flags, uid preconditions and interruption.

mod support;

use std::time::{Duration, Instant};

use support::{audit::*, cluster::*, commands::*, objects::*, terminal::*, wait::*};

async fn three_finished(ns: &TestNamespace) {
    for (i, name) in ["f-1", "f-2", "f-3"].iter().enumerate() {
        ns.create_pod(
            &BarePod::succeeded(name)
                .evaluation(&format!("e{i}"))
                .test_id("t1"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_and_without_yes_nothing_is_deleted() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    // stdin from /dev/null
    let t0 = Instant::now();
    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--test-id", "t1"])
        .output();
    assert!(t0.elapsed() < Duration::from_secs(5), "must not hang");
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    // stdin from a pipe that says yes: a pipe is not a person.
    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--test-id", "t1"])
        .write_stdin("y\ny\n")
        .output();
    assert_eq!(code(&out), Some(3), "{}", stderr(&out));
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);
    assert!(ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn max_delete_aborts_before_the_first_delete() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--yes",
            "--max-delete",
            "2",
        ])
        .output();
    assert_eq!(code(&out), Some(3));
    assert_eq!(
        stderr(&out).trim(),
        "error: 3 objects would be deleted, more than --max-delete 2; nothing deleted"
    );
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--yes",
            "--max-delete",
            "3",
        ])
        .output();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(ns.pod_names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_runs_send_no_mutating_request() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    ns.create_job(&EvalJob::succeeding("j1").test_id("t1"))
        .await;
    ns.wait_job_complete("evaluation-job-j1").await;

    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--level",
            "all",
            "--dry-run",
        ])
        .output();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.starts_with("KIND   NAME"), "{table}");
    assert!(table.contains("dry run: would delete 4 objects"), "{table}");
    assert!(ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .is_empty());

    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--level",
            "all",
            "--dry-run=server",
            "-o",
            "json",
        ])
        .output();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dryRunMode"], "server");
    assert_eq!(report["summary"]["wouldDelete"], 4);
    // The server was asked, with dryRun=All, and nothing changed.
    let sent = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(
        sent.iter()
            .all(|e| e.verb == "delete" && e.request_uri.contains("dryRun=All")),
        "{sent:?}"
    );
    assert_eq!(ns.pod_names().await.len(), 4);
    assert_eq!(ns.job_names().await, ["evaluation-job-j1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_one_line_and_changes_nothing() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let cases: Vec<Vec<&str>> = vec![
        vec!["--older-than", "5x"],
        vec!["--older-than", "1.5h"],
        vec!["-l", "app in (evaluation", "--all"],
        vec!["-l", "app=eval uation", "--all"],
        vec!["--all", "-o", "xml"],
        vec!["--all", "--concurrency", "0"],
        vec!["--all", "-n", "kube-system"],
        vec!["--all", "--level", "everything"],
        vec!["--all", "--grace-period", "0"],
        vec![],
    ];
    // An unusable kubeconfig or context is a connection problem: exit 4.
    let cases = cases.into_iter().map(|c| (c, 2)).chain([
        (vec!["--all", "--context", "no-such-context"], 4),
        (vec!["--all", "--kubeconfig", "/nonexistent/kubeconfig"], 4),
    ]);
    for (args, want) in cases {
        let mut cmd = ns.plugin();
        if !args.contains(&"-n") {
            cmd.args(["-n", ns.name()]);
        }
        let out = cmd.args(&args).args(["--yes"]).output();
        let err = stderr(&out);
        assert_eq!(code(&out), Some(want), "{args:?}: {err}");
        // One error line; clap's tip (`-o xml`: a similar value exists) on its own.
        let lines = err.lines().filter(|l| !l.starts_with("  tip: ")).count();
        assert_eq!(lines, 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);
    assert!(ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_exits_4() {
    let ns = TestNamespace::for_current_test().await;
    let kc = kubeconfig_with_server(ns.home(), "https://127.0.0.1:1");
    let out = ns
        .plugin()
        .env("KUBECONFIG", &kc)
        .args(["--all", "--yes"])
        .output();
    let err = stderr(&out);
    assert_eq!(code(&out), Some(4), "{err}");
    // As kubectl says it, naming the server and the context; no type names.
    assert_eq!(
        err,
        "error: cannot list pods: the connection to the server 127.0.0.1:1 was refused (context admin) - did you specify the right host or port?\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_timeout_bounds_a_silent_server() {
    let ns = TestNamespace::for_current_test().await;
    let port = silent_server();
    let kc = kubeconfig_with_server(ns.home(), &format!("https://127.0.0.1:{port}"));
    let t0 = Instant::now();
    let out = ns
        .plugin()
        .env("KUBECONFIG", &kc)
        .args(["--all", "--yes", "--request-timeout", "1s"])
        .timeout(Duration::from_secs(30))
        .output();
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(code(&out), Some(4), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_flags_change_what_is_contacted() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let home = ns.home().to_path_buf();

    // --kubeconfig wins over a broken KUBECONFIG.
    let broken = kubeconfig_with_server(&home, "https://127.0.0.1:1");
    let out = ns
        .plugin()
        .env("KUBECONFIG", &broken)
        .args([
            "--kubeconfig",
            kubeconfig_path().to_str().unwrap(),
            "-n",
            ns.name(),
            "--all",
            "--dry-run",
            "-o",
            "name",
        ])
        .output();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);

    // KUBECONFIG with several paths: the first file to set current-context wins.
    let first = home.join("first.kubeconfig");
    std::fs::write(
        &first,
        "apiVersion: v1\nkind: Config\ncurrent-context: viewer\n",
    )
    .unwrap();
    let joined = std::env::join_paths([first.clone(), kubeconfig_path()]).unwrap();
    let out = ns
        .plugin()
        .env("KUBECONFIG", &joined)
        .args(["-n", ns.name(), "--all", "--yes"])
        .output();
    assert_eq!(
        code(&out),
        Some(4),
        "the viewer may not delete: {}",
        stderr(&out)
    );

    // --context picks the user: the viewer is refused, the admin may.
    let out = ns
        .plugin()
        .args(["--context", "viewer", "-n", ns.name(), "--all", "--yes"])
        .output();
    assert_eq!(code(&out), Some(4), "{}", stderr(&out));

    // -n changes the namespace: another namespace has nothing.
    let empty = TestNamespace::new("connection-flags-empty").await;
    let out = ns
        .plugin()
        .args(["-n", empty.name(), "--all", "--dry-run", "-o", "name"])
        .output();
    assert_eq!(code(&out), Some(0));
    assert_eq!(stdout(&out), "");
    assert_eq!(ns.pod_names().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn ci_runner_cleans_up_in_crucible_and_viewer_is_refused() {
    let client = admin_client().await;
    let run = unique_name("rbac-run");
    let pods = [format!("{run}-a"), format!("{run}-b")];
    for p in &pods {
        create_bare_pod(
            &client,
            CRUCIBLE_NAMESPACE,
            &BarePod::succeeded(p).evaluation(p).test_id(&run),
        )
        .await;
    }
    let home = tempfile::tempdir().unwrap();
    let remaining = || async {
        pod_names(&admin_client().await, CRUCIBLE_NAMESPACE)
            .await
            .into_iter()
            .filter(|n| n.starts_with(&run))
            .collect::<Vec<_>>()
    };

    let out = PluginCmd::with_home(home.path())
        .on_cluster()
        .args(["--context", "viewer", "--test-id", &run, "--yes"])
        .output();
    assert_eq!(code(&out), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("delete") && err.contains("pods") && err.contains("crucible"),
        "{err}"
    );
    assert_eq!(remaining().await, pods);

    let out = PluginCmd::with_home(home.path())
        .on_cluster()
        .args(["--context", "ci-runner", "--test-id", &run, "--yes"])
        .output();
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(remaining().await.is_empty());
    let by_runner: Vec<AuditEvent> =
        mutating_requests(CRUCIBLE_NAMESPACE, &AuditFilter::username(CI_RUNNER_USER))
            .await
            .into_iter()
            .filter(|e| e.request_uri.contains(&run))
            .collect();
    assert_eq!(by_runner.len(), 2, "{by_runner:?}");
}

/// Runs the plugin on a pseudo-terminal; `at_prompt` runs when the
/// confirmation shows, then `answer` is typed.
async fn on_a_terminal<F, Fut>(
    ns: &TestNamespace,
    args: &[&str],
    answer: &str,
    at_prompt: F,
) -> (i32, String)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    on_a_terminal_until(ns, args, "[y/N]", answer, at_prompt).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_prompt_shows_context_namespace_and_counts_and_no_deletes_nothing() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let args = ["-n", ns.name(), "--test-id", "t1"];
    let (code, screen) = on_a_terminal(&ns, &args, "n\r", || async {}).await;
    assert_eq!(code, 3, "{screen}");
    assert!(screen.contains("aborted: nothing deleted"), "{screen}");
    assert!(!screen.contains("error:"), "a no is an answer: {screen}");
    assert!(
        screen.contains(&format!(
            "Delete 3 pods (3 Succeeded) in namespace {} (context admin)?",
            ns.name()
        )),
        "{screen}"
    );
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);

    let (code, screen) = on_a_terminal(&ns, &args, "y\r", || async {}).await;
    assert_eq!(code, 0, "{screen}");
    assert!(ns.pod_names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_recreated_under_the_same_name_is_a_conflict_not_a_delete() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let old_uid = ns.pods().get("f-2").await.unwrap().metadata.uid.unwrap();
    let args = ["-n", ns.name(), "--test-id", "t1", "-o", "json"];
    let (code, screen) = on_a_terminal(&ns, &args, "y\r", || async {
        // Between plan and execute, f-2 is replaced by a namesake.
        ns.pods().delete("f-2", &Default::default()).await.unwrap();
        ns.wait_pod_gone("f-2").await;
        ns.create_pod(&BarePod::succeeded("f-2").evaluation("e-new").test_id("t1"))
            .await;
    })
    .await;
    assert_eq!(code, 0, "a conflict is reported, not fatal: {screen}");
    assert!(screen.contains("\"result\": \"conflict\""), "{screen}");
    let survivor = ns.pods().get("f-2").await.unwrap();
    assert_ne!(survivor.metadata.uid.unwrap(), old_uid);
    assert_eq!(ns.pod_names().await, ["f-2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_starts_no_new_deletes_and_prints_the_partial_report() {
    let ns = TestNamespace::for_current_test().await;
    let n = 150;
    ns.create_pods(
        (0..n).map(|i| BarePod::succeeded(&format!("p-{i:03}")).evaluation(&format!("e{i}"))),
    )
    .await;
    let child = ns
        .plugin()
        .args(["-n", ns.name(), "--all", "--yes", "--concurrency", "1"])
        .spawn();
    // Interrupt once deletes are under way.
    poll_until("the first deletes", Duration::from_secs(30), || async {
        let left = ns.pod_names().await.len();
        if left < n {
            Ok(())
        } else {
            Err(format!("{left} pods left"))
        }
    })
    .await;
    child.signal("INT");
    let out = child.wait(Duration::from_secs(300));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    let stdout = &out.stdout;
    assert!(stdout.contains("not started (interrupted)"), "{stdout}");
    let left = ns.pod_names().await.len();
    assert!(left > 0 && left < n, "some deleted, some left: {left}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_progress_bar_shows_on_a_terminal_when_many_objects_go() {
    let ns = TestNamespace::for_current_test().await;
    let n = 40;
    ns.create_pods(
        (0..n).map(|i| BarePod::succeeded(&format!("p-{i:02}")).evaluation(&format!("e{i}"))),
    )
    .await;
    let args = ["-n", ns.name(), "--all", "--yes", "--concurrency", "1"];
    let (code, screen) = on_a_terminal_until(&ns, &args, "deleted 40,", "", || async {}).await;
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains(&format!("/{n} [")),
        "a progress bar was drawn: {screen}"
    );
    assert!(ns.pod_names().await.is_empty());

    // Not on a terminal: no bar, stdout and stderr stay clean for scripts.
    ns.create_pods(
        (0..n).map(|i| BarePod::succeeded(&format!("q-{i:02}")).evaluation(&format!("e{i}"))),
    )
    .await;
    let out = ns.plugin().args(args).output();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "");
}

/// A TCP server that accepts connections and never answers (nor completes TLS).
fn silent_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = vec![];
        for c in listener.incoming().flatten() {
            held.push(c);
        }
    });
    port
}

/// While alive, DELETEs of pods in `ns` hang in admission for up to
/// `seconds` (a webhook that never answers), then fail.
struct HangingDeletes {
    name: String,
}

impl HangingDeletes {
    async fn install(ns: &TestNamespace, seconds: u32) -> Self {
        use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
        let name = format!("hang-{}", ns.name());
        let port = silent_server();
        let config: ValidatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "webhooks": [{
                "name": "hang.crucible.test",
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/hang")},
                "rules": [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name()}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": seconds,
            }]
        }))
        .unwrap();
        let api: kube::Api<ValidatingWebhookConfiguration> = kube::Api::all(ns.client());
        api.create(&Default::default(), &config).await.unwrap();
        // The webhook is active once a server-side dry-run delete hangs on it.
        let pods = ns.pods();
        ns.create_pod(&BarePod::succeeded("probe").label("probe", "true"))
            .await;
        poll_until(
            "the webhook to take effect",
            Duration::from_secs(30),
            || {
                let pods = pods.clone();
                async move {
                    let dp = kube::api::DeleteParams {
                        dry_run: true,
                        ..Default::default()
                    };
                    let t0 = Instant::now();
                    let r =
                        tokio::time::timeout(Duration::from_millis(700), pods.delete("probe", &dp))
                            .await;
                    match r {
                        Err(_) => Ok(()),
                        Ok(Err(_)) if t0.elapsed() > Duration::from_millis(500) => Ok(()),
                        Ok(other) => Err(format!("{:?}", other.map(|_| ()))),
                    }
                }
            },
        )
        .await;
        HangingDeletes { name }
    }
}

impl Drop for HangingDeletes {
    fn drop(&mut self) {
        let _ = kubectl_as(
            ADMIN_CONTEXT,
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

/// Waits for the plugin, killing it 30 s after `limit` from now; asserts that it
/// took at most `limit`. Returns how it ended and how long that took.
fn finish_within(child: Running, limit: Duration) -> (Finished, Duration) {
    let t0 = Instant::now();
    let deadline = child.elapsed() + limit + Duration::from_secs(30);
    let out = child.wait(deadline);
    let took = t0.elapsed();
    assert!(
        took <= limit,
        "took {took:?}, more than {limit:?}: {}",
        out.stderr
    );
    (out, took)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_while_listing_from_a_silent_server_exits_130_at_once() {
    let ns = TestNamespace::for_current_test().await;
    let port = silent_server();
    let kc = kubeconfig_with_server(ns.home(), &format!("https://127.0.0.1:{port}"));
    let child = ns.plugin().kubeconfig(&kc).args(["--all", "--yes"]).spawn();
    std::thread::sleep(Duration::from_millis(1500));
    child.signal("INT");
    let (out, took) = finish_within(child, Duration::from_millis(1500));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    eprintln!("SIGINT while listing: exit 130 after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_during_wait_exits_130_with_the_report() {
    let ns = TestNamespace::for_current_test().await;
    // A finalizer holds the pod in Terminating, so --wait would wait a minute.
    ns.create_pod(&BarePod::succeeded("held").evaluation("e1").test_id("t1"))
        .await;
    ns.pods()
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                serde_json::json!({"metadata": {"finalizers": ["crucible.test/hold"]}}),
            ),
        )
        .await
        .unwrap();
    let child = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--yes",
            "--wait",
            "--timeout",
            "2m",
            "-o",
            "json",
        ])
        .spawn();
    let pods = ns.pods();
    poll_until("the pod to be terminating", Duration::from_secs(20), || {
        let pods = pods.clone();
        async move {
            match pods.get("held").await {
                Ok(p) if p.metadata.deletion_timestamp.is_some() => Ok(()),
                other => Err(format!(
                    "{:?}",
                    other.map(|p| p.metadata.deletion_timestamp)
                )),
            }
        }
    })
    .await;
    std::thread::sleep(Duration::from_millis(500));
    child.signal("INT");
    let (out, took) = finish_within(child, Duration::from_millis(1500));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    let report = out.report();
    assert_eq!(report["items"][0]["result"], "deleted", "{report}");
    // The report names what was still there, and what holds it.
    assert_eq!(
        report["items"][0]["stillTerminating"],
        serde_json::json!({"finalizers": ["crucible.test/hold"]}),
        "{report}"
    );
    // One message, said when the signal came; no error line after it.
    assert_eq!(
        out.stderr,
        "interrupted: no new work starts; press Ctrl-C again to exit at once\n"
    );
    eprintln!("SIGINT during --wait: exit 130 after {took:?}");
    ns.pods()
        .patch(
            "held",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_while_deletes_hang_exits_130_and_a_second_exits_at_once() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pods((0..6).map(|i| {
        BarePod::succeeded(&format!("p-{i}"))
            .evaluation(&format!("e{i}"))
            .test_id("t1")
    }))
    .await;
    let _hang = HangingDeletes::install(&ns, 25).await;
    let args = [
        "-n",
        ns.name(),
        "--test-id",
        "t1",
        "--yes",
        "-o",
        "json",
        "--concurrency",
        "2",
    ];

    // One signal: no new deletes; those in flight get a moment; the partial
    // report is printed; exit 130. (Six seconds: well past listing, so the
    // signal lands while the first deletes hang in admission.)
    let child = ns.plugin().args(args).spawn();
    std::thread::sleep(Duration::from_secs(6));
    child.signal("INT");
    let (out, took) = finish_within(child, Duration::from_secs(4));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    let report = out.report();
    let results: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["result"].as_str().unwrap())
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "deleted").count(),
        0,
        "{report}"
    );
    assert!(results.contains(&"cancelled"), "{report}");
    eprintln!("SIGINT while deletes hang: exit 130 after {took:?}");

    // Two signals: out at once.
    let child = ns.plugin().args(args).spawn();
    std::thread::sleep(Duration::from_secs(6));
    child.signal("INT");
    std::thread::sleep(Duration::from_millis(200));
    child.signal("INT");
    let (out, took) = finish_within(child, Duration::from_secs(1));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    eprintln!("second SIGINT: exit 130 after {took:?}");

    // --watch: SIGTERM stops the current cycle's deletes too.
    let child = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--yes",
            "--watch",
            "--interval",
            "1h",
        ])
        .spawn();
    std::thread::sleep(Duration::from_secs(6));
    child.signal("TERM");
    let (out, took) = finish_within(child, Duration::from_secs(4));
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    eprintln!("SIGTERM in a watch cycle: exit 130 after {took:?}");
    assert_eq!(ns.pod_names().await.len(), 7, "nothing was deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_stopped_between_cycles_exits_1_when_a_cycle_failed() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::succeeded("p").evaluation("e1").test_id("t1"))
        .await;
    // Deletes fail fast: the webhook times out after 1 s, and admission fails.
    let _hang = HangingDeletes::install(&ns, 1).await;
    let mut child = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "t1",
            "--yes",
            "--watch",
            "--interval",
            "1h",
            "-o",
            "json",
        ])
        .spawn();
    // The reconcile retries its delete a few times and fails, prints its
    // report and waits (seconds) before it tries again: stop it then.
    let line = child
        .stdout_line_within(Duration::from_secs(120))
        .expect("the failed reconcile's report");
    child.signal("TERM");
    let (out, _) = finish_within(child, Duration::from_secs(2));
    let err = &out.stderr;
    assert_eq!(out.code, Some(1), "{err}");
    assert!(err.contains("1 of which failed"), "{err}");
    assert!(err.contains("trying again in 5s"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["items"][0]["result"], "failed", "{report}");
}
