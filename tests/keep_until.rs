//! `crucible-clean/keep-until`: `--mark-kept-for` writes it (the pytest
//! plugin's keep-failed), and every path of the binary honours it exactly as
//! the keep marker until its time (label, age, pressure, watermark, hybrid
//! and fallback; the job cascade both ways; `--from-plan`; the guard's reap
//! and `--stale-runs`), then treats the object as an ordinary leftover. A
//! time that does not parse keeps the object, with a warning naming it.
//! Against the local control plane.
//!
//! Longer than 500 lines because it is the one file of this guarantee: a
//! test per path the keep must hold in, sharing the shapes and the guard
//! helper; a second file would be a second test binary, built and linked
//! again with tests/support.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{commands::*, objects::*, wait::*};

const KEEP_UNTIL: &str = "crucible-clean/keep-until";
const KEEP_REASON: &str = "crucible-clean/keep-reason";
const RUN: &str = "crucible-clean/run";

/// The annotations of every pod and job of the namespace, by name.
async fn annotations(ns: &TestNamespace) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in ns.pods().list(&Default::default()).await.unwrap() {
        out.insert(
            p.metadata.name.clone().unwrap(),
            p.metadata.annotations.unwrap_or_default(),
        );
    }
    for j in ns.jobs().list(&Default::default()).await.unwrap() {
        out.insert(
            j.metadata.name.clone().unwrap(),
            j.metadata.annotations.unwrap_or_default(),
        );
    }
    out
}

fn seconds_from_now(rfc3339: &str) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 time");
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds()
}

