//! The decoys of test runs (issue 19): objects labelled with runs, guard
//! Leases as a guard leaves them, forged ones and Leases in other namespaces;
//! the model of what `--stale-runs` and `--guard` may delete, written from
//! the product contract; and deletes held in admission (a webhook that
//! never answers, ignored after a few seconds) while keep markers are added.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::Client;
use serde_json::json;

use super::{Kind, Obj, KEEP};

/// The label that ties an object to its test run.
pub const RUN_KEY: &str = "crucible-clean/run";
/// Deletes of pods with this label are held in admission (`SlowDeletes`).
pub const SLOW: &str = "decoy-slow";
/// How long a held delete waits for the webhook before it goes on.
const HOLD_SECONDS: i32 = 5;

/// The runs of one decoy test: `<run>-a` … `<run>-e`.
pub fn run_ids(run: &str) -> Vec<String> {
    ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| format!("{run}-{s}"))
        .collect()
}

fn micro(t: SystemTime) -> String {
    let ts = k8s_openapi::jiff::Timestamp::try_from(t).unwrap();
    ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// A guard's spec, renewed at `renewed`, lasting `seconds`.
fn guard_spec(holder: Option<&str>, renewed: SystemTime, seconds: i32) -> serde_json::Value {
    let at = micro(renewed);
    let holder = holder
        .map(str::to_string)
        .unwrap_or_else(|| format!("decoy-host/4242/{}Z", &at[..19]));
    json!({"holderIdentity": holder, "leaseDurationSeconds": seconds,
           "acquireTime": at, "renewTime": at})
}

async fn lease(client: &Client, ns: &str, name: &str, run: &str, spec: Option<serde_json::Value>) {
    let mut l = json!({"metadata": {"name": name, "labels": {RUN_KEY: run}}});
    if let Some(spec) = spec {
        l["spec"] = spec;
    }
    Api::<Lease>::namespaced(client.clone(), ns)
        .create(&Default::default(), &serde_json::from_value(l).unwrap())
        .await
        .unwrap_or_else(|e| panic!("cannot create Lease {ns}/{name}: {e}"));
}

/// The Leases of the runs, made once (objects created before them are not
/// the runs' for `--stale-runs`):
/// - a: a guard's Lease in namespace 0, expired an hour ago;
/// - b: expired in namespace 1, live (renewed now, for a day) in namespace 2;
/// - c: a forged Lease of another name in namespace 0 (expired), and one of
///   the right name without spec in namespace 1;
/// - d: none (the guard command lines take one);
/// - e: the right name in namespace 2, expired, with a holder no guard writes.
pub async fn make_leases(client: &Client, namespaces: &[String], run: &str) {
    let r = run_ids(run);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let name = |i: usize| format!("crucible-clean-run-{}", r[i]);
    let expired = || Some(guard_spec(None, hour_ago, 30));
    lease(client, &namespaces[0], &name(0), &r[0], expired()).await;
    lease(client, &namespaces[1], &name(1), &r[1], expired()).await;
    let live = Some(guard_spec(None, SystemTime::now(), 86_400));
    lease(client, &namespaces[2], &name(1), &r[1], live).await;
    lease(client, &namespaces[0], "decoy-forged", &r[2], expired()).await;
    lease(client, &namespaces[1], &name(2), &r[2], None).await;
    let gone = Some(guard_spec(Some("gone/1"), hour_ago, 30));
    lease(client, &namespaces[2], &name(4), &r[4], gone).await;
}

/// A Lease as the model sees it.
#[derive(Clone, Debug)]
pub struct SeenLease {
    pub ns: String,
    pub run: String,
    /// A guard's shape: its run's name, a guard's holder, renewal and duration.
    pub guards: bool,
    pub created: i64,
    /// Renewal plus duration, in seconds since the epoch.
    pub expires: i64,
}

/// Every Lease labelled with a run in `namespaces`.
pub async fn leases(client: &Client, namespaces: &[String]) -> Vec<SeenLease> {
    let mut out = vec![];
    for ns in namespaces {
        let api: Api<Lease> = Api::namespaced(client.clone(), ns);
        for l in api
            .list(&ListParams::default().labels(RUN_KEY))
            .await
            .unwrap()
        {
            let m = &l.metadata;
            let run = m.labels.clone().unwrap_or_default()[RUN_KEY].clone();
            let spec = l.spec.clone();
            let holder_ok = |h: &str| {
                let parts: Vec<&str> = h.splitn(3, '/').collect();
                parts.len() == 3
                    && !parts[0].is_empty()
                    && parts[0]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                    && parts[1].parse::<u32>().is_ok()
                    && parts[2].parse::<k8s_openapi::jiff::Timestamp>().is_ok()
            };
            let renewed = spec
                .as_ref()
                .and_then(|s| s.renew_time.as_ref())
                .map(|t| t.0.as_second());
            let duration = spec
                .as_ref()
                .and_then(|s| s.lease_duration_seconds)
                .filter(|d| *d > 0);
            let holder = spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .unwrap_or_default();
            out.push(SeenLease {
                ns: ns.clone(),
                guards: m.name.as_deref() == Some(&format!("crucible-clean-run-{run}"))
                    && holder_ok(&holder)
                    && renewed.is_some()
                    && duration.is_some(),
                created: m
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second())
                    .unwrap_or_default(),
                expires: renewed.unwrap_or_default() + i64::from(duration.unwrap_or_default()),
                run,
            });
        }
    }
    out
}

