//! Acceptance tests of the local control plane (tests/cluster) and of tests/support.
//! Each test works in its own namespace; the cluster is started once per run
//! (or taken from CRUCIBLE_TEST_CLUSTER=DIR).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;
use support::{audit::*, cluster::*, commands::*, objects::*, wait::*};

fn terminated_exit_code(pod: &Pod) -> Option<i32> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .terminated
        .as_ref()
        .map(|t| t.exit_code)
}

fn api_error_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

async fn job_pods(ns: &TestNamespace, job: &str) -> Vec<Pod> {
    ns.pods()
        .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .expect("list job pods")
        .items
}

#[tokio::test]
async fn fake_nodes_are_ready() {
    let client = admin_client().await;
    let nodes = Api::<Node>::all(client)
        .list(&ListParams::default().labels("type=kwok"))
        .await
        .unwrap();
    let mut names: Vec<String> = nodes
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, KWOK_NODES.to_vec());
    for n in &nodes.items {
        let ready = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.clone());
        assert_eq!(
            ready.as_deref(),
            Some("True"),
            "node {:?} not Ready",
            n.metadata.name
        );
        assert!(n
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_none_or(|t| t.is_empty()));
    }
}

#[tokio::test]
async fn job_pod_is_scheduled_runs_and_succeeds() {
    let ns = TestNamespace::new("job_pod_is_scheduled_runs_and_succeeds").await;
    let spec = EvalJob::succeeding("e-ok").test_id("t-1");
    ns.create_job(&spec).await;
    assert_eq!(spec.name(), "evaluation-job-e-ok");

    let job = ns.wait_job_complete(&spec.name()).await;
    let status = job.status.expect("job status");
    assert_eq!(status.succeeded, Some(1));
    assert_eq!(status.failed.unwrap_or(0), 0);

    let pods = job_pods(&ns, &spec.name()).await;
    assert_eq!(pods.len(), 1, "exactly one pod for the job");
    let pod = &pods[0];
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    assert!(
        KWOK_NODES.contains(&node.as_str()),
        "pod scheduled on a fake node, got {node:?}"
    );
    assert_eq!(pod_phase(pod), "Succeeded");
    assert_eq!(terminated_exit_code(pod), Some(0));
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("evaluation"));
    assert_eq!(labels.get("eval-id").map(String::as_str), Some("e-ok"));
    assert_eq!(labels.get("test-id").map(String::as_str), Some("t-1"));
    assert!(
        pod.status.as_ref().and_then(|s| s.pod_ip.clone()).is_some(),
        "kwok assigned a pod IP"
    );
}

#[tokio::test]
async fn job_labelled_to_fail_fails_and_long_running_job_keeps_running() {
    let ns = TestNamespace::new("job_fail_and_keep_running").await;
    let failing = EvalJob::failing("e-bad");
    let running = EvalJob::running("e-long");
    ns.create_job(&failing).await;
    ns.create_job(&running).await;

    let job = ns.wait_job_failed(&failing.name()).await;
    assert_eq!(job.status.as_ref().and_then(|s| s.failed), Some(1));
    let pods = job_pods(&ns, &failing.name()).await;
    assert_eq!(pods.len(), 1, "backoffLimit 0: no retry pod");
    assert_eq!(pod_phase(&pods[0]), "Failed");
    assert_eq!(terminated_exit_code(&pods[0]), Some(1));

    let pods = ns.wait_job_pods_phase(&running.name(), "Running").await;
    assert_eq!(pods.len(), 1);
    // Well past the default 1-1.5 s completion delay: still running.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pods = job_pods(&ns, &running.name()).await;
    assert_eq!(
        pods.iter().map(pod_phase).collect::<Vec<_>>(),
        vec!["Running"]
    );
    let job = ns.jobs().get(&running.name()).await.unwrap();
    assert_eq!(job.status.as_ref().and_then(|s| s.active), Some(1));
    assert_eq!(
        job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0),
        0
    );
}

