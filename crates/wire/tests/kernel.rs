//! Real-kernel tests for `wire`: every test works inside namespaces it creates (anonymous, or
//! registered as `lwt-wire-<test>-<pid>`) and never touches host interfaces. They need root.

use std::net::{IpAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use wire::netlink::format_mac;
use wire::netns::{self, NetNs};
use wire::{Error, Handle, Macvlan, MacvlanMode, VethEnd, Vxlan};

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "wire's kernel tests need root (they create namespaces and links)"
    );
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

/// Runs iproute2's `tool` (`ip`, `bridge`), which must succeed; returns its output.
fn iproute2(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ip(args: &[&str]) -> String {
    iproute2("ip", args)
}

/// Sends a UDP datagram from `from` (inside `a`) to `to` (inside `b`) and checks it arrives:
/// a real packet across the link, without needing ping.
fn udp_across(a: &NetNs, from: IpAddr, b: &NetNs, to: IpAddr) {
    let rx = b
        .run_in(|| UdpSocket::bind((to, 0)))
        .unwrap()
        .expect("bind receiver");
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let dst = rx.local_addr().unwrap();
    let tx = a
        .run_in(|| UdpSocket::bind((from, 0)))
        .unwrap()
        .expect("bind sender");
    tx.send_to(b"labwire", dst).expect("send");
    let mut buf = [0u8; 16];
    let (n, src) = rx
        .recv_from(&mut buf)
        .expect("datagram should cross the veth");
    assert_eq!(&buf[..n], b"labwire");
    assert_eq!(src.ip(), from);
}

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0x4c, 0x57, 0x00, 0x00, last]
}

#[test]
fn veth_is_born_in_both_namespaces_and_carries_traffic() {
    require_root();
    let (a, b) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let (ra, rb) = (Registered::new(&a, "veth-a"), Registered::new(&b, "veth-b"));

    // The request goes through a host socket, but both ends are born in their namespaces.
    let mut host = Handle::new().unwrap();
    let end_a = VethEnd {
        netns: Some(a.fd()),
        mac: Some(mac(1)),
        mtu: Some(9500),
        up: true,
        ..VethEnd::new("lwtw-e1")
    };
    let end_b = VethEnd {
        netns: Some(b.fd()),
        mac: Some(mac(2)),
        mtu: Some(9500),
        up: true,
        ..VethEnd::new("lwtw-e2")
    };
    host.add_veth(&end_a, &end_b).unwrap();
    assert!(
        host.link("lwtw-e1").unwrap().is_none(),
        "end a must not be in the host"
    );
    assert!(
        host.link("lwtw-e2").unwrap().is_none(),
        "end b must not be in the host"
    );

    let mut ha = Handle::in_netns(&a).unwrap();
    let mut hb = Handle::in_netns(&b).unwrap();
    let la = ha.link("lwtw-e1").unwrap().expect("end a in namespace a");
    let lb = hb.link("lwtw-e2").unwrap().expect("end b in namespace b");
    assert!(ha.link("lwtw-e2").unwrap().is_none());
    for (l, m) in [(&la, mac(1)), (&lb, mac(2))] {
        assert_eq!(l.mac, Some(m));
        assert_eq!(l.mtu, 9500);
        assert!(l.up, "{} should be up", l.name);
        assert_eq!(l.kind.as_deref(), Some("veth"));
    }

    // What a user would check.
    let json = ip(&["-n", &ra.0, "-j", "link", "show", "lwtw-e1"]);
    assert!(json.contains("\"ifname\":\"lwtw-e1\""), "{json}");
    assert!(json.contains(&format_mac(&mac(1))), "{json}");
    assert!(json.contains("\"mtu\":9500"), "{json}");
    assert!(ip(&["-n", &rb.0, "-j", "link", "show", "lwtw-e2"]).contains("UP"));

    let (a4, b4): (IpAddr, IpAddr) = ("10.251.1.1".parse().unwrap(), "10.251.1.2".parse().unwrap());
    let (a6, b6): (IpAddr, IpAddr) = (
        "fd00:251:1::1".parse().unwrap(),
        "fd00:251:1::2".parse().unwrap(),
    );
    ha.add_address(la.index, a4, 24).unwrap();
    ha.add_address(la.index, a6, 64).unwrap();
    ha.add_address(la.index, a4, 24)
        .expect("adding an address twice is fine");
    hb.add_address(lb.index, b4, 24).unwrap();
    hb.add_address(lb.index, b6, 64).unwrap();
    let addrs = ha.addresses(Some(la.index)).unwrap();
    assert!(addrs.contains(&(la.index, a4, 24)), "{addrs:?}");
    assert!(addrs.contains(&(la.index, a6, 64)), "{addrs:?}");
    assert!(ip(&["-n", &ra.0, "-j", "addr", "show", "lwtw-e1"]).contains("10.251.1.1"));

    udp_across(&a, a4, &b, b4);
    udp_across(&b, b6, &a, a6);
}

