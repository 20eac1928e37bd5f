//! Event-driven `--watch` against the local control plane. Every watcher here
//! runs with `--interval 10m` (or more): a pass every interval could not do
//! what these tests wait for within their deadlines, so what they see was
//! done by the watch — a finished pod deleted once its age rule holds, a
//! quota relieved once it crossed its high watermark (and not further), no
//! second LIST while reconciles come and go, a restarted API server, a
//! keep-until that ends by the clock, and a
//! decoy set through compressed churn. Deadlines are generous (CI has two
//! loaded cores) and always polled.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use support::{audit::*, cluster::*, commands::*, metrics::*, objects::*, wait::*};

const KEEP: &str = "crucible-clean/keep";

/// A watcher in `ns` with `args`, serving metrics; returns once `/readyz`
/// says it is in sync and its first reconcile succeeded.
async fn watcher(ns: &TestNamespace, args: &[&str]) -> (Running, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let plugin = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "-o",
            "json",
            "--yes",
            "--watch",
            "--interval",
            "10m",
        ])
        .args(["--metrics-addr", &addr])
        .args(args)
        .spawn();
    until_status(port, "/readyz", 200, Duration::from_secs(60)).await;
    (plugin, port)
}

/// Reconciles counted so far.
fn reconciles(port: u16) -> f64 {
    scrape(port, "crucible_clean_cycles_total", &[]).expect("/metrics answers")
}

/// Waits until more than `than` reconciles have run.
async fn reconciled_beyond(port: u16, than: f64) -> f64 {
    poll_until(
        &format!("a reconcile after the {than} so far"),
        Duration::from_secs(60),
        || async {
            let n = reconciles(port);
            if n > than {
                Ok(n)
            } else {
                Err(format!("{n}"))
            }
        },
    )
    .await
}

