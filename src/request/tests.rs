use super::*;
use crate::cli::WatchMode;
use clap::Parser;

fn req(args: &[&str]) -> Result<Request> {
    let mut argv = vec!["kubectl-crucible-clean"];
    argv.extend_from_slice(args);
    Request::from_cli(&Cli::try_parse_from(argv).unwrap())
}

fn usage_message(args: &[&str]) -> String {
    match req(args) {
        Err(Error::Usage(m)) => m,
        other => panic!("expected a usage error for {args:?}, got {other:?}"),
    }
}

#[test]
fn no_selection_is_refused_with_what_to_add() {
    let m = usage_message(&[]);
    assert!(
        m.contains("--test-id") && m.contains("--older-than") && m.contains("--all"),
        "{m}"
    );
    assert!(usage_message(&["-n", "crucible", "--level", "all"]).starts_with("no selection"));
}

#[test]
fn protected_and_malformed_namespaces_are_refused() {
    for ns in ["kube-system", "kube-public", "kube-node-lease"] {
        assert!(usage_message(&["-n", ns, "--all"]).contains("protected"));
    }
    assert!(usage_message(&["-n", "Bad_NS", "--all"]).contains("invalid namespace"));
    assert!(usage_message(&["-n", "x", "-A", "--all"]).contains("exclude"));
    assert_eq!(
        req(&["--all"]).unwrap().scope,
        Scope::Namespace("crucible".into())
    );
    assert_eq!(req(&["-A", "--all"]).unwrap().scope, Scope::AllNamespaces);
}

#[test]
fn bad_selector_and_ids_are_usage_errors() {
    assert!(usage_message(&["-l", "app in (x", "--all"]).contains("-l/--selector"));
    assert!(usage_message(&["--test-id", "has space"]).contains("--test-id"));
    assert!(usage_message(&["--test-id", ""]).contains("non-empty"));
}

#[test]
fn an_empty_selector_is_refused() {
    for sel in ["", "   "] {
        let m = usage_message(&["-l", sel, "--all"]);
        assert!(m.contains("empty") && m.contains("every object"), "{m}");
    }
}

#[test]
fn grace_period_zero_is_refused() {
    assert!(usage_message(&["--all", "--grace-period", "0"]).contains("force-delete"));
    assert_eq!(
        req(&["--all", "--grace-period", "1"]).unwrap().grace_period,
        Some(1)
    );
}

#[test]
fn modes_and_waits() {
    assert_eq!(req(&["--all"]).unwrap().mode, Mode::Apply);
    assert_eq!(
        req(&["--all", "--dry-run"]).unwrap().mode,
        Mode::DryRunClient
    );
    assert_eq!(
        req(&["--all", "--dry-run=server"]).unwrap().mode,
        Mode::DryRunServer
    );
    assert_eq!(
        req(&["--all", "--wait", "--timeout", "30s"]).unwrap().wait,
        Some(Duration::from_secs(30))
    );
    assert!(usage_message(&["--all", "--timeout", "30s"]).contains("without --wait"));
    assert_eq!(
        req(&["--all", "--wait"]).unwrap().wait,
        Some(DEFAULT_WAIT_TIMEOUT)
    );
    let timeout = |args: &[&str]| req(args).unwrap().connection.request_timeout;
    assert_eq!(timeout(&["--all", "--request-timeout", "0"]), None);
    assert_eq!(timeout(&["--all"]), Some(DEFAULT_REQUEST_TIMEOUT));
    assert_eq!(
        timeout(&["--all", "--request-timeout", "5"]),
        Some(Duration::from_secs(5)),
        "a bare number is seconds, as kubectl's"
    );
}

#[test]
fn a_policy_file_is_a_selection_and_its_errors_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    let p = path.to_str().unwrap();
    std::fs::write(
        &path,
        "rules:\n  - name: a\n    selector: test-id\n    olderThan: 1h\n",
    )
    .unwrap();
    let r = req(&["--policy", p]).unwrap();
    assert_eq!(r.strategy, Strategy::Policy);
    assert_eq!(r.policy.unwrap().rules[0].params.strategy, Strategy::Age);
    std::fs::write(
        &path,
        "rules:\n  - name: a\n    selector: test-id\n    keepLast: many\n",
    )
    .unwrap();
    let m = usage_message(&["--policy", p]);
    assert!(
        m.contains("line 4") && m.contains("rules[0].keepLast"),
        "{m}"
    );
    assert!(
        usage_message(&["--policy", "/nonexistent/p.yaml"]).starts_with("cannot read policy file")
    );
}

