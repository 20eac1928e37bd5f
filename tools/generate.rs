//! Writes the completion scripts and the man page, generated from the clap
//! definition in `src/cli.rs`: `cargo run -q --example generate -- [DIR]`
//! (DIR defaults to `.`, the repository root). Kept out of the installed binary.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(crucible_clean::completion::run_generate(&args));
}
