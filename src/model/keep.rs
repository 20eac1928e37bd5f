//! The keep rule, in one place: whether an object's labels and annotations
//! protect it from every cleanup. Every path asks it here — the listing, the
//! copy read again before a delete (archive, hook, a 409), the pods a job's
//! delete would take, plan files, the guard's reap, `--stale-runs` — so a new
//! way to keep an object is one change to this file (and to
//! [`ANNOTATIONS`], which the listing decodes).

use std::collections::BTreeMap;

/// The label and annotation that protect an object from any cleanup.
pub(crate) const KEEP_KEY: &str = "crucible-clean/keep";
/// The annotation that keeps an object until an RFC 3339 time.
pub(crate) const KEEP_UNTIL_KEY: &str = "crucible-clean/keep-until";
/// Why an object is kept until then (the pytest plugin: the test's node id).
pub(crate) const KEEP_REASON_KEY: &str = "crucible-clean/keep-reason";

/// The annotations the rule reads: a listing decodes only these of an
/// object's annotations (others can be large).
pub(crate) const ANNOTATIONS: &[&str] = &[KEEP_KEY];

/// Whether the object with these labels and annotations is kept.
pub(crate) fn kept(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) -> bool {
    let yes = |m: Option<&BTreeMap<String, String>>| {
        m.and_then(|m| m.get(KEEP_KEY))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    yes(labels) || yes(annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_marker_keeps_as_label_or_annotation_and_only_when_true() {
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
}