#[tokio::test]
async fn bare_pods_keep_their_state() {
    let ns = TestNamespace::new("bare_pods_keep_their_state").await;
    let finished = SystemTime::now() - Duration::from_secs(2 * 3600);
    let ok = ns
        .create_pod(
            &BarePod::succeeded("done")
                .evaluation("e1")
                .finished_at(finished)
                .annotation("a", "b"),
        )
        .await;
    let bad = ns
        .create_pod(
            &BarePod::failed("broken")
                .exit_code(3)
                .finished_ago(Duration::from_secs(60)),
        )
        .await;
    let run = ns
        .create_pod(&BarePod::running("forever").evaluation("e2"))
        .await;
    assert_eq!(pod_phase(&ok), "Succeeded");
    assert_eq!(pod_phase(&bad), "Failed");
    assert_eq!(pod_phase(&run), "Running");
    let node = run
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap_or_default();
    assert!(
        KWOK_NODES.contains(&node.as_str()),
        "running bare pod on a fake node, got {node:?}"
    );

    // Longer than any kwok stage delay: nothing changes them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ok = ns.pods().get("done").await.unwrap();
    let bad = ns.pods().get("broken").await.unwrap();
    let run = ns.pods().get("forever").await.unwrap();
    assert_eq!(pod_phase(&ok), "Succeeded");
    assert_eq!(pod_phase(&bad), "Failed");
    assert_eq!(pod_phase(&run), "Running");
    assert_eq!(terminated_exit_code(&ok), Some(0));
    assert_eq!(terminated_exit_code(&bad), Some(3));
    let finished_at = ok
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .finished_at
        .clone()
        .expect("finishedAt");
    assert_eq!(
        finished_at.0.as_second(),
        k8s_openapi::jiff::Timestamp::try_from(finished)
            .unwrap()
            .as_second()
    );
    assert_eq!(
        ok.metadata.labels.unwrap().get("app").map(String::as_str),
        Some("evaluation")
    );
    assert_eq!(ns.pod_names().await, vec!["broken", "done", "forever"]);

    // A running pod on a fake node goes away promptly when deleted (kwok's fast pod-delete).
    ns.pods()
        .delete("forever", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&ns.pods(), "forever", Duration::from_secs(10)).await;
    ns.pods()
        .delete("done", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&ns.pods(), "done", Duration::from_secs(10)).await;
    assert_eq!(ns.pod_names().await, vec!["broken"]);
}

#[tokio::test]
async fn deleting_a_job_background_removes_its_pod_orphan_keeps_it() {
    let ns = TestNamespace::new("job_delete_propagation").await;
    let bg = EvalJob::succeeding("bg");
    let orphan = EvalJob::succeeding("orphan");
    ns.create_job(&bg).await;
    ns.create_job(&orphan).await;
    ns.wait_job_complete(&bg.name()).await;
    ns.wait_job_complete(&orphan.name()).await;
    let bg_pod = job_pods(&ns, &bg.name()).await[0]
        .metadata
        .name
        .clone()
        .unwrap();
    let orphan_pod = job_pods(&ns, &orphan.name()).await[0]
        .metadata
        .name
        .clone()
        .unwrap();

    ns.jobs()
        .delete(&bg.name(), &DeleteParams::background())
        .await
        .unwrap();
    ns.wait_job_gone(&bg.name()).await;
    ns.wait_pod_gone(&bg_pod).await; // garbage collector

    ns.jobs()
        .delete(&orphan.name(), &DeleteParams::orphan())
        .await
        .unwrap();
    ns.wait_job_gone(&orphan.name()).await;
    // The garbage collector orphans the pod: it drops the owner reference and keeps the pod.
    let pods = ns.pods();
    let pod = poll_until(
        "the orphaned pod to lose its owner reference",
        DEFAULT_TIMEOUT,
        || async {
            let p = pods.get(&orphan_pod).await.map_err(|e| e.to_string())?;
            match &p.metadata.owner_references {
                Some(refs) if !refs.is_empty() => Err(format!("ownerReferences {refs:?}")),
                _ => Ok(p),
            }
        },
    )
    .await;
    assert!(pod.metadata.deletion_timestamp.is_none());
    assert_eq!(pod_phase(&pod), "Succeeded");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ns.pod_names().await, vec![orphan_pod]);
    assert!(ns.job_names().await.is_empty());
}

