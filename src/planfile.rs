//! Plan files: a reviewed plan, applied exactly. A plan is the JSON (or
//! YAML) report of a dry run — `--dry-run -o json > plan.json`, or
//! `--save-plan plan.json` — and `--from-plan plan.json` applies it:
//!
//! * `parse`: the file must be a `CleanupReport` of `crucible-clean/v1`
//!   from a dry run, every row with a known kind, a namespace, a name and a
//!   uid; anything else is a usage error (exit 2) that names the file.
//! * `check`: refuses a plan made on another cluster (API server URL, and the
//!   kube-system namespace's uid when both runs could read it), with another
//!   context, for another namespace, or longer ago than `--plan-max-age`.
//! * `recheck`: only the rows the plan deletes, by uid, each checked against
//!   a fresh inventory: gone, recreated under the same name, no longer
//!   finished, no longer matching the plan's selector, or now stopped by a
//!   guard (a keep marker, terminating, a running owner job) is not deleted
//!   and says why. Objects the selection would add today are never looked at.
//!
//! Besides reading the file (`load`), pure: the reads from the API are
//! `inventory`'s (`take`, `by_name`, `cluster_uid`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::cli::Output;
use crate::client::Endpoint;
use crate::error::{Error, Result};
use crate::inventory::Needs;
use crate::model::{
    Candidate, Inventory, Keep, Kind, Labels, Owner, Owners, Phase, EVAL_ID, TEST_ID,
};
use crate::plan::{Action, Plan, PlanItem};
use crate::request::plans::FromPlan;
use crate::request::{Request, Scope};
use crate::select::guard::{guard, Guards, Rules};
use crate::select::Matched;
use crate::selector::Selector;

/// The report schema a plan must have.
const API_VERSION: &str = "crucible-clean/v1";
const KIND: &str = "CleanupReport";
/// A plan made later than this ahead of our clock was edited, or a clock is wrong.
const FUTURE_SLACK_MINUTES: i64 = 5;

/// A plan file, read and checked for shape.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    pub(crate) path: PathBuf,
    /// None: made with `--all-namespaces`.
    pub(crate) namespace: Option<String>,
    pub(crate) context: String,
    pub(crate) server: String,
    pub(crate) kube_system_uid: Option<String>,
    pub(crate) generated_at: DateTime<Utc>,
    pub(crate) strategy: String,
    pub(crate) selector: Selector,
    pub(crate) rows: Vec<PlanItem>,
}

impl Saved {
    /// The rows the plan deletes.
    fn deletes(&self) -> impl Iterator<Item = &PlanItem> {
        self.rows.iter().filter(|r| r.action == Action::Delete)
    }
}

/// The top level of a `CleanupReport`, as far as a plan needs it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Top {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    context: String,
    cluster: Cluster,
    generated_at: String,
    dry_run: bool,
    strategy: String,
    selector: String,
    items: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cluster {
    server: String,
    kube_system_uid: Option<String>,
}

/// One row of the report.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    kind: Kind,
    namespace: String,
    name: String,
    uid: String,
    phase: Phase,
    created_at: String,
    finished_at: Option<String>,
    #[serde(default)]
    test_id: Option<String>,
    #[serde(default)]
    eval_id: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    matched_by: Matched,
    action: Action,
    #[serde(default)]
    reason: String,
}

/// Keys a plan must carry at its top level (null is allowed where the
/// report writes null): a file without them was not written by a dry run.
const REQUIRED: [&str; 10] = [
    "apiVersion",
    "kind",
    "namespace",
    "context",
    "cluster",
    "generatedAt",
    "dryRun",
    "strategy",
    "selector",
    "items",
];

/// The largest plan file read: some 30,000 rows of JSON.
pub(crate) const MAX_PLAN_BYTES: u64 = 16 << 20;

