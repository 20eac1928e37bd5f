//! Running the plugin and reading what it printed.
//!
//! [`PluginCmd`] is the one way to run the plugin binary ([`plugin_binary`]). It needs
//! no cluster: [`PluginCmd::new`] gives it a temp HOME and a `KUBECONFIG` that does not
//! exist, so nothing from the developer's environment is ever contacted. Add the
//! shared cluster with [`PluginCmd::on_cluster`] (or use `TestNamespace::plugin`), or
//! any kubeconfig with [`PluginCmd::kubeconfig`].
//!
//! Run it to the end with [`PluginCmd::output`], or in the background with
//! [`PluginCmd::spawn`] to signal it ([`Running`]).

// rustc judges dead code per test binary, and every test binary compiles this whole
// module while using only part of it (see mod.rs).
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cluster::kubeconfig_path;

/// The plugin binary cargo built for these tests.
pub fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-crucible-clean"))
}

/// The repository root (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kubectl on this process's PATH (`KUBECTL` overrides).
pub fn kubectl() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECTL").filter(|k| !k.is_empty()) {
        return PathBuf::from(k);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl is needed on PATH for these tests")
}

/// Makes `link` a symlink to `target`, a file in the same directory (a copy where
/// there are no symlinks).
pub fn link_beside(link: &Path, target: &str) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link).expect("symlink");
    #[cfg(not(unix))]
    std::fs::copy(link.with_file_name(target), link).expect("copy");
}

// ------------------------------------------------------------------------------------------
// The command
// ------------------------------------------------------------------------------------------

/// A command line for the plugin binary, with its own HOME (and XDG dirs inside it).
pub struct PluginCmd {
    /// A program the plugin runs under (e.g. a terminal driver) and its arguments.
    wrapper: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    current_dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    /// The temp HOME made by [`PluginCmd::new`]; shared with the processes it runs.
    own_home: Option<Arc<tempfile::TempDir>>,
}

impl Default for PluginCmd {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginCmd {
    /// The plugin with a fresh temp HOME and `KUBECONFIG` naming a file that does not
    /// exist: for runs that must never reach a cluster.
    pub fn new() -> Self {
        let home = tempfile::Builder::new()
            .prefix("crucible-home-")
            .tempdir()
            .expect("temp HOME for the plugin");
        let mut cmd = Self::with_home(home.path());
        cmd.own_home = Some(Arc::new(home));
        cmd
    }

    /// As [`PluginCmd::new`] with HOME = `home`, a directory the caller keeps.
    pub fn with_home(home: &Path) -> Self {
        let mut cmd = PluginCmd {
            wrapper: vec![],
            args: vec![],
            env: vec![],
            current_dir: None,
            stdin: None,
            timeout: None,
            own_home: None,
        };
        cmd.env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env_remove("XDG_STATE_HOME")
            .env_remove("XDG_DATA_HOME")
            .env("KUBECONFIG", home.join("no-kubeconfig"));
        cmd
    }

    /// `KUBECONFIG` = the shared cluster's kubeconfig (starting the cluster if needed).
    pub fn on_cluster(&mut self) -> &mut Self {
        self.kubeconfig(kubeconfig_path())
    }

    /// `KUBECONFIG` = `path` (one file, or several joined as for PATH).
    pub fn kubeconfig(&mut self, path: impl AsRef<OsStr>) -> &mut Self {
        self.env("KUBECONFIG", path)
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// What the plugin reads on stdin (a pipe). Without it, stdin is /dev/null.
    pub fn write_stdin(&mut self, input: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Some(input.into());
        self
    }

    /// [`PluginCmd::output`] kills the plugin once it has run this long.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs the plugin under `program` with `before` as its first arguments:
    /// `program BEFORE… PLUGIN ARGS…`, in the plugin's environment.
    pub fn under<I, S>(&mut self, program: impl AsRef<OsStr>, before: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.wrapper = std::iter::once(program.as_ref().to_os_string())
            .chain(before.into_iter().map(|a| a.as_ref().to_os_string()))
            .collect();
        self
    }

    /// The command as a `std::process::Command` (stdio not set).
    pub fn command(&self) -> Command {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, before)) => {
                let mut c = Command::new(program);
                c.args(before).arg(plugin_binary());
                c
            }
            None => Command::new(plugin_binary()),
        };
        cmd.args(&self.args);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = &self.current_dir {
            cmd.current_dir(d);
        }
        cmd
    }

    /// Runs the plugin to the end (or until the timeout, then killed) and returns
    /// what it printed.
    pub fn output(&mut self) -> Output {
        let limit = self.timeout.unwrap_or(Duration::MAX);
        let (status, stdout, stderr, _, _) = self.spawn().finish(limit);
        Output {
            status,
            stdout,
            stderr,
        }
    }

    /// Runs the plugin and parses its stdout as JSON (add `-o json`); returns the exit
    /// code, the parsed report and stderr. Panics when stdout is not JSON.
    pub fn output_json(&mut self) -> (i32, Value, String) {
        let out = self.output();
        let report = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(&out), stderr(&out)));
        (out.status.code().unwrap_or(-1), report, stderr(&out))
    }

    /// Starts the plugin in the background, stdout and stderr read as it goes.
    pub fn spawn(&mut self) -> Running {
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
        let stdin = match (child.stdin.take(), self.stdin.clone()) {
            (Some(mut pipe), Some(input)) => Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            })),
            _ => None,
        };
        let (tx, stdout) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if tx.send(line).is_err() => break,
                    Ok(_) => {}
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err.read_to_end(&mut buf);
            buf
        });
        Running {
            child: Some(child),
            started,
            stdin,
            stdout,
            stderr: Some(stderr),
            _home: self.own_home.clone(),
        }
    }
}

