//! The dual-homed cldemo2 (`examples/cldemo2/mh/`) end to end: what only a node with its own
//! kernel can do, on the one runtime that gives it one.
//!
//! - `vmf_dual_homed_evpn_mh_on_vms`: every node a VM (QEMU, Debian's kernel, the open-nos image).
//!   server01 bonds its two uplinks with LACP (802.3ad), one to leaf01 and one to leaf02, which
//!   hold that bond as one EVPN Ethernet segment (FRR's EVPN multihoming) over BGP unnumbered and
//!   VNI 100 to leaf03 and server03. Checks: both bond members in one aggregator with the leaves'
//!   shared LACP partner, and each leaf's bond1 aggregated with server01; the segment on both
//!   leaves with exactly one designated forwarder, and on leaf03 as a remote segment behind both;
//!   server01 ↔ server03 through the overlay, each reply once (no copy from the non-DF); split horizon: broadcasts server01 sends up either
//!   uplink never come back from the other leaf, whose copies the forwarder drops; then the cable between server01
//!   and leaf01 pulled (both NICs down, in the guests) while server03 pings server01 five times a
//!   second: the replies go on through leaf02 with no gap longer than a few seconds, and leaf02
//!   becomes the forwarder.
//! - `vmf_dual_homed_on_native_nodes_is_refused`: the same topology with `runtime: native` is
//!   refused before anything is made, naming the kernel module (bonding) this host's kernel lacks.
//!
//! Runs as root. Labs `vmf-mh` (172.30.181.0/24, fd00:181::/64) and `vmf-mhn` (172.30.182.0/24);
//! the example's own addresses live inside the guests only. `--nocapture` prints the timings.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::open_nos::{debian_kernel, ensure_image, repo_root, IMAGE_DIR};
use common::*;
use serde_json::Value;

const NODES: [&str; 5] = ["leaf01", "leaf02", "leaf03", "server01", "server03"];
/// The LACP system both ES leaves speak as (`ad_actor_system` in start.sh, `es-sys-mac`).
const ES_SYSTEM: &str = "44:38:39:ff:00:01";
const ESI: &str = "03:44:38:39:ff:00:01:00:00:01";

/// The example's topology as lab `lab` on its own management network.
fn example_yaml(lab: &str, v4: &str, v6: &str) -> String {
    let src = repo_root().join("examples/cldemo2/mh/cldemo2-mh.clab.yml");
    let y = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    let out = y
        .replace("\nname: cldemo2-mh\n", &format!("\nname: {lab}\n"))
        .replace("network: cldemo2-mh", &format!("network: {lab}"))
        .replace("172.31.204.0/24", v4)
        .replace("fd00:c2:4::/64", v6);
    for want in [format!("name: {lab}\n"), v4.to_string(), v6.to_string()] {
        assert!(
            out.contains(&want),
            "{}: could not set `{want}` (expected `name: cldemo2-mh`, 172.31.204.0/24, fd00:c2:4::/64)",
            src.display()
        );
    }
    out
}

/// The example as lab `name` in its own temp dir, with its files and the test image store.
fn mh_lab(test: &str, name: &str, yaml: &str) -> TestLab {
    let mut lab = TestLab::with_file(test, name, name, &NODES, "cldemo2-mh.clab.yml", yaml);
    lab.env.push(("LABWIRE_IMAGE_DIR".into(), IMAGE_DIR.into()));
    common::open_nos::copy_example(
        "examples/cldemo2/mh",
        &[
            "start.sh",
            "leaf01/frr.conf",
            "leaf02/frr.conf",
            "leaf03/frr.conf",
        ],
        &lab.dir,
    );
    lab
}

/// A field of `/proc/net/bonding/<bond>` (every line starting with `name`, trimmed).
fn bond_field<'a>(state: &'a str, name: &str) -> Vec<&'a str> {
    state
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix(name))
        .map(str::trim)
        .collect()
}