/// Reads and parses `--from-plan FILE`.
pub(crate) fn load(from: &FromPlan) -> Result<Saved> {
    let text = crate::request::read_bounded(&from.path, MAX_PLAN_BYTES, "plan file")?;
    parse(&from.path, &text)
}

/// A plan file's text → `Saved`, or a usage error naming the file.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Saved> {
    let bad = |what: String| {
        Error::usage(format!(
            "plan file {}: {what}; make a new plan with --dry-run -o json or --save-plan",
            path.display()
        ))
    };
    let value: serde_json::Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?
    } else {
        serde_norway::from_str(text).map_err(|e| {
            bad(format!(
                "not valid JSON or YAML: {}",
                e.to_string().lines().next().unwrap_or_default()
            ))
        })?
    };
    let Some(object) = value.as_object() else {
        return Err(bad("not a CleanupReport document".into()));
    };
    if let Some(key) = REQUIRED.iter().find(|k| !object.contains_key(**k)) {
        return Err(bad(format!("missing field `{key}`")));
    }
    let top: Top = serde_json::from_value(value.clone()).map_err(|e| bad(e.to_string()))?;
    if top.api_version != API_VERSION {
        return Err(bad(format!(
            "apiVersion {:?} is not {API_VERSION}",
            top.api_version
        )));
    }
    if top.kind != KIND {
        return Err(bad(format!("kind {:?} is not {KIND}", top.kind)));
    }
    if !top.dry_run {
        return Err(bad(
            "it is the report of a run that deleted (dryRun: false), not a plan".into(),
        ));
    }
    let generated_at = DateTime::parse_from_rfc3339(&top.generated_at)
        .map_err(|e| bad(format!("generatedAt {:?}: {e}", top.generated_at)))?
        .with_timezone(&Utc);
    let selector = Selector::parse(&top.selector).map_err(|e| bad(format!("selector: {e}")))?;
    if selector.is_empty() {
        return Err(bad("selector is empty".into()));
    }
    if top.context.is_empty() || top.cluster.server.is_empty() {
        return Err(bad("context and cluster.server must not be empty".into()));
    }
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(top.items.len());
    for (i, item) in top.items.into_iter().enumerate() {
        let row: Row = serde_json::from_value(item).map_err(|e| bad(format!("items[{i}]: {e}")))?;
        for (field, value) in [
            ("uid", &row.uid),
            ("name", &row.name),
            ("namespace", &row.namespace),
        ] {
            if value.trim().is_empty() {
                return Err(bad(format!("items[{i}]: {field} is empty")));
            }
        }
        if top
            .namespace
            .as_ref()
            .is_some_and(|ns| ns != &row.namespace)
        {
            return Err(bad(format!(
                "items[{i}]: namespace {:?} is not the plan's namespace",
                row.namespace
            )));
        }
        if !seen.insert(row.uid.clone()) {
            return Err(bad(format!(
                "items[{i}]: uid {} appears more than once",
                row.uid
            )));
        }
        rows.push(row_item(row).map_err(|e| bad(format!("items[{i}]: {e}")))?);
    }
    Ok(Saved {
        path: path.to_path_buf(),
        namespace: top.namespace,
        context: top.context,
        server: crate::client::without_userinfo(&top.cluster.server),
        kube_system_uid: top.cluster.kube_system_uid.filter(|u| !u.is_empty()),
        generated_at,
        strategy: top.strategy,
        selector,
        rows,
    })
}

