//! The policy file's `beforeDelete` hooks: one process per object, with the
//! object's JSON on stdin and a cleared environment: `PATH`, `HOME`, `LANG`,
//! the object's `CRUCIBLE_*` variables and the variables its `env:` lists.
//! Exit 0 lets the delete go on; exit 1 keeps the object (the first line of
//! its stderr is the reason); any other exit, a signal, a timeout (the whole
//! process group is killed) or a program that cannot start keeps it too and
//! counts as a failure. Its stdout is discarded. Once it has exited, what
//! it left running in its process group is killed too. How many run at
//! once is the caller's bound (`--concurrency`, see `predelete`).

use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::request::predelete::Hook;

/// How much of a hook's stderr is kept (the rest is read and dropped).
const STDERR_KEPT: usize = 64 * 1024;
/// After a hook exits, how long its stderr may stay open (held by a child it
/// left behind) before we stop reading it.
const STDERR_AFTER_EXIT: Duration = Duration::from_millis(500);
/// The longest reason taken from a hook's stderr.
const REASON_CHARS: usize = 300;

/// What a hook said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Exit 0: the delete goes on.
    Proceed,
    /// Exit 1: keep the object; the first line of its stderr.
    Veto(String),
    /// Anything else: keep the object and count a failure; what happened.
    Failed(String),
}

/// What a hook's environment takes from the cleaner's own, besides the
/// names its policy lists (`env:`); everything else (kubeconfig paths,
/// tokens, cloud credentials) stays out.
#[cfg(not(windows))]
pub(crate) const INHERITED: &[&str] = &["PATH", "HOME", "LANG"];
/// (Windows programs also need where the system is.)
#[cfg(windows)]
pub(crate) const INHERITED: &[&str] = &["PATH", "HOME", "LANG", "SYSTEMROOT", "PATHEXT"];

/// The hook's environment: [`INHERITED`] and the listed names where the
/// cleaner has them, then the `CRUCIBLE_*` variables `env`.
fn environment(hook: &Hook, env: &[(String, String)]) -> Vec<(String, OsString)> {
    let mut out: Vec<(String, OsString)> = INHERITED
        .iter()
        .map(|k| k.to_string())
        .chain(hook.env.iter().cloned())
        .filter_map(|k| std::env::var_os(&k).map(|v| (k, v)))
        .collect();
    out.extend(env.iter().map(|(k, v)| (k.clone(), v.into())));
    out
}

/// Runs `hook` once with `stdin` and the `CRUCIBLE_*` variables `env`.
pub(crate) async fn run(hook: &Hook, env: &[(String, String)], stdin: Vec<u8>) -> Answer {
    let program = &hook.command[0];
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&hook.command[1..])
        .env_clear()
        .envs(environment(hook, env))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Answer::Failed(format!("hook {program} could not start: {e}")),
    };
    // Killed as a group when this future is dropped (a stop), times out or
    // exits: what it started in the background does not outlive it.
    let mut group = Group::of(&child);

    let feed = child.stdin.take().map(|mut pipe| {
        tokio::spawn(async move {
            // A hook need not read its stdin: a closed pipe is no error.
            let _ = pipe.write_all(&stdin).await;
        })
    });
    let (tx, mut rx) = tokio::sync::watch::channel(Vec::<u8>::new());
    let drain = child.stderr.take().map(|mut pipe| {
        tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tx.send_modify(|kept| {
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                });
            }
        })
    });

    let exited = tokio::time::timeout(hook.timeout, group.exited(&mut child)).await;
    if let Some(f) = feed {
        f.abort();
    }
    // The leader has exited but is not reaped yet (or still runs): its
    // process group cannot have been reused, so killing it is safe.
    group.kill();
    let status = match exited {
        Err(_) => {
            let _ = child.kill().await;
            group.reap().await;
            return Answer::Failed(format!(
                "hook {program} timed out after {}s and was killed",
                hook.timeout.as_secs()
            ));
        }
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => child.wait().await,
    };
    group.reap().await;
    let status = match status {
        Ok(s) => s,
        Err(e) => return Answer::Failed(format!("hook {program}: {e}")),
    };
    if let Some(d) = drain {
        // Only a process that left the group (setsid) can still hold it.
        let abort = d.abort_handle();
        if tokio::time::timeout(STDERR_AFTER_EXIT, d).await.is_err() {
            abort.abort();
        }
    }
    let line = first_line(&rx.borrow_and_update());
    match status.code() {
        Some(0) => Answer::Proceed,
        Some(1) => Answer::Veto(
            line.unwrap_or_else(|| format!("{program} exited 1 without a message on stderr")),
        ),
        Some(code) => Answer::Failed(format!(
            "hook {program} exited {code}{}",
            line.map(|l| format!(": {l}")).unwrap_or_default()
        )),
        None => Answer::Failed(format!(
            "hook {program} was killed by {}",
            signal_name(&status)
        )),
    }
}

