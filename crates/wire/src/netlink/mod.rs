//! A `NETLINK_ROUTE` (or, for nftables, `NETLINK_NETFILTER`) socket ([`Handle`]) and request
//! batching ([`Batch`]).
//!
//! This module owns the socket and the request/ack exchange: sequence numbers, reading acks and
//! dumps, turning kernel errors into [`Error`]s that name the request. The bytes of each request
//! are built in the `link`, `addr`, `route` and `tc` submodules; nothing here decides what a lab
//! looks like. A handle is bound to the namespace it was created in; requests may still place
//! new links in other namespaces through `IFLA_NET_NS_FD`.

mod addr;
mod link;
mod msg;
mod nft;
mod route;
mod shape;
mod tc;

use std::collections::HashMap;
use std::io;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub use link::{format_mac, Link, Macvlan, MacvlanMode, VethEnd, Vxlan};
use msg::*;
pub use nft::BridgeIcmpv6Drop;
pub use shape::Shape;
pub use tc::REDIRECT_PREF;

use crate::netns::{self, NetNs};
use crate::{Error, Result};

/// Largest number of request bytes put in one `sendmsg`.
const CHUNK_BYTES: usize = 32 * 1024;
/// Largest number of requests in one `sendmsg`, so their acks fit the receive buffer.
const CHUNK_REQUESTS: usize = 128;
/// Receive buffer asked for, large enough for a chunk's acks and for dumps.
const RCVBUF: libc::c_int = 4 * 1024 * 1024;
/// Receive buffer for one datagram (the kernel caps dump datagrams near 32 KiB).
const RECV_LEN: usize = 64 * 1024;

const NETLINK_EXT_ACK: libc::c_int = 11;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NLM_F_CAPPED: u16 = 0x100;

/// One request ready to send: its bytes and how to describe and judge its answer.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    msg: Vec<u8>,
    /// What the request does, naming the object, for error messages.
    op: String,
    /// The `IFLA_INFO_KIND` it creates, so `EOPNOTSUPP` can be reported as a missing driver.
    kind: Option<&'static str>,
    /// `EEXIST` counts as success (adding an address that is there already).
    eexist_ok: bool,
    /// `ENOENT` counts as success (removing a filter that is not there).
    enoent_ok: bool,
    /// For requests naming a tc qdisc, classifier or action: what the kernel lacks when it
    /// answers `ENOENT` or `EOPNOTSUPP`, given its extended-ack message.
    lacks: Option<fn(Option<&str>) -> &'static str>,
    /// A request to send once this one succeeded, from a socket in another namespace (`Some`)
    /// or this handle's (`None`): bringing up a veth peer.
    follow: Option<(Option<NsKey>, Box<Request>)>,
}

/// Identity of a network namespace: (device, inode) of its nsfs file.
type NsKey = (u64, u64);

impl Request {
    pub(crate) fn new(m: MsgBuilder, op: String) -> Request {
        Request {
            msg: m.finish(),
            op,
            kind: None,
            eexist_ok: false,
            enoent_ok: false,
            lacks: None,
            follow: None,
        }
    }

    pub(crate) fn kind(mut self, kind: &'static str) -> Request {
        self.kind = Some(kind);
        self
    }

    pub(crate) fn eexist_ok(mut self) -> Request {
        self.eexist_ok = true;
        self
    }

    pub(crate) fn enoent_ok(mut self) -> Request {
        self.enoent_ok = true;
        self
    }

    pub(crate) fn lacks(mut self, what: fn(Option<&str>) -> &'static str) -> Request {
        self.lacks = Some(what);
        self
    }

