//! `select` and the plan end to end for the budgeted strategies, retention
//! and policies.

use crate::cli::Cli;
use crate::cli::Strategy;
use crate::model::fixtures::*;
use crate::model::Inventory;
use crate::model::{Phase, Quota};
use crate::plan::{plan_with, Action};
use crate::request::Request;
use crate::select::{select, Criterion, Selection};
use clap::Parser;

fn req(args: &[&str]) -> Request {
    let mut argv = vec!["x"];
    argv.extend_from_slice(args);
    Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
}

fn with_policy(mut r: Request, yaml: &str) -> Request {
    r.policy = Some(
        crate::request::policy::parse("p.yaml", yaml, &crate::request::policy::Partial::default())
            .unwrap(),
    );
    r.strategy = Strategy::Policy;
    r
}

fn rows(sel: &Selection) -> Vec<(String, Vec<Criterion>)> {
    let mut v: Vec<(String, Vec<Criterion>)> = sel
        .selected
        .iter()
        .map(|s| (s.candidate.name.to_string(), s.matched_by.iter().collect()))
        .collect();
    v.sort();
    v
}

/// Ten finished pods p0..p9 (p0 oldest, created at 0..900), test runs a
/// (p0-p4) and b (p5-p9), and a count/pods quota of 10 with 9 used.
fn ten() -> Inventory {
    let pods = (0..10)
        .map(|i| {
            with_test(
                pod(
                    &format!("p{i}"),
                    if i % 2 == 0 {
                        Phase::Succeeded
                    } else {
                        Phase::Failed
                    },
                    i * 100,
                ),
                if i < 5 { "a" } else { "b" },
            )
        })
        .map(std::sync::Arc::new)
        .collect();
    Inventory {
        pods,
        quotas: vec![quota("objects", &[("count/pods", 10.0, 9.0)])],
        taken_at: t(1000),
        ..Default::default()
    }
}

#[test]
fn hybrid_rows_list_every_rule_that_picked_them() {
    let inv = ten();
    // label: run b (p5-p9); age: created ≥ 750s ago (p0-p2); watermark: 9 → 5 (p0-p3).
    let r = req(&[
        "--strategy",
        "hybrid",
        "--test-id",
        "b",
        "--older-than",
        "750s",
        "--high-watermark",
        "0.8",
    ]);
    assert_eq!(
        crate::select::server_selector(&r).to_string(),
        "app=evaluation",
        "hybrid must not narrow the LIST by ids"
    );
    let sel = select(&r, &inv).unwrap();
    use Criterion::*;
    assert_eq!(
        rows(&sel),
        [
            ("p0".into(), vec![Age, Watermark]),
            ("p1".into(), vec![Age, Watermark]),
            ("p2".into(), vec![Age, Watermark]),
            ("p3".into(), vec![Watermark]),
            ("p5".into(), vec![Label]),
            ("p6".into(), vec![Label]),
            ("p7".into(), vec![Label]),
            ("p8".into(), vec![Label]),
            ("p9".into(), vec![Label]),
        ]
    );
    assert_eq!(sel.decisions.len(), 1);
    assert_eq!(sel.decisions[0].targets[0].planned, 4.0);
}

#[test]
fn watermark_without_a_budget_is_a_usage_error_naming_both_fixes() {
    let mut inv = ten();
    inv.quotas.clear();
    let e = select(&req(&["--strategy", "watermark"]), &inv).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let m = e.to_string();
    assert!(
        m.contains("no ResourceQuota on count/pods") && m.contains("--capacity N"),
        "{m}"
    );
    // The stand-in budget the inventory adds for --capacity works like a quota.
    inv.quotas.push(Quota::capacity("crucible", 10, 10));
    let sel = select(&req(&["--strategy", "watermark", "--capacity", "10"]), &inv).unwrap();
    assert_eq!(sel.selected.len(), 5);
    assert!(
        sel.decisions[0]
            .message
            .contains("--capacity 10 is 10/10 (100%)"),
        "{}",
        sel.decisions[0].message
    );
}

