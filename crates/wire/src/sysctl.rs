//! Writing sysctls inside a network namespace. `/proc/sys/net` shows the network namespace of the
//! task that opens the file, so the file is opened and written on a thread that has entered the
//! namespace. Only keys the caller names are touched.

use std::io::Write;

use crate::netns::NetNs;
use crate::{Error, Result};

/// `/proc/sys/...` path for a key given as `net.ipv4.ip_forward` or `net/ipv4/ip_forward`.
pub fn sysctl_path(key: &str) -> String {
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    format!("/proc/sys/{}", rel.trim_start_matches('/'))
}

/// Writes `value` to sysctl `key` as seen from inside `ns`.
pub fn write_sysctl_in(ns: &NetNs, key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key);
    ns.run_in(|| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(|e| Error::sys_from(format!("write sysctl {key}={value}"), e))
    })?
}

/// Reads sysctl `key` as seen from inside `ns`, without the trailing newline.
pub fn read_sysctl_in(ns: &NetNs, key: &str) -> Result<String> {
    let path = sysctl_path(key);
    ns.run_in(|| {
        std::fs::read_to_string(&path)
            .map(|s| s.trim_end().to_string())
            .map_err(|e| Error::sys_from(format!("read sysctl {key}"), e))
    })?
}

/// Switches IPv6 off on interfaces of the calling thread's network namespace that carry no
/// address of their own, such as bridge ports, before they get a carrier. Each interface with
/// IPv6 adds its own `fe80::/64` and `ff00::/8` routes, which the lookup of every multicast packet
/// a bridge passes up to the namespace walks, and sends its own MLD reports and DAD probes: with
/// thousands of ports, bringing a lab up became quadratic in its size. A name whose `conf` entry is
/// missing (IPv6 off on the host, or the interface gone) is skipped. Where `/proc/sys` cannot be
/// written (labwire inside a container, whose `/proc/sys` is read-only) the ports keep IPv6, as
/// before: slower at scale, not wrong.
pub fn disable_ipv6<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for name in names {
        let path = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"1"));
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EROFS | libc::EACCES | libc::EPERM)
                ) =>
            {
                return Ok(())
            }
            Err(e) => return Err(Error::sys_from(format!("switch IPv6 off on {name}"), e)),
        }
    }
    Ok(())
}
