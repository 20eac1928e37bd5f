//! Running in the cluster, against the local control plane: the Events that
//! say why each object went (and a refused Event that stops no delete), the
//! Prometheus metrics of `--watch` parsed with the Prometheus project's own
//! OpenMetrics parser and matched against the JSON reports of the same
//! cycles, and `/readyz` following the API server away and back.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};
use support::{audit::*, cluster::*, commands::*, metrics::*, objects::*, wait::*};

// ------------------------------------------------------------------------------------------
// Helpers: the Prometheus parser
// ------------------------------------------------------------------------------------------

/// The Python of the venv cached outside the repository
/// (`~/.cache/crucible-clean/venv`), with `prometheus_client` installed into it
/// if missing. The venv is shared with other tests: it is created when absent,
/// never recreated, and only ever gains packages.
fn venv_python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    let venv = cache.join("crucible-clean").join("venv");
    std::fs::create_dir_all(venv.parent().unwrap()).expect("the cache directory");
    let script = r#"[ -x "$1/bin/python" ] || python3 -m venv "$1" || exit 1
"$1/bin/python" -c 'import prometheus_client' 2>/dev/null ||
  "$1/bin/python" -m pip install -q prometheus_client"#;
    let out = Command::new("flock")
        .arg(venv.with_extension("lock"))
        .args(["sh", "-c", script, "sh"])
        .arg(&venv)
        .stdin(Stdio::null())
        .output()
        .expect("run flock sh");
    assert!(
        out.status.success(),
        "cannot prepare the venv {} with prometheus_client: {}",
        venv.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    venv.join("bin").join("python")
}

