//! The cache behind `--watch`: compact records of what the watched lists
//! hold (a `Candidate` per pod and job, a `Quota` per ResourceQuota, and for
//! the counts a mark per stored pod and job), kept current by the watch's
//! events, never the API objects. Pure: `inventory::watch` feeds it steps,
//! `snapshot` hands the pipeline what a fresh LIST would have given.
//!
//! A (re)list is a mark and sweep: `Begin` starts a generation, each listed
//! object is put with it, `Done` drops what the list no longer had. Until
//! then the resource is not synced and nothing is planned from it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::{Candidate, Keep, Quota};
use crate::quota::Counts;

/// What the watch follows; each is one LIST, then one WATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Resource {
    /// The pods the selector and phases pick, as candidates.
    Pods,
    /// The jobs the selector picks, as candidates.
    Jobs,
    Quotas,
    /// Every pod in scope, metadata only: `count/pods`, `--capacity`, and
    /// the keep markers on pods of jobs that might be deleted.
    PodCounts,
    /// Every job in scope, metadata only: `count/jobs.batch`.
    JobCounts,
}

impl Resource {
    pub(crate) const ALL: [Resource; 5] = [
        Resource::Pods,
        Resource::Jobs,
        Resource::Quotas,
        Resource::PodCounts,
        Resource::JobCounts,
    ];

    /// Its name in messages and in the metrics' `resource` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Resource::Pods => "pods",
            Resource::Jobs => "jobs",
            Resource::Quotas => "resourcequotas",
            Resource::PodCounts => "pods (metadata)",
            Resource::JobCounts => "jobs (metadata)",
        }
    }
}

/// A stored pod, for the counts: its namespace and, when it has a keep
/// (the marker or a keep-until) and jobs own it, what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodMark {
    pub(crate) namespace: Arc<str>,
    /// Boxed: most pods have no keep.
    pub(crate) kept: Option<Box<KeptPod>>,
}

/// A pod with a keep: its name, its keep, and the uids of the jobs whose
/// delete would take it (every Job among its owners, controller or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptPod {
    pub(crate) name: Box<str>,
    pub(crate) keep: Keep,
    pub(crate) jobs: Box<[Box<str>]>,
}

/// One record, by resource.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    Pod(Arc<Candidate>),
    Job(Arc<Candidate>),
    Quota(Quota),
    PodMark(PodMark),
    /// A stored job: its namespace.
    JobMark(Arc<str>),
}

/// What the watch of one resource says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// A (re)list starts.
    Begin,
    /// Listed, added or modified: the record under the object's uid.
    Put(Box<str>, Record),
    /// Deleted (or no longer matching the selector), by uid.
    Remove(Box<str>),
    /// The list is complete; watching from here on.
    Done,
}

/// One resource's records by uid, with the generation of the list that
/// last saw each.
#[derive(Debug)]
struct Store<T> {
    items: HashMap<Box<str>, (u32, T)>,
    generation: u32,
    synced: bool,
}

impl<T> Default for Store<T> {
    fn default() -> Self {
        Store {
            items: HashMap::new(),
            generation: 0,
            synced: false,
        }
    }
}

impl<T> Store<T> {
    fn begin(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.synced = false;
    }
    fn put(&mut self, uid: Box<str>, v: T) {
        self.items.insert(uid, (self.generation, v));
    }
    fn remove(&mut self, uid: &str) {
        self.items.remove(uid);
    }
    fn done(&mut self) {
        let g = self.generation;
        self.items.retain(|_, (seen, _)| *seen == g);
        self.items.shrink_to_fit();
        self.synced = true;
    }
    fn values(&self) -> impl Iterator<Item = &T> {
        self.items.values().map(|(_, v)| v)
    }
}

