//! TAP devices through `/dev/net/tun`: making a persistent tap inside a network namespace (for a
//! VM monitor to attach to later) and attaching to one.
//!
//! A tun/tap device is born in the network namespace of the task that opened `/dev/net/tun`, so
//! both steps happen on a thread inside the namespace ([`NetNs::run_in`]). A persistent tap with
//! no process attached exists with its carrier off; it is an ordinary link otherwise:
//! [`Handle::delete_link`](crate::Handle::delete_link) removes it (`RTM_DELLINK`), and it is
//! destroyed with its namespace like any virtual link. labwire joins a VM's tap to its namespace's
//! veth with [`Handle::stitch`](crate::Handle::stitch) rather than a bridge.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::netns::NetNs;
use crate::{Error, Result};

const TUN_PATH: &CStr = c"/dev/net/tun";

/// Longest interface name the kernel accepts (`IFNAMSIZ` less the NUL).
const IFNAME_MAX: usize = libc::IFNAMSIZ - 1;

/// Creates a persistent TAP device named `name` inside `ns`: `IFF_TAP | IFF_NO_PI`, no
/// `IFF_VNET_HDR` (whoever attaches sets its own header flags), owned by no particular user. It
/// stays down, with no carrier, until brought up and attached to.
///
/// Errors: [`Error::Invalid`] for a name the kernel would refuse (empty, over 15 bytes, with
/// `/`, `:`, `%` or whitespace); [`Error::Unsupported`] when `/dev/net/tun` is missing (no tun
/// driver, or a `/dev` without the node); `EEXIST` (as [`Error::Sys`]) when a link named `name`
/// exists in `ns` already, whatever its kind.
pub fn create_tap(ns: &NetNs, name: &str) -> Result<()> {
    let op = format!("create tap {name}");
    let flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_TUN_EXCL;
    check_name(&op, name)?;
    ns.run_in(|| {
        let fd = open_tun(&op)?;
        if let Err(errno) = tunsetiff(&fd, name, flags) {
            // IFF_TUN_EXCL turns any existing link of that name into EBUSY; say "exists".
            let errno = match errno.raw_os_error() {
                Some(libc::EBUSY) => io::Error::from_raw_os_error(libc::EEXIST),
                _ => errno,
            };
            return Err(Error::sys_from(op.clone(), errno));
        }
        // SAFETY: TUNSETPERSIST takes its flag by value; fd is the attached tun file.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETPERSIST, 1 as libc::c_ulong) } == -1 {
            return Err(Error::sys(format!("{op}: make persistent (TUNSETPERSIST)")));
        }
        Ok(())
    })?
}

/// Attaches to the existing tap `name` in `ns` and returns its queue file (blocking,
/// close-on-exec): each `read` yields one Ethernet frame the tap transmitted, each `write` of a
/// whole frame is received by the tap, with no packet-information header (`IFF_NO_PI`) and no
/// virtio-net header. Closing the file detaches; a persistent tap stays.
///
/// `ENODEV` when there is no link `name` in `ns`, `EINVAL` when it is not a tap, `EBUSY` when
/// another file is attached already (the tap has one queue).
pub fn open_tap(ns: &NetNs, name: &str) -> Result<OwnedFd> {
    let op = format!("attach to tap {name}");
    check_name(&op, name)?;
    let cname = std::ffi::CString::new(name).expect("check_name refuses NUL");
    ns.run_in(|| {
        // Without IFF_TUN_EXCL, TUNSETIFF would make a transient tap of a missing name.
        // SAFETY: cname is a valid NUL-terminated string.
        if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
            return Err(Error::sys_from(
                op.clone(),
                io::Error::from_raw_os_error(libc::ENODEV),
            ));
        }
        let fd = open_tun(&op)?;
        tunsetiff(&fd, name, libc::IFF_TAP | libc::IFF_NO_PI)
            .map_err(|e| Error::sys_from(op.clone(), e))?;
        Ok(fd)
    })?
}

/// Opens `/dev/net/tun` read-write, close-on-exec.
fn open_tun(op: &str) -> Result<OwnedFd> {
    // SAFETY: TUN_PATH is a valid NUL-terminated path.
    let raw = unsafe { libc::open(TUN_PATH.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw == -1 {
        let errno = io::Error::last_os_error();
        return Err(match errno.raw_os_error() {
            // No node (ENOENT), or a node with no driver behind it (ENODEV, ENXIO).
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => Error::Unsupported {
                op: op.to_string(),
                what: "the running kernel or /dev lacks /dev/net/tun (tun module)".into(),
                errno,
            },
            _ => Error::sys_from(format!("{op}: open /dev/net/tun"), errno),
        });
    }
    // SAFETY: raw is a freshly opened fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `TUNSETIFF`: attaches the open tun file `fd` to the device `name` (making it when missing)
/// with `flags`.
fn tunsetiff(fd: &OwnedFd, name: &str, flags: libc::c_int) -> io::Result<()> {
    let mut req = ifreq(name, flags);
    // SAFETY: fd is an open tun file; req is a valid ifreq, which the kernel reads and writes
    // back, live for the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETIFF,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Checks `name` as the kernel's `dev_valid_name` would, and refuses `%` too (which would make the
/// kernel pick a name).
fn check_name(op: &str, name: &str) -> Result<()> {
    let bad = |what: &str| Error::Invalid {
        op: op.to_string(),
        what: what.to_string(),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(bad(
            "an interface name must be non-empty and not \".\" or \"..\"",
        ));
    }
    if name.len() > IFNAME_MAX {
        return Err(bad(&format!(
            "an interface name is at most {IFNAME_MAX} bytes, this one has {}",
            name.len()
        )));
    }
    if name
        .bytes()
        .any(|b| matches!(b, b'/' | b':' | b'%' | 0) || b.is_ascii_whitespace())
    {
        return Err(bad(
            "an interface name must not contain '/', ':', '%', NUL or whitespace",
        ));
    }
    Ok(())
}

/// The `ifreq` for `TUNSETIFF`: `name` (checked by [`check_name`]) and `flags`.
fn ifreq(name: &str, flags: libc::c_int) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // The flags field is a C short; IFF_TUN_EXCL (0x8000) is its sign bit.
    req.ifr_ifru.ifru_flags = flags as u16 as libc::c_short;
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_the_kernel_sees_them() {
        let op = "create tap x";
        assert!(check_name(op, "tap0").is_ok());
        assert!(check_name(op, "a23456789012345").is_ok());
        let long = check_name(op, "a234567890123456").unwrap_err();
        assert_eq!(
            long.to_string(),
            "create tap x: an interface name is at most 15 bytes, this one has 16"
        );
        for bad in ["", ".", "..", "a/b", "a:b", "tap%d", "a b"] {
            assert!(
                matches!(check_name(op, bad), Err(Error::Invalid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ifreq_carries_name_and_flags() {
        let flags = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_TUN_EXCL;
        let req = ifreq("tap0", flags);
        let name: Vec<u8> = req.ifr_name.iter().map(|&c| c as u8).collect();
        assert_eq!(&name[..5], b"tap0\0");
        // SAFETY: ifru_flags is the member that was written.
        let got = unsafe { req.ifr_ifru.ifru_flags } as u16;
        assert_eq!(got, 0x9002);
    }
}
