//! Quota arithmetic: what deleting objects frees of each ResourceQuota
//! resource, and the projected usage afterwards. Pure.
//!
//! The semantics that matter (and that users get wrong): `count/pods` and
//! `count/jobs.batch` count every stored object, finished or not, while
//! `pods`, `requests.*` and `limits.*` (and their bare aliases `cpu`,
//! `memory`…) count non-terminal pods only. Deleting a finished pod therefore
//! frees one `count/pods` and nothing else; deleting a job with a propagating
//! cascade also removes its pods.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

use crate::cli::{Cascade, Level};
use crate::model::{Candidate, Inventory, Kind, Quota};

pub const COUNT_PODS: &str = "count/pods";
pub const COUNT_JOBS: &str = "count/jobs.batch";

/// Tolerance of the fraction arithmetic: `0.7 * 10` is `7.000000000000001`.
const EPS: f64 = 1e-9;

/// What a quota resource counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Counts {
    /// `count/pods`: every stored pod.
    StoredPods,
    /// `count/jobs.batch`: every stored job.
    StoredJobs,
    /// `pods`, `requests.*`, `limits.*`: non-terminal pods only.
    NonTerminalPods,
    /// Anything else (services, configmaps…): a pod or job cleanup frees none of it.
    Other,
}

impl Counts {
    pub fn of(resource: &str) -> Self {
        match resource {
            COUNT_PODS => Counts::StoredPods,
            COUNT_JOBS | "count/jobs" => Counts::StoredJobs,
            "pods" | "cpu" | "memory" | "ephemeral-storage" => Counts::NonTerminalPods,
            r if r.starts_with("requests.")
                || r.starts_with("limits.")
                || r.starts_with("hugepages-") =>
            {
                Counts::NonTerminalPods
            }
            _ => Counts::Other,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Counts::StoredPods => "every stored pod",
            Counts::StoredJobs => "every stored job",
            Counts::NonTerminalPods => "non-terminal pods only",
            Counts::Other => "not pods or jobs",
        }
    }
}

/// Counted in whole objects (`count/*`, `pods`), so limits round to integers.
pub fn whole(resource: &str) -> bool {
    resource == "pods" || resource.starts_with("count/")
}

/// The compute-quota name a pod's charge is stored under: `cpu` is
/// `requests.cpu`, `hugepages-2Mi` is `requests.hugepages-2Mi`.
pub fn charge_key(resource: &str) -> String {
    if resource.starts_with("requests.") || resource.starts_with("limits.") {
        resource.to_string()
    } else {
        format!("requests.{resource}")
    }
}

/// What deleting some objects frees.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relief {
    pub stored_pods: u64,
    pub stored_jobs: u64,
    /// Non-terminal pods among the stored pods (what `pods` counts).
    pub live_pods: u64,
    /// Sum of the charges of those live pods.
    pub charges: BTreeMap<String, f64>,
}

impl Relief {
    pub fn amount(&self, resource: &str) -> f64 {
        match Counts::of(resource) {
            Counts::StoredPods => self.stored_pods as f64,
            Counts::StoredJobs => self.stored_jobs as f64,
            Counts::NonTerminalPods if resource == "pods" => self.live_pods as f64,
            Counts::NonTerminalPods => self
                .charges
                .get(&charge_key(resource))
                .copied()
                .unwrap_or(0.0),
            Counts::Other => 0.0,
        }
    }

    fn add_pod(&mut self, p: &Candidate) {
        self.stored_pods += 1;
        if !p.phase.is_finished() {
            self.live_pods += 1;
            for (k, milli) in &p.charges {
                *self.charges.entry(k.clone()).or_default() += *milli as f64 / 1000.0;
            }
        }
    }
}

/// The pods of each job in an inventory, so a job's relief is not a scan.
pub struct Index<'a> {
    pods_of: HashMap<&'a str, Vec<&'a Candidate>>,
    cascade: Cascade,
}

impl<'a> Index<'a> {
    pub fn new(inv: &'a Inventory, cascade: Cascade) -> Self {
        let mut pods_of: HashMap<&str, Vec<&Candidate>> = HashMap::new();
        for p in &inv.pods {
            if let Some(o) = p.owner_job() {
                pods_of.entry(o.uid.as_str()).or_default().push(p);
            }
        }
        Index { pods_of, cascade }
    }

