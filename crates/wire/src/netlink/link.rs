//! Link requests (veth, bridge, vxlan, macvlan, dummy; up, master, MTU, delete) and the parsed
//! [`Link`] a dump returns. Builders here only produce bytes; the socket lives in the parent.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::msg::*;
use super::Request;

// linux/if_link.h
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_IFALIAS: u16 = 20;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_GROUP: u16 = 27;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
/// `RTEXT_FILTER_SKIP_STATS` (linux/rtnetlink.h): no counters in the reply. A link's counters
/// (and its IPv6 and ICMPv6 statistics) are most of its dump entry, and nothing here reads them:
/// without them a dump of a host with 20,000 interfaces is a fraction of the size.
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
const IFLA_PROP_LIST: u16 = 52;
const IFLA_ALT_IFNAME: u16 = 53;
const NLA_F_NESTED: u16 = 0x8000;
/// `RTM_NEWLINKPROP` adds properties (alternative names) to a link.
const RTM_NEWLINKPROP: u16 = 108;
const NLM_F_APPEND: u16 = 0x800;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
/// `IFLA_BR_FDB_FLUSH` (linux/if_link.h): a flag attribute.
const IFLA_BR_FDB_FLUSH: u16 = 21;
const IFLA_BR_MCAST_SNOOPING: u16 = 23;
const IFLA_MACVLAN_MODE: u16 = 1;
const IFLA_VXLAN_ID: u16 = 1;
const IFLA_VXLAN_GROUP: u16 = 2;
const IFLA_VXLAN_LINK: u16 = 3;
const IFLA_VXLAN_LOCAL: u16 = 4;
const IFLA_VXLAN_LEARNING: u16 = 7;
const IFLA_VXLAN_PORT: u16 = 15;
const IFLA_VXLAN_GROUP6: u16 = 16;
const IFLA_VXLAN_LOCAL6: u16 = 17;

const IFF_UP: u32 = 0x1;
const IFF_RUNNING: u32 = 0x40;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;

/// One end of a veth pair. `netns` is where the end is born (the handle's namespace when
/// `None`); `master` is an ifindex in that namespace.
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    pub name: &'a str,
    pub netns: Option<BorrowedFd<'a>>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    pub master: Option<u32>,
    pub up: bool,
    /// The interface group (`ip link set … group N`); the kernel's default group 0 when `None`.
    pub group: Option<u32>,
}

impl<'a> VethEnd<'a> {
    /// An end named `name`, in the handle's namespace, down, with kernel defaults.
    pub fn new(name: &'a str) -> Self {
        VethEnd {
            name,
            netns: None,
            mac: None,
            mtu: None,
            master: None,
            up: false,
            group: None,
        }
    }
}

/// A VXLAN device. The underlay (remote, local, parent) is in the handle's namespace; the device
/// itself is born in `netns` when given.
#[derive(Debug, Clone, Copy)]
pub struct Vxlan<'a> {
    pub name: &'a str,
    pub vni: u32,
    pub remote: IpAddr,
    pub local: Option<IpAddr>,
    /// UDP destination port; 4789 is the IANA port.
    pub dst_port: u16,
    /// Underlay device ifindex in the handle's namespace.
    pub parent: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub netns: Option<BorrowedFd<'a>>,
    pub up: bool,
    pub learning: bool,
}

/// How a macvlan forwards between its siblings (`IFLA_MACVLAN_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    Private,
    Vepa,
    Bridge,
    Passthru,
    Source,
}

impl MacvlanMode {
    fn bits(self) -> u32 {
        match self {
            MacvlanMode::Private => 1,
            MacvlanMode::Vepa => 2,
            MacvlanMode::Bridge => 4,
            MacvlanMode::Passthru => 8,
            MacvlanMode::Source => 16,
        }
    }
}

