//! Address requests (`RTM_NEWADDR`, `RTM_DELADDR`) and parsing of address dumps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::msg::*;
use super::Request;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u8 = 0x02;

pub(crate) fn family(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

pub(crate) fn octets(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `struct ifaddrmsg`.
fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, index: u32) -> [u8; 8] {
    let mut b = [family, prefix_len, flags, 0, 0, 0, 0, 0];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

/// Adds `addr/prefix_len` on link `index`; IPv6 skips duplicate address detection so the
/// address is usable at once. An address already present counts as success.
pub(crate) fn add(index: u32, addr: IpAddr, prefix_len: u8) -> Request {
    let flags = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
    let mut m = MsgBuilder::new(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.push(&ifaddrmsg(family(&addr), prefix_len, flags, index));
    m.attr(IFA_LOCAL, &octets(&addr));
    m.attr(IFA_ADDRESS, &octets(&addr));
    if flags != 0 {
        m.attr_u32(IFA_FLAGS, u32::from(flags));
    }
    Request::new(
        m,
        format!("add address {addr}/{prefix_len} on link {index}"),
    )
    .eexist_ok()
}

/// Removes `addr/prefix_len` from link `index`; an address (or link) already gone is fine.
pub(crate) fn delete(index: u32, addr: IpAddr, prefix_len: u8) -> Request {
    let mut m = MsgBuilder::new(RTM_DELADDR, NLM_F_ACK);
    m.push(&ifaddrmsg(family(&addr), prefix_len, 0, index));
    m.attr(IFA_LOCAL, &octets(&addr));
    m.attr(IFA_ADDRESS, &octets(&addr));
    Request::new(
        m,
        format!("delete address {addr}/{prefix_len} from link {index}"),
    )
    .enoent_ok()
}

pub(crate) fn dump() -> Request {
    let mut m = MsgBuilder::new(RTM_GETADDR, NLM_F_DUMP);
    m.push(&ifaddrmsg(0, 0, 0, 0));
    Request::new(m, "dump addresses".to_string())
}

/// Parses an `RTM_NEWADDR` body into `(ifindex, address, prefix length)`.
pub(crate) fn parse(body: &[u8]) -> Option<(u32, IpAddr, u8)> {
    if body.len() < 8 {
        return None;
    }
    let (fam, prefix, index) = (body[0], body[1], u32_at(body, 4));
    let ip = |p: &[u8]| -> Option<IpAddr> {
        match (i32::from(fam), p.len()) {
            (libc::AF_INET, 4) => Some(Ipv4Addr::from(<[u8; 4]>::try_from(p).ok()?).into()),
            (libc::AF_INET6, 16) => Some(Ipv6Addr::from(<[u8; 16]>::try_from(p).ok()?).into()),
            _ => None,
        }
    };
    let (mut local, mut address) = (None, None);
    for (ty, p) in attrs(&body[8..]) {
        match ty {
            IFA_LOCAL => local = ip(p),
            IFA_ADDRESS => address = ip(p),
            _ => {}
        }
    }
    Some((index, local.or(address)?, prefix))
}
