use super::*;
use crate::model::fixtures::*;
use crate::model::{Inventory, Phase};
use crate::plan::plan;
use crate::select::{Criterion, Matched, Selected};

fn sample() -> Plan {
    let mut kept = with_test(pod("kept-pod", Phase::Succeeded, 5), "t1");
    kept.keep = crate::model::Keep::MARKED;
    let cands = [
        with_test(pod("pod-a", Phase::Succeeded, 0), "t1"),
        kept,
        job("job-x", Phase::Complete, 0),
    ];
    let inv = Inventory::default();
    let sel = cands
        .iter()
        .map(|c| Selected {
            candidate: c,
            matched_by: Matched::of(Criterion::Label),
        })
        .collect();
    plan(sel, &inv, false)
}

fn ctx(mode: Mode) -> Context<'static> {
    Context {
        namespace: Some("crucible"),
        context: "admin",
        cluster: Cluster {
            server: "https://127.0.0.1:6443/".into(),
            kube_system_uid: Some("ks-uid".into()),
        },
        mode,
        strategy: "label",
        selector: "app=evaluation".into(),
        now: t(3600),
    }
}

#[test]
fn table_looks_like_kubectl() {
    let r = build(sample(), &[], &ctx(Mode::DryRunClient));
    let out = render(&r, Output::Table);
    assert_eq!(
        out,
        "KIND   NAME    PHASE       AGE   TEST-ID   EVAL-ID   REASON\n\
             Job    job-x   Complete    60m   <none>    <none>    matched label\n\
             Pod    pod-a   Succeeded   60m   t1        <none>    matched label\n\
             dry run: would delete 2 objects in namespace crucible; 1 kept, 0 skipped\n"
    );
    let wide = render(&r, Output::Wide);
    assert!(wide.contains("kept: crucible-clean/keep=true"), "{wide}");
    assert!(wide.starts_with("NAMESPACE   KIND"), "{wide}");
    let all_ns = build(
        sample(),
        &[],
        &Context {
            namespace: None,
            ..ctx(Mode::DryRunClient)
        },
    );
    let out = render(&all_ns, Output::Table);
    assert!(out.starts_with("NAMESPACE   KIND   NAME"), "{out}");
    assert!(
        out.ends_with("dry run: would delete 2 objects in all namespaces; 1 kept, 0 skipped\n"),
        "{out}"
    );
}

#[test]
fn json_follows_the_documented_schema() {
    let p = sample();
    let results = vec![
        execute::Deletion {
            uid: "uid-job-x".into(),
            outcome: Outcome::Deleted,
            error: None,
            code: None,
        },
        execute::Deletion {
            uid: "uid-pod-a".into(),
            outcome: Outcome::Conflict,
            error: Some("uid mismatch".into()),
            code: Some(409),
        },
    ];
    let r = build(p.clone(), &results, &ctx(Mode::Apply));
    let v: serde_json::Value = serde_json::from_str(&render(&r, Output::Json)).unwrap();
    assert_eq!(v["apiVersion"], "crucible-clean/v1");
    assert_eq!(v["kind"], "CleanupReport");
    assert_eq!(v["dryRun"], false);
    assert_eq!(v["items"][0]["kind"], "Job");
    assert_eq!(v["items"][0]["result"], "deleted");
    assert_eq!(v["items"][1]["name"], "pod-a");
    assert_eq!(v["items"][1]["result"], "conflict");
    assert_eq!(v["items"][1]["error"], "uid mismatch");
    assert_eq!(v["items"][1]["testId"], "t1");
    assert_eq!(v["items"][1]["matchedBy"], serde_json::json!(["label"]));
    assert_eq!(v["items"][1]["createdAt"], "2027-01-15T08:00:00Z");
    assert_eq!(v["items"][1]["ageSeconds"], 3600);
    assert_eq!(v["items"][2]["action"], "keep");
    assert_eq!(
        v["summary"],
        serde_json::json!({"selected":3,"planned":2,"deleted":1,"wouldDelete":0,"gone":0,"conflict":1,"failed":0,"cancelled":0,"kept":1,"skipped":0})
    );
    let y = render(&r, Output::Yaml);
    assert!(
        y.starts_with("apiVersion: crucible-clean/v1\nkind: CleanupReport\n"),
        "{y}"
    );
}

