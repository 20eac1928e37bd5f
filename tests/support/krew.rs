//! krew, built by `tests/krew/build` from the Go module proxy (cached): its
//! manifest validator, and a krew installation of its own in a temp dir, used
//! through the real kubectl. Everything runs offline.
//!
//! krew never needs its plugin index here: `install --manifest` skips it, and
//! for `list`/`uninstall`, which insist on an index directory that is a git
//! clone, an empty `index/default/.git` directory is enough (krew only checks
//! that it exists). `KREW_NO_UPGRADE_CHECK=1` keeps krew from looking for a
//! newer release of itself (an unstamped build skips that check anyway).

// Used by tests/krew.rs and tests/release_local.rs; other test binaries compile it unused.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use super::commands::{kubectl, repo_root};

/// The directory with `kubectl-krew` and `validate-krew-manifest`, built once.
pub fn krew_tools() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new(repo_root().join("tests/krew/build"))
            .stdin(Stdio::null())
            .output()
            .expect("run tests/krew/build");
        assert!(
            out.status.success(),
            "tests/krew/build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(
            dir.join("kubectl-krew").is_file(),
            "no kubectl-krew in {}",
            dir.display()
        );
        dir
    })
}

/// stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// krew's manifest validator on `manifest` (`-skip-install`: without installing
/// each platform; `path`: the PATH it runs with).
pub fn validate(manifest: &Path, skip_install: bool, path: Option<&std::ffi::OsStr>) -> Output {
    let mut cmd = Command::new(krew_tools().join("validate-krew-manifest"));
    cmd.arg("-manifest").arg(manifest);
    if skip_install {
        cmd.arg("-skip-install");
    }
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.stdin(Stdio::null())
        .output()
        .expect("run validate-krew-manifest")
}

/// A krew installation in a temp dir, used through the real kubectl.
pub struct Krew {
    pub root: PathBuf,
    pub home: PathBuf,
    _dir: tempfile::TempDir,
}

impl Krew {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("krew");
        let home = dir.path().join("home");
        std::fs::create_dir_all(root.join("index").join("default").join(".git")).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        Krew {
            root,
            home,
            _dir: dir,
        }
    }

    pub fn bin(&self) -> PathBuf {
        self.root.join("bin")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        let kubectl = kubectl();
        let path = std::env::join_paths([
            krew_tools().to_path_buf(),
            self.bin(),
            kubectl.parent().expect("kubectl's dir").to_path_buf(),
        ])
        .unwrap();
        Command::new(&kubectl)
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("KREW_ROOT", &self.root)
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .env("KUBECONFIG", self.home.join("no-kubeconfig"))
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }
}
