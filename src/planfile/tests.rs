use super::*;
use crate::cli::Cli;
use crate::model::fixtures::*;
use crate::model::{OwnerState, KEEP_KEY};
use crate::select::Criterion;
use clap::Parser;
use serde_json::{json, Value};

const SERVER: &str = "https://127.0.0.1:6443/";

fn row(kind: &str, name: &str, phase: &str, action: &str) -> Value {
    json!({
        "kind": kind, "namespace": "crucible", "name": name, "uid": format!("uid-{name}"),
        "phase": phase, "createdAt": "2027-01-15T08:00:00Z", "finishedAt": null,
        "ageSeconds": 5, "testId": "t1", "evalId": null, "owner": null,
        "matchedBy": ["label"], "action": action, "reason": "", "result": "planned", "error": null,
    })
}

fn plan_json(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "crucible-clean/v1", "kind": "CleanupReport", "namespace": "crucible",
        "context": "admin", "cluster": {"server": SERVER, "kubeSystemUid": "ks-1"},
        "generatedAt": "2027-01-15T08:00:05Z", "dryRun": true, "dryRunMode": "client",
        "strategy": "label", "selector": "app=evaluation,test-id in (t1)",
        "items": items, "summary": {},
    })
}

fn three() -> Value {
    plan_json(vec![
        row("Job", "j", "Complete", "delete"),
        row("Pod", "a", "Succeeded", "delete"),
        row("Pod", "k", "Succeeded", "keep"),
    ])
}

fn parsed(v: &Value) -> Saved {
    parse(Path::new("plan.json"), &v.to_string()).unwrap()
}