fn interval_of(args: &[&str]) -> Result<Option<Duration>> {
    watch_of(args).map(|w| w.map(|w| w.interval))
}

fn watch_of(args: &[&str]) -> Result<Option<watch::Watch>> {
    let mut argv = vec!["x", "--all"];
    argv.extend_from_slice(args);
    watch::watch(&Cli::try_parse_from(argv).unwrap())
}

#[test]
fn watch_needs_yes_and_interval_needs_watch() {
    assert!(interval_of(&["--watch"])
        .unwrap_err()
        .to_string()
        .contains("add --yes"));
    assert_eq!(
        watch_of(&["--watch", "--yes"]).unwrap(),
        Some(watch::Watch {
            mode: WatchMode::Event,
            interval: watch::DEFAULT_RELIST
        })
    );
    assert_eq!(
        watch_of(&["--watch=poll", "--yes"]).unwrap(),
        Some(watch::Watch {
            mode: WatchMode::Poll,
            interval: watch::DEFAULT_POLL
        })
    );
    assert_eq!(
        interval_of(&["--watch", "--yes", "--interval", "30s"]).unwrap(),
        Some(Duration::from_secs(30))
    );
    assert!(interval_of(&["--watch", "--dry-run"]).unwrap().is_some());
    assert_eq!(interval_of(&[]).unwrap(), None);
    assert_eq!(
        interval_of(&["--interval", "30s"]).unwrap_err().to_string(),
        "--interval needs --watch"
    );
    assert!(interval_of(&["--watch", "--yes", "--interval", "0"])
        .unwrap_err()
        .to_string()
        .contains("more than 0"));
    let stale = |mode: &str| {
        let mut argv = vec!["x", "--stale-runs", "--yes"];
        argv.push(mode);
        watch::watch(&Cli::try_parse_from(argv).unwrap())
    };
    assert!(stale("--watch")
        .unwrap_err()
        .to_string()
        .contains("--watch=poll"));
    assert!(stale("--watch=poll").unwrap().is_some());
}

#[test]
fn plan_files_and_picking_refuse_what_would_do_nothing_or_contradict() {
    let r = req(&["--from-plan", "p.json", "--yes", "-n", "team-a"]).unwrap();
    assert!(!r.include_running);
    // The one selection flag a plan takes: its unfinished objects go only
    // when the command line applying it says so.
    let running = req(&["--from-plan", "p.json", "--include-running"]).unwrap();
    assert!(running.include_running);
    let from = r.from_plan.unwrap();
    assert_eq!(from.max_age, plans::DEFAULT_PLAN_MAX_AGE);
    assert_eq!(r.scope, Scope::Namespace("team-a".into()));
    for flag in [
        &["--test-id", "t"][..],
        &["--all"],
        &["-l", "app=evaluation"],
        &["--level", "pods"],
        &["--older-than", "1h"],
        &["--strategy", "label"],
        &["--keep-last", "1"],
    ] {
        let mut args = vec!["--from-plan", "p.json"];
        args.extend_from_slice(flag);
        let m = usage_message(&args);
        assert!(
            m.contains(flag[0]) && m.contains("cannot be combined with --from-plan"),
            "{m}"
        );
    }
    for (args, says) in [
        (&["--all", "--plan-max-age", "1h"][..], "--from-plan"),
        (&["--from-plan", "p", "--plan-max-age", "0s"], "more than 0"),
        (&["--from-plan", "p", "--watch", "--yes"], "--watch"),
        (
            &["--from-plan", "p", "--save-plan", "q", "--dry-run"],
            "--save-plan",
        ),
        (&["--all", "--save-plan", "q"], "--dry-run"),
        (
            &["--all", "--save-plan", "q", "--dry-run", "--watch"],
            "--watch",
        ),
        (&["--all", "-i", "--yes"], "--yes"),
        (&["--all", "-i", "--dry-run"], "--dry-run"),
    ] {
        let m = usage_message(args);
        assert!(m.contains(says), "{args:?}: {m}");
    }
    let r = req(&["--all", "--save-plan", "q.json", "--dry-run=server"]).unwrap();
    assert_eq!(r.save_plan.as_deref(), Some(std::path::Path::new("q.json")));
    assert!(req(&["--all", "-i"]).unwrap().interactive);
    assert!(req(&["--from-plan", "p", "-i", "--dry-run"]).is_err());
    assert!(req(&["--from-plan", "p", "-i", "--max-delete", "3"]).is_ok());
}
