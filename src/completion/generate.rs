//! The generated files: bash/zsh/fish/PowerShell completion scripts for the
//! binary run by its own name, and the man page, from `cli::Cli`. Written by
//! `cargo run -q --example generate -- DIR` (tools/generate.rs); `tests/completions.rs`
//! fails when the checked-in copies are stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::{BIN_NAME, REGENERATE};
use crate::cli::Cli;

/// One generated file, its path relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GeneratedFile {
    pub(crate) path: PathBuf,
    pub(crate) contents: Vec<u8>,
}

/// The shells with a checked-in completion script.
pub(crate) const SHELLS: [Shell; 4] = [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell];

/// `completions/<script per shell>` and `man/kubectl-crucible-clean.1`, generated
/// from `cli::Cli`. The scripts complete the binary run by its own name,
/// `kubectl-crucible-clean`; `kubectl crucible-clean` is completed by kubectl
/// through `kubectl_complete-crucible_clean` instead.
pub(crate) fn generated_files() -> std::io::Result<Vec<GeneratedFile>> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let mut cmd = Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, BIN_NAME, &mut buf);
        let name = clap_complete::Generator::file_name(&shell, BIN_NAME);
        files.push(GeneratedFile {
            path: Path::new("completions").join(name),
            contents: buf,
        });
    }
    // The man page is committed: its VERSION section is the version alone,
    // not `--version`'s commit, which changes with every commit.
    let cmd = Cli::command()
        .display_name(BIN_NAME)
        .long_version(None::<&str>);
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = clap_mangen::Man::new(cmd)
        .title(BIN_NAME.to_uppercase())
        .source(format!("{BIN_NAME} {version}"))
        .manual("kubectl plugins");
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    files.push(GeneratedFile {
        path: Path::new("man").join(format!("{BIN_NAME}.1")),
        contents: buf,
    });
    Ok(files)
}

/// Writes [`generated_files`] under `dir` (the repository root when
/// regenerating the checked-in copies) and returns the paths written.
pub fn write_generated(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in generated_files()? {
        let path = dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &f.contents)?;
        written.push(path);
    }
    Ok(written)
}

/// The entry point of tools/generate.rs: `generate [DIR]`.
pub fn run_generate(args: &[String]) -> i32 {
    let dir = match args {
        [] => Path::new("."),
        [dir] => Path::new(dir.as_str()),
        _ => {
            eprintln!(
                "usage: {REGENERATE}  (writes DIR/completions/* and DIR/man/*; DIR defaults to .)"
            );
            return crate::error::exit::USAGE;
        }
    };
    match write_generated(dir) {
        Ok(paths) => {
            for p in paths {
                eprintln!("wrote {}", p.display());
            }
            crate::error::exit::OK
        }
        Err(e) => {
            eprintln!(
                "error: cannot write the generated files under {}: {e}",
                dir.display()
            );
            crate::error::exit::FAILED
        }
    }
}
