//! deploy/ proven against the local control plane: every manifest passes a
//! server-side dry run, and is admitted without a warning in a namespace
//! that enforces Pod Security "restricted"; the ServiceAccounts and Roles are
//! created for real, one per workload, and only the `--stale-runs` CronJob's
//! may touch Leases; the CronJobs' and the Deployment's own command lines
//! (with the policy their ConfigMap is made from) clean up, each with a token
//! of its own ServiceAccount and nothing more; a verb the Role lacks is exit
//! 4 naming it (the watch verb too, and then `--watch=poll` still works); and
//! the in-cluster configuration (token and CA files where a pod has
//! them, `KUBERNETES_SERVICE_HOST/PORT`) works, in a private mount namespace.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::{json, Value};
use support::{cluster::*, commands::*, objects::*, wait::*};

/// The manifests of deploy/, each file's documents parsed.
fn manifests() -> Vec<(PathBuf, Vec<Value>)> {
    let dir = repo_root().join("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        // Not a manifest: kustomize's list of them (tests/image.rs).
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let docs = text
                .split("\n---\n")
                .map(|d| serde_norway::from_str::<Value>(d).unwrap())
                .collect();
            (f, docs)
        })
        .collect()
}

/// The container args of the first manifest of `kind`.
fn args_of(kind: &str) -> Vec<String> {
    all_args_of(kind)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {kind} in deploy/"))
}