/// A macvlan device on `parent` (an ifindex in the handle's namespace), born in `netns` when
/// given.
#[derive(Debug, Clone, Copy)]
pub struct Macvlan<'a> {
    pub name: &'a str,
    pub parent: u32,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub netns: Option<BorrowedFd<'a>>,
    pub up: bool,
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operationally up (`IF_OPER_UP`, or `UNKNOWN` with `IFF_RUNNING` as for loopback).
    pub oper_up: bool,
    /// `IFLA_INFO_KIND` (`veth`, `bridge`, …); `None` for devices without one such as `lo`.
    pub kind: Option<String>,
    /// Ifindex of the master (bridge) this link is a port of.
    pub master: Option<u32>,
    /// RFC 2863 operational state (`IF_OPER_*`), as `ip link` shows it by name.
    pub oper_state: u8,
    /// `IFLA_IFALIAS`, when set.
    pub alias: Option<String>,
    /// Alternative names (`IFLA_ALT_IFNAME` in `IFLA_PROP_LIST`).
    pub altnames: Vec<String>,
    /// The interface group (`IFLA_GROUP`; 0 is the default group).
    pub group: u32,
}

impl Link {
    /// The operational state as `ip link` names it (lower case): `up`, `down`, `unknown`, …
    pub fn oper_state_name(&self) -> &'static str {
        match self.oper_state {
            1 => "notpresent",
            2 => "down",
            3 => "lowerlayerdown",
            4 => "testing",
            5 => "dormant",
            IF_OPER_UP => "up",
            _ => "unknown",
        }
    }
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `struct ifinfomsg` with `AF_UNSPEC`.
fn ifinfomsg(index: u32, up: bool) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    if up {
        b[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        b[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
    }
    b
}

/// Attributes every new link takes, in the order `ip link add` sends them.
fn common_attrs(
    m: &mut MsgBuilder,
    name: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    master: Option<u32>,
    netns: Option<BorrowedFd<'_>>,
    queues: Option<u32>,
) {
    if let Some(mtu) = mtu {
        m.attr_u32(IFLA_MTU, mtu);
    }
    if let Some(mac) = mac {
        m.attr(IFLA_ADDRESS, &mac);
    }
    if let Some(master) = master {
        m.attr_u32(IFLA_MASTER, master);
    }
    if let Some(fd) = netns {
        m.attr_u32(IFLA_NET_NS_FD, fd.as_raw_fd() as u32);
    }
    if let Some(q) = queues {
        m.attr_u32(IFLA_NUM_TX_QUEUES, q);
        m.attr_u32(IFLA_NUM_RX_QUEUES, q);
    }
    m.attr_str(IFLA_IFNAME, name);
}

const CREATE: u16 = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;

/// Queues of each veth end. Left unset, the kernel gives a veth one queue per possible CPU and
/// then cuts the real number to one, which removes the extra queues' sysfs entries and waits for
/// an expedited RCU grace period: 18 % of a veth pair's creation here (2000 pairs by `ip -batch`,
/// 0.54 s against 0.44 s with `numtxqueues 1 numrxqueues 1`). Traffic is the same either way: a
/// veth transmits on one queue unless its channels are raised with ethtool, which one queue
/// forbids.
const VETH_QUEUES: Option<u32> = Some(1);

/// The attributes of one end of a new veth pair (the peer's master is set afterwards).
fn veth_end_attrs(m: &mut MsgBuilder, e: &VethEnd<'_>, master: Option<u32>) {
    common_attrs(m, e.name, e.mtu, e.mac, master, e.netns, VETH_QUEUES);
    if let Some(g) = e.group {
        m.attr_u32(IFLA_GROUP, g);
    }
}

/// One `RTM_NEWLINK` creating both ends of a veth pair in their target namespaces.
pub(crate) fn veth(a: &VethEnd<'_>, b: &VethEnd<'_>) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, CREATE);
    m.push(&ifinfomsg(0, a.up));
    veth_end_attrs(&mut m, a, a.master);
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str_nonul(IFLA_INFO_KIND, "veth");
    let data = m.nest_start(IFLA_INFO_DATA);
    let peer = m.nest_start(VETH_INFO_PEER);
    // The peer cannot be brought up or enslaved here: veth_open() fails with ENOTCONN until
    // both ends are linked, which happens after the peer is configured. See `peer_setup`.
    m.push(&ifinfomsg(0, false));
    veth_end_attrs(&mut m, b, None);
    m.nest_end(peer);
    m.nest_end(data);
    m.nest_end(info);
    Request::new(m, format!("create veth {}<->{}", a.name, b.name)).kind("veth")
}

