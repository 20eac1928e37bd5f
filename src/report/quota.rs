//! The quota part of the report (pressure, watermark, hybrid): every quota
//! resource with what the plan frees of it (or, once deleted, what it
//! freed), one plain sentence saying so, and what the strategy decided.
//! Rendered as a block above the table: one line per decision before the
//! quota table, the sentence after it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Candidate, Kind, Quota};
use crate::quota::{amount, figure, percent, ratio, Counts, Decision, Index};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QuotaSection {
    /// "deleting 300 finished pods frees 300 of count/pods and 0 of
    /// requests.cpu"; once deleted, "deleted 300 finished pods: freed …".
    pub(crate) summary: String,
    pub(crate) resources: Vec<Line>,
    pub(crate) decisions: Vec<Decision>,
}

/// The section for a plan that deletes `units` (`done`: a run that deleted
/// them, so the sentence says what was freed).
pub(crate) fn section<'a>(
    quotas: &[Quota],
    index: &Index<'a>,
    units: &[&'a Candidate],
    decisions: Vec<Decision>,
    done: bool,
) -> QuotaSection {
    let resources = lines(quotas, index, units);
    QuotaSection {
        summary: sentence(&resources, index, units, done),
        resources,
        decisions,
    }
}

/// One resource of one ResourceQuota, before and after the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Line {
    pub(crate) namespace: String,
    pub(crate) quota: String,
    pub(crate) resource: String,
    pub(crate) counts: Counts,
    #[serde(serialize_with = "amount")]
    pub(crate) hard: f64,
    #[serde(serialize_with = "amount")]
    pub(crate) used: f64,
    pub(crate) ratio: Option<f64>,
    /// What the plan frees of it.
    #[serde(serialize_with = "amount")]
    pub(crate) frees: f64,
    #[serde(serialize_with = "amount")]
    pub(crate) projected: f64,
    pub(crate) projected_ratio: Option<f64>,
}

/// Every resource of every quota in `quotas`, with what deleting `units` frees.
pub(crate) fn lines<'a>(quotas: &[Quota], index: &Index<'a>, units: &[&'a Candidate]) -> Vec<Line> {
    let mut by_ns: BTreeMap<&str, Vec<&'a Candidate>> = BTreeMap::new();
    for u in units {
        by_ns.entry(&*u.namespace).or_default().push(u);
    }
    let mut out = Vec::new();
    for q in quotas {
        let relief = index.relief_of(by_ns.get(q.namespace.as_str()).cloned().unwrap_or_default());
        for (resource, &hard) in &q.hard {
            let used = q.used.get(resource).copied().unwrap_or(0.0);
            let frees = relief.amount(resource).min(used.max(0.0));
            let projected = used - frees;
            out.push(Line {
                namespace: q.namespace.clone(),
                quota: q.name.clone(),
                resource: resource.clone(),
                counts: Counts::of(resource),
                hard,
                used,
                ratio: ratio(used, hard),
                frees,
                projected,
                projected_ratio: ratio(projected, hard),
            });
        }
    }
    out
}

