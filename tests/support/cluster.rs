//! The control plane: the shared one of this test binary ([`cluster`]), private ones
//! ([`PrivateCluster`]), their kubeconfigs, API clients and kubectl on them.

// rustc judges dead code per test binary, and every test binary compiles this whole
// module while using only part of it (see mod.rs).
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Write;
use std::ops::Deref;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::commands::{kubectl, repo_root};

/// Environment variable naming a running cluster directory (made by `tests/cluster/up DIR`).
pub const CLUSTER_ENV: &str = "CRUCIBLE_TEST_CLUSTER";
/// The namespace `up` creates; `ci-runner` may only act here.
pub const CRUCIBLE_NAMESPACE: &str = "crucible";
/// Contexts in the cluster's kubeconfig.
pub const ADMIN_CONTEXT: &str = "admin";
pub const CI_RUNNER_CONTEXT: &str = "ci-runner";
pub const VIEWER_CONTEXT: &str = "viewer";
/// User names (client-certificate CNs) as they appear in the audit log.
pub const ADMIN_USER: &str = "admin";
pub const CI_RUNNER_USER: &str = "ci-runner";
pub const VIEWER_USER: &str = "viewer";
pub const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";
pub const SCHEDULER_USER: &str = "system:kube-scheduler";
pub const KWOK_USER: &str = "system:kwok-controller";
/// User agent of the clients made by this module (see `AuditFilter`).
pub const SUPPORT_USER_AGENT: &str = "crucible-test-support";

/// A running control plane.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    owned: bool,
}

impl Cluster {
    /// `DIR/kubeconfig`: contexts admin (current), ci-runner, viewer; namespace crucible.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    /// `DIR/audit.log`: the API server's audit log (JSON lines).
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }
    /// The pid of `component` (e.g. "kube-apiserver").
    pub fn pid(&self, component: &str) -> u32 {
        component_pid(&self.dir, component)
    }
    /// A client for `context` of this cluster, sending `user_agent`.
    pub async fn client_with(&self, context: &str, user_agent: &str) -> Client {
        client_at(&self.kubeconfig(), context, user_agent).await
    }
    /// An admin (system:masters) client (user agent [`SUPPORT_USER_AGENT`]).
    pub async fn admin_client(&self) -> Client {
        self.client_with(ADMIN_CONTEXT, SUPPORT_USER_AGENT).await
    }
    /// Kills `component` (SIGKILL) and waits until it is gone; [`Killed::start`]
    /// starts it again as `up` did. Only for a [`PrivateCluster`]: the shared one
    /// serves every other test.
    pub fn kill(&self, component: &str) -> Killed {
        let pid = self.pid(component);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("command line of {component} (pid {pid}): {e}"));
        let argv: Vec<OsString> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect();
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        // Gone, or a zombie its parent has not reaped yet.
        while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        }) {
            assert!(
                Instant::now() < deadline,
                "{component} (pid {pid}) survived SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Killed {
            dir: self.dir.clone(),
            component: component.to_string(),
            argv,
        }
    }
}

/// A component [`Cluster::kill`] stopped, with what starts it again.
#[derive(Debug)]
pub struct Killed {
    dir: PathBuf,
    component: String,
    argv: Vec<OsString>,
}

impl Killed {
    /// Starts the component again with its command line, in a session of its own,
    /// appending to its log; returns its pid (also written to its pid file, so that
    /// `down` stops it).
    pub fn start(self) -> u32 {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(
                self.dir
                    .join("logs")
                    .join(format!("{}.log", self.component)),
            )
            .expect("the component's log");
        let child = Command::new("setsid")
            .args(&self.argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} again: {e}", self.component));
        let pid = child.id();
        std::fs::write(
            self.dir
                .join("pids")
                .join(format!("{}.pid", self.component)),
            format!("{pid}\n"),
        )
        .expect("write the pid file");
        // Not waited for: `down` stops it like the others.
        drop(child);
        pid
    }
}

/// The pid in `DIR/pids/<component>.pid` of a cluster directory.
pub fn component_pid(dir: &Path, component: &str) -> u32 {
    let f = dir.join("pids").join(format!("{component}.pid"));
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("pid file of {component} ({}): {e}", f.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid file of {component} ({}): {e}", f.display()))
}

/// `tests/cluster/<script>` in this repository.
pub fn cluster_script(script: &str) -> PathBuf {
    repo_root().join("tests").join("cluster").join(script)
}

// ------------------------------------------------------------------------------------------
// The shared cluster
// ------------------------------------------------------------------------------------------

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// The cluster of this test binary, started on first use. Panics (failing the test)
/// with the reason and the failing component's log tail if it cannot be started.
pub fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start_or_reuse_cluster) {
        Ok(c) => c,
        Err(e) => panic!("test cluster unavailable: {e}"),
    }
}

/// True if the shared cluster is one named by [`CLUSTER_ENV`] (not started here).
pub fn cluster_is_external() -> bool {
    matches!(CLUSTER.get(), Some(Ok(c)) if !c.owned)
}

/// Path of the cluster's kubeconfig (starts the cluster if needed).
pub fn kubeconfig_path() -> PathBuf {
    cluster().kubeconfig()
}

