use super::*;
use crate::model::fixtures::*;
use crate::model::Phase;

fn put_pod(c: &mut Cache, p: Candidate) {
    let uid = p.uid.clone();
    c.apply(Resource::Pods, Step::Put(uid, Record::Pod(Arc::new(p))));
}

fn names(v: &[Arc<Candidate>]) -> Vec<String> {
    v.iter().map(|c| c.name.to_string()).collect()
}

fn mark(ns: &str, kept: Option<(&[&str], &str)>) -> Record {
    mark_with(ns, kept, Keep::MARKED)
}

fn mark_with(ns: &str, kept: Option<(&[&str], &str)>, keep: Keep) -> Record {
    Record::PodMark(PodMark {
        namespace: ns.into(),
        kept: kept.map(|(jobs, name)| {
            Box::new(KeptPod {
                name: name.into(),
                keep,
                jobs: jobs.iter().map(|j| Box::<str>::from(*j)).collect(),
            })
        }),
    })
}

#[test]
fn a_relist_keeps_what_it_saw_and_drops_the_rest() {
    let mut c = Cache::new(vec![Resource::Pods, Resource::Jobs]);
    assert!(!c.synced());
    c.apply(Resource::Pods, Step::Begin);
    put_pod(&mut c, pod("b", Phase::Succeeded, 0));
    put_pod(&mut c, pod("a", Phase::Failed, 0));
    c.apply(Resource::Pods, Step::Done);
    assert!(c.is_synced(Resource::Pods));
    assert!(!c.synced(), "the jobs are not listed yet");
    c.apply(Resource::Jobs, Step::Begin);
    c.apply(Resource::Jobs, Step::Done);
    assert!(c.synced());
    // Ordered as a list is: by namespace, then name.
    assert_eq!(names(&c.snapshot(t(0)).pods), ["a", "b"]);

    // Watch events: one deleted, one added.
    c.apply(Resource::Pods, Step::Remove("uid-a".into()));
    put_pod(&mut c, pod("c", Phase::Succeeded, 0));
    assert_eq!(names(&c.snapshot(t(0)).pods), ["b", "c"]);

    // The watch failed: out of sync until listed again; the relist no longer
    // has b (deleted while nobody watched), and c changed.
    c.lost(Resource::Pods);
    assert!(!c.synced());
    c.apply(Resource::Pods, Step::Begin);
    let mut kept = pod("c", Phase::Succeeded, 0);
    kept.keep = Keep::MARKED;
    put_pod(&mut c, kept);
    assert!(!c.synced(), "not before the list is complete");
    c.apply(Resource::Pods, Step::Done);
    assert!(c.synced());
    let snap = c.snapshot(t(5));
    assert_eq!(names(&snap.pods), ["c"]);
    assert_eq!(snap.pods[0].keep, Keep::MARKED);
    assert_eq!(snap.taken_at, t(5));
    assert_eq!(c.sizes(), [(Resource::Pods, 1), (Resource::Jobs, 0)]);
}

#[test]
fn records_of_one_namespace_share_its_name() {
    let mut c = Cache::new(vec![Resource::Pods]);
    put_pod(&mut c, pod("a", Phase::Succeeded, 0));
    put_pod(&mut c, pod("b", Phase::Succeeded, 0));
    let snap = c.snapshot(t(0));
    assert!(Arc::ptr_eq(
        &snap.pods[0].namespace,
        &snap.pods[1].namespace
    ));
}