fn refusal(text: &str) -> String {
    match parse(Path::new("plan.json"), text) {
        Err(Error::Usage(m)) => m,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[test]
fn a_dry_run_report_parses_as_json_or_yaml() {
    let p = parsed(&three());
    assert_eq!(p.namespace.as_deref(), Some("crucible"));
    assert_eq!((p.context.as_str(), p.server.as_str()), ("admin", SERVER));
    assert_eq!(p.kube_system_uid.as_deref(), Some("ks-1"));
    assert_eq!(p.selector.to_string(), "app=evaluation,test-id in (t1)");
    let rows: Vec<(&str, Kind, Action)> = p
        .rows
        .iter()
        .map(|r| (&*r.candidate.name, r.candidate.kind, r.action))
        .collect();
    assert_eq!(
        rows,
        [
            ("j", Kind::Job, Action::Delete),
            ("a", Kind::Pod, Action::Delete),
            ("k", Kind::Pod, Action::Keep)
        ]
    );
    let yaml = serde_norway::to_string(&three()).unwrap();
    assert_eq!(parse(Path::new("plan.yaml"), &yaml).unwrap().rows.len(), 3);
}

#[test]
fn a_file_edited_into_another_shape_is_refused_naming_what() {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = three();
        f(&mut v);
        refusal(&v.to_string())
    };
    let cases: Vec<(String, &str)> = vec![
        (refusal("{\"apiVersion\": "), "not valid JSON"),
        (refusal("[1, 2]"), "not a CleanupReport"),
        (
            edit(&|v| v["items"][1]["kind"] = json!("Deployment")),
            "items[1]: unknown variant `Deployment`",
        ),
        (
            edit(&|v| {
                v["items"][0].as_object_mut().unwrap().remove("uid");
            }),
            "items[0]: missing field `uid`",
        ),
        (
            edit(&|v| v["items"][0]["uid"] = json!("")),
            "items[0]: uid is empty",
        ),
        (
            edit(&|v| v["items"][1]["uid"] = json!("uid-j")),
            "appears more than once",
        ),
        (
            edit(&|v| v["items"][1]["namespace"] = json!("other")),
            "not the plan's namespace",
        ),
        (
            edit(&|v| v["items"][1]["action"] = json!("obliterate")),
            "items[1]: unknown variant `obliterate`",
        ),
        (
            edit(&|v| v["apiVersion"] = json!("crucible-clean/v2")),
            "apiVersion \"crucible-clean/v2\"",
        ),
        (
            edit(&|v| v["kind"] = json!("CleanupPolicy")),
            "kind \"CleanupPolicy\"",
        ),
        (edit(&|v| v["dryRun"] = json!(false)), "dryRun: false"),
        (
            edit(&|v| {
                v.as_object_mut().unwrap().remove("generatedAt");
            }),
            "missing field `generatedAt`",
        ),
        (
            edit(&|v| {
                v.as_object_mut().unwrap().remove("namespace");
            }),
            "missing field `namespace`",
        ),
        (
            edit(&|v| v["generatedAt"] = json!("yesterday")),
            "generatedAt",
        ),
        (edit(&|v| v["selector"] = json!("app in (x")), "selector"),
        (edit(&|v| v["cluster"] = json!({})), "server"),
    ];
    for (message, says) in cases {
        assert!(message.contains(says), "{message:?} should say {says:?}");
        assert!(message.starts_with("plan file plan.json: "), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

fn req(args: &[&str]) -> Request {
    let mut argv = vec!["x", "--from-plan", "plan.json", "--yes"];
    argv.extend_from_slice(args);
    Request::from_cli(&Cli::try_parse_from(argv).unwrap()).unwrap()
}

fn endpoint(context: &str, server: &str) -> Endpoint {
    Endpoint {
        context: context.into(),
        server: server.into(),
        cluster_uid: None,
    }
}

#[test]
fn a_plan_from_elsewhere_or_too_old_is_refused() {
    let p = parsed(&three());
    let hour = std::time::Duration::from_secs(3600);
    let made = p.generated_at;
    let minute = chrono::Duration::minutes(1);
    let here = endpoint("admin", SERVER);
    let check_at = |req: &Request, t: &Endpoint, uid: Option<&str>, now| {
        check(&p, req, hour, t, uid, now).map_err(|e| {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        })
    };
    let r = req(&[]);
    assert!(check_at(&r, &here, Some("ks-1"), made + minute).is_ok());
    assert!(
        check_at(&r, &here, None, made + minute).is_ok(),
        "uid unreadable now"
    );
    let refusals = [
        (
            check_at(&req(&["-n", "other"]), &here, None, made),
            "it is for namespace crucible (add -n crucible), this run is for other",
        ),
        (
            check_at(&req(&["-A"]), &here, None, made),
            "this run is for all namespaces",
        ),
        (
            check_at(&r, &endpoint("ci-runner", SERVER), None, made),
            "context \"admin\", this run uses context \"ci-runner\"",
        ),
        (
            check_at(&r, &endpoint("admin", "https://10.0.0.1/"), None, made),
            "made on the cluster at https://127.0.0.1:6443/",
        ),
        (
            check_at(&r, &here, Some("ks-2"), made),
            "another cluster (kube-system uid ks-1, this cluster's is ks-2)",
        ),
        (
            check_at(&r, &here, None, made + chrono::Duration::minutes(61)),
            "made 61m ago, more than --plan-max-age 1h",
        ),
        (
            check_at(&r, &here, None, made - chrono::Duration::minutes(6)),
            "in the future",
        ),
    ];
    for (got, says) in refusals {
        let m = got.unwrap_err();
        assert!(
            m.starts_with("refusing plan file plan.json: ") && m.contains(says),
            "{m:?} should say {says:?}"
        );
    }
}

fn listed(c: Candidate, rv: &str) -> Candidate {
    let mut c = with_test(c, "t1");
    c.resource_version = rv.into();
    c.created_at = t(0);
    c
}

fn outcome(plan: &Plan) -> Vec<(String, Action, String)> {
    plan.items
        .iter()
        .map(|i| (i.candidate.name.to_string(), i.action, i.reason.clone()))
        .collect()
}

#[test]
fn only_the_planned_deletes_that_still_qualify_go() {
    let p = parsed(&plan_json(vec![
        row("Pod", "same", "Succeeded", "delete"),
        row("Pod", "gone", "Succeeded", "delete"),
        row("Pod", "recreated", "Succeeded", "delete"),
        row("Pod", "running", "Succeeded", "delete"),
        row("Pod", "marked", "Succeeded", "delete"),
        row("Pod", "relabelled", "Succeeded", "delete"),
        row("Pod", "away", "Succeeded", "delete"),
        row("Pod", "held", "Succeeded", "skip"),
    ]));
    let mut recreated = listed(pod("recreated", Phase::Succeeded, 0), "7");
    recreated.uid = "uid-new".into();
    let mut marked = listed(pod("marked", Phase::Succeeded, 0), "8");
    marked.keep = crate::model::Keep::MARKED;
    marked.labels.insert(KEEP_KEY, "true");
    let inv = Inventory {
        pods: shared(vec![
            listed(pod("same", Phase::Succeeded, 0), "5"),
            recreated,
            listed(pod("running", Phase::Running, 0), "6"),
            marked,
            // Matches the selection today, but is not in the plan.
            listed(pod("newcomer", Phase::Succeeded, 0), "9"),
            listed(pod("held", Phase::Succeeded, 0), "10"),
        ]),
        ..Default::default()
    };
    let unseen = unseen(&p, &inv);
    let names: Vec<&str> = unseen.iter().map(|k| k.2.as_str()).collect();
    assert_eq!(names, ["gone", "relabelled", "away"]);
    let mut away = pod("away", Phase::Unknown, 0);
    away.uid = "uid-other".into();
    let read = vec![
        (unseen[0].clone(), None),
        (unseen[1].clone(), Some(pod("relabelled", Phase::Failed, 0))),
        (unseen[2].clone(), Some(away)),
    ];
    let plan = recheck(&p, &inv, &read, false);
    let s = |x: &str| x.to_string();
    assert_eq!(
        outcome(&plan),
        [
            (s("same"), Action::Delete, s("")),
            (s("gone"), Action::Skip, s("gone since the plan")),
            (
                s("recreated"),
                Action::Skip,
                s("recreated since the plan (now uid uid-new)")
            ),
            (
                s("running"),
                Action::Skip,
                s("no longer finished (Running since the plan)")
            ),
            (s("marked"), Action::Keep, s("crucible-clean/keep=true")),
            (
                s("relabelled"),
                Action::Skip,
                s("no longer matches the plan's selector app=evaluation,test-id in (t1)")
            ),
            (
                s("away"),
                Action::Skip,
                s("recreated since the plan (now uid uid-other)")
            ),
            (s("held"), Action::Skip, s("")),
        ]
    );
    // A row the recheck skips shows the object as it was read again (the
    // plan said Succeeded), where it was read.
    let phase = |name: &str| {
        let i = plan
            .items
            .iter()
            .find(|i| &*i.candidate.name == name)
            .unwrap();
        i.candidate.phase
    };
    assert_eq!(phase("relabelled"), Phase::Failed);
    assert_eq!(phase("running"), Phase::Running);
    assert_eq!(phase("gone"), Phase::Succeeded);
    // The delete is of the object as checked now: its uid and resourceVersion.
    let go = plan.to_delete().next().unwrap();
    assert_eq!(
        (&*go.candidate.uid, &*go.candidate.resource_version),
        ("uid-same", "5")
    );
    assert_eq!(go.matched_by, [Criterion::Label]);
}

#[test]
fn guards_of_the_moment_still_hold() {
    let p = parsed(&plan_json(vec![
        row("Job", "j", "Complete", "delete"),
        row("Pod", "of-running-job", "Succeeded", "delete"),
        row("Pod", "was-running", "Running", "delete"),
    ]));
    let j = listed(job("j", Phase::Complete, 0), "1");
    let other = job("other", Phase::Active, 0);
    let of_running = owned_by(
        listed(pod("of-running-job", Phase::Succeeded, 0), "2"),
        &other,
    );
    let inv = Inventory {
        pods: shared(vec![
            of_running,
            listed(pod("was-running", Phase::Running, 0), "3"),
        ]),
        jobs: shared(vec![j.clone()]),
        owners: [(other.uid.to_string(), OwnerState::Unfinished)].into(),
        kept_pods: [(
            j.uid.to_string(),
            ("p-of-j".to_string(), crate::model::Keep::MARKED),
        )]
        .into(),
        ..Default::default()
    };
    let s = |x: &str| x.to_string();
    let expect = |running: (Action, &str)| {
        vec![
            (
                s("j"),
                Action::Keep,
                s("its pod p-of-j is marked crucible-clean/keep=true"),
            ),
            (
                s("of-running-job"),
                Action::Skip,
                s("job other has not finished"),
            ),
            (s("was-running"), running.0, s(running.1)),
        ]
    };
    // A running object goes only when the command line says --include-running:
    // the file (made with it, or edited) cannot say so.
    assert_eq!(
        outcome(&recheck(&p, &inv, &[], false)),
        expect((Action::Skip, "not finished (add --include-running)"))
    );
    assert_eq!(
        outcome(&recheck(&p, &inv, &[], true)),
        expect((Action::Delete, ""))
    );
}

#[test]
fn the_fresh_listing_reads_every_phase_of_the_planned_kinds_with_the_plans_selector() {
    let p = parsed(&three());
    let n = needs(&p, &req(&["-o", "json"]));
    assert_eq!(n.label_selector, "app=evaluation,test-id in (t1)");
    assert_eq!(n.pod_phases.len(), 5);
    assert!(n.jobs && n.pod_status && !n.quotas);
    let only_kept = parsed(&plan_json(vec![row("Pod", "k", "Succeeded", "keep")]));
    let n = needs(&only_kept, &req(&[]));
    assert!(n.pod_phases.is_empty() && !n.jobs && !n.pod_status);
}
