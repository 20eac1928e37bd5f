//! The controller as pure logic: a simulated API server (no clock, no
//! network) answers each request after a latency that follows from the
//! round trip and from how many requests it is serving, and throttles with
//! 429 when a priority level's seats and queue are full. Times are simulated
//! seconds; nothing here waits.

use super::*;
use std::collections::VecDeque;

/// A server that serves its requests side by side (processor sharing) at a
/// total rate that grows with their number and saturates:
/// `rate(n) = max_rate · n / (n + half)`, as an API server in front of etcd
/// does (more writes at once, larger commits). With `seats`, at most that
/// many are served; up to `queue` more wait; the rest are answered 429.
#[derive(Clone, Copy)]
struct Server {
    rtt: f64,
    max_rate: f64,
    half: f64,
    seats: Option<usize>,
    queue: usize,
    /// Each network leg takes rtt/2 · (1 ± jitter), pseudo-random.
    jitter: f64,
}

const LOOPBACK: Server = Server {
    rtt: 0.000_3,
    max_rate: 1000.0,
    half: 4.0,
    seats: None,
    queue: 0,
    jitter: 0.3,
};

const TEN_MS: Server = Server {
    rtt: 0.010,
    ..LOOPBACK
};

const RETRY_AFTER: f64 = 1.0;

#[derive(Debug, Default)]
struct Run {
    seconds: f64,
    throttled: usize,
    most_attempts: usize,
    highest_limit: usize,
    lowest_limit_after_start: usize,
    /// (simulated second, limit) at each change.
    trace: Vec<(f64, usize)>,
}