#[test]
fn veth_end_joins_a_bridge_in_its_namespace() {
    require_root();
    let (x, y) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let mut hx = Handle::in_netns(&x).unwrap();
    let br = hx
        .add_bridge("lwtw-br0", Some(1500), Some(mac(0x10)), true)
        .unwrap();
    let bridge = hx.link("lwtw-br0").unwrap().unwrap();
    assert_eq!(bridge.index, br);
    assert_eq!(bridge.kind.as_deref(), Some("bridge"));
    assert_eq!(bridge.mac, Some(mac(0x10)));

    let port = VethEnd {
        netns: Some(x.fd()),
        master: Some(br),
        up: true,
        ..VethEnd::new("lwtw-p1")
    };
    let far = VethEnd {
        netns: Some(y.fd()),
        up: true,
        ..VethEnd::new("lwtw-e1")
    };
    hx.add_veth(&port, &far).unwrap();
    let p = hx.link("lwtw-p1").unwrap().unwrap();
    assert_eq!(p.master, Some(br));
    assert!(p.up);
    let mut hy = Handle::in_netns(&y).unwrap();
    assert_eq!(hy.link("lwtw-e1").unwrap().unwrap().master, None);

    // The peer end can join a bridge in its own namespace too (set right after creation).
    let bry = hy.add_bridge("lwtw-br1", None, None, true).unwrap();
    let near = VethEnd {
        netns: Some(x.fd()),
        up: true,
        ..VethEnd::new("lwtw-p3")
    };
    let far = VethEnd {
        netns: Some(y.fd()),
        master: Some(bry),
        up: true,
        ..VethEnd::new("lwtw-e3")
    };
    hx.add_veth(&near, &far).unwrap();
    let e3 = hy.link("lwtw-e3").unwrap().unwrap();
    assert_eq!((e3.master, e3.up), (Some(bry), true));

    // A second port attached afterwards with set_master.
    let p2 = VethEnd {
        netns: Some(x.fd()),
        ..VethEnd::new("lwtw-p2")
    };
    hx.add_veth(
        &p2,
        &VethEnd {
            netns: Some(y.fd()),
            ..VethEnd::new("lwtw-e2")
        },
    )
    .unwrap();
    let i2 = hx.link("lwtw-p2").unwrap().unwrap().index;
    hx.set_master(i2, br).unwrap();
    hx.set_mtu(i2, 1400).unwrap();
    hx.set_up(i2).unwrap();
    let l2 = hx.link("lwtw-p2").unwrap().unwrap();
    assert_eq!((l2.master, l2.mtu, l2.up), (Some(br), 1400, true));
}

