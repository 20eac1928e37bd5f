//! The keep rule, in one place: whether an object's labels and annotations
//! protect it from every cleanup. Every path asks it here — the listing, the
//! copy read again before a delete (archive, hook, a 409), the pods a job's
//! delete would take, plan files, the guard's reap, `--stale-runs` — so a new
//! way to keep an object is one change to this file (and to
//! [`ANNOTATIONS`], which the listing decodes).
//!
//! Two ways: the marker `crucible-clean/keep=true` (label or annotation),
//! for good; and the annotation `crucible-clean/keep-until: <RFC 3339 time>`
//! (the pytest plugin's keep-failed), until that time. A `keep-until` that
//! does not parse keeps the object too: a mistake in a keep is never
//! permission to delete. An object's [`Keep`] is read once, from its
//! metadata; whether it still holds is asked with the time of the question
//! ([`Keep::holds`]), so a record kept for a while (a watch) lets the object
//! go once the time has passed.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

/// The label and annotation that protect an object from any cleanup.
pub(crate) const KEEP_KEY: &str = "crucible-clean/keep";
/// The annotation that keeps an object until an RFC 3339 time.
pub(crate) const KEEP_UNTIL_KEY: &str = "crucible-clean/keep-until";
/// Why an object is kept until then (the pytest plugin: the test's node id).
pub(crate) const KEEP_REASON_KEY: &str = "crucible-clean/keep-reason";

/// The annotations the rule reads: a listing decodes only these of an
/// object's annotations (others can be large).
pub(crate) const ANNOTATIONS: &[&str] = &[KEEP_KEY, KEEP_UNTIL_KEY];

/// What keeps an object, in four bytes (every record carries one): nothing,
/// the marker, a `keep-until` that does not parse, or a `keep-until` time
/// (whole seconds since 1970, rounded up; a time after 2106 counts as 2106).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Keep(u32);

impl Keep {
    pub(crate) const NONE: Keep = Keep(0);
    /// `crucible-clean/keep=true`.
    pub(crate) const MARKED: Keep = Keep(1);
    /// A `crucible-clean/keep-until` that is no RFC 3339 time.
    pub(crate) const MALFORMED: Keep = Keep(2);

    /// Kept until `t`; a time long past is no keep at all.
    pub(crate) fn until(t: DateTime<Utc>) -> Keep {
        let secs = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
        if secs <= 2 {
            Keep::NONE
        } else {
            Keep(u32::try_from(secs).unwrap_or(u32::MAX))
        }
    }

    /// Whether the object is kept at `now`.
    pub(crate) fn holds(self, now: DateTime<Utc>) -> bool {
        match self.until_time() {
            Some(t) => now < t,
            None => self != Keep::NONE,
        }
    }

    /// The `keep-until` time, when that is what keeps the object.
    pub(crate) fn until_time(self) -> Option<DateTime<Utc>> {
        (self.0 > 2)
            .then(|| DateTime::from_timestamp(i64::from(self.0), 0))
            .flatten()
    }