#[test]
fn name_output_lists_only_deletions() {
    let r = build(sample(), &[], &ctx(Mode::DryRunClient));
    assert_eq!(render(&r, Output::Name), "job.batch/job-x\npod/pod-a\n");
    assert!(failures(&r).is_empty());
    // A refused delete is not listed; it is named on stderr instead.
    let results = vec![
        execute::Deletion {
            uid: "uid-job-x".into(),
            outcome: Outcome::Deleted,
            error: None,
            code: None,
        },
        execute::Deletion {
            uid: "uid-pod-a".into(),
            outcome: Outcome::Failed,
            error: Some("denied by policy".into()),
            code: Some(403),
        },
    ];
    let r = build(sample(), &results, &ctx(Mode::Apply));
    assert_eq!(render(&r, Output::Name), "job.batch/job-x\n");
    assert_eq!(failures(&r), ["pod/pod-a (failed): denied by policy"]);
}

#[test]
fn summary_line_when_nothing_matches() {
    let r = build(Plan::default(), &[], &ctx(Mode::Apply));
    assert_eq!(
        render(&r, Output::Table),
        "nothing to delete in namespace crucible (0 matched; 0 kept, 0 skipped)\n"
    );
}

#[test]
fn a_dry_runs_json_or_yaml_report_is_a_plan_file() {
    let plan = sample();
    let rep = build(plan.clone(), &[], &ctx(Mode::DryRunClient));
    assert_eq!(rep.generated_at, "2027-01-15T09:00:00Z");
    for output in [Output::Json, Output::Yaml] {
        let text = render(&rep, output);
        let saved = crate::planfile::parse(std::path::Path::new("p"), &text).unwrap();
        assert_eq!(saved.context, "admin");
        assert_eq!(saved.server, "https://127.0.0.1:6443/");
        assert_eq!(saved.kube_system_uid.as_deref(), Some("ks-uid"));
        assert_eq!(saved.rows.len(), plan.items.len());
        for (row, item) in saved.rows.iter().zip(&plan.items) {
            let (a, b) = (&row.candidate, &item.candidate);
            assert_eq!(
                (a.kind, &a.name, &a.uid, a.phase, row.action),
                (b.kind, &b.name, &b.uid, b.phase, item.action)
            );
            assert_eq!(row.matched_by, item.matched_by);
        }
    }
    // A report of a run that deleted is not a plan.
    let done = render(&build(plan.clone(), &[], &ctx(Mode::Apply)), Output::Json);
    assert!(crate::planfile::parse(std::path::Path::new("p"), &done).is_err());
}

#[test]
fn the_streamed_table_is_laid_out_as_kubectl_table() {
    let header = ["NAMESPACE", "KIND", "NAME", "REASON"];
    let rows: Vec<Vec<String>> = [
        ["crucible", "Pod", "evaluation-job-a-x1", ""],
        [
            "a-much-longer-namespace",
            "Job",
            "j",
            "kept: crucible-clean/keep=true",
        ],
        [
            "ns",
            "Pod",
            "",
            "no longer finished (Running since the plan)",
        ],
        ["ns", "Pod", "ünïcode-name", "—"],
    ]
    .iter()
    .map(|r| r.iter().map(|c| c.to_string()).collect())
    .collect();
    let mut streamed = Vec::new();
    table::write_table(&mut streamed, &header, &|each| {
        for r in &rows {
            each(r);
        }
    })
    .unwrap();
    assert_eq!(
        String::from_utf8(streamed).unwrap(),
        kubectl_table(header.to_vec(), rows.clone())
    );
}