#[test]
fn stored_objects_are_counted_from_the_watch_not_from_the_quota_status() {
    let mut c = Cache::new(vec![
        Resource::Quotas,
        Resource::PodCounts,
        Resource::JobCounts,
    ]);
    // The status still counts 9 pods and 4 jobs: deletes it has not caught up with.
    let q = quota(
        "q",
        &[
            ("count/pods", 10.0, 9.0),
            ("count/jobs.batch", 5.0, 4.0),
            ("requests.cpu", 8.0, 2.0),
        ],
    );
    c.apply(Resource::Quotas, Step::Put("q".into(), Record::Quota(q)));
    for i in 0..3 {
        c.apply(
            Resource::PodCounts,
            Step::Put(format!("p{i}").into(), mark("crucible", None)),
        );
    }
    c.apply(
        Resource::PodCounts,
        Step::Put("x".into(), mark("elsewhere", None)),
    );
    c.apply(
        Resource::JobCounts,
        Step::Put("j".into(), Record::JobMark("crucible".into())),
    );
    let snap = c.snapshot(t(0));
    let used = &snap.quotas[0].used;
    assert_eq!(used["count/pods"], 3.0);
    assert_eq!(used["count/jobs.batch"], 1.0);
    assert_eq!(
        used["requests.cpu"], 2.0,
        "non-terminal pods: the status's figure"
    );
    assert_eq!(
        snap.stored_pods,
        Some(BTreeMap::from([
            ("crucible".to_string(), 3),
            ("elsewhere".to_string(), 1)
        ]))
    );

    // Without the counts watched, the status stands.
    let mut c = Cache::new(vec![Resource::Quotas]);
    let q = quota("q", &[("count/pods", 10.0, 9.0)]);
    c.apply(Resource::Quotas, Step::Put("q".into(), Record::Quota(q)));
    let snap = c.snapshot(t(0));
    assert_eq!(snap.quotas[0].used["count/pods"], 9.0);
    assert_eq!(snap.stored_pods, None);
}

#[test]
fn a_kept_pod_names_each_job_it_belongs_to_whatever_its_labels() {
    let mut c = Cache::new(vec![Resource::PodCounts]);
    let put = |c: &mut Cache, uid: &str, m: Record| {
        c.apply(Resource::PodCounts, Step::Put(uid.into(), m));
    };
    put(&mut c, "1", mark("crucible", Some((&["job-1"], "zed"))));
    // Owned by two jobs (one of them not its controller): it keeps both.
    put(
        &mut c,
        "2",
        mark("crucible", Some((&["job-1", "job-2"], "abe"))),
    );
    put(&mut c, "3", mark("crucible", None));
    let snap = c.snapshot(t(0));
    assert_eq!(
        snap.kept_pods,
        BTreeMap::from([
            ("job-1".to_string(), ("abe".to_string(), Keep::MARKED)),
            ("job-2".to_string(), ("abe".to_string(), Keep::MARKED))
        ])
    );
    c.apply(Resource::PodCounts, Step::Remove("2".into()));
    assert_eq!(
        c.snapshot(t(0)).kept_pods,
        BTreeMap::from([("job-1".to_string(), ("zed".to_string(), Keep::MARKED))])
    );
    c.apply(Resource::PodCounts, Step::Remove("1".into()));
    assert!(c.snapshot(t(0)).kept_pods.is_empty());
}

#[test]
fn the_pod_kept_longest_speaks_for_its_job() {
    let mut c = Cache::new(vec![Resource::PodCounts]);
    let put = |c: &mut Cache, uid: &str, m: Record| {
        c.apply(Resource::PodCounts, Step::Put(uid.into(), m));
    };
    let job: &[&str] = &["job-1"];
    put(
        &mut c,
        "1",
        mark_with("crucible", Some((job, "a")), Keep::until(t(50))),
    );
    put(
        &mut c,
        "2",
        mark_with("crucible", Some((job, "b")), Keep::until(t(100))),
    );
    let kept = |c: &Cache| c.snapshot(t(0)).kept_pods["job-1"].clone();
    assert_eq!(kept(&c), ("b".to_string(), Keep::until(t(100))));
    // The marker keeps for good: longer than any keep-until.
    put(
        &mut c,
        "3",
        mark_with("crucible", Some((job, "c")), Keep::MARKED),
    );
    assert_eq!(kept(&c), ("c".to_string(), Keep::MARKED));
}
