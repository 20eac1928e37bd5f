//! How many deletes are in flight: a fixed number (`--concurrency N`) or, by
//! default, adaptive (`--concurrency auto`).
//!
//! The adaptive `Controller` is pure: it sees, for each request, when it was
//! sent, when it was answered, how (`Answer`) and how many were in flight,
//! and keeps a limit between 1 and a cap. It measures throughput over
//! windows of about `limit` answers, counting only requests sent under the
//! current limit, by Little's law (requests in flight / mean latency: no
//! clock spans, so requests answered in bunches do not skew it), and
//!
//! * starts at `START` and doubles while a doubling raises throughput by at
//!   least `START_GAIN` (slow start: too high a limit costs only latency, too
//!   low a limit costs time, so a doubling that gains a little is kept),
//!   going back to the lower limit only when the doubling lost more than
//!   `GAIN`;
//! * then holds, and every `PROBE_EVERY` windows probes a quarter higher,
//!   keeping the probe only if throughput rose by `GAIN`, else returning;
//! * halves on 429 (throttled) and 5xx or no answer (overloaded), once per
//!   round of requests: answers to requests sent before the last decrease
//!   were sent at a limit already given up;
//! * takes a quarter off when latency doubles at the same limit without more
//!   throughput (the server got slower: more requests would only queue).
//!
//! `Limiter` is its async side: a semaphore whose permits follow the limit,
//! one permit per request sent (not per object: a request waiting out a
//! Retry-After holds none).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

/// The adaptive limit never goes above this (nor does `--concurrency N`).
pub(crate) const CAP: usize = 256;
/// Where the adaptive limit starts: kubectl's clients allow bursts of this
/// many, and an API server serves that many deletes at once without strain.
const START: usize = 32;
/// A window has at least this many answers.
const MIN_WINDOW: usize = 8;
/// The throughput rise that makes a higher limit worth keeping.
const GAIN: f64 = 1.10;
/// The rise that makes slow start double again.
const START_GAIN: f64 = 1.05;
/// Latency this many times that of the limit's first window, at the same
/// limit and without more throughput: the server got slower.
const LATENCY_RISE: f64 = 2.0;
/// Windows held at one limit before probing higher.
const PROBE_EVERY: u32 = 4;

/// How the server answered one request, as far as load is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Any answer that says nothing about load (2xx, 404, 409, 403…).
    Served,
    /// 429: API Priority and Fairness (or a proxy) asks us to slow down.
    Throttled,
    /// 5xx, or no answer at all: the server is struggling.
    Overloaded,
}

impl Answer {
    pub(crate) fn of<T>(r: &Result<T, kube::Error>) -> Answer {
        match r {
            Ok(_) => Answer::Served,
            Err(kube::Error::Api(s)) if s.code == 429 => Answer::Throttled,
            Err(kube::Error::Api(s)) if s.code >= 500 => Answer::Overloaded,
            Err(kube::Error::Api(_)) => Answer::Served,
            Err(_) => Answer::Overloaded,
        }
    }
}

/// One request: sent and answered, as offsets from a common start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) sent: Duration,
    pub(crate) answered: Duration,
    pub(crate) answer: Answer,
    /// Requests in flight when it was answered, itself included.
    pub(crate) in_flight: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Doubling while throughput rises.
    Start,
    /// At a chosen limit; `windows` measured since.
    Hold { windows: u32 },
    /// Trying a higher limit; back to `from` unless throughput beats `rate`.
    Probe { from: usize, rate: f64 },
}

/// Throughput and mean latency of one window.
#[derive(Debug, Clone, Copy)]
struct Measure {
    rate: f64,
    latency: f64,
}

#[derive(Debug, Clone, Default)]
struct Window {
    /// Requests sent before this are not counted.
    opened: Duration,
    answers: usize,
    in_flight: usize,
    latency: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct Controller {
    limit: usize,
    cap: usize,
    adaptive: bool,
    phase: Phase,
    window: Window,
    /// The previous window's measure (slow start compares against it).
    previous: Option<Measure>,
    /// The first window at the current limit (the hold compares against it).
    reference: Option<Measure>,
    /// Throttling and overload count only for requests sent after this.
    decreased_at: Duration,
}

impl Controller {
    /// `--concurrency N`: always N.
    pub(crate) fn fixed(n: usize) -> Self {
        let mut c = Controller::adaptive(n.clamp(1, CAP));
        c.limit = n.clamp(1, CAP);
        c.adaptive = false;
        c
    }