/// A row as the plan recorded it (what the report shows of an object that is
/// no longer there to read).
fn row_item(row: Row) -> std::result::Result<PlanItem, String> {
    let time = |field: &str, s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("{field} {s:?}: {e}"))
    };
    let created_at = time("createdAt", &row.created_at)?;
    let finished_at = match &row.finished_at {
        Some(s) => Some(time("finishedAt", s)?),
        None => None,
    };
    let owner = row.owner.as_deref().and_then(|o| {
        let (kind, name) = o.split_once('/')?;
        let mut k = kind.to_string();
        if let Some(first) = k.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        Some(Box::new(Owners {
            // What the row shows; the object's own references are read fresh.
            controller: Some(Owner {
                api_version: String::new(),
                kind: k,
                name: name.to_string(),
                uid: String::new(),
            }),
            other_jobs: vec![],
        }))
    });
    Ok(PlanItem {
        candidate: Arc::new(Candidate {
            kind: row.kind,
            namespace: row.namespace.into(),
            name: row.name.into(),
            uid: row.uid.into(),
            resource_version: "".into(),
            phase: row.phase,
            created_at,
            finished_at,
            labels: Labels::from(
                &[(TEST_ID, row.test_id), (EVAL_ID, row.eval_id)]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect(),
            ),
            keep: Keep::NONE,
            terminating: false,
            owners: owner,
            charges: Box::default(),
        }),
        matched_by: row.matched_by,
        action: row.action,
        reason: row.reason,
    })
}

/// Refuses a plan made elsewhere or too long ago. `cluster_uid`: the
/// kube-system namespace's uid of the cluster this run is on, when readable.
pub(crate) fn check(
    saved: &Saved,
    req: &Request,
    max_age: std::time::Duration,
    target: &Endpoint,
    cluster_uid: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    let file = saved.path.display();
    let refuse = |why: String| Err(Error::usage(format!("refusing plan file {file}: {why}")));
    let ours = match &req.scope {
        Scope::Namespace(ns) => Some(ns.as_str()),
        Scope::AllNamespaces => None,
    };
    if saved.namespace.as_deref() != ours {
        let theirs = match &saved.namespace {
            Some(ns) => format!("namespace {ns} (add -n {ns})"),
            None => "all namespaces (add -A)".into(),
        };
        return refuse(format!(
            "it is for {theirs}, this run is for {}",
            req.scope.label()
        ));
    }
    if saved.context != target.context {
        return refuse(format!(
            "it was made with context {:?}, this run uses context {:?} (add --context {})",
            saved.context, target.context, saved.context
        ));
    }
    if saved.server != target.server {
        return refuse(format!(
            "it was made on the cluster at {}, this run is on {}",
            saved.server, target.server
        ));
    }
    if let (Some(theirs), Some(ours)) = (saved.kube_system_uid.as_deref(), cluster_uid) {
        if theirs != ours {
            return refuse(format!(
                "it was made on another cluster (kube-system uid {theirs}, this cluster's is {ours})"
            ));
        }
    }
    let age = now - saved.generated_at;
    if age < -chrono::Duration::minutes(FUTURE_SLACK_MINUTES) {
        return refuse(format!(
            "it says it was made in the future ({}); the file or a clock is wrong",
            saved.generated_at.to_rfc3339()
        ));
    }
    let max = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    if age > max {
        return refuse(format!(
            "it was made {} ago, more than --plan-max-age {}: make a new plan (or raise --plan-max-age)",
            crate::duration::human(age),
            crate::select::retention::exact(max_age)
        ));
    }
    Ok(())
}

/// What the fresh inventory must read: every phase (to see an object that is
/// no longer finished), with the plan's selector, of the kinds the plan deletes.
pub(crate) fn needs(saved: &Saved, req: &Request) -> Needs {
    let kinds: HashSet<Kind> = saved.deletes().map(|r| r.candidate.kind).collect();
    Needs {
        label_selector: saved.selector.to_string(),
        unfinished_pods: false,
        pod_phases: if kinds.contains(&Kind::Pod) {
            vec![
                Phase::Succeeded,
                Phase::Failed,
                Phase::Pending,
                Phase::Running,
                Phase::Unknown,
            ]
        } else {
            vec![]
        },
        pod_status: matches!(req.output, Output::Wide | Output::Json | Output::Yaml),
        jobs: kinds.contains(&Kind::Job),
        job_units: kinds.contains(&Kind::Job),
        quotas: false,
        capacity: None,
    }
}