/// Sends `n` deletes through `c` to `server`; a throttled one is sent again
/// after Retry-After (holding no permit meanwhile).
fn simulate(server: Server, n: usize, mut c: Controller) -> Run {
    let mut rng = fastrand::Rng::with_seed(7);
    let leg = |rng: &mut fastrand::Rng| {
        server.rtt / 2.0 * (1.0 + server.jitter * (2.0 * rng.f64() - 1.0))
    };
    let rate = |k: usize| server.max_rate * k as f64 / (k as f64 + server.half);
    let mut run = Run {
        lowest_limit_after_start: usize::MAX,
        ..Run::default()
    };
    let mut t = 0.0_f64;
    let mut fresh = 0..n;
    let mut attempts = vec![0usize; n];
    let mut retry: Vec<(f64, usize)> = vec![];
    let mut in_flight = 0;
    // (arrival, sent, id)
    let mut to_server: Vec<(f64, f64, usize)> = vec![];
    // (work left, sent, id)
    let mut serving: Vec<(f64, f64, usize)> = vec![];
    let mut waiting: VecDeque<(f64, usize)> = VecDeque::new();
    // (arrival, sent, id, answer)
    let mut to_client: Vec<(f64, f64, usize, Answer)> = vec![];
    let mut done = 0;
    while done < n {
        while in_flight < c.limit() {
            // As `execute`: at most `cap` objects under way (waiting out a
            // Retry-After or in flight), at most `limit` requests in flight.
            let id = match retry.iter().position(|(at, _)| *at <= t) {
                Some(i) => retry.swap_remove(i).1,
                None if in_flight + retry.len() >= c.cap() => break,
                None => match fresh.next() {
                    Some(id) => id,
                    None => break,
                },
            };
            attempts[id] += 1;
            in_flight += 1;
            to_server.push((t + leg(&mut rng), t, id));
        }
        run.highest_limit = run.highest_limit.max(c.limit());
        if run.trace.last().map(|l| l.1) != Some(c.limit()) {
            run.trace.push(((t * 1000.0).round() / 1000.0, c.limit()));
        }
        let each = if serving.is_empty() {
            0.0
        } else {
            rate(serving.len()) / serving.len() as f64
        };
        let next = [
            to_server.iter().map(|e| e.0).fold(f64::INFINITY, f64::min),
            to_client.iter().map(|e| e.0).fold(f64::INFINITY, f64::min),
            // A retry already due waits for a permit, not for the clock.
            retry
                .iter()
                .map(|e| e.0)
                .filter(|at| *at > t)
                .fold(f64::INFINITY, f64::min),
            serving
                .iter()
                .map(|e| t + e.0 / each)
                .fold(f64::INFINITY, f64::min),
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        assert!(next.is_finite(), "the simulation stalled at {t}");
        for s in &mut serving {
            s.0 -= (next - t) * each;
        }
        t = next;
        const EPS: f64 = 1e-9;
        for (_, sent, id) in take(&mut to_server, |e| e.0 <= t + EPS) {
            match server.seats {
                Some(k) if serving.len() >= k => {
                    if waiting.len() < server.queue {
                        waiting.push_back((sent, id));
                    } else {
                        to_client.push((t + leg(&mut rng), sent, id, Answer::Throttled));
                    }
                }
                _ => serving.push((1.0, sent, id)),
            }
        }
        for (_, sent, id) in take(&mut serving, |e| e.0 <= EPS) {
            to_client.push((t + leg(&mut rng), sent, id, Answer::Served));
            if let Some((sent, id)) = waiting.pop_front() {
                serving.push((1.0, sent, id));
            }
        }
        for (_, sent, id, answer) in take(&mut to_client, |e| e.0 <= t + EPS) {
            c.record(Sample {
                sent: secs(sent),
                answered: secs(t),
                answer,
                in_flight,
            });
            in_flight -= 1;
            if answer == Answer::Throttled {
                run.throttled += 1;
                retry.push((t + RETRY_AFTER, id));
            } else {
                done += 1;
            }
            if done > n / 10 {
                run.lowest_limit_after_start = run.lowest_limit_after_start.min(c.limit());
            }
        }
    }
    run.seconds = t;
    run.most_attempts = attempts.into_iter().max().unwrap_or(0);
    run
}

fn take<T>(v: &mut Vec<T>, due: impl Fn(&T) -> bool) -> Vec<T> {
    let (now, later) = std::mem::take(v).into_iter().partition(|e| due(e));
    *v = later;
    now
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The fastest fixed setting among 1, 2, 4 … 256, and its time.
fn best_fixed(server: Server, n: usize) -> (usize, f64) {
    (0..=8)
        .map(|p| 1usize << p)
        .map(|k| (k, simulate(server, n, Controller::fixed(k)).seconds))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
}

#[test]
fn within_a_tenth_of_the_best_fixed_setting_on_loopback_and_at_10ms() {
    for (name, server) in [("loopback", LOOPBACK), ("10 ms", TEN_MS)] {
        let (k, best) = best_fixed(server, 2000);
        let auto = simulate(server, 2000, Controller::adaptive(CAP));
        let default_today = simulate(server, 2000, Controller::fixed(16)).seconds;
        eprintln!(
            "{name}: auto {:.3}s, best fixed ({k}) {best:.3}s, fixed 16 {default_today:.3}s: {:?}",
            auto.seconds, auto.trace
        );
        assert!(
            auto.seconds <= best * 1.1,
            "{name}: auto {:.3}s, best fixed ({k}) {best:.3}s, fixed 16 {default_today:.3}s: {:?}",
            auto.seconds,
            auto.trace
        );
        assert_eq!(auto.throttled, 0);
    }
}

#[test]
fn grows_at_least_as_far_with_latency_as_on_loopback() {
    let near = simulate(LOOPBACK, 2000, Controller::adaptive(CAP));
    let far = simulate(TEN_MS, 2000, Controller::adaptive(CAP));
    assert!(
        far.highest_limit >= near.highest_limit && far.highest_limit > START,
        "10 ms: {far:?}, loopback: {near:?}"
    );
}

#[test]
fn throttled_by_one_seat_it_settles_low_and_keeps_pace() {
    for (seats, queue) in [(1, 1), (3, 1)] {
        let throttling = Server {
            seats: Some(seats),
            queue,
            ..LOOPBACK
        };
        let auto = simulate(throttling, 2000, Controller::adaptive(CAP));
        let unthrottled_one = simulate(LOOPBACK, 2000, Controller::fixed(1)).seconds;
        assert!(
            auto.seconds <= unthrottled_one * 1.5,
            "{seats} seats: auto {:.2}s ({auto:?}), unthrottled --concurrency 1 {unthrottled_one:.2}s",
            auto.seconds
        );
        assert!(auto.throttled > 0, "the server did throttle: {auto:?}");
        assert!(
            auto.throttled < 2000 / 20,
            "few requests are throttled: {auto:?}"
        );
        assert!(
            auto.most_attempts <= 4,
            "no delete needs many attempts: {auto:?}"
        );
        assert!(auto.lowest_limit_after_start <= seats + queue, "{auto:?}");
        // Today's fixed 16 against the same server: most requests are
        // answered 429 and some need more attempts than a retry allows.
        let fixed = simulate(throttling, 2000, Controller::fixed(16));
        assert!(fixed.most_attempts > 4, "{fixed:?}");
    }
}

#[test]
fn never_above_the_cap_nor_below_one() {
    let far = Server {
        max_rate: 100_000.0,
        half: 1000.0,
        ..TEN_MS
    };
    let run = simulate(far, 5000, Controller::adaptive(32));
    assert_eq!(run.highest_limit, 32, "{run:?}");
    let run = simulate(far, 5000, Controller::adaptive(CAP));
    assert_eq!(run.highest_limit, CAP, "{run:?}");

    let mut c = Controller::adaptive(CAP);
    for i in 0..100 {
        c.record(Sample {
            sent: secs(i as f64),
            answered: secs(i as f64 + 0.5),
            answer: Answer::Throttled,
            in_flight: 8,
        });
    }
    assert_eq!(c.limit(), 1);
    assert_eq!(Controller::adaptive(10_000).cap(), CAP);
}

#[test]
fn a_fixed_number_never_changes() {
    let mut c = Controller::fixed(16);
    for i in 0..1000 {
        c.record(Sample {
            sent: secs(i as f64 * 0.01),
            answered: secs(i as f64 * 0.01 + 0.001),
            answer: if i % 3 == 0 {
                Answer::Throttled
            } else {
                Answer::Served
            },
            in_flight: 16,
        });
    }
    assert_eq!((c.limit(), c.cap()), (16, 16));
    let run = simulate(TEN_MS, 500, Controller::fixed(3));
    assert_eq!(run.highest_limit, 3);
}

/// `count` answers at `limit` in flight, each taking `latency`, starting at `t`.
fn steady(c: &mut Controller, t: &mut f64, latency: f64, count: usize) {
    let step = latency / c.limit() as f64;
    for _ in 0..count {
        c.record(Sample {
            sent: secs(*t),
            answered: secs(*t + latency),
            answer: Answer::Served,
            in_flight: c.limit(),
        });
        *t += step;
    }
}

#[test]
fn backs_off_when_latency_doubles_at_the_same_limit() {
    // Equal throughput at every limit: slow start stops at once.
    let mut c = Controller::adaptive(CAP);
    let mut t = 0.0;
    let limit = c.limit();
    // Throughput flat as the limit doubles: latency doubles with it.
    steady(&mut c, &mut t, 0.010, 3 * limit);
    let held = c.limit();
    steady(&mut c, &mut t, 0.010 * held as f64 / limit as f64, 3 * held);
    let held = c.limit();
    // Now the server gets four times slower at the same limit.
    t += 1.0;
    steady(&mut c, &mut t, 0.200, 3 * held);
    assert!(c.limit() < held, "{} < {held}", c.limit());
}

#[test]
fn halves_once_per_round_of_requests() {
    let mut c = Controller::adaptive(CAP);
    assert_eq!(c.limit(), START);
    let throttled = |sent: f64| Sample {
        sent: secs(sent),
        answered: secs(1.0),
        answer: Answer::Throttled,
        in_flight: START,
    };
    // Eight requests sent together, all answered 429: one halving.
    for _ in 0..START {
        c.record(throttled(0.5));
    }
    assert_eq!(c.limit(), START / 2);
    // A request sent after the decrease and throttled again: once more.
    c.record(throttled(1.5));
    assert_eq!(c.limit(), START / 4);
    // 5xx counts as overload likewise.
    c.record(Sample {
        sent: secs(1.6),
        answered: secs(2.0),
        answer: Answer::Overloaded,
        in_flight: 1,
    });
    assert_eq!(c.limit(), START / 8);
}

#[test]
fn answers_are_classified() {
    let api = |code: u16| -> Result<(), kube::Error> {
        Err(kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "y").with_code(code),
        )))
    };
    assert_eq!(Answer::of(&Ok::<(), kube::Error>(())), Answer::Served);
    assert_eq!(Answer::of(&api(404)), Answer::Served);
    assert_eq!(Answer::of(&api(409)), Answer::Served);
    assert_eq!(Answer::of(&api(429)), Answer::Throttled);
    assert_eq!(Answer::of(&api(503)), Answer::Overloaded);
}

#[tokio::test]
async fn the_semaphore_follows_the_limit() {
    let l = Limiter::new(Controller::adaptive(CAP));
    let mut out = vec![];
    for _ in 0..START {
        out.push(l.acquire().await);
    }
    assert_eq!(l.semaphore.available_permits(), 0);
    // One 429: the limit halves; permits coming back are retired until
    // no more than the new limit are out.
    out.pop().unwrap().done(Answer::Throttled);
    assert_eq!(l.limit(), START / 2);
    while out.len() > START / 2 {
        out.pop();
        assert_eq!(l.semaphore.available_permits(), 0);
    }
    out.pop();
    assert_eq!(l.semaphore.available_permits(), 1);
    drop(out);
    assert_eq!(l.semaphore.available_permits(), START / 2);

    let fixed = Limiter::new(Controller::fixed(3));
    assert_eq!(fixed.cap(), 3);
    let _a = (
        fixed.acquire().await,
        fixed.acquire().await,
        fixed.acquire().await,
    );
    assert_eq!(fixed.semaphore.available_permits(), 0);
}