/// The first non-empty line of `stderr`, trimmed and shortened.
fn first_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(if line.chars().count() > REASON_CHARS {
        line.chars().take(REASON_CHARS).collect::<String>() + "…"
    } else {
        line.to_string()
    })
}

#[cfg(unix)]
fn signal_name(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGKILL) => "signal 9 (SIGKILL)".into(),
        Some(libc::SIGSEGV) => "signal 11 (SIGSEGV)".into(),
        Some(libc::SIGABRT) => "signal 6 (SIGABRT)".into(),
        Some(libc::SIGTERM) => "signal 15 (SIGTERM)".into(),
        Some(n) => format!("signal {n}"),
        None => "an unknown cause".into(),
    }
}

#[cfg(not(unix))]
fn signal_name(_: &std::process::ExitStatus) -> String {
    "an unknown cause".into()
}

/// The hook's process group (its id is the hook's pid): killed as a whole
/// once the hook has exited, on a timeout, or when dropped (a stop).
///
/// Reaping: the hook itself is reaped by tokio. The other members of its
/// group are reaped here only when they are our children, which happens
/// when the cleaner is PID 1 of its container (orphans are re-parented to
/// it); by process group, never with a blanket `waitpid(-1)`, which could
/// take the exit status of a child tokio waits for. A process that leaves
/// the group (`setsid`, `setpgid`) escapes both the kill and this reaping:
/// in a pod, `shareProcessNamespace: true` makes the pause process PID 1,
/// and it reaps whatever is left.
struct Group {
    /// The group's id: the hook's pid.
    id: Option<u32>,
    armed: bool,
}

impl Group {
    fn of(child: &tokio::process::Child) -> Self {
        Group {
            id: child.id(),
            armed: true,
        }
    }

    /// Until the hook has exited, without reaping it (so that its pid, the
    /// group's id, stays taken until the group is killed).
    async fn exited(&self, child: &mut tokio::process::Child) -> std::io::Result<()> {
        #[cfg(unix)]
        if let Some(pid) = self.id {
            let _ = child;
            return tokio::task::spawn_blocking(move || wait_unreaped(pid))
                .await
                .map_err(std::io::Error::other)?;
        }
        child.wait().await.map(|_| ())
    }

    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.id.filter(|_| self.armed).and_then(pid_of) {
            // ESRCH: the group is empty already.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        self.armed = false;
    }

    /// Reaps the members of the group (killed already) that are our
    /// children: none unless the cleaner is PID 1 of its container.
    async fn reap(&self) {
        #[cfg(unix)]
        if let Some(pid) = self.id.and_then(pid_of) {
            use rustix::process::{waitpgid, WaitOptions};
            // ECHILD: none (left) of ours.
            let _ = tokio::task::spawn_blocking(move || {
                while matches!(
                    waitpgid(pid, WaitOptions::empty()),
                    Ok(_) | Err(rustix::io::Errno::INTR)
                ) {}
            })
            .await;
        }
    }
}

#[cfg(unix)]
fn pid_of(id: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(id).ok()?)
}

/// Blocks until process `pid` (our child) has exited, leaving it unreaped.
#[cfg(unix)]
fn wait_unreaped(pid: u32) -> std::io::Result<()> {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    let pid = pid_of(pid).ok_or_else(|| std::io::Error::other("no pid"))?;
    loop {
        match waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests;