/// Ok when `bond` in `node` has one active aggregator holding `ports` members, whose partner is
/// `partner` (any partner when None); returns the bond's state.
fn aggregated(
    lab: &TestLab,
    node: &str,
    bond: &str,
    ports: usize,
    partner: Option<&str>,
) -> Result<String, String> {
    // The bond appears once the node's start script has run (deploy returns when the guest's
    // agent answers, which can be before): not there yet is a retry, not a failure.
    let out = lab.exec(node, &format!("cat /proc/net/bonding/{bond}"));
    if !out.status.success() {
        return Err(format!("{node}: no {bond} yet: {}", text(&out.stderr)));
    }
    let state = text(&out.stdout);
    let ids = bond_field(&state, "Aggregator ID:");
    let n = bond_field(&state, "Number of ports:");
    let p = bond_field(&state, "Partner Mac Address:");
    // The active aggregator's ID first, then each member's: all one aggregator.
    let ok = ids.len() == ports + 1
        && ids.iter().all(|i| *i == ids[0])
        && n == [ports.to_string().as_str()]
        && p.len() == 1
        && p[0] != "00:00:00:00:00:00"
        && partner.is_none_or(|want| p[0] == want);
    if ok {
        Ok(state)
    } else {
        Err(format!(
            "{node} {bond}: not one aggregator of {ports} with partner {}:\n{state}",
            partner.unwrap_or("(any)")
        ))
    }
}

/// `show evpn es json` of a leaf: the segment's flags and VTEPs, when it has the segment.
fn es_of(lab: &TestLab, leaf: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let out = lab.exec(leaf, "vtysh -c 'show evpn es json'");
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{leaf}: show evpn es json: {e}: {}", describe(&out)))?;
    let es = v
        .as_array()
        .and_then(|a| a.iter().find(|e| e["esi"] == ESI))
        .ok_or_else(|| format!("{leaf}: no segment {ESI} in {v}"))?;
    let strings = |x: &Value, key: Option<&str>| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| match key {
                Some(k) => i[k].as_str().map(String::from),
                None => i.as_str().map(String::from),
            })
            .collect()
    };
    Ok((
        strings(&es["flags"], None),
        strings(&es["vteps"], Some("vtep")),
    ))
}

/// The segment as it should be once converged with both leaves on it: local and remote on
/// leaf01 and leaf02, exactly one of them not the forwarder, and remote behind both on leaf03.
/// `up` lists the leaves whose bond1 is in the segment. Returns the forwarder.
fn segment_converged(lab: &TestLab, up: &[&str]) -> Result<String, String> {
    let mut df = Vec::new();
    for leaf in up {
        let (flags, _) = es_of(lab, leaf)?;
        let has = |f: &str| flags.iter().any(|x| x == f);
        if !has("local") || (up.len() > 1 && !has("remote")) {
            return Err(format!("{leaf}: segment flags {flags:?}"));
        }
        if !has("nonDF") {
            df.push(leaf.to_string());
        }
    }
    if df.len() != 1 {
        return Err(format!(
            "designated forwarders among {up:?}: {df:?} (want one)"
        ));
    }
    let (flags, mut vteps) = es_of(lab, "leaf03")?;
    vteps.sort();
    let want: Vec<String> = up
        .iter()
        .map(|l| format!("10.0.0.{}", &l[l.len() - 1..]))
        .collect();
    if !flags.iter().any(|f| f == "remote") || vteps != want {
        return Err(format!(
            "leaf03: segment flags {flags:?}, VTEPs {vteps:?} (want remote behind {want:?})"
        ));
    }
    Ok(df.remove(0))
}

/// The received sequence numbers of a `ping` output.
fn replies(out: &str) -> Vec<u64> {
    out.lines()
        .filter(|l| l.contains("bytes from") && !l.contains("DUP!"))
        .filter_map(|l| l.split("icmp_seq=").nth(1))
        .filter_map(|s| s.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Run in server01: sends 10 broadcast frames (an experimental EtherType, server01's own bond
/// MAC as source) straight out of each bond member, bypassing the bond's choice of member, and
/// counts for 3 s the ones that come back in on bond0, by the member they left from.
/// Prints `eth1=N eth2=M`.
const ECHO_PROBE: &str = r#"import select, socket, time
ETH = 0x88B5
own = bytes.fromhex(open("/sys/class/net/bond0/address").read().strip().replace(":", ""))
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH))
rx.bind(("bond0", ETH))
echoes = {"eth1": 0, "eth2": 0}
for port in echoes:
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind((port, 0))
    for _ in range(10):
        tx.send(b"\xff" * 6 + own + ETH.to_bytes(2, "big") + port.encode().ljust(46, b"\0"))
        time.sleep(0.02)
end = time.time() + 3
while True:
    left = end - time.time()
    if left <= 0 or not select.select([rx], [], [], left)[0]:
        break
    data, addr = rx.recvfrom(2048)
    if addr[2] != socket.PACKET_OUTGOING and data[6:12] == own:
        port = data[14:18].decode()
        echoes[port] = echoes.get(port, 0) + 1
print(" ".join(f"{p}={n}" for p, n in echoes.items()))
"#;

/// Frames `leaf`'s split-horizon filter has dropped on their way out of bond1 (start.sh's `tc`
/// filter on bond1's egress).
fn split_horizon_drops(lab: &TestLab, leaf: &str) -> u64 {
    let out = lab.exec_ok(leaf, "tc -s filter show dev bond1 egress");
    out.split("dropped ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{leaf}: no split-horizon filter on bond1's egress:\n{out}"))
}