/// "deleting 300 finished pods frees 300 of count/pods and 0 of
/// requests.cpu"; `done`: "deleted 300 finished pods: freed …".
pub(crate) fn sentence<'a>(
    lines: &[Line],
    index: &Index<'a>,
    units: &[&'a Candidate],
    done: bool,
) -> String {
    let mut what: BTreeMap<(Kind, bool), usize> = BTreeMap::new();
    for u in units {
        *what.entry((u.kind, u.phase.is_finished())).or_default() += 1;
    }
    let mut parts: Vec<String> = what
        .iter()
        .rev()
        .map(|((kind, finished), n)| {
            let noun = kind.plural();
            let noun = if *n == 1 {
                &noun[..noun.len() - 1]
            } else {
                noun
            };
            format!(
                "{n} {} {noun}",
                if *finished { "finished" } else { "unfinished" }
            )
        })
        .collect();
    let job_pods = index
        .relief_of(units.iter().copied().filter(|u| u.kind == Kind::Job))
        .stored_pods;
    if job_pods > 0 {
        if let Some(p) = parts.first_mut() {
            p.push_str(&format!(" (with their {job_pods} pods)"));
        }
    }
    if parts.is_empty() {
        return if done {
            "nothing was deleted, so no quota was freed".to_string()
        } else {
            "nothing is deleted, so no quota is freed".to_string()
        };
    }
    let subject = if done {
        format!("deleted {}", join(&parts))
    } else {
        format!("deleting {}", join(&parts))
    };
    let mut freed: BTreeMap<&str, f64> = BTreeMap::new();
    for l in lines {
        let e = freed.entry(l.resource.as_str()).or_insert(l.frees);
        *e = e.max(l.frees);
    }
    if freed.is_empty() {
        return format!("{subject}: no ResourceQuota to free");
    }
    let freed: Vec<String> = freed
        .iter()
        .map(|(r, n)| format!("{} of {r}", figure(*n)))
        .collect();
    if done {
        format!("{subject}: freed {}", join(&freed))
    } else {
        format!("{subject} frees {}", join(&freed))
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn join(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The block above the table: what each strategy found (one line each),
/// the quota table, and what the plan frees (or freed): each thing said once.
pub(crate) fn block(q: &QuotaSection, all_namespaces: bool) -> String {
    let mut out = String::new();
    for d in &q.decisions {
        if all_namespaces && !d.message.contains(&d.namespace) {
            out.push_str(&format!("{}: ", d.namespace));
        }
        if let Some(rule) = &d.rule {
            out.push_str(&format!("rule {rule}: "));
        }
        out.push_str(d.headline());
        out.push('\n');
    }
    if !q.resources.is_empty() {
        let mut header = vec![];
        if all_namespaces {
            header.push("NAMESPACE");
        }
        header.extend([
            "QUOTA",
            "RESOURCE",
            "HARD",
            "USED",
            "RATIO",
            "FREES",
            "AFTER",
            "AFTER-RATIO",
            "COUNTS",
        ]);
        let mut cells = vec![];
        for l in &q.resources {
            let mut row = vec![];
            if all_namespaces {
                row.push(l.namespace.clone());
            }
            row.extend([
                l.quota.clone(),
                l.resource.clone(),
                figure(l.hard),
                figure(l.used),
                percent(l.ratio),
                figure(l.frees),
                figure(l.projected),
                percent(l.projected_ratio),
                l.counts.describe().to_string(),
            ]);
            cells.push(row);
        }
        out.push_str(&super::kubectl_table(header, cells));
    }
    out.push_str(&q.summary);
    let short: Vec<String> = q
        .decisions
        .iter()
        .flat_map(|d| &d.targets)
        .filter(|t| t.shortfall > 0.0)
        .map(|t| format!("{} of {}", figure(t.shortfall), t.resource))
        .collect();
    if !short.is_empty() {
        out.push_str(&format!(
            "; too few objects may go: short by {}",
            join(&short)
        ));
    }
    out.push_str("\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cascade;
    use crate::model::fixtures::*;
    use crate::model::{Inventory, Phase};

    #[test]
    fn lines_and_the_plain_sentence() {
        let pods: Vec<Candidate> = (0..3)
            .map(|i| pod(&format!("p{i}"), Phase::Succeeded, i))
            .collect();
        let inv = Inventory {
            pods: shared(pods),
            quotas: vec![
                quota("objects", &[("count/pods", 10.0, 9.0)]),
                quota("compute", &[("requests.cpu", 4.0, 3.5), ("pods", 5.0, 2.0)]),
            ],
            ..Default::default()
        };
        let ix = Index::new(&inv, Cascade::Background);
        let units: Vec<&Candidate> = inv.pods.iter().map(|c| &**c).collect();
        let l = lines(&inv.quotas, &ix, &units);
        let got: Vec<(&str, f64, f64, f64)> = l
            .iter()
            .map(|l| (l.resource.as_str(), l.used, l.frees, l.projected))
            .collect();
        assert_eq!(
            got,
            [
                ("count/pods", 9.0, 3.0, 6.0),
                ("pods", 2.0, 0.0, 2.0),
                ("requests.cpu", 3.5, 0.0, 3.5)
            ]
        );
        assert_eq!(l[0].projected_ratio, Some(0.6));
        assert_eq!(
            sentence(&l, &ix, &units, false),
            "deleting 3 finished pods frees 3 of count/pods, 0 of pods and 0 of requests.cpu"
        );
        assert_eq!(
            sentence(&l, &ix, &units, true),
            "deleted 3 finished pods: freed 3 of count/pods, 0 of pods and 0 of requests.cpu"
        );
        assert_eq!(
            sentence(&[], &ix, &units[..1], false),
            "deleting 1 finished pod: no ResourceQuota to free"
        );
        assert_eq!(
            sentence(&l, &ix, &[], true),
            "nothing was deleted, so no quota was freed"
        );
    }

    #[test]
    fn the_block_says_what_the_plan_frees() {
        let inv = Inventory {
            pods: (0..3)
                .map(|i| pod(&format!("p{i}"), Phase::Failed, i))
                .map(std::sync::Arc::new)
                .collect(),
            quotas: vec![
                quota("objects", &[("count/pods", 10.0, 9.0)]),
                quota("compute", &[("requests.cpu", 4.0, 3.5)]),
            ],
            ..Default::default()
        };
        let ix = Index::new(&inv, Cascade::Background);
        let units: Vec<&Candidate> = inv.pods.iter().map(|c| &**c).collect();
        let d = Decision {
            namespace: "crucible".into(),
            rule: None,
            strategy: "pressure",
            triggered: true,
            targets: vec![crate::quota::Target {
                quota: "objects".into(),
                resource: "count/pods".into(),
                hard: 10.0,
                used: 9.0,
                limit: 7.0,
                needed: 2.0,
                planned: 3.0,
                shortfall: 0.0,
            }],
            message: "pressure: at or above the threshold (80%), deleting 3 finished objects: … down to 6 (60%)".into(),
            headline: "pressure: count/pods of quota objects is 9/10 (90%): at or above the threshold (80%)".into(),
            inactive: false,
        };
        // Each thing said once: the situation before the table, what the
        // plan frees after it (no "deleting … down to" again).
        let s = section(&inv.quotas, &ix, &units, vec![d.clone()], false);
        assert_eq!(
            block(&s, false),
            "pressure: count/pods of quota objects is 9/10 (90%): at or above the threshold (80%)\n\
             QUOTA     RESOURCE       HARD   USED   RATIO   FREES   AFTER   AFTER-RATIO   COUNTS\n\
             objects   count/pods     10     9      90%     3       6       60%           every stored pod\n\
             compute   requests.cpu   4      3.5    87%     0       3.5     87%           non-terminal pods only\n\
             deleting 3 finished pods frees 3 of count/pods and 0 of requests.cpu\n\n"
        );
        // After the deletes, in the past tense.
        let done = section(&inv.quotas, &ix, &units, vec![d], true);
        assert!(
            block(&done, false).ends_with(
                "deleted 3 finished pods: freed 3 of count/pods and 0 of requests.cpu\n\n"
            ),
            "{}",
            block(&done, false)
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["summary"],
            "deleting 3 finished pods frees 3 of count/pods and 0 of requests.cpu"
        );
        assert_eq!(v["resources"][0]["resource"], "count/pods");
        assert_eq!(v["resources"][0]["counts"], "storedPods");
        assert_eq!(v["resources"][1]["counts"], "nonTerminalPods");
        assert_eq!(v["decisions"][0]["strategy"], "pressure");
        assert!(v["decisions"][0].get("headline").is_none());
        // Counts are integers; a fraction of a cpu keeps its decimals.
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(r#""hard":10,"used":9,"#), "{text}");
        assert!(text.contains(r#""frees":3,"projected":6,"#), "{text}");
        assert!(text.contains(r#""hard":4,"used":3.5,"#), "{text}");
        assert!(
            text.contains(r#""hard":10,"used":9,"limit":7,"needed":2,"planned":3,"shortfall":0"#),
            "{text}"
        );
    }
}