#[test]
fn keep_last_protects_the_newest_of_each_run_and_watermark_walks_past_them() {
    let inv = ten();
    let r = req(&[
        "--strategy",
        "watermark",
        "--keep-last",
        "4",
        "--low-watermark",
        "0.2",
    ]);
    let sel = select(&r, &inv).unwrap();
    // Held: p1-p4 (run a) and p6-p9 (run b). Deletable: p0, p5. 9 → 2 needs 7.
    let p = plan_with(sel.selected, &inv, &sel.guards);
    let deleted: Vec<&str> = p.to_delete().map(|i| &*i.candidate.name).collect();
    assert_eq!(deleted, ["p0", "p5"]);
    let skipped: Vec<(&str, &str)> = p
        .items
        .iter()
        .filter(|i| i.action == Action::Skip)
        .map(|i| (&*i.candidate.name, i.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 8);
    assert_eq!(
        skipped[0],
        (
            "p1",
            "one of the 4 newest finished pods of test run a (--keep-last 4)"
        )
    );
    assert_eq!(sel.decisions[0].targets[0].shortfall, 5.0);
}

#[test]
fn label_and_age_strategies_honour_retention_too() {
    let inv = ten();
    let r = req(&[
        "--test-id",
        "a",
        "--keep-failed-for",
        "750s",
        "--keep-last",
        "1",
    ]);
    let sel = select(&r, &inv).unwrap();
    let p = plan_with(sel.selected, &inv, &sel.guards);
    let got: Vec<(&str, Action)> = p
        .items
        .iter()
        .map(|i| (&*i.candidate.name, i.action))
        .collect();
    // p4 newest of run a; p1 and p3 failed less than 750s before now (they
    // finished at 110 and 310: 890s and 690s ago) → only p3 is young enough.
    assert_eq!(
        got,
        [
            ("p0", Action::Delete),
            ("p1", Action::Delete),
            ("p2", Action::Delete),
            ("p3", Action::Skip),
            ("p4", Action::Skip)
        ]
    );
}

#[test]
fn policy_rules_govern_what_they_match_first_with_priorities() {
    let mut inv = ten();
    inv.pods[0] = labelled((*inv.pods[0]).clone(), "crucible-clean/priority", "high").into();
    let r = with_policy(
        req(&["--all"]),
        "priorities: {high: 4}\n\
         rules:\n\
         - name: run-a\n  selector: test-id=a\n  olderThan: 250s\n\
         - name: everything\n  selector: app=evaluation\n  strategy: watermark\n  lowWatermark: 0.7\n",
    );
    let sel = select(&r, &inv).unwrap();
    use Criterion::*;
    // run-a: older than 250s → p0..p7 of which run a: p0-p4 created ≤ 750 → p0..p4 (p0 needs 1000s: exactly 1000 → ok).
    // everything (run b, watermark 9 → 7): the two oldest of run b, p5 and p6.
    assert_eq!(
        rows(&sel),
        [
            ("p0".into(), vec![Age, All]),
            ("p1".into(), vec![Age, All]),
            ("p2".into(), vec![Age, All]),
            ("p3".into(), vec![Age, All]),
            ("p4".into(), vec![Age, All]),
            ("p5".into(), vec![Watermark]),
            ("p6".into(), vec![Watermark]),
        ]
    );
    assert_eq!(sel.decisions[0].rule.as_deref(), Some("everything"));
    // The high priority multiplies p0's 250s by 4: 1000s, and it is 1000s old.
    let mut inv2 = ten();
    inv2.taken_at = t(999);
    inv2.pods[0] = labelled((*inv2.pods[0]).clone(), "crucible-clean/priority", "high").into();
    let sel = select(&r, &inv2).unwrap();
    assert!(!sel.selected.iter().any(|s| &*s.candidate.name == "p0"));
    // --watch's timer: the next object to cross its rule is p0, at 1000s
    // (its 250s times 4); the others of run-a crossed it long ago.
    assert_eq!(crate::select::next_change(&r, &inv2), Some(t(1000)));
}

#[test]
fn pressure_reports_why_it_does_nothing() {
    let mut inv = ten();
    inv.quotas = vec![quota("compute", &[("pods", 10.0, 10.0)])];
    let sel = select(&req(&["--strategy", "pressure"]), &inv).unwrap();
    assert!(sel.selected.is_empty());
    assert!(
        sel.decisions[0]
            .message
            .contains("pods of quota compute is 10/10 (100%) counts non-terminal pods only"),
        "{}",
        sel.decisions[0].message
    );
    inv.quotas = vec![quota("objects", &[("count/pods", 10.0, 9.0)])];
    let sel = select(
        &req(&["--strategy", "pressure", "--prefer", "failed"]),
        &inv,
    )
    .unwrap();
    assert_eq!(
        rows(&sel),
        [
            ("p1".into(), vec![Criterion::Pressure]),
            ("p3".into(), vec![Criterion::Pressure])
        ]
    );
}
