use super::*;
use crate::model::fixtures::*;
use crate::model::Phase;

#[test]
fn what_each_resource_counts() {
    assert_eq!(Counts::of("count/pods"), Counts::StoredPods);
    assert_eq!(Counts::of("count/jobs.batch"), Counts::StoredJobs);
    for r in [
        "pods",
        "cpu",
        "memory",
        "requests.cpu",
        "limits.memory",
        "requests.nvidia.com/gpu",
    ] {
        assert_eq!(Counts::of(r), Counts::NonTerminalPods, "{r}");
    }
    assert_eq!(Counts::of("services"), Counts::Other);
    assert_eq!(charge_key("cpu"), "requests.cpu");
    assert_eq!(charge_key("limits.cpu"), "limits.cpu");
}

#[test]
fn finished_pods_free_count_pods_only_and_running_ones_free_compute() {
    let done = pod("done", Phase::Succeeded, 0);
    let mut running = pod("running", Phase::Running, 0);
    running.charges = [
        ("requests.cpu".to_string(), 500),
        ("limits.memory".to_string(), 1_024_000),
    ]
    .into();
    let inv = Inventory::default();
    let ix = Index::new(&inv, Cascade::Background);
    let r = ix.relief(&done);
    assert_eq!(
        (
            r.amount("count/pods"),
            r.amount("pods"),
            r.amount("requests.cpu"),
            r.amount("cpu")
        ),
        (1.0, 0.0, 0.0, 0.0)
    );
    let r = ix.relief_of([&done, &running]);
    assert_eq!(
        (
            r.amount("count/pods"),
            r.amount("pods"),
            r.amount("cpu"),
            r.amount("limits.memory")
        ),
        (2.0, 1.0, 0.5, 1024.0)
    );
    assert_eq!(r.amount("count/jobs.batch"), 0.0);
    assert_eq!(r.amount("services"), 0.0);
}

#[test]
fn a_job_frees_its_pods_unless_orphaned_and_each_pod_counts_once() {
    let j = job("j", Phase::Complete, 0);
    let p1 = owned_by(pod("p1", Phase::Succeeded, 1), &j);
    let p2 = owned_by(pod("p2", Phase::Failed, 2), &j);
    let inv = Inventory {
        pods: shared(vec![p1.clone(), p2]),
        jobs: shared(vec![j.clone()]),
        ..Default::default()
    };
    let r = Index::new(&inv, Cascade::Background).relief(&inv.jobs[0]);
    assert_eq!((r.stored_jobs, r.stored_pods, r.live_pods), (1, 2, 0));
    let r = Index::new(&inv, Cascade::Orphan).relief(&inv.jobs[0]);
    assert_eq!((r.stored_jobs, r.stored_pods), (1, 0));
    let ix = Index::new(&inv, Cascade::Foreground);
    assert_eq!(ix.relief_of([&*inv.jobs[0], &*inv.pods[0]]).stored_pods, 2);
}

#[test]
fn a_pod_is_charged_its_containers_the_largest_init_container_and_overhead() {
    let p: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
                ],
                "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                "overhead": {"cpu": "100m"},
            }
        }))
        .unwrap();
    let c = pod_charges(&p);
    assert_eq!(c.get("requests.cpu"), Some(&2100));
    assert_eq!(c.get("requests.memory"), Some(&(1024 * 1024 * 1024 * 1000)));
    assert_eq!(c.get("limits.cpu"), Some(&1100));
    assert!(pod_charges(&Pod::default()).is_empty());
}

#[test]
fn fractions_round_the_safe_way() {
    // 0.7 * 10 is 7.000000000000001 in floating point.
    assert!(reached(7.0, 10.0, 0.7));
    assert!(!reached(6.0, 10.0, 0.7));
    assert_eq!(limit_at_or_below(10.0, 0.7, "count/pods"), 7.0);
    assert_eq!(limit_at_or_below(15.0, 0.5, "count/pods"), 7.0);
    assert_eq!(limit_at_or_below(15.0, 0.5, "pods"), 7.0);
    assert_eq!(limit_at_or_below(3.0, 0.5, "requests.cpu"), 1.5);
    assert_eq!(limit_below(10.0, 0.8, "count/pods"), Some(7.0));
    assert_eq!(limit_below(10.0, 0.85, "count/jobs.batch"), Some(8.0));
    assert_eq!(limit_below(10.0, 0.7, "pods"), Some(6.0));
    assert_eq!(limit_below(4.0, 0.5, "requests.cpu"), None);
    assert!(below(6.0, 10.0, 0.7) && !below(7.0, 10.0, 0.7));
    assert_eq!(ratio(3.0, 0.0), None);
    assert_eq!(percent(Some(0.799)), "79%");
    assert_eq!(percent(Some(0.7)), "70%");
    assert_eq!(figure(2.0), "2");
    assert_eq!(figure(1.25), "1.25");
}

#[test]
fn what_a_run_can_relieve_depends_on_level_cascade_and_running() {
    use Level::*;
    assert!(relievable("count/pods", Pods, Cascade::Background, false));
    assert!(relievable("count/pods", Jobs, Cascade::Background, false));
    assert!(!relievable("count/pods", Jobs, Cascade::Orphan, false));
    assert!(!relievable(
        "count/jobs.batch",
        Pods,
        Cascade::Background,
        false
    ));
    assert!(relievable(
        "count/jobs.batch",
        All,
        Cascade::Background,
        false
    ));
    assert!(!relievable("pods", Pods, Cascade::Background, false));
    assert!(relievable("pods", Pods, Cascade::Background, true));
    assert!(!relievable("requests.cpu", All, Cascade::Background, false));
    assert!(!relievable("services", All, Cascade::Background, true));
    assert!(why_not_relievable("requests.cpu", Pods).contains("non-terminal pods only"));
}