#[test]
fn every_output_written_streaming_matches_the_rendered_report() {
    let plan = sample();
    let rep = build(plan.clone(), &[], &ctx(Mode::DryRunClient));
    for output in [
        Output::Json,
        Output::Yaml,
        Output::Name,
        Output::Table,
        Output::Wide,
    ] {
        let mut out = Vec::new();
        write(&mut out, &rep, output).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, render(&rep, output));
        assert!(!text.is_empty(), "{output:?}");
    }
    // The JSON row keeps its fields and their order.
    let text = render(&rep, Output::Json);
    let first = &text[text.find("\"items\"").unwrap()..];
    let first = &first[..first.find('}').unwrap()];
    let keys: Vec<&str> = first
        .lines()
        .skip(2)
        .filter(|l| l.contains("\":"))
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "kind",
            "namespace",
            "name",
            "uid",
            "phase",
            "createdAt",
            "finishedAt",
            "ageSeconds",
            "testId",
            "evalId",
            "owner",
            "matchedBy",
            "action",
            "reason",
            "result",
            "error",
            "archive"
        ]
    );
}

#[test]
fn a_row_stays_small() {
    // A report may have tens of thousands of rows (see docs/benchmarks.md).
    assert!(std::mem::size_of::<Item>() <= 72);
}

#[test]
fn a_planned_row_has_one_reason_for_the_table_and_json() {
    let r = build(sample(), &[], &ctx(Mode::DryRunClient));
    let v: serde_json::Value = serde_json::from_str(&render(&r, Output::Json)).unwrap();
    assert_eq!(v["items"][0]["reason"], "matched label");
    assert_eq!(v["items"][1]["reason"], "matched label");
    assert_eq!(v["items"][2]["reason"], "crucible-clean/keep=true");
    let table = render(&r, Output::Table);
    assert_eq!(table.matches("matched label").count(), 2, "{table}");
}

#[test]
fn the_plan_before_the_question_says_it_will_delete_after_asking() {
    let mut r = build(sample(), &[], &ctx(Mode::DryRunClient));
    r.shown = Shown::BeforeAsking;
    let out = render(&r, Output::Table);
    assert!(
        out.ends_with(
            "will delete 2 objects in namespace crucible (asking first); 1 kept, 0 skipped\n"
        ),
        "{out}"
    );
    assert!(!out.contains("dry run"), "{out}");
}

#[test]
fn after_the_question_only_rows_that_differ_from_the_plan_are_printed() {
    let results = |pod: Outcome| {
        vec![
            execute::Deletion {
                uid: "uid-job-x".into(),
                outcome: Outcome::Deleted,
                error: None,
                code: None,
            },
            execute::Deletion {
                uid: "uid-pod-a".into(),
                outcome: pod,
                error: None,
                code: None,
            },
        ]
    };
    let mut r = build(sample(), &results(Outcome::Deleted), &ctx(Mode::Apply));
    r.shown = Shown::AfterAsking;
    assert_eq!(
        render(&r, Output::Table),
        "deleted 2, 0 already gone, 0 conflict, 0 failed in namespace crucible; 1 kept, 0 skipped\n"
    );
    assert_eq!(render(&r, Output::Wide), render(&r, Output::Table));
    // Scripts still get every row.
    assert_eq!(render(&r, Output::Name), "job.batch/job-x\npod/pod-a\n");

    let mut r = build(sample(), &results(Outcome::Gone), &ctx(Mode::Apply));
    r.shown = Shown::AfterAsking;
    let out = render(&r, Output::Table);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.contains("pod-a") && !out.contains("job-x"), "{out}");

    // A note makes a deleted row differ too.
    let mut r = build(sample(), &results(Outcome::Deleted), &ctx(Mode::Apply));
    r.shown = Shown::AfterAsking;
    r.items[1].notes_mut().still_terminating = Some(vec!["example.com/hold".into()]);
    let out = render(&r, Output::Table);
    assert!(
        out.contains("deleted; still terminating (finalizers: example.com/hold)"),
        "{out}"
    );
    assert!(
        out.ends_with("; 1 still terminating when the wait ended\n"),
        "{out}"
    );
}

