//! Day-2 operations on links, end to end (issue 15 items 3, 4, 6): impairments measured, not just
//! configured; link down/up seen by a routing protocol; the events stream showing each change.
//!
//! - `d2k_native_rate_limits_a_bulk_transfer`: a topology `impairments: {rate: 1Mbit}` on a
//!   native link limits a 400 kB TCP transfer to about 1 Mbit/s (tbf); `tools netem set --rate`
//!   changes it on the running lab, and a converging deploy that adds an impaired link leaves
//!   it so (only the new link gets the topology's rate); `reset` removes it; netem (delay) on
//!   that running link is refused, naming sch_netem, and changes nothing.
//! - `d2k_native_netem_refused_before_anything`: delay/loss on a native link, on this host's
//!   kernel (no netem), is refused by deploy before anything is made.
//! - `d2k_native_frr_bgp_link_down_up_with_events`: BGP unnumbered between two native FRR nodes
//!   (open-nos) goes down on `tools link down` and re-establishes on `tools link up`; a `labwire
//!   events` started before the deploy shows both.
//! - `d2k_vm_impairments_and_link_flap`: a VM FRR node (QEMU, TCG) linked to a native FRR node:
//!   100 ms delay on the VM's end (applied in its guest) gives RTT ≥ 100 ms from the peer; 20 %
//!   loss set on the running lab loses about 20 % of pings; the link taken down drops BGP on both
//!   sides (the guest sees carrier loss through QMP) and up brings it back; the events stream
//!   shows all of it.
//! - `d2f_docker_impairments_and_link_state`, `d2f_podman_impairments_and_link_state`: on a
//!   container node linked to a native one, a delay is refused before anything is made (no
//!   sch_netem on this host), a topology rate of 1 Mbit/s (tbf in the container's namespace)
//!   limits a bulk transfer out of it, a delay set on the running endpoint is refused and changes
//!   nothing, `tools link down` takes carrier from both ends and `up` brings it back; the events
//!   show the impairment and both link changes in order.
//!
//! Runs as root. Labs are named `d2k-*` and `d2f-*`, links in 10.166.0.0/16 and 10.162.0.0/16,
//! management networks in 172.30.166.0/24–172.30.170.0/24, 172.30.180.0/24 and 172.30.183.0/24. The FRR tests use the open-nos image in its test store
//! (built once by `images/open-nos/build.sh`, as tests/cldemo2.rs does) and Debian's kernel
//! (`images/kernel/fetch.sh`).
//!
//! `sudo -E cargo test -p labwire --test day2link -- --nocapture` (figures are printed).

mod common;

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::open_nos::{debian_kernel, ensure_image, IMAGE_DIR};
use common::*;
use serde_json::Value;

/// `ip netns exec NS sh -c CMD`, not waited for.
fn spawn_in(ns: &str, cmd: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn in {ns}: {e}"))
}

/// Transfer `bytes` over TCP from node `from` to `to_addr` (a listener in node `to`); the time
/// until the receiver has them all, and how many it got.
fn bulk_transfer(
    lab: &TestLab,
    from: &str,
    to: &str,
    to_addr: &str,
    bytes: usize,
) -> (Duration, usize) {
    let to_ns = lab.netns(to);
    let mut rx = spawn_in(&to_ns, "socat -u TCP-LISTEN:5001,reuseaddr - | wc -c");
    poll(Duration::from_secs(10), || {
        let out = run_ok({
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &to_ns, "ss", "-Hltn", "sport = :5001"]);
            c
        });
        if text(&out.stdout).contains("5001") {
            Ok(())
        } else {
            Err("no listener yet".to_string())
        }
    })
    .expect("the receiver listens");
    let t = Instant::now();
    let mut tx = spawn_in(
        &lab.netns(from),
        &format!("head -c {bytes} /dev/zero | socat -u - TCP:{to_addr}:5001"),
    );
    let status = wait_timeout(&mut rx, Duration::from_secs(60));
    let took = t.elapsed();
    let _ = tx.kill();
    let _ = tx.wait();
    if status.is_none() {
        let _ = rx.kill();
        let _ = rx.wait();
        panic!("the transfer {from} → {to} did not finish in 60 s");
    }
    let mut got = String::new();
    rx.stdout
        .take()
        .expect("piped")
        .read_to_string(&mut got)
        .expect("read wc");
    (took, got.trim().parse().unwrap_or(0))
}

