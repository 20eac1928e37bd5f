//! The release machinery that can be checked without building a release:
//! the workflows pass actionlint (built by `tests/actionlint/build` from the
//! Go module proxy, cached), the release workflow runs the repository's
//! release scripts (the ones `scripts/release-local` runs, so what is tested
//! here is what ships), CI's caches are keyed on the versions the build
//! scripts pin, and CHANGELOG.md follows Keep a Changelog, its sections
//! becoming the release notes. The release build itself: tests/release_local.rs.

mod support;
use support::commands::repo_root;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The actionlint binary, built once.
fn actionlint() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(repo_root().join("tests/actionlint/build"))
            .stdin(Stdio::null())
            .output()
            .expect("run tests/actionlint/build");
        assert!(
            out.status.success(),
            "tests/actionlint/build failed:\n{}",
            text(&out)
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("actionlint");
        assert!(bin.is_file(), "no {}", bin.display());
        bin
    })
}

/// actionlint on `files`, from `dir`. shellcheck and pyflakes, which it runs
/// when they are on PATH, are turned off: the verdict must not depend on the
/// machine.
fn lint(dir: &Path, files: &[&str]) -> Output {
    Command::new(actionlint())
        .args(["-no-color", "-shellcheck=", "-pyflakes="])
        .args(files)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run actionlint")
}

const WORKFLOWS: [&str; 2] = [".github/workflows/ci.yml", ".github/workflows/release.yml"];

#[test]
fn the_workflows_pass_actionlint() {
    let v = Command::new(actionlint()).arg("-version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("v1.7.12\n"),
        "{}",
        text(&v)
    );
    let out = lint(&repo_root(), &WORKFLOWS);
    assert!(out.status.success(), "actionlint:\n{}", text(&out));
}

#[test]
fn actionlint_finds_a_broken_workflow() {
    // The check above can fail: an unknown runner label and an expression on
    // an undefined step output are errors.
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("broken.yml"),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latset\n    steps:\n      \
         - run: echo ${{ steps.nope.outputs.x }}\n",
    )
    .unwrap();
    let out = lint(dir.path(), &[".github/workflows/broken.yml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("label \"ubuntu-latset\" is unknown"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("steps.nope"), "{}", text(&out));
}

#[test]
fn the_release_workflow_runs_the_release_scripts() {
    let release = read(".github/workflows/release.yml");
    for script in [
        "scripts/release-wheel --target",
        "scripts/release-wheel --sdist",
        "scripts/release-binary",
        "scripts/release-archive --binary",
        "scripts/release-notes",
        "scripts/image-name",
        "tests/krew/build",
    ] {
        assert!(
            release.contains(script),
            "release.yml does not run {script}"
        );
        let file = repo_root().join(script.split_whitespace().next().unwrap());
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
        assert!(mode & 0o111 != 0, "{} is not executable", file.display());
    }
    // scripts/release-local runs the same scripts for linux/amd64.
    let local = read("scripts/release-local");
    for script in [
        "scripts/release-wheel --target",
        "scripts/release-wheel --sdist",
        "scripts/release-binary",
        "scripts/release-archive --binary",
    ] {
        assert!(
            local.contains(script),
            "release-local does not run {script}"
        );
    }
    // Every platform of the krew manifest gets an archive, from the wheel of
    // the same platform; the image takes the static (musllinux) binaries.
    for platform in [
        "linux-amd64",
        "linux-arm64",
        "darwin-amd64",
        "darwin-arm64",
        "windows-amd64",
        "musllinux-amd64",
        "musllinux-arm64",
    ] {
        assert!(
            release.contains(&format!("{{platform: {platform},")),
            "no wheel for {platform}"
        );
    }
    assert!(release.contains(
        "for platform in linux-amd64 linux-arm64 darwin-amd64 darwin-arm64 windows-amd64; do"
    ));
    assert!(release.contains("tags: [\"v[0-9]+.[0-9]+.[0-9]+\"]"));
    assert!(release.contains("id-token: write"), "trusted publishing");
}

