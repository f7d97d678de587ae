//! End-to-end tests of labwire's topology features against the real kernel: typed links (host,
//! mgmt-net, bridge nodes, macvlan, vxlan, vxlan-stitch, dummy), node features (env, env-files,
//! binds, sysctls, hostname, /etc/hosts, private /tmp, network-mode, cmd), `exec` in the topology,
//! stages and healthchecks, `labwire exec` by label and as JSON, destroy (`--all`, `--name` without
//! the file) and `--reconfigure`. Each checks what a user would check.
//!
//! They run as root. Every test has its own lab name (`lwt-…`), its own management network, bridge
//! (`lwtm-…`) and subnet (10.22N.X.0/24, fd00:22N:X::/64; native.rs uses 10.20x/10.21x), its own
//! temp directory, and a drop guard that destroys the lab with `--cleanup`. Every host interface a
//! test names or creates starts with `lwt`; tests touch no host interface they did not create.
//!
//! Run `cargo build` (same profile and target directory) first: labwire-init must sit next to
//! the labwire binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A short per-run tag (hex pid) for host interface names, so a crashed earlier run never blocks.
fn tag() -> String {
    format!("{:x}", std::process::id())
}

/// A lab `name` (`lwt-…`) on its own management network `name`, bridge `lwtm-<name minus lwt->`,
/// 10.<n>.<x>.0/24 and fd00:<n>:<x>::/64; `body` is the YAML under `topology:` (indented by 2).
fn feature_lab(test: &str, name: &str, nodes: &[&str], n: u8, x: u8, body: &str) -> TestLab {
    feature_lab_env(test, name, nodes, n, x, body, &[])
}

