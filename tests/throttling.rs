//! API Priority and Fairness: a FlowSchema sends this test's own
//! ServiceAccount to a PriorityLevelConfiguration with the smallest share
//! there is and a queue of one, so the API server answers most of a burst
//! of deletes with 429 and Retry-After. Every delete must still land: no
//! failed row, every pod gone, the report accurate. The APF objects are
//! cluster-wide; their subject is this test's ServiceAccount only, so no
//! other test on the cluster is throttled.

mod support;

use std::time::Duration;

use support::{audit::*, cluster::*, objects::*, wait::*};

const PODS: usize = 200;

/// Removes the cluster-wide APF objects, also when the test fails.
struct Apf(String);

impl Drop for Apf {
    fn drop(&mut self) {
        let _ = kubectl_as(
            "admin",
            &[
                "delete",
                "--ignore-not-found",
                &format!("flowschema/{}", self.0),
                &format!("prioritylevelconfiguration/{}", self.0),
            ],
            None,
        );
    }
}

fn kubectl_ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl_as("admin", args, stdin);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn throttled_by_priority_and_fairness_every_delete_lands() {
    let ns = TestNamespace::for_current_test().await;
    let name = ns.name().to_string();
    ns.create_pods(
        (0..PODS).map(|i| BarePod::succeeded(&format!("p-{i:03}")).evaluation(&format!("e{i}"))),
    )
    .await;

    // The plugin's user: a ServiceAccount that may list and delete here.
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"
apiVersion: v1
kind: ServiceAccount
metadata: {{name: cleaner, namespace: {name}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: cleaner, namespace: {name}}}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, delete]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: cleaner, namespace: {name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: cleaner}}
subjects:
- {{kind: ServiceAccount, name: cleaner, namespace: {name}}}
"#
        )),
    );
    // One share (the fewest seats a level can have on this server: 600
    // seats split by 1 of ~246 shares is 3), nothing borrowed or lent, one
    // queue of length one: a fourth and fifth request at once get 429.
    let _apf = Apf(name.clone());
    kubectl_ok(
        &["apply", "-f", "-"],
        Some(&format!(
            r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {{name: {name}}}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse:
      type: Queue
      queuing: {{queues: 1, handSize: 1, queueLengthLimit: 1}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {{name: {name}}}
spec:
  priorityLevelConfiguration: {{name: {name}}}
  matchingPrecedence: 500
  distinguisherMethod: {{type: ByUser}}
  rules:
  - subjects:
    - kind: ServiceAccount
      serviceAccount: {{name: cleaner, namespace: {name}}}
    resourceRules:
    - verbs: ["*"]
      apiGroups: ["*"]
      resources: ["*"]
      namespaces: ["*"]
      clusterScope: true
    nonResourceRules:
    - verbs: ["*"]
      nonResourceURLs: ["*"]
"#
        )),
    );
    poll_until(
        "the FlowSchema is in force",
        Duration::from_secs(30),
        || async {
            let status = kubectl_ok(
                &[
                    "get",
                    "flowschema",
                    &name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Dangling\")].status}",
                ],
                None,
            );
            if status.trim() == "False" {
                Ok(())
            } else {
                Err(format!("Dangling={status:?}"))
            }
        },
    )
    .await;

    let token = kubectl_ok(
        &[
            "create",
            "token",
            "cleaner",
            "-n",
            &name,
            "--duration",
            "1h",
        ],
        None,
    );
    let server = kubectl_ok(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
        None,
    );
    let ca = kubectl_ok(
        &[
            "config",
            "view",
            "--raw",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ],
        None,
    );
    let kubeconfig = ns.home().join("cleaner.kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: cleaner\n\
             clusters: [{{name: c, cluster: {{server: {server}, certificate-authority-data: {ca}}}}}]\n\
             users: [{{name: cleaner, user: {{token: {}}}}}]\n\
             contexts: [{{name: cleaner, context: {{cluster: c, user: cleaner, namespace: {name}}}}}]\n",
            token.trim()
        ),
    )
    .unwrap();

    let offset = audit_offset();
    let (code, report, stderr) = ns
        .plugin()
        .kubeconfig(&kubeconfig)
        .args(["-n", &name, "--all", "--yes", "-o", "json"])
        .timeout(Duration::from_secs(180))
        .output_json();

    assert_eq!(code, 0, "{stderr}");
    let summary = &report["summary"];
    assert_eq!(summary["deleted"], PODS, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["cancelled"], 0, "{summary}");
    let rows = report["items"].as_array().unwrap();
    assert_eq!(rows.len(), PODS);
    assert!(
        rows.iter().all(|r| r["result"] == "deleted"),
        "every row says deleted"
    );
    assert!(ns.pod_names().await.is_empty(), "every pod is gone");

    // The server did throttle this run: some of its deletes were answered 429.
    audit_barrier().await;
    let user = format!("system:serviceaccount:{name}:cleaner");
    let deletes: Vec<AuditEvent> = read_audit_log(&cluster().audit_log(), offset, "\"delete\"")
        .into_iter()
        .filter(|e| e.verb == "delete" && e.user.username == user)
        .collect();
    let throttled = deletes.iter().filter(|e| e.code() == 429).count();
    assert!(
        throttled > 0,
        "no delete was throttled: the priority level did not bite ({} deletes)",
        deletes.len()
    );
    assert_eq!(deletes.len() - throttled, PODS, "one accepted delete a pod");
}