    /// Judges the kernel's answer `errno` (0 for success).
    fn outcome(&self, errno: i32, extack: Option<String>) -> Result<()> {
        match errno {
            0 => Ok(()),
            libc::EEXIST if self.eexist_ok => Ok(()),
            libc::ENOENT if self.enoent_ok => Ok(()),
            libc::ENOENT | libc::EOPNOTSUPP if self.lacks.is_some() => {
                let what = self.lacks.map(|f| f(extack.as_deref())).unwrap_or_default();
                Err(Error::Unsupported {
                    op: self.op.clone(),
                    what: what.to_string(),
                    errno: io::Error::from_raw_os_error(errno),
                })
            }
            libc::EOPNOTSUPP
                if self.kind.is_some()
                    && extack
                        .as_deref()
                        .is_none_or(|m| m.contains("Unknown device type")) =>
            {
                Err(Error::KernelLacks {
                    kind: self.kind.unwrap_or_default().to_string(),
                })
            }
            _ => Err(Error::Netlink {
                op: self.op.clone(),
                errno: io::Error::from_raw_os_error(errno),
                extack,
            }),
        }
    }
}

/// A `NETLINK_ROUTE` socket, or a `NETLINK_NETFILTER` one from [`Handle::netfilter`]. It stays
/// bound to the network namespace it was created in.
#[derive(Debug)]
pub struct Handle {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// The namespace this socket is bound to.
    ns: NsKey,
    /// Sockets in other namespaces, opened on first need to finish veth peers there.
    peers: HashMap<NsKey, Handle>,
}

