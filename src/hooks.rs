//! The policy file's `beforeDelete` hooks: one process per object, with the
//! object's JSON on stdin and `CRUCIBLE_*` variables in its environment.
//! Exit 0 lets the delete go on; exit 1 keeps the object (the first line of
//! its stderr is the reason); any other exit, a signal, a timeout (the whole
//! process group is killed) or a program that cannot start keeps it too and
//! counts as a failure. Its stdout is discarded. How many run at once is the
//! caller's bound (`--concurrency`, see `predelete`).

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

/// Runs `hook` once with `stdin` and the extra environment `env`.
pub(crate) async fn run(hook: &Hook, env: &[(String, String)], stdin: Vec<u8>) -> Answer {
    let program = &hook.command[0];
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&hook.command[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
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
    // Killed as a group when this future is dropped (a stop) or times out.
    let mut group = Group(child.id());

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

    let status = tokio::time::timeout(hook.timeout, child.wait()).await;
    if let Some(f) = feed {
        f.abort();
    }
    match status {
        Err(_) => {
            group.kill();
            let _ = child.kill().await;
            Answer::Failed(format!(
                "hook {program} timed out after {}s and was killed",
                hook.timeout.as_secs()
            ))
        }
        Ok(Err(e)) => {
            group.kill();
            Answer::Failed(format!("hook {program}: {e}"))
        }
        Ok(Ok(status)) => {
            group.disarm();
            if let Some(d) = drain {
                let _ = tokio::time::timeout(STDERR_AFTER_EXIT, d).await;
            }
            let line = first_line(&rx.borrow_and_update());
            match status.code() {
                Some(0) => Answer::Proceed,
                Some(1) => {
                    Answer::Veto(line.unwrap_or_else(|| {
                        format!("{program} exited 1 without a message on stderr")
                    }))
                }
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

/// The hook's process group, killed as a whole unless disarmed.
struct Group(Option<u32>);

impl Group {
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.take().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a negative pid signals the group the hook
            // leads (it was started with process_group(0)); no memory is shared.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        self.0 = None;
    }
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests;
