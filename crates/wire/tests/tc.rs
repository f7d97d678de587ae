//! Real-kernel tests for taps and tc redirects: every test works inside anonymous namespaces it
//! creates (registered as `lwt-wire-<test>-<pid>` only where `tc -n` must see them) and never
//! touches host interfaces. They need root.
//!
//! Frames are raw Ethernet frames of the local-experimental EtherType 0x88b5, sent and received
//! with `AF_PACKET` sockets opened inside the namespaces and through the tap's own file, so the
//! tests see exactly what crossed, byte for byte, without depending on IP configuration.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use wire::netns::{self, NetNs};
use wire::{create_tap, open_tap, Error, Handle, VethEnd};

/// IEEE 802 local experimental EtherType 1.
const ETHERTYPE: u16 = 0x88b5;

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "wire's kernel tests need root (they create namespaces and links)"
    );
}

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0x4c, 0x57, 0x00, 0x01, last]
}

/// An Ethernet frame `src -> dst` of [`ETHERTYPE`] carrying `payload`, padded to 60 bytes.
fn frame(dst: [u8; 6], src: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// An `AF_PACKET` socket opened inside `ns`, bound to link `ifindex` there, receiving frames of
/// [`ETHERTYPE`] that arrive on it (not the ones it sends) and able to send whole frames.
fn packet_socket(ns: &NetNs, ifindex: u32) -> OwnedFd {
    ns.run_in(|| {
        let proto = ETHERTYPE.to_be();
        // SAFETY: plain socket(2) call.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        assert!(raw >= 0, "packet socket: {}", io::Error::last_os_error());
        // SAFETY: raw is a fresh fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sa = sockaddr_ll(ifindex, proto);
        // SAFETY: sa is a valid sockaddr_ll and the length matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "bind packet socket: {}", io::Error::last_os_error());
        fd
    })
    .unwrap()
}

fn sockaddr_ll(ifindex: u32, proto_be: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as u16;
    sa.sll_protocol = proto_be;
    sa.sll_ifindex = ifindex as i32;
    sa
}

/// Sends `f` out of link `ifindex` through packet socket `fd`.
fn send_frame(fd: &OwnedFd, ifindex: u32, f: &[u8]) {
    let sa = sockaddr_ll(ifindex, ETHERTYPE.to_be());
    // SAFETY: f and sa are live for the call and the lengths match them.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            f.as_ptr().cast(),
            f.len(),
            0,
            (&sa as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(n, f.len() as isize, "send: {}", io::Error::last_os_error());
}

/// Writes one frame into a tap file: the tap receives it.
fn write_frame(tap: &OwnedFd, f: &[u8]) {
    // SAFETY: f is live for the call and the length matches it.
    let n = unsafe { libc::write(tap.as_raw_fd(), f.as_ptr().cast(), f.len()) };
    assert_eq!(
        n,
        f.len() as isize,
        "write tap: {}",
        io::Error::last_os_error()
    );
}

/// Reads frames from `fd` (a packet socket or a tap file) for up to `wait` and returns the
/// first equal to `want`; other frames (IPv6 neighbour discovery, MLD, …) are skipped.
fn read_until(fd: &OwnedFd, want: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is one live pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
        if rc == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        assert!(rc >= 0, "poll: {}", io::Error::last_os_error());
        if rc == 0 {
            return None;
        }
        // SAFETY: buf is a live buffer of the given length; poll said a read will not block.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n >= 0, "read: {}", io::Error::last_os_error());
        if &buf[..n as usize] == want {
            return Some(buf[..n as usize].to_vec());
        }
    }
}

/// A registered namespace name that is removed again when dropped, even on panic.
struct Registered(String);

impl Registered {
    fn new(ns: &NetNs, test: &str) -> Registered {
        let name = format!("lwt-wire-{test}-{}", std::process::id());
        netns::register(ns, &name).expect("register netns");
        Registered(name)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let _ = netns::unregister(&self.0);
    }
}

/// `tc -n NS filter show dev DEV ingress`, or `None` when there is no `tc` binary.
fn tc_ingress_filters(ns: &str, dev: &str) -> Option<String> {
    let out = match Command::new("tc")
        .args(["-n", ns, "filter", "show", "dev", dev, "ingress"])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => panic!("run tc: {e}"),
    };
    assert!(
        out.status.success(),
        "tc filter show: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn stitched_tap_and_veth_carry_frames_both_ways() {
    require_root();
    let (a, b) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    // a: v0 (veth to b) and tap0, joined by tc; b: v1, the far end of the veth.
    let mut ha = Handle::in_netns(&a).unwrap();
    ha.add_veth(
        &VethEnd {
            mac: Some(mac(1)),
            up: true,
            ..VethEnd::new("v0")
        },
        &VethEnd {
            netns: Some(b.fd()),
            mac: Some(mac(2)),
            up: true,
            ..VethEnd::new("v1")
        },
    )
    .unwrap();
    create_tap(&a, "tap0").unwrap();
    let v0 = ha.link("v0").unwrap().expect("v0 in a").index;
    let tap = ha.link("tap0").unwrap().expect("tap0 in a");
    assert_eq!(tap.kind.as_deref(), Some("tun"));
    assert!(!tap.up, "a new tap is down");
    ha.set_up(tap.index).unwrap();
    let mut hb = Handle::in_netns(&b).unwrap();
    let v1 = hb.link("v1").unwrap().expect("v1 in b").index;
    let sock_b = packet_socket(&b, v1);

    // The "VM": a process attached to the persistent tap.
    let vm = open_tap(&a, "tap0").unwrap();
    assert!(
        ha.link("tap0").unwrap().unwrap().oper_up,
        "an attached, up tap has carrier"
    );
    let to_vm = frame([0xff; 6], mac(2), b"from b to the vm");
    let from_vm = frame(mac(2), mac(0x10), b"from the vm to b");

    // Not stitched yet: what b sends ends at v0, and what the VM sends ends at tap0.
    send_frame(&sock_b, v1, &to_vm);
    write_frame(&vm, &from_vm);
    assert!(read_until(&vm, &to_vm, Duration::from_millis(300)).is_none());
    assert!(read_until(&sock_b, &from_vm, Duration::from_millis(300)).is_none());

    ha.stitch(v0, tap.index).unwrap();
    // b -> v1 -> v0 ingress -> redirect -> tap0 egress -> the tap file, unchanged.
    send_frame(&sock_b, v1, &to_vm);
    assert!(
        read_until(&vm, &to_vm, Duration::from_secs(3)).is_some(),
        "a frame b sent out of v1 should reach the tap's file"
    );
    // The tap file -> tap0 ingress -> redirect -> v0 egress -> v1 in b, unchanged.
    write_frame(&vm, &from_vm);
    assert!(
        read_until(&sock_b, &from_vm, Duration::from_secs(3)).is_some(),
        "a frame written to the tap should arrive on v1 in b"
    );

    // Stitching again (here through a batch) replaces the redirects rather than adding more.
    let mut batch = ha.batch();
    batch.stitch(v0, tap.index);
    assert_eq!(batch.len(), 6);
    batch.commit().unwrap();
    let reg = Registered::new(&a, "stitch");
    match (
        tc_ingress_filters(&reg.0, "v0"),
        tc_ingress_filters(&reg.0, "tap0"),
    ) {
        (Some(v0f), Some(tapf)) => {
            let pref = format!("pref {}", wire::netlink::REDIRECT_PREF);
            assert_eq!(
                v0f.matches("Egress Redirect to device tap0").count(),
                1,
                "{v0f}"
            );
            assert!(v0f.contains(&pref) && v0f.contains("protocol all"), "{v0f}");
            assert!(v0f.contains("match 00000000/00000000 at 0"), "{v0f}");
            assert_eq!(
                tapf.matches("Egress Redirect to device v0").count(),
                1,
                "{tapf}"
            );
        }
        _ => eprintln!("no tc binary; checked by behaviour only"),
    }
    send_frame(&sock_b, v1, &to_vm);
    assert!(read_until(&vm, &to_vm, Duration::from_secs(3)).is_some());
    write_frame(&vm, &from_vm);
    assert!(read_until(&sock_b, &from_vm, Duration::from_secs(3)).is_some());

    // Once the VM lets go the tap stays (persistent) and the redirects stay in place.
    drop(vm);
    assert!(ha.link("tap0").unwrap().is_some());
    assert!(ha.delete_link_by_name("tap0").unwrap());
    assert!(ha.delete_link_by_name("v0").unwrap());
    assert!(hb.link("v1").unwrap().is_none());
}

#[test]
fn tap_is_deleted_through_netlink_and_refused_twice() {
    require_root();
    let a = NetNs::create_anonymous().unwrap();
    let mut ha = Handle::in_netns(&a).unwrap();
    create_tap(&a, "tap0").unwrap();
    let l = ha.link("tap0").unwrap().expect("tap0 in a");
    assert_eq!(l.kind.as_deref(), Some("tun"));

    // The name is taken, whatever has it.
    let err = create_tap(&a, "tap0").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err:?}");
    assert_eq!(
        err.to_string(),
        "create tap tap0: File exists (os error 17)"
    );
    ha.add_veth(&VethEnd::new("lwtw-x0"), &VethEnd::new("lwtw-x1"))
        .unwrap();
    let err = create_tap(&a, "lwtw-x0").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err:?}");

    let err = create_tap(&a, "tap-name-too-long").unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("at most 15 bytes"), "{err}");

    // Attaching: a missing tap is not made up on the fly, a non-tap is refused, one queue only.
    let err = open_tap(&a, "tap1").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err:?}");
    assert!(ha.link("tap1").unwrap().is_none());
    let err = open_tap(&a, "lwtw-x0").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err:?}");
    let q = open_tap(&a, "tap0").unwrap();
    let err = open_tap(&a, "tap0").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err:?}");
    drop(q);

    // RTM_DELLINK removes a persistent tap; the name is free again afterwards.
    assert!(ha.delete_link_by_name("tap0").unwrap());
    assert!(ha.link("tap0").unwrap().is_none());
    assert!(!ha.delete_link_by_name("tap0").unwrap());
    create_tap(&a, "tap0").unwrap();
    let again = ha.link("tap0").unwrap().expect("tap0 made again");
    // An attached tap is deleted just the same; its file then reads as detached.
    let q = open_tap(&a, "tap0").unwrap();
    ha.delete_link(again.index).unwrap();
    assert!(ha.link("tap0").unwrap().is_none());
    let mut buf = [0u8; 64];
    // SAFETY: buf is live and the length matches it.
    let n = unsafe { libc::read(q.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(n, -1);
    assert_eq!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::EBADFD)
    );
    assert!(ha.delete_link_by_name("lwtw-x0").unwrap());
}