fn feature_lab_env(
    test: &str,
    name: &str,
    nodes: &[&str],
    n: u8,
    x: u8,
    body: &str,
    env: &[(&str, &str)],
) -> TestLab {
    let bridge = mgmt_bridge(name);
    let yaml = format!(
        "name: {name}\n\
         mgmt: {{network: {name}, bridge: {bridge}, ipv4-subnet: 10.{n}.{x}.0/24, ipv6-subnet: \"fd00:{n}:{x}::/64\"}}\n\
         topology:\n{body}"
    );
    let file = format!("{name}.clab.yml");
    if env.is_empty() {
        let mut lab = TestLab::with_file(test, name, name, nodes, &file, &yaml);
        lab.bridge = bridge;
        lab
    } else {
        // Built by hand: the guard's first destroy must already see the environment.
        require_root();
        let dir = PathBuf::from(format!("/tmp/lwt-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the test directory");
        let path = dir.join(&file);
        std::fs::write(&path, &yaml).expect("write the topology");
        let lab = TestLab {
            name: name.into(),
            dir,
            file: path,
            bridge,
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        lab.destroy_quietly();
        lab
    }
}

fn mgmt_bridge(lab: &str) -> String {
    let b = format!("lwtm-{}", lab.trim_start_matches("lwt-"));
    assert!(b.len() <= 15, "bridge name {b} is too long");
    b
}

/// `ip -d -j link show dev NAME` in the host, or None when the host has no such interface.
fn host_link(name: &str) -> Option<Value> {
    if !host_link_names().contains(name) {
        return None;
    }
    let v = ip(&["-d", "-j", "link", "show", "dev", name]);
    if !v.status.success() {
        return None;
    }
    serde_json::from_slice::<Value>(&v.stdout)
        .ok()
        .map(|v| v[0].clone())
}

/// `ip -d -j link show dev IFACE` inside a node.
fn node_link(lab: &TestLab, node: &str, iface: &str) -> Value {
    let v = ip_json(&[
        "-n",
        &lab.netns(node),
        "-d",
        "-j",
        "link",
        "show",
        "dev",
        iface,
    ]);
    v[0].clone()
}

fn kind_of(l: &Value) -> &str {
    l["linkinfo"]["info_kind"].as_str().unwrap_or("")
}

fn mac_of(l: &Value) -> String {
    l["address"].as_str().unwrap_or("").to_lowercase()
}

/// The MAC topology-data.json gives the link end (node, interface); node may be `host`,
/// `mgmt-net`, `vxlan`, … for the far side of a single-endpoint link.
fn data_mac(data: &Value, node: &str, iface: &str) -> String {
    for l in data["links"]
        .as_array()
        .expect("topology-data.json has links")
    {
        for end in ["a", "z"] {
            let e = &l["endpoints"][end];
            if e["node"] == node && e["interface"] == iface {
                return e["mac"].as_str().unwrap_or("").to_lowercase();
            }
        }
    }
    panic!("topology-data.json has no link end {node}:{iface}: {data}")
}

/// Wait (the kernel frees veths of deleted namespaces asynchronously) until none of `names` is
/// a host interface.
fn assert_host_links_gone(names: &[&str], what: &str) {
    let r = poll(Duration::from_secs(8), || {
        let have = host_link_names();
        let left: Vec<&&str> = names.iter().filter(|n| have.contains(**n)).collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    if let Err(left) = r {
        panic!("{what}: still in the host: {left}");
    }
}

/// Deletes a host interface this test made (or that labwire made for it and left) when dropped.
struct DelLinkOnDrop(String);

impl Drop for DelLinkOnDrop {
    fn drop(&mut self) {
        if host_link_names().contains(&self.0) {
            let _ = ip(&["link", "del", "dev", &self.0]);
        }
    }
}

fn stderr_of(out: &Output) -> String {
    text(&out.stderr)
}

/// The node's init pid from `inspect --format json`.
fn inspect_pid(lab: &TestLab, node: &str) -> i64 {
    let j = lab.inspect_json();
    let rows = j[&lab.name]
        .as_array()
        .unwrap_or_else(|| panic!("inspect JSON has no key {}: {j}", lab.name));
    let row = rows
        .iter()
        .find(|r| r["name"] == lab.long_name(node))
        .unwrap_or_else(|| panic!("inspect JSON has no row {}: {j}", lab.long_name(node)));
    let pid = row["pid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no pid in {row}"));
    assert!(pid > 0, "pid of {node}: {row}");
    pid
}

/// A process's start time, in seconds since boot (comparable with /proc/uptime).
fn start_time_s(pid: i64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    let after = stat.rsplit_once(')').expect("stat has a comm").1;
    // Fields after the comm start at field 3 (state); starttime is field 22.
    let ticks: f64 = after
        .split_whitespace()
        .nth(22 - 3)
        .and_then(|s| s.parse().ok())
        .expect("starttime in /proc/PID/stat");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz
}

/// Asserts nothing of a lab that failed before touching anything exists.
fn assert_untouched(lab: &TestLab) {
    assert!(
        !lab.state_dir().exists(),
        "a state dir was created: {}",
        lab.state_dir().display()
    );
    assert!(
        !lab.lab_dir().exists(),
        "a lab dir was created: {}",
        lab.lab_dir().display()
    );
    for node in &lab.nodes {
        let ns = PathBuf::from("/run/netns").join(lab.netns(node));
        assert!(!ns.exists(), "{} exists", ns.display());
    }
    assert!(
        !host_link_names().contains(&lab.bridge),
        "the management bridge {} was created",
        lab.bridge
    );
    assert!(
        live_inits(&lab.name).is_empty(),
        "node processes were started: {:?}",
        live_inits(&lab.name)
    );
    assert!(
        hosts_block(&read_etc_hosts(), &lab.name).is_none(),
        "an /etc/hosts block was written"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Typed links: host, mgmt-net, bridge nodes
// ---------------------------------------------------------------------------------------------

#[test]
fn host_and_mgmt_net_links() {
    let host_if = format!("lwth{}", tag());
    let mgmt_if = format!("lwtg{}", tag());
    let _g1 = DelLinkOnDrop(host_if.clone());
    let _g2 = DelLinkOnDrop(mgmt_if.clone());
    let body = format!(
        "  nodes:\n    a: {{kind: linux}}\n\
         \x20 links:\n\
         \x20   - type: host\n      endpoint: {{node: a, interface: eth1}}\n      host-interface: {host_if}\n\
         \x20   - type: mgmt-net\n      endpoint: {{node: a, interface: eth2, mac: \"02:22:00:00:01:02\"}}\n      host-interface: {mgmt_if}\n"
    );
    let lab = feature_lab("hostlink", "lwt-hostlink", &["a"], 220, 1, &body);
    assert!(
        host_link(&host_if).is_none() && host_link(&mgmt_if).is_none(),
        "{host_if} or {mgmt_if} exists before the deploy"
    );
    lab.deploy();
    let data = lab.topology_data();

    // host link: the host side in the host namespace, with the topology's MAC; the node side in a.
    let h = host_link(&host_if).unwrap_or_else(|| panic!("host interface {host_if} missing"));
    assert_eq!(kind_of(&h), "veth", "{h}");
    assert_eq!(
        mac_of(&h),
        data_mac(&data, "host", &host_if),
        "{host_if}: {h}"
    );
    let a1 = node_link(&lab, "a", "eth1");
    assert_eq!(mac_of(&a1), data_mac(&data, "a", "eth1"), "a:eth1: {a1}");
    assert!(
        h["master"].is_null(),
        "a host link is not attached to anything: {h}"
    );

    // mgmt-net link: the host side is a port of the lab's management bridge.
    let m = host_link(&mgmt_if).unwrap_or_else(|| panic!("host interface {mgmt_if} missing"));
    assert_eq!(
        m["master"].as_str(),
        Some(lab.bridge.as_str()),
        "{mgmt_if} should be a port of {}: {m}",
        lab.bridge
    );
    assert_eq!(mac_of(&m), data_mac(&data, "mgmt-net", &mgmt_if), "{m}");
    let a2 = node_link(&lab, "a", "eth2");
    assert_eq!(
        mac_of(&a2),
        "02:22:00:00:01:02",
        "explicit MAC of a:eth2: {a2}"
    );

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[host_if.clone(), mgmt_if.clone()]);
}

/// Two nodes on bridge node `br` (ports `<br>a`/`<br>b` with the given names), addressed
/// 10.220.<net>.1/.2.
fn bridge_body(br: &str, pa: &str, pb: &str, net: u8) -> String {
    format!(
        "  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n    {br}: {{kind: bridge}}\n\
         \x20 links:\n\
         \x20   - endpoints: [\"a:eth1\", \"{br}:{pa}\"]\n      ipv4: [\"10.220.{net}.1/24\"]\n\
         \x20   - endpoints: [\"{br}:{pb}\", \"b:eth1\"]\n      ipv4: [\"\", \"10.220.{net}.2/24\"]\n"
    )
}

fn assert_bridge_ports(br: &str, ports: &[&str]) {
    let b = host_link(br).unwrap_or_else(|| panic!("bridge {br} missing in the host"));
    assert_eq!(kind_of(&b), "bridge", "{br}: {b}");
    for p in ports {
        let l = host_link(p).unwrap_or_else(|| panic!("bridge port {p} missing in the host"));
        assert_eq!(
            l["master"].as_str(),
            Some(br),
            "{p} should be a port of {br}: {l}"
        );
        assert_eq!(kind_of(&l), "veth", "{p}: {l}");
    }
}

#[test]
fn bridge_node_created_and_removed() {
    let br = "lwtbr1";
    let _g = DelLinkOnDrop(br.into());
    let _p1 = DelLinkOnDrop("lwtb1a".into());
    let _p2 = DelLinkOnDrop("lwtb1b".into());
    let lab = feature_lab(
        "brnew",
        "lwt-brnew",
        &["a", "b"],
        220,
        2,
        &bridge_body(br, "lwtb1a", "lwtb1b", 102),
    );
    assert!(host_link(br).is_none(), "{br} exists before the test");
    lab.deploy();
    assert_bridge_ports(br, &["lwtb1a", "lwtb1b"]);
    let data = lab.topology_data();
    let expected = expected_interfaces(&data);
    for node in ["a", "b"] {
        assert_interfaces_up(&lab, node, &expected[node]);
    }
    lab.assert_ping("a", "10.220.102.2");
    lab.assert_ping("b", "10.220.102.1");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&["lwtb1a".into(), "lwtb1b".into()]);
    assert_host_links_gone(&[br], "the bridge labwire created");
}

#[test]
fn bridge_node_existing_is_kept() {
    let br = "lwtbr3";
    let _p1 = DelLinkOnDrop("lwtb3a".into());
    let _p2 = DelLinkOnDrop("lwtb3b".into());
    // Dropped last: the test's own bridge goes whatever happens.
    let _g = DelLinkOnDrop(br.into());
    let lab = feature_lab(
        "brold",
        "lwt-brold",
        &["a", "b"],
        220,
        3,
        &bridge_body(br, "lwtb3a", "lwtb3b", 103),
    );
    if host_link(br).is_some() {
        // Left by a crashed run of this test: it is this test's own.
        let _ = ip(&["link", "del", "dev", br]);
    }
    let out = ip(&["link", "add", br, "type", "bridge"]);
    assert!(out.status.success(), "ip link add {br}: {}", describe(&out));
    let before = host_link(br).expect("the bridge just made");

    lab.deploy();
    let during = host_link(br).expect("the bridge");
    assert_eq!(
        during["ifindex"], before["ifindex"],
        "labwire should use the existing {br}, not make a new one"
    );
    assert_bridge_ports(br, &["lwtb3a", "lwtb3b"]);
    lab.assert_ping("a", "10.220.103.2");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&["lwtb3a".into(), "lwtb3b".into()]);
    let after = host_link(br)
        .unwrap_or_else(|| panic!("destroy removed {br}, which existed before the deploy"));
    assert_eq!(
        after["ifindex"], before["ifindex"],
        "{br} was replaced by another interface"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. macvlan, vxlan, vxlan-stitch, dummy
// ---------------------------------------------------------------------------------------------

/// Two nodes with macvlans on bridge node `br`: a in mode private (typed link), b in the default
/// bridge mode (brief `macvlan:` endpoint).
fn macvlan_body(br: &str) -> String {
    format!(
        "  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n    {br}: {{kind: bridge}}\n\
         \x20 links:\n\
         \x20   - type: macvlan\n      endpoint: {{node: a, interface: mv1}}\n      host-interface: {br}\n      mode: private\n\
         \x20   - endpoints: [\"b:mv1\", \"macvlan:{br}\"]\n"
    )
}

fn assert_macvlans(lab: &TestLab) {
    let data = lab.topology_data();
    for (node, mode) in [("a", "private"), ("b", "bridge")] {
        let l = node_link(lab, node, "mv1");
        assert_eq!(kind_of(&l), "macvlan", "{node}:mv1: {l}");
        assert_eq!(
            l["linkinfo"]["info_data"]["mode"].as_str(),
            Some(mode),
            "{node}:mv1 mode: {l}"
        );
        assert_eq!(mac_of(&l), data_mac(&data, node, "mv1"), "{node}:mv1: {l}");
    }
}

/// A macvlan whose parent is a bridge node the lab itself creates (labwire makes bridge nodes
/// that are missing, so the parent exists by the time links are made).
#[test]
fn macvlan_on_created_bridge_node() {
    let br = "lwtbr4";
    let _g = DelLinkOnDrop(br.into());
    let lab = feature_lab(
        "macvlan",
        "lwt-macvlan",
        &["a", "b"],
        221,
        1,
        &macvlan_body(br),
    );
    assert!(host_link(br).is_none(), "{br} exists before the test");
    lab.deploy();
    assert_macvlans(&lab);
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    assert_host_links_gone(&[br], "the bridge labwire created");
}

/// A macvlan whose parent is a bridge node that exists before the deploy (made by the test).
#[test]
fn macvlan_on_existing_bridge_node() {
    let br = "lwtbr5";
    let _g = DelLinkOnDrop(br.into());
    let lab = feature_lab(
        "macvlan2",
        "lwt-macvlan2",
        &["a", "b"],
        221,
        5,
        &macvlan_body(br),
    );
    if host_link(br).is_some() {
        let _ = ip(&["link", "del", "dev", br]);
    }
    let out = ip(&["link", "add", br, "type", "bridge"]);
    assert!(out.status.success(), "ip link add {br}: {}", describe(&out));
    lab.deploy();
    assert_macvlans(&lab);
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
    assert!(
        host_link(br).is_some(),
        "destroy removed the test's own {br}"
    );
}

#[test]
fn vxlan_link_in_node() {
    let body = "  nodes:\n    a: {kind: linux}\n\
        \x20 links:\n\
        \x20   - type: vxlan\n      endpoint: {node: a, interface: vx1}\n      remote: 192.0.2.221\n      vni: 22102\n\
        \x20   - type: vxlan\n      endpoint: {node: a, interface: vx2}\n      remote: 192.0.2.222\n      vni: 22103\n      udp-port: 4790\n";
    let lab = feature_lab("vxlan", "lwt-vxlan", &["a"], 221, 2, body);
    let links_before = host_link_names();
    lab.deploy();
    let data = lab.topology_data();
    for (iface, vni, port, remote) in [
        ("vx1", 22102, 14789, "192.0.2.221"),
        ("vx2", 22103, 4790, "192.0.2.222"),
    ] {
        let l = node_link(&lab, "a", iface);
        let d = &l["linkinfo"]["info_data"];
        assert_eq!(kind_of(&l), "vxlan", "a:{iface}: {l}");
        assert_eq!(d["id"], vni, "VNI of a:{iface}: {l}");
        assert_eq!(d["port"], port, "dst port of a:{iface}: {l}");
        assert_eq!(d["remote"], remote, "remote of a:{iface}: {l}");
        assert_eq!(mac_of(&l), data_mac(&data, "a", iface), "a:{iface}: {l}");
    }
    // Nothing of a plain vxlan link is in the host (only a's management veth end).
    let new: Vec<String> = host_link_names()
        .difference(&links_before)
        .filter(|n| n.contains("vx1") || n.contains("vx2"))
        .cloned()
        .collect();
    assert!(new.is_empty(), "vxlan links left host objects: {new:?}");
    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[]);
}

#[test]
fn vxlan_stitch_objects_made_and_removed() {
    let body = "  nodes:\n    a: {kind: linux}\n\
        \x20 links:\n\
        \x20   - type: vxlan-stitch\n      endpoint: {node: a, interface: lwts1}\n      remote: 192.0.2.223\n      vni: 22104\n";
    let lab = feature_lab("stitch", "lwt-stitch", &["a"], 221, 3, body);
    lab.deploy();
    let data = lab.topology_data();
    // The host end as topology-data.json names it, and the stitch objects beside it.
    let host_end = data["links"][0]["endpoints"]["z"]["interface"]
        .as_str()
        .unwrap_or_else(|| panic!("no host end in {data}"))
        .to_string();
    let (vx, br) = lab::wiring::stitch_names(&host_end);
    let _guards = [
        DelLinkOnDrop(host_end.clone()),
        DelLinkOnDrop(vx.clone()),
        DelLinkOnDrop(br.clone()),
    ];

    let a = node_link(&lab, "a", "lwts1");
    assert_eq!(kind_of(&a), "veth", "a:lwts1: {a}");
    assert_eq!(mac_of(&a), data_mac(&data, "a", "lwts1"));
    let b = host_link(&br).unwrap_or_else(|| panic!("stitch bridge {br} missing"));
    assert_eq!(kind_of(&b), "bridge", "{b}");
    let v = host_link(&vx).unwrap_or_else(|| panic!("stitch vxlan {vx} missing"));
    assert_eq!(kind_of(&v), "vxlan", "{v}");
    assert_eq!(v["linkinfo"]["info_data"]["id"], 22104, "{v}");
    assert_eq!(v["linkinfo"]["info_data"]["port"], 14789, "{v}");
    assert_eq!(v["linkinfo"]["info_data"]["remote"], "192.0.2.223", "{v}");
    assert_eq!(v["master"].as_str(), Some(br.as_str()), "{v}");
    let h = host_link(&host_end).unwrap_or_else(|| panic!("stitch veth end {host_end} missing"));
    assert_eq!(kind_of(&h), "veth", "{h}");
    assert_eq!(h["master"].as_str(), Some(br.as_str()), "{h}");

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&[host_end.clone(), vx.clone(), br.clone()]);
}

/// Does this kernel make dummy interfaces? (tried in a throwaway network namespace)
fn kernel_has_dummy() -> bool {
    let mut c = std::process::Command::new("unshare");
    c.args(["-n", "ip", "link", "add", "lwtdprobe", "type", "dummy"]);
    run_timeout(c, Duration::from_secs(10)).status.success()
}

#[test]
fn dummy_link_refused_before_anything_when_kernel_lacks_it() {
    let body = "  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n\
        \x20   - type: dummy\n      endpoint: {node: a, interface: dummy0}\n";
    let lab = feature_lab("dummy", "lwt-dummy", &["a", "b"], 221, 4, body);
    if kernel_has_dummy() {
        // Not this machine's kernel: then the dummy interface must simply work.
        lab.deploy();
        assert_eq!(kind_of(&node_link(&lab, "a", "dummy0")), "dummy");
        return;
    }
    let out = lab.try_deploy();
    let err = stderr_of(&out);
    assert!(
        !out.status.success(),
        "deploy with a dummy link on a kernel without dummy succeeded: {}",
        describe(&out)
    );
    assert!(
        err.contains("dummy") && err.contains("kernel"),
        "the error should name the missing `dummy` link type: {}",
        describe(&out)
    );
    assert!(
        !err.contains("removing what was made"),
        "the refusal should come before anything is made, not from a rollback: {}",
        describe(&out)
    );
    assert_untouched(&lab);
}

// ---------------------------------------------------------------------------------------------
// 3. Node features
// ---------------------------------------------------------------------------------------------

#[test]
fn node_env_binds_sysctls_hostname_hosts_tmp() {
    let bind_target = format!("/tmp/lwt-bind-{}/file", tag());
    let body = format!(
        "  nodes:\n\
         \x20   a:\n      kind: linux\n      env: {{FOO: foo-from-env}}\n      env-files: [a.env]\n\
         \x20     binds: [\"bindsrc.txt:{bind_target}:ro\"]\n\
         \x20     sysctls: {{net.ipv4.ip_forward: 1, net.ipv4.ip_default_ttl: 99}}\n\
         \x20   b: {{kind: linux}}\n\
         \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n"
    );
    let lab = feature_lab("nodefeat", "lwt-nodefeat", &["a", "b"], 222, 1, &body);
    std::fs::write(lab.dir.join("a.env"), "BAR=bar-from-file\n# comment\n").expect("env file");
    std::fs::write(lab.dir.join("bindsrc.txt"), "bound-content-lwt\n").expect("bind source");
    let sysctl = |k: &str| {
        std::fs::read_to_string(format!("/proc/sys/{}", k.replace('.', "/")))
            .expect("read a host sysctl")
            .trim()
            .to_string()
    };
    let host_fwd = sysctl("net.ipv4.ip_forward");
    let host_ttl = sysctl("net.ipv4.ip_default_ttl");
    let host_hosts = read_etc_hosts();
    lab.deploy();

    // env and env-files
    assert_eq!(lab.exec_ok("a", "echo $FOO").trim(), "foo-from-env");
    assert_eq!(lab.exec_ok("a", "echo $BAR").trim(), "bar-from-file");
    assert_eq!(
        lab.exec_ok("b", "echo \"[$FOO]\"").trim(),
        "[]",
        "b has no FOO"
    );

    // binds: visible (read-only) inside a, not on the host nor in b
    assert_eq!(
        lab.exec_ok("a", &format!("cat {bind_target}")).trim(),
        "bound-content-lwt"
    );
    let w = lab.exec("a", &format!("echo x > {bind_target}"));
    assert!(
        !w.status.success(),
        "the :ro bind is writable: {}",
        describe(&w)
    );
    assert!(
        !Path::new(&bind_target).exists(),
        "the bind target {bind_target} appeared on the host"
    );
    let b_sees = lab.exec("b", &format!("test -e {bind_target}"));
    assert!(!b_sees.status.success(), "b sees a's bind target");

    // sysctls inside a only
    assert_eq!(
        lab.exec_ok("a", "cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    assert_eq!(
        lab.exec_ok("a", "cat /proc/sys/net/ipv4/ip_default_ttl")
            .trim(),
        "99"
    );
    assert_eq!(
        lab.exec_ok("b", "cat /proc/sys/net/ipv4/ip_default_ttl")
            .trim(),
        "64",
        "b has no sysctls of its own"
    );
    assert_eq!(
        sysctl("net.ipv4.ip_forward"),
        host_fwd,
        "host ip_forward changed"
    );
    assert_eq!(
        sysctl("net.ipv4.ip_default_ttl"),
        host_ttl,
        "host ip_default_ttl changed"
    );

    // hostname and /etc/hosts
    for node in ["a", "b"] {
        assert_eq!(lab.exec_ok(node, "hostname").trim(), node);
        let hosts = lab.exec_ok(node, "cat /etc/hosts");
        assert!(
            hosts.contains(&lab.long_name(node)) && hosts.contains("localhost"),
            "{node}'s /etc/hosts should name the node:\n{hosts}"
        );
        let other = if node == "a" { "b" } else { "a" };
        assert!(
            !hosts.contains(&lab.long_name(other)),
            "{node}'s /etc/hosts is not its own:\n{hosts}"
        );
        assert!(
            !hosts.contains("###### CLAB-"),
            "{node} sees the host's /etc/hosts:\n{hosts}"
        );
    }
    assert_eq!(
        without_blocks(&read_etc_hosts()),
        without_blocks(&host_hosts),
        "the host's /etc/hosts changed outside the lab blocks"
    );

    // private /tmp
    let marker = format!("/tmp/lwt-private-{}", tag());
    lab.exec_ok("a", &format!("echo from-a > {marker}"));
    assert_eq!(lab.exec_ok("a", &format!("cat {marker}")).trim(), "from-a");
    let b_tmp = lab.exec("b", &format!("test -e {marker}"));
    assert!(!b_tmp.status.success(), "a's /tmp file is visible in b");
    assert!(
        !Path::new(&marker).exists(),
        "a's /tmp file {marker} is visible on the host"
    );
    // …and the host's /tmp is not visible inside (this test's directory is under it).
    let dir_in = lab.exec("a", &format!("test -e {}", lab.dir.display()));
    assert!(
        !dir_in.status.success(),
        "the host's /tmp is visible inside a"
    );
}

#[test]
fn network_mode_none_and_container() {
    let body = "  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n\
        \x20   n: {kind: linux, network-mode: none}\n\
        \x20   c: {kind: linux, network-mode: \"container:a\"}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.222.102.1/24\", \"10.222.102.2/24\"]\n";
    let lab = feature_lab("netmode", "lwt-netmode", &["a", "b"], 222, 2, body);
    lab.deploy();

    // none: only loopback
    let n_links = lab.exec_ok("n", "ls /sys/class/net");
    let names: BTreeSet<&str> = n_links.split_whitespace().collect();
    assert_eq!(
        names,
        ["lo"].into_iter().collect(),
        "network-mode none: interfaces of n"
    );

    // container:a — c sees a's interfaces, with a's MACs, and reaches b over a's link
    let a_links = if_states(&lab.links("a"));
    let c_out = lab.exec_ok("c", "ip -j link");
    let c_links: Vec<Value> =
        serde_json::from_str(&c_out).unwrap_or_else(|e| panic!("ip -j link in c ({e}): {c_out}"));
    let c_links = if_states(&c_links);
    for iface in ["eth0", "eth1"] {
        let a_mac = &a_links
            .get(iface)
            .unwrap_or_else(|| panic!("a has no {iface}"))
            .mac;
        let c_mac = &c_links
            .get(iface)
            .unwrap_or_else(|| panic!("c (network-mode container:a) has no {iface}"))
            .mac;
        assert_eq!(a_mac, c_mac, "{iface} of c is not a's");
    }
    lab.assert_ping("c", "10.222.102.2");
    assert_eq!(
        lab.exec_ok("c", "hostname").trim(),
        "c",
        "c keeps its own hostname"
    );
}

#[test]
fn cmd_runs_in_node_after_links_exist() {
    let body = "  nodes:\n\
        \x20   a: {kind: linux, cmd: \"ip -o link > /tmp/links.txt; sleep 1000\"}\n\
        \x20   b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = feature_lab("cmd", "lwt-cmd", &["a", "b"], 222, 3, body);
    lab.deploy();
    let ps = poll(Duration::from_secs(5), || {
        let ps = lab.exec_ok("a", "ps -e -o pid=,args=");
        if ps.contains("sleep 1000") {
            Ok(ps)
        } else {
            Err(ps)
        }
    })
    .unwrap_or_else(|ps| panic!("`sleep 1000` does not run in a:\n{ps}"));
    assert!(
        ps.lines().count() < 10,
        "a's ps shows more than its own processes (PID namespace not private?):\n{ps}"
    );
    let b_ps = lab.exec_ok("b", "ps -e -o args=");
    assert!(
        !b_ps.contains("sleep 1000"),
        "a's cmd is visible in b:\n{b_ps}"
    );
    let links = poll(Duration::from_secs(5), || {
        let l = lab.exec_ok("a", "cat /tmp/links.txt 2>/dev/null || true");
        if l.contains("eth0") {
            Ok(l)
        } else {
            Err(l)
        }
    })
    .unwrap_or_else(|l| panic!("a's cmd wrote no link list:\n{l}"));
    // `ip -o link` lines: "3: eth1@if7: <…> …"
    let names: BTreeSet<&str> = links
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|n| n.trim_end_matches(':').split('@').next().unwrap_or(n))
        .collect();
    for iface in ["eth0", "eth1"] {
        assert!(
            names.contains(iface),
            "{iface} did not exist when a's cmd started:\n{links}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. exec in the topology
// ---------------------------------------------------------------------------------------------

#[test]
fn topology_exec_output_and_failure() {
    let body = "  nodes:\n\
        \x20   a:\n      kind: linux\n      exec:\n\
        \x20       - \"echo lwt-hello-$$CLAB_NODE_NAME\"\n\
        \x20       - \"sh -c 'echo lwt-to-stderr >&2; exit 3'\"\n\
        \x20       - \"echo lwt-after-failure\"\n\
        \x20   b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = feature_lab("exec", "lwt-exec", &["a", "b"], 223, 1, body);
    let out = lab.deploy();
    let err = stderr_of(&out);
    let lines: Vec<&str> = err.lines().collect();
    let at = |needle: &str| -> usize {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("deploy's stderr has no `{needle}`:\n{err}"))
    };
    let first = at("exec on a: echo lwt-hello-$CLAB_NODE_NAME");
    assert!(
        lines
            .get(first + 1)
            .is_some_and(|l| l.trim() == "lwt-hello-a"),
        "the output of the first exec should follow it:\n{err}"
    );
    let failed = at("exec on a: sh -c 'echo lwt-to-stderr >&2; exit 3'");
    assert!(
        lines[failed].contains('3') && lines[failed].contains("exit"),
        "the failing exec should be reported with its exit code 3: `{}`\n{err}",
        lines[failed]
    );
    assert!(
        lines
            .get(failed + 1)
            .is_some_and(|l| l.trim() == "lwt-to-stderr"),
        "the failing exec's stderr should follow it:\n{err}"
    );
    assert!(
        err.contains("fail"),
        "a failed exec should be reported as failed:\n{err}"
    );
    let after = at("exec on a: echo lwt-after-failure");
    assert!(
        after > failed && lines.get(after + 1).map(|l| l.trim()) == Some("lwt-after-failure"),
        "the exec after the failing one should still run:\n{err}"
    );
    // The lab is up.
    let j = lab.inspect_json();
    for r in j[&lab.name].as_array().expect("rows") {
        assert_eq!(r["state"], "running", "{r}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Stages and healthchecks
// ---------------------------------------------------------------------------------------------

#[test]
fn stages_wait_for_healthy_and_host_exec() {
    let dir = PathBuf::from(format!("/tmp/lwt-stages-{}", std::process::id()));
    let host_file = dir.join("host-on-exit");
    let named_file = dir.join("named-on-create-exit");
    let body = format!(
        "  nodes:\n\
         \x20   a:\n      kind: linux\n\
         \x20     cmd: \"sleep 1; cat /proc/uptime > /tmp/ready; sleep 1000\"\n\
         \x20     healthcheck: {{test: [CMD-SHELL, \"test -e /tmp/ready\"], interval: 1, retries: 10}}\n\
         \x20   b:\n      kind: linux\n      stages:\n\
         \x20       create:\n          wait-for: [{{node: a, stage: healthy}}]\n          exec:\n\
         \x20           - {{command: \"ip netns exec $$CLAB_NODE_LONGNAME true && echo named > {}\", target: host, phase: on-exit}}\n\
         \x20       configure:\n          exec:\n\
         \x20           - {{command: \"echo $$CLAB_NODE_NAME > {}\", target: host, phase: on-exit}}\n\
         \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n",
        named_file.display(),
        host_file.display()
    );
    let lab = feature_lab("stages", "lwt-stages", &["a", "b"], 224, 1, &body);
    assert_eq!(lab.dir, dir);
    let out = lab.deploy();

    let ready = lab.exec_ok("a", "cat /tmp/ready");
    let ready_at: f64 = ready
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a's /tmp/ready holds no uptime: {ready:?}"));
    let a_start = start_time_s(inspect_pid(&lab, "a"));
    let b_start = start_time_s(inspect_pid(&lab, "b"));
    assert!(
        b_start + 0.011 >= ready_at,
        "b was created at {b_start:.2} s, before a became healthy (ready at {ready_at:.2} s; a started at {a_start:.2} s)"
    );
    assert!(
        a_start < b_start,
        "a ({a_start}) should start before b ({b_start})"
    );

    // The on-exit host command ran on the host (the node's /tmp is private, so the file would not
    // be here had it run inside b), for node b.
    let written = std::fs::read_to_string(&host_file).unwrap_or_else(|e| {
        panic!(
            "the host exec did not write {} ({e}): {}",
            host_file.display(),
            describe(&out)
        )
    });
    assert_eq!(written.trim(), "b", "CLAB_NODE_NAME of the host exec");
    // A host hook on leaving `create` finds the node's namespace under its name already.
    let named = std::fs::read_to_string(&named_file).unwrap_or_default();
    assert_eq!(
        named.trim(),
        "named",
        "ip netns exec in a create on-exit hook"
    );
    lab.assert_ping(
        "b",
        &lab.eth0_addrs("a").0.expect("a has a management address"),
    );
}

#[test]
fn unhealthy_node_fails_deploy_and_rolls_back() {
    let body = "  nodes:\n\
        \x20   a: {kind: linux}\n\
        \x20   sick:\n      kind: linux\n      healthcheck: {test: [CMD-SHELL, \"exit 1\"], interval: 1, retries: 2}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"sick:eth1\"]\n";
    let lab = feature_lab("unhealthy", "lwt-unhealthy", &["a", "sick"], 224, 3, body);
    let out = lab.try_deploy();
    let err = stderr_of(&out);
    assert!(
        !out.status.success(),
        "deploy with a failing healthcheck succeeded: {}",
        describe(&out)
    );
    assert!(
        err.contains("sick") && err.contains("unhealthy"),
        "the error should name the unhealthy node: {}",
        describe(&out)
    );
    lab.assert_nothing_left(&[]);
    assert!(
        !lab.lab_dir().exists(),
        "the failed deploy kept {}",
        lab.lab_dir().display()
    );
    assert!(
        hosts_block(&read_etc_hosts(), &lab.name).is_none(),
        "an /etc/hosts block is left"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. labwire exec: --label, --format json, exit codes
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_by_label_json_and_exit_code() {
    let body = "  nodes:\n\
        \x20   a: {kind: linux, labels: {role: x}}\n\
        \x20   b: {kind: linux, labels: {role: x}}\n\
        \x20   c: {kind: linux, labels: {role: y}}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = feature_lab("execcli", "lwt-execcli", &["a", "b", "c"], 225, 1, body);
    lab.deploy();
    let exec = |args: &[&str]| -> Output {
        let mut c = lab.cmd();
        c.args(["exec", "--name", &lab.name]).args(args);
        run_timeout(c, Duration::from_secs(60))
    };

    // Plain, by label: a and b, not c.
    let out = exec(&["--label", "role=x", "--cmd", "hostname"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let got: BTreeSet<&str> = stdout.lines().map(str::trim).collect();
    for want in ["a", "b"] {
        assert!(got.contains(want), "hostname {want} missing:\n{stdout}");
    }
    assert!(
        !got.contains("c"),
        "c has role=y but ran the command:\n{stdout}"
    );

    // JSON: containerlab's shape.
    let out = exec(&[
        "--label",
        "role=x",
        "--format",
        "json",
        "--cmd",
        "echo out-$(hostname); echo err >&2",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "exec --format json printed no JSON ({e}): {}",
            describe(&out)
        )
    });
    let keys: BTreeSet<&str> = j
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {j}"))
        .keys()
        .map(String::as_str)
        .collect();
    let want: BTreeSet<String> = ["a", "b"].iter().map(|n| lab.long_name(n)).collect();
    assert_eq!(
        keys,
        want.iter().map(String::as_str).collect(),
        "keys of {j}"
    );
    for node in ["a", "b"] {
        let runs = j[lab.long_name(node)]
            .as_array()
            .unwrap_or_else(|| panic!("{node}: not a list: {j}"));
        assert_eq!(runs.len(), 1, "{j}");
        let r = &runs[0];
        assert_eq!(r["return-code"], 0, "{r}");
        assert_eq!(r["stdout"], format!("out-{node}\n"), "{r}");
        assert_eq!(r["stderr"], "err\n", "{r}");
        let cmd = r["cmd"].as_array().unwrap_or_else(|| panic!("cmd: {r}"));
        assert_eq!(
            cmd.last().and_then(Value::as_str),
            Some("echo out-$(hostname); echo err >&2"),
            "{r}"
        );
    }

    // Exit codes propagate, plain and JSON.
    let out = exec(&["--node", "c", "--cmd", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let out = exec(&[
        "--label",
        "role=x",
        "--format",
        "json",
        "--cmd",
        "[ $(hostname) = a ] && exit 5; exit 0",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j[lab.long_name("a")][0]["return-code"], 5, "{j}");
    assert_eq!(j[lab.long_name("b")][0]["return-code"], 0, "{j}");

    // A label nobody has is an error.
    let out = exec(&["--label", "role=z", "--cmd", "true"]);
    assert!(!out.status.success(), "{}", describe(&out));
}

// ---------------------------------------------------------------------------------------------
// 7. destroy --all; destroy --name without the topology file
// ---------------------------------------------------------------------------------------------

/// Removes a directory when dropped.
struct RemoveDirOnDrop(PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn destroy_all_removes_every_lab() {
    // `destroy --all` destroys every lab labwire knows: this test keeps its labs in a state
    // directory of its own so the labs of tests running alongside are not touched.
    let state = PathBuf::from(format!("/tmp/lwt-dall-state-{}", std::process::id()));
    let _state = RemoveDirOnDrop(state.clone());
    let state_s = state.display().to_string();
    let env = [("LABWIRE_STATE_DIR", state_s.as_str())];
    let body = "  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let one = feature_lab_env("dall", "lwt-dall1", &["a", "b"], 226, 1, body, &env);
    let two = feature_lab_env("dall", "lwt-dall2", &["a", "b"], 226, 2, body, &env);
    one.deploy();
    two.deploy();
    let recorded: Vec<Vec<String>> = [&one, &two]
        .iter()
        .map(|l| l.recorded_host_objects())
        .collect();

    let mut c = one.cmd();
    c.args(["destroy", "--all", "--cleanup"]);
    let out = run_ok(c);
    let err = stderr_of(&out);
    for (l, rec) in [&one, &two].into_iter().zip(&recorded) {
        assert!(
            err.contains(&l.name),
            "destroy --all does not mention {}:\n{err}",
            l.name
        );
        l.assert_nothing_left(rec);
        assert!(!l.lab_dir().exists(), "{} is left", l.lab_dir().display());
    }
    let mut c = one.cmd();
    c.args(["destroy", "--all"]);
    let out = run_ok(c);
    assert!(
        stderr_of(&out).contains("no labs"),
        "a second destroy --all: {}",
        describe(&out)
    );
}

#[test]
fn destroy_by_name_after_topology_deleted() {
    let body = "  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = feature_lab("dname", "lwt-dname", &["a", "b"], 226, 3, body);
    lab.deploy();
    let recorded = lab.recorded_host_objects();
    std::fs::remove_file(&lab.file).expect("delete the topology file");
    let out = lab.destroy(true);
    assert!(
        out.status.success(),
        "destroy --name without the file: {}",
        describe(&out)
    );
    lab.assert_nothing_left(&recorded);
    assert!(
        !lab.lab_dir().exists(),
        "destroy --cleanup left {}",
        lab.lab_dir().display()
    );
    // Nothing is recorded under that name any more: as inspect, destroy says so and fails.
    let out = lab.destroy(true);
    assert!(!out.status.success(), "second destroy: {}", describe(&out));
    assert!(
        text(&out.stderr).contains("lab lwt-dname is not deployed"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 8. deploy of a deployed lab; --reconfigure
// ---------------------------------------------------------------------------------------------

#[test]
fn redeploy_of_a_running_lab_converges_and_reconfigure_starts_afresh() {
    let body = "  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.227.101.1/24\", \"10.227.101.2/24\"]\n";
    let lab = feature_lab("reconf", "lwt-reconf", &["a", "b"], 227, 1, body);
    lab.deploy();
    let pids: BTreeMap<&str, i64> = ["a", "b"]
        .into_iter()
        .map(|n| (n, inspect_pid(&lab, n)))
        .collect();

    // A second deploy of the same file converges: nothing to change, nothing restarted.
    lab.deploy();
    // The running lab is untouched.
    for (n, pid) in &pids {
        assert_eq!(inspect_pid(&lab, n), *pid, "node {n} was restarted");
    }
    lab.assert_ping("a", "10.227.101.2");

    let mut c = lab.deploy_cmd();
    c.arg("--reconfigure");
    run_ok(c);
    for (n, pid) in &pids {
        let new = inspect_pid(&lab, n);
        assert_ne!(new, *pid, "node {n} was not redeployed by --reconfigure");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || proc_state(&pid.to_string()) == Some('Z'),
            "the old init {pid} of {n} still runs"
        );
    }
    lab.assert_ping("a", "10.227.101.2");
    let j = lab.inspect_json();
    assert_eq!(j[&lab.name].as_array().map(Vec::len), Some(2), "{j}");
}
