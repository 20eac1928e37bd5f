//! The image and how deploy/ names it, checked from the files (no Docker engine
//! runs here): deploy/Dockerfile builds with Cargo.toml's rust-version, which
//! covers every dependency's; its image holds the binary alone on an empty
//! base and runs as the non-root user the manifests expect; its `release`
//! stage takes the binaries where the release workflow puts them; and
//! deploy/kustomization.yaml, the one place that names the published image,
//! lists every manifest of deploy/ and sets every container's image (the API
//! server's dry run of it: tests/deploy.rs). Pure: reads the files, runs
//! `kubectl kustomize` and `cargo metadata`.

mod support;
use support::commands::{kubectl, repo_root};

use std::process::{Command, Stdio};

use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Cargo.toml's `rust-version`.
fn rust_version() -> String {
    read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .map(|v| v.trim_end_matches('"').to_string())
        .expect("rust-version in Cargo.toml")
}

fn parse_version(v: &str) -> Vec<u64> {
    let mut n: Vec<u64> = v.split('.').map(|p| p.parse().unwrap()).collect();
    n.resize(3, 0);
    n
}

/// The Dockerfile's instructions (continuation lines joined, comments dropped).
fn dockerfile() -> Vec<String> {
    let text = read("deploy/Dockerfile");
    let mut out: Vec<String> = vec![];
    let mut cont = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        let (body, more) = match t.strip_suffix('\\') {
            Some(b) => (b.trim(), true),
            None => (t, false),
        };
        if cont {
            let last = out.last_mut().unwrap();
            last.push(' ');
            last.push_str(body);
        } else {
            out.push(body.to_string());
        }
        cont = more;
    }
    out
}

/// The value of `ARG NAME=value` before the first FROM.
fn global_arg(name: &str) -> String {
    dockerfile()
        .iter()
        .take_while(|i| !i.starts_with("FROM "))
        .find_map(|i| i.strip_prefix(&format!("ARG {name}=")).map(str::to_string))
        .unwrap_or_else(|| panic!("no ARG {name}= before the first FROM"))
}

#[test]
fn the_dockerfile_builds_with_the_crates_rust_version() {
    assert_eq!(
        global_arg("RUST_VERSION"),
        rust_version(),
        "deploy/Dockerfile's RUST_VERSION must be Cargo.toml's rust-version"
    );
    let froms: Vec<String> = dockerfile()
        .into_iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    assert!(
        froms.contains(&"FROM rust:${RUST_VERSION}-alpine AS source".to_string()),
        "{froms:?}"
    );
}

#[test]
fn rust_version_covers_every_dependency() {
    // A rust-version below a dependency's would make the image's build fail.
    // Every platform's dependencies (cargo may fetch the few a Linux build
    // did not need from the crates registry).
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours = parse_version(&rust_version());
    let mut needed = vec![];
    for p in meta["packages"].as_array().unwrap() {
        if let Some(v) = p["rust_version"].as_str() {
            if parse_version(v) > ours {
                needed.push(format!("{} {} needs Rust {v}", p["name"], p["version"]));
            }
        }
    }
    assert!(
        needed.is_empty(),
        "rust-version {} is too low: {needed:?}",
        rust_version()
    );
}

#[test]
fn the_image_is_the_binary_alone_run_as_non_root() {
    let ins = dockerfile();
    // Base images: Rust (the source build) and the empty one; the `binary`
    // stage is one of the two stages named by ARG BINARY.
    let stages: Vec<(String, Option<String>)> = ins
        .iter()
        .filter_map(|i| i.strip_prefix("FROM "))
        .map(|f| match f.split_once(" AS ") {
            Some((base, name)) => (base.to_string(), Some(name.to_string())),
            None => (f.to_string(), None),
        })
        .collect();
    for (base, name) in &stages {
        let named_stage = stages.iter().any(|(_, n)| n.as_deref() == Some(base));
        assert!(
            base == "scratch"
                || base == "rust:${RUST_VERSION}-alpine"
                || (base == "${BINARY}" && name.as_deref() == Some("binary"))
                || named_stage,
            "unexpected base image {base}"
        );
    }
    let binary = global_arg("BINARY");
    assert!(
        ["source", "release"].contains(&binary.as_str()),
        "ARG BINARY={binary}"
    );
    assert!(stages.iter().any(|(_, n)| n.as_deref() == Some("release")));

    // The final stage: the empty base, the binary, a numeric non-root user,
    // an exec-form entrypoint. Nothing runs in it (it has no shell).
    let last_from = ins.iter().rposition(|i| i.starts_with("FROM ")).unwrap();
    let last = &ins[last_from..];
    assert_eq!(last[0], "FROM scratch");
    assert_eq!(
        &last[1..],
        [
            "COPY --from=binary /out/kubectl-crucible-clean /usr/local/bin/kubectl-crucible-clean",
            "USER 65532:65532",
            "ENTRYPOINT [\"/usr/local/bin/kubectl-crucible-clean\"]",
        ]
    );
    // Both ways of making /out/kubectl-crucible-clean exist.
    assert!(ins.iter().any(|i| i.starts_with("RUN ")
        && i.contains("cargo build --release --locked --bin kubectl-crucible-clean")
        && i.contains("/out/kubectl-crucible-clean")));
    assert!(ins.contains(
        &"COPY dist/image/linux-${TARGETARCH}/kubectl-crucible-clean /out/kubectl-crucible-clean"
            .to_string()
    ));
}