#[test]
fn tap_goes_away_with_its_namespace() {
    require_root();
    // A name unique on this machine, so the host can be checked for it.
    let name = format!("lwtap{}", std::process::id() % 10_000_000);
    let a = NetNs::create_anonymous().unwrap();
    let b = NetNs::create_anonymous().unwrap();
    create_tap(&a, &name).unwrap();
    // A veth from a to b: its end in b vanishes once a's links have been cleaned up.
    let mut ha = Handle::in_netns(&a).unwrap();
    ha.add_veth(
        &VethEnd::new("lwtw-g0"),
        &VethEnd {
            netns: Some(b.fd()),
            ..VethEnd::new("lwtw-g1")
        },
    )
    .unwrap();
    assert!(ha.link(&name).unwrap().is_some());
    // The handle's socket keeps a alive too; drop both.
    drop(ha);
    drop(a);

    let mut hb = Handle::in_netns(&b).unwrap();
    let mut host = Handle::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while hb.link("lwtw-g1").unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "namespace a was not cleaned up within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Physical devices of a dying namespace are moved to the host; a tap must not be.
    assert!(
        host.link(&name).unwrap().is_none(),
        "the tap of a destroyed namespace must be deleted, not moved to the host"
    );
}

#[test]
fn redirect_errors_name_the_request() {
    require_root();
    let a = NetNs::create_anonymous().unwrap();
    let mut ha = Handle::in_netns(&a).unwrap();
    ha.add_veth(
        &VethEnd {
            up: true,
            ..VethEnd::new("lwtw-r0")
        },
        &VethEnd {
            up: true,
            ..VethEnd::new("lwtw-r1")
        },
    )
    .unwrap();
    let r0 = ha.link("lwtw-r0").unwrap().unwrap().index;
    let r1 = ha.link("lwtw-r1").unwrap().unwrap().index;

    // The ingress qdisc may be added any number of times.
    ha.add_ingress_qdisc(r0).unwrap();
    ha.add_ingress_qdisc(r0).unwrap();
    // Redirecting to a link that does not exist.
    let missing = r0.max(r1) + 100;
    let err = ha.redirect_ingress(r0, missing).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "redirect the ingress of link {r0} to link {missing}: "
        )),
        "{err}"
    );
    assert!(matches!(err, Error::Netlink { .. }), "{err:?}");
    // On a link that does not exist: the first failed request (the qdisc) is the one reported.
    let err = ha.redirect_ingress(missing, r0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("add ingress qdisc on link {missing}: ")),
        "{err}"
    );
    // A real redirect between the two ends is accepted, then re-pointed.
    ha.redirect_ingress(r0, r1).unwrap();
    ha.redirect_ingress(r0, r0).unwrap();
    ha.stitch(r0, r1).unwrap();
    assert!(ha.delete_link(r0).is_ok());
}

