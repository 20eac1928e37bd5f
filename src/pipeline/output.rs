//! Where a report goes: stdout, written as it is produced, or a plan file.

use std::path::Path;

use crate::cli::Output;
use crate::error::{Error, Result};
use crate::report;

/// Prints the report on stdout as it is written (see `report::write`). A
/// reader that went away (`| head`) ends the output quietly, as kubectl's.
pub(crate) fn print_report(rep: &report::CleanupReport, output: Output) -> Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match report::write(&mut out, rep, output).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::Runtime(format!("cannot write the report: {e}")))
        }
        _ => Ok(()),
    }
}

/// `--save-plan FILE`: the report of this dry run, as `-o json` prints it.
pub(super) fn save_plan(path: &Path, rep: &report::CleanupReport) -> Result<()> {
    use std::io::Write;
    std::fs::File::create(path)
        .and_then(|f| {
            let mut out = std::io::BufWriter::new(f);
            report::write(&mut out, rep, Output::Json)?;
            out.flush()
        })
        .map_err(|e| Error::Runtime(format!("cannot write plan file {}: {e}", path.display())))?;
    eprintln!(
        "plan saved to {}: apply it with --from-plan {} --yes",
        path.display(),
        path.display()
    );
    Ok(())
}