/// One sample of a parsed exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses `text` with `prometheus_client.openmetrics.parser` (strict: the
/// test fails when the exposition is not valid OpenMetrics). Returns the
/// family types by name and every sample.
fn parse(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut child = Command::new(venv_python())
        .arg(repo_root().join("tests/support/openmetrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let families = v["families"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap().to_string()))
        .collect();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Sample {
            name: s["name"].as_str().unwrap().to_string(),
            labels: serde_json::from_value(s["labels"].clone()).unwrap(),
            value: s["value"].as_f64().unwrap(),
        })
        .collect();
    (families, samples)
}

/// The sum of the samples named `name` whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// `count/pods` used of the quota `pods`, once the controller has counted.
async fn quota_used(quotas: &Api<k8s_openapi::api::core::v1::ResourceQuota>) -> Option<usize> {
    let q = quotas.get("pods").await.ok()?;
    q.status?.used?.get("count/pods")?.0.parse().ok()
}

/// The `CleanedUp` Events in `ns`, by the name of the object they are about.
async fn cleaned_up_events(ns: &str) -> BTreeMap<String, Event> {
    let api: Api<Event> = Api::namespaced(admin_client().await, ns);
    api.list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("CleanedUp"))
        .map(|e| {
            let name = e.regarding.as_ref().and_then(|r| r.name.clone());
            (name.unwrap_or_default(), e)
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Events
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn each_deleted_object_gets_an_event_that_says_why() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pods([
        BarePod::succeeded("a-done")
            .evaluation("e1")
            .test_id("run-a")
            .finished_ago(Duration::from_secs(2 * 3600 + 60)),
        BarePod::failed("a-failed")
            .evaluation("e2")
            .test_id("run-a")
            .finished_ago(Duration::from_secs(600)),
        BarePod::succeeded("b-done")
            .evaluation("e3")
            .test_id("run-b"),
    ])
    .await;

    let (code, report, stderr) = ns.run_json(&["--test-id", "run-a", "--events", "--yes"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["summary"]["deleted"], 2, "{report}");
    assert_eq!(
        report["events"],
        json!({"recorded": 2, "failed": 0, "error": null}),
        "{report}"
    );

    let events = cleaned_up_events(ns.name()).await;
    assert_eq!(
        events.keys().collect::<Vec<_>>(),
        ["a-done", "a-failed"],
        "an Event on each deleted object, none on the decoy"
    );
    let note = |name: &str| events[name].note.clone().unwrap_or_default();
    assert_eq!(
        note("a-done"),
        "deleted by crucible-clean: test-id=run-a (label), finished 2h ago; strategy label"
    );
    assert_eq!(
        note("a-failed"),
        "deleted by crucible-clean: test-id=run-a (label), finished 10m ago; strategy label"
    );
    for (name, e) in &events {
        assert_eq!(e.type_.as_deref(), Some("Normal"), "{name}");
        assert_eq!(e.action.as_deref(), Some("Delete"), "{name}");
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some("crucible-clean"),
            "{name}"
        );
        let r = e.regarding.as_ref().unwrap();
        assert_eq!(
            (r.kind.as_deref(), r.api_version.as_deref()),
            (Some("Pod"), Some("v1"))
        );
        let uid = item(&report, name)["uid"].as_str().unwrap().to_string();
        assert_eq!(r.uid.as_deref(), Some(uid.as_str()), "{name}");
    }

    // Never in a dry run, and off by default outside --watch.
    ns.create_pod(
        &BarePod::succeeded("c-done")
            .evaluation("e4")
            .test_id("run-c"),
    )
    .await;
    let (code, report, _) = ns.run_json(&["--test-id", "run-c", "--dry-run=server"]);
    assert_eq!(code, 0);
    assert!(report.get("events").is_none(), "{report}");
    let (code, report, _) = ns.run_json(&["--test-id", "run-c", "--yes"]);
    assert_eq!((code, &report["summary"]["deleted"]), (0, &json!(1)));
    assert!(report.get("events").is_none(), "{report}");
    assert!(!cleaned_up_events(ns.name()).await.contains_key("c-done"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_event_stops_no_delete_and_is_reported() {
    let ns = TestNamespace::for_current_test().await;
    // ci-runner may list and delete pods and read jobs here, but not create Events.
    let role = format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: cleaner, namespace: {ns}}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: cleaner, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: cleaner}}
subjects:
- {{apiGroup: rbac.authorization.k8s.io, kind: User, name: {CI_RUNNER_USER}}}
"#,
        ns = ns.name()
    );
    let out = kubectl_as(ADMIN_CONTEXT, &["apply", "-f", "-"], Some(&role));
    assert!(out.status.success(), "{}", stderr(&out));
    ns.create_pods((0..3).map(|i| {
        BarePod::succeeded(&format!("p{i}"))
            .evaluation(&format!("e{i}"))
            .test_id("run-r")
    }))
    .await;

    let (code, report, err) = ns.run_json(&[
        "--context",
        CI_RUNNER_CONTEXT,
        "--test-id",
        "run-r",
        "--events",
        "--yes",
    ]);
    assert_eq!(code, 0, "a refused Event must not fail the run: {err}");
    assert_eq!(report["summary"]["deleted"], 3, "{report}");
    assert!(ns.pod_names().await.is_empty());
    assert_eq!(report["events"]["recorded"], 0, "{report}");
    assert_eq!(report["events"]["failed"], 3, "{report}");
    let error = report["events"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("forbidden") && error.contains("events"),
        "{report}"
    );
    assert!(
        err.contains("warning: 3 of 3 Events could not be recorded"),
        "{err}"
    );
}

// ------------------------------------------------------------------------------------------
// Metrics
// ------------------------------------------------------------------------------------------

/// Reads JSON report lines of a --watch run until the one of cycle `n`.
fn reports_until(plugin: &mut Running, seen: &mut Vec<Value>, n: u64) {
    while seen.last().and_then(|r| r["cycle"].as_u64()).unwrap_or(0) < n {
        let line = plugin.stdout_line().expect("a report line per cycle");
        seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
    }
}

/// Scrapes /metrics, parses it, and checks every counter against the reports
/// of the cycles it counts. Returns the number of cycles counted.
fn scrape_and_match(port: u16, plugin: &mut Running, seen: &mut Vec<Value>, ns: &str) -> u64 {
    let (code, text) = get(port, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{text}");
    let (families, samples) = parse(&text);
    for (family, kind) in [
        ("crucible_clean_objects", "counter"),
        ("crucible_clean_cycles", "counter"),
        ("crucible_clean_cycle_duration_seconds", "histogram"),
        ("crucible_clean_quota_usage_ratio", "gauge"),
        ("crucible_clean_last_success_timestamp_seconds", "gauge"),
        ("crucible_clean_events", "counter"),
    ] {
        assert_eq!(
            families.get(family).map(String::as_str),
            Some(kind),
            "{text}"
        );
    }
    let cycles = sum(&samples, "crucible_clean_cycles_total", &[]) as u64;
    assert!(cycles >= 1, "{text}");
    // Metrics are counted before a cycle's report is printed: read up to it.
    reports_until(plugin, seen, cycles);
    let counted = &seen[..cycles as usize];
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_cycles_total",
            &[("outcome", "success")]
        ),
        cycles as f64,
        "{text}"
    );
    assert_eq!(
        sum(&samples, "crucible_clean_cycle_duration_seconds_count", &[]),
        cycles as f64
    );
    for (kind, report_kind) in [("pod", "Pod"), ("job.batch", "Job")] {
        for result in ["deleted", "kept", "failed", "skipped"] {
            let from_reports = counted
                .iter()
                .flat_map(|r| r["items"].as_array().unwrap())
                .filter(|i| i["kind"] == report_kind && i["result"] == result)
                .count();
            let from_metrics = sum(
                &samples,
                "crucible_clean_objects_total",
                &[
                    ("namespace", ns),
                    ("kind", kind),
                    ("strategy", "watermark"),
                    ("result", result),
                ],
            );
            assert_eq!(
                from_metrics, from_reports as f64,
                "{kind} {result} over {cycles} cycles\n{text}"
            );
        }
    }
    let recorded: u64 = counted
        .iter()
        .map(|r| r["events"]["recorded"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_events_total",
            &[("result", "recorded")]
        ),
        recorded as f64
    );
    // The quota ratio is the latest cycle's.
    let latest = &counted[counted.len() - 1];
    let line = latest["quota"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["resource"] == "count/pods")
        .expect("a count/pods line");
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_quota_usage_ratio",
            &[
                ("namespace", ns),
                ("quota", "pods"),
                ("resource", "count/pods")
            ]
        ),
        line["ratio"].as_f64().unwrap(),
        "{text}"
    );
    let last = sum(
        &samples,
        "crucible_clean_last_success_timestamp_seconds",
        &[],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(last > 0.0 && last <= now, "{last}");
    cycles
}

