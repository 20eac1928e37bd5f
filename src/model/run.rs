//! Test runs: the guard Lease of a run as a guard writes it, the guard's
//! identity, and a run found dead (`--stale-runs`).

use chrono::{DateTime, Utc};

use super::{Candidate, RUN_ID};

/// The guard Lease of a test run (`--guard`, `--stale-runs`), as a guard
/// writes it: named `crucible-clean-run-<run>`, labelled with the run, held
/// by a guard's identity, with a renewal time and a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunLease {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) run: String,
    pub(crate) uid: String,
    pub(crate) resource_version: String,
    /// The guard's identity (`GuardId`).
    pub(crate) holder: String,
    /// When the API server stored the Lease first: only the run's objects
    /// created since are the run's (see `StaleRun`).
    pub(crate) created_at: DateTime<Utc>,
    /// The last renewal plus the lease duration.
    pub(crate) expires_at: DateTime<Utc>,
}

/// Who holds a guard Lease: the host, process id and start time of the
/// guard, `<host>/<pid>/<RFC 3339 start>`, for the person reading it and to
/// tell a guard's Lease from one written by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuardId {
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) started: DateTime<Utc>,
}

impl GuardId {
    /// A holder identity as a guard writes it, or None.
    pub(crate) fn parse(holder: &str) -> Option<GuardId> {
        let mut parts = holder.splitn(3, '/');
        let (host, pid, started) = (parts.next()?, parts.next()?, parts.next()?);
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        Some(GuardId {
            host: ok.then(|| host.to_string())?,
            pid: pid.parse().ok()?,
            started: DateTime::parse_from_rfc3339(started)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

impl std::fmt::Display for GuardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let started = self
            .started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        write!(f, "{}/{}/{started}", self.host, self.pid)
    }
}

/// The name of the guard Lease of run `run` (a valid DNS subdomain for the
/// run ids `--guard` accepts).
pub(crate) fn lease_name(run: &str) -> String {
    format!("crucible-clean-run-{run}")
}

/// A run whose guard died (`--stale-runs`): its objects in the namespace of
/// its Lease, created since the Lease was (a Lease can declare dead only
/// what came after it: whoever may create a Lease cannot reach back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaleRun {
    pub(crate) run: String,
    pub(crate) namespace: String,
    pub(crate) since: DateTime<Utc>,
}

impl StaleRun {
    /// Whether `c` is an object of this run.
    pub(crate) fn covers(&self, c: &Candidate) -> bool {
        c.labels.get(RUN_ID) == Some(self.run.as_str())
            && *c.namespace == *self.namespace
            && c.created_at >= self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guards_identity_reads_back_and_others_do_not() {
        let id = GuardId {
            host: "ci-7.example".into(),
            pid: 4242,
            started: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        };
        let text = id.to_string();
        assert_eq!(text, "ci-7.example/4242/2027-01-15T08:00:00Z");
        assert_eq!(GuardId::parse(&text), Some(id));
        for other in [
            "",
            "host/1",
            "host/one/2026-01-01T00:00:00Z",
            "/1/2026-01-01T00:00:00Z",
            "ho st/1/2026-01-01T00:00:00Z",
            "host/1/yesterday",
        ] {
            assert_eq!(GuardId::parse(other), None, "{other}");
        }
    }
}
