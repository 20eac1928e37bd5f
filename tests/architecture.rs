//! The module structure stays one-way (docs/architecture.md): each module of
//! `src/` may use only the modules of earlier layers and its own layer's
//! shared vocabulary, so the dependency graph has no cycles and a reader can
//! follow the pipeline top to bottom. Also: no source file over 500 lines
//! without a reason stated at its top. Pure: reads the sources only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Layers from the top; a module may use modules of strictly lower layers
/// (larger index). `crate` is lib.rs and main.rs.
const LAYERS: &[&[&str]] = &[
    &["crate"],
    &["pipeline"],
    &["metrics"],
    &["completion"],
    &["report"],
    &["execute"],
    // The step before each delete (archive, then hook), and its two parts.
    &["predelete"],
    &["archive", "hooks"],
    &["gate"],
    &["planfile"],
    &["plan"],
    &["select"],
    &["inventory"],
    &["client"],
    &["request"],
    // Shared vocabulary, used by every stage: quota arithmetic and retries,
    // the flag types of the command line, the domain records.
    &["quota", "retry", "concurrency"],
    &["cli"],
    &[
        "model", "selector", "duration", "quantity", "stop", "log", "error", "memory",
    ],
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module {module} is in no layer of tests/architecture.rs"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    if name == "lib" || name == "main" {
        "crate".into()
    } else {
        name
    }
}

/// The top-level modules a file names with `crate::X` (also in `crate::{X, Y}`).
fn uses(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = vec![];
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let modules: Vec<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, module) in files.iter().zip(&modules) {
        let text = std::fs::read_to_string(file).unwrap();
        let from = layer_of(module);
        for used in uses(&text) {
            if used == *module || !modules.contains(&used) {
                continue;
            }
            let to = layer_of(&used);
            let same_shared_layer = from == to && from >= layer_of("quota");
            if to <= from && !same_shared_layer {
                wrong
                    .entry(file.strip_prefix(&src).unwrap().display().to_string())
                    .or_default()
                    .push(format!("{module} -> {used}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules that use a module of their own or a higher layer (see docs/architecture.md): {wrong:#?}"
    );
}

#[test]
fn no_source_file_is_over_500_lines_without_a_reason() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let n = text.lines().count();
            let reasoned = text
                .lines()
                .take_while(|l| l.starts_with("//!"))
                .any(|l| l.contains("Longer than 500 lines because"));
            (n > 500 && !reasoned).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these or state why at the top: {long:?}"
    );
}

/// The code of a source file without its unit tests (a `#[cfg(test)]` module
/// at the end, or a file of tests) and without comments.
fn code_of(file: &Path) -> String {
    let name = file.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(file).unwrap();
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every delete of a pod or job goes through one chokepoint (issue 19):
/// `execute::Deleter::delete` applies the whole rule set to the freshest copy
/// and sends the delete with uid and resourceVersion preconditions. So the
/// crate has exactly one place that builds a delete request of a pod or job
/// (`delete_request`), called from one place (`Deleter::send`), itself called
/// from one place (`Deleter::delete`); the only other deletes are of the
/// guard's own Leases. A second call site fails here.
#[test]
fn one_call_site_sends_the_delete_of_a_pod_or_job() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap().display().to_string();
        // A call of the chokepoint itself is no delete request.
        let code = code_of(file).replace("deleter.delete(", "deleter.chokepoint(");
        for needle in [
            ".delete(",
            ".delete_opt(",
            "delete_collection(",
            "Method::DELETE",
            "\"DELETE\"",
            // An eviction deletes a pod too.
            ".evict(",
            "eviction",
            "create_subresource(",
            "delete_request(",
            "self.send(",
        ] {
            let n = code.matches(needle).count();
            if n > 0 {
                found
                    .entry(rel.clone())
                    .or_default()
                    .push(format!("{needle} x{n}"));
            }
        }
    }
    let expected: BTreeMap<String, Vec<String>> = [
        (
            // `fn delete_request(` defines it, `.delete(` is its one request,
            // `delete_request(` its one call (in `send`), `.send(` the one call
            // of `send` (in `delete`).
            "execute/delete.rs",
            vec![".delete( x1", "delete_request( x2", "self.send( x1"],
        ),
        // The guard's Lease: released by the guard, removed after a stale run.
        ("execute/lease.rs", vec![".delete( x2"]),
    ]
    .into_iter()
    .map(|(f, v)| (f.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        found, expected,
        "a delete request outside the chokepoint (execute/delete.rs)?"
    );
    let lease = code_of(&src.join("execute/lease.rs"));
    assert!(
        lease.contains("Api<Lease>") && !lease.contains("Api<Pod>") && !lease.contains("Api<Job>"),
        "execute/lease.rs deletes Leases only"
    );
}
