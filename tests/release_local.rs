//! `scripts/release-local`, end to end, as a user receives what it builds:
//! the archive installs with krew and runs; its binary needs no glibc newer
//! than 2.17; the manifest carries its checksum; the wheel installs with pip
//! into a fresh virtualenv where no Rust toolchain is on PATH and gives both
//! the pytest plugin and the same binary; the sdist holds what a build from
//! source needs, and no `.git`.
//!
//! It costs a release build (17 minutes cold on 2 loaded cores, see
//! docs/development.md), so plain `cargo test` leaves it out (`test = false`
//! in Cargo.toml) and `.ci/run` does not run it. Run it with
//! `cargo test --test release_local`; the GitHub CI workflow does.

mod support;
use support::commands::repo_root;
use support::krew::{text, validate, Krew};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ZERO_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The highest GLIBC_2.N symbol version an ELF binary names.
fn newest_glibc(binary: &[u8]) -> (u32, u32) {
    let needle = b"GLIBC_2.";
    let mut best = (0, 0);
    for i in 0..binary.len().saturating_sub(needle.len()) {
        if &binary[i..i + needle.len()] == needle {
            let digits: String = binary[i + needle.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| b as char)
                .collect();
            if let Ok(minor) = digits.parse() {
                best = best.max((2, minor));
            }
        }
    }
    best
}

/// A PATH with the system's directories only: no cargo, no rustc.
fn path_without_rust(venv_bin: &Path) -> std::ffi::OsString {
    let path = std::env::join_paths([venv_bin, Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    for tool in ["cargo", "rustc"] {
        let found = std::env::split_paths(&path).any(|d| d.join(tool).exists());
        assert!(!found, "{tool} is on the PATH the wheel installs with");
    }
    path
}

#[test]
fn release_local_builds_what_a_release_ships() {
    let dist = tempfile::tempdir().unwrap();
    let out = Command::new(repo_root().join("scripts/release-local"))
        .args(["--out", dist.path().to_str().unwrap()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/release-local");
    assert!(out.status.success(), "scripts/release-local failed");
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let v = version();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(
        names[0].starts_with(&format!("crucible_clean-{v}-py3-none-"))
            && names[0].ends_with("manylinux_2_17_x86_64.whl"),
        "{names:?}"
    );
    assert_eq!(
        names[1..],
        [
            format!("kubectl-crucible-clean-v{v}-linux-amd64.tar.gz"),
            format!("kubectl-crucible-clean-v{v}-linux-amd64.tar.gz.sha256"),
            "crucible-clean.yaml".to_string(),
            format!("crucible_clean-{v}.tar.gz"),
        ]
    );
    for f in &files {
        assert!(f.is_file() && f.starts_with(dist.path()), "{}", f.display());
    }
    let (wheel, archive, sha_file, manifest, sdist) =
        (&files[0], &files[1], &files[2], &files[3], &files[4]);

    // The archive: its checksum file, and the manifest filled for linux/amd64 only.
    let sha = sha256(archive);
    assert_eq!(
        std::fs::read_to_string(sha_file).unwrap(),
        format!("{sha}  {}\n", names[1])
    );
    let m: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    for p in m["spec"]["platforms"].as_array().unwrap() {
        let host = p["selector"]["matchLabels"]["os"] == "linux"
            && p["selector"]["matchLabels"]["arch"] == "amd64";
        assert_eq!(
            p["sha256"],
            if host { sha.as_str() } else { ZERO_SHA },
            "{p}"
        );
    }
    let o = validate(manifest, true, None);
    assert!(o.status.success(), "{}", text(&o));

    // krew installs it; the binary it links runs and names its commit.
    let krew = Krew::new();
    let o = krew.kubectl(&[
        "krew",
        "install",
        &format!("--manifest={}", manifest.display()),
        &format!("--archive={}", archive.display()),
    ]);
    assert!(o.status.success(), "krew install:\n{}", text(&o));
    let o = krew.kubectl(&["crucible-clean", "--version"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .starts_with(&format!("kubectl crucible-clean {v} (commit ")),
        "{}",
        text(&o)
    );
    let installed = krew
        .root
        .join("store/crucible-clean")
        .join(format!("v{v}"))
        .join("kubectl-crucible-clean");
    let binary = std::fs::read(&installed).unwrap();
    let glibc = newest_glibc(&binary);
    assert!(
        ((2, 2)..=(2, 17)).contains(&glibc),
        "the binary needs GLIBC_{}.{}",
        glibc.0,
        glibc.1
    );

    // The wheel, into a fresh virtualenv with no Rust toolchain on PATH.
    let venv = tempfile::tempdir().unwrap();
    let o = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let bin = venv.path().join("bin");
    let path = path_without_rust(&bin);
    let run = |program: &str, args: &[&str]| {
        Command::new(bin.join(program))
            .args(args)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", venv.path())
            .current_dir(venv.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(
        "pip",
        &[
            "install",
            "--disable-pip-version-check",
            "-q",
            wheel.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "pip install:\n{}", text(&o));
    let o = run("pytest", &["--help"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("--cleanup-level"),
        "{}",
        text(&o)
    );
    let o = run("pip", &["show", "crucible-clean"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("\nVersion: {v}\n")),
        "{}",
        text(&o)
    );
    // One build, shipped twice: the wheel's binary is the archive's.
    assert_eq!(
        std::fs::read(bin.join("kubectl-crucible-clean")).unwrap(),
        binary,
        "the wheel's binary differs from the archive's"
    );

    // The sdist: the crate and the package, no .git (the build falls back, build.rs).
    let o = Command::new("tar").arg("-tzf").arg(sdist).output().unwrap();
    let listing = String::from_utf8_lossy(&o.stdout);
    let top = format!("crucible_clean-{v}/");
    for want in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        "pyproject.toml",
    ] {
        assert!(
            listing.lines().any(|l| l == format!("{top}{want}")),
            "{want} not in the sdist:\n{listing}"
        );
    }
    assert!(listing.contains("crucible_clean/plugin.py"), "{listing}");
    assert!(!listing.contains("/.git/"), "{listing}");
}
