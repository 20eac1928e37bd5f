//! Putting an archive on disk whole and safely. An archive is written into a
//! hidden directory beside its place (`Partial`), file by file as its parts
//! arrive, and renamed into place at the end (replacing an older archive of
//! the same name): it is there whole or not at all.
//!
//! The tree under `--archive DIR` may be shared, so nothing under DIR is
//! trusted (DIR itself is the user's choice, links in its own path
//! included). On Unix every step goes through directory descriptors opened
//! with `O_NOFOLLOW`: a symbolic link anywhere under DIR (the namespace, kind
//! or archive directory) is refused, never followed, and so is a directory
//! that another user owns; an older archive is removed entry by entry through
//! descriptors, never through a link. Directories are created 0700 and files
//! 0600, whatever the umask: logs and manifests can hold secrets.
//!
//! Blocking (metadata calls, fsync, removal): `begin` and `commit` are run off
//! the async threads by the caller.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart the hidden directories of one process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// A name that can stand for one path component (namespaces, names and
/// container names come from the API server, which allows no `/`; checked
/// all the same).
fn component(name: &str) -> io::Result<&str> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(io::Error::other(format!(
            "{name:?} cannot name a directory of the archive"
        )));
    }
    Ok(name)
}

fn hidden(name: &str, what: &str) -> String {
    let tag = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    // Object names never start with a dot: these never collide with an archive.
    format!(".{name}.{what}-{tag}")
}

#[cfg(unix)]
pub(super) use unix::Partial;

#[cfg(not(unix))]
pub(super) use portable::Partial;

/// The place of an archive: `root/<namespace>/<kind>/<name>`.
pub(super) struct Place<'a> {
    pub(super) root: &'a Path,
    pub(super) namespace: &'a str,
    pub(super) kind: &'a str,
    pub(super) name: &'a str,
}

impl Place<'_> {
    #[cfg_attr(not(unix), allow(dead_code))]
    fn shown(&self) -> PathBuf {
        self.root
            .join(self.namespace)
            .join(self.kind)
            .join(self.name)
    }
}

