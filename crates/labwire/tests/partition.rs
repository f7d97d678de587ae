//! A lab split across hosts (issue 19), end to end on one machine: each host is stood in for by a
//! Docker container on one bridge network, given exactly the capabilities labwire needs (not
//! `--privileged`), running the labwire binary under test (bind-mounted) with its partition.
//!
//! - `partition_two_hosts_vxlan_link`: a two-node lab over two stand-in hosts: the link between
//!   them is a VXLAN tunnel with the interface name, MAC, addresses and MTU of a one-host deploy
//!   (deployed first in the same stand-in for comparison), both ends on one VNI; ping in IPv4 and
//!   IPv6 and with 8000-byte packets across the 1500-byte underlay; management IPv6 skipped with
//!   one warning (IPv6 is disabled in the containers); inspect and exec per partition; the
//!   artifacts name both nodes; destroy leaves nothing in either host.
//! - `partition_cldemo2_three_hosts_bgp_evpn`: the cldemo2 fabric (open-nos image, FRR) split
//!   over three stand-in hosts converges BGP unnumbered and EVPN over the tunnels, routes and
//!   bridges the servers' traffic as on one host; destroy leaves nothing.
//! - `k8s_render_validates_and_pod_image_stand_ins_bring_cldemo2_up`: `labwire k8s render` of
//!   cldemo2 passes `kubernetes-validate --strict`; containers of the pod image (the repository's
//!   Dockerfile) given what a kubelet would give each pod bring the fabric up; preStop cleans up.
//!
//! Runs as root with a Docker engine (scripts/test starts dockerd) and the open-nos image in the
//! engine and in labwire's store (built once by `images/open-nos/build.sh --docker`, shared with
//! tests/cldemo2.rs). Lab names start with `prt`; stand-in networks 172.30.191.0/24,
//! 172.30.192.0/25 and 172.30.192.128/25, management subnets 172.30.186.0/24, 172.30.187.0/24 and
//! 172.30.188.0/24, link subnets in 10.186.0.0/16.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::open_nos::{docker_cmd, ensure_image_for, repo_root, IMAGE, IMAGE_DIR};
use common::*;
use serde_json::Value;

/// The capabilities labwire needs in a container (or pod) to deploy native nodes, as the pods
/// get them; `--privileged` fails on this machine (its bounding set lacks CAP_SYS_RESOURCE).
const CAPS: [&str; 8] = k8s::CAPABILITIES;

/// Where the labwire binaries are inside a stand-in host.
const BIN: &str = "/opt/labwire/labwire";

/// Hosts stood in for by containers on one Docker network, each with a lab directory of its own
/// (`/lab`, a copy of the files) and labwire's state on the host's disk (an overlay upper
/// directory cannot sit on the container's own overlay root). Everything goes when dropped.
struct StandIns {
    network: String,
    hosts: Vec<String>,
    root: PathBuf,
    topo: String,
}

