//! `--metrics-addr`: what a `--watch` process tells Prometheus and the
//! kubelet. `/metrics` in the OpenMetrics text format (prometheus-client's
//! registry and encoder): objects by namespace, kind, strategy and result;
//! reconciles (cycles) by outcome and trigger; their duration histogram; the
//! latest usage ratio of each quota resource read; the time of the last
//! successful reconcile; Events recorded and failed; the watch's restarts
//! and the records its cache holds. `/healthz` answers while the process
//! runs; `/readyz` while every watch is established and the last reconcile
//! succeeded (`--watch=poll`: while a cycle succeeded within the last two
//! intervals). The HTTP/1 server is `metrics/server.rs`. Everything counted
//! of a reconcile comes from its own report, so the counters and the JSON
//! reports agree.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::report::CleanupReport;

mod server;
pub(crate) use server::start;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    namespace: String,
    kind: String,
    strategy: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CycleLabels {
    outcome: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestartLabels {
    resource: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    resource: String,
}

/// What started a reconcile, as the `trigger` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// `--watch=poll`: the interval came round.
    Cycle,
    /// The watch's first complete list.
    Start,
    /// Objects changed (debounced).
    Change,
    /// An object became eligible by age or retention.
    Timer,
    /// The `--interval` re-list, or a watch listed again after a failure.
    Relist,
    /// The previous reconcile failed: tried again after a backoff.
    Retry,
}

impl Trigger {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Trigger::Cycle => "cycle",
            Trigger::Start => "start",
            Trigger::Change => "change",
            Trigger::Timer => "timer",
            Trigger::Relist => "relist",
            Trigger::Retry => "retry",
        }
    }
}

/// What `/readyz` answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// `--watch`: every watch established and the last reconcile succeeded.
    Watching,
    /// `--watch=poll`: a cycle succeeded within two of these.
    Polling(Duration),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    namespace: String,
    quota: String,
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    result: String,
}

/// How a `--watch` cycle ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit code 0: everything planned went (or nothing was to go).
    Success,
    /// A report, but a non-zero exit code (some deletes failed…).
    Failed,
    /// No report: the cycle stopped on an error (API server unreachable…).
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
        }
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    objects: Family<ObjectLabels, Counter>,
    cycles: Family<CycleLabels, Counter>,
    duration: Histogram,
    quota_ratio: Family<QuotaLabels, Gauge<f64, AtomicU64>>,
    last_success: Gauge<f64, AtomicU64>,
    events: Family<EventLabels, Counter>,
    restarts: Family<RestartLabels, Counter>,
    cache: Family<CacheLabels, Gauge>,
    readiness: Readiness,
    state: Mutex<State>,
}

/// What `/readyz` reads.
#[derive(Debug, Default)]
struct State {
    succeeded_at: Option<Instant>,
    /// The last reconcile's outcome and, when it failed, why.
    last: Option<(Outcome, String)>,
    /// Why the watch is not established (None: it is).
    down: Option<String>,
}

impl Metrics {
    pub(crate) fn new(readiness: Readiness) -> Self {
        let mut registry = Registry::with_prefix("crucible_clean");
        let objects = Family::<ObjectLabels, Counter>::default();
        registry.register(
            "objects",
            "Objects handled by --watch cycles, by namespace, kind, strategy and result (deleted, gone, conflict, failed, cancelled, kept, skipped, wouldDelete, planned)",
            objects.clone(),
        );
        let cycles = Family::<CycleLabels, Counter>::default();
        registry.register(
            "cycles",
            "--watch reconciles (cycles) by outcome: success (exit code 0), failed (some deletes failed), error (it stopped on an error); and by trigger: start, change, timer, relist, retry (cycle: --watch=poll)",
            cycles.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register_with_unit(
            "cycle_duration",
            "How long each --watch reconcile (cycle) took, from its inventory to the report",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        let quota_ratio = Family::<QuotaLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "quota_usage_ratio",
            "Used over hard of each ResourceQuota resource the strategies read, as of the latest cycle that read it",
            quota_ratio.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "last_success_timestamp",
            "Unix time at which the latest successful cycle ended (0: none yet)",
            prometheus_client::registry::Unit::Seconds,
            last_success.clone(),
        );
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Events recorded on objects before their deletes, by result (recorded, failed)",
            events.clone(),
        );
        let restarts = Family::<RestartLabels, Counter>::default();
        registry.register(
            "watch_restarts",
            "Watches started over from a fresh list, by resource and reason: error (the watch failed: 410 Gone, a broken connection, a restarted API server), interval (the --interval re-list)",
            restarts.clone(),
        );
        let cache = Family::<CacheLabels, Gauge>::default();
        registry.register(
            "cache_objects",
            "Records the watch's cache holds, by resource (pods, jobs, resourcequotas; pods (metadata) and jobs (metadata) for the counts)",
            cache.clone(),
        );
        Metrics {
            registry,
            objects,
            cycles,
            duration,
            quota_ratio,
            last_success,
            events,
            restarts,
            cache,
            readiness,
            state: Mutex::new(State::default()),
        }
    }