#[tokio::test]
async fn resource_quota_is_tracked_and_enforced() {
    let ns = TestNamespace::new("resource_quota_is_tracked_and_enforced").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(ns.client(), ns.name());
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "pods"},
        "spec": {"hard": {"count/pods": "5"}},
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    poll_until(
        "the quota controller to write the quota status",
        DEFAULT_TIMEOUT,
        || async {
            let q = quotas.get("pods").await.map_err(|e| e.to_string())?;
            let st = q.status.clone().unwrap_or_default();
            let hard = st
                .hard
                .unwrap_or_default()
                .get("count/pods")
                .map(|q| q.0.clone());
            let used = st
                .used
                .unwrap_or_default()
                .get("count/pods")
                .map(|q| q.0.clone());
            if hard.as_deref() == Some("5") && used.as_deref() == Some("0") {
                Ok(())
            } else {
                Err(format!("hard {hard:?} used {used:?}"))
            }
        },
    )
    .await;

    for i in 0..5 {
        ns.create_pod(&BarePod::succeeded(&format!("p{i}"))).await;
    }
    let sixth: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p5"},
        "spec": {"nodeName": STATIC_NODE, "containers": [{"name": "main", "image": "x"}]},
    }))
    .unwrap();
    let err = ns
        .pods()
        .create(&PostParams::default(), &sixth)
        .await
        .expect_err("sixth pod must be rejected");
    assert_eq!(api_error_code(&err), Some(403), "{err}");
    assert!(err.to_string().contains("exceeded quota"), "{err}");
    assert_eq!(ns.pod_names().await, vec!["p0", "p1", "p2", "p3", "p4"]);
    let q = quotas.get("pods").await.unwrap();
    assert_eq!(
        q.status
            .unwrap()
            .used
            .unwrap()
            .get("count/pods")
            .map(|q| q.0.as_str()),
        Some("5")
    );
}

