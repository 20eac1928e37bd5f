//! Picking by hand (`-i`) against the local control plane, on a
//! pseudo-terminal: the list of planned deletes, all ticked and grouped by
//! test run; what a person unticks is kept ("deselected"); `q` and Ctrl-C at
//! the list delete nothing; without a terminal `-i` is refused.

mod support;

use std::time::Duration;

use support::{audit::*, commands::*, objects::*, terminal::*};

/// Five finished pods of two test runs, created one after the other so that
/// the list's order within a run is their creation order.
async fn five(ns: &TestNamespace) {
    for (name, run) in [
        ("a-1", "run-a"),
        ("a-2", "run-a"),
        ("a-3", "run-a"),
        ("b-1", "run-b"),
        ("b-2", "run-b"),
    ] {
        ns.create_pod(&BarePod::succeeded(name).evaluation(name).test_id(run))
            .await;
    }
}

const LIST: &str = "Delete which of 5 objects";

#[tokio::test(flavor = "multi_thread")]
async fn untick_two_of_five_and_exactly_three_go() {
    let ns = TestNamespace::for_current_test().await;
    five(&ns).await;
    let args = [
        "-n",
        ns.name(),
        "--test-id",
        "run-a",
        "--test-id",
        "run-b",
        "-i",
        "-o",
        "json",
    ];
    // Down one row and untick (a-2), down two and untick (b-1), then Enter.
    let (code, screen) = on_a_terminal_until(&ns, &args, LIST, "j jj \r", || async {
        // Longer than the gate's five seconds: the plan is read again before
        // deleting, and what was unticked must stay unticked.
        tokio::time::sleep(Duration::from_secs(6)).await;
    })
    .await;
    assert_eq!(code, 0, "{screen}");
    // Grouped by test run, with phase and age.
    let at = |s: &str| {
        screen
            .find(s)
            .unwrap_or_else(|| panic!("{s:?} not shown: {screen}"))
    };
    assert!(
        at("run-a   pod/a-1   Succeeded") < at("run-a   pod/a-3"),
        "{screen}"
    );
    assert!(at("run-a   pod/a-3") < at("run-b   pod/b-1"), "{screen}");
    assert!(
        screen.contains("3 of 5 ticked; 2 kept (deselected)"),
        "{screen}"
    );
    assert_eq!(
        screen.matches("\"reason\": \"deselected\"").count(),
        2,
        "{screen}"
    );
    assert_eq!(ns.pod_names().await, ["a-2", "b-1"]);
    let deletes: Vec<String> = ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .iter()
        .map(|e| format!("{} {}", e.verb, e.name()))
        .collect();
    assert_eq!(deletes.len(), 3, "{deletes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn q_or_ctrl_c_at_the_list_deletes_nothing() {
    let ns = TestNamespace::for_current_test().await;
    five(&ns).await;
    let args = [
        "-n",
        ns.name(),
        "--test-id",
        "run-a",
        "--test-id",
        "run-b",
        "-i",
    ];
    let (code, screen) = on_a_terminal_until(&ns, &args, LIST, "q", || async {}).await;
    assert_eq!(code, 3, "{screen}");
    assert!(screen.contains("aborted: nothing deleted"), "{screen}");
    assert!(!screen.contains("error:"), "a no is an answer: {screen}");
    assert!(
        screen.contains("esc: abort, delete nothing"),
        "the hint says what Esc does: {screen}"
    );
    // Ctrl-C: the list reads it as a key and raises the signal too; one
    // message either way, exit 130, nothing sent.
    let (code, screen) = on_a_terminal_until(&ns, &args, LIST, "\x03", || async {}).await;
    assert_eq!(code, 130, "{screen}");
    assert_eq!(screen.matches("interrupted").count(), 1, "{screen}");
    assert!(screen.contains("interrupted: nothing deleted"), "{screen}");
    assert!(!screen.contains("error:"), "{screen}");
    assert_eq!(ns.pod_names().await, ["a-1", "a-2", "a-3", "b-1", "b-2"]);
    assert!(ns
        .mutating_requests(&AuditFilter::plugin())
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_interactive_is_refused_before_any_request() {
    let ns = TestNamespace::for_current_test().await;
    five(&ns).await;
    let offset = audit_offset();
    for stdin in [None, Some("y\n")] {
        let mut cmd = ns.plugin();
        cmd.args(["-n", ns.name(), "--test-id", "run-a", "-i"]);
        if let Some(input) = stdin {
            cmd.write_stdin(input);
        }
        let out = cmd.output();
        assert_eq!(code(&out), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("error: --interactive needs a terminal"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // Not a single request for the namespace reached the API server, reads included.
    audit_barrier().await;
    let log = support::cluster::cluster().audit_log();
    let requests: Vec<AuditEvent> = read_audit_log(&log, offset, ns.name())
        .into_iter()
        .filter(|e| e.user_agent.starts_with(PLUGIN_USER_AGENT) && e.namespace() == ns.name())
        .collect();
    assert!(requests.is_empty(), "{requests:?}");
    assert_eq!(ns.pod_names().await.len(), 5);
}
