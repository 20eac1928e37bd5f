use super::*;
use crate::model::fixtures::*;

#[test]
fn archives_go_under_namespace_kind_and_name() {
    let root = Path::new("arch");
    assert_eq!(
        dir_of(root, &pod("p-1", Phase::Failed, 0)),
        Path::new("arch/crucible/pod/p-1")
    );
    assert_eq!(
        dir_of(root, &job("evaluation-job-e1", Phase::Complete, 0)),
        Path::new("arch/crucible/job/evaluation-job-e1")
    );
}

#[test]
fn archive_only_failed_takes_failed_pods_and_jobs() {
    let mut spec = ArchiveSpec {
        dir: "a".into(),
        only_failed: false,
        log_bytes: 10,
    };
    assert!(wanted(&spec, &pod("p", Phase::Succeeded, 0)));
    spec.only_failed = true;
    assert!(!wanted(&spec, &pod("p", Phase::Succeeded, 0)));
    assert!(!wanted(&spec, &job("j", Phase::Complete, 0)));
    assert!(wanted(&spec, &pod("p", Phase::Failed, 0)));
    assert!(wanted(&spec, &job("j", Phase::Failed, 0)));
}

#[test]
fn the_manifest_has_no_managed_fields() {
    let o = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]}});
    let yaml = String::from_utf8(manifest(&o)).unwrap();
    assert!(yaml.contains("name: p"), "{yaml}");
    assert!(!yaml.contains("managedFields"), "{yaml}");
}

#[test]
fn an_archive_is_put_whole_and_replaces_an_older_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ns/pod/p");
    disk::put(&dir, &[("a.txt".into(), b"one".to_vec())]).unwrap();
    disk::put(
        &dir,
        &[
            ("b.txt".into(), b"two".to_vec()),
            ("logs/c.log".into(), b"log".to_vec()),
        ],
    )
    .unwrap();
    assert!(!dir.join("a.txt").exists());
    assert_eq!(std::fs::read(dir.join("b.txt")).unwrap(), b"two");
    assert_eq!(std::fs::read(dir.join("logs/c.log")).unwrap(), b"log");
    // Nothing hidden is left beside it.
    let names: Vec<String> = std::fs::read_dir(root.path().join("ns/pod"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["p"]);
}

#[test]
fn an_unwritable_place_is_an_error_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = disk::put(&file.join("ns/pod/p"), &[("a".into(), vec![])]).unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[test]
fn the_record_gains_a_jobs_pods() {
    let mut c = Contents {
        dir: "x".into(),
        files: vec![("archive.json".into(), pretty(&json!({"kind": "Archive"})))],
    };
    merge_record(&mut c, json!({"pods": ["a/b"]}));
    let v: Value = serde_json::from_slice(&c.files[0].1).unwrap();
    assert_eq!(v, json!({"kind": "Archive", "pods": ["a/b"]}));
}