#[tokio::test(flavor = "multi_thread")]
async fn marking_annotates_every_object_of_the_ids_in_every_phase_and_nothing_else() {
    let ns = TestNamespace::for_current_test().await;
    let done = EvalJob::succeeding(&format!("d{}", random_suffix(4))).test_id("t1");
    let running = EvalJob::running(&format!("r{}", random_suffix(4))).test_id("t1");
    let tracked = EvalJob::succeeding(&format!("e{}", random_suffix(4)));
    let other = EvalJob::succeeding(&format!("o{}", random_suffix(4))).test_id("t2");
    for j in [&done, &running, &tracked, &other] {
        ns.create_job(j).await;
    }
    ns.create_pod(
        &BarePod::failed("bare-failed")
            .evaluation("bf")
            .test_id("t1"),
    )
    .await;
    ns.create_pod(
        &BarePod::running("bare-running")
            .evaluation("br")
            .test_id("t1"),
    )
    .await;
    ns.create_pod(&BarePod::succeeded("decoy").evaluation("dc").test_id("t10"))
        .await;
    ns.wait_job_complete(&done.name()).await;
    ns.wait_job_complete(&tracked.name()).await;
    ns.wait_job_complete(&other.name()).await;
    ns.wait_job_pods_phase(&running.name(), "Running").await;

    // A dry run writes nothing.
    let (code, r, err) = ns.run_json(&["--test-id", "t1", "--mark-kept-for", "2h", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["kind"], "KeepReport");
    assert!(r["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["result"] == "wouldMark"));
    assert!(annotations(&ns)
        .await
        .values()
        .all(|a| !a.contains_key(KEEP_UNTIL)));

    let (code, r, err) = ns.run_json(&[
        "--test-id",
        "t1",
        "--mark-kept-for",
        "2h",
        "--keep-reason",
        "tests/test_x.py::test_y[a b]",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    let marked: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["result"] == "marked")
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    // Both jobs of t1, their pods (their template carries the test id), both bare pods.
    assert_eq!(marked.len(), 6, "{r}");
    let all = annotations(&ns).await;
    for (name, a) in &all {
        let ours = name.starts_with(&done.name())
            || name.starts_with(&running.name())
            || name.starts_with("bare-");
        assert_eq!(a.contains_key(KEEP_UNTIL), ours, "{name}: {a:?}");
        if ours {
            let left = seconds_from_now(&a[KEEP_UNTIL]);
            assert!((7100..=7200).contains(&left), "{name}: {left}");
            assert_eq!(a[KEEP_REASON], "tests/test_x.py::test_y[a b]");
            assert!(marked.contains(&name.as_str()), "{name}");
        }
    }

    // By evaluation id: the tracked job and its pod.
    let (code, r, err) = ns.run_json(&[
        "--eval-id",
        &tracked.eval_id,
        "--mark-kept-for",
        "1h",
        "--yes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["summary"]["marked"], 2, "{r}");
    let a = &annotations(&ns).await[&tracked.name()];
    assert!((3500..=3600).contains(&seconds_from_now(&a[KEEP_UNTIL])));
    assert!(!a.contains_key(KEEP_REASON));

    // Marking again replaces the time (0: the keep ends now) and drops an old reason.
    let (code, _, err) = ns.run_json(&["--test-id", "t1", "--mark-kept-for", "0", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let a = &annotations(&ns).await["bare-failed"];
    assert!(seconds_from_now(&a[KEEP_UNTIL]) <= 0);
    assert!(!a.contains_key(KEEP_REASON), "{a:?}");

    // -o name: what was marked, as kubectl names it.
    let out = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "--eval-id",
            "bf",
            "--mark-kept-for",
            "1h",
            "-o",
            "name",
            "--yes",
        ])
        .output();
    assert_eq!(stdout(&out), "pod/bare-failed\n");
}

#[test]
fn marking_refuses_what_would_widen_or_delete() {
    for (args, message) in [
        (&["--mark-kept-for", "1h"][..], "add --test-id ID"),
        (&["--mark-kept-for", "1h", "--all"], "add --test-id ID"),
        (
            &[
                "--mark-kept-for",
                "1h",
                "--test-id",
                "t",
                "--older-than",
                "1h",
            ],
            "--older-than does not combine",
        ),
        (
            &["--mark-kept-for", "soon", "--test-id", "t"],
            "invalid duration",
        ),
        (
            &["--keep-reason", "x", "--test-id", "t"],
            "--keep-reason needs --mark-kept-for",
        ),
    ] {
        let out = PluginCmd::new().args(args).output();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(message), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

fn in_seconds(secs: u64) -> String {
    rfc3339(SystemTime::now() + Duration::from_secs(secs))
}

fn seconds_ago(secs: u64) -> String {
    rfc3339(SystemTime::now() - Duration::from_secs(secs))
}

/// The four shapes: kept until an hour from now, kept until an hour ago (an
/// ordinary object), a time that does not parse, and no keep at all.
async fn four_pods(ns: &TestNamespace, test_id: Option<&str>) {
    let shapes = [
        ("future", Some(in_seconds(3600))),
        ("past", Some(seconds_ago(3600))),
        ("malformed", Some("tomorrow morning".to_string())),
        ("plain", None),
    ];
    for (name, until) in shapes {
        let mut p = BarePod::failed(name)
            .evaluation(&format!("e-{name}"))
            .finished_ago(Duration::from_secs(7200));
        if let Some(t) = test_id {
            p = p.test_id(t);
        }
        if let Some(u) = until {
            p = p.annotation(KEEP_UNTIL, &u);
        }
        ns.create_pod(&p).await;
    }
}

fn row<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {r}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_strategy_keeps_what_is_kept_until_a_time_to_come() {
    let runs: [(&str, Option<&str>, &[&str]); 6] = [
        ("label", Some("t1"), &["--test-id", "t1"]),
        ("age", Some("t1"), &["--older-than", "1s"]),
        (
            "pressure",
            Some("t1"),
            &[
                "--strategy",
                "pressure",
                "--capacity",
                "4",
                "--threshold",
                "0.2",
            ],
        ),
        (
            "watermark",
            Some("t1"),
            &[
                "--strategy",
                "watermark",
                "--capacity",
                "4",
                "--high-watermark",
                "0.5",
                "--low-watermark",
                "0.1",
            ],
        ),
        (
            "hybrid",
            Some("t1"),
            &[
                "--strategy",
                "hybrid",
                "--test-id",
                "t1",
                "--older-than",
                "1s",
            ],
        ),
        // Fallback takes objects without a test id by age.
        (
            "fallback",
            None,
            &["--strategy", "fallback", "--older-than", "1s"],
        ),
    ];
    for (strategy, test_id, args) in runs {
        let ns = TestNamespace::new(&format!("keep-until-{strategy}")).await;
        four_pods(&ns, test_id).await;
        tokio::time::sleep(Duration::from_secs(2)).await; // older than 1s
        let (code, r, err) = ns.run_json(&[args, &["--yes"][..]].concat());
        assert_eq!(code, 0, "{strategy}: {err}");
        assert_eq!(
            ns.pod_names().await,
            ["future", "malformed"],
            "{strategy}: {r}"
        );
        let future = row(&r, "future");
        assert_eq!(future["action"], "keep", "{strategy}: {future}");
        assert_eq!(future["result"], "kept", "{strategy}");
        assert!(
            future["reason"]
                .as_str()
                .unwrap()
                .starts_with("crucible-clean/keep-until=20"),
            "{strategy}: {future}"
        );
        let bad = row(&r, "malformed");
        assert_eq!(bad["result"], "kept", "{strategy}");
        assert!(bad["reason"]
            .as_str()
            .unwrap()
            .contains("not an RFC 3339 time"));
        assert!(
            err.contains(&format!(
                "warning: pod/malformed in namespace {}: annotation crucible-clean/keep-until=\"tomorrow morning\" is not an RFC 3339 time",
                ns.name()
            )),
            "{strategy}: {err}"
        );
        assert_eq!(err.matches("warning: pod/malformed").count(), 1, "{err}");
        for gone in ["past", "plain"] {
            assert_eq!(row(&r, gone)["result"], "deleted", "{strategy}: {gone}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_pod_keeps_its_job_and_a_kept_job_its_pods_until_their_time() {
    let ns = TestNamespace::for_current_test().await;
    let pod_kept = EvalJob::succeeding("podkept")
        .test_id("t1")
        .pod_annotation(KEEP_UNTIL, &in_seconds(3600));
    let job_kept = EvalJob::succeeding("jobkept")
        .test_id("t1")
        .annotation(KEEP_UNTIL, &in_seconds(3600));
    let expired = EvalJob::succeeding("expired")
        .test_id("t1")
        .annotation(KEEP_UNTIL, &seconds_ago(60))
        .pod_annotation(KEEP_UNTIL, &seconds_ago(60));
    let plain = EvalJob::succeeding("plain").test_id("t1");
    for j in [&pod_kept, &job_kept, &expired, &plain] {
        ns.create_job(j).await;
    }
    for j in [&pod_kept, &job_kept, &expired, &plain] {
        ns.wait_job_complete(&j.name()).await;
    }
    // --level pods: the kept job's pod stays with it.
    let (code, r, err) = ns.run_json(&["--test-id", "t1", "--level", "pods", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let pods_of = |job: &str| {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "Pod" && i["name"].as_str().unwrap().starts_with(job))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (held,) = match &pods_of(&job_kept.name())[..] {
        [p] => (p.clone(),),
        other => panic!("{other:?}"),
    };
    assert_eq!(held["result"], "kept", "{held}");
    let reason = held["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "its job {} is marked crucible-clean/keep-until=",
            job_kept.name()
        )),
        "{reason}"
    );
    // --level all: the job whose pod is kept stays, the expired and plain ones go.
    let (code, r, err) = ns.run_json(&["--test-id", "t1", "--level", "all", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let j = row(&r, &pod_kept.name());
    assert_eq!(j["result"], "kept", "{j}");
    assert!(
        j["reason"]
            .as_str()
            .unwrap()
            .starts_with("its pod evaluation-job-podkept-"),
        "{j}"
    );
    assert!(j["reason"]
        .as_str()
        .unwrap()
        .contains("is marked crucible-clean/keep-until="));
    assert_eq!(row(&r, &job_kept.name())["result"], "kept");
    assert_eq!(row(&r, &expired.name())["result"], "deleted");
    assert_eq!(row(&r, &plain.name())["result"], "deleted");
    ns.wait_job_gone(&expired.name()).await;
    ns.wait_job_gone(&plain.name()).await;
    assert_eq!(ns.job_names().await, [job_kept.name(), pod_kept.name()]);
    let pods = ns.pod_names().await;
    assert_eq!(pods.len(), 2, "{pods:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_file_leaves_what_was_kept_until_a_time_after_it_was_saved() {
    let ns = TestNamespace::for_current_test().await;
    for name in ["soon-kept", "kept-past", "plain"] {
        ns.create_pod(&BarePod::failed(name).evaluation(name).test_id("t1"))
            .await;
    }
    let plan = ns.home().join("plan.json");
    let plan_arg = plan.to_str().unwrap();
    let (code, _, err) = ns.run_json(&["--test-id", "t1", "--dry-run", "--save-plan", plan_arg]);
    assert_eq!(code, 0, "{err}");
    for (name, until) in [
        ("soon-kept", in_seconds(3600)),
        ("kept-past", seconds_ago(5)),
    ] {
        let patch = json!({"metadata": {"annotations": {KEEP_UNTIL: until}}});
        ns.pods()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    let (code, r, err) = ns.run_json(&["--from-plan", plan_arg, "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(row(&r, "soon-kept")["result"], "kept", "{r}");
    assert_eq!(row(&r, "kept-past")["result"], "deleted");
    assert_eq!(row(&r, "plain")["result"], "deleted");
    assert_eq!(ns.pod_names().await, ["soon-kept"]);
}

/// A `--guard` process whose stdin the test holds.
struct Guard {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
}

impl Guard {
    fn start(ns: &TestNamespace, run: &str, extra: &[&str]) -> Guard {
        let mut child = ns
            .plugin()
            .args(["-n", ns.name(), "-o", "json", "--guard", run])
            .args(extra)
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the guard");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
        });
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let g = Guard {
            child,
            stdin,
            stdout,
        };
        let line = g
            .stdout
            .recv_timeout(Duration::from_secs(30))
            .expect("the guard says ready within 30 s");
        assert_eq!(line, "ready");
        g
    }

    /// Closes stdin (as its parent's death does) and waits for the exit code.
    fn close_and_wait(mut self) -> Option<i32> {
        self.stdin.take();
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            if t0.elapsed() > Duration::from_secs(120) {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The run's objects: a running job and a bare pod kept until `until`, and
/// an ordinary running job and bare pod.
async fn run_objects(ns: &TestNamespace, run: &str, until: &str) {
    let kept = EvalJob::running(&format!("{run}-kept"))
        .label(RUN, run)
        .annotation(KEEP_UNTIL, until);
    let plain = EvalJob::running(&format!("{run}-plain")).label(RUN, run);
    ns.create_job(&kept).await;
    ns.create_job(&plain).await;
    ns.create_pod(
        &BarePod::running(&format!("{run}-bare-kept"))
            .evaluation("b")
            .label(RUN, run)
            .annotation(KEEP_UNTIL, until),
    )
    .await;
    ns.create_pod(
        &BarePod::running(&format!("{run}-bare-plain"))
            .evaluation("c")
            .label(RUN, run),
    )
    .await;
    ns.wait_job_pods_phase(&kept.name(), "Running").await;
    ns.wait_job_pods_phase(&plain.name(), "Running").await;
}

async fn left_of(ns: &TestNamespace, run: &str) -> Vec<String> {
    let mut left: Vec<String> = ns.job_names().await;
    left.extend(ns.pod_names().await);
    let mut left: Vec<String> = left.into_iter().filter(|n| n.contains(run)).collect();
    left.sort();
    left
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guards_reap_leaves_what_is_kept_until_a_time_to_come() {
    let ns = TestNamespace::for_current_test().await;
    let g = Guard::start(&ns, "r1", &[]);
    run_objects(&ns, "r1", &in_seconds(3600)).await;
    assert_eq!(g.close_and_wait(), Some(0));
    poll_until(
        "the plain objects reaped",
        Duration::from_secs(60),
        || async {
            let left = left_of(&ns, "r1").await;
            if left.iter().any(|n| n.contains("plain")) {
                Err(format!("{left:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    let left = left_of(&ns, "r1").await;
    assert_eq!(
        left.len(),
        3,
        "the kept job, its pod and the kept bare pod: {left:?}"
    );
    assert!(left.iter().all(|n| n.contains("kept")), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_runs_leave_what_is_kept_until_its_time_then_take_it() {
    let ns = TestNamespace::for_current_test().await;
    let g = Guard::start(&ns, "r2", &["--lease-duration", "3s"]);
    let window = 25;
    run_objects(&ns, "r2", &in_seconds(window)).await;
    let marked_at = Instant::now();
    g.kill(); // the guard dies with its run: the Lease expires in 3 s
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (code, r, err) = ns.run_json(&["--stale-runs", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        marked_at.elapsed() < Duration::from_secs(window - 2),
        "the window ran out before the check (machine too slow)"
    );
    // The kept job (its pod goes or stays with it) and the kept bare pod.
    assert_eq!(r["summary"]["kept"], 2, "{r}");
    poll_until(
        "the plain objects deleted",
        Duration::from_secs(60),
        || async {
            let left = left_of(&ns, "r2").await;
            if left.iter().any(|n| n.contains("plain")) {
                Err(format!("{left:?}"))
            } else {
                Ok(())
            }
        },
    )
    .await;
    assert_eq!(left_of(&ns, "r2").await.len(), 3);
    // Past the window: ordinary objects of a stale run.
    tokio::time::sleep(Duration::from_secs(window).saturating_sub(marked_at.elapsed())).await;
    poll_until(
        "--stale-runs takes them past their time",
        Duration::from_secs(90),
        || async {
            let (code, _, err) = ns.run_json(&["--stale-runs", "--yes"]);
            let left = left_of(&ns, "r2").await;
            if code == 0 && left.is_empty() {
                Ok(())
            } else {
                Err(format!("exit {code}, left {left:?}: {err}"))
            }
        },
    )
    .await;
}