    /// Of two keeps, the one that lasts longer (a job with several kept
    /// pods is kept as long as the last of them).
    pub(crate) fn longer(self, other: Keep) -> Keep {
        let rank = |k: Keep| match k.0 {
            0 => 0,
            1 | 2 => u64::MAX,
            t => u64::from(t),
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// What keeps it, as a report's reason says it.
    pub(crate) fn describe(self) -> String {
        match self.0 {
            0 => "not kept".into(),
            1 => format!("{KEEP_KEY}=true"),
            2 => format!("{KEEP_UNTIL_KEY} is not an RFC 3339 time (kept)"),
            _ => format!(
                "{KEEP_UNTIL_KEY}={}",
                self.until_time()
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default()
            ),
        }
    }
}

impl std::fmt::Debug for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The keep of the object with these labels and annotations. The marker
/// wins over a `keep-until`; a `keep-until` label cannot exist (a label
/// value holds no `:`), so only the annotation counts.
pub(crate) fn keep(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> Keep {
    let marked = |m: Option<&BTreeMap<String, String>>| {
        m.and_then(|m| m.get(KEEP_KEY))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    if marked(labels) || marked(annotations) {
        return Keep::MARKED;
    }
    match annotations.and_then(|m| m.get(KEEP_UNTIL_KEY)) {
        None => Keep::NONE,
        Some(v) => match DateTime::parse_from_rfc3339(v.trim()) {
            Ok(t) => Keep::until(t.with_timezone(&Utc)),
            Err(_) => Keep::MALFORMED,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_marker_keeps_as_label_or_annotation_and_only_when_true() {
        let now = at("2030-01-01T00:00:00Z");
        let kept = |l: Option<&BTreeMap<String, String>>, a: Option<&BTreeMap<String, String>>| {
            keep(l, a).holds(now)
        };
        let yes = map(&[(KEEP_KEY, "true")]);
        let upper = map(&[(KEEP_KEY, "TRUE")]);
        let no = map(&[(KEEP_KEY, "false")]);
        let other = map(&[("crucible-clean/keeps", "true")]);
        assert!(kept(Some(&yes), None));
        assert!(kept(None, Some(&yes)));
        assert!(kept(Some(&no), Some(&upper)));
        assert!(!kept(Some(&no), Some(&no)));
        assert!(!kept(Some(&other), Some(&other)));
        assert!(!kept(None, None));
    }

    #[test]
    fn keep_until_keeps_until_its_time_and_a_bad_time_keeps_for_good() {
        let now = at("2030-01-01T12:00:00Z");
        let until = |v: &str| keep(None, Some(&map(&[(KEEP_UNTIL_KEY, v)])));
        // In the future, in any offset, with fractions: kept.
        for v in [
            "2030-01-01T12:00:01Z",
            "2030-01-01T13:30:00+01:00",
            "2030-01-01T12:00:00.001Z",
            "2999-01-01T00:00:00Z",
        ] {
            assert!(until(v).holds(now), "{v}");
        }
        // Now or past: an ordinary object.
        for v in [
            "2030-01-01T12:00:00Z",
            "2030-01-01T12:59:59+01:00",
            "1970-01-01T00:00:00Z",
        ] {
            assert!(!until(v).holds(now), "{v}");
        }
        // Not a time: kept, whenever asked.
        for v in [
            "",
            "tomorrow",
            "2030-01-01",
            "2030-01-01 12:00:00",
            "1893456000",
            "2030-13-01T00:00:00Z",
        ] {
            assert_eq!(until(v), Keep::MALFORMED, "{v:?}");
            assert!(until(v).holds(at("2999-01-01T00:00:00Z")));
        }
        // As a label it is nothing (a label value cannot hold a time).
        assert_eq!(keep(Some(&map(&[(KEEP_UNTIL_KEY, "x")])), None), Keep::NONE);
        // The marker wins over a past keep-until.
        let both = map(&[(KEEP_KEY, "true"), (KEEP_UNTIL_KEY, "2000-01-01T00:00:00Z")]);
        assert_eq!(keep(None, Some(&both)), Keep::MARKED);
        assert!(!keep(
            None,
            Some(&map(&[
                (KEEP_KEY, "false"),
                (KEEP_UNTIL_KEY, "2000-01-01T00:00:00Z")
            ]))
        )
        .holds(now));
    }

    #[test]
    fn the_longer_keep_and_how_each_reads() {
        let t1 = Keep::until(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
        let t2 = Keep::until(Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(t1.longer(t2), t2);
        assert_eq!(t2.longer(t1), t2);
        assert_eq!(t2.longer(Keep::MARKED), Keep::MARKED);
        assert_eq!(Keep::NONE.longer(t1), t1);
        assert_eq!(Keep::MALFORMED.longer(t2), Keep::MALFORMED);
        assert_eq!(
            t1.describe(),
            "crucible-clean/keep-until=2030-01-01T00:00:00Z"
        );
        assert_eq!(Keep::MARKED.describe(), "crucible-clean/keep=true");
        assert!(Keep::MALFORMED.describe().contains("not an RFC 3339 time"));
        assert_eq!(std::mem::size_of::<Keep>(), 4);
    }
}
