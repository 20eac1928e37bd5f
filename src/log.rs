//! What the run says on stderr: `-v LEVEL` logging, as kubectl's verbosity
//! levels, and messages that must not be drawn over by a progress bar.

use std::sync::Mutex;

use indicatif::ProgressBar;

/// Prints `msg` on stderr when the run's verbosity is at least `level`.
pub(crate) fn log(verbosity: u8, level: u8, msg: impl AsRef<str>) {
    if verbosity >= level {
        say(msg.as_ref());
    }
}

/// The progress bar on stderr, while one shows.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints `msg` on stderr as a line of its own: a progress bar showing is
/// cleared first and drawn again after it, so neither hides the other.
pub(crate) fn say(msg: &str) {
    let bar = SHOWN.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(bar) => bar.suspend(|| eprintln!("{msg}")),
        None => eprintln!("{msg}"),
    }
}

/// A progress bar on stderr, known to `say` while this lives; cleared
/// from the screen when dropped.
pub(crate) struct Progress(ProgressBar);

impl Progress {
    pub(crate) fn show(bar: ProgressBar) -> Self {
        if let Ok(mut shown) = SHOWN.lock() {
            *shown = Some(bar.clone());
        }
        Progress(bar)
    }
}

impl std::ops::Deref for Progress {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
        if let Ok(mut shown) = SHOWN.lock() {
            *shown = None;
        }
    }
}