/// Send `bytes` from `from` to `to` (at `to_addr`) and check the rate is within `range` Mbit/s;
/// prints the figure, tagged `what`.
fn assert_rate(
    lab: &TestLab,
    (from, to, to_addr): (&str, &str, &str),
    bytes: usize,
    range: std::ops::RangeInclusive<f64>,
    what: &str,
) {
    let (took, got) = bulk_transfer(lab, from, to, to_addr, bytes);
    assert_eq!(got, bytes, "bytes received");
    let mbps = bytes as f64 * 8.0 / took.as_secs_f64() / 1e6;
    eprintln!(
        "{what}: {bytes} bytes took {:.2} s ({mbps:.2} Mbit/s)",
        took.as_secs_f64()
    );
    assert!(
        range.contains(&mbps),
        "{what}: the link carried {mbps:.2} Mbit/s, not within {range:?}"
    );
}

/// The qdisc kinds on `iface` of `node`.
fn qdiscs(lab: &TestLab, node: &str, iface: &str) -> Vec<String> {
    let out = run_ok({
        let mut c = Command::new("tc");
        c.args(["-n", &lab.netns(node), "-j", "qdisc", "show", "dev", iface]);
        c
    });
    let v: Value = serde_json::from_slice(&out.stdout).expect("tc -j");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|q| q["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn tools(lab: &TestLab, args: &[&str]) -> std::process::Output {
    let mut c = lab.cmd();
    c.arg("tools").args(args).args(["--name", &lab.name]);
    run_timeout(c, Duration::from_secs(120))
}

fn tools_ok(lab: &TestLab, args: &[&str]) -> String {
    let out = tools(lab, args);
    assert!(
        out.status.success(),
        "tools {args:?} failed: {}",
        describe(&out)
    );
    text(&out.stdout)
}

#[test]
fn d2k_native_rate_limits_a_bulk_transfer() {
    let name = "d2k-rate";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.30.166.0/24\n\
         topology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n\
         \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.166.1.1/24\", \"10.166.1.2/24\"]\n\
         \x20     impairments:\n        \"a:eth1\": {{rate: 1Mbit}}\n"
    );
    let lab = TestLab::new("d2k-rate", name, name, &["a", "b", "c"], &yaml);
    lab.deploy();
    assert_eq!(qdiscs(&lab, "a", "eth1"), ["tbf"], "a's eth1 is shaped");
    assert!(
        !qdiscs(&lab, "b", "eth1").contains(&"tbf".to_string()),
        "b's eth1 is not"
    );
    let show = tools_ok(&lab, &["netem", "show"]);
    assert!(show.contains("a:eth1") && show.contains("1000"), "{show}");

    // 400 kB at 1 Mbit/s is 3.2 s; tbf's 32 KiB burst and TCP's start take a little off or add.
    assert_rate(
        &lab,
        ("a", "b", "10.166.1.2"),
        400_000,
        0.6..=1.2,
        "d2k: over a 1 Mbit/s link",
    );

    // Changed on the running lab: 8 Mbit/s.
    tools_ok(
        &lab,
        &["netem", "set", "-n", "a", "-i", "eth1", "--rate", "8000"],
    );
    assert_rate(
        &lab,
        ("a", "b", "10.166.1.2"),
        2_000_000,
        4.8..=9.6,
        "d2k: at 8 Mbit/s",
    );

    // A converging deploy that adds a node and an impaired link leaves the running link's rate
    // as set (not the topology's again) and shapes only the new link.
    let plus = format!(
        "{yaml}    - endpoints: [\"b:eth2\", \"c:eth1\"]\n      impairments:\n        \"c:eth1\": {{rate: 2Mbit}}\n"
    )
    .replace("    b: {kind: linux}\n", "    b: {kind: linux}\n    c: {kind: linux}\n");
    std::fs::write(&lab.file, &plus).expect("write the topology");
    lab.deploy();
    let show = tools_ok(&lab, &["netem", "show", "-f", "json"]);
    let v: Value = serde_json::from_str(&show).expect("netem show json");
    let rate = |node: &str, iface: &str| {
        v[node]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["interface"] == iface))
            .map(|e| e["rate_kbit"].clone())
    };
    assert_eq!(rate("a", "eth1"), Some(8000.into()), "{show}");
    assert_eq!(rate("c", "eth1"), Some(2000.into()), "{show}");
    assert_eq!(qdiscs(&lab, "c", "eth1"), ["tbf"], "c's eth1 is shaped");
    std::fs::write(&lab.file, &yaml).expect("write the topology");
    lab.deploy();

    // netem on this host's kernel is refused and leaves the rate as it was.
    let out = tools(
        &lab,
        &["netem", "set", "-n", "a", "-i", "eth1", "--delay", "10ms"],
    );
    assert!(
        !out.status.success(),
        "netem delay accepted: {}",
        describe(&out)
    );
    assert!(
        text(&out.stderr).contains("sch_netem"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        qdiscs(&lab, "a", "eth1"),
        ["tbf"],
        "the refused set changed the qdisc"
    );

    tools_ok(&lab, &["netem", "reset", "-n", "a", "-i", "eth1"]);
    assert!(
        !qdiscs(&lab, "a", "eth1").contains(&"tbf".to_string()),
        "reset left tbf"
    );
    let show = tools_ok(&lab, &["netem", "show", "-n", "a", "-f", "json"]);
    let v: Value = serde_json::from_str(&show).expect("netem show json");
    assert_eq!(v["a"][0]["rate_kbit"], Value::Null, "{show}");

    // Each change is an event.
    let mut c = lab.cmd();
    c.args(["events", "--name", name, "--no-follow", "--format", "json"]);
    let events: Vec<Value> = text(&run_ok(c).stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event is JSON"))
        .collect();
    let changes: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "impairment-changed")
        .collect();
    assert_eq!(
        changes.len(),
        4,
        "deploy, set, the converging deploy's new link, reset: {events:?}"
    );
    assert_eq!(changes[1]["impairment"]["rate_kbit"], 8000);
    assert_eq!(changes[2]["endpoint"], "c:eth1");
    assert_eq!(changes[3]["impairment"], serde_json::json!({}));
    let destroyed = lab.destroy(true);
    assert!(destroyed.status.success(), "{}", describe(&destroyed));
    lab.assert_nothing_left(&[]);
}

