//! kubectl finds the plugin: the real kubectl, a PATH that holds only the
//! installed files. kubectl turns `-` inside a word into `_` when it looks a
//! plugin up, so `kubectl crucible-clean` needs the file `kubectl-crucible_clean`
//! and the file `kubectl-crucible-clean` answers only to `kubectl crucible clean`.

mod support;
use support::commands::{kubectl, link_beside, plugin_binary, stderr, stdout};

use std::process::{Command, Output};

/// A directory holding the plugin under `names`, used as the whole PATH.
struct OnlyPath {
    bin: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl OnlyPath {
    fn with(names: &[&str]) -> Self {
        let bin = tempfile::tempdir().expect("bin dir");
        for name in names {
            std::fs::copy(plugin_binary(), bin.path().join(name)).expect("install the plugin");
        }
        OnlyPath {
            bin,
            home: tempfile::tempdir().expect("home dir"),
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl())
            .args(args)
            .env_clear()
            .env("PATH", self.bin.path())
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.home.path().join("no-kubeconfig"))
            .current_dir(self.home.path())
            .output()
            .expect("run kubectl")
    }
}

fn assert_is_our_help(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    let out = stdout(o);
    assert!(
        out.starts_with("Clean up finished evaluation pods and jobs"),
        "{out}"
    );
    assert!(
        out.contains("Usage: kubectl crucible-clean [OPTIONS]"),
        "{out}"
    );
}

#[test]
fn kubectl_crucible_clean_finds_the_underscore_name() {
    let p = OnlyPath::with(&["kubectl-crucible_clean"]);
    assert_is_our_help(&p.kubectl(&["crucible-clean", "--help"]));
    // kubectl also accepts the underscore spelling.
    assert_is_our_help(&p.kubectl(&["crucible_clean", "--help"]));
}

#[test]
fn kubectl_crucible_clean_two_words_finds_the_dash_name() {
    let p = OnlyPath::with(&["kubectl-crucible-clean"]);
    assert_is_our_help(&p.kubectl(&["crucible", "clean", "--help"]));
    // The trap the underscore link exists for: the dash name alone does not
    // serve `kubectl crucible-clean`.
    let o = p.kubectl(&["crucible-clean", "--help"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown command \"crucible-clean\" for \"kubectl\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_plugin_exit_code_and_arguments_pass_through_kubectl() {
    let p = OnlyPath::with(&["kubectl-crucible_clean"]);
    // A usage error from the plugin itself: its exit code 2 and its message.
    let o = p.kubectl(&["crucible-clean", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).starts_with("error: unexpected argument '--no-such-flag'"),
        "{}",
        stderr(&o)
    );
    let o = p.kubectl(&["crucible-clean", "-V"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("kubectl crucible-clean {}", env!("CARGO_PKG_VERSION"))
    );
    let o = p.kubectl(&["crucible-clean", "--version"]);
    assert!(o.status.success());
    assert!(
        stdout(&o).starts_with(&format!(
            "kubectl crucible-clean {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        stdout(&o)
    );
}

#[test]
fn kubectl_plugin_list_shows_one_plugin_without_warnings() {
    let p = OnlyPath::with(&["kubectl-crucible_clean"]);
    // The completion name does not start with `kubectl-`, so it is no plugin.
    link_beside(
        &p.bin.path().join("kubectl_complete-crucible_clean"),
        "kubectl-crucible_clean",
    );
    let o = p.kubectl(&["plugin", "list", "--name-only"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("kubectl-"))
            .collect::<Vec<_>>(),
        ["kubectl-crucible_clean"]
    );
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}