    /// `--concurrency auto`, never above `cap`.
    pub(crate) fn adaptive(cap: usize) -> Self {
        let cap = cap.clamp(1, CAP);
        Controller {
            limit: START.min(cap),
            cap,
            adaptive: true,
            phase: Phase::Start,
            window: Window::default(),
            previous: None,
            reference: None,
            decreased_at: Duration::ZERO,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The most requests this controller may ever allow at once.
    pub(crate) fn cap(&self) -> usize {
        if self.adaptive {
            self.cap
        } else {
            self.limit
        }
    }

    pub(crate) fn record(&mut self, s: Sample) {
        if !self.adaptive {
            return;
        }
        if s.answer != Answer::Served {
            if s.sent >= self.decreased_at {
                self.decrease(0.5, s.answered);
            }
            return;
        }
        let w = &mut self.window;
        if s.sent < w.opened {
            return;
        }
        w.answers += 1;
        w.in_flight += s.in_flight.max(1);
        w.latency += s.answered.saturating_sub(s.sent);
        if w.answers < self.limit.max(MIN_WINDOW) {
            return;
        }
        let latency = (w.latency.as_secs_f64() / w.answers as f64).max(1e-6);
        let m = Measure {
            rate: w.in_flight as f64 / w.answers as f64 / latency,
            latency,
        };
        self.decide(m, s.answered);
    }

    fn decide(&mut self, m: Measure, now: Duration) {
        match self.phase {
            Phase::Start => match self.previous {
                Some(p) if m.rate < p.rate / GAIN => {
                    // Worse than the limit before: go back to it.
                    self.set(self.limit / 2, now);
                    self.hold(None);
                }
                Some(p) if m.rate < p.rate * START_GAIN => self.hold(Some(m)),
                _ if self.limit >= self.cap => self.hold(Some(m)),
                _ => self.set(self.limit * 2, now),
            },
            Phase::Hold { windows } => {
                let Some(r) = self.reference else {
                    self.reference = Some(m);
                    self.phase = Phase::Hold { windows: 0 };
                    return self.reopen(now);
                };
                if m.latency > r.latency * LATENCY_RISE && m.rate < r.rate * GAIN {
                    return self.decrease(0.75, now);
                }
                if windows + 1 >= PROBE_EVERY && self.limit < self.cap {
                    let from = self.limit;
                    self.phase = Phase::Probe { from, rate: r.rate };
                    self.set(from + (from / 4).max(1), now);
                } else {
                    self.phase = Phase::Hold {
                        windows: windows + 1,
                    };
                    self.reopen(now);
                }
            }
            Phase::Probe { from, rate } => {
                if m.rate >= rate * GAIN {
                    // Worth it: keep, and probe again after one window.
                    self.hold(Some(m));
                    self.phase = Phase::Hold {
                        windows: PROBE_EVERY - 1,
                    };
                } else {
                    self.set(from, now);
                    self.hold(None);
                }
            }
        }
        self.previous = Some(m);
    }

    fn hold(&mut self, reference: Option<Measure>) {
        self.phase = Phase::Hold { windows: 0 };
        self.reference = reference;
    }

    fn decrease(&mut self, factor: f64, now: Duration) {
        let lower = ((self.limit as f64 * factor) as usize).max(1);
        self.set(lower, now);
        self.hold(None);
        self.previous = None;
        self.decreased_at = now;
    }

    fn set(&mut self, limit: usize, now: Duration) {
        self.limit = limit.clamp(1, self.cap);
        self.reopen(now);
    }

    fn reopen(&mut self, now: Duration) {
        self.window = Window {
            opened: now,
            ..Window::default()
        };
    }
}

/// The async side: requests wait here for a permit.
pub(crate) struct Limiter {
    semaphore: Semaphore,
    state: Mutex<State>,
    epoch: Instant,
    out: AtomicUsize,
}

struct State {
    controller: Controller,
    /// Permits to take out of circulation as they come back (the limit fell).
    debt: usize,
}

/// One request's right to be in flight. `done` tells the controller how it
/// went; dropped without `done`, it only returns the permit.
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    permit: Option<SemaphorePermit<'a>>,
    sent: Duration,
}

impl Limiter {
    pub(crate) fn new(controller: Controller) -> Self {
        Limiter {
            semaphore: Semaphore::new(controller.limit()),
            state: Mutex::new(State {
                controller,
                debt: 0,
            }),
            epoch: Instant::now(),
            out: AtomicUsize::new(0),
        }
    }

    /// How many objects may be waiting for a permit at once.
    pub(crate) fn cap(&self) -> usize {
        self.lock().controller.cap()
    }

    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.lock().controller.limit()
    }

    pub(crate) async fn acquire(&self) -> Permit<'_> {
        // The semaphore is never closed; should it be, go on unlimited
        // rather than fail a delete.
        let permit = self.semaphore.acquire().await.ok();
        self.out.fetch_add(1, Ordering::SeqCst);
        Permit {
            limiter: self,
            permit,
            sent: self.epoch.elapsed(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, permit: Option<SemaphorePermit<'_>>, sample: Option<Sample>) {
        self.out.fetch_sub(1, Ordering::SeqCst);
        let mut s = self.lock();
        if let Some(sample) = sample {
            let before = s.controller.limit();
            s.controller.record(sample);
            let after = s.controller.limit();
            if after > before {
                let paid = s.debt.min(after - before);
                s.debt -= paid;
                self.semaphore.add_permits(after - before - paid);
            } else if after < before {
                let idle = self.semaphore.forget_permits(before - after);
                s.debt += before - after - idle;
            }
        }
        if let Some(p) = permit {
            if s.debt > 0 {
                s.debt -= 1;
                p.forget();
            }
        }
    }
}

impl Permit<'_> {
    pub(crate) fn done(mut self, answer: Answer) {
        let sample = Sample {
            sent: self.sent,
            answered: self.limiter.epoch.elapsed(),
            answer,
            in_flight: self.limiter.out.load(Ordering::SeqCst),
        };
        self.limiter.release(self.permit.take(), Some(sample));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            self.limiter.release(Some(p), None);
        }
    }
}

#[cfg(test)]
mod tests;
