//! Running the plugin on a pseudo-terminal, as a person at a terminal would
//! (`tests/tty/drive.py`): wait for a text on the screen, then type.

// rustc judges dead code per test binary, and every test binary compiles this whole
// module while using only part of it (see mod.rs).
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use super::commands::repo_root;
use super::objects::TestNamespace;
use super::wait::poll_until;

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
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("expect"), expect).unwrap();
    let drive = repo_root().join("tests/tty/drive.py");
    let mut child = tokio::process::Command::from(
        ns.plugin()
            .under(
                "python3",
                [drive.as_os_str(), dir.path().as_os_str(), "--".as_ref()],
            )
            .args(args)
            .env_remove("CI")
            .command(),
    )
    .spawn()
    .unwrap();
    poll_until(
        &format!("{expect:?} on the terminal"),
        Duration::from_secs(60),
        || async {
            if dir.path().join("seen").exists() {
                Ok(())
            } else {
                Err(std::fs::read_to_string(dir.path().join("screen")).unwrap_or_default())
            }
        },
    )
    .await;
    at_prompt().await;
    let mut f = std::fs::File::create(dir.path().join("answer.tmp")).unwrap();
    f.write_all(answer.as_bytes()).unwrap();
    std::fs::rename(dir.path().join("answer.tmp"), dir.path().join("answer")).unwrap();
    let status = child.wait().await.unwrap();
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(dir.path().join("screen")).unwrap_or_default(),
    )
}
