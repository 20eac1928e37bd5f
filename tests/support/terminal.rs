//! Running the plugin on a pseudo-terminal, as a person at a terminal would
//! (`tests/tty/drive.py`): wait for a text on the screen, then type.

// rustc judges dead code per test binary, and every test binary compiles this whole
// module while using only part of it (see mod.rs).
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use super::commands::{repo_root, PluginCmd};
use super::objects::TestNamespace;
use super::wait::poll_until;

/// How long a text may take to show on the screen.
const SHOWS_WITHIN: Duration = Duration::from_secs(60);

/// A command running on a pseudo-terminal: what it shows, what is typed.
pub struct Terminal {
    dir: tempfile::TempDir,
    child: tokio::process::Child,
    typed: usize,
    /// Where the last text expected ended on the screen: the next is looked
    /// for after it.
    seen_to: usize,
}

impl Terminal {
    /// The plugin with `args` on a terminal (CI unset).
    pub fn plugin(ns: &TestNamespace, args: &[&str]) -> Self {
        let mut cmd = ns.plugin();
        cmd.args(args);
        Self::start(cmd, &[])
    }

    /// `cmd` on a terminal (CI unset), run by `shell` when it is not empty:
    /// `sh -c SCRIPT` gets the plugin as `$0` and its arguments as `$@`.
    pub fn start(mut cmd: PluginCmd, shell: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let drive = repo_root().join("tests/tty/drive.py");
        let mut before = vec![
            drive.into_os_string(),
            dir.path().as_os_str().to_os_string(),
            "--".into(),
        ];
        before.extend(shell.iter().map(Into::into));
        let child =
            tokio::process::Command::from(cmd.under("python3", before).env_remove("CI").command())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
        Terminal {
            dir,
            child,
            typed: 0,
            seen_to: 0,
        }
    }

    /// Everything the terminal showed so far.
    pub fn screen(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("screen")).unwrap_or_default()
    }

    /// Waits until `text` shows on the screen after what was expected before.
    pub async fn expect(&mut self, text: &str) {
        let from = self.seen_to;
        let end = poll_until(
            &format!("{text:?} on the terminal"),
            SHOWS_WITHIN,
            || async {
                let screen = self.screen();
                match screen.get(from..).and_then(|s| s.find(text)) {
                    Some(at) => Ok(from + at + text.len()),
                    None => Err(screen),
                }
            },
        )
        .await;
        self.seen_to = end;
    }

    /// Types `text` (`\r` is Enter, `\x03` Ctrl-C, `\x04` Ctrl-D).
    pub fn type_text(&mut self, text: &str) {
        let tmp = self.dir.path().join(format!("type.{}.tmp", self.typed));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        drop(f);
        std::fs::rename(tmp, self.dir.path().join(format!("type.{}", self.typed))).unwrap();
        self.typed += 1;
    }

    /// Waits for the command to exit: its exit code and the whole screen.
    pub async fn wait(mut self) -> (i32, String) {
        let status = tokio::time::timeout(Duration::from_secs(240), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("still running after 240 s: {}", self.screen()))
            .unwrap();
        (status.code().unwrap_or(-1), self.screen())
    }
}

/// Runs the plugin with `args` on a pseudo-terminal (CI unset); once `expect`
/// shows on the screen, `at_prompt` runs, then `answer` is typed. Returns the
/// exit code and everything the terminal showed.
pub async fn on_a_terminal_until<F, Fut>(
    ns: &TestNamespace,
    args: &[&str],
    expect: &str,
    answer: &str,
    at_prompt: F,
) -> (i32, String)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut t = Terminal::plugin(ns, args);
    t.expect(expect).await;
    at_prompt().await;
    if !answer.is_empty() {
        t.type_text(answer);
    }
    t.wait().await
}
