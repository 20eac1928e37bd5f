//! The label rule: objects of the given test runs or evaluations.

use crate::model::Candidate;

/// Every id list that is given must contain the object's id.
pub(crate) fn matches(c: &Candidate, test_ids: &[String], eval_ids: &[String]) -> bool {
    let hit = |ids: &[String], v: &Option<String>| {
        ids.is_empty() || v.as_ref().is_some_and(|v| ids.contains(v))
    };
    hit(test_ids, &c.test_id) && hit(eval_ids, &c.eval_id)
}
