//! `--watch`'s reads: one kube-runtime `watcher` per resource of the scope
//! (one paged LIST, then a WATCH that the watcher resumes from the last
//! resourceVersion when the server ends it), turned into `cache` steps as
//! the events arrive, each object reduced to its record at once.
//!
//! A watch that fails (410 Gone, a broken connection, a restarted API
//! server) is dropped and started over from a fresh LIST after kube-runtime's
//! default backoff (0.8 s doubling to 30 s, with jitter), as client-go's
//! reflector does; the resource counts as out of sync until that list is
//! complete, so a recovered watch is a known state, not a hope.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, SelectAll};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::core::PartialObjectMeta;
use kube::{Api, Client, Resource as KubeResource};
use kube_runtime::watcher::{self, DefaultBackoff, Event};
use serde::de::DeserializeOwned;

use super::cache::{Cache, KeptPod, PodMark, Record, Resource, Snapshot, Step};
use super::convert::{full_pod_candidate, job_candidate, pod_candidate, pod_phase, quota};
use super::listed::{ListedMeta, ListedPod};
use super::{fields, phase_name, Needs, PAGE_SIZE};
use crate::error::Error;
use crate::model::{Keep, Phase};
use crate::request::Scope;

/// What the watch reported.
#[derive(Debug)]
pub(crate) enum Change {
    /// Records changed (or a list made progress).
    Changed,
    /// The resource's list is complete: it is in sync again.
    Listed(Resource),
    /// The resource's watch failed; it is listed again after `retry`.
    /// `fatal`: the server refused it (401, 403): waiting will not help.
    Failed {
        resource: Resource,
        error: Error,
        retry: Duration,
        fatal: bool,
    },
}

/// One resource's watch, as the cache takes it.
enum Item {
    Step(Step),
    Failed(Error, Duration, bool),
}

type Feed = BoxStream<'static, (Resource, Item)>;

/// The watched resources of a scope and the cache they keep current.
pub(crate) struct Watched {
    client: Client,
    scope: Scope,
    needs: Needs,
    cache: Cache,
    feeds: SelectAll<Feed>,
}

impl Watched {
    /// Starts watching what `needs` asks for in `scope` (nothing is read
    /// until `next` is polled).
    pub(crate) fn start(client: &Client, scope: &Scope, needs: &Needs) -> Self {
        let watched = resources(needs);
        let mut w = Watched {
            client: client.clone(),
            scope: scope.clone(),
            needs: needs.clone(),
            cache: Cache::new(watched),
            feeds: SelectAll::new(),
        };
        w.relist();
        w
    }

    /// Drops every watch and starts each over from a fresh LIST: the
    /// `--interval` safety net against an event that never arrived.
    pub(crate) fn relist(&mut self) {
        let mut feeds = SelectAll::new();
        for r in resources(&self.needs) {
            feeds.push(self.feed(r));
            self.cache.lost(r);
        }
        self.feeds = feeds;
    }

    /// The next change, once it is in the cache.
    pub(crate) async fn next(&mut self) -> Change {
        let Some((resource, item)) = self.feeds.next().await else {
            // Nothing is watched (nothing to clean): no change ever comes.
            return std::future::pending().await;
        };
        match item {
            Item::Step(step) => {
                let done = step == Step::Done;
                self.cache.apply(resource, step);
                if done {
                    // The list's pages are decoded and gone; the records stay.
                    crate::memory::trim();
                    Change::Listed(resource)
                } else {
                    Change::Changed
                }
            }
            Item::Failed(error, retry, fatal) => {
                self.cache.lost(resource);
                Change::Failed {
                    resource,
                    error,
                    retry,
                    fatal,
                }
            }
        }
    }

    /// Every watched resource is listed and watched.
    pub(crate) fn synced(&self) -> bool {
        self.cache.synced()
    }

    /// Records held, by resource.
    pub(crate) fn sizes(&self) -> Vec<(Resource, usize)> {
        self.cache.sizes()
    }