#[test]
fn the_release_stage_takes_what_the_release_workflow_puts_there() {
    let release = read(".github/workflows/release.yml");
    assert!(release.contains("scripts/release-binary \"$wheel\" --out \"dist/image/linux-$arch\""));
    assert!(release.contains("for arch in amd64 arm64; do"));
    assert!(release.contains("file: deploy/Dockerfile"));
    assert!(release.contains("platforms: linux/amd64,linux/arm64"));
    assert!(release.contains("BINARY=release"));
    // The build context keeps dist/image/ and leaves out what is built here.
    let ignore: Vec<String> = read(".dockerignore").lines().map(str::to_string).collect();
    for line in ["target", "dist", "!dist/image", ".git"] {
        assert!(ignore.contains(&line.to_string()), ".dockerignore: {line}");
    }
}

/// The manifests of deploy/ other than the kustomization, by file name.
fn manifest_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("deploy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
        .collect();
    files.sort();
    files
}

fn kustomization() -> Value {
    serde_norway::from_str(&read("deploy/kustomization.yaml")).unwrap()
}

/// Every container (and init container) of `docs`, with its pod's spec.
fn containers(docs: &[Value]) -> Vec<(Value, Value)> {
    let mut out = vec![];
    for d in docs {
        let pod = match d["kind"].as_str() {
            Some("CronJob") => &d["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            Some("Deployment" | "Job" | "DaemonSet" | "StatefulSet") => {
                &d["spec"]["template"]["spec"]
            }
            Some("Pod") => &d["spec"],
            _ => continue,
        };
        for key in ["containers", "initContainers"] {
            for c in pod[key].as_array().into_iter().flatten() {
                out.push((pod.clone(), c.clone()));
            }
        }
    }
    out
}

fn yaml_docs(text: &str) -> Vec<Value> {
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_norway::from_str::<Value>(d).unwrap())
        .filter(|d| !d.is_null())
        .collect()
}

#[test]
fn the_kustomization_lists_every_manifest_and_names_the_image_once() {
    let k = kustomization();
    let resources: Vec<String> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    let mut sorted = resources.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        manifest_files(),
        "deploy/kustomization.yaml must list every manifest of deploy/"
    );
    let images = k["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
    let (name, new_name, tag) = (
        images[0]["name"].as_str().unwrap(),
        images[0]["newName"].as_str().unwrap(),
        images[0]["newTag"].as_str().unwrap(),
    );
    assert_eq!(
        tag,
        env!("CARGO_PKG_VERSION"),
        "newTag is Cargo.toml's version"
    );
    // Placeholders only: no registry host is written in the repository.
    assert_eq!(new_name, "REGISTRY/OWNER/crucible-clean");

    // The manifests name the image by its short name only: the full name is here.
    for f in manifest_files() {
        let docs = yaml_docs(&read(&format!("deploy/{f}")));
        for (_, c) in containers(&docs) {
            assert_eq!(c["image"], name, "deploy/{f}: {}", c["name"]);
        }
    }
    // The name the release workflow publishes to is read from here.
    let out = Command::new(repo_root().join("scripts/image-name"))
        .args(["--registry", "registry.example", "--owner", "Some-Org"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "registry.example/some-org/crucible-clean\n"
    );
    // An empty repository variable is an error, not an image without a registry.
    let out = Command::new(repo_root().join("scripts/image-name"))
        .args(["--registry", "", "--owner", "Some-Org"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_rendered_manifests_run_the_published_image_as_its_user() {
    let out = Command::new(kubectl())
        .args(["kustomize", "deploy"])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .output()
        .expect("kubectl kustomize");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = yaml_docs(&String::from_utf8_lossy(&out.stdout));
    let k = kustomization();
    let want = format!(
        "{}:{}",
        k["images"][0]["newName"].as_str().unwrap(),
        k["images"][0]["newTag"].as_str().unwrap()
    );
    let containers = containers(&docs);
    assert!(containers.len() >= 3, "{containers:?}");
    let (uid, gid) = image_user();
    for (pod, c) in containers {
        assert_eq!(c["image"], want.as_str(), "{}", c["name"]);
        // The image's USER, and kubelet refuses to start it as root.
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], uid);
        let group = &pod["securityContext"]["runAsGroup"];
        assert!(group.is_null() || *group == gid, "runAsGroup {group}");
    }
}

/// The uid and gid of the image's USER.
fn image_user() -> (u64, u64) {
    let user = dockerfile()
        .iter()
        .rev()
        .find_map(|i| i.strip_prefix("USER ").map(str::to_string))
        .unwrap();
    let (uid, gid) = user.split_once(':').unwrap();
    (uid.parse().unwrap(), gid.parse().unwrap())
}