    /// The pods that go when `c` is deleted: itself, or a job's pods unless
    /// the cascade orphans them.
    fn removed_pods(&self, c: &'a Candidate) -> Vec<&'a Candidate> {
        match c.kind {
            Kind::Pod => vec![c],
            Kind::Job if self.cascade == Cascade::Orphan => vec![],
            Kind::Job => self
                .pods_of
                .get(c.uid.as_str())
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// What deleting `c` alone frees.
    pub fn relief(&self, c: &'a Candidate) -> Relief {
        self.relief_of([c])
    }

    /// What deleting all of `units` frees; a pod reached twice (itself and
    /// through its job) counts once.
    pub fn relief_of(&self, units: impl IntoIterator<Item = &'a Candidate>) -> Relief {
        let mut r = Relief::default();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for c in units {
            if c.kind == Kind::Job {
                r.stored_jobs += 1;
            }
            for p in self.removed_pods(c) {
                if seen.insert(p.uid.as_str()) {
                    r.add_pod(p);
                }
            }
        }
        r
    }
}

/// What quota charges a non-terminal pod (`requests.cpu`, `limits.memory`…,
/// in thousandths),
/// as the quota evaluator computes it: containers add up, init containers
/// count by their maximum (they run one at a time), the overhead adds on.
pub fn pod_charges(p: &Pod) -> BTreeMap<String, u64> {
    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let Some(spec) = p.spec.as_ref() else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    type Pick = fn(&ResourceRequirements) -> Option<&BTreeMap<String, Quantity>>;
    let kinds: [(&str, Pick); 2] = [
        ("requests", |r| r.requests.as_ref()),
        ("limits", |r| r.limits.as_ref()),
    ];
    for (kind, pick) in kinds {
        let amounts = |c: &k8s_openapi::api::core::v1::Container| -> Vec<(String, f64)> {
            c.resources
                .as_ref()
                .and_then(pick)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| crate::quantity::parse(&v.0).map(|n| (k.clone(), n)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut sum: BTreeMap<String, f64> = BTreeMap::new();
        for c in &spec.containers {
            for (k, v) in amounts(c) {
                *sum.entry(k).or_default() += v;
            }
        }
        for c in spec.init_containers.iter().flatten() {
            for (k, v) in amounts(c) {
                let e = sum.entry(k).or_default();
                *e = e.max(v);
            }
        }
        for (k, v) in spec.overhead.iter().flatten() {
            if let Some(n) = crate::quantity::parse(&v.0) {
                *sum.entry(k.clone()).or_default() += n;
            }
        }
        out.extend(
            sum.into_iter()
                .map(|(k, v)| (format!("{kind}.{k}"), (v * 1000.0).round().max(0.0) as u64)),
        );
    }
    out
}

/// `used / hard`, or None where the quota allows nothing (hard 0).
pub fn ratio(used: f64, hard: f64) -> Option<f64> {
    (hard > 0.0).then(|| used / hard)
}

fn slack(hard: f64) -> f64 {
    hard.abs().max(1.0) * EPS
}

/// `used` has reached `fraction` of `hard`.
pub fn reached(used: f64, hard: f64, fraction: f64) -> bool {
    hard > 0.0 && used >= fraction * hard - slack(hard)
}

/// The most a resource may use to be at or below `fraction` of `hard`
/// (whole objects for counts: 50% of 15 pods is 7).
pub fn limit_at_or_below(hard: f64, fraction: f64, resource: &str) -> f64 {
    if whole(resource) {
        (fraction * hard + slack(hard)).floor()
    } else {
        fraction * hard
    }
}

/// The most a resource may use to be strictly below `fraction` of `hard`
/// (80% of 10 pods: 7), or None for a continuous resource, which has no
/// largest value below a bound.
pub fn limit_below(hard: f64, fraction: f64, resource: &str) -> Option<f64> {
    whole(resource).then(|| ((fraction * hard - slack(hard)).ceil() - 1.0).max(0.0))
}

/// Whether `projected` is strictly below `fraction` of `hard`.
pub fn below(projected: f64, hard: f64, fraction: f64) -> bool {
    projected < fraction * hard - slack(hard)
}

/// Formats a quota figure as kubectl shows small quantities: `12`, `1.5`.
pub fn figure(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `90%`; fractions of a percent are rounded down so 79.9% never shows as 80%.
pub fn percent(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{}%", ((r * 100.0) + EPS).floor() as i64),
        None => "-".into(),
    }
}

/// Whether deleting what this run may delete can lower `resource` at all.
pub fn relievable(resource: &str, level: Level, cascade: Cascade, include_running: bool) -> bool {
    let pods_go = match level {
        Level::None => false,
        Level::Pods | Level::All => true,
        Level::Jobs => cascade != Cascade::Orphan,
    };
    match Counts::of(resource) {
        Counts::StoredPods => pods_go,
        Counts::StoredJobs => matches!(level, Level::Jobs | Level::All),
        Counts::NonTerminalPods => include_running && pods_go,
        Counts::Other => false,
    }
}

/// Why `resource` cannot be lowered by this run (for `relievable` = false).
pub fn why_not_relievable(resource: &str, level: Level) -> &'static str {
    match Counts::of(resource) {
        Counts::NonTerminalPods => "counts non-terminal pods only, so deleting finished pods frees none of it (--include-running deletes running pods too)",
        Counts::StoredJobs => "counts jobs, which --level pods leaves alone (use --level all)",
        Counts::StoredPods if level == Level::None => "counts pods, and --level none deletes nothing",
        Counts::StoredPods => "counts pods, but --cascade orphan leaves the pods of deleted jobs behind",
        Counts::Other => "is not a pod or job resource",
    }
}

/// What a budgeted strategy decided for one namespace (and policy rule).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// `pressure` or `watermark`.
    pub strategy: &'static str,
    /// Usage reached the threshold or the high watermark.
    pub triggered: bool,
    /// One per resource that triggered.
    pub targets: Vec<Target>,
    /// The decision in plain words.
    pub message: String,
    /// The rule could not run here (no budget) and was left out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inactive: bool,
}

/// Where a budgeted strategy wants one quota resource to end up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub quota: String,
    pub resource: String,
    pub hard: f64,
    /// Usage, less what earlier policy rules already plan to free.
    pub used: f64,
    /// The highest usage that meets the goal (below the threshold, or at or
    /// below the low watermark).
    pub limit: f64,
    /// What must be freed to get there.
    pub needed: f64,
    /// What the picked objects free.
    pub planned: f64,
    /// What is still missing after every object that may go is planned.
    pub shortfall: f64,
}

/// `quota NAME`, or `--capacity N` for the stand-in budget.
pub fn budget_name(q: &Quota) -> String {
    if q.is_capacity() {
        format!(
            "{} {}",
            crate::model::CAPACITY_QUOTA,
            figure(q.hard.get(COUNT_PODS).copied().unwrap_or(0.0))
        )
    } else {
        format!("quota {}", q.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::*;
    use crate::model::Phase;

    #[test]
    fn what_each_resource_counts() {
        assert_eq!(Counts::of("count/pods"), Counts::StoredPods);
        assert_eq!(Counts::of("count/jobs.batch"), Counts::StoredJobs);
        for r in [
            "pods",
            "cpu",
            "memory",
            "requests.cpu",
            "limits.memory",
            "requests.nvidia.com/gpu",
        ] {
            assert_eq!(Counts::of(r), Counts::NonTerminalPods, "{r}");
        }
        assert_eq!(Counts::of("services"), Counts::Other);
        assert_eq!(charge_key("cpu"), "requests.cpu");
        assert_eq!(charge_key("limits.cpu"), "limits.cpu");
    }

    #[test]
    fn finished_pods_free_count_pods_only_and_running_ones_free_compute() {
        let done = pod("done", Phase::Succeeded, 0);
        let mut running = pod("running", Phase::Running, 0);
        running.charges = [
            ("requests.cpu".to_string(), 500),
            ("limits.memory".to_string(), 1_024_000),
        ]
        .into();
        let inv = Inventory::default();
        let ix = Index::new(&inv, Cascade::Background);
        let r = ix.relief(&done);
        assert_eq!(
            (
                r.amount("count/pods"),
                r.amount("pods"),
                r.amount("requests.cpu"),
                r.amount("cpu")
            ),
            (1.0, 0.0, 0.0, 0.0)
        );
        let r = ix.relief_of([&done, &running]);
        assert_eq!(
            (
                r.amount("count/pods"),
                r.amount("pods"),
                r.amount("cpu"),
                r.amount("limits.memory")
            ),
            (2.0, 1.0, 0.5, 1024.0)
        );
        assert_eq!(r.amount("count/jobs.batch"), 0.0);
        assert_eq!(r.amount("services"), 0.0);
    }

    #[test]
    fn a_job_frees_its_pods_unless_orphaned_and_each_pod_counts_once() {
        let j = job("j", Phase::Complete, 0);
        let p1 = owned_by(pod("p1", Phase::Succeeded, 1), &j);
        let p2 = owned_by(pod("p2", Phase::Failed, 2), &j);
        let inv = Inventory {
            pods: vec![p1.clone(), p2],
            jobs: vec![j.clone()],
            ..Default::default()
        };
        let r = Index::new(&inv, Cascade::Background).relief(&inv.jobs[0]);
        assert_eq!((r.stored_jobs, r.stored_pods, r.live_pods), (1, 2, 0));
        let r = Index::new(&inv, Cascade::Orphan).relief(&inv.jobs[0]);
        assert_eq!((r.stored_jobs, r.stored_pods), (1, 0));
        let ix = Index::new(&inv, Cascade::Foreground);
        assert_eq!(ix.relief_of([&inv.jobs[0], &inv.pods[0]]).stored_pods, 2);
    }

    #[test]
    fn a_pod_is_charged_its_containers_the_largest_init_container_and_overhead() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
                ],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                "overhead": {"cpu": "100m"},
            }
        }))
        .unwrap();
        let c = pod_charges(&p);
        assert_eq!(c.get("requests.cpu"), Some(&2100));
        assert_eq!(c.get("requests.memory"), Some(&(1024 * 1024 * 1024 * 1000)));
        assert_eq!(c.get("limits.cpu"), Some(&1100));
        assert!(pod_charges(&Pod::default()).is_empty());
    }

    #[test]
    fn fractions_round_the_safe_way() {
        // 0.7 * 10 is 7.000000000000001 in floating point.
        assert!(reached(7.0, 10.0, 0.7));
        assert!(!reached(6.0, 10.0, 0.7));
        assert_eq!(limit_at_or_below(10.0, 0.7, "count/pods"), 7.0);
        assert_eq!(limit_at_or_below(15.0, 0.5, "count/pods"), 7.0);
        assert_eq!(limit_at_or_below(15.0, 0.5, "pods"), 7.0);
        assert_eq!(limit_at_or_below(3.0, 0.5, "requests.cpu"), 1.5);
        assert_eq!(limit_below(10.0, 0.8, "count/pods"), Some(7.0));
        assert_eq!(limit_below(10.0, 0.85, "count/jobs.batch"), Some(8.0));
        assert_eq!(limit_below(10.0, 0.7, "pods"), Some(6.0));
        assert_eq!(limit_below(4.0, 0.5, "requests.cpu"), None);
        assert!(below(6.0, 10.0, 0.7) && !below(7.0, 10.0, 0.7));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(percent(Some(0.799)), "79%");
        assert_eq!(percent(Some(0.7)), "70%");
        assert_eq!(figure(2.0), "2");
        assert_eq!(figure(1.25), "1.25");
    }

    #[test]
    fn what_a_run_can_relieve_depends_on_level_cascade_and_running() {
        use Level::*;
        assert!(relievable("count/pods", Pods, Cascade::Background, false));
        assert!(relievable("count/pods", Jobs, Cascade::Background, false));
        assert!(!relievable("count/pods", Jobs, Cascade::Orphan, false));
        assert!(!relievable(
            "count/jobs.batch",
            Pods,
            Cascade::Background,
            false
        ));
        assert!(relievable(
            "count/jobs.batch",
            All,
            Cascade::Background,
            false
        ));
        assert!(!relievable("pods", Pods, Cascade::Background, false));
        assert!(relievable("pods", Pods, Cascade::Background, true));
        assert!(!relievable("requests.cpu", All, Cascade::Background, false));
        assert!(!relievable("services", All, Cascade::Background, true));
        assert!(why_not_relievable("requests.cpu", Pods).contains("non-terminal pods only"));
    }
}