    /// What the cache holds now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.cache.snapshot(chrono::Utc::now())
    }

    fn feed(&self, r: Resource) -> Feed {
        let base = |labels: &str, extra: Option<String>| {
            let mut c = watcher::Config::default().page_size(PAGE_SIZE);
            if !labels.is_empty() {
                c = c.labels(labels);
            }
            if let Some(f) = fields(&self.scope, extra) {
                c = c.fields(&f);
            }
            c
        };
        let labels = self.needs.label_selector.as_str();
        match r {
            Resource::Pods => {
                let phases = wanted_phases(&self.needs);
                let config = base(labels, unwanted_phases(&phases));
                let api: Api<ListedPod> = api(&self.client, &self.scope);
                feed(r, api, config, move |p: ListedPod| {
                    let pod = p.into_pod();
                    let phase = pod_phase(&pod);
                    // A pod in a phase not asked for (none, as the field
                    // selector says) is no candidate.
                    phases
                        .contains(&phase)
                        .then(|| Record::Pod(full_pod_candidate(&pod, phase).into()))
                })
            }
            Resource::Jobs => {
                let api: Api<Job> = api(&self.client, &self.scope);
                feed(r, api, base(labels, None), |j: Job| {
                    Some(Record::Job(job_candidate(&j).into()))
                })
            }
            Resource::Quotas => {
                let api: Api<ResourceQuota> = api(&self.client, &self.scope);
                feed(r, api, base("", None), |q: ResourceQuota| {
                    Some(Record::Quota(quota(&q)))
                })
            }
            Resource::PodCounts => {
                let api: Api<ListedMeta> = api(&self.client, &self.scope);
                feed(r, api, base("", None), |p: ListedMeta| {
                    let pod = pod_candidate(&p.metadata, Phase::Unknown, None);
                    let jobs: Box<[Box<str>]> = if pod.keep != Keep::NONE {
                        pod.job_owners().map(|o| o.uid.as_str().into()).collect()
                    } else {
                        Box::default()
                    };
                    let kept = (!jobs.is_empty()).then(|| {
                        Box::new(KeptPod {
                            name: pod.name.clone(),
                            keep: pod.keep,
                            jobs,
                        })
                    });
                    Some(Record::PodMark(PodMark {
                        namespace: pod.namespace.clone(),
                        kept,
                    }))
                })
            }
            Resource::JobCounts => {
                let api: Api<PartialObjectMeta<Job>> = api(&self.client, &self.scope);
                feed(r, api, base("", None), |j: PartialObjectMeta<Job>| {
                    Some(Record::JobMark(
                        j.metadata.namespace.as_deref().unwrap_or_default().into(),
                    ))
                })
            }
        }
    }
}

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: KubeResource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match scope {
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        Scope::AllNamespaces => Api::all(client.clone()),
    }
}

/// What a scope's cleanup watches: the pods and jobs it may select (jobs
/// also for the states of the pods' owners), the quotas the strategies
/// read, every pod's metadata when they are counted or when jobs go as
/// units (a keep marker on any of their pods keeps them), and every job's
/// when they are counted.
fn resources(needs: &Needs) -> Vec<Resource> {
    let pods = !needs.pod_phases.is_empty() || needs.unfinished_pods;
    Resource::ALL
        .into_iter()
        .filter(|r| match r {
            Resource::Pods => pods,
            Resource::Jobs => pods || needs.jobs,
            Resource::Quotas => needs.quotas,
            Resource::PodCounts => needs.job_units || needs.quotas || needs.capacity.is_some(),
            Resource::JobCounts => needs.quotas,
        })
        .collect()
}

/// The phases whose pods are records: those that may be selected, and the
/// unfinished ones too where they are reported (skipped).
fn wanted_phases(needs: &Needs) -> Vec<Phase> {
    let mut phases = needs.pod_phases.clone();
    if needs.unfinished_pods {
        for p in [Phase::Pending, Phase::Running, Phase::Unknown] {
            if !phases.contains(&p) {
                phases.push(p);
            }
        }
    }
    phases
}