#[test]
fn batch_of_200_veths_commits_and_a_failure_names_its_request() {
    require_root();
    let (a, b) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let mut ha = Handle::in_netns(&a).unwrap();
    let names: Vec<(String, String)> = (0..200)
        .map(|i| (format!("a{i}"), format!("b{i}")))
        .collect();
    let started = std::time::Instant::now();
    let mut batch = ha.batch();
    for (na, nb) in &names {
        let end_b = VethEnd {
            netns: Some(b.fd()),
            mtu: Some(9500),
            up: true,
            ..VethEnd::new(nb)
        };
        batch.add_veth(
            &VethEnd {
                up: true,
                ..VethEnd::new(na)
            },
            &end_b,
        );
    }
    assert_eq!(batch.len(), 200);
    batch.commit().unwrap();
    eprintln!("200 veths in place in {:?}", started.elapsed());

    let in_a = ha.links().unwrap();
    let in_b = Handle::in_netns(&b).unwrap().links().unwrap();
    for (na, nb) in &names {
        let la = in_a
            .iter()
            .find(|l| &l.name == na)
            .unwrap_or_else(|| panic!("{na} missing"));
        let lb = in_b
            .iter()
            .find(|l| &l.name == nb)
            .unwrap_or_else(|| panic!("{nb} missing"));
        assert!(la.up && lb.up && lb.mtu == 9500);
    }

    // Request 2 of 5 clashes with a0.
    let mut batch = ha.batch();
    for (na, nb) in [
        ("c0", "d0"),
        ("c1", "d1"),
        ("a0", "d2"),
        ("c3", "d3"),
        ("c4", "d4"),
    ] {
        batch.add_veth(
            &VethEnd::new(na),
            &VethEnd {
                netns: Some(b.fd()),
                ..VethEnd::new(nb)
            },
        );
    }
    let err = batch.commit().unwrap_err();
    match &err {
        Error::Batch {
            index: 2,
            total: 5,
            error,
        } => {
            assert!(matches!(**error, Error::Netlink { .. }), "{error:?}");
            assert_eq!(error.raw_os_error(), Some(libc::EEXIST));
        }
        other => panic!("expected the batch to name request 2, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with("batch request 3 of 5: create veth a0<->d2: File exists (os error 17)"),
        "{msg}"
    );
    assert!(
        ha.link("c1").unwrap().is_some(),
        "requests before the failure were applied"
    );
}

#[test]
fn duplicate_veth_error_names_operation_and_object() {
    require_root();
    let a = NetNs::create_anonymous().unwrap();
    let mut ha = Handle::in_netns(&a).unwrap();
    ha.add_veth(&VethEnd::new("eth1"), &VethEnd::new("eth2"))
        .unwrap();
    let err = ha
        .add_veth(&VethEnd::new("eth1"), &VethEnd::new("eth2"))
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("create veth eth1<->eth2: File exists (os error 17)"),
        "{err}"
    );
    assert!(ha.delete_link_by_name("eth1").unwrap());
    assert!(!ha.delete_link_by_name("eth1").unwrap());
    assert!(
        ha.link("eth2").unwrap().is_none(),
        "deleting one end removes the pair"
    );
}

#[test]
fn dummy_is_created_or_reported_as_missing_from_the_kernel() {
    require_root();
    let a = NetNs::create_anonymous().unwrap();
    let mut ha = Handle::in_netns(&a).unwrap();
    match ha.add_dummy("lwtw-d0", Some(1500), Some(mac(0x20)), None, true) {
        Err(Error::KernelLacks { kind }) => {
            eprintln!("kernel lacks dummy, as expected here");
            assert_eq!(kind, "dummy");
            let msg = Error::KernelLacks { kind }.to_string();
            assert_eq!(
                msg,
                "the running kernel lacks the \"dummy\" link type (module not available)"
            );
            assert!(ha.link("lwtw-d0").unwrap().is_none());
        }
        Ok(()) => {
            let l = ha.link("lwtw-d0").unwrap().expect("dummy created");
            assert_eq!(l.kind.as_deref(), Some("dummy"));
            assert_eq!(l.mac, Some(mac(0x20)));
        }
        Err(e) => panic!("unexpected error: {e:?}"),
    }
    // The same through a batch: the variant is inside Error::Batch.
    let mut batch = ha.batch();
    batch.add_dummy("lwtw-d1", None, None, None, false);
    if let Err(e) = batch.commit() {
        assert!(
            matches!(e.innermost(), Error::KernelLacks { kind } if kind == "dummy"),
            "{e:?}"
        );
    }
}