/// What every planned object must still be at its delete (the chokepoint's
/// rules): matching the plan's selector, and finished unless this command
/// line (not the file) says `--include-running`.
pub(crate) fn rules(saved: &Saved, req: &Request) -> Rules {
    Rules {
        include_running: req.include_running,
        selector: saved.selector.clone(),
        policy: vec![],
        stale: None,
    }
}

/// Kind, namespace and name of an object.
pub(crate) type Key = (Kind, String, String);

fn key(c: &Candidate) -> Key {
    (c.kind, c.namespace.to_string(), c.name.to_string())
}

/// The rows the plan deletes that the fresh inventory shows neither by uid
/// nor by name: to be read by name (`inventory::by_name`).
pub(crate) fn unseen(saved: &Saved, inv: &Inventory) -> Vec<Key> {
    let listed: HashSet<&str> = inv.pods.iter().chain(&inv.jobs).map(|c| &*c.uid).collect();
    let names: HashSet<Key> = inv.pods.iter().chain(&inv.jobs).map(|c| key(c)).collect();
    saved
        .deletes()
        .filter(|r| !listed.contains(&*r.candidate.uid))
        .map(|r| key(&r.candidate))
        .filter(|k| !names.contains(k))
        .collect()
}

/// The plan to execute: each row the plan deletes, checked against the
/// fresh inventory `inv` (and `read`: what `unseen` rows are now, by name);
/// the rows the plan keeps or skips stay as they were. `include_running`:
/// the command line's `--include-running` (a plan file cannot say so: an
/// edited row must not widen what goes).
pub(crate) fn recheck(
    saved: &Saved,
    inv: &Inventory,
    read: &[(Key, Option<Candidate>)],
    include_running: bool,
) -> Plan {
    let listed = || inv.pods.iter().chain(&inv.jobs);
    let by_uid: HashMap<&str, &Arc<Candidate>> = listed().map(|c| (&*c.uid, c)).collect();
    let mut by_name: HashMap<Key, &Candidate> = listed().map(|c| (key(c), &**c)).collect();
    for (k, c) in read {
        if let Some(c) = c {
            by_name.insert(k.clone(), c);
        }
    }
    let guards = Guards {
        include_running,
        retained: BTreeMap::new(),
    };
    let items = saved
        .rows
        .iter()
        .map(|row| {
            let (candidate, action, reason) = if row.action != Action::Delete {
                (row.candidate.clone(), row.action, row.reason.clone())
            } else if let Some(now) = by_uid.get(&*row.candidate.uid) {
                if row.candidate.phase.is_finished() && !now.phase.is_finished() {
                    let why = format!("no longer finished ({:?} since the plan)", now.phase);
                    ((*now).clone(), Action::Skip, why)
                } else {
                    match guard(now, inv, &guards) {
                        Some(g) if g.is_keep() => ((*now).clone(), Action::Keep, g.reason()),
                        Some(g) => ((*now).clone(), Action::Skip, g.reason()),
                        None => ((*now).clone(), Action::Delete, String::new()),
                    }
                }
            } else {
                let (candidate, why) = match by_name.get(&key(&row.candidate)) {
                    None => (row.candidate.clone(), "gone since the plan".to_string()),
                    Some(now) if now.uid != row.candidate.uid => (
                        row.candidate.clone(),
                        format!("recreated since the plan (now uid {})", now.uid),
                    ),
                    // Still there, relabelled: as the recheck saw it.
                    Some(now) => (
                        Arc::new((*now).clone()),
                        format!("no longer matches the plan's selector {}", saved.selector),
                    ),
                };
                (candidate, Action::Skip, why)
            };
            PlanItem {
                candidate,
                matched_by: row.matched_by,
                action,
                reason,
            }
        })
        .collect();
    Plan { items }
}

#[cfg(test)]
mod tests;