#[test]
fn d2k_native_netem_refused_before_anything() {
    let name = "d2k-nem";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.30.167.0/24\n\
         topology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n\
         \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      impairments: {{delay: 100ms, loss: 20%}}\n"
    );
    let lab = TestLab::new("d2k-nem", name, name, &["a", "b"], &yaml);
    netem_refused_before_anything(
        &lab,
        &[
            "link endpoint a:eth1: delay=100ms loss=20% needs the tc netem qdisc",
            "module sch_netem",
            "link endpoint b:eth1",
        ],
    );
}

/// A deploy of `lab` fails naming each of `needles`, and makes no host link, state directory or
/// namespace of the lab.
fn netem_refused_before_anything(lab: &TestLab, needles: &[&str]) {
    let out = lab.try_deploy();
    assert!(
        !out.status.success(),
        "deploy succeeded: {}",
        describe(&out)
    );
    let err = text(&out.stderr);
    assert!(needles.iter().all(|n| err.contains(n)), "{err}");
    // Other labs may come and go meanwhile: look for this lab's own names.
    let ours = lab.expected_host_objects();
    let made: Vec<String> = host_link_names()
        .into_iter()
        .filter(|l| ours.contains(l))
        .collect();
    assert!(made.is_empty(), "deploy made host links {made:?}");
    assert!(!lab.state_dir().exists(), "a state directory was made");
    for n in &lab.nodes {
        assert!(
            !std::path::Path::new(&format!("/run/netns/{}", lab.netns(n))).exists(),
            "a namespace of {n} was made"
        );
    }
}

/// The open-nos start script of the FRR tests: eth1 up, BGP unnumbered on eth1 (AS by node).
const FRR_START: &str = r#"#!/bin/sh
set -eu
node=$(hostname)
case $node in
r1) asn=65001; id=10.166.255.1 ;;
*) asn=65002; id=10.166.255.2 ;;
esac
ip link set eth1 up
cat >/etc/frr/frr.conf <<EOF
frr defaults datacenter
hostname $node
service integrated-vtysh-config
router bgp $asn
 bgp router-id $id
 no bgp ebgp-requires-policy
 timers bgp 3 9
 neighbor eth1 interface remote-as external
 address-family ipv4 unicast
  redistribute connected
 exit-address-family