#[test]
fn vxlan_and_macvlan_are_made_inside_namespaces() {
    require_root();
    let (a, b, c) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let mut ha = Handle::in_netns(&a).unwrap();
    let under = VethEnd {
        up: true,
        ..VethEnd::new("lwtw-u0")
    };
    ha.add_veth(
        &under,
        &VethEnd {
            netns: Some(b.fd()),
            up: true,
            ..VethEnd::new("lwtw-u1")
        },
    )
    .unwrap();
    let u0 = ha.link("lwtw-u0").unwrap().unwrap().index;
    ha.add_address(u0, "10.251.3.1".parse().unwrap(), 24)
        .unwrap();

    let vx = Vxlan {
        name: "lwtw-vx0",
        vni: 100,
        remote: "10.251.3.2".parse().unwrap(),
        local: Some("10.251.3.1".parse().unwrap()),
        dst_port: 4789,
        parent: Some(u0),
        mtu: Some(1450),
        mac: Some(mac(0x30)),
        netns: None,
        up: true,
        learning: false,
    };
    ha.add_vxlan(&vx).unwrap();
    let l = ha.link("lwtw-vx0").unwrap().unwrap();
    assert_eq!(
        (l.kind.as_deref(), l.mtu, l.mac, l.up),
        (Some("vxlan"), 1450, Some(mac(0x30)), true)
    );
    let details = ha_details(&a, "lwtw-vx0");
    assert!(
        details.contains("\"id\":100") && details.contains("\"port\":4789"),
        "{details}"
    );

    // A vxlan whose underlay is in a but which is born in c; an IPv6 remote.
    let vx6 = Vxlan {
        name: "lwtw-vx1",
        vni: 101,
        remote: "fd00:251:3::2".parse().unwrap(),
        local: None,
        parent: None,
        mac: None,
        netns: Some(c.fd()),
        ..vx
    };
    ha.add_vxlan(&vx6).unwrap();
    let mut hc = Handle::in_netns(&c).unwrap();
    assert_eq!(
        hc.link("lwtw-vx1").unwrap().unwrap().kind.as_deref(),
        Some("vxlan")
    );
    assert!(ha.link("lwtw-vx1").unwrap().is_none());

    // Macvlans on the veth end in a: one in a, one born in c.
    let mv = Macvlan {
        name: "lwtw-mv0",
        parent: u0,
        mode: MacvlanMode::Bridge,
        mtu: Some(1400),
        mac: Some(mac(0x40)),
        netns: None,
        up: true,
    };
    ha.add_macvlan(&mv).unwrap();
    let l = ha.link("lwtw-mv0").unwrap().unwrap();
    assert_eq!(
        (l.kind.as_deref(), l.mtu, l.mac),
        (Some("macvlan"), 1400, Some(mac(0x40)))
    );
    assert!(ha_details(&a, "lwtw-mv0").contains("\"mode\":\"bridge\""));
    ha.add_macvlan(&Macvlan {
        name: "lwtw-mv1",
        mode: MacvlanMode::Private,
        mac: None,
        netns: Some(c.fd()),
        ..mv
    })
    .unwrap();
    assert_eq!(
        hc.link("lwtw-mv1").unwrap().unwrap().kind.as_deref(),
        Some("macvlan")
    );
}