#[test]
fn missing_dev_net_tun_is_reported_as_such() {
    require_root();
    let a = NetNs::create_anonymous().unwrap();
    // In a private mount namespace on this thread only, hide /dev/net/tun under an empty tmpfs.
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare affects this scoped thread only (its own fs_struct and mount
            // namespace); the namespace goes away when the thread ends.
            let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
            assert_eq!(
                rc,
                0,
                "unshare(CLONE_NEWNS): {}",
                io::Error::last_os_error()
            );
            let root = c"/";
            // SAFETY: valid NUL-terminated strings or null; no data.
            let rc = unsafe {
                libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
            };
            assert_eq!(rc, 0, "make / private: {}", io::Error::last_os_error());
            let (src, target) = (c"tmpfs", c"/dev/net");
            // SAFETY: as above; the mount is private to this thread's mount namespace.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    src.as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            assert_eq!(
                rc,
                0,
                "mount tmpfs on /dev/net: {}",
                io::Error::last_os_error()
            );
            let err = create_tap(&a, "tap0").unwrap_err();
            assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                "create tap tap0: the running kernel or /dev lacks /dev/net/tun (tun module)"
            );
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        });
    });
    assert!(
        std::path::Path::new("/dev/net/tun").exists(),
        "the host's /dev/net/tun is untouched"
    );
    assert!(Handle::in_netns(&a)
        .unwrap()
        .link("tap0")
        .unwrap()
        .is_none());
}
