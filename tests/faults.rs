//! Faults against the real control plane: a server that never answers, an API
//! server frozen in the middle of a run, throttling, server errors and dropped
//! connections injected by a proxy (`tests/support/faultproxy.py`), deletes
//! refused by admission, and users who lack a permission.
//!
//! Each test prints the plugin's exit code and duration (`--nocapture`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use serde_json::Value;

use support::{audit::*, cluster::*, commands::*, objects::*, wait::*};

// ------------------------------------------------------------------------------------------
// Running the plugin
// ------------------------------------------------------------------------------------------

/// The plugin with `KUBECONFIG` = `kubeconfig` and `HOME` (XDG dirs) inside `home`.
fn plugin_at(kubeconfig: &Path, home: &Path) -> PluginCmd {
    let mut cmd = PluginCmd::with_home(home);
    cmd.kubeconfig(kubeconfig);
    cmd
}

/// name -> (result, error) of a report's items.
fn results(report: &Value) -> BTreeMap<String, (String, Option<String>)> {
    report["items"]
        .as_array()
        .expect("a CleanupReport has items")
        .iter()
        .map(|i| {
            (
                i["name"].as_str().expect("name").to_string(),
                (
                    i["result"].as_str().unwrap_or_default().to_string(),
                    i["error"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

fn tally(report: &Value) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for (result, _) in results(report).values() {
        *t.entry(result.clone()).or_insert(0) += 1;
    }
    t
}

/// The report must tell the truth about every row: what it says is deleted (or
/// already gone) is gone, and what it says failed is still there. Returns
/// `(false successes, false failures)`, each sorted.
fn false_results(report: &Value, remaining: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    let mut false_ok = vec![];
    let mut false_failed = vec![];
    for (name, (result, _)) in results(report) {
        match result.as_str() {
            "deleted" | "gone" if remaining.contains(&name) => false_ok.push(name),
            "failed" if !remaining.contains(&name) => false_failed.push(name),
            _ => {}
        }
    }
    (false_ok, false_failed)
}

fn mentions_a_timeout(s: &str) -> bool {
    let s = s.to_lowercase();
    s.contains("timed out") || s.contains("timeout") || s.contains("time out")
}

// ------------------------------------------------------------------------------------------
// The fault proxy (tests/support/faultproxy.py)
// ------------------------------------------------------------------------------------------

/// A running `faultproxy.py`, killed when dropped.
struct FaultProxy {
    child: Child,
    /// `http://127.0.0.1:PORT` or `https://…` (silent TLS mode).
    url: String,
}

impl FaultProxy {
    fn spawn(args: &[&str]) -> Self {
        let script = repo_root().join("tests/support/faultproxy.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed for the fault proxy");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .map_err(|e| e.to_string());
        match line.trim().strip_prefix("listening ") {
            Some(url) => FaultProxy {
                url: url.to_string(),
                child,
            },
            None => {
                let _ = child.kill();
                let status = child.wait();
                panic!("fault proxy {args:?} did not start ({read:?}, {status:?}): {line:?}");
            }
        }
    }

    /// Completes TLS, reads each request and never answers.
    fn silent_tls() -> Self {
        Self::spawn(&["--silent", "--tls"])
    }

    /// Forwards to the shared cluster as its admin; `rate` of the DELETEs get one of
    /// `faults` instead (at most twice per path, so a client's retries get through).
    fn forwarding(rate: f64, faults: &[&str], seed: u64) -> Self {
        let kubeconfig = kubeconfig_path();
        Self::spawn(&[
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8 path"),
            "--context",
            ADMIN_CONTEXT,
            "--rate",
            &rate.to_string(),
            "--faults",
            &faults.join(","),
            "--seed",
            &seed.to_string(),
            "--max-per-path",
            "2",
        ])
    }

    /// A kubeconfig in `dir` whose only context points at this proxy (no credentials:
    /// the proxy authenticates upstream).
    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let tls = if self.url.starts_with("https://") {
            "\n    insecure-skip-tls-verify: true"
        } else {
            ""
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: faultproxy\n  cluster:\n    server: {}{tls}\n\
             users:\n- name: through-proxy\n  user: {{}}\ncontexts:\n- name: faultproxy\n  context: \
             {{cluster: faultproxy, user: through-proxy, namespace: crucible}}\ncurrent-context: faultproxy\n",
            self.url
        );
        let path = dir.join("faultproxy.kubeconfig");
        std::fs::write(&path, text).expect("write the proxy kubeconfig");
        path
    }

    /// `GET /__faultproxy/<what>` (stats or log), as JSON.
    fn control(&self, what: &str) -> Value {
        let addr = self
            .url
            .strip_prefix("http://")
            .expect("control endpoints are plain http");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the proxy");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /__faultproxy/{what} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp)
            .expect("read the proxy's answer");
        let body = resp
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("proxy {what}: {e}: {resp}"))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// 1. A server that completes TLS and never answers
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_server_ends_the_run_with_exit_4_within_the_request_timeout() {
    let home = tempfile::tempdir().unwrap();
    let proxy = FaultProxy::silent_tls();
    let kc = proxy.kubeconfig(home.path());
    let args = ["-n", "crucible", "--test-id", "t", "--yes"];

    // Both at once: the default timeout (30 s) and --request-timeout 2s.
    let short = plugin_at(&kc, home.path())
        .args(args)
        .args(["--request-timeout", "2s"])
        .spawn();
    let default = plugin_at(&kc, home.path()).args(args).spawn();
    let short = short.wait(Duration::from_secs(60));
    let default = default.wait(Duration::from_secs(90));
    eprintln!(
        "silent server, --request-timeout 2s: exit {:?} after {:.1}s; stderr: {}",
        short.code,
        short.elapsed.as_secs_f64(),
        short.stderr.trim_end()
    );
    eprintln!(
        "silent server, default timeout: exit {:?} after {:.1}s; stderr: {}",
        default.code,
        default.elapsed.as_secs_f64(),
        default.stderr.trim_end()
    );

    for (what, f, min, max) in [
        ("--request-timeout 2s", &short, 1.5, 12.0),
        ("the default timeout", &default, 25.0, 60.0),
    ] {
        assert!(!f.killed, "{what}: still running after {:?}", f.elapsed);
        assert_eq!(f.code, Some(4), "{what}: {f:?}");
        let secs = f.elapsed.as_secs_f64();
        assert!(
            (min..=max).contains(&secs),
            "{what}: ended after {secs:.1}s, expected {min}-{max}s: {f:?}"
        );
        assert_eq!(f.stderr.lines().count(), 1, "{what}: one line: {f:?}");
        assert!(f.stderr.starts_with("error:"), "{what}: {f:?}");
        assert!(mentions_a_timeout(&f.stderr), "{what}: {f:?}");
        assert_eq!(f.stdout, "", "{what}");
    }
}

// ------------------------------------------------------------------------------------------
// 2. The API server freezes in the middle of a run (a private cluster)
// ------------------------------------------------------------------------------------------

/// A SIGSTOPped process, continued when dropped (also on panic).
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Self {
        signal(pid, "STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_api_server_stops_the_run_without_a_false_success_and_a_rerun_finishes() {
    const PODS: usize = 1000;
    const FREEZE: Duration = Duration::from_secs(8);
    let t0 = Instant::now();
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap();
    eprintln!(
        "private cluster up after {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let client = cluster.admin_client().await;
    let ns = CRUCIBLE_NAMESPACE;
    let created = Instant::now();
    futures::stream::iter(0..PODS)
        .for_each_concurrent(24, |i| {
            let client = client.clone();
            async move {
                let pod = BarePod::succeeded(&format!("p-{i:04}"))
                    .evaluation(&format!("e{i}"))
                    .test_id("frozen");
                create_bare_pod(&client, ns, &pod).await;
            }
        })
        .await;
    eprintln!(
        "{PODS} finished pods created in {:.1}s",
        created.elapsed().as_secs_f64()
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let remaining = || async {
        pods.list_metadata(&ListParams::default().labels("test-id=frozen"))
            .await
            .expect("list the pods")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect::<BTreeSet<String>>()
    };

    let home = tempfile::tempdir().unwrap();
    let args = [
        "-n",
        ns,
        "--all",
        "--yes",
        "-o",
        "json",
        "--request-timeout",
        "3s",
    ];
    let offset = audit_log_len(&cluster.audit_log());
    let mut plugin = plugin_at(&cluster.kubeconfig(), home.path())
        .args(args)
        .spawn();
    // Freeze once deletes are under way.
    let wait_from = Instant::now();
    let deletes_before = loop {
        let n = plugin_deletes_since(&cluster.audit_log(), offset);
        if n >= 20 {
            break n;
        }
        if plugin.exited() {
            let f = plugin.wait(Duration::ZERO);
            panic!("the plugin ended before the freeze ({n} deletes seen): {f:?}");
        }
        assert!(
            wait_from.elapsed() < Duration::from_secs(60),
            "no deletes within 60 s ({n} so far)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let frozen_at = plugin.elapsed();
    let frozen = Frozen::freeze(cluster.pid("kube-apiserver"));
    assert!(
        !plugin.exited(),
        "the plugin ended before the freeze took effect"
    );
    eprintln!(
        "kube-apiserver frozen {:.1}s into the run, after {deletes_before} deletes (pid {})",
        frozen_at.as_secs_f64(),
        plugin.pid()
    );
    tokio::time::sleep(FREEZE).await;
    drop(frozen);
    let first = plugin.wait(Duration::from_secs(120));
    let report = first.report();
    eprintln!(
        "frozen run: exit {:?} after {:.1}s; results {:?}; stderr: {}",
        first.code,
        first.elapsed.as_secs_f64(),
        tally(&report),
        first.stderr.trim_end()
    );
    assert!(
        !first.killed,
        "the plugin did not end on its own: {first:?}"
    );
    let left = remaining().await;
    let (false_ok, _) = false_results(&report, &left);
    assert_eq!(
        false_ok,
        Vec::<String>::new(),
        "reported deleted or gone but still there"
    );
    assert!(
        matches!(first.code, Some(c) if c != 0),
        "a run cut off by a frozen API server must not exit 0: exit {:?}, results {:?}, {} pods left",
        first.code,
        tally(&report),
        left.len()
    );
    assert!(
        !left.is_empty(),
        "the freeze should leave pods behind for the rerun"
    );

    // The rerun with the default request timeout: an API server just thawed
    // may answer slowly for a while, and a slow answer is not what this test
    // is about.
    let second = plugin_at(&cluster.kubeconfig(), home.path())
        .args(&args[..args.len() - 2])
        .spawn()
        .wait(Duration::from_secs(120));
    let report = second.report();
    eprintln!(
        "rerun: exit {:?} after {:.1}s; results {:?}; {} pods were left",
        second.code,
        second.elapsed.as_secs_f64(),
        tally(&report),
        left.len()
    );
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    // What is left is only what is already being deleted: a delete the API server
    // was still working on when its client gave up can stop after setting
    // deletionTimestamp (grace period 0) and before removing the pod; without a
    // kubelet or the pod garbage collector such a pod stays, and the plugin must
    // skip it as terminating rather than report it deleted.
    let stuck: BTreeSet<String> = pods
        .list_metadata(&ListParams::default().labels("test-id=frozen"))
        .await
        .expect("list the pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter_map(|p| p.metadata.name)
        .collect();
    let rows = results(&report);
    let skipped: BTreeSet<String> = rows
        .iter()
        .filter(|(_, (r, _))| r == "skipped")
        .map(|(n, _)| n.clone())
        .collect();
    eprintln!("left terminating (deletionTimestamp set, never removed): {stuck:?}");
    assert_eq!(
        remaining().await,
        stuck,
        "the rerun finishes the job: only terminating pods may be left"
    );
    assert_eq!(skipped, stuck, "terminating pods are the skipped rows");
    eprintln!("whole test: {:.1}s", t0.elapsed().as_secs_f64());
}

// ------------------------------------------------------------------------------------------
// 3. Throttling, server errors and dropped connections (through the proxy)
// ------------------------------------------------------------------------------------------

async fn finished_pods(ns: &TestNamespace, n: usize) {
    ns.create_pods((0..n).map(|i| {
        BarePod::succeeded(&format!("p-{i:03}"))
            .evaluation(&format!("e{i}"))
            .test_id("t")
    }))
    .await;
}

/// The proxy's log entries for DELETEs of pods, grouped by path, in order.
fn deletes_by_path(log: &Value) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in log.as_array().expect("log is a list") {
        if e["method"] == "DELETE" {
            let path = e["path"].as_str().unwrap_or_default().to_string();
            by.entry(path).or_default().push(e.clone());
        }
    }
    by
}

fn pod_name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_server_errors_are_retried_honouring_retry_after() {
    const PODS: usize = 200;
    let ns = TestNamespace::for_current_test().await;
    finished_pods(&ns, PODS).await;
    let proxy = FaultProxy::forwarding(0.25, &["429", "500", "503"], 7);
    let kc = proxy.kubeconfig(ns.home());
    let mut cmd = plugin_at(&kc, ns.home());
    cmd.args(["-n", ns.name(), "--all", "--yes", "-o", "json"]);
    let f = cmd.spawn().wait(Duration::from_secs(120));
    let stats = proxy.control("stats");
    let report = f.report();
    eprintln!(
        "429/500/503 on 25% of deletes: exit {:?} after {:.1}s; results {:?}; proxy {stats}",
        f.code,
        f.elapsed.as_secs_f64(),
        tally(&report)
    );
    let left: BTreeSet<String> = ns.pod_names().await.into_iter().collect();
    let (false_ok, false_failed) = false_results(&report, &left);
    assert_eq!(false_ok, Vec::<String>::new(), "reported gone, still there");
    assert_eq!(false_failed, Vec::<String>::new(), "reported failed, gone");
    for fault in ["429", "500", "503"] {
        assert!(
            stats["injected"][fault].as_u64().unwrap_or(0) > 0,
            "no {fault} injected: {stats}"
        );
    }
    // At most two faults per path and four attempts: every delete gets through.
    assert_eq!(f.code, Some(0), "{}", f.stderr);
    assert_eq!(left, BTreeSet::new());
    assert_eq!(tally(&report).get("deleted"), Some(&PODS), "{report}");

    // Every injected answer was followed by a retry of the same path, and after a
    // 429 with Retry-After: 1 not sooner than a second later.
    let gaps = retry_gaps(&proxy.control("log"), &report);
    let after_429 = &gaps["429"];
    assert!(!after_429.is_empty(), "{gaps:?}");
    let min = after_429.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        min >= 0.95,
        "a retry came {min:.3}s after a 429 with Retry-After: 1: {after_429:?}"
    );
    eprintln!(
        "{} retries after a 429, the soonest {min:.2}s later; after 500: {}, after 503: {}",
        after_429.len(),
        gaps.get("500").map_or(0, Vec::len),
        gaps.get("503").map_or(0, Vec::len)
    );
}

/// For each injected fault, the seconds until the next DELETE of the same path
/// (the retry). Panics if a fault was never followed by a retry.
fn retry_gaps(log: &Value, report: &Value) -> BTreeMap<String, Vec<f64>> {
    let mut gaps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (path, events) in deletes_by_path(log) {
        for (i, e) in events.iter().enumerate() {
            let action = e["action"].as_str().unwrap_or_default();
            if action == "forward" {
                continue;
            }
            let next = events.get(i + 1).unwrap_or_else(|| {
                panic!(
                    "{action} on {path} was never retried (row {:?})",
                    results(report).get(pod_name_of(&path))
                )
            });
            let gap = next["t"].as_f64().unwrap() - e["t"].as_f64().unwrap();
            gaps.entry(action.to_string()).or_default().push(gap);
        }
    }
    gaps
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_never_produce_a_false_result() {
    const PODS: usize = 200;
    let ns = TestNamespace::for_current_test().await;
    finished_pods(&ns, PODS).await;
    let proxy = FaultProxy::forwarding(0.2, &["drop-before", "drop-after"], 11);
    let kc = proxy.kubeconfig(ns.home());
    let mut cmd = plugin_at(&kc, ns.home());
    cmd.args([
        "-n",
        ns.name(),
        "--all",
        "--yes",
        "-o",
        "json",
        "--request-timeout",
        "10s",
    ]);
    let f = cmd.spawn().wait(Duration::from_secs(120));
    let stats = proxy.control("stats");
    let report = f.report();
    eprintln!(
        "dropped connections on 20% of deletes: exit {:?} after {:.1}s; results {:?}; proxy {stats}; stderr: {}",
        f.code,
        f.elapsed.as_secs_f64(),
        tally(&report),
        f.stderr.trim_end()
    );
    for fault in ["drop-before", "drop-after"] {
        assert!(
            stats["injected"][fault].as_u64().unwrap_or(0) > 0,
            "no {fault} injected: {stats}"
        );
    }
    let left: BTreeSet<String> = ns.pod_names().await.into_iter().collect();
    let (false_ok, false_failed) = false_results(&report, &left);
    assert_eq!(false_ok, Vec::<String>::new(), "reported gone, still there");
    assert_eq!(
        false_failed,
        Vec::<String>::new(),
        "reported failed, but the delete had gone through"
    );
    let failed: BTreeSet<String> = results(&report)
        .into_iter()
        .filter(|(_, (r, _))| r == "failed")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(left, failed, "exactly the failed rows remain");
    match f.code {
        Some(0) => assert!(failed.is_empty()),
        Some(1) => assert!(!failed.is_empty(), "exit 1 names its failures"),
        other => panic!("exit {other:?}: {}", f.stderr),
    }
    assert_eq!(
        f.code,
        Some(0),
        "dropped connections are retried: {}",
        f.stderr
    );
    let gaps = retry_gaps(&proxy.control("log"), &report);
    eprintln!(
        "retried after drop-before: {}, after drop-after: {}",
        gaps.get("drop-before").map_or(0, Vec::len),
        gaps.get("drop-after").map_or(0, Vec::len)
    );
}

// ------------------------------------------------------------------------------------------
// 4. Deletes refused by a ValidatingAdmissionPolicy
// ------------------------------------------------------------------------------------------

const VAP_MESSAGE: &str = "pods labelled vap-protected=true may not be deleted (faults test)";

fn kubectl_admin(args: &[&str], stdin: Option<&str>) -> Output {
    kubectl_as(ADMIN_CONTEXT, args, stdin)
}

fn must(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A ValidatingAdmissionPolicy and its binding (cluster-scoped), removed when dropped.
struct AdmissionPolicy(String);

impl Drop for AdmissionPolicy {
    fn drop(&mut self) {
        let _ = kubectl_admin(
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

async fn protect_in(ns: &TestNamespace) -> AdmissionPolicy {
    let name = format!("faults-{}", ns.name());
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
  - expression: "!has(oldObject.metadata.labels) || !('vap-protected' in oldObject.metadata.labels) || oldObject.metadata.labels['vap-protected'] != 'true'"
    message: "{VAP_MESSAGE}"
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
    let policy = AdmissionPolicy(name);
    must(
        kubectl_admin(&["apply", "-f", "-"], Some(&yaml)),
        "apply the admission policy",
    );
    policy
}

/// Waits until the policy refuses a (dry-run) delete of `protected`.
async fn wait_until_refused(ns: &TestNamespace, protected: &str) {
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    poll_until(
        "the admission policy to refuse deletes",
        Duration::from_secs(30),
        || async {
            match ns.pods().delete(protected, &dp).await {
                Err(e) if e.to_string().contains(VAP_MESSAGE) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_refused_by_admission_are_failed_rows_with_the_servers_message() {
    let ns = TestNamespace::for_current_test().await;
    let protected = ["keep-0", "keep-1", "keep-2"];
    let free = ["ok-0", "ok-1", "ok-2", "ok-3", "ok-4"];
    for (i, p) in protected.iter().enumerate() {
        ns.create_pod(
            &BarePod::succeeded(p)
                .evaluation(&format!("k{i}"))
                .test_id("t")
                .label("vap-protected", "true"),
        )
        .await;
    }
    for (i, p) in free.iter().enumerate() {
        ns.create_pod(&BarePod::failed(p).evaluation(&format!("o{i}")).test_id("t"))
            .await;
    }
    let _policy = protect_in(&ns).await;
    wait_until_refused(&ns, "keep-0").await;

    let mut cmd = ns.plugin();
    cmd.args(["-n", ns.name(), "--test-id", "t", "--yes", "-o", "json"]);
    let out = cmd.output();
    let stderr = stderr(&out);
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    eprintln!(
        "admission refusal, -o json: exit {:?}; results {:?}; stderr: {}",
        out.status.code(),
        tally(&report),
        stderr.trim_end()
    );
    let rows = results(&report);
    for p in protected {
        let (result, error) = &rows[p];
        assert_eq!(result, "failed", "{p}: {report}");
        let error = error.as_deref().unwrap_or_default();
        assert!(
            error.contains(VAP_MESSAGE),
            "{p}: the server's message: {error:?}"
        );
    }
    for p in free {
        assert_eq!(rows[p].0, "deleted", "{p}: {report}");
    }
    assert_eq!(report["summary"]["failed"], 3, "{report}");
    assert_eq!(report["summary"]["deleted"], 5, "{report}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(ns.pod_names().await, protected);

    // -o name: stdout lists only what was deleted; the failures go to stderr.
    let more = ["more-0", "more-1"];
    for (i, p) in more.iter().enumerate() {
        ns.create_pod(
            &BarePod::succeeded(p)
                .evaluation(&format!("m{i}"))
                .test_id("t"),
        )
        .await;
    }
    let out = ns
        .plugin()
        .args(["-n", ns.name(), "--test-id", "t", "--yes", "-o", "name"])
        .output();
    let stdout = stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "admission refusal, -o name: exit {:?}\nstdout:\n{stdout}stderr:\n{stderr}",
        out.status.code()
    );
    let mut printed: Vec<&str> = stdout.lines().collect();
    printed.sort();
    assert_eq!(printed, ["pod/more-0", "pod/more-1"], "stdout: {stdout}");
    for p in protected {
        assert!(stderr.contains(p), "stderr names {p}: {stderr}");
    }
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(ns.pod_names().await, protected);
}

// ------------------------------------------------------------------------------------------
// 5. Users who lack a permission
// ------------------------------------------------------------------------------------------

/// The Role YAML printed after the refusal: from its `apiVersion:` line to the end
/// (or to a blank line).
fn role_in(stderr: &str) -> String {
    let start = stderr
        .find("apiVersion: rbac.authorization.k8s.io/v1")
        .unwrap_or_else(|| panic!("no Role on stderr: {stderr}"));
    let mut doc = String::new();
    for line in stderr[start..].lines() {
        if line.trim().is_empty() {
            break;
        }
        doc.push_str(line);
        doc.push('\n');
    }
    doc
}

/// Checks the Role printed in `stderr`: a namespaced Role for `ns` whose pod rule has
/// `verb`, accepted by `kubectl apply --dry-run=server`. Returns its YAML and name.
fn check_role(stderr: &str, ns: &str, verb: &str) -> (String, String) {
    let yaml = role_in(stderr);
    assert!(
        yaml.starts_with("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"),
        "{yaml}"
    );
    let role: Value = serde_norway::from_str(&yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"));
    assert_eq!(role["metadata"]["namespace"], ns, "{yaml}");
    let grants_pods = role["rules"].as_array().into_iter().flatten().any(|r| {
        r["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x == "pods")
            && r["verbs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x == verb)
    });
    assert!(grants_pods, "the Role grants {verb} on pods: {yaml}");
    let applied = must(
        kubectl_admin(&["apply", "--dry-run=server", "-f", "-"], Some(&yaml)),
        "kubectl apply --dry-run=server of the printed Role",
    );
    assert!(applied.contains("(server dry run)"), "{applied}");
    let name = role["metadata"]["name"]
        .as_str()
        .expect("the Role has a name")
        .to_string();
    (yaml, name)
}

async fn wait_can(context: &str, verb: &str, ns: &str) {
    poll_until(
        &format!("{context} to be allowed to {verb} pods in {ns}"),
        Duration::from_secs(30),
        || async {
            let out = kubectl_as(context, &["auth", "can-i", verb, "pods", "-n", ns], None);
            let said = stdout(&out).trim().to_string();
            if said == "yes" {
                Ok(())
            } else {
                Err(said)
            }
        },
    )
    .await
}

/// The one-line refusal must name `verb`, pods and the namespace; nothing may have
/// been sent that changes anything.
async fn assert_refused(ns: &TestNamespace, out: &Output, verb: &str, pods: &[&str]) -> String {
    let stderr = stderr(out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("error:"), "{stderr}");
    for word in [verb, "pods", ns.name()] {
        assert!(first.contains(word), "the refusal names {word:?}: {first}");
    }
    assert_eq!(ns.pod_names().await, pods);
    let sent = ns.mutating_requests(&AuditFilter::plugin()).await;
    assert!(sent.is_empty(), "no mutating request may be sent: {sent:?}");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_who_may_not_delete_gets_exit_4_and_a_role_that_fixes_it() {
    let ns = TestNamespace::for_current_test().await;
    let pods = ["f-0", "f-1", "f-2"];
    for (i, p) in pods.iter().enumerate() {
        ns.create_pod(
            &BarePod::succeeded(p)
                .evaluation(&format!("e{i}"))
                .test_id("t"),
        )
        .await;
    }
    let args = [
        "--context",
        VIEWER_CONTEXT,
        "-n",
        ns.name(),
        "--all",
        "--yes",
    ];
    let t = Instant::now();
    let out = ns.plugin().args(args).output();
    eprintln!(
        "viewer (no delete): exit {:?} after {:.1}s; stderr:\n{}",
        out.status.code(),
        t.elapsed().as_secs_f64(),
        stderr(&out)
    );
    let refusal = assert_refused(&ns, &out, "delete", &pods).await;
    let (yaml, role) = check_role(&refusal, ns.name(), "delete");

    // Applied and bound, the printed Role is enough.
    must(
        kubectl_admin(&["apply", "-f", "-"], Some(&yaml)),
        "apply the Role",
    );
    must(
        kubectl_admin(
            &[
                "create",
                "rolebinding",
                &role,
                "--role",
                &role,
                "--user",
                VIEWER_USER,
                "-n",
                ns.name(),
            ],
            None,
        ),
        "bind the Role",
    );
    wait_can(VIEWER_CONTEXT, "delete", ns.name()).await;
    let out = ns.plugin().args(args).output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ns.pod_names().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_who_may_not_list_gets_exit_4_and_a_role_that_fixes_it() {
    let ns = TestNamespace::for_current_test().await;
    let pods = ["f-0", "f-1"];
    for (i, p) in pods.iter().enumerate() {
        ns.create_pod(&BarePod::failed(p).evaluation(&format!("e{i}")).test_id("t"))
            .await;
    }
    // ci-runner may get and delete pods here, but not list them.
    let grant = format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: get-and-delete
  namespace: {ns}
rules:
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: get-and-delete
  namespace: {ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: get-and-delete
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: {user}
"#,
        ns = ns.name(),
        user = CI_RUNNER_USER
    );
    must(
        kubectl_admin(&["apply", "-f", "-"], Some(&grant)),
        "grant get/delete",
    );
    wait_can(CI_RUNNER_CONTEXT, "delete", ns.name()).await;

    let args = [
        "--context",
        CI_RUNNER_CONTEXT,
        "-n",
        ns.name(),
        "--all",
        "--yes",
    ];
    let t = Instant::now();
    let out = ns.plugin().args(args).output();
    eprintln!(
        "ci-runner (no list): exit {:?} after {:.1}s; stderr:\n{}",
        out.status.code(),
        t.elapsed().as_secs_f64(),
        stderr(&out)
    );
    let refusal = assert_refused(&ns, &out, "list", &pods).await;
    let (yaml, role) = check_role(&refusal, ns.name(), "list");

    must(
        kubectl_admin(&["apply", "-f", "-"], Some(&yaml)),
        "apply the Role",
    );
    must(
        kubectl_admin(
            &[
                "create",
                "rolebinding",
                &role,
                "--role",
                &role,
                "--user",
                CI_RUNNER_USER,
                "-n",
                ns.name(),
            ],
            None,
        ),
        "bind the Role",
    );
    wait_can(CI_RUNNER_CONTEXT, "list", ns.name()).await;
    let out = ns.plugin().args(args).output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ns.pod_names().await, Vec::<String>::new());
}
