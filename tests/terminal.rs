//! The plugin as a person at a terminal meets it, on a pseudo-terminal and
//! against the local control plane: the question reads a whole line and
//! only `y`/`yes` with Enter deletes; typing that is not the answer never
//! reaches the shell; Ctrl-C says one true thing, once; the plan is shown
//! once and the result after it only where it differs; `--wait` shows what
//! it waits for and the report names what was still there.

mod support;

use support::{audit::*, objects::*, terminal::*};

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

const QUESTION: &str = "[y/N] ";

#[tokio::test(flavor = "multi_thread")]
async fn a_key_without_enter_deletes_nothing_and_only_yes_with_enter_does() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let args = ["-n", ns.name(), "--test-id", "t1"];

    // `y` alone is no answer yet: the rest of the line decides, and
    // "yes please" is not yes.
    let mut t = Terminal::plugin(&ns, &args);
    t.expect(QUESTION).await;
    t.type_text("y");
    t.expect("y").await;
    t.type_text("es please\r");
    let (code, screen) = t.wait().await;
    assert_eq!(code, 3, "{screen}");
    assert!(screen.contains("aborted: nothing deleted"), "{screen}");
    assert!(!screen.contains("error:"), "a no is an answer: {screen}");

    // The end of input (Ctrl-D) is no, with or without a `y` before it.
    for typed in ["\x04", "y\x04\x04"] {
        let mut t = Terminal::plugin(&ns, &args);
        t.expect(QUESTION).await;
        t.type_text(typed);
        let (code, screen) = t.wait().await;
        assert_eq!(code, 3, "{typed:?}: {screen}");
    }
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);
    assert!(ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .is_empty());

    let mut t = Terminal::plugin(&ns, &args);
    t.expect(QUESTION).await;
    t.type_text("YES\r");
    let (code, screen) = t.wait().await;
    assert_eq!(code, 0, "{screen}");
    assert!(ns.pod_names().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_before_the_question_or_after_the_answer_never_reaches_the_shell() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let go = tempfile::tempdir().unwrap();
    let go = go.path().join("go");
    let mut cmd = ns.plugin();
    cmd.args(["-n", ns.name(), "--test-id", "t1"])
        .env("GO", &go);
    // A shell that starts the plugin once told to, then reads what is left
    // of the typing, as an interactive shell would run it as a command.
    let script = r#"echo typeahead-now; while [ ! -e "$GO" ]; do sleep 0.1; done
"$0" "$@"; echo "exit $?"; read rest; echo "leftover:[$rest]""#;
    let mut t = Terminal::start(cmd, &["sh", "-c", script]);
    t.expect("typeahead-now").await;
    // Typed while the plugin starts (and lists): never taken as the answer.
    t.type_text("y\r");
    t.expect("y").await;
    std::fs::write(&go, "").unwrap();
    t.expect(QUESTION).await;
    // An answer with a second line pasted after it.
    t.type_text("no thanks\rrm -rf x\r");
    t.expect("aborted: nothing deleted").await;
    t.expect("exit 3").await;
    t.type_text("end\r");
    let (code, screen) = t.wait().await;
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("leftover:[end]"), "{screen}");
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);
    assert!(ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_at_the_question_says_once_that_nothing_was_deleted() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    let mut t = Terminal::plugin(&ns, &["-n", ns.name(), "--test-id", "t1"]);
    t.expect(QUESTION).await;
    t.type_text("\x03");
    let (code, screen) = t.wait().await;
    assert_eq!(code, 130, "{screen}");
    assert_eq!(screen.matches("interrupted").count(), 1, "{screen}");
    assert!(screen.contains("interrupted: nothing deleted"), "{screen}");
    assert!(!screen.contains("error:"), "{screen}");
    assert_eq!(ns.pod_names().await, ["f-1", "f-2", "f-3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plan_is_shown_once_as_a_plan_and_the_result_only_where_it_differs() {
    let ns = TestNamespace::for_current_test().await;
    three_finished(&ns).await;
    ns.create_pod(&BarePod::running("busy").evaluation("e-busy").test_id("t1"))
        .await;
    let mut t = Terminal::plugin(&ns, &["-n", ns.name(), "--test-id", "t1"]);
    t.expect(QUESTION).await;
    t.type_text("y\r");
    let (code, screen) = t.wait().await;
    assert_eq!(code, 0, "{screen}");
    let name = ns.name();
    assert!(
        screen.contains(&format!(
            "will delete 3 objects in namespace {name} (asking first); 0 kept, 1 skipped"
        )),
        "{screen}"
    );
    assert!(
        screen.contains("1 running pod skipped: not finished (add --include-running)"),
        "{screen}"
    );
    assert!(
        !screen.contains("dry run"),
        "no dry run was asked for: {screen}"
    );
    for pod in ["f-1", "f-2", "f-3"] {
        assert_eq!(screen.matches(pod).count(), 1, "{pod} once: {screen}");
    }
    assert!(
        screen.contains(&format!(
            "deleted 3, 0 already gone, 0 conflict, 0 failed in namespace {name}; 0 kept, 1 skipped"
        )),
        "{screen}"
    );
    assert_eq!(ns.pod_names().await, ["busy"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_shows_what_still_terminates_and_after_ctrl_c_the_report_names_it() {
    let ns = TestNamespace::for_current_test().await;
    for name in ["stuck-1", "quick-1"] {
        ns.create_pod(&BarePod::succeeded(name).evaluation(name).test_id("t1"))
            .await;
    }
    let hold = serde_json::json!({"metadata": {"finalizers": ["crucible.test/hold"]}});
    ns.pods()
        .patch(
            "stuck-1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&hold),
        )
        .await
        .unwrap();
    let args = [
        "-n",
        ns.name(),
        "--test-id",
        "t1",
        "--yes",
        "--wait",
        "--timeout",
        "2m",
    ];
    let mut t = Terminal::plugin(&ns, &args);
    t.expect("waiting: 1 of 2 still terminating; the oldest, pod/stuck-1 (finalizers: crucible.test/hold)")
        .await;
    t.type_text("\x03");
    let (code, screen) = t.wait().await;
    assert_eq!(code, 130, "{screen}");
    // The stop is said first, once; then the partial report.
    let stop = screen
        .find("interrupted: no new work starts")
        .unwrap_or_else(|| panic!("{screen}"));
    let summary = screen
        .find("deleted 2, 0 already gone")
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(stop < summary, "{screen}");
    assert_eq!(screen.matches("interrupted").count(), 1, "{screen}");
    assert!(!screen.contains("error:"), "{screen}");
    assert!(
        screen.contains("deleted; still terminating (finalizers: crucible.test/hold)"),
        "{screen}"
    );
    assert!(
        screen.contains("; 1 still terminating when the wait ended"),
        "{screen}"
    );
    let free = serde_json::json!({"metadata": {"finalizers": null}});
    ns.pods()
        .patch(
            "stuck-1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&free),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn each_watch_cycle_has_a_timestamped_header_and_an_idle_one_is_one_line() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(&BarePod::succeeded("p").evaluation("e1").test_id("t1"))
        .await;
    let args = [
        "-n",
        ns.name(),
        "--test-id",
        "t1",
        "--yes",
        "--watch=poll",
        "--interval",
        "1s",
    ];
    let mut child = ns.plugin().args(args).spawn();
    let mut lines = vec![];
    // Polling, every cycle prints a line at least: a bounded read, never a
    // hang. (The event-driven watch prints only reconciles that did
    // something, under the same header.)
    while !lines.iter().any(|l: &String| l.starts_with("cycle 2 at ")) {
        match child.stdout_line() {
            Some(l) if lines.len() < 12 => lines.push(l),
            _ => panic!("no second cycle's line: {lines:?}"),
        }
    }
    child.signal("TERM");
    let out = child.wait(std::time::Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let name = ns.name();
    let at = |l: &str, prefix: &str| -> bool {
        // `cycle N at 2026-01-01T00:00:00Z`
        l.strip_prefix(prefix)
            .and_then(|rest| rest.get(..20))
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
    };
    assert!(at(&lines[0], "cycle 1 at "), "{lines:?}");
    assert!(lines[0].ends_with("Z:"), "{lines:?}");
    assert!(lines[1].starts_with("KIND "), "{lines:?}");
    assert!(lines[2].starts_with("Pod "), "{lines:?}");
    assert!(lines[3].starts_with("deleted 1,"), "{lines:?}");
    assert_eq!(lines.len(), 5, "the idle cycle is one line: {lines:?}");
    assert!(at(&lines[4], "cycle 2 at "), "{lines:?}");
    assert!(
        lines[4].ends_with(&format!(
            "Z: nothing to delete in namespace {name} (0 matched; 0 kept, 0 skipped)"
        )),
        "{lines:?}"
    );
}