/// The phases not asked for, as `status.phase!=…` terms: one watch for the
/// phases a cleanup reads instead of one per phase.
fn unwanted_phases(wanted: &[Phase]) -> Option<String> {
    let terms: Vec<String> = [
        Phase::Pending,
        Phase::Running,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Unknown,
    ]
    .into_iter()
    .filter(|p| !wanted.contains(p))
    .map(|p| format!("status.phase!={}", phase_name(p)))
    .collect();
    (!terms.is_empty()).then(|| terms.join(","))
}

/// The watch of one resource as cache steps: kube-runtime's watcher, and
/// after a failure a new one (a fresh LIST) once the backoff has passed.
fn feed<K>(
    resource: Resource,
    api: Api<K>,
    config: watcher::Config,
    convert: impl Fn(K) -> Option<Record> + Send + Sync + 'static,
) -> Feed
where
    K: KubeResource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    type Events<K> = BoxStream<'static, watcher::Result<Event<K>>>;
    enum State<K> {
        Watching(Events<K>),
        Waiting(Duration),
    }
    let start = Arc::new(move || watcher::watcher(api.clone(), config.clone()).boxed());
    let convert = Arc::new(convert);
    let first = State::Watching(start());
    stream::unfold(
        (first, DefaultBackoff::default()),
        move |(state, mut backoff)| {
            let (start, convert) = (start.clone(), convert.clone());
            async move {
                let mut events = match state {
                    State::Watching(s) => s,
                    State::Waiting(d) => {
                        tokio::time::sleep(d).await;
                        start()
                    }
                };
                let (error, fatal) = loop {
                    match events.next().await {
                        Some(Ok(e)) => {
                            if let Some(s) = step(e, &*convert) {
                                let next = (State::Watching(events), backoff);
                                return Some(((resource, Item::Step(s)), next));
                            }
                        }
                        Some(Err(e)) => break failure(resource, e),
                        // A watcher does not end; if one did, start over.
                        None => {
                            let why = format!("the watch of {} ended", resource.name());
                            break (Error::Runtime(why), false);
                        }
                    }
                };
                let retry = backoff.next().unwrap_or(Duration::from_secs(30));
                let item = Item::Failed(error, retry, fatal);
                Some(((resource, item), (State::Waiting(retry), backoff)))
            }
        },
    )
    .boxed()
}

/// A watcher event as a cache step (None: an object without a uid).
fn step<K: KubeResource>(e: Event<K>, convert: &dyn Fn(K) -> Option<Record>) -> Option<Step> {
    let uid = |k: &K| k.meta().uid.as_deref().map(Box::<str>::from);
    Some(match e {
        Event::Init => Step::Begin,
        Event::InitDone => Step::Done,
        Event::Apply(k) | Event::InitApply(k) => {
            let uid = uid(&k)?;
            match convert(k) {
                Some(r) => Step::Put(uid, r),
                None => Step::Remove(uid),
            }
        }
        Event::Delete(k) => Step::Remove(uid(&k)?),
    })
}

/// What went wrong, as the one-line error of the rest of the tool, and
/// whether it is final (the server refused: 401, 403).
fn failure(r: Resource, e: watcher::Error) -> (Error, bool) {
    let name = r.name();
    let refused =
        |k: &kube::Error| matches!(k, kube::Error::Api(s) if s.code == 401 || s.code == 403);
    match e {
        watcher::Error::InitialListFailed(k) => {
            let fatal = refused(&k);
            (Error::from_kube(&format!("cannot list {name}"), k), fatal)
        }
        watcher::Error::WatchStartFailed(k) => {
            let fatal = refused(&k);
            (Error::from_kube(&format!("cannot watch {name}"), k), fatal)
        }
        watcher::Error::WatchFailed(k) => {
            let fatal = refused(&k);
            (
                Error::from_kube(&format!("the watch of {name} broke"), k),
                fatal,
            )
        }
        watcher::Error::WatchError(s) => {
            let fatal = s.code == 401 || s.code == 403;
            let k = kube::Error::Api(s);
            (
                Error::from_kube(&format!("the watch of {name} ended"), k),
                fatal,
            )
        }
        watcher::Error::NoResourceVersion => (
            Error::Runtime(format!(
                "the watch of {name}: an answer without a resourceVersion"
            )),
            false,
        ),
    }
}