impl StandIns {
    /// Start `hosts` on a new network `network` (`subnet`), each from `image` with `files`
    /// (relative path → content) in its `/lab`; `ips` pins addresses (same order) where given.
    fn start(
        network: &str,
        subnet: &str,
        hosts: &[(&str, Option<&str>)],
        image: &str,
        files: &[(String, String)],
        extra: &[&str],
    ) -> StandIns {
        require_root();
        let out = docker_cmd(&["info"]);
        assert!(
            out.status.success(),
            "the partition tests need a running Docker engine: `docker info` failed ({}); \
             scripts/test starts one",
            describe(&out)
        );
        let root = PathBuf::from(format!("/var/tmp/{network}-{}", std::process::id()));
        let mut s = StandIns {
            network: network.to_string(),
            hosts: Vec::new(),
            root: root.clone(),
            topo: "/lab/lab.clab.yml".into(),
        };
        // Leftovers of an interrupted run go first.
        for (h, _) in hosts {
            docker_cmd(&["rm", "-f", h]);
        }
        docker_cmd(&["network", "rm", network]);
        let out = docker_cmd(&["network", "create", "--subnet", subnet, network]);
        assert!(
            out.status.success(),
            "docker network create {network}: {}",
            describe(&out)
        );
        let bin_dir = labwire_bin().parent().unwrap().to_path_buf();
        for (h, ip) in hosts {
            let lab = root.join(h).join("lab");
            let state = root.join(h).join("state");
            std::fs::create_dir_all(&state).unwrap();
            for (rel, content) in files {
                let p = lab.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, content).unwrap();
            }
            let mut args: Vec<String> = ["run", "-d", "--name", h, "--hostname", h, "--network"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.push(network.into());
            if let Some(ip) = ip {
                args.extend(["--ip".into(), ip.to_string()]);
            }
            for c in CAPS {
                args.extend(["--cap-add".into(), c.into()]);
            }
            for o in ["seccomp=unconfined", "apparmor=unconfined"] {
                args.extend(["--security-opt".into(), o.into()]);
            }
            args.extend([
                "-e".into(),
                format!("LABWIRE_IMAGE_DIR={IMAGE_DIR}"),
                "-v".into(),
                format!("{IMAGE_DIR}:{IMAGE_DIR}"),
                "-v".into(),
                format!("{}:/var/lib/labwire", state.display()),
                "-v".into(),
                format!("{}:/opt/labwire:ro", bin_dir.display()),
                "-v".into(),
                format!("{}:/lab", lab.display()),
            ]);
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend([image.into(), "sleep".into(), "infinity".into()]);
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = docker_cmd(&argv);
            assert!(out.status.success(), "docker run {h}: {}", describe(&out));
            s.hosts.push(h.to_string());
        }
        s
    }

    /// A command in stand-in host `host`.
    fn sh(&self, host: &str, cmd: &str) -> Output {
        let mut c = Command::new("docker");
        c.args(["exec", host, "sh", "-c", cmd])
            .stdin(std::process::Stdio::null());
        run_timeout(c, Duration::from_secs(180))
    }

    /// labwire in stand-in host `host`.
    fn labwire(&self, host: &str, args: &[&str]) -> Output {
        let mut c = Command::new("docker");
        c.args(["exec", host, BIN])
            .args(args)
            .stdin(std::process::Stdio::null());
        run_timeout(c, Duration::from_secs(300))
    }

    fn deploy(&self, host: &str, partition: Option<&str>) -> Output {
        let mut args = vec!["deploy", "-t", &self.topo];
        if let Some(p) = partition {
            args.extend(["--partition", p]);
        }
        self.labwire(host, &args)
    }

    fn exec(&self, host: &str, node: &str, cmd: &str) -> Output {
        self.labwire(
            host,
            &["exec", "-t", &self.topo, "--node", node, "--cmd", cmd],
        )
    }

    fn destroy(&self, host: &str) -> Output {
        self.labwire(host, &["destroy", "-t", &self.topo, "--cleanup"])
    }

    /// What a deploy left in a stand-in host: interfaces besides lo and eth0, namespaces,
    /// processes besides the container's own, recorded labs, the lab directory.
    fn leftovers(&self, host: &str) -> Vec<String> {
        let mut left = Vec::new();
        let links = text(
            &self
                .sh(host, "ip -o link show | awk -F': ' '{print $2}'")
                .stdout,
        );
        for l in links.lines() {
            let name = l.split('@').next().unwrap_or(l);
            if name != "lo" && name != "eth0" {
                left.push(format!("interface {name}"));
            }
        }
        let netns = text(&self.sh(host, "ip netns list").stdout);
        left.extend(netns.lines().map(|n| format!("netns {n}")));
        let procs = text(&self.sh(host, "ps -eo pid=,comm=").stdout);
        for p in procs.lines() {
            let comm = p.split_whitespace().nth(1).unwrap_or("");
            if !matches!(comm, "sleep" | "sh" | "ps") {
                left.push(format!("process {}", p.trim()));
            }
        }
        let labs = text(&self.sh(host, "ls /var/lib/labwire/labs 2>/dev/null").stdout);
        left.extend(labs.lines().map(|l| format!("recorded lab {l}")));
        let dir = text(&self.sh(host, "ls -d /lab/clab-* 2>/dev/null").stdout);
        left.extend(dir.lines().map(|d| format!("lab directory {d}")));
        left
    }
}