EOF
chown frr:frr /etc/frr/frr.conf
# zebra and bgpd without watchfrr: under TCG on a loaded host watchfrr takes a daemon that answers
# late for hung and restarts it without its configuration. The configuration is loaded (again)
# until BGP has its neighbour.
install -d -o frr -g frr -m 0755 /run/frr
/usr/lib/frr/zebra -d -F traditional -A 127.0.0.1
/usr/lib/frr/bgpd -d -F traditional -A 127.0.0.1
(for i in $(seq 120); do
    vtysh -b >/dev/null 2>&1 || true
    vtysh -c 'show bgp summary' 2>/dev/null | grep -q eth1 && exit 0
    sleep 3
done) &
echo "start.sh: $node up"
"#;

/// The BGP state of the session on eth1 as `node` sees it, or what vtysh said instead.
fn bgp_state(lab: &TestLab, node: &str) -> Result<String, String> {
    let out = lab.exec(node, "vtysh -c 'show bgp summary json'");
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        let mut said = describe(&out);
        said.truncate(300);
        said
    })?;
    v["ipv4Unicast"]["peers"]["eth1"]["state"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "no eth1 peer".to_string())
}

fn wait_bgp(lab: &TestLab, nodes: &[&str], established: bool, timeout: Duration) -> Duration {
    let t = Instant::now();
    poll(timeout, || {
        let states: Vec<Result<String, String>> = nodes.iter().map(|n| bgp_state(lab, n)).collect();
        let ok = states.iter().all(|s| {
            let up = s.as_deref() == Ok("Established");
            up == established
        });
        if ok {
            Ok(())
        } else {
            std::thread::sleep(Duration::from_millis(500));
            Err(format!("{nodes:?}: {states:?}"))
        }
    })
    .unwrap_or_else(|e| {
        panic!(
            "BGP did not become {} within {timeout:?}: {e}",
            if established { "Established" } else { "down" }
        )
    });
    t.elapsed()
}

/// A `labwire events` follower, ended when dropped (also when the test fails).
struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `labwire events --name LAB --format json`, writing to a file of the lab's directory.
fn follow_events(lab: &TestLab) -> (Follower, std::path::PathBuf) {
    let path = lab.dir.join("events.out");
    let file = std::fs::File::create(&path).expect("events output file");
    let mut c = lab.cmd();
    c.args(["events", "--name", &lab.name, "--format", "json"])
        .stdout(file)
        .stderr(Stdio::null());
    (Follower(c.spawn().expect("spawn labwire events")), path)
}

fn events_seen(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event `{l}`: {e}")))
        .collect()
}

