//! Retention: what stays although a rule selected it. `--keep-last N` keeps
//! the N newest finished objects of each test run (grouped by test-id, per
//! namespace and kind), so the latest runs stay available for debugging;
//! `--keep-succeeded-for` and `--keep-failed-for` keep an object for a while
//! after it finished, multiplied by its priority (policy `priorities`).
//! The answer is a reason per held uid; the plan reports those as skipped.
//! Pure.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::human;
use crate::model::{Candidate, Kind, Phase};
use crate::request::policy::Params;

/// One object with the parameters of the rule that governs it.
#[derive(Debug, Clone)]
pub(crate) struct Governed<'a> {
    pub(crate) candidate: &'a Candidate,
    pub(crate) params: &'a Params,
    /// The policy rule, for the reason; None: the flags.
    pub(crate) rule: Option<&'a str>,
    /// The value of the priority label and its retention multiplier.
    pub(crate) priority: Option<(&'a str, f64)>,
}

impl Governed<'_> {
    pub(crate) fn factor(&self) -> f64 {
        self.priority.map_or(1.0, |(_, f)| f)
    }
}

/// `d × factor`, saturating.
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    if factor == 1.0 {
        return d;
    }
    Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
}

/// Exact and short: `90s`, `15m`, `1h30m`, `2d`.
pub(crate) fn exact(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let parts = [
        (s / 86_400, "d"),
        (s / 3_600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect()
}

/// Every held uid with its reason.
pub(crate) fn retained(units: &[Governed], now: DateTime<Utc>) -> BTreeMap<String, String> {
    let mut held = BTreeMap::new();
    keep_last(units, &mut held);
    for g in units {
        if held.contains_key(&*g.candidate.uid) {
            continue;
        }
        if let Some(why) = too_young(g, now) {
            held.insert(g.candidate.uid.to_string(), why);
        }
    }
    held
}

fn source(g: &Governed, flag: &str, key: &str, value: String) -> String {
    match g.rule {
        Some(rule) => format!("{key} {value} of rule {rule}"),
        None => format!("{flag} {value}"),
    }
}

fn keep_last(units: &[Governed], held: &mut BTreeMap<String, String>) {
    let mut runs: HashMap<(&str, &str, Kind), Vec<&Governed>> = HashMap::new();
    for g in units {
        let c = g.candidate;
        if let (Some(test), true, false) = (c.test_id(), c.phase.is_finished(), c.terminating) {
            runs.entry((&*c.namespace, test, c.kind))
                .or_default()
                .push(g);
        }
    }
    for ((_, test, kind), mut run) in runs {
        run.sort_by(|a, b| {
            (b.candidate.created_at, &b.candidate.name)
                .cmp(&(a.candidate.created_at, &a.candidate.name))
        });
        for (rank, g) in run.iter().enumerate() {
            let Some(n) = g.params.keep_last else {
                continue;
            };
            if rank < n {
                let what = if n == 1 {
                    format!(
                        "the newest finished {}",
                        &kind.plural()[..kind.plural().len() - 1]
                    )
                } else {
                    format!("one of the {n} newest finished {}", kind.plural())
                };
                let src = source(g, "--keep-last", "keepLast", n.to_string());
                held.insert(
                    g.candidate.uid.to_string(),
                    format!("{what} of test run {test} ({src})"),
                );
            }
        }
    }
}

fn too_young(g: &Governed, now: DateTime<Utc>) -> Option<String> {
    let c = g.candidate;
    let (keep, verb, flag, key) = match c.phase {
        Phase::Succeeded | Phase::Complete => (
            g.params.keep_succeeded_for?,
            "succeeded",
            "--keep-succeeded-for",
            "keepSucceededFor",
        ),
        Phase::Failed => (
            g.params.keep_failed_for?,
            "failed",
            "--keep-failed-for",
            "keepFailedFor",
        ),
        _ => return None,
    };
    let mut src = source(g, flag, key, exact(keep));
    if let Some((name, f)) = g.priority.filter(|(_, f)| *f != 1.0) {
        src.push_str(&format!(" × priority {name} ({f})"));
    }
    let keep = scale(keep, g.factor());
    let Some(finished) = c.finished_at else {
        return Some(format!("{verb}, finish time unknown: kept ({src})"));
    };
    let age = now - finished;
    let limit = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    (age < limit).then(|| {
        format!(
            "{verb} {} ago, kept for {} ({src})",
            human(age),
            exact(keep)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Strategy;
    use crate::model::fixtures::*;
    use crate::request::policy::Partial;

    fn params(f: impl FnOnce(&mut Partial)) -> Params {
        let mut p = Partial::default();
        f(&mut p);
        p.complete(Strategy::Age)
    }

    fn gov<'a>(c: &'a Candidate, p: &'a Params) -> Governed<'a> {
        Governed {
            candidate: c,
            params: p,
            rule: None,
            priority: None,
        }
    }

    #[test]
    fn exact_durations() {
        assert_eq!(exact(Duration::from_secs(90)), "1m30s");
        assert_eq!(exact(Duration::from_secs(5400)), "1h30m");
        assert_eq!(exact(Duration::from_secs(2 * 86400 + 3600)), "2d1h");
        assert_eq!(exact(Duration::from_millis(250)), "250ms");
        assert_eq!(
            scale(Duration::from_secs(3600), 0.5),
            Duration::from_secs(1800)
        );
        assert_eq!(scale(Duration::MAX, 4.0), Duration::MAX);
    }

    #[test]
    fn keep_last_holds_the_newest_of_each_test_run() {
        let cands: Vec<Candidate> = vec![
            with_test(pod("a1", Phase::Succeeded, 10), "a"),
            with_test(pod("a2", Phase::Failed, 20), "a"),
            with_test(pod("a3", Phase::Succeeded, 30), "a"),
            with_test(pod("a-running", Phase::Running, 40), "a"),
            with_test(pod("b1", Phase::Succeeded, 5), "b"),
            with_test(job("a-job", Phase::Complete, 50), "a"),
            pod("untagged", Phase::Succeeded, 60),
        ];
        let p = params(|p| p.keep_last = Some(2));
        let units: Vec<Governed> = cands.iter().map(|c| gov(c, &p)).collect();
        let held = retained(&units, t(1000));
        let mut names: Vec<&str> = held.keys().map(|u| u.trim_start_matches("uid-")).collect();
        names.sort();
        assert_eq!(names, ["a-job", "a2", "a3", "b1"]);
        assert_eq!(
            held["uid-a3"],
            "one of the 2 newest finished pods of test run a (--keep-last 2)"
        );
        assert_eq!(
            held["uid-a-job"],
            "one of the 2 newest finished jobs of test run a (--keep-last 2)"
        );
        let p1 = params(|p| p.keep_last = Some(1));
        let units: Vec<Governed> = cands
            .iter()
            .map(|c| Governed {
                rule: Some("ci"),
                ..gov(c, &p1)
            })
            .collect();
        assert_eq!(
            retained(&units, t(1000))["uid-a3"],
            "the newest finished pod of test run a (keepLast 1 of rule ci)"
        );
        let p0 = params(|p| p.keep_last = Some(0));
        assert!(retained(
            &cands.iter().map(|c| gov(c, &p0)).collect::<Vec<_>>(),
            t(1000)
        )
        .is_empty());
    }

    #[test]
    fn success_and_failure_have_their_own_retention_from_finish_time() {
        // Fixtures finish 10s after creation; now = 1000.
        let ok_old = pod("ok-old", Phase::Succeeded, 0); // finished 990s ago
        let ok_new = pod("ok-new", Phase::Succeeded, 800); // 190s ago
        let bad_old = pod("bad-old", Phase::Failed, 0);
        let bad_new = job("bad-new", Phase::Failed, 800);
        let mut unknown = pod("unknown", Phase::Failed, 0);
        unknown.finished_at = None;
        let p = params(|p| {
            p.keep_succeeded_for = Some(Duration::from_secs(300));
            p.keep_failed_for = Some(Duration::from_secs(1800));
        });
        let cands = [&ok_old, &ok_new, &bad_old, &bad_new, &unknown];
        let held = retained(
            &cands.iter().map(|c| gov(c, &p)).collect::<Vec<_>>(),
            t(1000),
        );
        assert_eq!(held.len(), 4, "{held:?}");
        assert!(!held.contains_key("uid-ok-old"));
        assert_eq!(
            held["uid-ok-new"],
            "succeeded 3m ago, kept for 5m (--keep-succeeded-for 5m)"
        );
        assert_eq!(
            held["uid-bad-old"],
            "failed 16m ago, kept for 30m (--keep-failed-for 30m)"
        );
        assert!(held.contains_key("uid-bad-new"));
        assert_eq!(
            held["uid-unknown"],
            "failed, finish time unknown: kept (--keep-failed-for 30m)"
        );
    }

    #[test]
    fn priority_multiplies_retention() {
        let c = pod("p", Phase::Succeeded, 0); // finished 990s ago
        let p = params(|p| p.keep_succeeded_for = Some(Duration::from_secs(600)));
        let g = |priority| Governed {
            candidate: &c,
            params: &p,
            rule: Some("ci"),
            priority,
        };
        assert!(retained(&[g(None)], t(1000)).is_empty());
        let held = retained(&[g(Some(("high", 4.0)))], t(1000));
        assert_eq!(
            held["uid-p"],
            "succeeded 16m ago, kept for 40m (keepSucceededFor 10m of rule ci × priority high (4))"
        );
        assert!(retained(&[g(Some(("low", 0.5)))], t(1000)).is_empty());
    }
}
