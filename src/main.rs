//! Dispatch on how the binary was started, parse, run, map the error to an
//! exit code. Nothing else lives here.
//!
//! * as `kubectl_complete-crucible_clean WORDS…`: answer kubectl's completion
//!   request (see `completion`);
//! * otherwise: the cleanup.

use clap::Parser;
use crucible_clean::cli::Cli;
use crucible_clean::completion;
use crucible_clean::error::exit;

fn main() {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    if completion::is_kubectl_complete(&argv0) {
        let words = args.map(|a| a.to_string_lossy().into_owned()).collect();
        std::process::exit(completion::run_kubectl_complete(words));
    }

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(clap_error(e)),
    };
    crucible_clean::memory::tune();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::FAILED);
        }
    };
    let code = match runtime.block_on(crucible_clean::run(&cli)) {
        Ok(code) => code,
        Err(e) => {
            if let Some(line) = e.line() {
                eprintln!("{line}");
            }
            if let Some(hint) = e.hint() {
                eprint!("{hint}");
            }
            e.exit_code()
        }
    };
    // Do not wait for stray tasks (a signal listener) at shutdown.
    runtime.shutdown_background();
    std::process::exit(code);
}

/// clap's usage errors as one `error:` line (with the possible values, if
/// any), and clap's tip, when it has one, on a line of its own; help and
/// version print as usual.
fn clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            exit::OK
        }
        _ => {
            eprint!("{}", usage_lines(&e.render().to_string()));
            exit::USAGE
        }
    }
}

/// clap's rendered usage error, reduced: the `error:` line with the
/// possible values appended, `(see --help)`, then each tip on its own line.
fn usage_lines(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut first = lines
        .next()
        .unwrap_or("error: invalid arguments")
        .to_string();
    let mut tips = vec![];
    for l in lines {
        if l.starts_with('[') {
            first.push(' ');
            first.push_str(l);
        } else if l.starts_with("tip:") {
            tips.push(l);
        }
    }
    let mut out = format!("{first} (see --help)\n");
    for tip in tips {
        out.push_str(&format!("  {tip}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::usage_lines;

    #[test]
    fn one_error_line_and_the_tip_on_its_own() {
        let clap = "error: unexpected argument '--tset-id' found\n\n  tip: a similar argument exists: '--test-id'\n\nUsage: kubectl crucible-clean --test-id <ID>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_lines(clap),
            "error: unexpected argument '--tset-id' found (see --help)\n  tip: a similar argument exists: '--test-id'\n"
        );
        let values = "error: invalid value 'x' for '--level <LEVEL>'\n  [possible values: none, pods, jobs, all]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_lines(values),
            "error: invalid value 'x' for '--level <LEVEL>' [possible values: none, pods, jobs, all] (see --help)\n"
        );
    }
}