/// Take the link of `endpoint` down, wait for BGP to drop on both nodes, bring it up, wait for
/// BGP to come back; the events follower must show both.
fn flap_and_check(lab: &TestLab, endpoint: &str, events: &std::path::Path, bgp_timeout: Duration) {
    let out = tools_ok(lab, &["link", "down", "--endpoint", endpoint]);
    assert!(out.contains("is down"), "{out}");
    let down = wait_bgp(lab, &["r1", "r2"], false, bgp_timeout);
    eprintln!(
        "d2k {}: BGP down {:.1} s after link down",
        lab.name,
        down.as_secs_f64()
    );
    let out = tools_ok(lab, &["link", "up", "--endpoint", endpoint]);
    assert!(out.contains("is up"), "{out}");
    let up = wait_bgp(lab, &["r1", "r2"], true, bgp_timeout);
    eprintln!(
        "d2k {}: BGP Established {:.1} s after link up",
        lab.name,
        up.as_secs_f64()
    );
    let seen = poll(Duration::from_secs(5), || {
        let ev = events_seen(events);
        let has = |kind: &str| {
            ev.iter().any(|e| {
                e["event"] == kind && e["endpoint"] == endpoint && e["lab"] == lab.name.as_str()
            })
        };
        if has("link-down") && has("link-up") {
            Ok(ev)
        } else {
            Err(format!("{ev:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("the events stream lacks link-down/link-up of {endpoint}: {e}"));
    let kinds: Vec<&str> = seen.iter().filter_map(|e| e["event"].as_str()).collect();
    let down_at = kinds.iter().position(|k| *k == "link-down").expect("down");
    let up_at = kinds.iter().rposition(|k| *k == "link-up").expect("up");
    assert!(down_at < up_at, "events out of order: {kinds:?}");
}

#[test]
fn d2k_native_frr_bgp_link_down_up_with_events() {
    ensure_image();
    let name = "d2k-frr";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.30.168.0/24\n\
         topology:\n  defaults:\n    kind: linux\n    image: open-nos:latest\n    cmd: /bin/sh /lab/start.sh\n\
         \x20   binds: [start.sh:/lab/start.sh:ro]\n\
         \x20 nodes:\n    r1: {{}}\n    r2: {{}}\n\
         \x20 links:\n    - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n"
    );
    let mut lab = TestLab::new("d2k-frr", name, name, &["r1", "r2"], &yaml);
    lab.env.push(("LABWIRE_IMAGE_DIR".into(), IMAGE_DIR.into()));
    std::fs::write(lab.dir.join("start.sh"), FRR_START).expect("write start.sh");
    // Started before the lab exists: it waits for it.
    let (follower, events) = follow_events(&lab);
    lab.deploy();
    let up = wait_bgp(&lab, &["r1", "r2"], true, Duration::from_secs(90));
    eprintln!(
        "d2k: native FRR BGP Established {:.1} s after deploy",
        up.as_secs_f64()
    );
    flap_and_check(&lab, "r1:eth1", &events, Duration::from_secs(60));
    // Carrier on both ends came back.
    for n in ["r1", "r2"] {
        let st = if_states(&lab.links(n));
        assert!(
            st.get("eth1").is_some_and(|s| s.up),
            "{n}'s eth1 is not up with carrier again"
        );
    }
    drop(follower);
    let destroyed = lab.destroy(true);
    assert!(destroyed.status.success(), "{}", describe(&destroyed));
    lab.assert_nothing_left(&[]);
}

/// `rtt min/avg/max/mdev = a/b/c/d ms` and the loss percentage of a ping's summary.
fn ping_summary(out: &str) -> (Option<f64>, Option<f64>) {
    let min = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').next())
        .and_then(|v| v.parse().ok());
    let loss = out
        .lines()
        .find(|l| l.contains("packet loss"))
        .and_then(|l| l.split(',').find(|p| p.contains("packet loss")))
        .and_then(|p| p.trim().split('%').next())
        .and_then(|v| v.trim().parse().ok());
    (min, loss)
}

#[test]
fn d2k_vm_impairments_and_link_flap() {
    ensure_image();
    let kernel = debian_kernel();
    let name = "d2k-vm";
    let yaml = format!(
        "name: {name}\nmgmt:\n  network: {name}\n  ipv4-subnet: 172.30.169.0/24\n\
         topology:\n  defaults:\n    kind: linux\n    image: open-nos:latest\n    cmd: /bin/sh /lab/start.sh\n\
         \x20   binds: [start.sh:/lab/start.sh:ro]\n\
         \x20 nodes:\n    r1:\n      runtime: vm\n      kernel: {}\n      memory: 512MB\n    r2: {{}}\n\
         \x20 links:\n    - endpoints: [\"r1:eth1\", \"r2:eth1\"]\n      ipv4: [\"10.166.9.1/24\", \"10.166.9.2/24\"]\n\
         \x20     impairments:\n        \"r1:eth1\": {{delay: 100ms}}\n",
        kernel.display()
    );
    let mut lab = TestLab::new("d2k-vm", name, name, &["r1", "r2"], &yaml);
    lab.env.push(("LABWIRE_IMAGE_DIR".into(), IMAGE_DIR.into()));
    std::fs::write(lab.dir.join("start.sh"), FRR_START).expect("write start.sh");
    let (follower, events) = follow_events(&lab);
    let t = Instant::now();
    let out = run_timeout(lab.deploy_cmd(), Duration::from_secs(900));
    assert!(out.status.success(), "deploy: {}", describe(&out));
    eprintln!("d2k: VM lab deployed in {:.1} s", t.elapsed().as_secs_f64());

    // The delay is in the guest's kernel, on its eth1.
    let q = lab.exec_ok("r1", "tc qdisc show dev eth1");
    assert!(q.contains("netem") && q.contains("delay 100"), "{q}");
    let ping = lab.exec_ok("r2", "ping -c 5 -i 0.2 -W 3 10.166.9.1");
    let (min, _) = ping_summary(&ping);
    let min = min.unwrap_or_else(|| panic!("no RTT in {ping}"));
    eprintln!("d2k: RTT r2 → r1 with 100 ms on r1's eth1: min {min:.1} ms");
    assert!(min >= 100.0, "RTT {min} ms below the 100 ms delay: {ping}");

    // 20 % loss set on the running lab (the delay goes: set replaces all).
    tools_ok(
        &lab,
        &["netem", "set", "-n", "r1", "-i", "eth1", "--loss", "20"],
    );
    let ping = lab.exec("r2", "ping -q -c 400 -i 0.02 -W 2 10.166.9.1");
    let (_, loss) = ping_summary(&text(&ping.stdout));
    let loss = loss.unwrap_or_else(|| panic!("no loss figure in {}", describe(&ping)));
    eprintln!("d2k: 400 pings r2 → r1 with 20 % loss on r1's eth1: {loss}% lost");
    assert!(
        (11.0..=31.0).contains(&loss),
        "loss {loss}% is not about 20%"
    );
    tools_ok(&lab, &["netem", "reset", "-n", "r1", "-i", "eth1"]);
    let q = lab.exec_ok("r1", "tc qdisc show dev eth1");
    assert!(!q.contains("netem"), "reset left {q}");

    // BGP between the VM and the native node, and a cable pull from the VM's side.
    let up = wait_bgp(&lab, &["r1", "r2"], true, Duration::from_secs(300));
    eprintln!(
        "d2k: VM–native BGP Established {:.1} s after the checks above",
        up.as_secs_f64()
    );
    let carrier = |want: &str| {
        poll(Duration::from_secs(20), || {
            let c = lab.exec_ok("r1", "cat /sys/class/net/eth1/carrier");
            if c.trim() == want {
                Ok(())
            } else {
                Err(c)
            }
        })
    };
    let out = tools_ok(&lab, &["link", "down", "--endpoint", "r1:eth1"]);
    assert!(out.contains("is down"), "{out}");
    carrier("0").unwrap_or_else(|c| panic!("the guest still has carrier: {c}"));
    tools_ok(&lab, &["link", "up", "--endpoint", "r1:eth1"]);
    carrier("1").unwrap_or_else(|c| panic!("the guest has no carrier back: {c}"));
    wait_bgp(&lab, &["r1", "r2"], true, Duration::from_secs(120));
    flap_and_check(&lab, "r1:eth1", &events, Duration::from_secs(120));
    let ev = events_seen(&events);
    assert!(
        ev.iter().any(|e| e["event"] == "impairment-changed"
            && e["endpoint"] == "r1:eth1"
            && e["impairment"]["loss"] == 20.0),
        "no impairment change to 20% loss in {ev:?}"
    );
    drop(follower);
    let destroyed = lab.destroy(true);
    assert!(destroyed.status.success(), "{}", describe(&destroyed));
    // The native FRR node's killed bgpd leaves its BGP connection to the VM, which is gone,
    // orphaned in the node's namespace: destroy has it give up within seconds, so the namespace
    // (and with it its management veth, left to the kernel's batched namespace cleanup) goes too.
    lab.assert_nothing_left_within(&[], Duration::from_secs(20));
}

/// `ip -j link` of `iface` in `node`: whether it has carrier (LOWER_UP).
fn carrier(lab: &TestLab, node: &str, iface: &str) -> bool {
    let v = ip_json(&["-n", &lab.netns(node), "-j", "link", "show", "dev", iface]);
    v[0]["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "LOWER_UP"))
}

/// The lab's events so far (`events --no-follow --format json`).
fn events_of(lab: &TestLab) -> Vec<Value> {
    let mut c = lab.cmd();
    c.args([
        "events",
        "--name",
        &lab.name,
        "--no-follow",
        "--format",
        "json",
    ]);
    text(&run_ok(c).stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("event `{l}`: {e}")))
        .collect()
}

/// Impairments and link state on a container node of `runtime` (docker or podman) linked to a
/// native node: a topology rate (tbf on the container's interface) limits a bulk transfer out of
/// it; a delay on that running endpoint, and a topology with one, are refused before anything
/// changes (no sch_netem here); `tools link down` takes carrier from both ends and `up` gives it
/// back; the events show each change.
fn engine_impairments_and_link_state(engine: &EngineCli, runtime: &str, octet: u8) {
    let image = format!("lwt-busybox:d2f{runtime}");
    engine.ready_with_busybox(&image);
    let name = format!("d2f-{runtime}");
    let yaml = |impair: &str| {
        format!(
            "name: {name}\nmgmt: {{network: {name}, ipv4-subnet: 172.30.{octet}.0/24}}\n\
             topology:\n  nodes:\n    h: {{kind: linux, cmd: sleep infinity}}\n\
             \x20   c: {{kind: linux, runtime: {runtime}, image: \"{image}\", cmd: sleep 100000}}\n\
             \x20 links:\n    - endpoints: [\"c:eth1\", \"h:eth1\"]\n      ipv4: [10.162.{octet}.1/30, 10.162.{octet}.2/30]\n\
             \x20     impairments:\n        \"c:eth1\": {{{impair}}}\n"
        )
    };
    let lab = TestLab::new(&name, &name, &name, &["h", "c"], &yaml("delay: 50ms"));

    // Delay on a container's interface needs the host's sch_netem: refused before anything.
    netem_refused_before_anything(
        &lab,
        &[
            "link endpoint c:eth1: delay=50ms needs the tc netem qdisc",
            "module sch_netem",
        ],
    );
    assert!(
        engine.containers_of(&name).is_empty(),
        "a container was made"
    );

    // A rate works: tbf on the container's eth1, in its own namespace.
    std::fs::write(&lab.file, yaml("rate: 1Mbit")).expect("write the topology");
    lab.deploy();
    let recorded = lab.recorded_host_objects();
    assert_eq!(qdiscs(&lab, "c", "eth1"), ["tbf"], "c's eth1 is shaped");
    lab.assert_ping("c", &format!("10.162.{octet}.2"));
    assert_rate(
        &lab,
        ("c", "h", &format!("10.162.{octet}.2")),
        400_000,
        0.6..=1.2,
        &format!("d2f {runtime}: out of a 1 Mbit/s container link"),
    );
    let out = tools(
        &lab,
        &["netem", "set", "-n", "c", "-i", "eth1", "--delay", "10ms"],
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("sch_netem"),
        "netem delay on a running container link: {}",
        describe(&out)
    );
    assert_eq!(
        qdiscs(&lab, "c", "eth1"),
        ["tbf"],
        "the refused set changed it"
    );

    // A cable pull: both ends lose carrier; up gives it back and traffic passes again.
    assert!(carrier(&lab, "c", "eth1") && carrier(&lab, "h", "eth1"));
    let out = tools_ok(&lab, &["link", "down", "--endpoint", "c:eth1"]);
    assert!(out.contains("is down"), "{out}");
    assert!(!carrier(&lab, "c", "eth1"), "c's eth1 kept carrier");
    assert!(!carrier(&lab, "h", "eth1"), "h's eth1 kept carrier");
    let ping = lab.exec("h", &format!("ping -c1 -W1 10.162.{octet}.1"));
    assert!(!ping.status.success(), "a ping crossed a link that is down");
    let out = tools_ok(&lab, &["link", "up", "--endpoint", "c:eth1"]);
    assert!(out.contains("is up"), "{out}");
    poll(Duration::from_secs(10), || {
        if carrier(&lab, "c", "eth1") && carrier(&lab, "h", "eth1") {
            Ok(())
        } else {
            Err("no carrier yet".to_string())
        }
    })
    .expect("both ends have carrier after link up");
    lab.assert_ping("h", &format!("10.162.{octet}.1"));
    assert_eq!(qdiscs(&lab, "c", "eth1"), ["tbf"], "link up lost the rate");

    let events = events_of(&lab);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let at = |k: &str| kinds.iter().position(|x| *x == k);
    let (Some(imp), Some(down), Some(up)) =
        (at("impairment-changed"), at("link-down"), at("link-up"))
    else {
        panic!("the events lack impairment-changed, link-down or link-up: {kinds:?}");
    };
    assert!(imp < down && down < up, "events out of order: {kinds:?}");
    assert_eq!(events[imp]["endpoint"], "c:eth1");
    assert_eq!(events[imp]["impairment"]["rate_kbit"], 1000);
    assert_eq!(events[down]["endpoint"], "c:eth1");
    assert_eq!(events[down]["peer"], "h:eth1");

    let d = lab.destroy(true);
    assert!(d.status.success(), "destroy: {}", describe(&d));
    lab.assert_nothing_left(&recorded);
    assert!(
        engine.containers_of(&name).is_empty(),
        "containers are left"
    );
}

#[test]
fn d2f_docker_impairments_and_link_state() {
    engine_impairments_and_link_state(&DOCKER, "docker", 180);
}

#[test]
fn d2f_podman_impairments_and_link_state() {
    engine_impairments_and_link_state(&PODMAN, "podman", 183);
}
