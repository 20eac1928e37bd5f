//! Stopping a run: Ctrl-C or SIGTERM at any stage. The first signal sets the
//! shared `Stop`; every stage that waits (listing, deletes, `--wait`, the
//! pause between `--watch` cycles) selects on it, so no new work starts and
//! the partial report is printed (exit 130). A second signal exits at once,
//! and so does a signal while the confirmation prompt blocks the terminal
//! (nothing has been deleted then).
//!
//! One signal, one message, said before anything reacts to it: at the
//! prompt "interrupted: nothing deleted"; mid-run the stop message, then
//! (printed by the run as it winds down) the partial report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::error::exit;

/// Set when the run must stop; cheap to clone and to check.
#[derive(Debug, Clone)]
pub(crate) struct Stop(Arc<watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Stop(Arc::new(watch::Sender::new(false)))
    }
}

impl Stop {
    pub(crate) fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    pub(crate) fn set(&self) {
        self.0.send_replace(true);
    }

    /// Returns once the stop is set (at once if it already is).
    pub(crate) async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// True while the confirmation prompt owns the terminal.
static PROMPTING: AtomicBool = AtomicBool::new(false);

/// Set by whoever says "interrupted: nothing deleted" first.
static SAID_AT_PROMPT: AtomicBool = AtomicBool::new(false);

/// What a signal mid-run says, before the run stops.
const STOPPING: &str = "interrupted: no new work starts; press Ctrl-C again to exit at once";

/// Ctrl-C at the prompt (or `-i`'s list): nothing was deleted; says so once
/// and exits 130. Called by the signal listener and by the list, which reads
/// Ctrl-C as a key and raises the signal as well: the first one speaks, the
/// other waits for the exit.
pub(crate) fn interrupted_at_the_prompt() -> ! {
    if SAID_AT_PROMPT.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    // The list of `-i` hides the cursor while it shows.
    let _ = console::Term::stderr().show_cursor();
    eprintln!("\ninterrupted: nothing deleted");
    std::process::exit(exit::INTERRUPTED);
}

/// Marks the prompt's span: a signal then exits at once.
pub(crate) struct Prompting;

impl Prompting {
    pub(crate) fn start() -> Self {
        PROMPTING.store(true, Ordering::SeqCst);
        Prompting
    }
}

impl Drop for Prompting {
    fn drop(&mut self) {
        PROMPTING.store(false, Ordering::SeqCst);
    }
}

/// Listens for SIGINT and SIGTERM for the rest of the process's life. The
/// handlers are installed before this returns, so no signal is missed.
pub(crate) fn listen(stop: Stop) -> tokio::task::JoinHandle<()> {
    let mut signals = Signals::install();
    tokio::spawn(async move {
        signals.next().await;
        if PROMPTING.load(Ordering::SeqCst) {
            interrupted_at_the_prompt();
        }
        // Said before the stop is set: whatever the run prints as it stops
        // (the partial report) comes after it.
        crate::log::say(STOPPING);
        stop.set();
        signals.next().await;
        eprintln!("interrupted again: exiting now");
        std::process::exit(exit::INTERRUPTED);
    })
}

/// SIGINT and SIGTERM on Unix, Ctrl-C elsewhere.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Signals { streams }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_once_set_and_at_once_after() {
        let stop = Stop::default();
        assert!(!stop.is_set());
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.wait().await })
        };
        stop.set();
        waiter.await.unwrap();
        assert!(stop.is_set());
        stop.wait().await;
    }
}
