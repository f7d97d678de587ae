//! Advisory locks (flock) so separate labwire processes do not trip over each other: one per lab,
//! one host-wide for shared things (management networks, address allocation), and one per
//! management bridge for the ports a deploy is adding to it.

use std::fs::File;
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
        let how = if wait {
            unix::Flock::Exclusive
        } else {
            unix::Flock::ExclusiveNow
        };
        // A signal while waiting: Ctrl-C ends the wait, anything else retries.
        match unix::flock(&file, how, &crate::signals::interrupted) {
            Ok(()) => Ok(Lock { _file: file }),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(Error::Interrupted),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::Busy {
                what: what.to_string(),
            }),
            Err(e) => Err(Error::Io {
                op: format!("lock {}", path.display()),
                source: e,
            }),
        }
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

    /// The lock of the seats on management bridge `bridge`, waited for: held from counting a
    /// deploy's new ports on it ([`crate::mgmt_fabric::seat`]) until they all exist, so two labs
    /// sharing the bridge do not overfill it. Taken before the host-wide lock, never while
    /// holding it.
    pub fn mgmt_seats(bridge: &str) -> Result<Lock> {
        // The topology checks the bridge's name as an interface name (no `/`, not `.` or `..`),
        // so it is a plain file name, as a lab's name is in [`Lock::lab`].
        Lock::take(
            &crate::paths::lock_dir().join(format!("mgmt-seats-{bridge}.lock")),
            &format!("management bridge {bridge}"),
            true,
        )
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
