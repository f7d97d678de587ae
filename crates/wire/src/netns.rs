//! Network namespaces: opening them, making fresh ones, running code inside them, and registering
//! them under `/run/netns/NAME` the way `ip netns add` does so `ip netns exec NAME` works.
//!
//! This module owns `/run/netns` entries it is asked to create and nothing else; it never changes
//! the namespace of the calling thread — code that must run inside a namespace runs on a scoped
//! helper thread that `setns()`es first.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// `NS_GET_NSTYPE` from `linux/nsfs.h`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// An open network namespace (an nsfs file descriptor). The namespace lives at least as long as
/// this value does.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
}

impl NetNs {
    /// The namespace's nsfs inode: what `/run/netns/NAME` shows once it is registered there.
    pub fn inode(&self) -> io::Result<u64> {
        use std::os::unix::fs::MetadataExt as _;
        File::from(self.fd.try_clone()?).metadata().map(|m| m.ino())
    }

    /// Opens a namespace file such as `/run/netns/x` or `/proc/PID/ns/net`.
    pub fn open(path: &Path) -> Result<NetNs> {
        let op = || format!("open netns {}", path.display());
        let file = File::open(path).map_err(|e| Error::sys_from(op(), e))?;
        // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd, which is open.
        let ty = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
        if ty == -1 {
            let errno = io::Error::last_os_error();
            if errno.raw_os_error() == Some(libc::ENOTTY) {
                return Err(Error::Invalid {
                    op: op(),
                    what: "not a namespace file".into(),
                });
            }
            return Err(Error::sys_from(op(), errno));
        }
        if ty != libc::CLONE_NEWNET {
            return Err(Error::Invalid {
                op: op(),
                what: "not a network namespace".into(),
            });
        }
        Ok(NetNs { fd: file.into() })
    }

    /// The network namespace of process `pid`.
    pub fn of_pid(pid: i32) -> Result<NetNs> {
        NetNs::open(Path::new(&format!("/proc/{pid}/ns/net")))
    }

    /// The calling thread's network namespace.
    pub fn current() -> Result<NetNs> {
        NetNs::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// A fresh network namespace that no process is in: a helper thread unshares its network
    /// namespace, opens it and exits; the returned fd keeps the namespace alive.
    pub fn create_anonymous() -> Result<NetNs> {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: unshare only affects this helper thread, which exits right after.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } == -1 {
                    return Err(Error::sys("create netns: unshare(CLONE_NEWNET)"));
                }
                NetNs::current()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// The namespace's file descriptor, e.g. for `IFLA_NET_NS_FD`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Runs `f` on a scoped thread that has entered this namespace first; the caller's thread
    /// never changes namespace. A panic in `f` is resumed in the caller.
    pub fn run_in<F: FnOnce() -> R + Send, R: Send>(&self, f: F) -> Result<R> {
        run_in_fd(self.fd(), f)
    }
}

/// [`NetNs::run_in`] for any open network namespace fd.
pub(crate) fn run_in_fd<F: FnOnce() -> R + Send, R: Send>(ns: BorrowedFd<'_>, f: F) -> Result<R> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns only reads the fd, which is open for the borrow's lifetime; it moves
            // this scoped helper thread only, which ends when `f` returns.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
                return Err(Error::sys("enter netns: setns"));
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Identity of the namespace behind an nsfs fd: (device, inode) of the nsfs file.
pub(crate) fn ns_key(ns: BorrowedFd<'_>) -> Result<(u64, u64)> {
    let file = File::from(
        ns.try_clone_to_owned()
            .map_err(|e| Error::sys_from("stat netns", e))?,
    );
    let meta = file
        .metadata()
        .map_err(|e| Error::sys_from("stat netns", e))?;
    Ok((
        std::os::unix::fs::MetadataExt::dev(&meta),
        std::os::unix::fs::MetadataExt::ino(&meta),
    ))
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

fn cstring(op: &str, p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
        op: op.into(),
        what: "path contains a NUL byte".into(),
    })
}

fn mount(
    src: Option<&CString>,
    target: &CString,
    fstype: Option<&CString>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let ptr = |c: Option<&CString>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is a valid NUL-terminated string or null; data is null.
    let rc = unsafe {
        libc::mount(
            ptr(src),
            target.as_ptr(),
            ptr(fstype),
            flags,
            std::ptr::null(),
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `/run/netns` exist and be a shared mount, as `ip netns add` does: if it is not a mount
/// point yet, it is bind-mounted on itself first, then made `MS_SHARED | MS_REC`.
pub fn prepare_run_dir() -> Result<()> {
    let op = "prepare /run/netns";
    std::fs::create_dir_all(NETNS_RUN_DIR).map_err(|e| Error::sys_from(op, e))?;
    let dir = cstring(op, Path::new(NETNS_RUN_DIR))?;
    let shared = libc::MS_SHARED | libc::MS_REC;
    match mount(None, &dir, None, shared) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // Not a mount point yet: bind it on itself, then make it shared.
            let none = CString::new("none").expect("no NUL");
            mount(Some(&dir), &dir, Some(&none), libc::MS_BIND | libc::MS_REC)
                .map_err(|e| Error::sys_from(op, e))?;
            mount(None, &dir, None, shared).map_err(|e| Error::sys_from(op, e))
        }
        Err(e) => Err(Error::sys_from(op, e)),
    }
}

fn registered_path(op: &str, name: &str) -> Result<PathBuf> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::Invalid {
            op: op.into(),
            what: "a namespace name must be non-empty, not \".\" or \"..\", without '/'".into(),
        });
    }
    Ok(Path::new(NETNS_RUN_DIR).join(name))
}

