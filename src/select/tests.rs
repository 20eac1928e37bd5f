use super::*;
use crate::cli::Cli;
use crate::model::fixtures::*;
use crate::model::Phase;
use clap::Parser;

fn req(args: &[&str]) -> Request {
    let mut argv = vec!["x"];
    argv.extend_from_slice(args);
    Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
}

fn pick<'a>(r: &Request, inv: &'a Inventory) -> Vec<Selected<'a>> {
    select(r, inv).unwrap().selected
}

fn names(sel: &[Selected]) -> Vec<String> {
    let mut v: Vec<String> = sel.iter().map(|s| s.candidate.name.to_string()).collect();
    v.sort();
    v
}

fn inventory() -> Inventory {
    let j1 = with_test(job("job-a", Phase::Complete, 0), "t1");
    let j2 = with_test(job("job-b", Phase::Active, 500), "t2");
    Inventory {
        pods: shared(vec![
            owned_by(with_test(pod("pod-a", Phase::Succeeded, 10), "t1"), &j1),
            owned_by(with_test(pod("pod-b", Phase::Failed, 510), "t2"), &j2),
            with_test(pod("bare-t1", Phase::Failed, 900), "t1"),
            pod("leftover", Phase::Succeeded, 100),
        ]),
        owners: [
            (j1.uid.to_string(), OwnerState::Finished),
            (j2.uid.to_string(), OwnerState::Unfinished),
        ]
        .into(),
        jobs: shared(vec![j1, j2]),
        quotas: vec![],
        taken_at: t(1000),
        ..Default::default()
    }
}

#[test]
fn label_rule_picks_one_test_run() {
    let inv = inventory();
    let sel = pick(&req(&["--test-id", "t1"]), &inv);
    assert_eq!(names(&sel), ["bare-t1", "pod-a"]);
    assert!(sel.iter().all(|s| s.matched_by == [Criterion::Label]));
    assert_eq!(
        names(&pick(&req(&["--test-id", "t1", "--level", "jobs"]), &inv)),
        ["job-a"]
    );
    assert_eq!(
        names(&pick(&req(&["--test-id", "t1", "--level", "all"]), &inv)),
        ["bare-t1", "job-a"]
    );
    assert!(pick(&req(&["--test-id", "t1", "--level", "none"]), &inv).is_empty());
    assert_eq!(
        names(&pick(&req(&["--test-id", "t1", "--test-id", "t2"]), &inv)),
        ["bare-t1", "pod-a", "pod-b"]
    );
    assert_eq!(
        names(&pick(&req(&["--eval-id", "nope"]), &inv)),
        Vec::<String>::new()
    );
}