#[test]
fn notes_show_in_the_row_and_in_json() {
    let results = vec![execute::Deletion {
        uid: "uid-pod-a".into(),
        outcome: Outcome::Deleted,
        error: None,
        code: None,
    }];
    let mut r = build(sample(), &results, &ctx(Mode::Apply));
    let notes = r.items[1].notes_mut();
    notes.archive = Some("/a/crucible/pod/pod-a".into());
    notes.logs_missing = Some("no logs found for container main (400)".into());
    notes.still_terminating = Some(vec![]);
    let table = render(&r, Output::Table);
    assert!(
        table.contains(
            "deleted; archived without logs: no logs found for container main (400); still terminating\n"
        ),
        "{table}"
    );
    let v: serde_json::Value = serde_json::from_str(&render(&r, Output::Json)).unwrap();
    let row = &v["items"][1];
    assert_eq!(row["archive"], "/a/crucible/pod/pod-a");
    assert_eq!(row["logsMissing"], "no logs found for container main (400)");
    assert_eq!(
        row["stillTerminating"],
        serde_json::json!({"finalizers": []})
    );
    // Absent unless there is something to say.
    assert!(v["items"][0].get("logsMissing").is_none());
    assert!(v["items"][0].get("stillTerminating").is_none());
    assert_eq!(v["items"][0]["archive"], serde_json::Value::Null);
}

#[test]
fn unfinished_objects_are_skipped_rows_folded_into_one_line_of_the_table() {
    let running_job = with_test(job("j", Phase::Active, 3), "t1");
    let cands = [
        with_test(pod("done", Phase::Succeeded, 0), "t1"),
        with_test(pod("busy", Phase::Running, 1), "t1"),
        with_test(pod("starting", Phase::Pending, 2), "t1"),
        with_test(owned_by(pod("j-x", Phase::Running, 3), &running_job), "t1"),
        running_job.clone(),
    ];
    let sel = cands
        .iter()
        .map(|c| Selected {
            candidate: c,
            matched_by: Matched::of(Criterion::Label),
        })
        .collect();
    let r = build(
        plan(sel, &Inventory::default(), false),
        &[],
        &ctx(Mode::DryRunClient),
    );
    assert_eq!(r.summary.skipped, 4);
    let table = render(&r, Output::Table);
    assert!(
        table.ends_with(
            "dry run: would delete 1 object in namespace crucible; 0 kept, 4 skipped\n\
             1 active job, 1 running pod and 1 pending pod skipped: not finished (add --include-running); \
             1 running pod skipped: its job has not finished\n"
        ),
        "{table}"
    );
    let wide = render(&r, Output::Wide);
    assert!(
        wide.contains("skipped: not finished (add --include-running)"),
        "{wide}"
    );
    assert!(
        !wide.contains("skipped: not finished (add --include-running)\n1 "),
        "{wide}"
    );
    let v: serde_json::Value = serde_json::from_str(&render(&r, Output::Json)).unwrap();
    let busy = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "busy")
        .unwrap();
    assert_eq!(busy["result"], "skipped");
    assert_eq!(busy["phase"], "Running");
    assert_eq!(render(&r, Output::Name), "pod/done\n");
}

#[test]
fn a_watch_cycle_has_a_timestamped_header_and_an_idle_one_is_one_line() {
    let mut r = build(sample(), &[], &ctx(Mode::DryRunClient));
    r.cycle = Some(3);
    let out = render(&r, Output::Table);
    assert!(
        out.starts_with("cycle 3 at 2027-01-15T09:00:00Z:\nKIND"),
        "{out}"
    );
    let mut idle = build(Plan::default(), &[], &ctx(Mode::Apply));
    idle.cycle = Some(4);
    assert_eq!(
        render(&idle, Output::Table),
        "cycle 4 at 2027-01-15T09:00:00Z: nothing to delete in namespace crucible (0 matched; 0 kept, 0 skipped)\n"
    );
    assert_eq!(render(&idle, Output::Wide), render(&idle, Output::Table));
}