fn setsockopt_int(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the value pointer and length describe a live c_int; fd is an open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Handle {
    /// A socket in the calling thread's network namespace.
    pub fn new() -> Result<Handle> {
        Handle::open(libc::NETLINK_ROUTE, "open netlink socket")
    }

    /// A `NETLINK_NETFILTER` socket in the calling thread's network namespace, for nftables
    /// ([`Handle::replace_bridge_icmpv6_drop`], [`Handle::delete_bridge_table`]).
    pub fn netfilter() -> Result<Handle> {
        Handle::open(libc::NETLINK_NETFILTER, "open netfilter netlink socket")
    }

    fn open(protocol: libc::c_int, op: &'static str) -> Result<Handle> {
        // SAFETY: plain socket(2) call with constant arguments.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw == -1 {
            return Err(Error::sys(op));
        }
        // SAFETY: raw is a freshly created fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        setsockopt_int(&fd, libc::SOL_NETLINK, NETLINK_EXT_ACK, 1)
            .map_err(|e| Error::sys_from(op, e))?;
        setsockopt_int(&fd, libc::SOL_NETLINK, NETLINK_CAP_ACK, 1)
            .map_err(|e| Error::sys_from(op, e))?;
        // RCVBUFFORCE needs CAP_NET_ADMIN; fall back to what rmem_max allows.
        if setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF).is_err() {
            setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF)
                .map_err(|e| Error::sys_from(op, e))?;
        }
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: sa is a valid sockaddr_nl and the length matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc == -1 {
            return Err(Error::sys(op));
        }
        let seq = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        let ns = netns::ns_key(NetNs::current()?.fd())?;
        Ok(Handle {
            fd,
            seq,
            buf: vec![0; RECV_LEN],
            ns,
            peers: HashMap::new(),
        })
    }

    /// A socket created on a thread inside `ns`; it stays bound to `ns`.
    pub fn in_netns(ns: &NetNs) -> Result<Handle> {
        ns.run_in(Handle::new)?
    }

    /// A socket inside `ns`, made by moving the calling thread into `ns` for the `socket(2)` call
    /// and back to `home` (the thread's own namespace) at once. Cheaper than [`Handle::in_netns`]
    /// (no thread is started) for worker threads that configure many namespaces in turn; the
    /// caller must own the thread (no async runtime may schedule other work on it meanwhile).
    pub fn in_netns_from(ns: &NetNs, home: &NetNs) -> Result<Handle> {
        // SAFETY: setns on descriptors borrowed for the call; the thread returns to `home` before
        // this function returns, whatever happened in between.
        if unsafe { libc::setns(ns.fd().as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
            return Err(Error::sys("enter netns: setns"));
        }
        let h = Handle::new();
        // SAFETY: as above.
        if unsafe { libc::setns(home.fd().as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
            return Err(Error::sys("return to the home netns: setns"));
        }
        h
    }

    /// Starts a batch of requests sent together by [`Batch::commit`].
    pub fn batch(&mut self) -> Batch<'_> {
        Batch {
            handle: self,
            reqs: Vec::new(),
            failed: None,
        }
    }

    // ---- links ----

    /// Creates a veth pair with one `RTM_NEWLINK`, each end born in its own namespace. The
    /// kernel cannot bring the peer up (or enslave it) while creating the pair, so when `b.up`
    /// or `b.master` is set a second request does it from a socket in `b`'s namespace (opened
    /// once per namespace and kept by this handle).
    pub fn add_veth(&mut self, a: &VethEnd<'_>, b: &VethEnd<'_>) -> Result<()> {
        let req = self.veth_request(a, b)?;
        self.execute_one(req)
    }

    fn veth_request(&mut self, a: &VethEnd<'_>, b: &VethEnd<'_>) -> Result<Request> {
        let mut req = link::veth(a, b);
        if let Some(setup) = link::peer_setup(b) {
            let target = match b.netns {
                None => None,
                Some(fd) => self.peer_socket(fd)?,
            };
            req.follow = Some((target, Box::new(setup)));
        }
        Ok(req)
    }

    /// Makes sure a socket in namespace `fd` exists; `None` when that is this handle's own.
    fn peer_socket(&mut self, fd: BorrowedFd<'_>) -> Result<Option<NsKey>> {
        let key = netns::ns_key(fd)?;
        if key == self.ns {
            return Ok(None);
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.peers.entry(key) {
            slot.insert(netns::run_in_fd(fd, Handle::new)??);
        }
        Ok(Some(key))
    }

    /// Creates a bridge in this handle's namespace and returns its ifindex.
    pub fn add_bridge(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        up: bool,
    ) -> Result<u32> {
        self.execute_one(link::plain("bridge", name, mtu, mac, None, up))?;
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| Error::Protocol {
                op: format!("create bridge {name}"),
                what: "created, but not found afterwards".into(),
            })
    }

    /// Creates a VXLAN device (in `v.netns` when given).
    pub fn add_vxlan(&mut self, v: &Vxlan<'_>) -> Result<()> {
        self.execute_one(link::vxlan(v))
    }

    /// Creates a macvlan device on a parent in this handle's namespace (in `m.netns` when given).
    pub fn add_macvlan(&mut self, m: &Macvlan<'_>) -> Result<()> {
        self.execute_one(link::macvlan(m))
    }

    /// Creates a dummy device; [`Error::KernelLacks`] when the kernel has no dummy driver.
    pub fn add_dummy(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        netns: Option<BorrowedFd<'_>>,
        up: bool,
    ) -> Result<()> {
        self.execute_one(link::plain("dummy", name, mtu, mac, netns, up))
    }

    /// The link named `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut found = None;
        match self.exchange(vec![link::get_by_name(name)], |_, ty, body| {
            if ty == RTM_NEWLINK {
                found = link::parse(body);
            }
        }) {
            Ok(()) => Ok(found),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link in this handle's namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut out = Vec::new();
        self.exchange(vec![link::dump()], |_, ty, body| {
            if ty == RTM_NEWLINK {
                out.extend(link::parse(body));
            }
        })?;
        Ok(out)
    }

    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.execute_one(link::set_up(index))
    }

    /// Sets the link administratively down (`ip link set IF down`); a veth's peer then loses
    /// its carrier.
    pub fn set_down(&mut self, index: u32) -> Result<()> {
        self.execute_one(link::set_down(index))
    }

    /// Moves a link into namespace `ns` (each move waits for an RCU grace period: for a few
    /// interfaces of one node, never for a lab's links).
    pub fn set_netns(&mut self, index: u32, ns: &crate::NetNs) -> Result<()> {
        self.execute_one(link::set_netns(index, ns.fd()))
    }

    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        self.execute_one(link::set_master(index, master))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        self.execute_one(link::set_mtu(index, mtu))
    }

    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        self.execute_one(link::delete(index))
    }

    /// Forgets what bridge `index` learned (its dynamic forwarding entries). Removing a port walks
    /// the bridge's whole forwarding database, so a bridge that learned every MAC of a large L2
    /// domain is flushed before its ports go: that keeps the removal linear in the ports.
    pub fn flush_fdb(&mut self, index: u32) -> Result<()> {
        self.execute_one(link::flush_fdb(index))
    }

    /// Turns multicast snooping of bridge `index` on or off.
    pub fn set_mcast_snooping(&mut self, index: u32, on: bool) -> Result<()> {
        self.execute_one(link::set_mcast_snooping(index, on))
    }

    /// Deletes the link named `name`; `false` when there was none.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool> {
        let Some(l) = self.link(name)? else {
            return Ok(false);
        };
        match self.delete_link(l.index) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---- addresses and routes ----

    /// Adds an address (IPv6 without duplicate address detection); already present is fine.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        self.execute_one(addr::add(index, addr, prefix_len))
    }

    /// Removes an address from link `index`; one the link does not have (EADDRNOTAVAIL) or a link
    /// that is gone (ENODEV) counts as success.
    pub fn delete_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        match self.execute_one(addr::delete(index, addr, prefix_len)) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => {
                Ok(())
            }
            r => r,
        }
    }

    /// `(ifindex, address, prefix length)` of every address, or of link `index`'s.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<(u32, IpAddr, u8)>> {
        let mut out = Vec::new();
        self.exchange(vec![addr::dump()], |_, ty, body| {
            if ty == RTM_NEWADDR {
                out.extend(addr::parse(body).filter(|a| index.is_none_or(|i| a.0 == i)));
            }
        })?;
        Ok(out)
    }

    /// Adds a default route via `gateway` (IPv4 or IPv6).
    pub fn add_default_route(&mut self, gateway: IpAddr, oif: Option<u32>) -> Result<()> {
        self.execute_one(route::add(
            unspecified_like(&gateway),
            0,
            Some(gateway),
            oif,
        ))
    }

    pub fn add_route(
        &mut self,
        dst: IpAddr,
        prefix_len: u8,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<()> {
        self.execute_one(route::add(dst, prefix_len, gateway, oif))
    }

    // ---- traffic control ----

    /// Adds the ingress qdisc (`ffff:`) to link `ifindex`; one already there is kept and counts
    /// as success. The request carries `NLM_F_CREATE` but not `NLM_F_EXCL`, so the kernel itself
    /// judges an existing qdisc: an ingress qdisc is a no-op, a `clsact` qdisc (which filters
    /// with parent `ffff:` cannot use) is refused with `EINVAL`. [`Error::Unsupported`] when the
    /// kernel has no ingress qdisc.
    pub fn add_ingress_qdisc(&mut self, ifindex: u32) -> Result<()> {
        self.execute_one(tc::ingress_qdisc(ifindex))
    }

    /// Sends every frame that arrives on link `from` out of link `to`, unchanged: a u32 filter
    /// on `from`'s ingress qdisc matching every packet (protocol `all`, one key 0/0) with the
    /// single action `mirred egress redirect dev TO`. Both links must be in this handle's
    /// namespace.
    ///
    /// Adds the ingress qdisc first when missing (as [`Handle::add_ingress_qdisc`]), and replaces
    /// an earlier redirect of `from` (the filter at [`REDIRECT_PREF`]), so calling it again, or
    /// with another `to`, leaves exactly one redirect. The three requests go in one `sendmsg`;
    /// the error, if any, is the first failed one's. [`Error::Unsupported`] names the missing
    /// piece when the kernel lacks the ingress qdisc, the u32 classifier or the mirred action.
    pub fn redirect_ingress(&mut self, from: u32, to: u32) -> Result<()> {
        self.execute_all(tc::redirect_all(from, to).into())
    }

    /// Joins links `a` and `b` back to back, with no bridge: whatever arrives on one leaves
    /// through the other, both ways ([`Handle::redirect_ingress`] each way, in one `sendmsg`).
    /// This is how a VM's tap is joined to its namespace's veth; neither link needs an address,
    /// and both must be up to carry frames.
    pub fn stitch(&mut self, a: u32, b: u32) -> Result<()> {
        let mut reqs = Vec::from(tc::redirect_all(a, b));
        reqs.extend(tc::redirect_all(b, a));
        self.execute_all(reqs)
    }

    /// Makes `shape` the root qdisc of link `ifindex`: the one there removed, then netem (or
    /// tbf for a rate alone); an empty shape leaves the device's default. Both requests go in
    /// one `sendmsg`. [`Error::Unsupported`] names the module when the kernel lacks the qdisc.
    pub fn shape(&mut self, ifindex: u32, shape: &Shape) -> Result<()> {
        self.execute_all(shape::apply(ifindex, shape))
    }

    // ---- nftables (a handle from [`Handle::netfilter`]) ----

    /// Makes `d`'s bridge-family table anew in one transaction, replacing a table of that name
    /// and everything in it.
    pub fn replace_bridge_icmpv6_drop(&mut self, d: &BridgeIcmpv6Drop<'_>) -> Result<()> {
        self.transaction(nft::replace_bridge_icmpv6_drop(d))
    }

    /// Deletes bridge-family table `table`; `false` when there was none.
    pub fn delete_bridge_table(&mut self, table: &str) -> Result<bool> {
        match self.transaction(vec![nft::delete_table(table)]) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends `reqs` as one nftables transaction (between a batch's begin and end, in one
    /// datagram): the kernel applies all of them or none. The kernel handles the whole batch
    /// within the send, so every answer is queued when it returns: they are read without waiting,
    /// and a request left unanswered (the kernel gives up on a batch on a fatal signal or when
    /// out of memory, answering one request for all) fails the transaction instead of hanging.
    /// The error is the first failed request's, or the transaction's own: an error answering its
    /// begin (no nf_tables), or a second answer to its first request (the commit failed).
    fn transaction(&mut self, mut reqs: Vec<Request>) -> Result<()> {
        let op = reqs.first().map(|r| r.op.clone()).unwrap_or_default();
        let whole = |errno: i32, extack: Option<String>| Error::Netlink {
            op: format!("nftables transaction ({op})"),
            errno: io::Error::from_raw_os_error(errno),
            extack,
        };
        let base = self.seq.wrapping_add(1);
        let total = reqs.len() as u32;
        self.seq = base.wrapping_add(total + 1);
        let mut out = nft::batch_edge(nft::NFNL_MSG_BATCH_BEGIN);
        set_seq(&mut out, base);
        for (i, r) in reqs.iter_mut().enumerate() {
            set_seq(&mut r.msg, base.wrapping_add(1 + i as u32));
            out.extend_from_slice(&r.msg);
        }
        let mut end = nft::batch_edge(nft::NFNL_MSG_BATCH_END);
        set_seq(&mut end, base.wrapping_add(total + 1));
        out.extend_from_slice(&end);
        self.send(&out)
            .map_err(|e| Error::sys_from(format!("send: {op}"), e))?;
        let mut answered = vec![false; reqs.len()];
        let mut first_err: Option<(usize, Error)> = None;
        loop {
            let n = match self.recv_nowait() {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => return Err(Error::sys_from(format!("receive: {op}"), e)),
            };
            for (h, body) in messages(&self.buf[..n]) {
                if h.ty != NLMSG_ERROR {
                    continue;
                }
                let (errno, extack) = parse_error(body, h.flags);
                let at = h.seq.wrapping_sub(base);
                if at == 0 || at == total + 1 {
                    if errno != 0 {
                        return Err(whole(errno, extack));
                    }
                    continue;
                }
                let Some(i) = (at as usize).checked_sub(1).filter(|&i| i < reqs.len()) else {
                    continue; // a stale answer to an earlier request
                };
                if std::mem::replace(&mut answered[i], true) {
                    if errno != 0 {
                        return Err(whole(errno, extack));
                    }
                    continue;
                }
                if let Err(e) = reqs[i].outcome(errno, extack) {
                    if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_err = Some((i, e));
                    }
                }
            }
        }
        if let Some((_, e)) = first_err {
            return Err(e);
        }
        if answered.iter().any(|a| !a) {
            return Err(Error::Protocol {
                op: format!("nftables transaction ({op})"),
                what: "the kernel left requests unanswered".into(),
            });
        }
        Ok(())
    }

    // ---- the exchange ----

    /// Sends `reqs` together; an error is the first failed request's own (its `op` names it),
    /// without the [`Error::Batch`] wrapper.
    fn execute_all(&mut self, reqs: Vec<Request>) -> Result<()> {
        self.exchange(reqs, |_, _, _| {}).map_err(|e| match e {
            Error::Batch { error, .. } => *error,
            e => e,
        })
    }

    fn execute_one(&mut self, req: Request) -> Result<()> {
        self.execute_all(vec![req])
    }

    /// Sends `reqs` in chunks and reads every answer; `on_reply(request index, type, body)` sees
    /// data messages (dump entries, get replies). Stops after the chunk holding the first failed
    /// request and reports that one, wrapped in [`Error::Batch`] when there were several.
    fn exchange(
        &mut self,
        mut reqs: Vec<Request>,
        on_reply: impl FnMut(usize, u16, &[u8]),
    ) -> Result<()> {
        let total = reqs.len();
        let wrap = |index: usize, e: Error| {
            if total == 1 {
                e
            } else {
                Error::Batch {
                    index,
                    total,
                    error: Box::new(e),
                }
            }
        };
        self.exchange_raw(&mut reqs, on_reply)
            .map_err(|(i, e)| wrap(i, e))?;

        // Follow-up requests, grouped by the socket that must send them, in queue order.
        let mut groups: Vec<(Option<NsKey>, Vec<usize>, Vec<Request>)> = Vec::new();
        for (i, r) in reqs.iter_mut().enumerate() {
            let Some((target, follow)) = r.follow.take() else {
                continue;
            };
            match groups.iter_mut().find(|g| g.0 == target) {
                Some(g) => {
                    g.1.push(i);
                    g.2.push(*follow);
                }
                None => groups.push((target, vec![i], vec![*follow])),
            }
        }
        for (target, indices, mut follows) in groups {
            let h = match target {
                None => &mut *self,
                Some(key) => self
                    .peers
                    .get_mut(&key)
                    .expect("peer socket opened when queued"),
            };
            h.exchange_raw(&mut follows, |_, _, _| {})
                .map_err(|(j, e)| wrap(indices[j], e))?;
        }
        Ok(())
    }

    /// Sends `reqs` in chunks and reads every answer. On failure, the index of the first failed
    /// request and its error.
    fn exchange_raw(
        &mut self,
        reqs: &mut [Request],
        mut on_reply: impl FnMut(usize, u16, &[u8]),
    ) -> Result<(), (usize, Error)> {
        let total = reqs.len();
        let base = self.seq.wrapping_add(1);
        for (i, r) in reqs.iter_mut().enumerate() {
            set_seq(&mut r.msg, base.wrapping_add(i as u32));
        }
        self.seq = base.wrapping_add(total as u32);
        let wrap = |index: usize, e: Error| (index, e);

        let mut start = 0;
        let mut out = Vec::with_capacity(CHUNK_BYTES);
        while start < total {
            out.clear();
            let mut end = start;
            while end < total
                && end - start < CHUNK_REQUESTS
                && (end == start || out.len() + reqs[end].msg.len() <= CHUNK_BYTES)
            {
                out.extend_from_slice(&reqs[end].msg);
                end += 1;
            }
            self.send(&out).map_err(|e| {
                wrap(
                    start,
                    Error::sys_from(format!("send: {}", reqs[start].op), e),
                )
            })?;

            let mut pending = end - start;
            let mut done = vec![false; end - start];
            let mut first_err: Option<(usize, Error)> = None;
            while pending > 0 {
                let n = self.recv().map_err(|e| {
                    wrap(
                        start,
                        Error::sys_from(format!("receive: {}", reqs[start].op), e),
                    )
                })?;
                for (h, body) in messages(&self.buf[..n]) {
                    let idx = h.seq.wrapping_sub(base) as usize;
                    if idx < start || idx >= end || done[idx - start] {
                        continue; // a stale answer to an earlier request
                    }
                    let result = match h.ty {
                        NLMSG_ERROR => {
                            let (errno, extack) = parse_error(body, h.flags);
                            Some(reqs[idx].outcome(errno, extack))
                        }
                        NLMSG_DONE => {
                            let errno = if body.len() >= 4 {
                                -(u32_at(body, 0) as i32)
                            } else {
                                0
                            };
                            Some(reqs[idx].outcome(errno, None))
                        }
                        ty => {
                            on_reply(idx, ty, body);
                            None
                        }
                    };
                    if let Some(result) = result {
                        done[idx - start] = true;
                        pending -= 1;
                        if let Err(e) = result {
                            if first_err.as_ref().is_none_or(|(i, _)| idx < *i) {
                                first_err = Some((idx, e));
                            }
                        }
                    }
                }
            }
            if let Some((idx, e)) = first_err {
                return Err(wrap(idx, e));
            }
            start = end;
        }
        Ok(())
    }

    fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: buf and sa are live for the call and the lengths match them.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    (&sa as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// One datagram if one is queued, without waiting.
    fn recv_nowait(&mut self) -> io::Result<Option<usize>> {
        self.recv_with(libc::MSG_DONTWAIT)
    }

    fn recv(&mut self) -> io::Result<usize> {
        self.recv_with(0)
            .map(|n| n.expect("a blocking receive returns a datagram"))
    }

    /// One datagram; `None` when `flags` has `MSG_DONTWAIT` and none is queued.
    fn recv_with(&mut self, flags: libc::c_int) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: self.buf is a live buffer of the given length.
            let rc = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC | flags,
                )
            };
            if rc >= 0 {
                let n = rc as usize;
                if n > self.buf.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink datagram larger than 64 KiB",
                    ));
                }
                return Ok(Some(n));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock if flags & libc::MSG_DONTWAIT != 0 => return Ok(None),
                _ => return Err(e),
            }
        }
    }
}