fn start_or_reuse_cluster() -> Result<Cluster, String> {
    if let Some(dir) = std::env::var_os(CLUSTER_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let dir = dir
            .canonicalize()
            .map_err(|e| format!("{CLUSTER_ENV}={}: {e}", dir.display()))?;
        if !dir.join("kubeconfig").is_file() {
            return Err(format!(
                "{CLUSTER_ENV}={}: no kubeconfig there; start it with tests/cluster/up {}",
                dir.display(),
                dir.display()
            ));
        }
        return Ok(Cluster { dir, owned: false });
    }
    start_cluster("crucible-cluster-")
}

/// Starts a cluster in a new temp dir named `prefix…`, torn down by a watchdog once
/// this process has exited (or earlier by its owner).
fn start_cluster(prefix: &str) -> Result<Cluster, String> {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir for the cluster: {e}"))?
        .keep();
    // The watchdog first: whatever happens from here on (failed start, panic, abort),
    // `down` runs once this process is gone. It lives in its own session so that a
    // terminal's Ctrl-C does not take it down together with the tests.
    let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3""#;
    Command::new("setsid")
        .args(["sh", "-c", script, "crucible-cluster-watchdog"])
        .arg(std::process::id().to_string())
        .arg(cluster_script("down"))
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        // Not waited for: it outlives this process on purpose.
        .map(drop)
        .map_err(|e| format!("cannot spawn the cluster watchdog (setsid sh): {e}"))?;

    let started = Instant::now();
    let run_up = || {
        Command::new(cluster_script("up"))
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run tests/cluster/up: {e}"))
    };
    let mut out = run_up()?;
    // Ports are picked free but released before the components bind them: another
    // cluster starting at the same moment may take one. Try once more in that case.
    if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("address already in use")
    {
        eprintln!("support: port collision while starting the cluster; retrying once");
        out = run_up()?;
    }
    if !out.status.success() {
        return Err(format!(
            "tests/cluster/up {} failed ({}) after {:.1}s (the directory is removed when the \
             tests end; set CRUCIBLE_CLUSTER_KEEP_LOGS=1 to keep its logs):\n{}{}",
            dir.display(),
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!(
        "support: started test cluster in {} ({:.1}s)",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(Cluster { dir, owned: true })
}

// ------------------------------------------------------------------------------------------
// Private clusters
// ------------------------------------------------------------------------------------------

/// A cluster of one test's own (`tests/cluster/up` into a temp dir), for tests that
/// would disturb the shared one. Stopped with `tests/cluster/down` when dropped (also
/// on panic), and by a watchdog if this process dies first.
#[derive(Debug)]
pub struct PrivateCluster(Cluster);

impl PrivateCluster {
    /// Starts it (about 6 s; blocking). Panics if it cannot be started.
    pub fn start() -> Self {
        match start_cluster("crucible-private-") {
            Ok(c) => PrivateCluster(c),
            Err(e) => panic!("private cluster: {e}"),
        }
    }
}

impl Deref for PrivateCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.0
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script("down"))
            .arg(&self.0.dir)
            .stdin(Stdio::null())
            .output();
    }
}

// ------------------------------------------------------------------------------------------
// Kubeconfigs, clients, kubectl
// ------------------------------------------------------------------------------------------

/// A copy of the shared cluster's kubeconfig in `dir`, pointed at `server` (same
/// credentials).
pub fn kubeconfig_with_server(dir: &Path, server: &str) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig_path()).expect("read the kubeconfig");
    let start = text.find("server:").expect("a server line");
    let line_end = text[start..].find('\n').expect("a whole line") + start;
    let patched = format!("{}server: {}{}", &text[..start], server, &text[line_end..]);
    let path = dir.join("elsewhere.kubeconfig");
    std::fs::write(&path, patched).expect("write the kubeconfig");
    path
}

/// A client for `context` of the kubeconfig at `path`, sending `user_agent`.
pub async fn client_at(path: &Path, context: &str, user_agent: &str) -> Client {
    let kc = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("cannot read kubeconfig {}: {e}", path.display()));
    let opts = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {} context {context}: {e}", path.display()));
    config.headers.push((
        "user-agent".parse().expect("header name"),
        user_agent
            .parse()
            .expect("user agent must be a valid header value"),
    ));
    Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client for {context}: {e}"))
}

/// A client for `context` of the shared cluster's kubeconfig, sending `user_agent`.
pub async fn client_with(context: &str, user_agent: &str) -> Client {
    client_at(&kubeconfig_path(), context, user_agent).await
}

/// A client for `context` of the shared cluster (user agent [`SUPPORT_USER_AGENT`]).
pub async fn client_for(context: &str) -> Client {
    client_with(context, SUPPORT_USER_AGENT).await
}

/// An admin (system:masters) client of the shared cluster.
pub async fn admin_client() -> Client {
    client_for(ADMIN_CONTEXT).await
}

/// kubectl on the shared cluster as `context` (`--request-timeout 20s`), `stdin` piped in.
pub fn kubectl_as(context: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(["--context", context, "--request-timeout", "20s"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write kubectl's stdin");
    drop(input);
    child.wait_with_output().expect("kubectl output")
}
