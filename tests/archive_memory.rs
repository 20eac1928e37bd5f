//! Benchmark, not run by `cargo test` (ignored; it prints figures and
//! asserts none): the peak memory of `--archive` for a finished Job with one
//! pod, then with 24 pods, each pod's log 4 MiB (`--archive-log-bytes 4Mi`).
//! An archive streams each log to disk, so the 24-pod peak should be about
//! the 1-pod peak. Run it against the local control plane:
//!
//!   CRUCIBLE_TEST_CLUSTER=DIR cargo test --release --test archive_memory -- --ignored --nocapture
//!
//! `CRUCIBLE_BENCH_BINARIES=A:B` measures other builds of the plugin too
//! (e.g. one of an older commit), each on the same objects made anew.

mod support;

use std::path::PathBuf;
use std::process::Command;

use kube::api::PostParams;
use serde_json::json;
use support::{cluster::*, commands::*, logs::*, objects::*};

const LOG_BYTES: usize = 4 << 20;

/// A finished Job of `pods` pods, each serving a log of a little more than
/// 4 MiB; its test id.
async fn job_with_logs(ns: &TestNamespace, pods: usize, files: &std::path::Path) -> String {
    let tid = unique_name("mem");
    let mut job = EvalJob::succeeding(&unique_name("e"))
        .test_id(&tid)
        .to_job();
    if let Some(spec) = job.spec.as_mut() {
        spec.completions = Some(pods as i32);
        spec.parallelism = Some(pods as i32);
    }
    let name = job.metadata.name.clone().unwrap();
    ns.jobs()
        .create(&PostParams::default(), &job)
        .await
        .unwrap_or_else(|e| panic!("create job: {e}"));
    ns.wait_job_complete(&name).await;
    let line = format!("{}\n", "x".repeat(99));
    let text = line.repeat(LOG_BYTES / line.len() + 100);
    let mut pods_done = ns.wait_job_pods_phase(&name, "Succeeded").await;
    while pods_done.len() < pods {
        pods_done = ns.wait_job_pods_phase(&name, "Succeeded").await;
    }
    for pod in pods_done {
        let pod = pod.metadata.name.unwrap();
        serve_logs(
            &ns.client(),
            ns.name(),
            &pod,
            files,
            &[ContainerLog {
                container: "evaluation",
                current: &text,
                previous: None,
            }],
        )
        .await;
    }
    tid
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run it by name with --ignored"]
async fn archive_peak_memory_of_a_job_with_1_and_24_pods() {
    let binaries: Vec<PathBuf> = match std::env::var("CRUCIBLE_BENCH_BINARIES") {
        Ok(list) if !list.is_empty() => list.split(':').map(PathBuf::from).collect(),
        _ => vec![plugin_binary()],
    };
    for pods in [1usize, 24] {
        for bin in &binaries {
            let ns = TestNamespace::new("archive-memory").await;
            let files = tempfile::tempdir().unwrap();
            let tid = job_with_logs(&ns, pods, files.path()).await;
            let archive = tempfile::tempdir().unwrap();
            let out = Command::new("/usr/bin/time")
                .args(["-f", "%M"])
                .arg(bin)
                .args([
                    "-n",
                    ns.name(),
                    "--test-id",
                    &tid,
                    "--level",
                    "all",
                    "--yes",
                ])
                .args(["--archive", archive.path().to_str().unwrap()])
                .args(["--archive-log-bytes", "4Mi", "-o", "json"])
                .env("KUBECONFIG", kubeconfig_path())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{err}");
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            // The job goes, its pods with it (each archived).
            assert_eq!(report["summary"]["deleted"], json!(1), "{report}");
            let archived = walk(archive.path())
                .filter(|p| p.ends_with("archive.json"))
                .count();
            assert_eq!(archived, 1 + pods);
            let kib: u64 = err.lines().last().unwrap().trim().parse().unwrap();
            let logs: u64 = walk(archive.path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .map(|p| std::fs::metadata(p).unwrap().len())
                .sum();
            println!(
                "archive of a job with {pods:2} pods ({:.1} MiB of logs): peak RSS {:.1} MiB  [{}]",
                logs as f64 / (1 << 20) as f64,
                kib as f64 / 1024.0,
                bin.display()
            );
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> impl Iterator<Item = PathBuf> {
    let mut out = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.into_iter()
}
