//! `--version` names the version and the commit the binary was built from
//! (build.rs); `-V`, the man page and the completions carry the version alone.
//! The build script itself is run on directories of its own making, to prove
//! each source of the commit: the variable CRUCIBLE_CLEAN_GIT_COMMIT, a git
//! work tree, and the clear fallback where there is no git checkout (an sdist,
//! a crate from the registry, an image built without .git).

mod support;
use support::commands::{plugin_binary, repo_root};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const UNKNOWN: &str = "unknown, built outside a git checkout";

fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .expect("git is needed for these tests")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_names_the_commit_of_the_checkout() {
    let out = Command::new(plugin_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    // What build.rs saw when this test was built: the variable, else the
    // checkout's HEAD, else nothing to know.
    let root = repo_root();
    let head = git(&root, &["rev-parse", "--short=12", "HEAD"]);
    let commit = match option_env!("CRUCIBLE_CLEAN_GIT_COMMIT").filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None if head.status.success() => stdout(&head).trim().to_string(),
        None => UNKNOWN.to_string(),
    };
    assert_eq!(
        stdout(&out),
        format!(
            "kubectl crucible-clean {} (commit {commit})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let short = Command::new(plugin_binary()).arg("-V").output().unwrap();
    assert_eq!(
        stdout(&short),
        format!("kubectl crucible-clean {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The build script cargo compiled for this package (the newest, for the
/// build.rs of this tree).
fn build_script() -> PathBuf {
    // target/<profile>/deps/version-<hash> → target/<profile>/build/
    let exe = std::env::current_exe().unwrap();
    let build = exe.parent().unwrap().parent().unwrap().join("build");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&build)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("crucible-clean-")
        })
        .map(|p| p.join("build-script-build"))
        .filter(|p| p.is_file())
        .map(|p| (p.metadata().unwrap().modified().unwrap(), p))
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no build script under {}", build.display()))
        .1
}

/// Runs the build script as cargo would for a crate at `dir`; returns the
/// commit it stamps and the files it asks to be watched.
fn stamp(dir: &Path, given: Option<&str>) -> (String, Vec<String>) {
    let mut cmd = Command::new(build_script());
    cmd.env("CARGO_MANIFEST_DIR", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env_remove("CRUCIBLE_CLEAN_GIT_COMMIT")
        .current_dir(dir)
        .stdin(Stdio::null());
    if let Some(c) = given {
        cmd.env("CRUCIBLE_CLEAN_GIT_COMMIT", c);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let commit = text
        .lines()
        .find_map(|l| l.strip_prefix("cargo:rustc-env=CRUCIBLE_CLEAN_COMMIT="))
        .unwrap_or_else(|| panic!("no commit stamped: {text}"))
        .to_string();
    let watched = text
        .lines()
        .filter_map(|l| l.strip_prefix("cargo:rerun-if-changed="))
        .map(str::to_string)
        .collect();
    (commit, watched)
}

#[test]
fn the_build_falls_back_clearly_without_a_git_checkout() {
    // A directory that is no git work tree: an unpacked sdist or crate.
    let plain = tempfile::tempdir().unwrap();
    assert_eq!(stamp(plain.path(), None).0, UNKNOWN);
    // The variable wins where there is no .git (the image's build).
    assert_eq!(stamp(plain.path(), Some("0123456789ab")).0, "0123456789ab");
    assert_eq!(stamp(plain.path(), Some("  ")).0, UNKNOWN);

    // A clone: its HEAD, and a rebuild when HEAD moves.
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ],
    ] {
        let o = git(r, args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let head = stdout(&git(r, &["rev-parse", "--short=12", "HEAD"]));
    let (commit, watched) = stamp(r, None);
    assert_eq!(commit, head.trim());
    assert!(
        watched.iter().any(|w| w.ends_with(".git/HEAD")),
        "{watched:?}"
    );
    assert!(
        watched.iter().any(|w| w.ends_with(".git/refs/heads/main")),
        "{watched:?}"
    );
    assert_eq!(stamp(r, Some("fedcba987654")).0, "fedcba987654");

    // A crate unpacked inside some other repository is not that repository's commit.
    let nested = r.join("unpacked-sdist");
    std::fs::create_dir(&nested).unwrap();
    assert_eq!(stamp(&nested, None).0, UNKNOWN);
}
