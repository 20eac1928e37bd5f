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
            eprintln!("error: {e}");
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

/// clap's usage errors, reduced to one line; help and version print as usual.
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
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines
                .next()
                .unwrap_or("error: invalid arguments")
                .to_string();
            let extra: Vec<&str> = lines
                .filter(|l| l.starts_with('[') || l.starts_with("tip:"))
                .collect();
            let mut line = first;
            for x in extra {
                line.push(' ');
                line.push_str(x);
            }
            eprintln!("{line} (see --help)");
            exit::USAGE
        }
    }
}
