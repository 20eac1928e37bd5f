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
    assert!(wanted(&spec, &pod("p", Phase::Failed, 0)));
    assert!(wanted(&spec, &job("j", Phase::Failed, 0)));
    // A job that succeeded may have failed attempts: `write` decides.
    assert!(wanted(&spec, &job("j", Phase::Complete, 0)));
}

#[test]
fn a_dry_run_says_a_succeeded_job_is_archived_when_it_has_a_failed_pod() {
    let spec = ArchiveSpec {
        dir: "a".into(),
        only_failed: true,
        log_bytes: 10,
    };
    let done = job("j", Phase::Complete, 0);
    let clean = job("k", Phase::Complete, 0);
    let retried = owned_by(pod("j-1", Phase::Failed, 0), &done);
    let fine = owned_by(pod("k-1", Phase::Succeeded, 0), &clean);
    let inv = Inventory {
        pods: shared(vec![retried, fine]),
        jobs: shared(vec![done.clone(), clean.clone()]),
        ..Default::default()
    };
    assert!(would(&spec, &done, &inv, true));
    assert!(!would(&spec, &done, &inv, false), "orphaned pods stay");
    assert!(!would(&spec, &clean, &inv, true));
    assert!(would(&spec, &pod("p", Phase::Failed, 0), &inv, true));
}

#[test]
fn the_manifest_has_no_managed_fields() {
    let o = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]}});
    let yaml = String::from_utf8(manifest(&o)).unwrap();
    assert!(yaml.contains("name: p"), "{yaml}");
    assert!(!yaml.contains("managedFields"), "{yaml}");
}

/// Writes `files` as the archive of pod `name` of namespace `ns` under `root`.
fn put(root: &Path, ns: &str, name: &str, files: &[(&str, &[u8])]) -> io::Result<()> {
    use std::io::Write;
    let p = disk::Partial::begin(&disk::Place {
        root,
        namespace: ns,
        kind: "pod",
        name,
    })?;
    for (rel, bytes) in files {
        p.create(rel)?.write_all(bytes)?;
    }
    p.commit()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn an_archive_is_put_whole_and_replaces_an_older_one() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "ns", "p", &[("a.txt", b"one")]).unwrap();
    put(
        root.path(),
        "ns",
        "p",
        &[("b.txt", b"two"), ("logs/c.log", b"log")],
    )
    .unwrap();
    let dir = root.path().join("ns/pod/p");
    assert!(!dir.join("a.txt").exists());
    assert_eq!(std::fs::read(dir.join("b.txt")).unwrap(), b"two");
    assert_eq!(std::fs::read(dir.join("logs/c.log")).unwrap(), b"log");
    // Nothing hidden is left beside it.
    assert_eq!(names(&root.path().join("ns/pod")), ["p"]);
}

#[test]
fn an_archive_not_committed_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let p = disk::Partial::begin(&disk::Place {
        root: root.path(),
        namespace: "ns",
        kind: "pod",
        name: "p",
    })
    .unwrap();
    p.create("logs/x.log").unwrap();
    drop(p);
    assert!(names(&root.path().join("ns/pod")).is_empty());
}

#[test]
fn an_unwritable_place_is_an_error_and_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let err = put(&file, "ns", "p", &[("a", b"")]).unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[test]
fn names_that_are_not_one_path_component_are_refused() {
    let root = tempfile::tempdir().unwrap();
    for (ns, name) in [("..", "p"), ("ns", ".."), ("ns", "a/b"), ("", "p")] {
        let err = put(root.path(), ns, name, &[("a", b"")]).unwrap_err();
        assert!(
            err.to_string().contains("cannot name"),
            "{ns} {name}: {err}"
        );
    }
    let err = put(root.path(), "ns", "p", &[("../escape", b"")]).unwrap_err();
    assert!(err.to_string().contains("cannot name"), "{err}");
    assert!(!root.path().join("ns/pod/escape").exists());
}

#[cfg(unix)]
mod unix {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    /// The repro: a link under DIR to a victim's directory.
    #[test]
    fn a_link_under_the_archive_dir_is_refused_and_its_target_untouched() {
        let top = tempfile::tempdir().unwrap();
        let a = top.path().join("A");
        let victim = top.path().join("victim");
        std::fs::create_dir_all(a.join("crucible")).unwrap();
        std::fs::create_dir_all(victim.join("s1/sub")).unwrap();
        std::fs::write(victim.join("s1/important.txt"), b"precious").unwrap();
        symlink(&victim, a.join("crucible/pod")).unwrap();
        let err = put(&a, "crucible", "s1", &[("archive.json", b"{}")]).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            std::fs::read(victim.join("s1/important.txt")).unwrap(),
            b"precious"
        );
        assert!(victim.join("s1/sub").is_dir());
        assert_eq!(names(&victim), ["s1"]);

