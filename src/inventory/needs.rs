//! What a run must read, derived from its request.

use crate::model::Phase;
use crate::request::Request;

/// What to read: derived from the request by `Needs::of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Needs {
    pub(crate) label_selector: String,
    pub(crate) pod_phases: Vec<Phase>,
    /// Also the pods in no finished phase, in one LIST of full objects (the
    /// phase then comes from each pod's status): they are reported skipped,
    /// as part of what is left of a test run.
    pub(crate) unfinished_pods: bool,
    /// Full pod objects (for finish times) instead of metadata only.
    pub(crate) pod_status: bool,
    pub(crate) jobs: bool,
    /// Jobs may be deleted as units (their pods go with them): a keep
    /// marker on any of their pods must be seen.
    pub(crate) job_units: bool,
    pub(crate) quotas: bool,
    /// `--capacity`: where no ResourceQuota limits `count/pods`, count the
    /// namespace's pods and add this stand-in budget to the quotas.
    pub(crate) capacity: Option<u64>,
}

impl Needs {
    /// `label_selector` and `quotas` come from the strategies the request
    /// runs (`select::needs`).
    pub(crate) fn of(req: &Request, label_selector: String, quotas: bool) -> Self {
        use crate::cli::{AgeFrom, Level, Output};
        let mut pod_phases = vec![Phase::Succeeded, Phase::Failed];
        if req.include_running {
            pod_phases.extend([Phase::Pending, Phase::Running, Phase::Unknown]);
        }
        let rules: Vec<&crate::request::policy::Params> = match &req.policy {
            Some(p) => p.rules.iter().map(|r| &r.params).collect(),
            None => vec![&req.params],
        };
        // Retention is measured from the finish time; a running pod's quota
        // charges come from its spec.
        let finish_times = req.criteria.age_from == Some(AgeFrom::Finished)
            || matches!(req.output, Output::Wide | Output::Json | Output::Yaml)
            || rules.iter().any(|p| p.has_retention())
            || (quotas && req.include_running)
            || req.events; // an Event says when the object finished
        Needs {
            label_selector,
            unfinished_pods: !req.include_running && matches!(req.level, Level::Pods | Level::All),
            pod_phases: if req.level == Level::None {
                vec![]
            } else {
                pod_phases
            },
            pod_status: finish_times,
            jobs: req.level != Level::None,
            job_units: matches!(req.level, Level::Jobs | Level::All),
            quotas,
            capacity: req.capacity.filter(|_| quotas),
        }
    }
}