/// `--watch=poll`: every cycle prints its report, so every counter can be
/// matched against the reports of the cycles it counts.
#[tokio::test(flavor = "multi_thread")]
async fn polling_metrics_during_and_after_cycles_match_the_reports() {
    let ns = TestNamespace::for_current_test().await;
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "pods"},
        "spec": {"hard": {"count/pods": "20"}}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &quota)
        .await
        .expect("create the quota");
    // 9 of 20: the watermark (40%) plans down to 25%, i.e. 4 deletes; one
    // kept. The quota is roomy so that its admission, counting from a status
    // that may lag, never refuses the pods created later.
    ns.create_pods((0..9).map(|i| {
        let p = BarePod::succeeded(&format!("p{i}"))
            .evaluation(&format!("e{i}"))
            .finished_ago(Duration::from_secs(600 - i * 10));
        if i == 0 {
            p.label("crucible-clean/keep", "true")
        } else {
            p
        }
    }))
    .await;
    // The quota controller must have counted them before the first cycle.
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(ns.client(), ns.name());
    poll_until("count/pods used 9", Duration::from_secs(30), || async {
        match quota_used(&quotas).await {
            Some(9) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut plugin = ns
        .plugin()
        .args(["-n", ns.name(), "-o", "json", "--yes"])
        .args([
            "--strategy",
            "watermark",
            "--watch=poll",
            "--interval",
            "1s",
        ])
        .args(["--high-watermark", "0.4", "--low-watermark", "0.25"])
        .args(["--metrics-addr", &addr])
        .spawn();
    let mut seen = vec![];
    reports_until(&mut plugin, &mut seen, 1);
    assert_eq!(seen[0]["summary"]["deleted"], 4, "{}", seen[0]);
    assert_eq!(seen[0]["summary"]["kept"], 1, "{}", seen[0]);
    until_status(port, "/readyz", 200, Duration::from_secs(30)).await;
    assert_eq!(get(port, "/healthz").map(|(c, _)| c), Some(200));
    let first = scrape_and_match(port, &mut plugin, &mut seen, ns.name());

    // More pods, back over the watermark: later cycles delete again. First
    // the quota must count what is left.
    poll_until(
        "count/pods to count what is left",
        Duration::from_secs(30),
        || async {
            let used = quota_used(&quotas).await;
            let pods = ns.pod_names().await.len();
            match used {
                Some(u) if u == pods && u <= 6 => Ok(()),
                _ => Err(format!("used {used:?}, {pods} pods")),
            }
        },
    )
    .await;
    ns.create_pods(
        (10..14).map(|i| BarePod::succeeded(&format!("p{i}")).evaluation(&format!("e{i}"))),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen
        .iter()
        .map(|r| r["summary"]["deleted"].as_u64().unwrap())
        .sum::<u64>()
        < 8
    {
        assert!(Instant::now() < deadline, "no second cleanup: {seen:?}");
        let next = seen.len() as u64 + 1;
        reports_until(&mut plugin, &mut seen, next);
    }
    let later = scrape_and_match(port, &mut plugin, &mut seen, ns.name());
    assert!(later > first);

    // Between cycles: 0; with a 1s interval the signal may land in a cycle: 130.
    plugin.signal("TERM");
    let done = plugin.wait(Duration::from_secs(30));
    assert!(matches!(done.code, Some(0 | 130)), "{done:?}");
}

/// `--watch`: reconciles by trigger, the records the cache holds, and every
/// delete counted as the printed reports say (a reconcile that deleted
/// something prints its report; the others count only what they skipped).
#[tokio::test(flavor = "multi_thread")]
async fn watch_metrics_count_reconciles_the_cache_and_every_delete() {
    let ns = TestNamespace::for_current_test().await;
    let run = format!("m-{}", random_suffix(6));
    ns.create_pods((0..3).map(|i| {
        BarePod::succeeded(&format!("p{i}"))
            .evaluation(&format!("e{i}"))
            .test_id(&run)
    }))
    .await;
    ns.create_pod(
        &BarePod::succeeded("kept")
            .evaluation("ek")
            .test_id(&run)
            .label("crucible-clean/keep", "true"),
    )
    .await;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut plugin = ns
        .plugin()
        .args(["-n", ns.name(), "--test-id", &run, "-o", "json", "--yes"])
        .args(["--watch", "--interval", "10m", "--metrics-addr", &addr])
        .spawn();
    let mut reports: Vec<Value> = vec![];
    let deleted = |reports: &mut Vec<Value>, plugin: &mut Running, want: u64| {
        while reports
            .iter()
            .map(|r| r["summary"]["deleted"].as_u64().unwrap())
            .sum::<u64>()
            < want
        {
            let line = plugin
                .stdout_line_within(Duration::from_secs(120))
                .expect("a report of a reconcile that deleted");
            reports.push(serde_json::from_str(&line).unwrap());
        }
    };
    deleted(&mut reports, &mut plugin, 3);
    assert_eq!(
        reports[0]["cycle"], 1,
        "the first reconcile: {}",
        reports[0]
    );
    ns.create_pods((3..5).map(|i| {
        BarePod::succeeded(&format!("p{i}"))
            .evaluation(&format!("e{i}"))
            .test_id(&run)
    }))
    .await;
    deleted(&mut reports, &mut plugin, 5);
    until_status(port, "/readyz", 200, Duration::from_secs(60)).await;
    // Once the deletes' own events are reconciled, the cache holds the kept pod alone.
    let text = poll_until(
        "the cache to hold one pod",
        Duration::from_secs(60),
        || async {
            let (_, text) = get(port, "/metrics").ok_or("no answer")?;
            let (_, samples) = parse(&text);
            let pods = sum(
                &samples,
                "crucible_clean_cache_objects",
                &[("resource", "pods")],
            );
            if pods == 1.0 {
                Ok(text)
            } else {
                Err(format!("{pods}"))
            }
        },
    )
    .await;
    let (families, samples) = parse(&text);
    for (family, kind) in [
        ("crucible_clean_cycles", "counter"),
        ("crucible_clean_objects", "counter"),
        ("crucible_clean_cache_objects", "gauge"),
        ("crucible_clean_cycle_duration_seconds", "histogram"),
    ] {
        assert_eq!(
            families.get(family).map(String::as_str),
            Some(kind),
            "{text}"
        );
    }
    let cycles = sum(&samples, "crucible_clean_cycles_total", &[]);
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_cycles_total",
            &[("trigger", "start")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        sum(
            &samples,
            "crucible_clean_cycles_total",
            &[("trigger", "change")]
        ) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_cycles_total",
            &[("outcome", "success")]
        ),
        cycles,
        "{text}"
    );
    assert!(cycles >= reports.len() as f64, "{text}");
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_objects_total",
            &[("kind", "pod"), ("result", "deleted")]
        ),
        5.0,
        "{text}"
    );
    assert_eq!(
        sum(
            &samples,
            "crucible_clean_cache_objects",
            &[("resource", "jobs")]
        ),
        0.0
    );
    plugin.signal("TERM");
    let limit = plugin.elapsed() + Duration::from_secs(30);
    let done = plugin.wait(limit);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(ns.pod_names().await, ["kept"]);
}

