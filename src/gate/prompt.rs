//! The yes/no question on a terminal, as kubectl's `delete -i` asks it: a
//! whole line is read, and only `y` or `yes` (any case) followed by Enter
//! deletes. Anything else is no: another word, an empty line, the end of
//! input (Ctrl-D), a key pressed without Enter.
//!
//! Typing that is not the answer never reaches the shell: what was typed
//! before the question showed (while the namespace was listed) is discarded,
//! and so is whatever follows the answer's line (`y⏎rm -rf …⏎` pasted at
//! once).

use std::io::{BufRead, Write};

/// Asks `question` on stderr (`… [y/N] `) and reads one line from stdin.
/// Ctrl-C while it waits is the signal listener's (`stop`): it says
/// "interrupted: nothing deleted" and exits 130.
pub(crate) fn ask(question: &str) -> std::io::Result<bool> {
    let _prompting = crate::stop::Prompting::start();
    discard_typeahead();
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = Vec::new();
    std::io::stdin().lock().read_until(b'\n', &mut line)?;
    discard_typeahead();
    if !line.ends_with(b"\n") {
        // The input ended before Enter: the next output starts a line of its own.
        writeln!(err)?;
    }
    Ok(is_yes(&String::from_utf8_lossy(&line)))
}

/// Whether a line read at the prompt says yes: `y` or `yes` in any case,
/// blanks around it allowed, ended by Enter.
pub(crate) fn is_yes(line: &str) -> bool {
    let Some(answer) = line.strip_suffix('\n') else {
        return false;
    };
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

/// Drops what was typed but not yet read from the terminal.
fn discard_typeahead() {
    #[cfg(unix)]
    // SAFETY: tcflush only discards the terminal's pending input; on a
    // descriptor that is not a terminal it fails harmlessly.
    unsafe {
        libc::tcflush(libc::STDIN_FILENO, libc::TCIFLUSH);
    }
}

#[cfg(test)]
mod tests {
    use super::is_yes;

    #[test]
    fn only_y_or_yes_with_enter_is_yes() {
        for yes in ["y\n", "Y\n", "yes\n", "YES\n", "Yes\r\n", "  y \n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in [
            "",
            "y",
            "yes",
            "\n",
            "n\n",
            "no\n",
            "yes please\n",
            "yy\n",
            "ye\n",
            "yes\ny\n",
            "oui\n",
            "\u{3}\n",
        ] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