/// Waits until the pods of `ns` are exactly `want`.
async fn pods_become(ns: &TestNamespace, want: &[&str], limit: Duration) {
    let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    poll_until(&format!("pods {want:?}"), limit, || async {
        let now = ns.pod_names().await;
        if now == want {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await
}

/// Stops the watcher between reconciles: exit 0, nothing printed on the way out.
fn stop(plugin: Running) -> Finished {
    let plugin_elapsed = plugin.elapsed();
    plugin.signal("TERM");
    // `wait`'s limit counts from the start.
    let done = plugin.wait(plugin_elapsed + Duration::from_secs(30));
    assert_eq!(
        done.code,
        Some(0),
        "killed: {}, after {:?}: {}",
        done.killed,
        done.elapsed,
        done.stderr
    );
    assert!(
        done.stderr.contains("watch: stopped by signal after"),
        "{}",
        done.stderr
    );
    done
}

fn time_of(rfc3339: &str) -> SystemTime {
    let ts: k8s_openapi::jiff::Timestamp = rfc3339.parse().expect("an RFC 3339 time");
    SystemTime::from(ts)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_that_finishes_is_deleted_within_seconds_of_its_age_rule() {
    let ns = TestNamespace::for_current_test().await;
    // Decoys: younger than the rule, kept, and another app's.
    ns.create_pods([
        BarePod::succeeded("kept")
            .evaluation("e-kept")
            .label(KEEP, "true")
            .finished_ago(Duration::from_secs(3600)),
        BarePod::succeeded("not-ours")
            .label("app", "other")
            .finished_ago(Duration::from_secs(3600)),
    ])
    .await;
    let (plugin, _) = watcher(&ns, &["--older-than", "3s", "--age-from", "finished"]).await;

    // A job runs; kwok finishes its pod about a second after it started.
    let job = EvalJob::succeeding("e1").test_id("t1");
    ns.create_job(&job).await;
    let finished = poll_until(
        "the job's pod to finish",
        Duration::from_secs(60),
        || async {
            let pods = ns
                .pods()
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let pod = pods
                .items
                .iter()
                .find(|p| {
                    p.metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with("evaluation-job-e1"))
                })
                .ok_or("no pod yet")?;
            let at = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.first())
                .and_then(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.clone())
                .ok_or("not finished yet")?;
            Ok((
                pod.metadata.name.clone().unwrap_or_default(),
                at.0.to_string(),
            ))
        },
    )
    .await;
    let (name, finished_at) = finished;
    let eligible = time_of(&finished_at) + Duration::from_secs(3);
    pods_become(&ns, &["kept", "not-ours"], Duration::from_secs(60)).await;

    // Deleted by the watcher, after the rule held: the delete's time in the
    // audit log is not before the pod was 3 s finished.
    let deletes: Vec<AuditEvent> = mutating_requests(ns.name(), &AuditFilter::plugin())
        .await
        .into_iter()
        .filter(|e| e.verb == "delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].name(), name);
    let at = time_of(&deletes[0].request_received_timestamp);
    assert!(
        at >= eligible,
        "deleted at {at:?}, eligible from {eligible:?}"
    );
    eprintln!(
        "deleted {:.2}s after it became eligible",
        at.duration_since(eligible)
            .unwrap_or_default()
            .as_secs_f64()
    );
    let done = stop(plugin);
    let report: Value = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line per report"))
        .find(|r| r["summary"]["deleted"] == 1)
        .expect("the report of the reconcile that deleted it");
    assert_eq!(names_where(&report, |i| i["result"] == "deleted"), [name]);
}

/// `count/pods` used of the quota `pods`, once the controller has counted.
async fn quota_used(quotas: &Api<ResourceQuota>) -> Option<usize> {
    let q = quotas.get("pods").await.ok()?;
    q.status?.used?.get("count/pods")?.0.parse().ok()
}

async fn quota_counts(quotas: &Api<ResourceQuota>, n: usize) {
    poll_until(
        &format!("count/pods used {n}"),
        Duration::from_secs(60),
        || async {
            match quota_used(quotas).await {
                Some(u) if u == n => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_crossing_its_high_watermark_is_relieved_within_seconds_and_no_further() {
    let ns = TestNamespace::for_current_test().await;
    let quotas: Api<ResourceQuota> = Api::namespaced(ns.client(), ns.name());
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "pods"},
        "spec": {"hard": {"count/pods": "10"}}
    }))
    .unwrap();
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .expect("create the quota");
    // 7 of 10: under the high watermark (80%). p0 finished first.
    let pod = |i: u64| {
        BarePod::succeeded(&format!("p{i}"))
            .evaluation(&format!("e{i}"))
            .finished_ago(Duration::from_secs(1000 - i * 10))
    };
    ns.create_pods((0..7).map(pod)).await;
    quota_counts(&quotas, 7).await;
    let (plugin, port) = watcher(
        &ns,
        &[
            "--strategy",
            "watermark",
            "--high-watermark",
            "0.8",
            "--low-watermark",
            "0.5",
        ],
    )
    .await;
    assert_eq!(ns.pod_names().await.len(), 7, "nothing to do at 70%");

    // Two more: 90%. Relieved down to the low watermark, 5: the 4 oldest go.
    ns.create_pods((7..9).map(pod)).await;
    let crossed = Instant::now();
    let rest = ["p4", "p5", "p6", "p7", "p8"];
    pods_become(&ns, &rest, Duration::from_secs(60)).await;
    eprintln!(
        "relieved {:.2}s after the crossing",
        crossed.elapsed().as_secs_f64()
    );

    // The quota's status catches up with the deletes later than the watch
    // sees them. Once it has, one more reconcile (a change that asks for
    // nothing) must still leave the 5: the budget was spent once.
    quota_counts(&quotas, 5).await;
    let before = reconciles(port);
    ns.pods()
        .patch(
            "p8",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label p8");
    reconciled_beyond(port, before).await;
    assert_eq!(ns.pod_names().await, rest);
    let done = stop(plugin);
    let deleted: usize = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .map(|r| r["summary"]["deleted"].as_u64().unwrap_or(0) as usize)
        .sum();
    assert_eq!(deleted, 4, "{}", done.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn while_reconciles_come_and_go_the_watch_sends_no_second_list() {
    let ns = TestNamespace::for_current_test().await;
    let cluster = cluster();
    ns.create_pods(
        (0..5).map(|i| BarePod::succeeded(&format!("p{i}")).evaluation(&format!("e{i}"))),
    )
    .await;
    let offset = audit_log_len(&cluster.audit_log());
    // Nothing is an hour old: every reconcile plans nothing.
    let (plugin, port) = watcher(&ns, &["--older-than", "1h"]).await;
    audit_barrier().await;
    let ours = |from: u64| -> Vec<AuditEvent> {
        read_audit_log(&cluster.audit_log(), from, ns.name())
            .into_iter()
            .filter(|e| AuditFilter::plugin().matches(e) && e.namespace() == ns.name())
            .collect()
    };
    let at_start = ours(offset);
    let lists: Vec<String> = at_start
        .iter()
        .filter(|e| e.verb == "list")
        .map(|e| e.request_uri.clone())
        .collect();
    // One LIST per watched resource: the pods it may select (both finished
    // phases at once) and the jobs (their pods' owners).
    assert_eq!(lists.len(), 2, "{lists:#?}");
    let ready = audit_log_len(&cluster.audit_log());

    // Changes come and are reconciled, one after another.
    let mut n = reconciles(port);
    ns.create_pod(&BarePod::succeeded("p5").evaluation("e5"))
        .await;
    n = reconciled_beyond(port, n).await;
    ns.pods()
        .patch(
            "p0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"test-id": "relabelled"}}})),
        )
        .await
        .expect("label p0");
    n = reconciled_beyond(port, n).await;
    ns.pods()
        .delete("p1", &Default::default())
        .await
        .expect("delete p1");
    reconciled_beyond(port, n).await;

    audit_barrier().await;
    let since: Vec<String> = ours(ready)
        .iter()
        .filter(|e| e.verb != "watch")
        .map(|e| format!("{} {}", e.verb, e.request_uri))
        .collect();
    assert!(
        since.is_empty(),
        "requests while idle but for the watches: {since:#?}"
    );
    stop(plugin);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_recovers_from_a_restarted_api_server_and_cleans_what_it_missed() {
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap();
    let client = cluster.admin_client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), CRUCIBLE_NAMESPACE);
    let create = |p: BarePod| {
        let client = client.clone();
        async move { create_bare_pod(&client, CRUCIBLE_NAMESPACE, &p).await }
    };
    let hour = Duration::from_secs(3600);
    create(
        BarePod::succeeded("old")
            .evaluation("e-old")
            .finished_ago(hour),
    )
    .await;
    create(
        BarePod::succeeded("kept")
            .evaluation("e-kept")
            .label(KEEP, "true")
            .finished_ago(hour),
    )
    .await;
    create(
        BarePod::succeeded("not-ours")
            .label("app", "other")
            .finished_ago(hour),
    )
    .await;
    // Becomes 20 s old while the API server is down.
    let soon = SystemTime::now();
    create(
        BarePod::succeeded("soon")
            .evaluation("e-soon")
            .finished_at(soon),
    )
    .await;

    let home = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let plugin = PluginCmd::with_home(home.path())
        .kubeconfig(cluster.kubeconfig())
        .args([
            "-n",
            CRUCIBLE_NAMESPACE,
            "--older-than",
            "20s",
            "--age-from",
            "finished",
        ])
        .args([
            "--yes",
            "-o",
            "json",
            "--watch",
            "--interval",
            "1h",
            "--request-timeout",
            "5s",
        ])
        .args(["--metrics-addr", &addr])
        .spawn();
    until_status(port, "/readyz", 200, Duration::from_secs(60)).await;
    let names = || async {
        let mut v: Vec<String> = pods
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    poll_until("old to go", Duration::from_secs(60), || async {
        let now = names().await;
        if now.contains(&"old".to_string()) {
            Err(format!("{now:?}"))
        } else {
            Ok(())
        }
    })
    .await;

    let killed = tokio::task::block_in_place(|| cluster.kill("kube-apiserver"));
    until_status(port, "/readyz", 503, Duration::from_secs(60)).await;
    let (_, why) = get(port, "/readyz").unwrap_or_default();
    assert!(why.contains("not established"), "{why}");
    assert_eq!(get(port, "/healthz").map(|(c, _)| c), Some(200));
    // Down until `soon` is old enough.
    while SystemTime::now() < soon + Duration::from_secs(22) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    killed.start();
    poll_until("the API server back", Duration::from_secs(90), || async {
        pods.list(&Default::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    // Created before the watch is back: seen only by its new list.
    create(
        BarePod::succeeded("meanwhile")
            .evaluation("e-meanwhile")
            .finished_ago(hour),
    )
    .await;

    poll_until(
        "the watch to clean what it missed",
        Duration::from_secs(120),
        || async {
            let now = names().await;
            if now == ["kept", "not-ours"] {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        },
    )
    .await;
    until_status(port, "/readyz", 200, Duration::from_secs(60)).await;
    let restarts = scrape(
        port,
        "crucible_clean_watch_restarts_total",
        &[("reason", "error")],
    )
    .unwrap_or(0.0);
    assert!(restarts >= 1.0, "restarts after errors: {restarts}");
    let mut plugin = plugin;
    assert!(!plugin.exited(), "the watch runs on until a signal");
    let done = stop(plugin);
    assert!(done.stderr.contains("listed again"), "{}", done.stderr);
}

/// A policy whose pod hook appends the pod's name to `log`, then sleeps
/// `seconds`: a queue of deletes that a test can see and act in.
fn slow_hook_policy(dir: &Path, log: &Path, seconds: u32, rule: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    let script = format!(
        "echo \"$CRUCIBLE_NAME\" >> '{}'; sleep {seconds}",
        log.display()
    );
    std::fs::write(
        &path,
        format!(
            "apiVersion: crucible-clean/v1\nkind: CleanupPolicy\nrules:\n  - name: all\n    selector: app=evaluation\n    {rule}\nhooks:\n  pod:\n    beforeDelete: [/bin/sh, -c, {script:?}]\n    timeoutSeconds: 30\n"
        ),
    )
    .expect("write the policy");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_marked_keep_while_its_deletion_is_queued_is_not_deleted() {
    let ns = TestNamespace::for_current_test().await;
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hooks.log");
    let policy = slow_hook_policy(tmp.path(), &log, 2, "all: true");
    // Created in order: the plan takes them oldest first, one at a time.
    for i in 1..=3 {
        ns.create_pod(
            &BarePod::succeeded(&format!("q{i}"))
                .evaluation(&format!("e{i}"))
                .test_id("queue"),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let port = free_port();
    let mut plugin = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "-o",
            "json",
            "--yes",
            "--watch",
            "--interval",
            "10m",
        ])
        .args(["--test-id", "queue", "--concurrency", "1", "--no-events"])
        .arg("--policy")
        .arg(&policy)
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .spawn();
    // q1's hook runs; q2 and q3 wait their turn.
    poll_until("q1's hook", Duration::from_secs(60), || async {
        match std::fs::read_to_string(&log) {
            Ok(t) if t.contains("q1") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    ns.pods()
        .patch(
            "q3",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {KEEP: "true"}}})),
        )
        .await
        .expect("mark q3 keep");
    // The reconcile that took q1 and q2 reports q3 too.
    let report = loop {
        let line =
            tokio::task::block_in_place(|| plugin.stdout_line_within(Duration::from_secs(120)))
                .expect("the reconcile's report");
        let r: Value = serde_json::from_str(&line).expect("a JSON line");
        if r["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["name"] == "q3"))
        {
            break r;
        }
    };
    assert_eq!(
        names_where(&report, |i| i["result"] == "deleted"),
        ["q1", "q2"],
        "{report}"
    );
    assert_ne!(item(&report, "q3")["result"], "deleted", "{report}");
    pods_become(&ns, &["q3"], Duration::from_secs(30)).await;
    let deletes: BTreeSet<String> = mutating_requests(ns.name(), &AuditFilter::plugin())
        .await
        .iter()
        .filter(|e| e.verb == "delete")
        .map(|e| e.name().to_string())
        .collect();
    assert!(!deletes.contains("q3"), "{deletes:?}");
    stop(plugin);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decoy_set_survives_an_hour_of_churn_compressed_into_a_minute() {
    let ns = TestNamespace::for_current_test().await;
    let run = "churn";
    let hour = Duration::from_secs(3600);
    // Decoys that stay as they are: running pods of the run, a running job
    // of the run, a kept job whose finished pod carries the run's label (a
    // kept job keeps its pods).
    let mut decoys: Vec<String> = vec![];
    for i in 0..2 {
        let name = format!("running-{i}");
        ns.create_pod(&BarePod::running(&name).evaluation(&name).test_id(run))
            .await;
        decoys.push(name);
    }
    ns.create_job(&EvalJob::running("rj").test_id(run)).await;
    let kept_job = EvalJob::succeeding("kj")
        .test_id(run)
        .annotation(KEEP, "true");
    ns.create_job(&kept_job).await;
    ns.wait_job_complete(&kept_job.name()).await;
    let job_pods: Vec<String> = ns
        .pod_names()
        .await
        .into_iter()
        .filter(|n| n.starts_with("evaluation-job-"))
        .collect();
    assert_eq!(job_pods.len(), 2, "{job_pods:?}");
    decoys.extend(job_pods);

    let (plugin, _) = watcher(
        &ns,
        &[
            "--test-id",
            run,
            "--older-than",
            "8s",
            "--age-from",
            "finished",
            "--concurrency",
            "4",
        ],
    )
    .await;
    let label = |name: &str, key: &str, value: &str| {
        let pods = ns.pods();
        let (name, key, value) = (name.to_string(), key.to_string(), value.to_string());
        async move {
            pods.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {key: value}}})),
            )
            .await
            .unwrap_or_else(|e| panic!("label {name}: {e}"));
        }
    };
    let mut doomed: Vec<String> = vec![];
    // A minute stands for an hour: each round, new pods of the run finish,
    // other runs' finish, some are kept, some leave the run before they are
    // old enough, some join it, some are marked keep before they are.
    for round in 0..60 {
        let started = Instant::now();
        let now = SystemTime::now();
        let pod = |kind: &str, test: &str| {
            BarePod::succeeded(&format!("{kind}-{round}"))
                .evaluation(&format!("{kind}{round}"))
                .test_id(test)
        };
        let mut batch = vec![
            pod("done", run).finished_at(now),
            pod("other", "other-run").finished_at(now),
            pod("kept", run).label(KEEP, "true").finished_ago(hour),
            pod("leaves", run).finished_at(now),
        ];
        if round % 2 == 0 {
            batch.push(pod("joins", "other-run").finished_ago(hour));
        }
        if round % 3 == 0 {
            batch.push(pod("held", run).finished_at(now));
        }
        ns.create_pods(batch).await;
        label(&format!("leaves-{round}"), "test-id", "other-run").await;
        doomed.push(format!("done-{round}"));
        decoys.extend([
            format!("other-{round}"),
            format!("kept-{round}"),
            format!("leaves-{round}"),
        ]);
        if round % 2 == 0 {
            label(&format!("joins-{round}"), "test-id", run).await;
            doomed.push(format!("joins-{round}"));
        }
        if round % 3 == 0 {
            label(&format!("held-{round}"), KEEP, "true").await;
            decoys.push(format!("held-{round}"));
        }
        if let Some(rest) = Duration::from_secs(1).checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let doomed_set: BTreeSet<String> = doomed.iter().cloned().collect();
    let decoy_set: BTreeSet<String> = decoys.iter().cloned().collect();
    poll_until(
        "every pod of the run that may go, gone",
        Duration::from_secs(180),
        || async {
            let now: BTreeSet<String> = ns.pod_names().await.into_iter().collect();
            let left: Vec<&String> = doomed_set.intersection(&now).collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{} left: {left:?}", left.len()))
            }
        },
    )
    .await;
    let now: BTreeSet<String> = ns.pod_names().await.into_iter().collect();
    let lost: Vec<&String> = decoy_set.difference(&now).collect();
    assert!(lost.is_empty(), "decoys lost: {lost:?}");
    let deleted: BTreeSet<String> = mutating_requests(ns.name(), &AuditFilter::plugin())
        .await
        .iter()
        .filter(|e| e.verb == "delete")
        .map(|e| e.name().to_string())
        .collect();
    let wrong: Vec<&String> = deleted.difference(&doomed_set).collect();
    assert!(wrong.is_empty(), "deletes of decoys: {wrong:?}");
    eprintln!(
        "{} pods deleted through the churn, {} decoys kept",
        deleted.len(),
        decoy_set.len()
    );
    stop(plugin);
}

const REFUSED: &str = "pods labelled watch-refused=true may not be deleted (watch test)";

/// A ValidatingAdmissionPolicy refusing deletes of the pods labelled
/// `watch-refused=true` in one namespace, removed when dropped.
struct Refusal(String);

impl Drop for Refusal {
    fn drop(&mut self) {
        let _ = kubectl_as(
            ADMIN_CONTEXT,
            &[
                "delete",
                "validatingadmissionpolicybinding,validatingadmissionpolicy",
                &self.0,
                "--ignore-not-found",
                "--wait=false",
            ],
            None,
        );
    }
}

async fn refuse_deletes_in(ns: &TestNamespace, probe: &str) -> Refusal {
    let name = format!("watch-{}", ns.name());
    let yaml = format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["DELETE"]
      resources: ["pods"]
  validations:
  - expression: "!has(oldObject.metadata.labels) || !('watch-refused' in oldObject.metadata.labels)"
    message: "{REFUSED}"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: {ns}
"#,
        ns = ns.name()
    );
    let refusal = Refusal(name);
    let out = kubectl_as(ADMIN_CONTEXT, &["apply", "-f", "-"], Some(&yaml));
    assert!(out.status.success(), "{}", stderr(&out));
    let dp = kube::api::DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    poll_until(
        "the policy to refuse deletes",
        Duration::from_secs(30),
        || async {
            match ns.pods().delete(probe, &dp).await {
                Err(e) if e.to_string().contains(REFUSED) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    refusal
}

/// A delete the server refuses is tried again after its own backoff, not on
/// every change that follows (which would send it, and record an Event for
/// it, every second under churn); the others go on as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_delete_waits_its_backoff_instead_of_being_sent_on_every_change() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pod(
        &BarePod::succeeded("stuck")
            .evaluation("es")
            .test_id("held")
            .label("watch-refused", "true"),
    )
    .await;
    // Of the run, so the watch sees its changes; kept, so it stays.
    ns.create_pod(
        &BarePod::succeeded("bystander")
            .evaluation("eb")
            .test_id("held")
            .label(KEEP, "true"),
    )
    .await;
    let _refusal = refuse_deletes_in(&ns, "stuck").await;
    let offset = audit_log_len(&cluster().audit_log());
    let port = free_port();
    let mut plugin = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "-o",
            "json",
            "--yes",
            "--watch",
            "--interval",
            "10m",
        ])
        .args([
            "--test-id",
            "held",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .spawn();
    let first = tokio::task::block_in_place(|| plugin.stdout_line_within(Duration::from_secs(120)))
        .expect("the first reconcile's report");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(item(&first, "stuck")["result"], "failed", "{first}");
    let started = Instant::now();
    // Changes, each reconciled, well within the first hold (5 s).
    let mut n = reconciles(port);
    for i in 0..4 {
        ns.pods()
            .patch(
                "bystander",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"round": i.to_string()}}})),
            )
            .await
            .expect("label the bystander");
        n = reconciled_beyond(port, n).await;
    }
    let within_hold = started.elapsed() < Duration::from_secs(5);
    // A new pod of the run still goes at once.
    ns.create_pod(&BarePod::succeeded("fresh").evaluation("ef").test_id("held"))
        .await;
    pods_become(&ns, &["bystander", "stuck"], Duration::from_secs(60)).await;
    audit_barrier().await;
    let attempts = |name: &str| {
        read_audit_log(&cluster().audit_log(), offset, ns.name())
            .iter()
            .filter(|e| e.verb == "delete" && e.name() == name && AuditFilter::plugin().matches(e))
            .count()
    };
    let tried = attempts("stuck");
    if within_hold {
        assert_eq!(
            tried, 1,
            "the refused delete was sent again before its hold ended"
        );
    } else {
        // A slow machine: the hold may have ended once during the changes.
        assert!(tried <= 2, "sent {tried} times");
    }
    // Held back, then tried again once its hold is over: refused again.
    poll_until("the second try", Duration::from_secs(60), || async {
        audit_barrier().await;
        let tried = attempts("stuck");
        if tried >= 2 {
            Ok(())
        } else {
            Err(format!("{tried}"))
        }
    })
    .await;
    plugin.signal("TERM");
    let limit = plugin.elapsed() + Duration::from_secs(30);
    let done = plugin.wait(limit);
    assert_eq!(done.code, Some(1), "a reconcile failed: {}", done.stderr);
    assert!(
        done.stderr.contains("trying again in 5s"),
        "{}",
        done.stderr
    );
}

/// `--max-delete` holds for each reconcile: one that would delete more
/// deletes nothing and is tried again after a backoff; once no more than
/// that qualify, they go.
#[tokio::test(flavor = "multi_thread")]
async fn max_delete_holds_for_each_reconcile() {
    let ns = TestNamespace::for_current_test().await;
    ns.create_pods(["a", "b", "c"].map(|n| BarePod::succeeded(n).evaluation(n).test_id("md")))
        .await;
    let port = free_port();
    let plugin = ns
        .plugin()
        .args([
            "-n",
            ns.name(),
            "-o",
            "json",
            "--yes",
            "--watch",
            "--interval",
            "10m",
        ])
        .args(["--test-id", "md", "--max-delete", "2"])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        .spawn();
    poll_until(
        "a reconcile refused by --max-delete",
        Duration::from_secs(60),
        || async {
            match scrape(port, "crucible_clean_cycles_total", &[("outcome", "error")]) {
                Some(n) if n >= 1.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(ns.pod_names().await, ["a", "b", "c"], "nothing deleted");
    ns.pods()
        .delete("a", &Default::default())
        .await
        .expect("delete a");
    pods_become(&ns, &[], Duration::from_secs(120)).await;
    plugin.signal("TERM");
    let limit = plugin.elapsed() + Duration::from_secs(30);
    let done = plugin.wait(limit);
    assert_eq!(done.code, Some(1), "a reconcile failed: {}", done.stderr);
    assert!(done.stderr.contains("--max-delete"), "{}", done.stderr);
}

/// `--level all`: a job is the unit, and a keep marker on any of its pods
/// keeps it, whatever that pod's labels (the watch follows every pod's
/// metadata for it); marked while the watch runs, too.
#[tokio::test(flavor = "multi_thread")]
async fn a_kept_pod_keeps_its_finished_job_under_the_watch() {
    let ns = TestNamespace::for_current_test().await;
    // Runs for 8 s, then succeeds.
    let kept_job = EvalJob::succeeding("kp")
        .test_id("ka")
        .pod_annotation("pod-complete.stage.kwok.x-k8s.io/delay", "8s");
    ns.create_job(&kept_job).await;
    let pods = ns.wait_job_pods_phase(&kept_job.name(), "Running").await;
    let kept_pod = pods[0].metadata.name.clone().unwrap();
    let (plugin, _) = watcher(&ns, &["--level", "all", "--test-id", "ka"]).await;
    // Marked keep while it runs, before its job could qualify.
    ns.pods()
        .patch(
            &kept_pod,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {KEEP: "true"}}})),
        )
        .await
        .expect("mark the pod keep");
    ns.wait_job_complete(&kept_job.name()).await;
    // Another job of the run finishes after it and goes: the watch has
    // planned since the kept job finished.
    let goes = EvalJob::succeeding("go").test_id("ka");
    ns.create_job(&goes).await;
    poll_until("the other job to go", Duration::from_secs(60), || async {
        let jobs = ns.job_names().await;
        if jobs.contains(&goes.name()) {
            Err(format!("{jobs:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(
        ns.job_names().await,
        [kept_job.name()],
        "the kept pod's job stays"
    );
    assert!(ns.pod_names().await.contains(&kept_pod));
    stop(plugin);
}

/// A keep-until ends by the clock alone: no event says so, and the next
/// re-list is ten minutes away, so only the watch's timer can delete the
/// pod soon after that moment (and not before it).
#[tokio::test(flavor = "multi_thread")]
async fn a_pod_kept_until_a_moment_is_deleted_soon_after_it() {
    let ns = TestNamespace::for_current_test().await;
    let until = chrono::Utc::now() + chrono::Duration::seconds(10);
    let until_text = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // What the annotation says (whole seconds).
    let until = time_of(&until_text);
    ns.create_pods([
        BarePod::succeeded("until")
            .evaluation("e-until")
            .annotation("crucible-clean/keep-until", &until_text)
            .finished_ago(Duration::from_secs(3600)),
        BarePod::succeeded("kept")
            .evaluation("e-kept")
            .label(KEEP, "true")
            .finished_ago(Duration::from_secs(3600)),
    ])
    .await;
    let (mut plugin, _) = watcher(&ns, &["--older-than", "1m", "--age-from", "finished"]).await;
    pods_become(&ns, &["kept"], Duration::from_secs(120)).await;
    let deletes: Vec<AuditEvent> = mutating_requests(ns.name(), &AuditFilter::plugin())
        .await
        .into_iter()
        .filter(|e| e.verb == "delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].name(), "until");
    let at = time_of(&deletes[0].request_received_timestamp);
    assert!(at >= until, "deleted at {at:?}, kept until {until_text}");
    eprintln!(
        "deleted {:.2}s after its keep-until",
        at.duration_since(until).unwrap_or_default().as_secs_f64()
    );
    assert!(!plugin.exited(), "the watch runs on until a signal");
    stop(plugin);
}