/// What the veth peer still needs once the pair exists (`up`, `master`), as a request by name
/// to be sent from a socket in the peer's namespace.
pub(crate) fn peer_setup(b: &VethEnd<'_>) -> Option<Request> {
    if !b.up && b.master.is_none() {
        return None;
    }
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(0, b.up));
    if let Some(master) = b.master {
        m.attr_u32(IFLA_MASTER, master);
    }
    m.attr_str(IFLA_IFNAME, b.name);
    let what = match (b.up, b.master) {
        (true, Some(mm)) => format!("up, master {mm}"),
        (true, None) => "up".to_string(),
        (false, Some(mm)) => format!("master {mm}"),
        (false, None) => unreachable!(),
    };
    Some(Request::new(m, format!("set veth peer {} {what}", b.name)))
}

/// A link of `kind` with no kind-specific data (bridge, dummy).
pub(crate) fn plain(
    kind: &'static str,
    name: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    netns: Option<BorrowedFd<'_>>,
    up: bool,
) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, CREATE);
    m.push(&ifinfomsg(0, up));
    common_attrs(&mut m, name, mtu, mac, None, netns, None);
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str_nonul(IFLA_INFO_KIND, kind);
    m.nest_end(info);
    Request::new(m, format!("create {kind} {name}")).kind(kind)
}

fn ip_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub(crate) fn vxlan(v: &Vxlan<'_>) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, CREATE);
    m.push(&ifinfomsg(0, v.up));
    common_attrs(&mut m, v.name, v.mtu, v.mac, None, v.netns, None);
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str_nonul(IFLA_INFO_KIND, "vxlan");
    let data = m.nest_start(IFLA_INFO_DATA);
    m.attr_u32(IFLA_VXLAN_ID, v.vni);
    let group = if v.remote.is_ipv4() {
        IFLA_VXLAN_GROUP
    } else {
        IFLA_VXLAN_GROUP6
    };
    m.attr(group, &ip_bytes(&v.remote));
    if let Some(local) = &v.local {
        let ty = if local.is_ipv4() {
            IFLA_VXLAN_LOCAL
        } else {
            IFLA_VXLAN_LOCAL6
        };
        m.attr(ty, &ip_bytes(local));
    }
    if let Some(parent) = v.parent {
        m.attr_u32(IFLA_VXLAN_LINK, parent);
    }
    m.attr_u8(IFLA_VXLAN_LEARNING, u8::from(v.learning));
    m.attr(IFLA_VXLAN_PORT, &v.dst_port.to_be_bytes());
    m.nest_end(data);
    m.nest_end(info);
    Request::new(m, format!("create vxlan {} vni {}", v.name, v.vni)).kind("vxlan")
}

pub(crate) fn macvlan(v: &Macvlan<'_>) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, CREATE);
    m.push(&ifinfomsg(0, v.up));
    m.attr_u32(IFLA_LINK, v.parent);
    common_attrs(&mut m, v.name, v.mtu, v.mac, None, v.netns, None);
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str_nonul(IFLA_INFO_KIND, "macvlan");
    let data = m.nest_start(IFLA_INFO_DATA);
    m.attr_u32(IFLA_MACVLAN_MODE, v.mode.bits());
    m.nest_end(data);
    m.nest_end(info);
    Request::new(
        m,
        format!("create macvlan {} on ifindex {}", v.name, v.parent),
    )
    .kind("macvlan")
}

/// `RTM_NEWLINK` on an existing link: set up, master or MTU.
pub(crate) fn set_up(index: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, true));
    Request::new(m, format!("set link {index} up"))
}

/// `ip link set IF down`: IFF_UP cleared (in the change mask, not in the flags).
pub(crate) fn set_down(index: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    let mut b = ifinfomsg(index, false);
    b[12..16].copy_from_slice(&IFF_UP.to_ne_bytes());
    m.push(&b);
    Request::new(m, format!("set link {index} down"))
}

/// `RTM_NEWLINK` moving a link into the namespace of `netns` (it keeps its name and MAC; the
/// kernel drops its addresses and takes it down).
pub(crate) fn set_netns(index: u32, netns: BorrowedFd<'_>) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    m.attr_u32(IFLA_NET_NS_FD, netns.as_raw_fd() as u32);
    Request::new(m, format!("move link {index} to another namespace"))
}

