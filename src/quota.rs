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

pub(crate) use crate::model::COUNT_PODS;
pub(crate) const COUNT_JOBS: &str = "count/jobs.batch";

/// Tolerance of the fraction arithmetic: `0.7 * 10` is `7.000000000000001`.
const EPS: f64 = 1e-9;

/// What a quota resource counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Counts {
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
    pub(crate) fn of(resource: &str) -> Self {
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

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Counts::StoredPods => "every stored pod",
            Counts::StoredJobs => "every stored job",
            Counts::NonTerminalPods => "non-terminal pods only",
            Counts::Other => "not pods or jobs",
        }
    }
}

/// Counted in whole objects (`count/*`, `pods`), so limits round to integers.
pub(crate) fn whole(resource: &str) -> bool {
    resource == "pods" || resource.starts_with("count/")
}

/// The compute-quota name a pod's charge is stored under: `cpu` is
/// `requests.cpu`, `hugepages-2Mi` is `requests.hugepages-2Mi`.
pub(crate) fn charge_key(resource: &str) -> String {
    if resource.starts_with("requests.") || resource.starts_with("limits.") {
        resource.to_string()
    } else {
        format!("requests.{resource}")
    }
}

/// What deleting some objects frees.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Relief {
    pub(crate) stored_pods: u64,
    pub(crate) stored_jobs: u64,
    /// Non-terminal pods among the stored pods (what `pods` counts).
    pub(crate) live_pods: u64,
    /// Sum of the charges of those live pods.
    pub(crate) charges: BTreeMap<String, f64>,
}

impl Relief {
    pub(crate) fn amount(&self, resource: &str) -> f64 {
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
pub(crate) struct Index<'a> {
    pods_of: HashMap<&'a str, Vec<&'a Candidate>>,
    cascade: Cascade,
}

impl<'a> Index<'a> {
    pub(crate) fn new(inv: &'a Inventory, cascade: Cascade) -> Self {
        let mut pods_of: HashMap<&str, Vec<&Candidate>> = HashMap::new();
        for p in &inv.pods {
            for o in p.job_owners() {
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
            Kind::Job => self.pods_of.get(&*c.uid).cloned().unwrap_or_default(),
        }
    }

    /// What deleting `c` alone frees.
    pub(crate) fn relief(&self, c: &'a Candidate) -> Relief {
        self.relief_of([c])
    }

    /// What deleting all of `units` frees; a pod reached twice (itself and
    /// through its job) counts once.
    pub(crate) fn relief_of(&self, units: impl IntoIterator<Item = &'a Candidate>) -> Relief {
        let mut r = Relief::default();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for c in units {
            if c.kind == Kind::Job {
                r.stored_jobs += 1;
            }
            for p in self.removed_pods(c) {
                if seen.insert(&*p.uid) {
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
pub(crate) fn pod_charges(p: &Pod) -> BTreeMap<String, u64> {
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
pub(crate) fn ratio(used: f64, hard: f64) -> Option<f64> {
    (hard > 0.0).then(|| used / hard)
}

fn slack(hard: f64) -> f64 {
    hard.abs().max(1.0) * EPS
}

/// `used` has reached `fraction` of `hard`.
pub(crate) fn reached(used: f64, hard: f64, fraction: f64) -> bool {
    hard > 0.0 && used >= fraction * hard - slack(hard)
}

/// The most a resource may use to be at or below `fraction` of `hard`
/// (whole objects for counts: 50% of 15 pods is 7).
pub(crate) fn limit_at_or_below(hard: f64, fraction: f64, resource: &str) -> f64 {
    if whole(resource) {
        (fraction * hard + slack(hard)).floor()
    } else {
        fraction * hard
    }
}

/// The most a resource may use to be strictly below `fraction` of `hard`
/// (80% of 10 pods: 7), or None for a continuous resource, which has no
/// largest value below a bound.
pub(crate) fn limit_below(hard: f64, fraction: f64, resource: &str) -> Option<f64> {
    whole(resource).then(|| ((fraction * hard - slack(hard)).ceil() - 1.0).max(0.0))
}

/// Whether `projected` is strictly below `fraction` of `hard`.
pub(crate) fn below(projected: f64, hard: f64, fraction: f64) -> bool {
    projected < fraction * hard - slack(hard)
}

/// Formats a quota figure as kubectl shows small quantities: `12`, `1.5`.
pub(crate) fn figure(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        let s = format!("{x:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `90%`; fractions of a percent are rounded down so 79.9% never shows as 80%.
pub(crate) fn percent(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{}%", ((r * 100.0) + EPS).floor() as i64),
        None => "-".into(),
    }
}

/// Whether deleting what this run may delete can lower `resource` at all.
pub(crate) fn relievable(
    resource: &str,
    level: Level,
    cascade: Cascade,
    include_running: bool,
) -> bool {
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
pub(crate) fn why_not_relievable(resource: &str, level: Level) -> &'static str {
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
pub(crate) struct Decision {
    pub(crate) namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<String>,
    /// `pressure` or `watermark`.
    pub(crate) strategy: &'static str,
    /// Usage reached the threshold or the high watermark.
    pub(crate) triggered: bool,
    /// One per resource that triggered.
    pub(crate) targets: Vec<Target>,
    /// The decision in plain words.
    pub(crate) message: String,
    /// What the table's quota block says before its table: the situation
    /// that triggered, without what the plan will do (the block's last line
    /// and the table say that, in the tense of the run); empty: `message`.
    #[serde(skip)]
    pub(crate) headline: String,
    /// The rule could not run here (no budget) and was left out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) inactive: bool,
}

impl Decision {
    /// A rule that could not run in a namespace and was left out, saying why.
    pub(crate) fn inactive(
        namespace: &str,
        rule: Option<&str>,
        strategy: &'static str,
        message: String,
    ) -> Self {
        Decision {
            namespace: namespace.to_string(),
            rule: rule.map(str::to_string),
            strategy,
            triggered: false,
            targets: vec![],
            message,
            headline: String::new(),
            inactive: true,
        }
    }

    /// The line the quota block prints before its table.
    pub(crate) fn headline(&self) -> &str {
        if self.headline.is_empty() {
            &self.message
        } else {
            &self.headline
        }
    }
}

/// Writes a quota figure as JSON: a count (or any whole amount) as an
/// integer, a fraction (`3.5` cpus) as a number with its decimals.
pub(crate) fn amount<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if (x - x.round()).abs() < 1e-6 && x.abs() < 9e15 {
        s.serialize_i64(x.round() as i64)
    } else {
        s.serialize_f64(*x)
    }
}

/// Where a budgeted strategy wants one quota resource to end up.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Target {
    pub(crate) quota: String,
    pub(crate) resource: String,
    #[serde(serialize_with = "amount")]
    pub(crate) hard: f64,
    /// Usage, less what earlier policy rules already plan to free.
    #[serde(serialize_with = "amount")]
    pub(crate) used: f64,
    /// The highest usage that meets the goal (below the threshold, or at or
    /// below the low watermark).
    #[serde(serialize_with = "amount")]
    pub(crate) limit: f64,
    /// What must be freed to get there.
    #[serde(serialize_with = "amount")]
    pub(crate) needed: f64,
    /// What the picked objects free.
    #[serde(serialize_with = "amount")]
    pub(crate) planned: f64,
    /// What is still missing after every object that may go is planned.
    #[serde(serialize_with = "amount")]
    pub(crate) shortfall: f64,
}

/// `quota NAME`, or `--capacity N` for the stand-in budget.
pub(crate) fn budget_name(q: &Quota) -> String {
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
mod tests;