#[test]
fn vmf_dual_homed_evpn_mh_on_vms() {
    require_root();
    ensure_image();
    let kernel = debian_kernel();
    let lab_name = "vmf-mh";
    let yaml = example_yaml(lab_name, "172.30.181.0/24", "fd00:181::/64");
    let mut lab = mh_lab("vmfmh", lab_name, &yaml);
    lab.env
        .push(("LABWIRE_KERNEL".into(), kernel.display().to_string()));
    let console = |node: &str| {
        let log = std::fs::read_to_string(lab.lab_dir().join(node).join("console.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    };

    let t0 = Instant::now();
    let out = run_timeout(lab.deploy_cmd(), Duration::from_secs(900));
    assert!(out.status.success(), "deploy failed: {}", describe(&out));
    let deploy_secs = t0.elapsed().as_secs_f64();

    // LACP: server01's two uplinks in one aggregator whose partner is the segment's system (both
    // leaves speak as one), and each leaf's bond1 aggregated with server01.
    let server_state = poll(Duration::from_secs(120), || {
        aggregated(&lab, "server01", "bond0", 2, Some(ES_SYSTEM))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        server_state.matches("MII Status: up").count(),
        3,
        "server01 bond0 and both members up:\n{server_state}"
    );
    let server_mac = bond_field(&server_state, "System MAC address:")[0].to_string();
    for leaf in ["leaf01", "leaf02"] {
        poll(Duration::from_secs(60), || {
            aggregated(&lab, leaf, "bond1", 1, Some(&server_mac))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    // EVPN multihoming: the segment on both leaves, one forwarder, remote behind both on leaf03.
    let df = poll(Duration::from_secs(240), || {
        segment_converged(&lab, &["leaf01", "leaf02"])
    })
    .unwrap_or_else(|e| {
        panic!(
            "the Ethernet segment did not converge within 240 s: {e}\nleaf01 console:\n{}",
            console("leaf01")
        )
    });
    let converged_secs = t0.elapsed().as_secs_f64();

    // The overlay: server01 ↔ server03.
    for (from, to) in [("server01", "10.1.100.103"), ("server03", "10.1.100.101")] {
        poll(Duration::from_secs(60), || {
            let out = lab.exec(from, &format!("ping -c1 -W2 {to}"));
            if out.status.success() {
                Ok(())
            } else {
                Err(describe(&out))
            }
        })
        .unwrap_or_else(|e| panic!("{from} cannot reach {to} through the overlay: {e}"));
    }
    // Once, not twice: leaf03 sends frames for server01 to the segment's nexthop group (one of
    // the two leaves), not flooded to both (start.sh adds the FDB entry FRR 8.4's zebra leaves
    // out, within a second of FRR learning the MAC); the non-DF's copy would show as `DUP!`.
    let mut duplicates = 0;
    poll(Duration::from_secs(30), || {
        let out = lab.exec_ok("server03", "ping -c4 -i0.3 -W2 10.1.100.101");
        duplicates += out.matches("DUP!").count();
        if replies(&out).len() == 4 && !out.contains("DUP!") {
            Ok(())
        } else {
            Err(out)
        }
    })
    .unwrap_or_else(|out| {
        panic!(
            "server03 → server01: not four replies without duplicates within 30 s:\n{out}\n\
             leaf03 console:\n{}",
            console("leaf03")
        )
    });

    // Split horizon: a broadcast server01 sends up one uplink is flooded over VXLAN to the other
    // leaf of the segment, which must not send it back down its own link to server01. Sent up
    // each link in turn (the non-DF's too, whose copy reaches the DF, the leaf that floods), none
    // may come back, and the forwarder's filter must have dropped the copies that reached it.
    for leaf in ["leaf01", "leaf02"] {
        // start.sh sets the marking filter up once FRR names the segment's peer.
        poll(Duration::from_secs(60), || {
            let f = lab.exec_ok(leaf, "tc filter show dev swp50 ingress");
            if f.contains("skbedit") {
                Ok(())
            } else {
                Err(f)
            }
        })
        .unwrap_or_else(|f| panic!("{leaf}: no split-horizon filter for its peer: {f}"));
    }
    let dropped_before = split_horizon_drops(&lab, &df);
    let probe = lab.exec_ok("server01", &format!("python3 -c '{ECHO_PROBE}'"));
    let dropped = split_horizon_drops(&lab, &df) - dropped_before;
    assert_eq!(
        probe.trim(),
        "eth1=0 eth2=0",
        "server01's own broadcasts came back from the segment's other leaf (sent 10 up each link)"
    );
    assert!(
        dropped >= 10,
        "the forwarder {df} dropped {dropped} of the 10 broadcasts the other leaf flooded to it"
    );

    // Pull the cable between server01 and leaf01 (both NICs down, each in its guest) while
    // server03 pings server01 five times a second for 20 s.
    let ping = std::thread::scope(|s| {
        let pinger = s.spawn(|| lab.exec("server03", "ping -i0.2 -c100 -W1 10.1.100.101"));
        std::thread::sleep(Duration::from_secs(4));
        let a = s.spawn(|| lab.exec_ok("leaf01", "ip link set swp1 down"));
        let b = s.spawn(|| lab.exec_ok("server01", "ip link set eth1 down"));
        a.join().unwrap();
        b.join().unwrap();
        pinger.join().unwrap()
    });
    let ping_text = text(&ping.stdout);
    let got = replies(&ping_text);
    let longest_gap = got
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .chain(got.first().map(|f| f - 1))
        .max()
        .unwrap_or(100);
    // Under TCG on a shared host a guest may fall behind for a moment: "a few seconds" is 4 s.
    assert!(
        got.last().is_some_and(|l| *l >= 95) && longest_gap <= 20,
        "server03 → server01 with server01's leaf01 uplink down: replies {} of 100, last {:?}, \
         longest gap {longest_gap} pings (0.2 s each); want replies to the end with no gap over \
         4 s:\n{ping_text}",
        got.len(),
        got.last()
    );
    let state = lab.exec_ok("server01", "cat /proc/net/bonding/bond0");
    assert!(
        state.contains("Slave Interface: eth1\nMII Status: down"),
        "server01 eth1 still up in bond0:\n{state}"
    );
    let after = poll(Duration::from_secs(60), || {
        segment_converged(&lab, &["leaf02"])
    })
    .unwrap_or_else(|e| panic!("leaf02 alone did not hold the segment: {e}"));
    assert_eq!(after, "leaf02");
    eprintln!(
        "cldemo2-mh on VMs: deploy {deploy_secs:.1} s, segment converged (DF {df}) {converged_secs:.1} s \
         after the deploy started; duplicates before leaf03's FDB had server01: {duplicates}; split horizon: \
         {dropped} echoes dropped by {df}; with server01–leaf01 down: {} of 100 replies, longest \
         gap {:.1} s",
        got.len(),
        longest_gap as f64 * 0.2
    );

    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy failed: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

#[test]
fn vmf_dual_homed_on_native_nodes_is_refused() {
    require_root();
    assert!(
        !Path::new("/sys/module/bonding").exists() && !Path::new("/proc/modules").exists(),
        "this test proves a refusal on a host kernel without bonding and without loadable modules; \
         this host's kernel has bonding or can load it"
    );
    let lab_name = "vmf-mhn";
    let yaml = example_yaml(lab_name, "172.30.182.0/24", "fd00:182::/64")
        .replace("    runtime: vm\n", "    runtime: native\n");
    assert!(
        yaml.contains("runtime: native"),
        "the example has no `runtime: vm` default"
    );
    ensure_image();
    let lab = mh_lab("vmfmhn", lab_name, &yaml);
    let before = host_link_names();
    let t = Instant::now();
    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "deploy succeeded: {}",
        describe(&out)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "refused after {:?}",
        t.elapsed()
    );
    let err = text(&out.stderr);
    for want in [
        "nodes leaf01, leaf02, leaf03, server01, server03: kernel module `bonding` (kernel-modules) is missing from the host's kernel",
        "cannot load modules",
        "runtime: vm",
    ] {
        assert!(err.contains(want), "no `{want}` in the refusal:\n{err}");
    }
    assert_eq!(
        host_link_names(),
        before,
        "the refused deploy touched the host's links"
    );
    assert!(!lab.state_dir().exists(), "a state directory was made");
}