#[test]
fn ci_runs_ci_run_with_caches_keyed_on_the_pinned_versions() {
    let ci = read(".github/workflows/ci.yml");
    assert!(ci.contains("run: bash .ci/run"));
    for os in ["macos-latest", "windows-latest"] {
        assert!(ci.contains(os), "no build on {os}");
    }
    // The step that reads the pins must find each one where the build scripts
    // define it, as NAME=${NAME:-value}.
    for (var, script) in [
        ("K8S_VERSION", "tests/cluster/build"),
        ("ETCD_VERSION", "tests/cluster/build"),
        ("KWOK_VERSION", "tests/cluster/build"),
        ("KREW_VERSION", "tests/krew/build"),
        ("ACTIONLINT_VERSION", "tests/actionlint/build"),
    ] {
        assert!(
            ci.contains(&format!("pin {var} {script}")),
            "ci.yml does not key on {var}"
        );
        let prefix = format!("{var}=${{{var}:-");
        let pinned = read(script).lines().find_map(|l| {
            l.strip_prefix(&prefix)
                .map(|r| r.split('}').next().unwrap().to_string())
        });
        assert!(
            pinned.is_some_and(|v| v.starts_with('v')),
            "{script} does not pin {var} as {prefix}…}}"
        );
    }
}

#[test]
fn the_changelog_follows_keep_a_changelog() {
    let log = read("CHANGELOG.md");
    assert!(log.starts_with("# Changelog\n"));
    assert!(log.contains("[Keep a Changelog](https://keepachangelog.com/"));
    let headings: Vec<&str> = log.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(headings.first(), Some(&"## [Unreleased]"), "{headings:?}");
    let mut versions = vec![];
    for h in &headings[1..] {
        // ## [X.Y.Z] - YYYY-MM-DD
        let rest = h.strip_prefix("## [").unwrap_or_else(|| panic!("{h}"));
        let (v, date) = rest.split_once("] - ").unwrap_or_else(|| panic!("{h}"));
        let v: Vec<u64> = v.split('.').map(|n| n.parse().unwrap()).collect();
        assert_eq!(v.len(), 3, "{h}");
        assert!(
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(),
            "{h}"
        );
        versions.push(v);
    }
    assert!(versions.windows(2).all(|w| w[0] > w[1]), "newest first");
    for l in log.lines().filter(|l| l.starts_with("### ")) {
        assert!(
            [
                "### Added",
                "### Changed",
                "### Deprecated",
                "### Removed",
                "### Fixed",
                "### Security"
            ]
            .contains(&l),
            "{l}: not a Keep a Changelog section"
        );
    }
}

fn release_notes(args: &[&str]) -> Output {
    Command::new(repo_root().join("scripts/release-notes"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/release-notes")
}

#[test]
fn release_notes_are_the_versions_changelog_section() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("CHANGELOG.md");
    std::fs::write(
        &file,
        "# Changelog\n\n## [Unreleased]\n\n- next\n\n## [1.2.0] - 2026-12-01\n\n### Added\n\n\
         - a thing\n\n## [1.1.0] - 2026-11-01\n\n### Fixed\n\n- an older thing\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = release_notes(&["1.2.0", "--changelog", f]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "### Added\n\n- a thing\n"
    );
    let out = release_notes(&["1.1.0", "--changelog", f]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "### Fixed\n\n- an older thing\n"
    );
    // A tag without its section is refused: exit 2, one line saying what to do.
    let out = release_notes(&["1.3.0", "--changelog", f]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "release-notes: error: CHANGELOG.md has no section '## [1.3.0] - YYYY-MM-DD': \
         move the Unreleased entries under it\n"
    );
    // The real file: Cargo.toml's version is released (its section exists) or
    // still under Unreleased, which must then say something.
    let out = release_notes(&[]);
    let log = read("CHANGELOG.md");
    let released = log.contains(&format!("## [{}] - ", env!("CARGO_PKG_VERSION")));
    assert_eq!(out.status.success(), released, "{}", text(&out));
    if !released {
        let unreleased = log.split("## [Unreleased]").nth(1).unwrap();
        let body = unreleased.split("\n## ").next().unwrap();
        assert!(body.contains("\n- "), "Unreleased lists nothing");
    }
}