/// The container args of every manifest of `kind`, in file order.
fn all_args_of(kind: &str) -> Vec<Vec<String>> {
    manifests()
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .filter(|d| d["kind"] == kind)
        .map(|doc| {
            let pod = match kind {
                "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
                _ => &doc["spec"]["template"]["spec"],
            };
            pod["containers"][0]["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

/// The pod templates of every workload (Deployment, then CronJobs, in file
/// order within each kind), with their kind.
fn pod_templates() -> Vec<(String, Value)> {
    let docs: Vec<Value> = manifests().into_iter().flat_map(|(_, d)| d).collect();
    ["Deployment", "CronJob"]
        .iter()
        .flat_map(|kind| {
            docs.iter()
                .filter(move |d| d["kind"] == *kind)
                .map(move |d| {
                    let t = match *kind {
                        "CronJob" => &d["spec"]["jobTemplate"]["spec"]["template"],
                        _ => &d["spec"]["template"],
                    };
                    (
                        format!("{kind}/{}", d["metadata"]["name"].as_str().unwrap()),
                        t.clone(),
                    )
                })
        })
        .collect()
}

/// The ServiceAccount of the `nth` workload of `kind`.
fn service_account_of(kind: &str, nth: usize) -> String {
    let prefix = format!("{kind}/");
    pod_templates()
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .nth(nth)
        .map(|(_, t)| {
            t["spec"]["serviceAccountName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap_or_else(|| panic!("no {kind} #{nth} in deploy/"))
}

/// deploy/rbac.yaml applied for real in `ns`.
fn apply_rbac(ns: &str) {
    let rbac = std::fs::read_to_string(repo_root().join("deploy/rbac.yaml"))
        .unwrap()
        .replace("namespace: crucible", &format!("namespace: {ns}"));
    admin_kubectl(&["apply", "-f", "-"], Some(&rbac));
}

/// A one-hour token of ServiceAccount `sa` in `ns`.
fn token_of(ns: &str, sa: &str) -> String {
    admin_kubectl(&["create", "token", sa, "-n", ns, "--duration", "1h"], None)
        .trim()
        .to_string()
}

/// The args with the namespace and the policy file made local: the policy is
/// what docs/in-cluster.md puts into the ConfigMap (examples/policy.yaml).
fn localised(args: Vec<String>, ns: &str, extra: &[(&str, String)]) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            if a.starts_with("--namespace=") {
                format!("--namespace={ns}")
            } else if a.starts_with("--policy=") {
                format!(
                    "--policy={}",
                    repo_root().join("examples/policy.yaml").display()
                )
            } else {
                match extra
                    .iter()
                    .find(|(flag, _)| a.starts_with(&format!("{flag}=")))
                {
                    Some((flag, v)) => format!("{flag}={v}"),
                    None => a,
                }
            }
        })
        .collect()
}

/// The shared cluster's server URL and CA (PEM).
fn server_and_ca() -> (String, Vec<u8>) {
    let kc = Kubeconfig::read_from(kubeconfig_path()).unwrap();
    let cluster = kc.clusters[0].cluster.clone().unwrap();
    let ca = cluster.certificate_authority_data.expect("embedded CA");
    (cluster.server.unwrap(), base64_decode(&ca))
}

/// Standard base64 (the kubeconfig's CA data), without a crate for it.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = vec![];
    for chunk in clean.chunks(4) {
        let mut n: u32 = 0;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(val(*c)) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// A kubeconfig holding only `token` (and the cluster's address and CA).
fn token_kubeconfig(dir: &Path, token: &str, ns: &str) -> PathBuf {
    let kc = Kubeconfig::read_from(kubeconfig_path()).unwrap();
    let cluster = kc.clusters[0].cluster.clone().unwrap();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: crucible-clean\n  user:\n    token: {token}\ncontexts:\n- name: crucible-clean\n  context: {{cluster: local, user: crucible-clean, namespace: {ns}}}\ncurrent-context: crucible-clean\n",
        cluster.server.unwrap(),
        cluster.certificate_authority_data.unwrap()
    );
    let path = dir.join("token.kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

/// `kubectl` as admin; panics with its stderr on failure.
fn admin_kubectl(args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl_as(ADMIN_CONTEXT, args, stdin);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Finished pods without a test-id (the policy's watermark rule governs them).
async fn fill(ns: &TestNamespace, from: usize, to: usize) {
    ns.create_pods(
        (from..to).map(|i| BarePod::succeeded(&format!("p{i}")).evaluation(&format!("e{i}"))),
    )
    .await;
}

/// Until the quota counts exactly the pods there are.
async fn quota_settled(ns: &TestNamespace) {
    let quotas: Api<ResourceQuota> = Api::namespaced(ns.client(), ns.name());
    poll_until(
        "count/pods to count every pod",
        Duration::from_secs(30),
        || async {
            let used = quota_used(&quotas).await;
            let pods = ns.pod_names().await.len();
            if used == Some(pods) {
                Ok(())
            } else {
                Err(format!("count/pods used {used:?}, {pods} pods"))
            }
        },
    )
    .await;
}

/// `count/pods` used of the quota `pods`, once the controller has counted.
async fn quota_used(quotas: &Api<ResourceQuota>) -> Option<usize> {
    let q = quotas.get("pods").await.ok()?;
    q.status?.used?.get("count/pods")?.0.parse().ok()
}

#[test]
fn every_manifest_passes_a_server_side_dry_run() {
    for (file, docs) in manifests() {
        let out = kubectl_as(
            ADMIN_CONTEXT,
            &["apply", "--dry-run=server", "-f", file.to_str().unwrap()],
            None,
        );
        assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
        let text = stdout(&out);
        for d in docs {
            // kubectl names them kind[.group]/name.
            let kind = d["kind"].as_str().unwrap().to_lowercase();
            let name = format!("/{} ", d["metadata"]["name"].as_str().unwrap());
            assert!(
                text.lines().any(|l| l.starts_with(&kind)
                    && l.contains(&name)
                    && l.ends_with("(server dry run)")),
                "{}: {kind}{name}not applied: {text}",
                file.display()
            );
        }
    }
    // The Deployment is watched: probes and the scrape annotation are wired.
    let dep = manifests()
        .into_iter()
        .flat_map(|(_, d)| d)
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let pod = &dep["spec"]["template"];
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(args_of("Deployment")
        .iter()
        .any(|a| a.starts_with("--metrics-addr=")));
}

/// `kubectl apply -k deploy/`, as docs/in-cluster.md says (the image set by
/// deploy/kustomization.yaml: tests/image.rs).
#[test]
fn the_api_server_accepts_the_kustomization() {
    let dir = repo_root().join("deploy");
    let out = kubectl_as(
        ADMIN_CONTEXT,
        &["apply", "--dry-run=server", "-k", dir.to_str().unwrap()],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "serviceaccount/",
        "role.rbac",
        "cronjob.batch/",
        "deployment.apps/",
    ] {
        assert!(text.contains(kind), "{kind} not applied: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deployment_and_cronjob_run_with_exactly_the_roles_permissions() {
    let ns = TestNamespace::for_current_test().await;
    // The ServiceAccounts, Roles and RoleBindings of deploy/, for real, in this namespace.
    apply_rbac(ns.name());
    let home = tempfile::tempdir().unwrap();
    // Each workload runs with a token of its own ServiceAccount.
    let as_sa = |sa: &str| {
        let dir = home.path().join(sa);
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = token_kubeconfig(&dir, &token_of(ns.name(), sa), ns.name());
        let mut cmd = PluginCmd::with_home(home.path());
        cmd.kubeconfig(&kubeconfig);
        cmd
    };
    let accounts: Vec<String> = pod_templates()
        .iter()
        .map(|(_, t)| {
            t["spec"]["serviceAccountName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut distinct = accounts.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        accounts.len(),
        "one account per workload: {accounts:?}"
    );
    // Only the --stale-runs CronJob may list or delete Leases.
    for (workload, t) in pod_templates() {
        let sa = t["spec"]["serviceAccountName"].as_str().unwrap();
        let args = t["spec"]["containers"][0]["args"].to_string();
        let stale = args.contains("--stale-runs");
        for verb in ["list", "delete"] {
            let user = format!("system:serviceaccount:{}:{sa}", ns.name());
            let out = kubectl_as(
                ADMIN_CONTEXT,
                &[
                    "auth",
                    "can-i",
                    verb,
                    "leases.coordination.k8s.io",
                    "-n",
                    ns.name(),
                    "--as",
                    &user,
                ],
                None,
            );
            let answer = stdout(&out).trim().to_string();
            assert_eq!(
                answer,
                if stale { "yes" } else { "no" },
                "{workload}: {verb} leases"
            );
        }
    }

    // The policy's watermark rule needs a count/pods quota: 9 of 10 pods.
    let quota = serde_json::from_value(json!({
        "metadata": {"name": "pods"},
        "spec": {"hard": {"count/pods": "10"}}
    }))
    .unwrap();
    Api::<ResourceQuota>::namespaced(ns.client(), ns.name())
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    fill(&ns, 0, 9).await;
    quota_settled(&ns).await;

    // The CronJob's command line: one run.
    let cron = localised(args_of("CronJob"), ns.name(), &[]);
    let (code, report, err) = as_sa(&service_account_of("CronJob", 0))
        .args(&cron)
        .output_json();
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["strategy"], "policy", "{report}");
    assert_eq!(report["summary"]["deleted"], 4, "{report}");
    assert_eq!(report["events"]["recorded"], 4, "{report}");
    assert_eq!(report["events"]["failed"], 0, "{report}");
    assert_eq!(ns.pod_names().await.len(), 5);
    // Every other CronJob (stale test runs): nothing to do here, and allowed.
    let others = all_args_of("CronJob");
    assert!(others.len() >= 2, "{others:?}");
    for (i, args) in others.iter().enumerate().skip(1) {
        let args = localised(args.clone(), ns.name(), &[]);
        let (code, report, err) = as_sa(&service_account_of("CronJob", i))
            .args(&args)
            .output_json();
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(report["summary"]["failed"], 0, "{args:?}: {report}");
    }

    // The Deployment's: --watch, metrics on a port of ours; one cycle.
    quota_settled(&ns).await;
    fill(&ns, 10, 13).await;
    quota_settled(&ns).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let watch = localised(
        args_of("Deployment"),
        ns.name(),
        &[("--metrics-addr", format!("127.0.0.1:{port}"))],
    );
    assert!(watch.contains(&"--watch".to_string()), "{watch:?}");
    let mut plugin = as_sa(&service_account_of("Deployment", 0))
        .args(&watch)
        .spawn();
    let line = plugin.stdout_line().expect("the first cycle's report");
    let report: Value = serde_json::from_str(&line).unwrap();
    plugin.signal("TERM");
    let done = plugin.wait(Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(report["cycle"], 1, "{report}");
    assert_eq!(report["summary"]["deleted"], 3, "{report}");
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    assert_eq!(report["events"]["recorded"], 3, "{report}");

    // A verb the Role lacks: listing across namespaces needs a ClusterRole.
    let out = as_sa(&service_account_of("Deployment", 0))
        .args(["-A", "--all", "--dry-run"])
        .output();
    assert_eq!(code_of(&out), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("forbidden") && err.contains("list") && err.contains("pods"),
        "{err}"
    );
}

/// deploy/ in a namespace that enforces (and warns and audits) Pod Security
/// "restricted": every manifest is admitted without a warning, and so is a
/// pod made from each workload's template; the same pod without its
/// seccompProfile is rejected (the namespace does enforce).
#[tokio::test(flavor = "multi_thread")]
async fn the_manifests_pass_pod_security_restricted() {
    let ns = TestNamespace::for_current_test().await;
    let mut label = vec!["label", "namespace", ns.name(), "--overwrite"];
    let levels = [
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/audit=restricted",
    ];
    label.extend(levels);
    admin_kubectl(&label, None);
    let apply = |text: &str, dry_run: bool| {
        let mut args = vec!["apply", "-f", "-"];
        if dry_run {
            args.push("--dry-run=server");
        }
        kubectl_as(ADMIN_CONTEXT, &args, Some(text))
    };
    // The ServiceAccounts first, for real: the workloads name them.
    apply_rbac(ns.name());
    for (file, _) in manifests() {
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("namespace: crucible", &format!("namespace: {}", ns.name()));
        let out = apply(&text, true);
        assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
        assert!(
            !stderr(&out).contains("Warning"),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
    }
    let templates = pod_templates();
    assert!(templates.len() >= 3, "{templates:?}");
    for (workload, t) in templates {
        let pod = |t: &Value| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "restricted", "namespace": ns.name()},
                "spec": t["spec"],
            })
            .to_string()
        };
        let out = apply(&pod(&t), true);
        assert!(out.status.success(), "{workload}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("Warning"),
            "{workload}: {}",
            stderr(&out)
        );
        let mut without = t.clone();
        without["spec"]["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("seccompProfile");
        let out = apply(&pod(&without), true);
        assert!(
            !out.status.success(),
            "{workload} without seccompProfile was admitted"
        );
        assert!(
            stderr(&out).contains("seccompProfile"),
            "{workload}: {}",
            stderr(&out)
        );
    }
}

fn code_of(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

/// The binary in a pod's situation: no kubeconfig, the ServiceAccount's token,
/// CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount (a
/// tmpfs in a private mount namespace), `KUBERNETES_SERVICE_HOST/PORT`.
#[tokio::test(flavor = "multi_thread")]
async fn the_in_cluster_configuration_is_used_inside_a_pod() {
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        // CI runs as root; a private mount namespace needs it.
        panic!("this test needs root (unshare --mount); CI runs as root");
    }
    let ns = TestNamespace::for_current_test().await;
    let rbac = std::fs::read_to_string(repo_root().join("deploy/rbac.yaml"))
        .unwrap()
        .replace("namespace: crucible", &format!("namespace: {}", ns.name()));
    admin_kubectl(&["apply", "-f", "-"], Some(&rbac));
    let token = admin_kubectl(
        &[
            "create",
            "token",
            "crucible-clean",
            "-n",
            ns.name(),
            "--duration",
            "1h",
        ],
        None,
    );
    ns.create_pods((0..2).map(|i| {
        BarePod::succeeded(&format!("p{i}"))
            .evaluation(&format!("e{i}"))
            .test_id("run-pod")
    }))
    .await;

    let secrets = tempfile::tempdir().unwrap();
    let (server, ca) = server_and_ca();
    std::fs::write(secrets.path().join("token"), token.trim()).unwrap();
    std::fs::write(secrets.path().join("ca.crt"), ca).unwrap();
    std::fs::write(secrets.path().join("namespace"), ns.name()).unwrap();
    let port = server.rsplit(':').next().unwrap().trim_end_matches('/');
    let host = server
        .trim_start_matches("https://")
        .rsplit_once(':')
        .unwrap()
        .0
        .to_string();

    // /var/run is /run here: hide it behind a tmpfs of this process's own.
    let script = r#"set -e
mount -t tmpfs tmpfs /run
d=/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$d"
cp "$1/token" "$1/ca.crt" "$1/namespace" "$d/"
shift
exec "$@""#;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = PluginCmd::with_home(home.path());
    cmd.env_remove("KUBECONFIG")
        .env("KUBERNETES_SERVICE_HOST", &host)
        .env("KUBERNETES_SERVICE_PORT", port)
        .under(
            "unshare",
            [
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                secrets.path().to_str().unwrap(),
            ],
        )
        .args([
            "-n",
            ns.name(),
            "--test-id",
            "run-pod",
            "--events",
            "--yes",
            "-o",
            "json",
        ]);
    let (code, report, err) = cmd.output_json();
    assert_eq!(code, 0, "{err}");
    assert_eq!(report["context"], "in-cluster", "{report}");
    assert_eq!(report["summary"]["deleted"], 2, "{report}");
    assert_eq!(report["events"]["recorded"], 2, "{report}");
    assert!(ns.pod_names().await.is_empty());
    // The mount was private: nothing of it is left outside.
    assert!(!Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists());
}

/// A token of a new ServiceAccount `name` in `ns` bound to a Role of `rules`.
fn account_with(ns: &str, name: &str, rules: Value) -> String {
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": ns}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]});
    admin_kubectl(&["apply", "-f", "-"], Some(&objects.to_string()));
    admin_kubectl(
        &["create", "token", name, "-n", ns, "--duration", "1h"],
        None,
    )
    .trim()
    .to_string()
}

/// Finding 1 of issue 19: a user whose only right is to create Leases (it may
/// not delete the job) got an Active job deleted through the `--stale-runs`
/// CronJob, by writing a Lease that says the job's run is dead. A Lease can
/// declare dead only what was created after it: the objects a guard's run
/// makes after its guard took the Lease.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_writer_cannot_get_a_running_job_deleted_by_the_stale_runs_cronjob() {
    let ns = TestNamespace::for_current_test().await;
    apply_rbac(ns.name());
    let home = tempfile::tempdir().unwrap();
    let writer_dir = tempfile::tempdir().unwrap();
    let writer = account_with(
        ns.name(),
        "lease-writer",
        json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get"]}]),
    );
    let writer = token_kubeconfig(writer_dir.path(), &writer, ns.name());

    // The victim: a running job of run "rv", whose guard is long gone.
    ns.create_job(&EvalJob::running("victim").label("crucible-clean/run", "rv"))
        .await;
    ns.wait_job_pods_phase("evaluation-job-victim", "Running")
        .await;
    let as_writer = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = std::process::Command::new(kubectl());
        cmd.args(["--kubeconfig", writer.to_str().unwrap()])
            .args(args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let out = as_writer(
        &["delete", "job", "evaluation-job-victim", "--wait=false"],
        None,
    );
    assert!(!out.status.success(), "the writer may not delete the job");
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));
    // The Lease a guard of run rv would have left, renewed an hour ago.
    let hour_ago = rfc3339(std::time::SystemTime::now() - Duration::from_secs(3600));
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "crucible-clean-run-rv", "labels": {"crucible-clean/run": "rv"}},
        "spec": {"holderIdentity": format!("laptop/4242/{hour_ago}"), "leaseDurationSeconds": 30,
                 "acquireTime": hour_ago.replace('Z', ".000000Z"),
                 "renewTime": hour_ago.replace('Z', ".000000Z")},
    });
    let out = as_writer(&["create", "-f", "-"], Some(&lease.to_string()));
    assert!(out.status.success(), "{}", stderr(&out));

    // Every CronJob of deploy/ that cleans stale runs, as its ServiceAccount.
    let stale: Vec<(usize, Vec<String>)> = all_args_of("CronJob")
        .into_iter()
        .enumerate()
        .filter(|(_, a)| a.iter().any(|x| x == "--stale-runs"))
        .collect();
    assert!(!stale.is_empty());
    for (nth, args) in stale {
        let args = localised(args, ns.name(), &[]);
        let sa = service_account_of("CronJob", nth);
        let dir = tempfile::tempdir().unwrap();
        let cleaner = token_kubeconfig(dir.path(), &token_of(ns.name(), &sa), ns.name());
        let (code, report, err) = PluginCmd::with_home(home.path())
            .kubeconfig(&cleaner)
            .args(&args)
            .output_json();
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(report["summary"]["deleted"], 0, "{report}\n{err}");
    }
    assert_eq!(ns.job_names().await, ["evaluation-job-victim"]);
}

/// The Role of deploy/ without the watch verb (an older one): `--watch` ends
/// at once (exit 4), naming the verb, `--watch=poll` and the Role that fixes
/// it; `--watch=poll` works with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_without_watch_ends_the_watch_at_once_and_polling_still_works() {
    let ns = TestNamespace::for_current_test().await;
    // The Deployment's Role as it was before --watch watched.
    let rbac = std::fs::read_to_string(repo_root().join("deploy/rbac.yaml"))
        .unwrap()
        .replace("namespace: crucible", &format!("namespace: {}", ns.name()))
        .replace("list, watch", "list");
    assert!(!rbac.contains("watch]"), "{rbac}");
    admin_kubectl(&["apply", "-f", "-"], Some(&rbac));
    let token = token_of(ns.name(), "crucible-clean-watch");
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = token_kubeconfig(home.path(), token.trim(), ns.name());
    ns.create_pod(&BarePod::succeeded("p").evaluation("e").test_id("t"))
        .await;
    let out = PluginCmd::with_home(home.path())
        .kubeconfig(&kubeconfig)
        .args(["-n", ns.name(), "--test-id", "t", "--yes", "--watch"])
        .timeout(Duration::from_secs(120))
        .output();
    let err = stderr(&out);
    assert_eq!(code_of(&out), Some(4), "{err}");
    assert!(
        err.contains("forbidden") && err.contains("--watch=poll"),
        "{err}"
    );
    assert!(err.contains("\"watch\""), "the Role to apply: {err}");
    assert_eq!(ns.pod_names().await, ["p"], "nothing deleted");

    let mut plugin = PluginCmd::with_home(home.path());
    let mut plugin = plugin
        .kubeconfig(&kubeconfig)
        .args(["-n", ns.name(), "--test-id", "t", "--yes", "-o", "json"])
        .args(["--watch=poll", "--interval", "1h"])
        .spawn();
    let line = plugin.stdout_line().expect("the first cycle's report");
    let report: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(report["summary"]["deleted"], 1, "{report}");
    plugin.signal("TERM");
    let limit = plugin.elapsed() + Duration::from_secs(30);
    let done = plugin.wait(limit);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
}
