//! `--metrics-addr`: what a `--watch` process tells Prometheus and the
//! kubelet. `/metrics` in the OpenMetrics text format (prometheus-client's
//! registry and encoder): objects by namespace, kind, strategy and result;
//! cycles by outcome; the cycle duration histogram; the latest usage ratio of
//! each quota resource read; the time of the last successful cycle; Events
//! recorded and failed. `/healthz` answers while the process runs;
//! `/readyz` while a cycle succeeded within the last two intervals. The
//! HTTP/1 server is `metrics/server.rs`. Everything counted comes from the
//! cycle's own report, so the counters and the JSON reports agree.

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
    /// `/readyz`: ready while a cycle succeeded within two of these.
    interval: Duration,
    succeeded_at: Mutex<Option<Instant>>,
}

impl Metrics {
    pub(crate) fn new(interval: Duration) -> Self {
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
            "--watch cycles by outcome: success (exit code 0), failed (some deletes failed), error (the cycle stopped on an error)",
            cycles.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register_with_unit(
            "cycle_duration",
            "How long each --watch cycle took, from the first list to the report",
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
        Metrics {
            registry,
            objects,
            cycles,
            duration,
            quota_ratio,
            last_success,
            events,
            interval,
            succeeded_at: Mutex::new(None),
        }
    }

    /// Counts one cycle: its outcome, how long it took and, when it has one,
    /// every row of its report.
    pub(crate) fn observe(&self, outcome: Outcome, took: Duration, report: Option<&CleanupReport>) {
        self.cycles
            .get_or_create(&CycleLabels {
                outcome: outcome.label().into(),
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
            if let Ok(mut at) = self.succeeded_at.lock() {
                *at = Some(Instant::now());
            }
        }
    }

    /// `/metrics`: the OpenMetrics text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// `/readyz`: Ok while a cycle succeeded within the last two intervals;
    /// else why not.
    pub(crate) fn ready(&self) -> Result<(), String> {
        let at = self.succeeded_at.lock().ok().and_then(|a| *a);
        match at {
            None => Err("no cycle has succeeded yet".into()),
            Some(t) if t.elapsed() <= 2 * self.interval => Ok(()),
            Some(t) => Err(format!(
                "the last successful cycle ended {}s ago, more than two intervals ({}s)",
                t.elapsed().as_secs(),
                (2 * self.interval).as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests;