/// `--watch=poll`: `/readyz` follows the API server: ready while cycles
/// succeed, unready once none has for two intervals (the API server
/// stopped), ready again after it returns. `/healthz` answers throughout. A
/// cluster of its own: freezing the shared one would stall every other test.
/// (The event-driven watch's readiness: `tests/watch.rs`.)
#[tokio::test(flavor = "multi_thread")]
async fn polling_readyz_turns_unready_while_the_api_server_is_stopped_and_ready_after() {
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let plugin = PluginCmd::with_home(home.path())
        .kubeconfig(cluster.kubeconfig())
        .args(["-n", CRUCIBLE_NAMESPACE, "--all", "--yes", "-o", "json"])
        .args([
            "--watch=poll",
            "--interval",
            "1s",
            "--request-timeout",
            "2s",
        ])
        .args(["--metrics-addr", &addr])
        .spawn();
    until_status(port, "/readyz", 200, Duration::from_secs(30)).await;

    let apiserver = cluster.pid("kube-apiserver");
    signal(apiserver, "STOP");
    let stopped = async {
        until_status(port, "/readyz", 503, Duration::from_secs(60)).await;
        let (code, body) = get(port, "/readyz").unwrap_or_default();
        assert!(body.contains("not ready"), "{code} {body}");
        assert_eq!(get(port, "/healthz").map(|(c, _)| c), Some(200));
    };
    let outcome = tokio::time::timeout(Duration::from_secs(90), stopped).await;
    signal(apiserver, "CONT");
    outcome.expect("/readyz did not turn unready");

    until_status(port, "/readyz", 200, Duration::from_secs(60)).await;
    let (_, text) = get(port, "/metrics").unwrap();
    let (_, samples) = parse(&text);
    assert!(
        sum(
            &samples,
            "crucible_clean_cycles_total",
            &[("outcome", "error")]
        ) >= 1.0,
        "{text}"
    );
    plugin.signal("TERM");
    let done = plugin.wait(Duration::from_secs(30));
    // 1: cycles failed while the API server was stopped (130 when the
    // signal lands in a cycle, the interval being 1s).
    assert!(matches!(done.code, Some(1 | 130)), "{done:?}");
}