#[tokio::test]
async fn ci_runner_and_viewer_permissions() {
    let ns = TestNamespace::new("ci_runner_and_viewer_permissions").await;
    let admin = admin_client().await;
    // Pods in the shared `crucible` namespace get unique names.
    let in_crucible_1 = unique_name("rbac-a");
    let in_crucible_2 = unique_name("rbac-b");
    create_bare_pod(
        &admin,
        CRUCIBLE_NAMESPACE,
        &BarePod::succeeded(&in_crucible_1),
    )
    .await;
    create_bare_pod(
        &admin,
        CRUCIBLE_NAMESPACE,
        &BarePod::succeeded(&in_crucible_2),
    )
    .await;
    ns.create_pod(&BarePod::succeeded("elsewhere")).await;
    create_eval_job(&admin, ns.name(), &EvalJob::running("rbac")).await;

    let runner = client_for(CI_RUNNER_CONTEXT).await;
    let viewer = client_for(VIEWER_CONTEXT).await;
    let runner_crucible: Api<Pod> = Api::namespaced(runner.clone(), CRUCIBLE_NAMESPACE);
    let runner_other: Api<Pod> = Api::namespaced(runner.clone(), ns.name());
    let viewer_crucible: Api<Pod> = Api::namespaced(viewer.clone(), CRUCIBLE_NAMESPACE);
    let viewer_other: Api<Pod> = Api::namespaced(viewer.clone(), ns.name());

    // ci-runner: delete in `crucible` yes, anywhere else no; no create at all.
    let err = runner_other
        .delete("elsewhere", &DeleteParams::default())
        .await
        .expect_err("ci-runner delete elsewhere");
    assert_eq!(api_error_code(&err), Some(403), "{err}");
    let err = runner_other
        .list(&ListParams::default())
        .await
        .expect_err("ci-runner list elsewhere");
    assert_eq!(api_error_code(&err), Some(403), "{err}");
    let err = Api::<Job>::namespaced(runner.clone(), ns.name())
        .delete("evaluation-job-rbac", &DeleteParams::background())
        .await
        .expect_err("ci-runner delete job elsewhere");
    assert_eq!(api_error_code(&err), Some(403), "{err}");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": unique_name("rbac-create")},
        "spec": {"containers": [{"name": "main", "image": "x"}]},
    }))
    .unwrap();
    let err = runner_crucible
        .create(&PostParams::default(), &pod)
        .await
        .expect_err("ci-runner create");
    assert_eq!(api_error_code(&err), Some(403), "{err}");
    let listed = runner_crucible
        .list(&ListParams::default())
        .await
        .expect("ci-runner may list in crucible");
    assert!(listed
        .items
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some(in_crucible_1.as_str())));
    Api::<ResourceQuota>::namespaced(runner.clone(), CRUCIBLE_NAMESPACE)
        .list(&ListParams::default())
        .await
        .expect("ci-runner may list resourcequotas in crucible");
    runner_crucible
        .delete(&in_crucible_1, &DeleteParams::default())
        .await
        .expect("ci-runner may delete in crucible");
    wait_gone(
        &Api::<Pod>::namespaced(admin.clone(), CRUCIBLE_NAMESPACE),
        &in_crucible_1,
        DEFAULT_TIMEOUT,
    )
    .await;

    // viewer: reads everything, deletes nothing.
    viewer_other
        .list(&ListParams::default())
        .await
        .expect("viewer may list anywhere");
    viewer_crucible
        .get(&in_crucible_2)
        .await
        .expect("viewer may get");
    for (api, name) in [
        (&viewer_crucible, in_crucible_2.as_str()),
        (&viewer_other, "elsewhere"),
    ] {
        let err = api
            .delete(name, &DeleteParams::default())
            .await
            .expect_err("viewer delete");
        assert_eq!(api_error_code(&err), Some(403), "{err}");
    }
    let err = Api::<Job>::namespaced(viewer.clone(), ns.name())
        .delete("evaluation-job-rbac", &DeleteParams::background())
        .await
        .expect_err("viewer delete job");
    assert_eq!(api_error_code(&err), Some(403), "{err}");
    let err = viewer_other
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect_err("viewer deletecollection");
    assert_eq!(api_error_code(&err), Some(403), "{err}");

    // Nothing but the one allowed delete happened.
    assert_eq!(
        ns.pod_names().await.first().map(String::as_str),
        Some("elsewhere")
    );
    assert_eq!(ns.job_names().await, vec!["evaluation-job-rbac"]);
    assert!(Api::<Pod>::namespaced(admin.clone(), CRUCIBLE_NAMESPACE)
        .get_opt(&in_crucible_2)
        .await
        .unwrap()
        .is_some());
    Api::<Pod>::namespaced(admin, CRUCIBLE_NAMESPACE)
        .delete(&in_crucible_2, &DeleteParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn audit_log_records_deletes_and_tells_identities_apart() {
    let ns = TestNamespace::new("audit_log_records_deletes").await;
    for name in ["a1", "a2", "a3"] {
        ns.create_pod(&BarePod::succeeded(name).label("app", "evaluation"))
            .await;
    }
    let job = EvalJob::succeeding("audited");
    ns.create_job(&job).await;
    ns.wait_job_complete(&job.name()).await;

    // Requests made with a distinct user agent, like the plugin's would be.
    let me = client_with(ADMIN_CONTEXT, "acceptance-audit/1.0").await;
    let pods: Api<Pod> = Api::namespaced(me.clone(), ns.name());
    pods.delete("a1", &DeleteParams::default()).await.unwrap();
    pods.delete("a2", &DeleteParams::default()).await.unwrap();
    let err = pods
        .delete("does-not-exist", &DeleteParams::default())
        .await
        .expect_err("404");
    assert_eq!(api_error_code(&err), Some(404));
    Api::<Job>::namespaced(me.clone(), ns.name())
        .delete_collection(
            &DeleteParams::background(),
            &ListParams::default().labels("eval-id=audited"),
        )
        .await
        .unwrap();

    let mine = ns
        .mutating_requests(&AuditFilter::user_agent("acceptance-audit"))
        .await;
    let summary: Vec<(String, String, String, i32)> = mine
        .iter()
        .map(|e| {
            (
                e.verb.clone(),
                e.resource().to_string(),
                e.name().to_string(),
                e.code(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("delete".into(), "pods".into(), "a1".into(), 200),
            ("delete".into(), "pods".into(), "a2".into(), 200),
            ("delete".into(), "pods".into(), "does-not-exist".into(), 404),
            ("deletecollection".into(), "jobs".into(), "".into(), 200),
        ]
    );
    for e in &mine {
        assert_eq!(e.user.username, ADMIN_USER);
        assert!(
            e.user.groups.iter().any(|g| g == "system:masters"),
            "{:?}",
            e.user.groups
        );
        assert_eq!(e.user_agent, "acceptance-audit/1.0");
        assert!(
            e.request_uri
                .contains(&format!("/namespaces/{}/", ns.name())),
            "{}",
            e.request_uri
        );
    }
    let dc = &mine[3];
    assert!(
        dc.request_uri.contains("labelSelector=eval-id%3Daudited"),
        "{}",
        dc.request_uri
    );

    // The support module's own requests are excluded unless asked for.
    let all = ns.mutating_requests(&AuditFilter::all()).await;
    assert!(all.iter().all(|e| e.user_agent != SUPPORT_USER_AGENT));
    let support = ns
        .mutating_requests(&AuditFilter::username(ADMIN_USER).including_support())
        .await;
    let created: BTreeSet<&str> = support
        .iter()
        .filter(|e| e.verb == "create" && e.resource() == "pods" && e.subresource().is_empty())
        .map(|e| e.name())
        .collect();
    assert_eq!(created, BTreeSet::from(["a1", "a2", "a3"]));

    // Each component has its own identity.
    let kcm = ns
        .mutating_requests(&AuditFilter::username(CONTROLLER_MANAGER_USER))
        .await;
    assert!(
        kcm.iter()
            .any(|e| e.verb == "create" && e.resource() == "pods"),
        "{kcm:#?}"
    );
    let sched = ns
        .mutating_requests(&AuditFilter::username(SCHEDULER_USER))
        .await;
    assert!(
        sched
            .iter()
            .any(|e| e.verb == "create" && e.subresource() == "binding"),
        "{sched:#?}"
    );
    let kwok = ns
        .mutating_requests(&AuditFilter::username(KWOK_USER))
        .await;
    assert!(
        kwok.iter()
            .any(|e| e.verb == "patch" && e.subresource() == "status"),
        "{kwok:#?}"
    );
    assert!(all
        .iter()
        .all(|e| e.user.username != ADMIN_USER || e.user_agent.starts_with("acceptance-audit")));
}

// ------------------------------------------------------------------------------------------
// up / down on a separate directory
// ------------------------------------------------------------------------------------------

fn pid_alive(pid: u32) -> bool {
    // A zombie has an empty cmdline; it is gone for our purposes.
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| !c.is_empty())
        .unwrap_or(false)
}

fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) {
                found.push(pid);
            }
        }
    }
    found
}