#[test]
fn age_rule_measures_from_creation_or_finish() {
    let inv = inventory();
    // now = 1000; created 10 → 990s old, finished 20 → 980s old.
    assert_eq!(
        names(&pick(&req(&["--older-than", "895s"]), &inv)),
        ["leftover", "pod-a"]
    );
    assert_eq!(
        names(&pick(&req(&["--older-than", "490s"]), &inv)),
        ["leftover", "pod-a", "pod-b"]
    );
    assert_eq!(
        names(&pick(&req(&["--older-than", "491s"]), &inv)),
        ["leftover", "pod-a"]
    );
    assert_eq!(
        names(&pick(&req(&["--older-than", "985s"]), &inv)),
        ["pod-a"]
    );
    assert_eq!(
        names(&pick(
            &req(&["--older-than", "985s", "--age-from", "finished"]),
            &inv
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&pick(
            &req(&["--older-than", "980s", "--age-from", "finished"]),
            &inv
        )),
        ["pod-a"]
    );
}

#[test]
fn label_and_age_together_must_both_hold() {
    let inv = inventory();
    let sel = pick(&req(&["--test-id", "t1", "--older-than", "500s"]), &inv);
    assert_eq!(names(&sel), ["pod-a"]);
    assert_eq!(sel[0].matched_by, [Criterion::Label, Criterion::Age]);
}

#[test]
fn base_selector_is_checked_client_side_too() {
    let mut inv = inventory();
    std::sync::Arc::make_mut(&mut inv.pods[3]).labels.clear();
    assert_eq!(
        names(&pick(&req(&["--all"]), &inv)),
        ["bare-t1", "pod-a", "pod-b"]
    );
}

#[test]
fn level_all_treats_pods_of_vanished_jobs_as_bare() {
    let mut inv = inventory();
    let ghost = job("ghost", Phase::Complete, 0);
    inv.pods
        .push(owned_by(pod("orphan", Phase::Succeeded, 0), &ghost).into());
    inv.owners.insert(ghost.uid.to_string(), OwnerState::Gone);
    assert_eq!(
        names(&pick(&req(&["--all", "--level", "all"]), &inv)),
        ["bare-t1", "job-a", "job-b", "leftover", "orphan"]
    );
}

// What the request must give each strategy, and the selector it sends:
// `Request::from_cli` then `validate`, as `pipeline::run` does.

fn checked(args: &[&str]) -> Result<Request> {
    let mut argv = vec!["kubectl-crucible-clean"];
    argv.extend_from_slice(args);
    let r = Request::from_cli(&Cli::try_parse_from(argv).unwrap())?;
    validate(&r)?;
    Ok(r)
}

fn usage_message(args: &[&str]) -> String {
    match checked(args) {
        Err(Error::Usage(m)) => m,
        other => panic!("expected a usage error for {args:?}, got {other:?}"),
    }
}

#[test]
fn strategy_is_inferred() {
    assert_eq!(
        checked(&["--test-id", "t1"]).unwrap().strategy,
        Strategy::Label
    );
    assert_eq!(
        checked(&["--older-than", "1h"]).unwrap().strategy,
        Strategy::Age
    );
    assert_eq!(
        checked(&["--eval-id", "e", "--older-than", "1h"])
            .unwrap()
            .strategy,
        Strategy::Label
    );
    assert_eq!(checked(&["--all"]).unwrap().strategy, Strategy::Label);
    assert_eq!(
        checked(&["--strategy", "age", "--older-than", "5m", "--test-id", "x"])
            .unwrap()
            .strategy,
        Strategy::Age
    );
    assert!(usage_message(&["--strategy", "age", "--test-id", "x"]).contains("--older-than"));
    assert!(usage_message(&["--strategy", "label", "--older-than", "1h"]).contains("--test-id"));
}

#[test]
fn server_selector_narrows_by_ids() {
    let r = checked(&["--test-id", "a", "--test-id", "b", "--eval-id", "e1"]).unwrap();
    assert_eq!(
        server_selector(&r).to_string(),
        "app=evaluation,test-id in (a,b),eval-id in (e1)"
    );
    let r = checked(&["--older-than", "1h", "-l", "team=x"]).unwrap();
    assert_eq!(server_selector(&r).to_string(), "team=x");
}

#[test]
fn flags_without_effect_are_refused() {
    for (args, flag) in [
        (&["--test-id", "t", "--threshold", "0.5"][..], "--threshold"),
        (
            &["--test-id", "t", "--high-watermark", "0.9"][..],
            "--high-watermark",
        ),
        (
            &["--test-id", "t", "--low-watermark", "0.1"][..],
            "--low-watermark",
        ),
        (
            &["--older-than", "1h", "--prefer", "failed"][..],
            "--prefer",
        ),
        (&["--all", "--capacity", "10"][..], "--capacity"),
        (
            &["--strategy", "pressure", "--high-watermark", "0.9"][..],
            "--high-watermark",
        ),
        (
            &["--strategy", "watermark", "--threshold", "0.9"][..],
            "--threshold",
        ),
        (
            &["--test-id", "t", "--age-from", "finished"][..],
            "--age-from",
        ),
    ] {
        let m = usage_message(args);
        assert!(
            m.starts_with(flag) && m.contains("no effect"),
            "{args:?}: {m}"
        );
    }
    assert!(usage_message(&["--threshold", "0.5", "--all"]).contains("--strategy pressure"));
    assert!(usage_message(&["--older-than", "0"]).contains("more than 0"));
    assert!(usage_message(&["--older-than", "0s"]).contains("more than 0"));
    // Read by the strategy: accepted.
    checked(&[
        "--strategy",
        "pressure",
        "--threshold",
        "0.5",
        "--prefer",
        "failed",
    ])
    .unwrap();
    checked(&["--strategy", "hybrid", "--test-id", "t", "--capacity", "9"]).unwrap();
    checked(&["--older-than", "1h", "--age-from", "finished"]).unwrap();
}

#[test]
fn quota_strategies_and_their_checks() {
    assert_eq!(
        checked(&["--strategy", "pressure"]).unwrap().strategy,
        Strategy::Pressure
    );
    let w = checked(&["--strategy", "watermark", "--high-watermark", "0.9"]).unwrap();
    assert_eq!(
        (w.strategy, w.params.high_watermark, w.params.low_watermark),
        (Strategy::Watermark, 0.9, 0.5)
    );
    assert_eq!(
        usage_message(&[
            "--strategy",
            "watermark",
            "--high-watermark",
            "0.8",
            "--low-watermark",
            "0.9"
        ]),
        "--low-watermark (0.9) must be below --high-watermark (0.8)"
    );
    assert!(
        usage_message(&["--strategy", "pressure", "--threshold", "1.5"])
            .starts_with("--threshold (1.5)")
    );
    let h = checked(&[
        "--strategy",
        "hybrid",
        "--test-id",
        "r1",
        "--older-than",
        "15m",
        "--high-watermark",
        "0.7",
    ])
    .unwrap();
    assert_eq!(
        server_selector(&h).to_string(),
        "app=evaluation",
        "hybrid ids filter client-side only"
    );
    assert_eq!(h.criteria.test_ids, ["r1"]);
}