/// `ip -d -j link show DEV` inside `ns` (through a registered name).
fn ha_details(ns: &NetNs, dev: &str) -> String {
    let r = Registered::new(ns, &format!("details-{dev}"));
    ip(&["-n", &r.0, "-d", "-j", "link", "show", dev])
}

#[test]
fn routes_are_added_in_a_namespace() {
    require_root();
    let (a, b) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let mut ha = Handle::in_netns(&a).unwrap();
    ha.add_veth(
        &VethEnd {
            up: true,
            ..VethEnd::new("lwtw-r0")
        },
        &VethEnd {
            netns: Some(b.fd()),
            ..VethEnd::new("x")
        },
    )
    .unwrap();
    let i = ha.link("lwtw-r0").unwrap().unwrap().index;
    ha.add_address(i, "10.251.4.1".parse().unwrap(), 24)
        .unwrap();
    ha.add_address(i, "fd00:251:4::1".parse().unwrap(), 64)
        .unwrap();
    ha.add_default_route("10.251.4.254".parse().unwrap(), Some(i))
        .unwrap();
    ha.add_default_route("fd00:251:4::fe".parse().unwrap(), None)
        .unwrap();
    ha.add_route("10.251.40.0".parse().unwrap(), 24, None, Some(i))
        .unwrap();
    let mut batch = ha.batch();
    batch.add_route(
        "10.251.41.0".parse().unwrap(),
        24,
        Some("10.251.4.253".parse().unwrap()),
        None,
    );
    batch.commit().unwrap();

    let r = Registered::new(&a, "routes");
    let v4 = ip(&["-n", &r.0, "-j", "route"]);
    assert!(
        v4.contains("\"dst\":\"default\",\"gateway\":\"10.251.4.254\""),
        "{v4}"
    );
    assert!(v4.contains("\"dst\":\"10.251.40.0/24\""), "{v4}");
    assert!(
        v4.contains("\"dst\":\"10.251.41.0/24\",\"gateway\":\"10.251.4.253\""),
        "{v4}"
    );
    let v6 = ip(&["-n", &r.0, "-6", "-j", "route"]);
    assert!(
        v6.contains("\"dst\":\"default\",\"gateway\":\"fd00:251:4::fe\""),
        "{v6}"
    );
}

