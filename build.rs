//! Stamps the git commit the binary is built from into `--version`, as the
//! compile-time variable CRUCIBLE_CLEAN_COMMIT:
//!
//! 1. `CRUCIBLE_CLEAN_GIT_COMMIT`, when set (a build without `.git` that
//!    knows its commit: the image, a CI job);
//! 2. else the commit checked out, when this crate is the top of a git work
//!    tree (a clone);
//! 3. else a clear "unknown", never an error: an sdist, a crate from the
//!    crates registry, a source tarball, or a copy without git installed.
//!
//! The build reruns when HEAD moves (a commit, a checkout), so a dev build
//! never shows a stale commit.

use std::path::{Path, PathBuf};
use std::process::Command;

const UNKNOWN: &str = "unknown, built outside a git checkout";

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

/// The commit of the work tree whose top is `dir`, and the files whose
/// change moves it (HEAD, the branch's ref, packed-refs).
fn from_git(dir: &Path) -> Option<(String, Vec<PathBuf>)> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    // An sdist unpacked inside some other repository is not that repository's commit.
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    let mut watch = vec![];
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(branch);
    }
    for p in paths {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &p]) {
            let path = dir.join(path);
            if path.exists() {
                watch.push(path);
            }
        }
    }
    Some((commit, watch))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CRUCIBLE_CLEAN_GIT_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let given = std::env::var("CRUCIBLE_CLEAN_GIT_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let commit = match given {
        Some(c) => c,
        None => match from_git(&dir) {
            Some((commit, watch)) => {
                for path in watch {
                    println!("cargo:rerun-if-changed={}", path.display());
                }
                commit
            }
            None => UNKNOWN.to_string(),
        },
    };
    println!("cargo:rustc-env=CRUCIBLE_CLEAN_COMMIT={commit}");
}
