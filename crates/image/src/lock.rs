//! Advisory file locks (`flock`) that serialise writers of the store: one lock file for the index
//! and blob set, one per layer being unpacked. A lock is released when its guard is dropped (or the
//! process dies), so a crash never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{io_err, Result};

/// An exclusive `flock` held until dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Open (creating) `path` and wait for an exclusive lock on it.
    pub(crate) fn exclusive(path: &Path) -> Result<FileLock> {
        let file = open(path)?;
        unix::flock(&file, unix::Flock::Exclusive, &|| false).map_err(io_err(path))?;
        Ok(FileLock { _file: file })
    }

    /// The lock on `path` if no other process holds it now; `None` when one does.
    pub(crate) fn try_exclusive(path: &Path) -> Result<Option<FileLock>> {
        let file = open(path)?;
        match unix::flock(&file, unix::Flock::ExclusiveNow, &|| false) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(io_err(path)(e)),
        }
    }
}

/// The lock file `path`, created if missing.
fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(path))
}