impl StandIns {
    /// Nothing left in `host` (waiting a moment: the kernel frees a deleted namespace's veths
    /// in the background).
    #[track_caller]
    fn assert_nothing_left(&self, host: &str) {
        let r = poll(Duration::from_secs(10), || {
            let left = self.leftovers(host);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        });
        if let Err(e) = r {
            panic!("left in {host}: {e}");
        }
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        for h in &self.hosts {
            self.destroy(h);
            docker_cmd(&["rm", "-f", h]);
        }
        docker_cmd(&["network", "rm", &self.network]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", describe(&out));
    text(&out.stdout)
}

/// `ip -d -j link show dev IFACE` in a node of a stand-in host.
fn link_of(s: &StandIns, host: &str, lab: &str, node: &str, iface: &str) -> Value {
    let out = ok(
        s.sh(
            host,
            &format!("ip -d -j -n clab-{lab}-{node} link show dev {iface}"),
        ),
        &format!("ip link of {node}:{iface} in {host}"),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

const TWO: &str = "\
name: prt-two
mgmt: {network: prt-two, ipv4-subnet: 172.30.186.0/24, ipv6-subnet: \"fd00:186:2::/64\"}
partitions:
  east: {address: 172.30.191.11}
  west: {address: prt-two-west}
topology:
  defaults: {kind: linux, cmd: sleep infinity, partition: east}
  nodes:
    a: {}
    b: {partition: west}
  links:
    - type: veth
      endpoints:
        - {node: a, interface: eth1, ipv4: 10.186.1.1/30, ipv6: \"fd00:186:1::1/64\"}
        - {node: b, interface: eth1, ipv4: 10.186.1.2/30, ipv6: \"fd00:186:1::2/64\"}
";

#[test]
fn partition_two_hosts_vxlan_link() {
    ensure_image_for(true);
    let s = StandIns::start(
        "prt-two",
        "172.30.191.0/24",
        &[
            ("prt-two-east", Some("172.30.191.11")),
            ("prt-two-west", Some("172.30.191.12")),
        ],
        IMAGE,
        &[("lab.clab.yml".into(), TWO.into())],
        &[],
    );
    let (east, west) = ("prt-two-east", "prt-two-west");

    // One host first (no --partition: every node here, the link a veth), for comparison.
    ok(s.deploy(east, None), "one-host deploy");
    let one = |node: &str| link_of(&s, east, "prt-two", node, "eth1");
    let (one_a, one_b) = (one("a"), one("b"));
    assert_eq!(one_a["linkinfo"]["info_kind"], "veth");
    ok(s.destroy(east), "destroy the one-host deploy");
    s.assert_nothing_left(east);

    let out = s.deploy(east, Some("east"));
    let east_log = text(&out.stderr);
    assert!(out.status.success(), "deploy east: {}", describe(&out));
    ok(s.deploy(west, Some("west")), "deploy west");
    assert_eq!(
        east_log.matches("IPv6 is disabled").count(),
        1,
        "one warning about the management IPv6: {east_log}"
    );

    // The node sees the one-host veth (name, MAC, MTU); the host holds the tunnel, joined to
    // the veth's host end by tc redirect, both hosts on one VNI.
    let mut vnis = Vec::new();
    for (h, node, one_host, far) in [
        (east, "a", &one_a, "172.30.191.12"),
        (west, "b", &one_b, "172.30.191.11"),
    ] {
        let end = link_of(&s, h, "prt-two", node, "eth1");
        assert_eq!(end["linkinfo"]["info_kind"], "veth", "{end}");
        assert_eq!(end["address"], one_host["address"], "same MAC as one host");
        assert_eq!(end["mtu"], one_host["mtu"], "same MTU as one host");
        assert_eq!(end["mtu"], 9500);
        let links: Value =
            serde_json::from_str(&ok(s.sh(h, "ip -d -j link show"), "ip link")).unwrap();
        let tunnel = links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["linkinfo"]["info_kind"] == "vxlan")
            .unwrap_or_else(|| panic!("no tunnel in {h}: {links}"))
            .clone();
        let vx = tunnel["ifname"].as_str().unwrap();
        assert!(vx.starts_with("vxl-"), "{vx}");
        assert_eq!(tunnel["mtu"], 9500, "the tunnel carries the link's MTU");
        assert_eq!(tunnel["linkinfo"]["info_data"]["remote"], far);
        assert_eq!(tunnel["linkinfo"]["info_data"]["port"], 4789);
        assert!(tunnel.get("master").is_none(), "no bridge: {tunnel}");
        let tc = ok(s.sh(h, &format!("tc filter show dev {vx} ingress")), "tc");
        assert!(tc.contains("mirred") && tc.contains("vxs-"), "{h}: {tc}");
        vnis.push(tunnel["linkinfo"]["info_data"]["id"].clone());
    }
    assert_eq!(vnis[0], vnis[1], "both ends on one VNI");
    let addrs = ok(
        s.exec(east, "a", "ip -o addr show dev eth1"),
        "addresses of a:eth1",
    );
    assert!(
        addrs.contains("10.186.1.1/30") && addrs.contains("fd00:186:1::1/64"),
        "{addrs}"
    );

    // Across: IPv4, IPv6, and 8000-byte packets (don't-fragment set) over the 1500-byte
    // underlay: the host fragments the tunnel's packets, the node sees its 9500-byte link.
    for cmd in [
        "ping -c2 -W2 10.186.1.2",
        "ping -c2 -W2 fd00:186:1::2",
        "ping -c2 -W2 -M do -s 8000 10.186.1.2",
        "ping -c2 -W2 -s 8000 fd00:186:1::2",
    ] {
        let r = poll(Duration::from_secs(10), || {
            let out = s.exec(east, "a", cmd);
            if out.status.success() {
                Ok(())
            } else {
                Err(describe(&out))
            }
        });
        if let Err(e) = r {
            panic!("`{cmd}` from a (east) to b (west): {e}");
        }
    }

    // Per partition: inspect shows this host's node; exec on the other's says where it runs.
    let json = ok(
        s.labwire(east, &["inspect", "-t", &s.topo, "--format", "json"]),
        "inspect east",
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["prt-two"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["clab-prt-two-a"]);
    let out = s.exec(west, "a", "true");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("partition east"),
        "exec on a node of another partition names it: {}",
        describe(&out)
    );
    // The artifacts of each partition name the whole lab.
    for h in [east, west] {
        let inv = ok(
            s.sh(h, "cat /lab/clab-prt-two/ansible-inventory.yml"),
            "inventory",
        );
        assert!(
            inv.contains("clab-prt-two-a") && inv.contains("clab-prt-two-b"),
            "{h}: {inv}"
        );
    }

    for h in [east, west] {
        ok(s.destroy(h), "destroy");
        s.assert_nothing_left(h);
    }
}

/// The cldemo2 example, as lab `prt-c2`, with leaf01 and server01 on h1, leaf02 and server02 on
/// h2, server03 on h3; the hosts named by their container names (Docker's DNS resolves them).
fn cldemo2_split() -> Vec<(String, String)> {
    let src = repo_root().join("examples/cldemo2");
    let y = std::fs::read_to_string(src.join("cldemo2.clab.yml")).unwrap();
    let mut y = y
        .replace("\nname: cldemo2\n", "\nname: prt-c2\n")
        .replace("network: cldemo2-frr", "network: prt-c2")
        .replace("172.31.200.0/24", "172.30.187.0/24")
        .replace("fd00:c2::/64", "fd00:186:c2::/64")
        .replacen(
            "\ntopology:\n",
            "\npartitions:\n  h1: {address: prt-c2-h1}\n  h2: {address: prt-c2-h2}\n  h3: {address: prt-c2-h3}\ntopology:\n",
            1,
        );
    for (from, to) in [
        (
            "    leaf01:\n      group: leaves\n",
            "    leaf01:\n      group: leaves\n      partition: h1\n",
        ),
        (
            "    leaf02:\n      group: leaves\n",
            "    leaf02:\n      group: leaves\n      partition: h2\n",
        ),
        (
            "server01: {group: servers}",
            "server01: {group: servers, partition: h1}",
        ),
        (
            "server02: {group: servers}",
            "server02: {group: servers, partition: h2}",
        ),
        (
            "server03: {group: servers}",
            "server03: {group: servers, partition: h3}",
        ),
    ] {
        assert!(
            y.contains(from),
            "examples/cldemo2/cldemo2.clab.yml has no `{from}`"
        );
        y = y.replace(from, to);
    }
    let mut files = vec![("lab.clab.yml".to_string(), y)];
    for f in ["start.sh", "leaf01/frr.conf", "leaf02/frr.conf"] {
        files.push((f.into(), std::fs::read_to_string(src.join(f)).unwrap()));
    }
    files
}

fn sessions_established(s: &StandIns, host: &str, leaf: &str) -> Result<(), String> {
    let out = s.exec(host, leaf, "vtysh -c 'show bgp summary json'");
    common::open_nos::sessions_established_in(leaf, &out)
}

#[test]
fn partition_cldemo2_three_hosts_bgp_evpn() {
    ensure_image_for(true);
    let s = StandIns::start(
        "prt-c2",
        "172.30.192.0/25",
        &[
            ("prt-c2-h1", None),
            ("prt-c2-h2", None),
            ("prt-c2-h3", None),
        ],
        IMAGE,
        &cldemo2_split(),
        &[],
    );
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        let hs: Vec<_> = [
            ("prt-c2-h1", "h1"),
            ("prt-c2-h2", "h2"),
            ("prt-c2-h3", "h3"),
        ]
        .into_iter()
        .map(|(h, p)| {
            let s = &s;
            sc.spawn(move || (h, s.deploy(h, Some(p))))
        })
        .collect();
        for j in hs {
            let (h, out) = j.join().unwrap();
            assert!(out.status.success(), "deploy in {h}: {}", describe(&out));
        }
    });
    let deploy_secs = t0.elapsed().as_secs_f64();
    for (host, leaf) in [("prt-c2-h1", "leaf01"), ("prt-c2-h2", "leaf02")] {
        if let Err(e) = poll(Duration::from_secs(90), || {
            sessions_established(&s, host, leaf)
        }) {
            panic!("BGP sessions over the partition tunnels not Established within 90 s: {e}");
        }
    }
    let established_secs = t0.elapsed().as_secs_f64();
    let ping = |host: &str, node: &str, addr: &str| {
        let r = poll(Duration::from_secs(20), || {
            let out = s.exec(host, node, &format!("ping -c1 -W1 {addr}"));
            if out.status.success() {
                Ok(())
            } else {
                Err(describe(&out))
            }
        });
        if let Err(e) = r {
            panic!("{node} ({host}) cannot reach {addr}: {e}");
        }
    };
    // L3 across the fabric (server01 on h1 to the servers behind leaf02 on h2 and h3).
    ping("prt-c2-h1", "server01", "10.2.2.102");
    ping("prt-c2-h1", "server01", "10.2.3.103");
    ping("prt-c2-h2", "server02", "10.2.3.103");
    // The EVPN L2 VNI between server01 (via leaf02, h2) and server03 (via leaf01, h1): VXLAN
    // between the leaves' loopbacks, inside the partition tunnels.
    ping("prt-c2-h1", "server01", "10.1.100.103");
    ping("prt-c2-h3", "server03", "10.1.100.101");
    let mac = link_of(&s, "prt-c2-h3", "prt-c2", "server03", "eth1")["address"]
        .as_str()
        .unwrap()
        .to_string();
    let r = poll(Duration::from_secs(10), || {
        let out = s.exec(
            "prt-c2-h2",
            "leaf02",
            "vtysh -c 'show evpn mac vni 100 json'",
        );
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("no JSON ({e}): {}", describe(&out)))?;
        if v["macs"][&mac]["type"] == "remote" && v["macs"][&mac]["remoteVtep"] == "10.0.0.1" {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
    if let Err(e) = r {
        panic!("leaf02 did not learn server03's MAC {mac} over EVPN behind 10.0.0.1: {e}");
    }
    eprintln!(
        "cldemo2 over three partitions: deployed in {deploy_secs:.2} s, BGP+EVPN established {established_secs:.1} s after the deploys started"
    );
    for h in ["prt-c2-h1", "prt-c2-h2", "prt-c2-h3"] {
        ok(s.destroy(h), "destroy");
        s.assert_nothing_left(h);
    }
    // The machine itself was never touched.
    let netns = text(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!netns.contains("prt-c2"), "{netns}");
}

// ---------------------------------------------------------------------------------------------
// Kubernetes: rendered objects checked against the official schemas, and pods stood in for by
// containers of the pod image with what a kubelet would give them
// ---------------------------------------------------------------------------------------------

const VALIDATE_VENV: &str = "/var/cache/labwire-tests/k8s-validate-venv";

/// kubernetes-validate (PyPI), in its own virtualenv (scripts/test makes it; made here if not).
fn kubernetes_validate() -> PathBuf {
    let bin = Path::new(VALIDATE_VENV).join("bin/kubernetes-validate");
    if !bin.is_file() {
        let mut venv = Command::new("python3");
        venv.args(["-m", "venv", VALIDATE_VENV]);
        ok(
            run_timeout(venv, Duration::from_secs(120)),
            "python3 -m venv",
        );
        let mut pip = Command::new(Path::new(VALIDATE_VENV).join("bin/pip"));
        pip.args(["install", "-q", "kubernetes-validate"]);
        ok(
            run_timeout(pip, Duration::from_secs(600)),
            "pip install kubernetes-validate",
        );
    }
    bin
}

/// The cldemo2 example as lab `prt-k8s` (no partitions: a pod per node).
fn cldemo2_for_k8s(dir: &Path) -> PathBuf {
    let src = repo_root().join("examples/cldemo2");
    let y = std::fs::read_to_string(src.join("cldemo2.clab.yml"))
        .unwrap()
        .replace("\nname: cldemo2\n", "\nname: prt-k8s\n")
        .replace("network: cldemo2-frr", "network: prt-k8s")
        .replace("172.31.200.0/24", "172.30.188.0/24")
        .replace("fd00:c2::/64", "fd00:186:c8::/64");
    assert!(y.contains("name: prt-k8s"));
    for f in ["start.sh", "leaf01/frr.conf", "leaf02/frr.conf"] {
        let to = dir.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(src.join(f), &to).unwrap();
    }
    let topo = dir.join("prt-k8s.clab.yml");
    std::fs::write(&topo, y).unwrap();
    topo
}

/// Containers standing in for a lab's pods; removed (after their preStop hook) when dropped.
struct Pods {
    network: String,
    containers: Vec<(String, Value)>,
    root: PathBuf,
}

impl Pods {
    /// `docker exec` of an exec action's command.
    fn exec_action(&self, container: &str, action: &Value) -> Output {
        let mut c = Command::new("docker");
        c.args(["exec", container]);
        for a in action["command"].as_array().unwrap() {
            c.arg(a.as_str().unwrap());
        }
        c.stdin(std::process::Stdio::null());
        run_timeout(c, Duration::from_secs(120))
    }
}

impl Drop for Pods {
    fn drop(&mut self) {
        for (c, pod) in &self.containers {
            let pre = &pod["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"];
            self.exec_action(c, pre);
            docker_cmd(&["rm", "-f", c]);
        }
        docker_cmd(&["network", "rm", &self.network]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn k8s_render_validates_and_pod_image_stand_ins_bring_cldemo2_up() {
    require_root();
    ensure_image_for(true);
    let root = PathBuf::from(format!("/var/tmp/prt-k8s-{}", std::process::id()));
    let network = "prt-k8s";
    // Removes the containers, the network and `root`, whatever happens from here on.
    let mut pods = Pods {
        network: network.into(),
        containers: Vec::new(),
        root: root.clone(),
    };
    let src_dir = root.join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    let topo = cldemo2_for_k8s(&src_dir);
    let image = "prt-labwire-pod:test";

    // Render, and check every object against the official schemas (strict: no unknown field).
    let mut render = labwire();
    render
        .args(["k8s", "render", "--image", image, "-t"])
        .arg(&topo);
    let yaml = ok(run_timeout(render, Duration::from_secs(60)), "k8s render");
    let manifests = root.join("lab.yaml");
    std::fs::write(&manifests, &yaml).unwrap();
    let mut v = Command::new(kubernetes_validate());
    v.args(["--strict", "-k", "1.36.0", "--quiet"])
        .arg(&manifests);
    let out = run_timeout(v, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "kubernetes-validate: {}",
        describe(&out)
    );
    // The validator does fail on a wrong manifest (a check that cannot fail proves nothing).
    let bad = root.join("bad.yaml");
    std::fs::write(
        &bad,
        yaml.replace("\"restartPolicy\": \"Never\"", "\"restartPolicy\": 7"),
    )
    .unwrap();
    let mut v = Command::new(kubernetes_validate());
    v.args(["--strict", "-k", "1.36.0", "--quiet"]).arg(&bad);
    assert!(!run_timeout(v, Duration::from_secs(120)).status.success());

    let objects: Vec<Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "Pod").count(),
        5,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "Service").count(),
        5,
        "{kinds:?}"
    );
    let config = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();

    // The pod image, from the repository's Dockerfile.
    let ctx = root.join("image");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(repo_root().join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
    for b in ["labwire", "labwire-init"] {
        std::fs::copy(labwire_bin().parent().unwrap().join(b), ctx.join(b)).unwrap();
    }
    let mut build = Command::new("docker");
    build
        .args([
            "build",
            "-q",
            "--build-arg",
            &format!("BASE={IMAGE}"),
            "--build-arg",
            "BIN_DIR=.",
            "-t",
            image,
        ])
        .arg(&ctx);
    ok(
        run_timeout(build, Duration::from_secs(300)),
        "docker build of the pod image",
    );

    // One container per pod: the pod's image, command, capabilities, volumes (the ConfigMap
    // written as the kubelet projects it, emptyDirs as fresh directories, a memory one as tmpfs),
    // on one network where each answers to its Service's name.
    docker_cmd(&["network", "rm", network]);
    ok(
        docker_cmd(&[
            "network",
            "create",
            "--subnet",
            "172.30.192.128/25",
            network,
        ]),
        "network",
    );
    for pod in objects.iter().filter(|o| o["kind"] == "Pod") {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let cname = format!("prt-k8s-{name}");
        docker_cmd(&["rm", "-f", &cname]);
        let spec = &pod["spec"];
        let c = &spec["containers"][0];
        let sc = &c["securityContext"];
        assert_eq!(sc["privileged"], false);
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            cname.clone(),
            "--hostname".into(),
            spec["hostname"].as_str().unwrap().into(),
            "--network".into(),
            network.into(),
            "--network-alias".into(),
            name.into(),
        ];
        for cap in sc["capabilities"]["add"].as_array().unwrap() {
            args.extend(["--cap-add".into(), cap.as_str().unwrap().into()]);
        }
        assert_eq!(sc["seccompProfile"]["type"], "Unconfined");
        assert_eq!(sc["appArmorProfile"]["type"], "Unconfined");
        args.extend([
            "--security-opt".into(),
            "seccomp=unconfined".into(),
            "--security-opt".into(),
            "apparmor=unconfined".into(),
        ]);
        for m in c["volumeMounts"].as_array().unwrap() {
            let vname = m["name"].as_str().unwrap();
            let at = m["mountPath"].as_str().unwrap();
            let vol = spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == vname)
                .unwrap();
            let host = root.join("pods").join(name).join(vname);
            std::fs::create_dir_all(&host).unwrap();
            if let Some(items) = vol["configMap"]["items"].as_array() {
                for it in items {
                    let p = host.join(it["path"].as_str().unwrap());
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(
                        &p,
                        config["data"][it["key"].as_str().unwrap()]
                            .as_str()
                            .unwrap(),
                    )
                    .unwrap();
                }
            }
            if vol["emptyDir"]["medium"] == "Memory" {
                args.extend(["--tmpfs".into(), at.into()]);
                continue;
            }
            let ro = if m["readOnly"] == true { ":ro" } else { "" };
            args.extend(["-v".into(), format!("{}:{at}{ro}", host.display())]);
        }
        // Where a cluster's pod would pull the node image into its own store, the stand-in
        // shares the test's store.
        args.extend([
            "-e".into(),
            format!("LABWIRE_IMAGE_DIR={IMAGE_DIR}"),
            "-v".into(),
            format!("{IMAGE_DIR}:{IMAGE_DIR}"),
            c["image"].as_str().unwrap().into(),
        ]);
        args.extend(
            c["command"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string()),
        );
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(docker_cmd(&argv), &format!("docker run for pod {name}"));
        pods.containers.push((cname, pod.clone()));
    }

    // Readiness as the kubelet sees it: the probe command succeeds once the partition is up.
    let t0 = Instant::now();
    for (cname, pod) in &pods.containers {
        let probe = &pod["spec"]["containers"][0]["readinessProbe"]["exec"];
        let r = poll(Duration::from_secs(120), || {
            let out = pods.exec_action(cname, probe);
            if out.status.success() {
                Ok(())
            } else {
                let logs = docker_cmd(&["logs", "--tail", "20", cname]);
                Err(format!("{}\nlogs: {}", describe(&out), describe(&logs)))
            }
        });
        if let Err(e) = r {
            panic!("pod {cname} never ready: {e}");
        }
    }
    let ready_secs = t0.elapsed().as_secs_f64();
    let lw = |c: &str, node: &str, cmd: &str| {
        let mut x = Command::new("docker");
        x.args([
            "exec",
            c,
            "/usr/local/bin/labwire",
            "exec",
            "--name",
            "prt-k8s",
            "--node",
            node,
            "--cmd",
            cmd,
        ])
        .stdin(std::process::Stdio::null());
        run_timeout(x, Duration::from_secs(60))
    };
    for leaf in ["leaf01", "leaf02"] {
        let c = format!("prt-k8s-{leaf}");
        let r = poll(Duration::from_secs(90), || {
            let out = lw(&c, leaf, "vtysh -c 'show bgp summary json'");
            common::open_nos::sessions_established_in(leaf, &out)
        });
        if let Err(e) = r {
            panic!("BGP between the leaf pods not Established: {e}");
        }
    }
    let r = poll(Duration::from_secs(20), || {
        let out = lw("prt-k8s-server01", "server01", "ping -c1 -W1 10.1.100.103");
        if out.status.success() {
            Ok(())
        } else {
            Err(describe(&out))
        }
    });
    if let Err(e) = r {
        panic!("server01 pod cannot reach server03 pod over the EVPN VNI: {e}");
    }
    eprintln!("cldemo2 as 5 stand-in pods: all ready {ready_secs:.1} s after start");

    // The preStop hook destroys each pod's partition: nothing is left in the pod.
    for (cname, pod) in &pods.containers {
        let pre = &pod["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"];
        ok(pods.exec_action(cname, pre), &format!("preStop of {cname}"));
        // The kernel frees a deleted namespace's veths in the background: allow a moment.
        let r = poll(Duration::from_secs(10), || {
            let mut x = Command::new("docker");
            x.args([
                "exec",
                cname,
                "sh",
                "-c",
                "ip netns list; ip -o link show | grep -v ': \\(lo\\|eth0@[^:]*\\):' || true",
            ]);
            let left = ok(run_timeout(x, Duration::from_secs(30)), "leftovers");
            if left.trim().is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        });
        if let Err(e) = r {
            panic!("left in {cname} after preStop: {e}");
        }
    }
}