#[cfg(unix)]
mod unix {
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::DirBuilderExt;

    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, CWD};
    use rustix::io::Errno;

    use super::*;

    /// 0700 and 0600 (the constants, as `mode_t` differs between platforms).
    const DIR_MODE: Mode = Mode::RWXU;
    const FILE_MODE: Mode = Mode::RUSR.union(Mode::WUSR);
    /// How deep an older archive may be nested when it is removed (ours are
    /// two levels deep).
    const MAX_DEPTH: usize = 16;

    fn dir_flags() -> OFlags {
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
    }

    fn refused(shown: &Path, why: &str) -> io::Error {
        io::Error::other(format!(
            "{} {why}: refusing to archive there",
            shown.display()
        ))
    }

    /// Refuses a directory this process's user does not own.
    fn owned(fd: &OwnedFd, shown: &Path) -> io::Result<()> {
        let st = rfs::fstat(fd)?;
        let me = rustix::process::geteuid().as_raw();
        if st.st_uid != me {
            return Err(refused(
                shown,
                &format!(
                    "is owned by uid {}, not by this process's uid {me}",
                    st.st_uid
                ),
            ));
        }
        Ok(())
    }

    /// Opens the directory `name` in `parent`, creating it (0700) when
    /// missing; refuses a link, a non-directory and another user's directory.
    fn subdir(parent: &OwnedFd, name: &str, shown: &Path) -> io::Result<OwnedFd> {
        let created = match rfs::mkdirat(parent, name, DIR_MODE) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(e.into()),
        };
        let fd = rfs::openat(parent, name, dir_flags(), Mode::empty()).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR | Errno::MLINK => {
                refused(shown, "is a symbolic link or not a directory")
            }
            e => e.into(),
        })?;
        owned(&fd, shown)?;
        if created {
            // The umask may have taken bits away; never add any for others.
            rfs::fchmod(&fd, DIR_MODE)?;
        }
        Ok(fd)
    }

    /// Removes `name` in `dir`: a directory entry by entry through
    /// descriptors; anything else (a link included) is unlinked, never followed.
    fn remove_tree(dir: &OwnedFd, name: &std::ffi::CStr, depth: usize) -> io::Result<()> {
        match rfs::openat(dir, name, dir_flags(), Mode::empty()) {
            Ok(fd) => {
                if depth > MAX_DEPTH {
                    return Err(io::Error::other("an older archive is nested too deep"));
                }
                let mut names = vec![];
                for entry in rfs::Dir::read_from(&fd)? {
                    let entry = entry?;
                    let n = entry.file_name();
                    if n.to_bytes() != b"." && n.to_bytes() != b".." {
                        names.push(n.to_owned());
                    }
                }
                for n in names {
                    remove_tree(&fd, &n, depth + 1)?;
                }
                Ok(rfs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
            }
            Err(Errno::LOOP | Errno::NOTDIR | Errno::MLINK) => {
                Ok(rfs::unlinkat(dir, name, AtFlags::empty())?)
            }
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// An archive being written: a hidden directory beside its place,
    /// removed unless committed.
    pub(in crate::archive) struct Partial {
        /// The kind directory the archive goes to.
        parent: OwnedFd,
        name: String,
        hidden: String,
        dir: OwnedFd,
        shown: PathBuf,
        committed: bool,
    }

    impl Partial {
        /// Opens (creating what is missing) the directories of `place` and a
        /// hidden directory for its archive.
        pub(in crate::archive) fn begin(place: &Place<'_>) -> io::Result<Partial> {
            let shown = place.shown();
            let name = component(place.name)?.to_string();
            // DIR itself is the user's choice: links in its own path are followed.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(place.root)?;
            let root = rfs::openat(
                CWD,
                place.root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let ns_shown = place.root.join(place.namespace);
            let ns = subdir(&root, component(place.namespace)?, &ns_shown)?;
            let kind = subdir(&ns, component(place.kind)?, &ns_shown.join(place.kind))?;
            let hidden = hidden(&name, "partial");
            rfs::mkdirat(&kind, hidden.as_str(), DIR_MODE)?;
            let made = rfs::openat(&kind, hidden.as_str(), dir_flags(), Mode::empty())
                .map_err(io::Error::from)
                .and_then(|d| rfs::fchmod(&d, DIR_MODE).map(|()| d).map_err(Into::into));
            let dir = match made {
                Ok(d) => d,
                Err(e) => {
                    let _ = rfs::unlinkat(&kind, hidden.as_str(), AtFlags::REMOVEDIR);
                    return Err(e);
                }
            };
            Ok(Partial {
                parent: kind,
                name,
                hidden,
                dir,
                shown,
                committed: false,
            })
        }

        /// Creates the new file `rel` (`archive.json`, `logs/main.log`), 0600.
        pub(in crate::archive) fn create(&self, rel: &str) -> io::Result<File> {
            let mut parts: Vec<&str> = rel.split('/').collect();
            let file = component(parts.pop().unwrap_or_default())?;
            let mut dir = rfs::openat(&self.dir, ".", dir_flags(), Mode::empty())?;
            for p in parts {
                dir = subdir(&dir, component(p)?, &self.shown.join(p))?;
            }
            let fd = rfs::openat(
                &dir,
                file,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                FILE_MODE,
            )?;
            rfs::fchmod(&fd, FILE_MODE)?;
            Ok(File::from(fd))
        }

        /// Removes the file `rel` again (a log whose fetch broke off).
        pub(in crate::archive) fn remove(&self, rel: &str) -> io::Result<()> {
            let mut parts: Vec<&str> = rel.split('/').collect();
            let file = component(parts.pop().unwrap_or_default())?;
            let mut dir = rfs::openat(&self.dir, ".", dir_flags(), Mode::empty())?;
            for p in parts {
                dir = rfs::openat(&dir, component(p)?, dir_flags(), Mode::empty())?;
            }
            Ok(rfs::unlinkat(&dir, file, AtFlags::empty())?)
        }

        /// Renames the archive into place, replacing an older one (a
        /// directory of ours, never a link), and makes the rename durable.
        pub(in crate::archive) fn commit(mut self) -> io::Result<()> {
            rfs::fsync(&self.dir)?;
            let name = self.name.as_str();
            let old = match rfs::statat(&self.parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => {
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        return Err(refused(
                            &self.shown,
                            "is a symbolic link or not a directory",
                        ));
                    }
                    let me = rustix::process::geteuid().as_raw();
                    if st.st_uid != me {
                        return Err(refused(
                            &self.shown,
                            &format!(
                                "is owned by uid {}, not by this process's uid {me}",
                                st.st_uid
                            ),
                        ));
                    }
                    let old = hidden(name, "replaced");
                    rfs::renameat(&self.parent, name, &self.parent, old.as_str())?;
                    Some(old)
                }
                Err(Errno::NOENT) => None,
                Err(e) => return Err(e.into()),
            };
            // A directory is never renamed over a link: that fails (ENOTDIR).
            let moved = rfs::renameat(&self.parent, self.hidden.as_str(), &self.parent, name);
            if let Err(e) = moved {
                if let Some(old) = &old {
                    let _ = rfs::renameat(&self.parent, old.as_str(), &self.parent, name);
                }
                return Err(e.into());
            }
            self.committed = true;
            if let Some(old) = old {
                if let Ok(old) = std::ffi::CString::new(old) {
                    let _ = remove_tree(&self.parent, &old, 0);
                }
            }
            let _ = rfs::fsync(&self.parent);
            Ok(())
        }
    }

    impl Drop for Partial {
        fn drop(&mut self) {
            if !self.committed {
                if let Ok(h) = std::ffi::CString::new(self.hidden.as_str()) {
                    let _ = remove_tree(&self.parent, &h, 0);
                }
            }
        }
    }
}

/// Where there are no directory descriptors to walk with (Windows): the
/// same steps by path, refusing what `symlink_metadata` shows to be a link.
#[cfg(not(unix))]
mod portable {
    use std::fs;

    use super::*;

    fn refuse_link(path: &Path) -> io::Result<()> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => Err(io::Error::other(format!(
                "{} is a symbolic link or not a directory: refusing to archive there",
                path.display()
            ))),
            _ => Ok(()),
        }
    }

    pub(in crate::archive) struct Partial {
        parent: PathBuf,
        name: String,
        hidden: PathBuf,
        committed: bool,
    }

    impl Partial {
        pub(in crate::archive) fn begin(place: &Place<'_>) -> io::Result<Partial> {
            fs::create_dir_all(place.root)?;
            let mut parent = place.root.to_path_buf();
            for p in [place.namespace, place.kind] {
                parent.push(component(p)?);
                refuse_link(&parent)?;
                if let Err(e) = fs::create_dir(&parent) {
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
                refuse_link(&parent)?;
            }
            let name = component(place.name)?.to_string();
            let hidden = parent.join(hidden(&name, "partial"));
            fs::create_dir(&hidden)?;
            Ok(Partial {
                parent,
                name,
                hidden,
                committed: false,
            })
        }

        pub(in crate::archive) fn create(&self, rel: &str) -> io::Result<File> {
            let path = self.hidden.join(rel);
            if let Some(p) = path.parent() {
                fs::create_dir_all(p)?;
            }
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
        }

        pub(in crate::archive) fn remove(&self, rel: &str) -> io::Result<()> {
            fs::remove_file(self.hidden.join(rel))
        }

        pub(in crate::archive) fn commit(mut self) -> io::Result<()> {
            let dir = self.parent.join(&self.name);
            if fs::symlink_metadata(&dir).is_ok() {
                refuse_link(&dir)?;
                let old = self.parent.join(hidden(&self.name, "replaced"));
                fs::rename(&dir, &old)?;
                fs::rename(&self.hidden, &dir)?;
                let _ = fs::remove_dir_all(&old);
            } else {
                fs::rename(&self.hidden, &dir)?;
            }
            self.committed = true;
            Ok(())
        }
    }

    impl Drop for Partial {
        fn drop(&mut self) {
            if !self.committed {
                let _ = fs::remove_dir_all(&self.hidden);
            }
        }
    }
}