/// Reads an `NLMSG_ERROR` body: the (positive) errno and the extended-ack message, if any.
fn parse_error(body: &[u8], flags: u16) -> (i32, Option<String>) {
    if body.len() < 4 {
        return (0, None);
    }
    let errno = -(u32_at(body, 0) as i32);
    let mut extack = None;
    if flags & NLM_F_ACK_TLVS != 0 && body.len() >= 4 + NLMSG_HDRLEN {
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(body, 4) as usize
        };
        let at = 4 + align(echoed);
        if at <= body.len() {
            extack = attrs(&body[at..])
                .find(|(t, _)| *t == NLMSGERR_ATTR_MSG)
                .map(|(_, p)| attr_string(p));
        }
    }
    (errno, extack)
}

fn unspecified_like(ip: &IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Requests queued on a [`Handle`] and sent together by [`Batch::commit`]: many requests per
/// `sendmsg` (at most 32 KiB each), every ack read, the first failure reported with its index.
#[derive(Debug)]
pub struct Batch<'a> {
    handle: &'a mut Handle,
    reqs: Vec<Request>,
    /// A request that could not even be queued (its index and why), reported by `commit`.
    failed: Option<(usize, Error)>,
}

impl Batch<'_> {
    pub fn add_veth(&mut self, a: &VethEnd<'_>, b: &VethEnd<'_>) -> &mut Self {
        match self.handle.veth_request(a, b) {
            Ok(r) => self.push(r),
            Err(e) => {
                self.failed.get_or_insert((self.reqs.len(), e));
                // Keep indices stable: queue the pair without its peer setup.
                self.push(link::veth(a, b))
            }
        }
    }

    pub fn add_bridge(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        up: bool,
    ) -> &mut Self {
        self.push(link::plain("bridge", name, mtu, mac, None, up))
    }

    pub fn add_vxlan(&mut self, v: &Vxlan<'_>) -> &mut Self {
        self.push(link::vxlan(v))
    }

    pub fn add_macvlan(&mut self, m: &Macvlan<'_>) -> &mut Self {
        self.push(link::macvlan(m))
    }

    pub fn add_dummy(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        netns: Option<BorrowedFd<'_>>,
        up: bool,
    ) -> &mut Self {
        self.push(link::plain("dummy", name, mtu, mac, netns, up))
    }

    pub fn set_up(&mut self, index: u32) -> &mut Self {
        self.push(link::set_up(index))
    }

    pub fn set_master(&mut self, index: u32, master: u32) -> &mut Self {
        self.push(link::set_master(index, master))
    }

    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> &mut Self {
        self.push(link::set_mtu(index, mtu))
    }

    /// Add an alternative name to a link (one it already has counts as done).
    pub fn add_altname(&mut self, index: u32, name: &str) -> &mut Self {
        self.push(link::add_altname(index, name))
    }

    /// Set a link's alias (`ifAlias`).
    pub fn set_alias(&mut self, index: u32, alias: &str) -> &mut Self {
        self.push(link::set_alias(index, alias))
    }

    pub fn delete_link(&mut self, index: u32) -> &mut Self {
        self.push(link::delete(index))
    }

    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> &mut Self {
        self.push(addr::add(index, addr, prefix_len))
    }

    pub fn add_default_route(&mut self, gateway: IpAddr, oif: Option<u32>) -> &mut Self {
        self.push(route::add(
            unspecified_like(&gateway),
            0,
            Some(gateway),
            oif,
        ))
    }

    pub fn add_route(
        &mut self,
        dst: IpAddr,
        prefix_len: u8,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> &mut Self {
        self.push(route::add(dst, prefix_len, gateway, oif))
    }

    /// Queues [`Handle::add_ingress_qdisc`].
    pub fn add_ingress_qdisc(&mut self, ifindex: u32) -> &mut Self {
        self.push(tc::ingress_qdisc(ifindex))
    }

    /// Queues [`Handle::redirect_ingress`]: three requests (ingress qdisc, removal of an earlier
    /// redirect, the redirect filter), which count as three in [`Error::Batch`] indices.
    pub fn redirect_ingress(&mut self, from: u32, to: u32) -> &mut Self {
        for r in tc::redirect_all(from, to) {
            self.push(r);
        }
        self
    }

    /// Queues [`Handle::stitch`]: six requests, `a`'s redirect first.
    pub fn stitch(&mut self, a: u32, b: u32) -> &mut Self {
        self.redirect_ingress(a, b).redirect_ingress(b, a)
    }

    /// Number of queued requests.
    pub fn len(&self) -> usize {
        self.reqs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    fn push(&mut self, r: Request) -> &mut Self {
        self.reqs.push(r);
        self
    }

    /// Sends every queued request and reads every ack. On failure the error is
    /// [`Error::Batch`] naming the first failed request (index from 0, in queue order); requests
    /// before it were applied, and so may later ones that shared its `sendmsg`.
    pub fn commit(self) -> Result<()> {
        if self.reqs.is_empty() {
            return Ok(());
        }
        let total = self.reqs.len();
        if let Some((index, e)) = self.failed {
            return Err(Error::Batch {
                index,
                total,
                error: Box::new(e),
            });
        }
        self.handle
            .exchange(self.reqs, |_, _, _| {})
            .map_err(|e| match e {
                // A one-request batch still says it was a batch.
                e @ Error::Batch { .. } => e,
                e => Error::Batch {
                    index: 0,
                    total,
                    error: Box::new(e),
                },
            })
    }
}

/// Whether the running kernel can make a qdisc of kind `netem`: one is added to the loopback of
/// a throwaway namespace (it leaves nothing behind: the namespace goes with its descriptor).
pub fn kernel_has_netem() -> Result<bool> {
    let ns = NetNs::create_anonymous()?;
    let mut h = Handle::in_netns(&ns)?;
    match h.shape(
        1,
        &Shape {
            delay_ns: 1_000_000,
            ..Default::default()
        },
    ) {
        Ok(()) => Ok(true),
        Err(Error::Unsupported { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
