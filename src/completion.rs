//! Shell completion and the files generated from the one clap definition in
//! `cli`:
//!
//! * `kubectl`: kubectl's plugin completion protocol, answered when the binary
//!   runs as `kubectl_complete-crucible_clean`; `live` reads the values that
//!   only the cluster or the kubeconfig knows.
//! * `generate`: the checked-in completion scripts and man page, written by the
//!   hidden `kubectl-crucible-clean --generate [DIR]`.

use std::ffi::OsStr;
use std::path::Path;

mod generate;
mod kubectl;
mod live;

pub use generate::{run_generate, write_generated};
pub use kubectl::run_kubectl_complete;

/// The binary's name, and the name the static scripts and the man page are for.
pub(crate) const BIN_NAME: &str = "kubectl-crucible-clean";
/// File stems under which the binary answers kubectl's completion requests:
/// kubectl looks for `kubectl_complete-crucible_clean` to complete
/// `kubectl crucible-clean`, and for `kubectl_complete-crucible-clean` to
/// complete the two-word form `kubectl crucible clean`.
pub(crate) const KUBECTL_COMPLETE_NAMES: [&str; 2] = [
    "kubectl_complete-crucible_clean",
    "kubectl_complete-crucible-clean",
];
/// How to regenerate the checked-in files, from the repository root.
pub const REGENERATE: &str = "cargo run -q --example generate -- .";

/// True when the binary was started as `kubectl_complete-crucible_clean` (or
/// the two-word variant), with or without `.exe`.
pub fn is_kubectl_complete(argv0: &OsStr) -> bool {
    Path::new(argv0)
        .file_stem()
        .and_then(OsStr::to_str)
        .is_some_and(|stem| KUBECTL_COMPLETE_NAMES.contains(&stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_completion_names_are_recognised() {
        assert!(is_kubectl_complete(OsStr::new(
            "/x/kubectl_complete-crucible_clean"
        )));
        assert!(is_kubectl_complete(OsStr::new(
            "kubectl_complete-crucible-clean.exe"
        )));
        assert!(!is_kubectl_complete(OsStr::new(
            "/x/kubectl-crucible_clean"
        )));
        assert!(!is_kubectl_complete(OsStr::new("kubectl-crucible-clean")));
    }
}
