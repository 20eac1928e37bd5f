//! Putting an archive on disk whole: its files go to a hidden directory
//! beside its place, are synced, and the directory is renamed into place
//! (replacing an older archive of the same name). Blocking; run it off the
//! async threads.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart the hidden directories of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes `files` (paths relative to `dir`) as the directory `dir`.
pub(super) fn put(dir: &Path, files: &[(String, Vec<u8>)]) -> io::Result<()> {
    let parent = dir
        .parent()
        .ok_or_else(|| io::Error::other("an archive directory needs a parent"))?;
    let name = dir
        .file_name()
        .ok_or_else(|| io::Error::other("an archive directory needs a name"))?
        .to_string_lossy()
        .to_string();
    fs::create_dir_all(parent)?;
    let tag = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    // Object names never start with a dot: these never collide with an archive.
    let partial = parent.join(format!(".{name}.partial-{tag}"));
    let result = fill(&partial, files).and_then(|()| swap_in(&partial, dir, parent, &name, &tag));
    if result.is_err() {
        let _ = fs::remove_dir_all(&partial);
    }
    result
}

fn fill(partial: &Path, files: &[(String, Vec<u8>)]) -> io::Result<()> {
    fs::create_dir(partial)?;
    for (rel, bytes) in files {
        let path = partial.join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)?;
        }
        let mut f = fs::File::create(&path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    Ok(())
}

fn swap_in(partial: &Path, dir: &Path, parent: &Path, name: &str, tag: &str) -> io::Result<()> {
    if dir.exists() {
        let old = parent.join(format!(".{name}.replaced-{tag}"));
        fs::rename(dir, &old)?;
        fs::rename(partial, dir)?;
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(partial, dir)?;
    }
    // The rename is durable once the parent directory is synced (where the
    // platform lets a directory be opened for that).
    if let Ok(d) = fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}
