//! The krew manifest and the release archive, checked with krew itself
//! (`support::krew`: krew and its manifest validator, built from the Go module
//! proxy and cached); everything else runs offline.

mod support;
use support::commands::{kubectl, plugin_binary, repo_root};
use support::krew::{krew_tools, text, validate, Krew};

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PLUGIN: &str = "crucible-clean";
const ZERO_SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// This machine as krew names platforms (Go's GOOS/GOARCH).
fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

/// Runs scripts/release-archive with `args`; returns the archive path it printed.
fn release_archive(args: &[&std::ffi::OsStr], base_url: Option<&str>) -> PathBuf {
    let mut cmd = Command::new(repo_root().join("scripts/release-archive"));
    cmd.args(args).stdin(Stdio::null());
    match base_url {
        Some(u) => cmd.env("RELEASE_BASE_URL", u),
        None => cmd.env_remove("RELEASE_BASE_URL"),
    };
    let out = cmd.output().expect("run scripts/release-archive");
    assert!(
        out.status.success(),
        "scripts/release-archive {args:?} failed:\n{}",
        text(&out)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Packages `binary` as platform `os/arch` into `out`, filling in
/// `out/crucible-clean.yaml` (created from the committed manifest when
/// `manifest` is None).
fn package(
    binary: &Path,
    os: &str,
    arch: &str,
    out: &Path,
    manifest: Option<&Path>,
    base_url: Option<&str>,
) -> PathBuf {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--binary".as_ref(),
        binary.as_os_str(),
        "--os".as_ref(),
        os.as_ref(),
        "--arch".as_ref(),
        arch.as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    if let Some(m) = manifest {
        args.push("--manifest".as_ref());
        args.push(m.as_os_str());
    }
    release_archive(&args, base_url)
}

#[derive(Debug, serde::Deserialize)]
struct Manifest {
    metadata: Metadata,
    spec: Spec,
}
#[derive(Debug, serde::Deserialize)]
struct Metadata {
    name: String,
}
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    version: String,
    homepage: String,
    platforms: Vec<Platform>,
}
#[derive(Debug, serde::Deserialize)]
struct Platform {
    selector: Selector,
    uri: String,
    sha256: String,
    bin: String,
}
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    match_labels: std::collections::BTreeMap<String, String>,
}