#[tokio::test]
async fn up_then_down_leaves_nothing_behind() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("second-cluster");
    let out = Command::new(cluster_script("up"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "up failed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    // Ensure `down` runs even if an assertion below fails.
    struct Down<'a>(&'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = Command::new(cluster_script("down")).arg(self.0).output();
        }
    }
    let guard = Down(&dir);

    let mut pids = Vec::new();
    for c in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    ] {
        let pid = component_pid(&dir, c);
        assert!(pid_alive(pid), "{c} (pid {pid}) is running");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(
            exe.file_name().unwrap().to_string_lossy(),
            c,
            "pid file of {c} names the component itself"
        );
        pids.push(pid);
    }
    // Its own API server, with the three contexts and the namespace.
    let kubeconfig = dir.join("kubeconfig");
    let kc = Kubeconfig::read_from(&kubeconfig).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("admin"));
    let contexts: BTreeSet<String> = kc.contexts.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        contexts,
        BTreeSet::from(["admin".into(), "ci-runner".into(), "viewer".into()])
    );
    assert_eq!(kc.clusters.len(), 1);
    assert_ne!(kc.clusters[0].cluster.as_ref().unwrap().server, {
        let main = Kubeconfig::read_from(kubeconfig_path()).unwrap();
        main.clusters[0].cluster.as_ref().unwrap().server.clone()
    });
    let client = client_at(&kubeconfig, VIEWER_CONTEXT, SUPPORT_USER_AGENT).await;
    let ns = Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .get("crucible")
        .await
        .unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("crucible"));
    assert!(dir.join("audit.log").is_file());

    // A second `up` on the same DIR is refused while it runs.
    let again = Command::new(cluster_script("up"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    let out = Command::new(cluster_script("down"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "down failed: {}", stderr(&out));
    std::mem::forget(guard);
    for pid in &pids {
        assert!(!pid_alive(*pid), "pid {pid} still running after down");
    }
    assert_eq!(
        processes_mentioning(&dir),
        Vec::<u32>::new(),
        "processes still refer to {}",
        dir.display()
    );
    assert!(!dir.exists(), "{} removed", dir.display());
    // down is idempotent.
    assert!(Command::new(cluster_script("down"))
        .arg(&dir)
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn down_refuses_a_directory_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious"), "data").unwrap();
    let out = Command::new(cluster_script("down"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(dir.path().join("precious").exists());
}
