//! What the pipeline's unit tests share: a report of planned pods of which
//! some went.

use crate::execute::{Deletion, Outcome};
use crate::model::fixtures::t;
use crate::model::{Candidate, Inventory};
use crate::report::CleanupReport;
use crate::request::Mode;
use crate::select::{Criterion, Matched, Selected};

/// The report of `cands`, planned by age in namespace `crucible`, of which
/// `went` (by name) had these outcomes.
pub(crate) fn report(mode: Mode, cands: &[Candidate], went: &[(&str, Outcome)]) -> CleanupReport {
    let selected = cands
        .iter()
        .map(|c| Selected {
            candidate: c,
            matched_by: Matched::of(Criterion::Age),
        })
        .collect();
    let plan = crate::plan::plan(selected, &Inventory::default(), false);
    let results: Vec<Deletion> = went
        .iter()
        .map(|(n, outcome)| Deletion {
            uid: format!("uid-{n}"),
            outcome: *outcome,
            error: None,
            code: None,
        })
        .collect();
    crate::report::build(
        plan,
        &results,
        &crate::report::Context {
            namespace: Some("crucible"),
            context: "admin",
            cluster: crate::report::Cluster {
                server: "https://127.0.0.1:6443/".into(),
                kube_system_uid: None,
            },
            mode,
            strategy: "age",
            selector: "app=evaluation".into(),
            now: t(3600),
        },
    )
}