fn read_manifest(path: &Path) -> Manifest {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn platforms(m: &Manifest) -> Vec<(String, String, String)> {
    m.spec
        .platforms
        .iter()
        .map(|p| {
            (
                p.selector.match_labels["os"].clone(),
                p.selector.match_labels["arch"].clone(),
                p.bin.clone(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// The committed manifest
// ------------------------------------------------------------------------------------------

#[test]
fn the_committed_manifest_passes_krews_validation() {
    let path = repo_root().join("krew").join(format!("{PLUGIN}.yaml"));
    let out = validate(&path, true, None);
    assert!(
        out.status.success(),
        "validate-krew-manifest rejected {}:\n{}",
        path.display(),
        text(&out)
    );

    let m = read_manifest(&path);
    assert_eq!(m.metadata.name, PLUGIN);
    assert_eq!(
        m.spec.version,
        tag(),
        "spec.version must match Cargo.toml's version"
    );
    let bin = "kubectl-crucible-clean";
    let exe = "kubectl-crucible-clean.exe";
    assert_eq!(
        platforms(&m),
        [
            ("linux", "amd64", bin),
            ("linux", "arm64", bin),
            ("darwin", "amd64", bin),
            ("darwin", "arm64", bin),
            ("windows", "amd64", exe)
        ]
        .map(|(o, a, b)| (o.to_string(), a.to_string(), b.to_string()))
    );
    for p in &m.spec.platforms {
        let (os, arch) = (
            &p.selector.match_labels["os"],
            &p.selector.match_labels["arch"],
        );
        assert!(
            p.uri.ends_with(&format!(
                "/releases/download/{}/kubectl-crucible-clean-{}-{os}-{arch}.tar.gz",
                tag(),
                tag()
            )),
            "{}",
            p.uri
        );
    }
}

// ------------------------------------------------------------------------------------------
// Installing with krew
// ------------------------------------------------------------------------------------------

#[test]
fn krew_installs_the_release_archive_and_uninstalls_it() {
    let (os, arch) = host_platform();
    let dist = tempfile::tempdir().unwrap();
    let archive = package(&plugin_binary(), os, arch, dist.path(), None, None);
    assert_eq!(
        archive,
        dist.path().join(format!(
            "kubectl-crucible-clean-{}-{os}-{arch}.tar.gz",
            tag()
        ))
    );
    let manifest = dist.path().join(format!("{PLUGIN}.yaml"));

    // The filled copy is still valid, and carries this archive's checksum.
    let out = validate(&manifest, true, None);
    assert!(out.status.success(), "{}", text(&out));
    let sha_file = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
    let sha = sha_file.split_whitespace().next().unwrap().to_string();
    let m = read_manifest(&manifest);
    for p in &m.spec.platforms {
        let host = p.selector.match_labels["os"] == os && p.selector.match_labels["arch"] == arch;
        assert_eq!(
            p.sha256,
            if host { sha.as_str() } else { ZERO_SHA },
            "{:?}",
            p.selector
        );
    }
    // The committed manifest is left alone.
    let committed = read_manifest(&repo_root().join("krew").join(format!("{PLUGIN}.yaml")));
    assert!(committed.spec.platforms.iter().all(|p| p.sha256 != sha));

    let krew = Krew::new();
    let out = krew.kubectl(&[
        "krew",
        "install",
        &format!("--manifest={}", manifest.display()),
        &format!("--archive={}", archive.display()),
    ]);
    assert!(out.status.success(), "krew install failed:\n{}", text(&out));
    assert!(
        text(&out).contains("Installed plugin: crucible-clean"),
        "{}",
        text(&out)
    );

    // krew links the plugin under the name kubectl looks for, and installs LICENSE.
    let link = krew.bin().join("kubectl-crucible_clean");
    let target = std::fs::read_link(&link).expect("krew's link kubectl-crucible_clean");
    let store = krew.root.join("store").join(PLUGIN).join(tag());
    assert_eq!(target, store.join("kubectl-crucible-clean"));
    assert_eq!(
        std::fs::read(store.join("LICENSE")).unwrap(),
        std::fs::read(repo_root().join("LICENSE")).unwrap()
    );

    let out = krew.kubectl(&["crucible-clean", "--help"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Usage: kubectl crucible-clean [OPTIONS]"),
        "{}",
        text(&out)
    );
    let out = krew.kubectl(&["krew", "list"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains(PLUGIN),
        "{}",
        text(&out)
    );

    // The completion link the manifest's caveats describe works next to krew's link.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(
            "kubectl-crucible_clean",
            krew.bin().join("kubectl_complete-crucible_clean"),
        )
        .unwrap();
        let out = krew.kubectl(&["__complete", "crucible-clean", "--cas"]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "--cascade\tDeletion propagation for jobs\n:4\n",
            "{}",
            text(&out)
        );
    }

    let out = krew.kubectl(&["krew", "uninstall", PLUGIN]);
    assert!(
        out.status.success(),
        "krew uninstall failed:\n{}",
        text(&out)
    );
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the link is gone"
    );
    assert!(
        !krew.root.join("store").join(PLUGIN).exists(),
        "the store is gone"
    );
    assert!(
        !krew
            .root
            .join("receipts")
            .join(format!("{PLUGIN}.yaml"))
            .exists(),
        "the receipt is gone"
    );
    let out = krew.kubectl(&["crucible-clean", "--help"]);
    assert!(
        !out.status.success(),
        "still runs after uninstall: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("unknown command \"crucible-clean\""),
        "{}",
        text(&out)
    );
}

// ------------------------------------------------------------------------------------------
// krew's own full validation: install every platform
// ------------------------------------------------------------------------------------------

/// Serves the files of `dir` by the last segment of the request path, over
/// plain HTTP on 127.0.0.1, until the test process ends.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &dir);
        }
    });
    format!("http://{addr}")
}

