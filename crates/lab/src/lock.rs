//! Advisory locks (flock) so separate labwire processes do not trip over each other: one per lab,
//! and one host-wide for shared things (management networks, address allocation).

use std::fs::File;
use std::os::fd::AsRawFd as _;
use std::path::Path;

use crate::error::{io, Error, Result};

/// An exclusive lock held until dropped.
pub struct Lock {
    _file: File,
}

impl Lock {
    fn take(path: &Path, what: &str, wait: bool) -> Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        }
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io(format!("open lock {}", path.display())))?;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        loop {
            // SAFETY: flock on a descriptor owned by `file`.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                // A signal while waiting: Ctrl-C ends the wait, anything else retries.
                if crate::signals::interrupted() {
                    return Err(Error::Interrupted);
                }
                continue;
            }
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(Error::Busy {
                    what: what.to_string(),
                });
            }
            return Err(Error::Io {
                op: format!("lock {}", path.display()),
                source: e,
            });
        }
        Ok(Lock { _file: file })
    }

    /// The lock of one lab; fails at once if another process holds it.
    pub fn lab(name: &str) -> Result<Lock> {
        Lock::take(
            &crate::paths::lock_dir()
                .join("labs")
                .join(format!("{name}.lock")),
            &format!("lab {name}"),
            false,
        )
    }

    /// The lock of one lab, waited for up to `timeout` (a deploy rolling back holds it).
    pub fn lab_wait(name: &str, timeout: std::time::Duration) -> Result<Lock> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match Lock::lab(name) {
                Err(Error::Busy { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// The host-wide lock, waited for.
    pub fn global() -> Result<Lock> {
        Lock::take(
            &crate::paths::lock_dir().join("global.lock"),
            "labwire",
            true,
        )
    }
}