/// The runs `--stale-runs` may clean over `scope` at `now`: (namespace,
/// run) → the Lease's creation second. A guard's Lease that expired, of a
/// run with no live guard Lease in scope; only its own namespace.
pub fn stale(leases: &[SeenLease], scope: &[String], now: i64) -> BTreeMap<(String, String), i64> {
    let seen: Vec<&SeenLease> = leases
        .iter()
        .filter(|l| l.guards && scope.contains(&l.ns))
        .collect();
    let live = |run: &str| seen.iter().any(|l| l.run == run && l.expires >= now);
    seen.iter()
        .filter(|l| l.expires < now && !live(&l.run))
        .map(|l| ((l.ns.clone(), l.run.clone()), l.created))
        .collect()
}

/// Whether a live guard Lease of `run` holds namespace `ns` (a second guard
/// is refused).
pub fn guarded(leases: &[SeenLease], ns: &str, run: &str, now: i64) -> bool {
    leases
        .iter()
        .any(|l| l.guards && l.ns == ns && l.run == run && l.expires >= now)
}

// ------------------------------------------------------------------------------------------
// Deletes held in admission
// ------------------------------------------------------------------------------------------

/// While alive, a DELETE of a pod labelled `decoy-slow` in the decoy
/// namespaces waits `HOLD_SECONDS` in admission (a webhook that accepts the
/// connection and never answers; failurePolicy Ignore lets the delete go on
/// after it), and each call is seen here as it arrives.
pub struct SlowDeletes {
    name: String,
    arrivals: Mutex<mpsc::Receiver<()>>,
}

impl SlowDeletes {
    pub async fn install(client: &Client, namespaces: &[String], probe_ns: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut held = vec![];
            for c in listener.incoming().flatten() {
                held.push(c);
                if tx.send(()).is_err() {
                    break;
                }
            }
        });
        let name = format!("decoy-slow-{}", &namespaces[0]);
        let config: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": name},
            "webhooks": [{
                "name": "slow.decoys.crucible.test",
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/slow")},
                "rules": [{"operations": ["DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "namespaceSelector": {"matchExpressions": [{
                    "key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces,
                }]},
                "objectSelector": {"matchLabels": {SLOW: "true"}},
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": HOLD_SECONDS,
            }]
        }))
        .unwrap();
        Api::<ValidatingWebhookConfiguration>::all(client.clone())
            .create(&Default::default(), &config)
            .await
            .unwrap();
        let slow = SlowDeletes {
            name,
            arrivals: Mutex::new(rx),
        };
        // In effect once a dry-run delete of a slow pod reaches it.
        let pods: Api<Pod> = Api::namespaced(client.clone(), probe_ns);
        let probe: Pod = serde_json::from_value(json!({
            "metadata": {"name": "decoy-slow-probe", "labels": {SLOW: "true"}},
            "spec": {"nodeName": crate::STATIC_NODE, "containers": [{"name": "c", "image": "crucible.invalid/x"}]},
        }))
        .unwrap();
        pods.create(&Default::default(), &probe).await.unwrap();
        let t0 = Instant::now();
        loop {
            slow.drain();
            let dp = DeleteParams {
                dry_run: true,
                ..Default::default()
            };
            let _ =
                tokio::time::timeout(Duration::from_secs(1), pods.delete("decoy-slow-probe", &dp))
                    .await;
            if slow.drain() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "the slow webhook never took effect"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let gone = DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            pods.delete("decoy-slow-probe", &gone),
        )
        .await;
        slow
    }

    /// Forgets the calls so far; whether there were any.
    pub fn drain(&self) -> bool {
        let rx = self.arrivals.lock().unwrap();
        let mut any = false;
        while rx.try_recv().is_ok() {
            any = true;
        }
        any
    }

    /// Waits until a held delete arrives (true), or `done` is set (false).
    pub async fn arrival(&self, done: &AtomicBool) -> bool {
        loop {
            if self.arrivals.lock().unwrap().try_recv().is_ok() {
                return true;
            }
            if done.load(Ordering::SeqCst) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SlowDeletes {
    fn drop(&mut self) {
        let _ = crate::support::cluster::kubectl_as(
            crate::support::cluster::ADMIN_CONTEXT,
            &[
                "delete",
                "validatingwebhookconfiguration",
                &self.name,
                "--wait=false",
            ],
            None,
        );
    }
}

/// Once a held delete arrives (the plugin has listed and is deleting), marks
/// about half of the slow pods of `scope` keep=true, as a person would while
/// deletes are queued; returns the uids marked (none when no held delete
/// came before `done`).
pub async fn mark_while_held(
    client: &Client,
    slow: &SlowDeletes,
    state: &BTreeMap<String, Obj>,
    scope: &[String],
    rng_seed: u64,
    done: Arc<AtomicBool>,
) -> Vec<String> {
    if !slow.arrival(&done).await {
        return vec![];
    }
    let mut rng = fastrand::Rng::with_seed(rng_seed);
    let chosen: Vec<&Obj> = state
        .values()
        .filter(|o| {
            o.kind == Kind::Pod
                && scope.contains(&o.ns)
                && o.labels.get(SLOW).is_some_and(|v| v == "true")
                && !o.terminating
                && !o.kept()
        })
        .filter(|_| rng.bool())
        .collect();
    let patch = json!({"metadata": {"labels": {KEEP: "true"}}});
    let marked: Vec<Option<String>> = futures::future::join_all(chosen.iter().map(|o| {
        let api: Api<Pod> = Api::namespaced(client.clone(), &o.ns);
        let patch = &patch;
        async move {
            // Only this very pod (a same-named replacement is not marked).
            let mut p = patch.clone();
            p["metadata"]["uid"] = json!(o.uid);
            api.patch(&o.name, &PatchParams::default(), &Patch::Merge(&p))
                .await
                .ok()
                .map(|_| o.uid.clone())
        }
    }))
    .await;
    marked.into_iter().flatten().collect()
}