/// The records of every watched resource.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    watched: Vec<Resource>,
    pods: Store<Arc<Candidate>>,
    jobs: Store<Arc<Candidate>>,
    quotas: Store<Quota>,
    pod_marks: Store<PodMark>,
    job_marks: Store<Arc<str>>,
    /// One allocation per namespace name, shared by its records.
    namespaces: HashSet<Arc<str>>,
}

/// What the cache holds at one moment, as the inventory's lists would give
/// it (see `inventory::from_cache`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    /// Ordered by namespace and name, as a LIST returns them.
    pub(crate) pods: Vec<Arc<Candidate>>,
    pub(crate) jobs: Vec<Arc<Candidate>>,
    /// `count/pods` and `count/jobs.batch` as counted from the watch.
    pub(crate) quotas: Vec<Quota>,
    /// Job uid → the name and keep of its pod kept longest (as `take`
    /// gives them).
    pub(crate) kept_pods: BTreeMap<String, (String, Keep)>,
    /// Stored pods by namespace (when every pod is watched).
    pub(crate) stored_pods: Option<BTreeMap<String, u64>>,
    pub(crate) taken_at: DateTime<Utc>,
}

impl Cache {
    pub(crate) fn new(watched: Vec<Resource>) -> Self {
        Cache {
            watched,
            ..Default::default()
        }
    }

    /// Applies one step of `resource`'s watch.
    pub(crate) fn apply(&mut self, resource: Resource, step: Step) {
        match step {
            Step::Begin => self.store(resource).begin(),
            Step::Done => self.store(resource).done(),
            Step::Remove(uid) => self.store(resource).remove(&uid),
            Step::Put(uid, record) => match record {
                Record::Pod(c) => {
                    let c = self.interned(c);
                    self.pods.put(uid, c)
                }
                Record::Job(c) => {
                    let c = self.interned(c);
                    self.jobs.put(uid, c)
                }
                Record::Quota(q) => self.quotas.put(uid, q),
                Record::PodMark(mut m) => {
                    m.namespace = self.namespace(&m.namespace);
                    self.pod_marks.put(uid, m)
                }
                Record::JobMark(ns) => {
                    let ns = self.namespace(&ns);
                    self.job_marks.put(uid, ns)
                }
            },
        }
    }

    /// Marks `resource` unsynced (its watch failed): nothing is planned
    /// until it is listed again.
    pub(crate) fn lost(&mut self, resource: Resource) {
        self.store(resource).set_unsynced();
    }

    /// Every watched resource is listed and watched.
    pub(crate) fn synced(&self) -> bool {
        self.watched.iter().all(|r| self.is_synced(*r))
    }

    pub(crate) fn is_synced(&self, r: Resource) -> bool {
        match r {
            Resource::Pods => self.pods.synced,
            Resource::Jobs => self.jobs.synced,
            Resource::Quotas => self.quotas.synced,
            Resource::PodCounts => self.pod_marks.synced,
            Resource::JobCounts => self.job_marks.synced,
        }
    }

    /// Records held, by watched resource.
    pub(crate) fn sizes(&self) -> Vec<(Resource, usize)> {
        self.watched
            .iter()
            .map(|r| {
                let n = match r {
                    Resource::Pods => self.pods.items.len(),
                    Resource::Jobs => self.jobs.items.len(),
                    Resource::Quotas => self.quotas.items.len(),
                    Resource::PodCounts => self.pod_marks.items.len(),
                    Resource::JobCounts => self.job_marks.items.len(),
                };
                (*r, n)
            })
            .collect()
    }