pub(crate) fn set_master(index: u32, master: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    m.attr_u32(IFLA_MASTER, master);
    Request::new(m, format!("set link {index} master {master}"))
}

pub(crate) fn set_mtu(index: u32, mtu: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    m.attr_u32(IFLA_MTU, mtu);
    Request::new(m, format!("set link {index} mtu {mtu}"))
}

/// Flushes the dynamic (learned) entries of bridge `index`'s forwarding database, as
/// `ip link set dev BR type bridge fdb_flush` does; its ports' own entries stay.
pub(crate) fn flush_fdb(index: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str_nonul(IFLA_INFO_KIND, "bridge");
    let data = m.nest_start(IFLA_INFO_DATA);
    m.attr(IFLA_BR_FDB_FLUSH, &[]);
    m.nest_end(data);
    m.nest_end(info);
    Request::new(
        m,
        format!("flush the forwarding database of bridge {index}"),
    )
}

/// Turns multicast snooping of bridge `index` on or off, as
/// `ip link set dev BR type bridge mcast_snooping 0|1` does.
pub(crate) fn set_mcast_snooping(index: u32, on: bool) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    let info = m.nest_start(IFLA_LINKINFO);
    m.attr_str_nonul(IFLA_INFO_KIND, "bridge");
    let data = m.nest_start(IFLA_INFO_DATA);
    m.attr(IFLA_BR_MCAST_SNOOPING, &[u8::from(on)]);
    m.nest_end(data);
    m.nest_end(info);
    Request::new(m, format!("set multicast snooping of bridge {index}"))
}

/// `RTM_NEWLINKPROP` adding an alternative name, as `ip link property add dev X altname NAME`
/// sends it. An altname may be up to 127 bytes, so a name too long for `IFLA_IFNAME` still finds
/// the link (`ip link show NAME`).
pub(crate) fn add_altname(index: u32, name: &str) -> Request {
    let mut m = MsgBuilder::new(
        RTM_NEWLINKPROP,
        NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE | NLM_F_APPEND,
    );
    m.push(&ifinfomsg(index, false));
    let list = m.nest_start(IFLA_PROP_LIST | NLA_F_NESTED);
    m.attr_str(IFLA_ALT_IFNAME, name);
    m.nest_end(list);
    Request::new(m, format!("add altname {name} to link {index}")).eexist_ok()
}