    /// A watch of `resource` started over, for `reason` (`error`, `interval`).
    pub(crate) fn restarted(&self, resource: &str, reason: &str) {
        self.restarts
            .get_or_create(&RestartLabels {
                resource: resource.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// The cache holds `n` records of `resource`.
    pub(crate) fn cached(&self, resource: &str, n: usize) {
        self.cache
            .get_or_create(&CacheLabels {
                resource: resource.into(),
            })
            .set(n as i64);
    }

    /// The watch is established (None) or not, and why.
    pub(crate) fn watch_down(&self, why: Option<String>) {
        if let Ok(mut s) = self.state.lock() {
            s.down = why;
        }
    }

    /// Counts one reconcile (cycle): what started it, its outcome (`why`: of
    /// a failure), how long it took and, when it has one, every row of its
    /// report.
    pub(crate) fn observe(
        &self,
        trigger: Trigger,
        (outcome, why): (Outcome, String),
        took: Duration,
        report: Option<&CleanupReport>,
    ) {
        self.cycles
            .get_or_create(&CycleLabels {
                outcome: outcome.label().into(),
                trigger: trigger.label().into(),
            })
            .inc();
        self.duration.observe(took.as_secs_f64());
        if let Some(r) = report {
            for i in &r.items {
                self.objects
                    .get_or_create(&ObjectLabels {
                        namespace: i.candidate.namespace.to_string(),
                        kind: i.candidate.kind.resource().into(),
                        strategy: r.strategy.clone(),
                        result: i.result.as_str().into(),
                    })
                    .inc();
            }
            for line in r.quota.iter().flat_map(|q| &q.resources) {
                if let Some(ratio) = line.ratio {
                    self.quota_ratio
                        .get_or_create(&QuotaLabels {
                            namespace: line.namespace.clone(),
                            quota: line.quota.clone(),
                            resource: line.resource.clone(),
                        })
                        .set(ratio);
                }
            }
            if let Some(e) = &r.events {
                for (result, n) in [("recorded", e.recorded), ("failed", e.failed)] {
                    self.events
                        .get_or_create(&EventLabels {
                            result: result.into(),
                        })
                        .inc_by(n as u64);
                }
            }
        }
        if outcome == Outcome::Success {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            self.last_success.set(now.as_secs_f64());
        }
        if let Ok(mut s) = self.state.lock() {
            if outcome == Outcome::Success {
                s.succeeded_at = Some(Instant::now());
            }
            s.last = Some((outcome, why));
        }
    }

    /// `/metrics`: the OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// `/readyz`: Ok, or why not.
    pub(crate) fn ready(&self) -> Result<(), String> {
        let Ok(s) = self.state.lock() else {
            return Err("the metrics state is unreadable".into());
        };
        match self.readiness {
            Readiness::Watching => {
                if let Some(why) = &s.down {
                    return Err(format!("the watch is not established: {why}"));
                }
                match &s.last {
                    None => Err("no reconcile has run yet".into()),
                    Some((Outcome::Success, _)) => Ok(()),
                    Some((_, why)) => Err(format!("the last reconcile failed: {why}")),
                }
            }
            Readiness::Polling(interval) => match s.succeeded_at {
                None => Err("no cycle has succeeded yet".into()),
                Some(t) if t.elapsed() <= 2 * interval => Ok(()),
                Some(t) => Err(format!(
                    "the last successful cycle ended {}s ago, more than two intervals ({}s)",
                    t.elapsed().as_secs(),
                    (2 * interval).as_secs()
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests;