        // The namespace directory a link; the archive's own place a link.
        let b = top.path().join("B");
        std::fs::create_dir_all(&b).unwrap();
        symlink(&victim, b.join("crucible")).unwrap();
        assert!(put(&b, "crucible", "s1", &[("a", b"")]).is_err());
        let c = top.path().join("C");
        std::fs::create_dir_all(c.join("crucible/pod")).unwrap();
        symlink(victim.join("s1"), c.join("crucible/pod/s1")).unwrap();
        let err = put(&c, "crucible", "s1", &[("a", b"")]).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(names(&victim.join("s1")), ["important.txt", "sub"]);
        // The link is left as it was, and nothing hidden beside it.
        assert!(std::fs::symlink_metadata(c.join("crucible/pod/s1"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(names(&c.join("crucible/pod")), ["s1"]);
    }

    /// An older archive holding a link: the link is removed, not followed.
    #[test]
    fn replacing_an_archive_never_follows_a_link_inside_it() {
        let top = tempfile::tempdir().unwrap();
        let victim = top.path().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("important.txt"), b"precious").unwrap();
        let root = top.path().join("A");
        put(&root, "ns", "p", &[("logs/main.log", b"old")]).unwrap();
        let old = root.join("ns/pod/p");
        symlink(&victim, old.join("logs/link")).unwrap();
        put(&root, "ns", "p", &[("logs/main.log", b"new")]).unwrap();
        assert_eq!(std::fs::read(old.join("logs/main.log")).unwrap(), b"new");
        assert_eq!(names(&victim), ["important.txt"]);
        assert_eq!(names(&root.join("ns/pod")), ["p"]);
    }

    #[test]
    fn directories_are_0700_and_files_0600_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let top = root.path().join("archive");
        // SAFETY: umask(2) only sets this process's file mode mask.
        let before = unsafe { libc::umask(0o022) };
        let r = put(&top, "ns", "p", &[("logs/main.log", b"DB_PASSWORD=x")]);
        // SAFETY: as above.
        unsafe { libc::umask(before) };
        r.unwrap();
        for d in ["", "ns", "ns/pod", "ns/pod/p", "ns/pod/p/logs"] {
            assert_eq!(mode(&top.join(d)), 0o700, "{d}");
        }
        assert_eq!(mode(&top.join("ns/pod/p/logs/main.log")), 0o600);
    }

    /// Another user's directory under DIR is refused (tests run as root in
    /// CI; elsewhere chown is not allowed and the case cannot be set up).
    #[test]
    fn another_users_directory_under_the_archive_dir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let ns = root.path().join("ns");
        std::fs::create_dir_all(ns.join("pod")).unwrap();
        let me = std::fs::metadata(&ns).unwrap().uid();
        if std::os::unix::fs::chown(ns.join("pod"), Some(me + 1), None).is_err() {
            assert_ne!(me, 0, "root could not chown");
            return;
        }
        let err = put(root.path(), "ns", "p", &[("a", b"")]).unwrap_err();
        assert!(err.to_string().contains("is owned by uid"), "{err}");
        assert!(names(&ns.join("pod")).is_empty());
    }
}

/// A log of 32 MiB, given in as many pieces as `copy` asks for: each read
/// asks for at most one chunk, and every byte reaches the file. A copy that
/// gathered the log first (`read_to_end`) would ask with an ever larger
/// buffer and fail here; the peak memory it bounds is measured by
/// tests/archive_memory.rs.
#[tokio::test]
async fn a_log_is_copied_to_disk_one_chunk_at_a_time() {
    struct Endless {
        left: usize,
        reads: usize,
        largest_ask: usize,
    }
    impl futures::AsyncRead for Endless {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.reads += 1;
            self.largest_ask = self.largest_ask.max(buf.len());
            let n = buf.len().min(self.left);
            buf[..n].fill(b'x');
            self.left -= n;
            std::task::Poll::Ready(Ok(n))
        }
    }
    const SIZE: usize = 32 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("main.log");
    let mut log = Endless {
        left: SIZE,
        reads: 0,
        largest_ask: 0,
    };
    let file = std::fs::File::create(&path).unwrap();
    let copied = match super::copy(&mut log, file).await {
        Ok(n) => n,
        Err(_) => panic!("the copy failed"),
    };
    assert_eq!(copied, SIZE as u64);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), SIZE as u64);
    assert!(
        log.largest_ask <= super::LOG_CHUNK,
        "asked for {} bytes at once",
        log.largest_ask
    );
    assert!(log.reads > SIZE / super::LOG_CHUNK, "{} reads", log.reads);
}