    /// The lists as of `now`.
    pub(crate) fn snapshot(&self, now: DateTime<Utc>) -> Snapshot {
        let sorted = |s: &Store<Arc<Candidate>>| {
            let mut v: Vec<Arc<Candidate>> = s.values().cloned().collect();
            v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            v
        };
        let counting_pods = self.watched.contains(&Resource::PodCounts);
        let counting_jobs = self.watched.contains(&Resource::JobCounts);
        let count = |namespaces: &mut dyn Iterator<Item = &Arc<str>>| {
            let mut n: BTreeMap<String, u64> = BTreeMap::new();
            for ns in namespaces {
                *n.entry(ns.to_string()).or_default() += 1;
            }
            n
        };
        let stored_pods =
            counting_pods.then(|| count(&mut self.pod_marks.values().map(|m| &m.namespace)));
        let stored_jobs = counting_jobs.then(|| count(&mut self.job_marks.values()));
        let mut quotas: Vec<Quota> = self.quotas.values().cloned().collect();
        quotas.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for q in &mut quotas {
            count_live(q, stored_pods.as_ref(), stored_jobs.as_ref());
        }
        let mut kept_pods: BTreeMap<String, (String, Keep)> = BTreeMap::new();
        for k in self.pod_marks.values().filter_map(|m| m.kept.as_deref()) {
            for job in &k.jobs {
                // The pod kept longest speaks for the job; of equal keeps,
                // the first in name order, as a list would give it.
                let e = kept_pods
                    .entry(job.to_string())
                    .or_insert_with(|| (k.name.to_string(), k.keep));
                let longer = e.1.longer(k.keep);
                if longer != e.1 || (k.keep == e.1 && *k.name < *e.0) {
                    *e = (k.name.to_string(), k.keep);
                }
            }
        }
        Snapshot {
            pods: sorted(&self.pods),
            jobs: sorted(&self.jobs),
            quotas,
            kept_pods,
            stored_pods,
            taken_at: now,
        }
    }

    fn store(&mut self, r: Resource) -> &mut dyn Erased {
        match r {
            Resource::Pods => &mut self.pods,
            Resource::Jobs => &mut self.jobs,
            Resource::Quotas => &mut self.quotas,
            Resource::PodCounts => &mut self.pod_marks,
            Resource::JobCounts => &mut self.job_marks,
        }
    }

    fn namespace(&mut self, ns: &Arc<str>) -> Arc<str> {
        if let Some(a) = self.namespaces.get(ns) {
            return Arc::clone(a);
        }
        self.namespaces.insert(Arc::clone(ns));
        Arc::clone(ns)
    }

    /// The record with its namespace shared with the others of the namespace.
    fn interned(&mut self, c: Arc<Candidate>) -> Arc<Candidate> {
        let ns = self.namespace(&c.namespace);
        if Arc::ptr_eq(&ns, &c.namespace) {
            return c;
        }
        let mut c = Arc::unwrap_or_clone(c);
        c.namespace = ns;
        Arc::new(c)
    }
}

/// The store operations that do not depend on the record's type.
trait Erased {
    fn begin(&mut self);
    fn done(&mut self);
    fn remove(&mut self, uid: &str);
    fn set_unsynced(&mut self);
}

impl<T> Erased for Store<T> {
    fn begin(&mut self) {
        Store::begin(self)
    }
    fn done(&mut self) {
        Store::done(self)
    }
    fn remove(&mut self, uid: &str) {
        Store::remove(self, uid)
    }
    fn set_unsynced(&mut self) {
        self.synced = false;
    }
}

/// `count/pods` and `count/jobs.batch` from the watch rather than the
/// quota's status: the quota controller updates the status some time after
/// a delete, and a re-plan in between would see the deleted objects still
/// counted and delete more than the watermark asks for.
fn count_live(
    q: &mut Quota,
    pods: Option<&BTreeMap<String, u64>>,
    jobs: Option<&BTreeMap<String, u64>>,
) {
    let resources: Vec<String> = q.hard.keys().cloned().collect();
    for r in resources {
        let counted = match Counts::of(&r) {
            Counts::StoredPods => pods,
            Counts::StoredJobs => jobs,
            _ => continue,
        };
        if let Some(counts) = counted {
            let n = counts.get(q.namespace.as_str()).copied().unwrap_or(0);
            q.used.insert(r, n as f64);
        }
    }
}

#[cfg(test)]
mod tests;