fn answer(stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let name = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    let mut stream = stream;
    match std::fs::read(dir.join(&name))
        .ok()
        .filter(|_| !name.is_empty() && !name.starts_with('.'))
    {
        Some(body) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)?;
        }
        None => write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
    }
    stream.flush()
}

/// A small file to package where the archive's layout matters, not the
/// binary (the test build is large, and gzip -9 of it is slow).
fn stand_in(dir: &Path) -> PathBuf {
    let path = dir.join("stand-in");
    std::fs::write(&path, "#!/bin/sh\necho stand-in\n").unwrap();
    path
}

#[test]
fn krews_validator_installs_every_platform_of_the_release_manifest() {
    // Archives for every platform in the release layout, holding a stand-in
    // binary: krew's install check extracts, links `bin` and looks for LICENSE.
    let dist = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let binary = stand_in(work.path());
    let base = serve(dist.path().to_path_buf());
    let manifest = dist.path().join(format!("{PLUGIN}.yaml"));
    std::fs::copy(
        repo_root().join("krew").join(format!("{PLUGIN}.yaml")),
        &manifest,
    )
    .unwrap();
    let all = [
        ("linux", "amd64"),
        ("linux", "arm64"),
        ("darwin", "amd64"),
        ("darwin", "arm64"),
        ("windows", "amd64"),
    ];
    for (os, arch) in all {
        package(
            &binary,
            os,
            arch,
            dist.path(),
            Some(&manifest),
            Some(&format!("{base}/OWNER/kubectl-crucible-clean")),
        );
    }
    let m = read_manifest(&manifest);
    assert!(
        m.spec
            .platforms
            .iter()
            .all(|p| p.sha256 != ZERO_SHA && p.uri.starts_with(&base)),
        "{m:?}"
    );
    // The homepage names the repository the release comes from.
    assert_eq!(
        m.spec.homepage,
        format!("{base}/OWNER/kubectl-crucible-clean")
    );

    // The validator runs `kubectl krew install --manifest` once per platform
    // (KREW_OS/KREW_ARCH), downloading from `uri`, then looks for LICENSE.
    let kubectl = kubectl();
    let path = std::env::join_paths([
        krew_tools().to_path_buf(),
        kubectl.parent().unwrap().to_path_buf(),
    ])
    .unwrap();
    let out = validate(&manifest, false, Some(&path));
    assert!(
        out.status.success(),
        "validate-krew-manifest failed:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("all 5 spec.platforms installed fine"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_new_version_starts_with_unfilled_checksums() {
    let (os, arch) = host_platform();
    let dist = tempfile::tempdir().unwrap();
    let manifest = dist.path().join(format!("{PLUGIN}.yaml"));
    let committed =
        std::fs::read_to_string(repo_root().join("krew").join(format!("{PLUGIN}.yaml"))).unwrap();
    // The manifest of an older release, with every checksum filled in.
    let old = committed.replace(&tag(), "v0.0.1").replace(
        ZERO_SHA,
        "1111111111111111111111111111111111111111111111111111111111111111",
    );
    std::fs::write(&manifest, old).unwrap();

    package(
        &stand_in(dist.path()),
        os,
        arch,
        dist.path(),
        Some(&manifest),
        None,
    );
    let m = read_manifest(&manifest);
    assert_eq!(m.spec.version, tag());
    for p in &m.spec.platforms {
        let (o, a) = (
            &p.selector.match_labels["os"],
            &p.selector.match_labels["arch"],
        );
        assert!(
            p.uri.contains(&format!(
                "/{}/kubectl-crucible-clean-{}-{o}-{a}.tar.gz",
                tag(),
                tag()
            )),
            "{}",
            p.uri
        );
        if o == os && a == arch {
            assert_ne!(p.sha256, ZERO_SHA);
            assert!(!p.sha256.starts_with("1111"));
        } else {
            assert_eq!(
                p.sha256, ZERO_SHA,
                "{o}/{a} keeps a checksum of the old version"
            );
        }
    }
    let out = validate(&manifest, true, None);
    assert!(out.status.success(), "{}", text(&out));
}