// ------------------------------------------------------------------------------------------
// Many namespaces in one process
// ------------------------------------------------------------------------------------------

/// `--watch -A`: the watch lists (then watches) across every namespace at
/// once, never once per namespace, and the report gives each namespace its
/// own summary.
#[tokio::test(flavor = "multi_thread")]
async fn watch_all_namespaces_lists_once_across_them_and_reports_each() {
    let spaces = [
        TestNamespace::new("multi-a").await,
        TestNamespace::new("multi-b").await,
        TestNamespace::new("multi-c").await,
    ];
    let run = format!("multi-{}", random_suffix(8));
    for (n, ns) in spaces.iter().enumerate() {
        ns.create_pods((0..=n).map(|i| {
            BarePod::succeeded(&format!("p{i}"))
                .evaluation(&format!("e{i}"))
                .test_id(&run)
        }))
        .await;
    }
    let offset = audit_offset();
    let mut plugin = PluginCmd::new();
    let mut plugin = plugin
        .on_cluster()
        .args(["-A", "--test-id", &run, "--yes", "-o", "json"])
        .args(["--watch", "--interval", "1h"])
        .spawn();
    let line = plugin.stdout_line().expect("the first cycle's report");
    plugin.signal("TERM");
    let done = plugin.wait(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let report: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["namespace"], Value::Null);
    assert_eq!(report["summary"]["deleted"], 6, "{report}");
    let per_ns: BTreeMap<String, u64> = report["namespaces"]
        .as_array()
        .expect("a summary per namespace")
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap().to_string(),
                n["summary"]["deleted"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: BTreeMap<String, u64> = spaces
        .iter()
        .enumerate()
        .map(|(n, ns)| (ns.name().to_string(), n as u64 + 1))
        .collect();
    assert_eq!(per_ns, want, "{report}");
    assert_eq!(report["events"]["recorded"], 6, "{report}");

    audit_barrier().await;
    let lists: Vec<_> = read_audit_log(&cluster().audit_log(), offset, &run)
        .into_iter()
        .filter(|e| e.verb == "list" && AuditFilter::plugin().matches(e))
        .collect();
    assert!(
        lists.iter().all(|e| e.namespace().is_empty()),
        "every LIST across namespaces: {lists:#?}"
    );
    let pod_lists = lists.iter().filter(|e| e.resource() == "pods").count();
    assert_eq!(
        pod_lists, 1,
        "one LIST of the pods it may select or report (every phase at once), whatever the number of namespaces: {lists:#?}"
    );
}