#[test]
fn register_and_unregister_a_namespace() {
    require_root();
    let ns = NetNs::create_anonymous().unwrap();
    let name = format!("lwt-wire-reg-{}", std::process::id());
    let path = netns::register(&ns, &name).unwrap();
    assert_eq!(path, std::path::Path::new(netns::NETNS_RUN_DIR).join(&name));
    assert!(netns::is_registered(&name));
    assert!(ip(&["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name.as_str())));
    assert!(ip(&["-n", &name, "-j", "link"]).contains("\"ifname\":\"lo\""));
    // The registered file is the same namespace.
    let reopened = NetNs::open(&path).unwrap();
    let mut h = Handle::in_netns(&reopened).unwrap();
    h.add_veth(&VethEnd::new("lwtw-r1"), &VethEnd::new("lwtw-r2"))
        .unwrap();
    assert!(Handle::in_netns(&ns)
        .unwrap()
        .link("lwtw-r1")
        .unwrap()
        .is_some());
    assert!(
        netns::register(&ns, &name).is_err(),
        "a taken name is refused"
    );

    netns::unregister(&name).unwrap();
    assert!(!netns::is_registered(&name));
    assert!(!ip(&["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name.as_str())));
    netns::unregister(&name).expect("unregistering twice is fine");
    assert!(netns::register(&ns, "a/b").is_err());
}

#[test]
fn open_refuses_files_that_are_not_network_namespaces() {
    require_root();
    assert!(matches!(
        NetNs::open("/proc/self/ns/uts".as_ref()),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        NetNs::open("/etc/hostname".as_ref()),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        NetNs::open("/nonexistent".as_ref()),
        Err(Error::Sys { .. })
    ));
    let me = NetNs::of_pid(std::process::id() as i32).unwrap();
    let cur = NetNs::current().unwrap();
    let ino = |n: &NetNs| {
        let p = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&n.fd()));
        std::fs::read_link(p).unwrap()
    };
    assert_eq!(ino(&me), ino(&cur));
    let anon = NetNs::create_anonymous().unwrap();
    assert_ne!(ino(&anon), ino(&cur));
    assert_eq!(anon.run_in(|| 41 + 1).unwrap(), 42);
}

#[test]
fn sysctl_is_written_in_the_namespace_only() {
    require_root();
    let (a, b) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    // A new namespace may inherit the host's value (Docker, when running, turns forwarding on), so
    // write the opposite of b's value into a and check b kept its own.
    let b_before = wire::sysctl::read_sysctl_in(&b, "net.ipv4.ip_forward").unwrap();
    let a_value = if b_before == "1" { "0" } else { "1" };
    wire::sysctl::write_sysctl_in(&a, "net.ipv4.ip_forward", a_value).unwrap();
    wire::sysctl::write_sysctl_in(&a, "net/ipv6/conf/all/forwarding", "1").unwrap();
    assert_eq!(
        wire::sysctl::read_sysctl_in(&a, "net.ipv4.ip_forward").unwrap(),
        a_value
    );
    assert_eq!(
        wire::sysctl::read_sysctl_in(&a, "net.ipv6.conf.all.forwarding").unwrap(),
        "1"
    );
    assert_eq!(
        wire::sysctl::read_sysctl_in(&b, "net.ipv4.ip_forward").unwrap(),
        b_before
    );
    let err = wire::sysctl::write_sysctl_in(&a, "net.ipv4.no_such_key", "1").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("write sysctl net.ipv4.no_such_key=1: "),
        "{err}"
    );
}

#[test]
fn flushing_a_bridge_forgets_learned_macs_and_keeps_its_ports_own() {
    require_root();
    let (x, y) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let name = Registered::new(&x, "fdbflush");
    let mut hx = Handle::in_netns(&x).unwrap();
    let br = hx.add_bridge("lwtw-fbr", None, None, true).unwrap();
    hx.add_veth(
        &VethEnd {
            netns: Some(x.fd()),
            master: Some(br),
            mac: Some(mac(0x21)),
            up: true,
            ..VethEnd::new("lwtw-fp1")
        },
        &VethEnd {
            netns: Some(y.fd()),
            up: true,
            ..VethEnd::new("lwtw-fe1")
        },
    )
    .unwrap();
    // What a bridge learns from traffic: entries without the static flag.
    for last in [0x31, 0x32] {
        let m = format_mac(&mac(last));
        iproute2(
            "bridge",
            &[
                "-n", &name.0, "fdb", "add", &m, "dev", "lwtw-fp1", "master", "dynamic",
            ],
        );
    }
    let fdb = || iproute2("bridge", &["-n", &name.0, "fdb", "show", "br", "lwtw-fbr"]);
    let before = fdb();
    assert!(before.contains(&format_mac(&mac(0x31))), "{before}");
    hx.flush_fdb(br).unwrap();
    let after = fdb();
    for last in [0x31, 0x32] {
        assert!(!after.contains(&format_mac(&mac(last))), "{after}");
    }
    // The port's own address stays (it is how frames for the bridge itself are recognised).
    assert!(after.contains(&format_mac(&mac(0x21))), "{after}");
}

/// The packets each rule of bridge-family table `table` in namespace `ns` (registered name)
/// counted, by the ICMPv6 type it matches, as `nft` reads the rules back from the kernel: each
/// must match the port group `group` and drop.
fn nft_drop_counts(ns: &str, table: &str, group: u32) -> Vec<(u64, u64)> {
    let out = iproute2(
        "ip",
        &["netns", "exec", ns, "nft", "list", "table", "bridge", table],
    );
    let word_after = |line: &str, key: &str| -> String {
        let at = line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
            + key.len();
        line[at..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let mut counts = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| l.ends_with("drop")) {
        // nft folds the Ethernet type and transport protocol matches into `icmpv6 type`.
        assert_eq!(word_after(line, "iifgroup "), group.to_string(), "{line}");
        let kind = match word_after(line, "icmpv6 type ").as_str() {
            "mld-listener-report" => 131,
            "nd-router-solicit" => 133,
            "mld2-listener-report" => 143,
            t => panic!("unexpected icmpv6 type {t} in {line:?}"),
        };
        let packets = word_after(line, "counter packets ").parse().unwrap();
        counts.push((kind, packets));
    }
    counts
}

#[test]
fn bridge_icmpv6_drop_table_drops_what_ports_of_its_group_send() {
    require_root();
    let (x, grouped, other) = (
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
        NetNs::create_anonymous().unwrap(),
    );
    let name = Registered::new(&x, "nftdrop");
    let mut hx = Handle::in_netns(&x).unwrap();
    let br = hx.add_bridge("lwtw-nbr", None, None, true).unwrap();
    const GROUP: u32 = 0x7e57;
    for (port, end, ns, group) in [
        ("lwtw-np1", "lwtw-ne1", &grouped, Some(GROUP)),
        ("lwtw-np2", "lwtw-ne2", &other, None),
    ] {
        hx.add_veth(
            &VethEnd {
                netns: Some(x.fd()),
                master: Some(br),
                up: true,
                group,
                ..VethEnd::new(port)
            },
            &VethEnd {
                netns: Some(ns.fd()),
                ..VethEnd::new(end)
            },
        )
        .unwrap();
    }
    let link = ip(&["-n", &name.0, "-d", "-j", "link", "show", "lwtw-np1"]);
    assert!(link.contains(&format!("\"group\":\"{GROUP}\"")), "{link}");
    let d = wire::netlink::BridgeIcmpv6Drop {
        table: "lwtw-flood",
        chain: "ports",
        group: GROUP,
        types: &[131, 133, 143],
    };
    let mut nf = x.run_in(Handle::netfilter).unwrap().unwrap();
    nf.replace_bridge_icmpv6_drop(&d).unwrap();
    // Made again, it is replaced, not doubled.
    nf.replace_bridge_icmpv6_drop(&d).unwrap();
    let counts = nft_drop_counts(&name.0, d.table, GROUP);
    assert_eq!(
        counts.iter().map(|c| c.0).collect::<Vec<_>>(),
        [131, 133, 143],
        "one rule per type"
    );
    assert!(counts.iter().all(|c| c.1 == 0), "{counts:?}");

    // An interface that comes up solicits routers and reports its multicast groups (a host's
    // defaults): from the grouped port they are dropped and counted; from the other, not.
    let rs = |counts: &[(u64, u64)]| counts.iter().find(|c| c.0 == 133).map_or(0, |c| c.1);
    let mut ho = Handle::in_netns(&other).unwrap();
    let l = ho.link("lwtw-ne2").unwrap().unwrap();
    ho.set_up(l.index).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        rs(&nft_drop_counts(&name.0, d.table, GROUP)),
        0,
        "from the other port"
    );
    let mut hg = Handle::in_netns(&grouped).unwrap();
    let l = hg.link("lwtw-ne1").unwrap().unwrap();
    hg.set_up(l.index).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts = nft_drop_counts(&name.0, d.table, GROUP);
        if rs(&counts) > 0 && counts.iter().any(|c| c.0 != 133 && c.1 > 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no router solicitation and MLD report dropped from the grouped port: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    assert!(nf.delete_bridge_table(d.table).unwrap());
    assert!(!nf.delete_bridge_table(d.table).unwrap(), "deleted twice");
    let listed = iproute2("ip", &["netns", "exec", &name.0, "nft", "list", "tables"]);
    assert!(!listed.contains(d.table), "{listed}");
}