// ------------------------------------------------------------------------------------------
// A plugin in the background
// ------------------------------------------------------------------------------------------

/// How a background run ended.
#[derive(Debug)]
pub struct Finished {
    /// None when killed by a signal (e.g. after the limit of [`Running::wait`]).
    pub code: Option<i32>,
    /// Since the start.
    pub elapsed: Duration,
    /// True if it had to be killed because it ran longer than the limit.
    pub killed: bool,
    /// What it printed on stdout (except lines already taken by [`Running::stdout_line`]).
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Stdout parsed as JSON (a report); panics with both streams when it is not.
    pub fn report(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a JSON report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
                self.code, self.stdout, self.stderr
            )
        })
    }
}

/// A plugin process running in the background; killed if dropped while running.
pub struct Running {
    child: Option<Child>,
    started: Instant,
    stdin: Option<JoinHandle<()>>,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    _home: Option<Arc<tempfile::TempDir>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// True once the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(
            self.child.as_mut().expect("running").try_wait(),
            Ok(Some(_))
        )
    }

    /// Sends `sig` (e.g. "INT", "TERM") to the process.
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// The next line of stdout without its line end, waiting for it; None at the end.
    pub fn stdout_line(&mut self) -> Option<String> {
        let line = self.stdout.recv().ok()?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\n').unwrap_or(&line);
        Some(line.strip_suffix('\r').unwrap_or(line).to_string())
    }

    /// The next line of stdout, waiting at most `limit`: None when none came
    /// (or at the end).
    pub fn stdout_line_within(&mut self, limit: Duration) -> Option<String> {
        let line = self.stdout.recv_timeout(limit).ok()?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\n').unwrap_or(&line);
        Some(line.strip_suffix('\r').unwrap_or(line).to_string())
    }

    /// Waits for the exit; kills the process once it has run `limit` since its start
    /// (then `killed`).
    pub fn wait(self, limit: Duration) -> Finished {
        let (status, stdout, stderr, elapsed, killed) = self.finish(limit);
        Finished {
            code: status.code(),
            elapsed,
            killed,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<u8>, Vec<u8>, Duration, bool) {
        let mut child = self.child.take().expect("running");
        if let Some(t) = self.stdin.take() {
            let _ = t.join();
        }
        let mut killed = false;
        let status = if limit == Duration::MAX {
            child.wait().expect("wait for the plugin")
        } else {
            loop {
                if let Some(status) = child.try_wait().expect("wait for the plugin") {
                    break status;
                }
                if self.started.elapsed() >= limit {
                    killed = true;
                    let _ = child.kill();
                    break child.wait().expect("wait for the killed plugin");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let elapsed = self.started.elapsed();
        let stdout = self.stdout.iter().flatten().collect();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status, stdout, stderr, elapsed, killed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `sig` (e.g. "INT", "STOP") to process `pid` with kill(1); panics if that fails.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill -{sig} {pid}");
}

// ------------------------------------------------------------------------------------------
// Output
// ------------------------------------------------------------------------------------------

/// The exit code (None when killed by a signal).
pub fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The item (row) of a CleanupReport named `name`; panics if there is none.
pub fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["items"]
        .as_array()
        .expect("a CleanupReport has items")
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {report}"))
}

/// The sorted names of a CleanupReport's items for which `pred` holds.
pub fn names_where(report: &Value, pred: impl Fn(&Value) -> bool) -> Vec<String> {
    let mut v: Vec<String> = report["items"]
        .as_array()
        .expect("a CleanupReport has items")
        .iter()
        .filter(|i| pred(i))
        .map(|i| i["name"].as_str().expect("an item has a name").to_string())
        .collect();
    v.sort();
    v
}
