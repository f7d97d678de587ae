//! Advisory file locks (`flock`) that serialise writers of the store: one lock file for the index
//! and blob set, one per layer being unpacked. A lock is released when its guard is dropped (or the
//! process dies), so a crash never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
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
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is passed.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FileLock { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(io_err(path)(err));
            }
        }
    }
}
