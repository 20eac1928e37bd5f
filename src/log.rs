//! `-v LEVEL` logging on stderr, as kubectl's verbosity levels.

/// Prints `msg` on stderr when the run's verbosity is at least `level`.
pub(crate) fn log(verbosity: u8, level: u8, msg: impl AsRef<str>) {
    if verbosity >= level {
        eprintln!("{}", msg.as_ref());
    }
}