/// `RTM_NEWLINK` setting the link's alias (`ip link set dev X alias TEXT`, `ifAlias`).
pub(crate) fn set_alias(index: u32, alias: &str) -> Request {
    let mut m = MsgBuilder::new(RTM_NEWLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    m.attr_str_nonul(IFLA_IFALIAS, alias);
    Request::new(m, format!("set alias {alias} on link {index}"))
}

pub(crate) fn delete(index: u32) -> Request {
    let mut m = MsgBuilder::new(RTM_DELLINK, NLM_F_ACK);
    m.push(&ifinfomsg(index, false));
    Request::new(m, format!("delete link {index}"))
}

/// `RTM_GETLINK` for one link by name.
pub(crate) fn get_by_name(name: &str) -> Request {
    let mut m = MsgBuilder::new(RTM_GETLINK, NLM_F_ACK);
    m.push(&ifinfomsg(0, false));
    m.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    m.attr_str(IFLA_IFNAME, name);
    Request::new(m, format!("get link {name}"))
}

pub(crate) fn dump() -> Request {
    let mut m = MsgBuilder::new(RTM_GETLINK, NLM_F_DUMP);
    m.push(&ifinfomsg(0, false));
    m.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    Request::new(m, "dump links".to_string())
}

/// Parses the body of an `RTM_NEWLINK` reply.
pub(crate) fn parse(body: &[u8]) -> Option<Link> {
    if body.len() < 16 {
        return None;
    }
    let index = u32_at(body, 4);
    let flags = u32_at(body, 8);
    let mut link = Link {
        index,
        name: String::new(),
        mtu: 0,
        mac: None,
        up: flags & IFF_UP != 0,
        oper_up: false,
        kind: None,
        master: None,
        oper_state: IF_OPER_UNKNOWN,
        alias: None,
        altnames: Vec::new(),
        group: 0,
    };
    let mut oper = IF_OPER_UNKNOWN;
    for (ty, p) in attrs(&body[16..]) {
        match ty {
            IFLA_IFNAME => link.name = attr_string(p),
            IFLA_MTU if p.len() >= 4 => link.mtu = u32_at(p, 0),
            IFLA_ADDRESS if p.len() == 6 => link.mac = Some(p.try_into().expect("6 bytes")),
            IFLA_MASTER if p.len() >= 4 => link.master = Some(u32_at(p, 0)),
            IFLA_GROUP if p.len() >= 4 => link.group = u32_at(p, 0),
            IFLA_IFALIAS => link.alias = Some(attr_string(p)).filter(|a| !a.is_empty()),
            IFLA_PROP_LIST => link.altnames.extend(
                attrs(p)
                    .filter(|(t, _)| *t == IFLA_ALT_IFNAME)
                    .map(|(_, n)| attr_string(n)),
            ),
            IFLA_OPERSTATE if !p.is_empty() => oper = p[0],
            IFLA_LINKINFO => {
                link.kind = attrs(p)
                    .find(|(t, _)| *t == IFLA_INFO_KIND)
                    .map(|(_, k)| attr_string(k));
            }
            _ => {}
        }
    }
    link.oper_state = oper;
    link.oper_up = oper == IF_OPER_UP || (oper == IF_OPER_UNKNOWN && flags & IFF_RUNNING != 0);
    Some(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured with `strace -e trace=sendmsg -e write=3 ip link add va mtu 1400 address
    /// 02:00:00:00:00:01 numtxqueues 1 numrxqueues 1 up type veth peer name vb mtu 1400 address
    /// 02:00:00:00:00:02 numtxqueues 1 numrxqueues 1` (iproute2 6.1), with the sequence number
    /// zeroed.
    const IP_VETH: &str = "
        9c 00 00 00 10 00 05 06  00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00  01 00 00 00 01 00 00 00
        08 00 04 00 78 05 00 00  0a 00 01 00 02 00 00 00
        00 01 00 00 08 00 1f 00  01 00 00 00 08 00 20 00
        01 00 00 00 07 00 03 00  76 61 00 00 50 00 12 00
        08 00 01 00 76 65 74 68  44 00 02 00 40 00 01 00
        00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
        08 00 04 00 78 05 00 00  0a 00 01 00 02 00 00 00
        00 02 00 00 08 00 1f 00  01 00 00 00 08 00 20 00
        01 00 00 00 07 00 03 00  76 62 00 00";

    /// `ip link add va master br0 numtxqueues 1 numrxqueues 1 type veth peer name vb numtxqueues 1
    /// numrxqueues 1` with br0 at ifindex 2.
    const IP_VETH_MASTER: &str = "
        7c 00 00 00 10 00 05 06  00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
        08 00 0a 00 02 00 00 00  08 00 1f 00 01 00 00 00
        08 00 20 00 01 00 00 00  07 00 03 00 76 61 00 00
        3c 00 12 00 08 00 01 00  76 65 74 68 30 00 02 00
        2c 00 01 00 00 00 00 00  00 00 00 00 00 00 00 00
        00 00 00 00 08 00 1f 00  01 00 00 00 08 00 20 00
        01 00 00 00 07 00 03 00  76 62 00 00";

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// `ip link property add dev va altname e1-1` on ifindex 3 (iproute2 6.1, strace), sequence
    /// number zeroed.
    const IP_ALTNAME: &str = "
        30 00 00 00 6c 00 05 0e  00 00 00 00 00 00 00 00
        00 00 00 00 03 00 00 00  00 00 00 00 00 00 00 00
        10 00 34 80 09 00 35 00  65 31 2d 31 00 00 00 00";

    /// `ip link set dev va alias ethernet-1/1` on ifindex 3, sequence number zeroed.
    const IP_ALIAS: &str = "
        30 00 00 00 10 00 05 00  00 00 00 00 00 00 00 00
        00 00 00 00 03 00 00 00  00 00 00 00 00 00 00 00
        10 00 14 00 65 74 68 65  72 6e 65 74 2d 31 2f 31";

    /// `ip link set dev va type bridge fdb_flush` on ifindex 2 (iproute2 6.1, strace), sequence
    /// number zeroed.
    const IP_FDB_FLUSH: &str = "
        38 00 00 00 10 00 05 00  00 00 00 00 00 00 00 00
        00 00 00 00 02 00 00 00  00 00 00 00 00 00 00 00
        18 00 12 00 0a 00 01 00  62 72 69 64 67 65 00 00
        08 00 02 00 04 00 15 00";

    /// `ip link set dev va type bridge mcast_snooping 0` on ifindex 2, sequence number zeroed.
    const IP_NO_SNOOPING: &str = "
        3c 00 00 00 10 00 05 00  00 00 00 00 00 00 00 00
        00 00 00 00 02 00 00 00  00 00 00 00 00 00 00 00
        1c 00 12 00 0a 00 01 00  62 72 69 64 67 65 00 00
        0c 00 02 00 05 00 17 00  00 00 00 00";

    #[test]
    fn fdb_flush_and_snooping_match_ip() {
        assert_eq!(flush_fdb(2).msg, hex(IP_FDB_FLUSH));
        assert_eq!(set_mcast_snooping(2, false).msg, hex(IP_NO_SNOOPING));
    }

    #[test]
    fn altname_and_alias_match_ip() {
        assert_eq!(add_altname(3, "e1-1").msg, hex(IP_ALTNAME));
        assert_eq!(set_alias(3, "ethernet-1/1").msg, hex(IP_ALIAS));
    }

    #[test]
    fn veth_matches_ip_link_add() {
        let a = VethEnd {
            mtu: Some(1400),
            mac: Some([2, 0, 0, 0, 0, 1]),
            up: true,
            ..VethEnd::new("va")
        };
        let b = VethEnd {
            mtu: Some(1400),
            mac: Some([2, 0, 0, 0, 0, 2]),
            ..VethEnd::new("vb")
        };
        assert_eq!(veth(&a, &b).msg, hex(IP_VETH));
    }

    #[test]
    fn veth_with_master_matches_ip_link_add() {
        let a = VethEnd {
            master: Some(2),
            ..VethEnd::new("va")
        };
        assert_eq!(veth(&a, &VethEnd::new("vb")).msg, hex(IP_VETH_MASTER));
    }

    #[test]
    fn veth_in_namespaces_puts_net_ns_fd_on_both_ends() {
        // Reasoned out: IFLA_NET_NS_FD (28) is a u32 placed after IFLA_MASTER, before IFLA_IFNAME,
        // on the link and inside the peer's ifinfomsg attributes.
        let stdin = std::io::stdin();
        let fd = std::os::fd::AsFd::as_fd(&stdin);
        let a = VethEnd {
            netns: Some(fd),
            ..VethEnd::new("va")
        };
        let b = VethEnd {
            netns: Some(fd),
            up: true,
            ..VethEnd::new("vb")
        };
        let mut want = hex(IP_VETH_MASTER);
        // Replace IFLA_MASTER=2 with IFLA_NET_NS_FD=0 (stdin) on the link.
        want[34..36].copy_from_slice(&28u16.to_ne_bytes());
        want[36..40].copy_from_slice(&0u32.to_ne_bytes());
        // Peer: IFF_UP stays out of its ifinfomsg (set afterwards); IFLA_NET_NS_FD=0 goes
        // before its queue counts and IFLA_IFNAME.
        want.splice(0x64..0x64, hex("08 00 1c 00 00 00 00 00"));
        want[0..4].copy_from_slice(&0x84u32.to_ne_bytes());
        // LINKINFO, INFO_DATA and VETH_INFO_PEER each grow by 8.
        for (at, len) in [(0x40usize, 0x44u16), (0x4c, 0x38), (0x50, 0x34)] {
            want[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        assert_eq!(veth(&a, &b).msg, want);
    }

    #[test]
    fn link_reply_round_trips_through_parse() {
        let a = VethEnd {
            mtu: Some(1400),
            mac: Some([2, 0, 0, 0, 0, 1]),
            up: true,
            ..VethEnd::new("va")
        };
        let msg = veth(&a, &VethEnd::new("vb")).msg;
        let link = parse(&msg[NLMSG_HDRLEN..]).unwrap();
        assert_eq!(link.name, "va");
        assert_eq!(link.mtu, 1400);
        assert_eq!(link.mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(link.kind.as_deref(), Some("veth"));
        assert!(link.up);
    }
}