/// Registers `ns` as `/run/netns/NAME` (an empty mode-0 file with the namespace bind-mounted on
/// it) so `ip netns exec NAME` and `ip -n NAME` work. Fails if the name is taken.
pub fn register(ns: &NetNs, name: &str) -> Result<PathBuf> {
    let op = format!("register netns {name}");
    let path = registered_path(&op, name)?;
    // Making the directory shared again (MS_REC) walks every mount under it: once per process,
    // or registering 10,000 namespaces would cost time quadratic in their number.
    static PREPARED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if PREPARED.get().is_none() {
        prepare_run_dir()?;
        let _ = PREPARED.set(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
        .map_err(|e| Error::sys_from(op.clone(), e))?;
    let target = cstring(&op, &path)?;
    let src = CString::new(format!("/proc/thread-self/fd/{}", ns.fd.as_raw_fd())).expect("no NUL");
    if let Err(e) = mount(Some(&src), &target, None, libc::MS_BIND) {
        let _ = std::fs::remove_file(&path);
        return Err(Error::sys_from(op, e));
    }
    Ok(path)
}

/// Undoes [`register`]: detaches the bind mount and removes the file. A name that is not
/// registered is fine, so this is idempotent.
pub fn unregister(name: &str) -> Result<()> {
    let op = format!("unregister netns {name}");
    let path = registered_path(&op, name)?;
    let target = cstring(&op, &path)?;
    // SAFETY: target is a valid NUL-terminated path.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } == -1 {
        let errno = io::Error::last_os_error();
        // EINVAL: not a mount point (half-registered); ENOENT: not there at all.
        // ENAMETOOLONG: a name no registration can have.
        if !matches!(
            errno.raw_os_error(),
            Some(libc::EINVAL | libc::ENOENT | libc::ENAMETOOLONG)
        ) {
            return Err(Error::sys_from(op, errno));
        }
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => Ok(()),
        Err(e) => Err(Error::sys_from(op, e)),
    }
}

/// What `/run/netns/NAME` holds, to tell a registration labwire made from someone else's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// Nothing by that name (or a name the kernel cannot hold, ENAMETOOLONG).
    Absent,
    /// A namespace is mounted there; its nsfs inode.
    Namespace(u64),
    /// A plain file: a registration interrupted before its mount.
    Unmounted,
}

/// See [`Registered`].
pub fn registered(name: &str) -> Registered {
    let Ok(path) = registered_path("", name) else {
        return Registered::Absent;
    };
    let Ok(c) = cstring("", &path) else {
        return Registered::Absent;
    };
    // SAFETY: statfs fills a zeroed struct for a NUL-terminated path.
    let fs_type = unsafe {
        let mut sfs: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut sfs) != 0 {
            return Registered::Absent;
        }
        sfs.f_type
    };
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(&path) {
        Err(_) => Registered::Absent,
        Ok(m) if fs_type == NSFS_MAGIC => Registered::Namespace(m.ino()),
        Ok(_) => Registered::Unmounted,
    }
}

/// The nsfs magic (`NSFS_MAGIC` in linux/magic.h).
const NSFS_MAGIC: libc::__fsword_t = 0x6e73_6673;

/// [`unregister`] only if `NAME` still holds the namespace whose inode is `ino` (or a registration
/// interrupted before its mount, which only labwire's own journal points at): someone else's
/// namespace that took the name meanwhile stays. Returns whether anything was removed.
pub fn unregister_if(name: &str, ino: u64) -> Result<bool> {
    match registered(name) {
        Registered::Namespace(i) if i == ino => unregister(name).map(|()| true),
        Registered::Unmounted => unregister(name).map(|()| true),
        _ => Ok(false),
    }
}

/// The namespace registered as `NAME`, opened (an open descriptor keeps a namespace alive after
/// its name is gone); `None` when there is none.
pub fn open_registered(name: &str) -> Option<NetNs> {
    NetNs::open(&registered_path("", name).ok()?).ok()
}

/// Whether `/run/netns/NAME` exists.
pub fn is_registered(name: &str) -> bool {
    registered_path("", name)
        .map(|p| p.exists())
        .unwrap_or(false)
}
