//! End-to-end tests of the native runtime against the real kernel: each test deploys a real lab
//! with the `labwire` binary and checks what a user would check — `ip -n clab-<lab>-<node> -j link`,
//! a ping across a link, the JSON from `inspect`, the artifacts, and that nothing is left after
//! `destroy`.
//!
//! They run as root (a test that is not root fails, it does not skip). Every test has its own lab
//! name (prefix `lwt`), its own temp directory (`/tmp/lwt-<test>-<pid>/`) and its own management
//! network and subnet (10.2NN.0.0/24, fd00:2NN::/64), so they run in parallel. A drop guard runs
//! `labwire destroy --name <lab> --cleanup` whatever happens. They touch no host address or
//! interface they did not create.
//!
//! labwire-init (a binary of the `runtime` crate) must be built next to `labwire`: run
//! `cargo build` (same profile and target directory) before `cargo test`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
/// Two nodes linked a:eth1 — b:eth1 with 10.201.1.1/.2, for [`LabBuilder::topology`].
const TWO_NODES: &str = r#"
    nodes:
      a: {kind: linux}
      b: {kind: linux}
    links:
      - endpoints: ["a:eth1", "b:eth1"]
        ipv4: ["10.201.1.1/24", "10.201.1.2/24"]
"#;

// ---------------------------------------------------------------------------------------------
// 1. Ping across a link and across the management network; interfaces as topology-data.json says
// ---------------------------------------------------------------------------------------------

#[test]
fn two_nodes_ping_and_interfaces_match_topology_data() {
    let lab = LabBuilder::new().topology(TWO_NODES).build();
    lab.deploy();

    lab.assert_ping("a", "10.201.1.2");
    lab.assert_ping("b", "10.201.1.1");

    let (b_mgmt, _) = lab.eth0_addrs("b");
    let b_mgmt = b_mgmt.expect("node b has an IPv4 address on eth0");
    assert!(
        b_mgmt.starts_with(&format!("{}.", lab.mgmt.v4)),
        "node b's management address {b_mgmt} is outside {}",
        lab.mgmt.v4_subnet
    );
    lab.assert_ping("a", &b_mgmt);

    let data = lab.topology_data();
    let expected = expected_interfaces(&data);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        ["a", "b"],
        "nodes in topology-data.json"
    );
    for (node, ifaces) in &expected {
        let names: Vec<&str> = ifaces.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["eth0", "eth1"],
            "interfaces of {node} in topology-data.json"
        );
        assert_interfaces_up(&lab, node, ifaces);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. cldemo2-mini: every link end present by name and up
// ---------------------------------------------------------------------------------------------

/// Used when examples/cldemo2-mini.clab.yml is absent.
const CLDEMO2_MINI: &str = r#"name: cldemo2-mini
mgmt:
  network: cldemo2
  ipv4-subnet: 172.31.100.0/24
topology:
  kinds:
    linux:
      sysctls:
        net.ipv4.ip_forward: "1"
  nodes:
    leaf01: {kind: linux}
    leaf02: {kind: linux}
    server01: {kind: linux}
    server02: {kind: linux}
    server03: {kind: linux}
  links:
    - endpoints: ["leaf01:swp1", "server01:eth1"]
      ipv4: ["10.1.10.1/24", "10.1.10.101/24"]
    - endpoints: ["leaf01:swp2", "server02:eth1"]
    - endpoints: ["leaf01:swp3", "server03:eth1"]
    - endpoints: ["leaf02:swp1", "server01:eth2"]
    - endpoints: ["leaf02:swp2", "server02:eth2"]
    - endpoints: ["leaf02:swp3", "server03:eth2"]
    - endpoints: ["leaf01:swp49", "leaf02:swp49"]
    - endpoints: ["leaf01:swp50", "leaf02:swp50"]
"#;

/// The example topology with this test's lab name and management network.
fn cldemo2_with(name: &str, mgmt: &str) -> String {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cldemo2-mini.clab.yml");
    let src = std::fs::read_to_string(&example).unwrap_or_else(|_| CLDEMO2_MINI.to_string());
    let mut out = String::new();
    let mut in_mgmt = false;
    for line in src.lines() {
        let top_level = !line.starts_with([' ', '\t', '#']) && !line.is_empty();
        if top_level {
            in_mgmt = false;
        }
        if line.starts_with("name:") {
            out.push_str(&format!("name: {name}\n"));
        } else if line.starts_with("mgmt:") {
            in_mgmt = true;
            out.push_str(mgmt);
            out.push('\n');
        } else if !in_mgmt {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn cldemo2_mini_all_link_ends_up() {
    let yaml = cldemo2_with(
        "lwt-cld",
        "mgmt: {network: lwt-cld, ipv4-subnet: 10.202.0.0/24, ipv6-subnet: fd00:202::/64}",
    );
    let nodes = ["leaf01", "leaf02", "server01", "server02", "server03"];
    let lab = TestLab::new("cld", "lwt-cld", "lwt-cld", &nodes, &yaml);
    lab.deploy();

    let mut expected: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for leaf in ["leaf01", "leaf02"] {
        expected.insert(leaf, vec!["swp1", "swp2", "swp3", "swp49", "swp50"]);
    }
    for server in ["server01", "server02", "server03"] {
        expected.insert(server, vec!["eth1", "eth2"]);
    }
    let ends: usize = expected.values().map(Vec::len).sum();
    assert_eq!(ends, 16);

    let data = lab.topology_data();
    assert_eq!(
        data["clab"]["config"]["mgmt"]["network"], "lwt-cld",
        "the example's management network was not replaced by the test's own"
    );
    let macs = expected_interfaces(&data);
    for (node, ifaces) in &expected {
        let want: BTreeMap<String, String> = ifaces
            .iter()
            .map(|i| {
                let mac = macs
                    .get(*node)
                    .and_then(|m| m.get(*i))
                    .unwrap_or_else(|| panic!("topology-data.json has no link end {node}:{i}"));
                (i.to_string(), mac.clone())
            })
            .collect();
        assert_interfaces_up(&lab, node, &want);
    }
    // The one addressed server link carries traffic.
    lab.assert_ping("server01", "10.1.10.1");
}

// ---------------------------------------------------------------------------------------------
// 3. MTU
// ---------------------------------------------------------------------------------------------

#[test]
fn mtu_default_override_and_mgmt() {
    let lab = LabBuilder::new()
        .mgmt("mtu: 1450")
        .topology(
            r#"
            nodes:
              a: {kind: linux}
              b: {kind: linux}
            links:
              - endpoints: ["a:eth1", "b:eth1"]
              - endpoints: ["a:eth2", "b:eth2"]
                mtu: 1500
              - type: veth
                mtu: 1500
                endpoints:
                  - {node: a, interface: eth3}
                  - {node: b, interface: eth3}
            "#,
        )
        .build();
    lab.deploy();
    for node in ["a", "b"] {
        let s = if_states(&lab.links(node));
        let mtu = |i: &str| {
            s.get(i)
                .unwrap_or_else(|| panic!("node {node} has no {i}"))
                .mtu
        };
        assert_eq!(mtu("eth1"), 9500, "node {node} eth1: default data link MTU");
        assert_eq!(
            mtu("eth2"),
            1500,
            "node {node} eth2: brief link with mtu: 1500"
        );
        assert_eq!(
            mtu("eth3"),
            1500,
            "node {node} eth3: veth link with mtu: 1500"
        );
        assert_eq!(mtu("eth0"), 1450, "node {node} eth0: mgmt mtu 1450");
    }
    // A full-size frame crosses the 9500 link unfragmented, and not the 1500 one.
    let big = "ping -c1 -W2 -M do -s 9472";
    let yaml_addr = lab.exec(
        "a",
        "ip addr add 10.203.1.1/24 dev eth1 && ip addr add 10.203.2.1/24 dev eth2",
    );
    assert!(
        yaml_addr.status.success(),
        "address a: {}",
        describe(&yaml_addr)
    );
    let b_addr = lab.exec(
        "b",
        "ip addr add 10.203.1.2/24 dev eth1 && ip addr add 10.203.2.2/24 dev eth2",
    );
    assert!(b_addr.status.success(), "address b: {}", describe(&b_addr));
    let out = lab.exec("a", &format!("{big} 10.203.1.2"));
    assert!(
        out.status.success(),
        "9500-byte ping over eth1: {}",
        describe(&out)
    );
    let out = lab.exec("a", &format!("{big} 10.203.2.2"));
    assert!(
        !out.status.success(),
        "a 9500-byte ping must not pass the 1500 link: {}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 4. MACs stay the same across destroy + deploy
// ---------------------------------------------------------------------------------------------

#[test]
fn macs_identical_after_redeploy() {
    let lab = LabBuilder::new().topology(TWO_NODES).build();
    let macs = |lab: &TestLab| -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        for node in ["a", "b"] {
            for (i, s) in if_states(&lab.links(node)) {
                if i != "lo" {
                    m.insert(format!("{node}:{i}"), s.mac);
                }
            }
        }
        m
    };
    lab.deploy();
    let first = macs(&lab);
    assert_eq!(first.len(), 4, "a:eth0 a:eth1 b:eth0 b:eth1, got {first:?}");
    let out = lab.destroy(false);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.deploy();
    assert_eq!(macs(&lab), first, "MACs changed across destroy + deploy");
}

// ---------------------------------------------------------------------------------------------
// 5. inspect --format json
// ---------------------------------------------------------------------------------------------

#[test]
fn inspect_json_lists_running_nodes() {
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              r1: {kind: linux}
              r2: {kind: linux}
              r3: {kind: linux}
            links:
              - endpoints: ["r1:eth1", "r2:eth1"]
              - endpoints: ["r2:eth2", "r3:eth1"]
            "#,
        )
        .build();
    let name = lab.name.as_str();
    lab.deploy();
    let j = lab.inspect_json();
    let rows = j[name]
        .as_array()
        .unwrap_or_else(|| panic!("inspect JSON has no key {name}: {j}"));
    let names: BTreeSet<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    let long_names = ["r1", "r2", "r3"].map(|n| lab.long_name(n));
    assert_eq!(
        names,
        long_names.iter().map(String::as_str).collect(),
        "inspect rows: {j}"
    );
    for r in rows {
        for f in [
            "lab_name",
            "name",
            "container_id",
            "image",
            "kind",
            "state",
            "ipv4_address",
            "ipv6_address",
        ] {
            assert!(r[f].is_string(), "field {f} missing or not a string in {r}");
        }
        let name = r["name"].as_str().expect("checked");
        let node = name.trim_start_matches(&format!("clab-{}-", lab.name));
        assert_eq!(r["lab_name"], lab.name.as_str(), "{r}");
        assert_eq!(r["kind"], "linux", "{r}");
        assert_eq!(r["state"], "running", "{r}");
        assert!(
            !r["container_id"].as_str().expect("checked").is_empty(),
            "empty container_id: {r}"
        );
        let (v4, v6) = lab.eth0_addrs(node);
        let v4 = v4.unwrap_or_else(|| panic!("{name} has no IPv4 on eth0"));
        let v6 = v6.unwrap_or_else(|| panic!("{name} has no global IPv6 on eth0"));
        assert_eq!(
            r["ipv4_address"],
            format!("{v4}/24"),
            "{name}: inspect vs eth0"
        );
        assert_eq!(
            r["ipv6_address"],
            format!("{v6}/64"),
            "{name}: inspect vs eth0"
        );
    }
    // --all and -t FILE show the same lab.
    let mut c = labwire();
    c.args(["inspect", "--all", "--format", "json"]);
    let all: Value = serde_json::from_slice(&run_ok(c).stdout).expect("inspect --all JSON");
    assert_eq!(timeless(&all[name]), timeless(&j[name]), "inspect --all");
    let mut c = labwire();
    c.args(["inspect", "--format", "json", "-t"]).arg(&lab.file);
    let by_file: Value = serde_json::from_slice(&run_ok(c).stdout).expect("inspect -t JSON");
    assert_eq!(
        timeless(&by_file[name]),
        timeless(&j[name]),
        "inspect -t FILE"
    );
}

/// Inspect rows without their `status` ("Up 3 seconds"), which two inspects a second apart
/// give differently.
fn timeless(rows: &Value) -> Value {
    let mut rows = rows.clone();
    for r in rows.as_array_mut().into_iter().flatten() {
        if let Some(r) = r.as_object_mut() {
            r.remove("status");
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------------
// 6. ansible-inventory.yml and topology-data.json
// ---------------------------------------------------------------------------------------------

/// (group, host long name, ansible_host) from the inventory's `all.children.<g>.hosts.<h>` tree.
fn inventory_hosts(text: &str) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = Vec::new();
    let mut group = String::new();
    let mut in_hosts = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        match indent {
            4 => {
                group = t.trim_end_matches(':').to_string();
                in_hosts = false;
            }
            6 => in_hosts = t == "hosts:",
            8 if in_hosts => out.push((
                group.clone(),
                t.trim_end_matches(':').trim_matches('"').to_string(),
                None,
            )),
            10 if in_hosts => {
                if let (Some(v), Some(last)) = (t.strip_prefix("ansible_host:"), out.last_mut()) {
                    last.2 = Some(v.trim().trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn ansible_inventory_and_topology_data() {
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              s1: {kind: linux}
              s2: {kind: linux}
              s3: {kind: linux, mgmt-ipv4: {mgmt4}.77}
            links:
              - endpoints: ["s1:eth1", "s2:eth1"]
            "#,
        )
        .build();
    lab.deploy();
    let inv_path = lab.lab_dir().join("ansible-inventory.yml");
    let inv = std::fs::read_to_string(&inv_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", inv_path.display()));
    assert!(
        inv.starts_with("all:\n"),
        "inventory does not start with `all:`:\n{inv}"
    );
    let hosts = inventory_hosts(&inv);
    for node in ["s1", "s2", "s3"] {
        let long = lab.long_name(node);
        let (v4, _) = lab.eth0_addrs(node);
        let v4 = v4.unwrap_or_else(|| panic!("{long} has no IPv4 on eth0"));
        let entry = hosts
            .iter()
            .find(|(_, h, _)| *h == long)
            .unwrap_or_else(|| panic!("{long} is not in the inventory:\n{inv}"));
        assert_eq!(
            entry.0, "linux",
            "{long} should be under all.children.linux.hosts:\n{inv}"
        );
        assert_eq!(
            entry.2.as_deref(),
            Some(v4.as_str()),
            "{long}: ansible_host vs eth0 address:\n{inv}"
        );
    }
    assert_eq!(
        lab.eth0_addrs("s3").0.as_deref(),
        Some(format!("{}.77", lab.mgmt.v4).as_str()),
        "static mgmt-ipv4 of s3"
    );
    assert_eq!(hosts.len(), 3, "inventory hosts: {hosts:?}\n{inv}");

    let data = lab.topology_data();
    assert_eq!(data["name"], lab.name.as_str());
    for node in ["s1", "s2", "s3"] {
        let n = &data["nodes"][node];
        assert_eq!(
            n["longname"],
            lab.long_name(node),
            "topology-data.json node {node}: {n}"
        );
        assert_eq!(
            n["mgmt-ipv4-address"].as_str(),
            lab.eth0_addrs(node).0.as_deref(),
            "node {node}: {n}"
        );
    }
}

#[test]
fn etc_hosts_block_added_and_removed() {
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              h1: {kind: linux}
              h2: {kind: linux}
            links:
              - endpoints: ["h1:eth1", "h2:eth1"]
                ipv4: ["10.207.1.1/24", "10.207.1.2/24"]
            "#,
        )
        .build();
    let name = lab.name.as_str();
    let before = read_etc_hosts();
    assert!(
        hosts_block(&before, name).is_none(),
        "a block of {name} exists before the deploy"
    );
    lab.deploy();
    let during = read_etc_hosts();
    let block = hosts_block(&during, name)
        .unwrap_or_else(|| panic!("no CLAB-{name} block in /etc/hosts:\n{during}"));
    let entries: BTreeSet<(String, String)> = block
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    let mut want = BTreeSet::new();
    for node in ["h1", "h2"] {
        let (v4, v6) = lab.eth0_addrs(node);
        want.insert((v4.expect("IPv4 on eth0"), lab.long_name(node)));
        want.insert((v6.expect("global IPv6 on eth0"), lab.long_name(node)));
    }
    assert_eq!(entries, want, "block lines:\n{}", block.join("\n"));
    assert_eq!(
        without_blocks(&during),
        without_blocks(&before),
        "lines outside the blocks changed on deploy"
    );

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    let after = read_etc_hosts();
    assert!(
        hosts_block(&after, name).is_none(),
        "the block is still there after destroy:\n{after}"
    );
    assert!(
        !after.contains(&format!("CLAB-{name}-")),
        "a marker of {name} is left:\n{after}"
    );
    assert_eq!(
        without_blocks(&after),
        without_blocks(&before),
        "lines outside the blocks changed by deploy + destroy"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Nothing left after destroy
// ---------------------------------------------------------------------------------------------

#[test]
fn destroy_leaves_nothing() {
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              a: {kind: linux}
              b: {kind: linux}
              c: {kind: linux}
            links:
              - endpoints: ["a:eth1", "b:eth1"]
              - endpoints: ["b:eth2", "c:eth1"]
              - endpoints: ["c:eth2", "a:eth2"]
            "#,
        )
        .build();
    lab.deploy();
    let recorded = lab.recorded_host_objects();
    for o in lab.expected_host_objects() {
        assert!(
            recorded.contains(&o),
            "the journal does not record {o}: {recorded:?}"
        );
    }
    // While deployed, every check of `leftovers` does see the lab (the checks are not vacuous).
    let seen = leftovers(&lab.name, &recorded.iter().cloned().collect());
    let netns_a = format!("netns /run/netns/{}", lab.netns("a"));
    for what in [
        netns_a.as_str(),
        "state directory",
        "process",
        "mount",
        "host link lw",
    ] {
        assert!(
            seen.iter().any(|s| s.starts_with(what)),
            "a deployed lab should show `{what}…`: {seen:?}"
        );
    }
    assert!(
        live_inits(&lab.name).len() >= 3,
        "three node inits expected: {:?}",
        live_inits(&lab.name)
    );

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&recorded);
    assert!(
        !lab.lab_dir().exists(),
        "destroy --cleanup left {}",
        lab.lab_dir().display()
    );
    // A second destroy from the topology file is a no-op that succeeds; by a name nothing is
    // recorded under, it fails as inspect does (a mistyped name must not look destroyed).
    let mut again = lab.cmd();
    again.args(["destroy", "--cleanup", "-t"]).arg(&lab.file);
    let out = run_timeout(again, Duration::from_secs(60));
    assert!(out.status.success(), "second destroy: {}", describe(&out));
    let out = lab.destroy(true);
    assert!(
        !out.status.success(),
        "destroy --name of a destroyed lab: {}",
        describe(&out)
    );
    assert!(
        text(&out.stderr).contains(&format!("lab {} is not deployed", lab.name)),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 9. A deploy failing on its last link rolls back
// ---------------------------------------------------------------------------------------------

#[test]
fn failed_last_link_rolls_back() {
    // A VXLAN to a multicast group without a parent interface passes validation and preflight, but
    // the kernel refuses it (EINVAL) after the other links were made.
    let lab = LabBuilder::new()
        .topology(
            r#"
            nodes:
              a: {kind: linux}
              b: {kind: linux}
              c: {kind: linux}
            links:
              - endpoints: ["a:eth1", "b:eth1"]
              - endpoints: ["b:eth2", "c:eth1"]
              - {type: vxlan, endpoint: {node: c, interface: vx0}, remote: 239.1.1.1, vni: 10}
            "#,
        )
        .build();
    let out = lab.try_deploy();
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "the deploy should fail: {}",
        describe(&out)
    );
    assert!(
        err.contains("removing what was made"),
        "the failure should come from the kernel, after nodes and links were made (rollback): {}",
        describe(&out)
    );
    assert!(
        err.contains("error:")
            && err.contains("vxlan link of c:vx0")
            && err.contains("Invalid argument"),
        "the error should name the failing interface and the kernel's reason: {}",
        describe(&out)
    );
    lab.assert_nothing_left(&[]);
    assert!(
        hosts_block(&read_etc_hosts(), &lab.name).is_none(),
        "an /etc/hosts block of {} is left",
        lab.name
    );
    assert!(
        !lab.lab_dir().exists(),
        "the failed deploy kept the lab directory it created: {}",
        lab.lab_dir().display()
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Two labs deployed at once on one management network
// ---------------------------------------------------------------------------------------------

#[test]
fn two_labs_in_parallel_then_destroy_one() {
    let mk = |name: &str, n: u8| {
        format!(
            "name: {name}\n\
             mgmt: {{network: lwt-par, ipv4-subnet: 10.210.0.0/24, ipv6-subnet: fd00:210::/64}}\n\
             topology:\n  nodes:\n    a: {{kind: linux}}\n    b: {{kind: linux}}\n\
             \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n      ipv4: [\"10.210.{n}.1/24\", \"10.210.{n}.2/24\"]\n"
        )
    };
    // Declared first, so dropped last: once both labs are destroyed, a management bridge that
    // labwire failed to remove is removed here (it is this test's own) so later runs start clean.
    let _bridge = RemoveBridgeOnDrop("br-lwt-par");
    let one = TestLab::with_file(
        "par",
        "lwt-par1",
        "lwt-par",
        &["a", "b"],
        "one.clab.yml",
        &mk("lwt-par1", 1),
    );
    let two = TestLab::with_file(
        "par",
        "lwt-par2",
        "lwt-par",
        &["a", "b"],
        "two.clab.yml",
        &mk("lwt-par2", 2),
    );
    let spawn = |l: &TestLab| {
        let mut c = l.deploy_cmd();
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c.spawn().expect("start labwire deploy")
    };
    let mut children = [spawn(&one), spawn(&two)];
    for (c, l) in children.iter_mut().zip([&one, &two]) {
        let status = wait_timeout(c, Duration::from_secs(120))
            .unwrap_or_else(|| panic!("deploy of {} hangs", l.name));
        let mut err = String::new();
        let _ = c.stderr.take().expect("piped").read_to_string(&mut err);
        assert!(
            status.success(),
            "parallel deploy of {} failed ({status}):\n{err}",
            l.name
        );
    }
    // Both work, and their management addresses differ.
    let mut mgmt = BTreeMap::new();
    for l in [&one, &two] {
        for node in ["a", "b"] {
            let (v4, _) = l.eth0_addrs(node);
            let v4 = v4.unwrap_or_else(|| panic!("{} has no IPv4 on eth0", l.long_name(node)));
            if let Some(other) = mgmt.insert(v4.clone(), l.long_name(node)) {
                panic!(
                    "{other} and {} both have management address {v4}",
                    l.long_name(node)
                );
            }
        }
    }
    one.assert_ping("a", "10.210.1.2");
    two.assert_ping("a", "10.210.2.2");
    let (one_b, _) = one.eth0_addrs("b");
    let one_b = one_b.expect("checked");
    two.assert_ping("a", &one_b);

    // Destroy the lab that created the shared management bridge first: the other keeps it.
    let (first, second) = if one.recorded_host_objects().contains(&one.bridge) {
        (&one, &two)
    } else {
        (&two, &one)
    };
    assert!(
        first.recorded_host_objects().contains(&first.bridge),
        "neither lab recorded the management bridge {}",
        first.bridge
    );
    let second_recorded = second.recorded_host_objects();
    let out = first.destroy(true);
    assert!(
        out.status.success(),
        "destroy {}: {}",
        first.name,
        describe(&out)
    );
    // The first lab is gone except the shared bridge, which the second still uses.
    let first_objects: Vec<String> = first
        .expected_host_objects()
        .into_iter()
        .filter(|o| *o != first.bridge)
        .collect();
    let left = poll(Duration::from_secs(8), || {
        let l = leftovers(&first.name, &first_objects.iter().cloned().collect());
        if l.is_empty() {
            Ok(())
        } else {
            Err(l.join("\n  "))
        }
    });
    if let Err(l) = left {
        panic!("destroying {} left:\n  {l}", first.name);
    }
    assert!(
        host_link_names().contains(&second.bridge),
        "the shared bridge went away with {}",
        first.name
    );
    let j = second.inspect_json();
    for r in j[&second.name].as_array().expect("rows") {
        assert_eq!(r["state"], "running", "{r}");
    }
    let n = if second.name == "lwt-par1" { 1 } else { 2 };
    second.assert_ping("a", &format!("10.210.{n}.2"));
    let (second_b, _) = second.eth0_addrs("b");
    second.assert_ping("a", &second_b.expect("checked"));

    // Then the second: now the bridge must go too, whichever lab created it.
    let out = second.destroy(true);
    assert!(
        out.status.success(),
        "destroy {}: {}",
        second.name,
        describe(&out)
    );
    let bridge_gone = poll(Duration::from_secs(5), || {
        if host_link_names().contains(&second.bridge) {
            Err(String::new())
        } else {
            Ok(())
        }
    });
    assert!(
        bridge_gone.is_ok(),
        "the shared management bridge {} outlived both labs: {} created it and was destroyed first \
         (the bridge was kept, {} still used it), and {} found it already there so never recorded it",
        second.bridge,
        first.name,
        second.name,
        second.name
    );
    second.assert_nothing_left(&second_recorded);
}

// ---------------------------------------------------------------------------------------------
// 11. Ctrl-C during a deploy
// ---------------------------------------------------------------------------------------------

/// Deploy a generated 40-node ring, SIGINT it once it is under way or making nodes (to the process, or to its process group
/// as a terminal's Ctrl-C does), and check that nothing of the lab remains.
fn interrupt_ring(test: &str, name: &str, n: u8, to_group: bool, mid_nodes: bool) {
    require_root();
    let dir = PathBuf::from(format!("/tmp/lwt-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let gen = dir.join("gen.yml");
    let mut c = labwire();
    c.args(["generate", "ring", "--nodes", "40", "--name", name, "-o"])
        .arg(&gen);
    run_ok(c);
    let generated = std::fs::read_to_string(&gen).expect("read the generated ring");
    let mut yaml = String::new();
    for line in generated.lines() {
        yaml.push_str(line);
        yaml.push('\n');
        if line.starts_with("name:") {
            yaml.push_str(&format!(
                "mgmt: {{network: {name}, ipv4-subnet: 10.{n}.0.0/24, ipv6-subnet: fd00:{n}::/64}}\n"
            ));
        }
    }
    let nodes: Vec<String> = (1..=40).map(|i| format!("n{i}")).collect();
    let node_refs: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let lab = TestLab::new(test, name, name, &node_refs, &yaml);

    let err_path = lab.dir.join("deploy.err");
    let mut c = lab.deploy_cmd();
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).expect("create deploy.err"));
    if to_group {
        c.process_group(0);
    }
    let mut child = c.spawn().expect("start labwire deploy");
    // Once the lab's state directory exists the deploy is under way (its signal handlers are in
    // place; a fixed delay could land before them on a busy host): the signal comes then, or once
    // a node's namespace is registered.
    let mark = match mid_nodes {
        false => lab.state_dir(),
        true => PathBuf::from("/run/netns").join(lab.long_name("n5")),
    };
    let started = Instant::now();
    while !mark.exists()
        && started.elapsed() < Duration::from_secs(30)
        && child.try_wait().ok().flatten().is_none()
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = child.id() as i32;
    let target = if to_group { -pid } else { pid };
    // SAFETY: signals our own child (or its process group), which has not been reaped yet.
    unsafe { libc::kill(target, libc::SIGINT) };
    let status = wait_timeout(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("labwire deploy did not exit within 120 s of SIGINT");
    });
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let recorded = if status.success() {
        // It finished before the signal: then a destroy must leave nothing.
        eprintln!("{test}: the deploy finished before SIGINT; destroying");
        let rec = lab.recorded_host_objects();
        let out = lab.destroy(true);
        assert!(out.status.success(), "destroy: {}", describe(&out));
        rec
    } else {
        assert!(
            err.contains("interrupted"),
            "an interrupted deploy should say so ({status}):\n{err}"
        );
        Vec::new()
    };
    lab.assert_nothing_left(&recorded);
    assert!(
        hosts_block(&read_etc_hosts(), name).is_none(),
        "an /etc/hosts block of {name} is left"
    );
}

#[test]
fn ctrl_c_to_process_leaves_nothing() {
    interrupt_ring("int", "lwt-int", 211, false, false);
}

#[test]
fn ctrl_c_to_process_group_leaves_nothing() {
    interrupt_ring("intpg", "lwt-intpg", 212, true, true);
}

// ---------------------------------------------------------------------------------------------
// 12. Bad input changes nothing
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_topology_changes_nothing() {
    let yaml = "name: lwt-bad\n\
        mgmt: {network: lwt-bad, ipv4-subnet: 10.213.0.0/24, ipv6-subnet: fd00:213::/64}\n\
        topology:\n  nodes:\n    a: {kind: linux, imagee: alpine}\n    b: {kind: linux}\n\
        \x20 links:\n    - endpoints: [\"a:eth1\", \"b:eth1\"]\n";
    let lab = TestLab::with_file(
        "bad",
        "lwt-bad",
        "lwt-bad",
        &["a", "b"],
        "bad.clab.yml",
        yaml,
    );
    let (line, col) = yaml
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("imagee").map(|c| (i + 1, c + 1)))
        .expect("the typo is in the text");
    let links_before = host_link_names();
    let out = lab.try_deploy();
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "deploy of a bad topology succeeded: {}",
        describe(&out)
    );
    let at = format!("bad.clab.yml:{line}:{col}");
    assert!(
        err.contains(&at),
        "the error should point at {at}: {}",
        describe(&out)
    );
    assert!(
        err.contains("imagee"),
        "the error should name the offending key: {}",
        describe(&out)
    );
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
    assert!(
        !Path::new("/run/netns/clab-lwt-bad-a").exists()
            && !Path::new("/run/netns/clab-lwt-bad-b").exists()
    );
    assert!(
        !host_link_names().contains(&lab.bridge),
        "the management bridge {} was created",
        lab.bridge
    );
    assert!(
        live_inits("lwt-bad").is_empty(),
        "node processes were started"
    );
    assert!(
        hosts_block(&read_etc_hosts(), "lwt-bad").is_none(),
        "an /etc/hosts block was written"
    );
    let mine: Vec<String> = lab.expected_host_objects();
    let links_after = host_link_names();
    let new: Vec<&String> = links_after
        .difference(&links_before)
        .filter(|l| mine.contains(l))
        .collect();
    assert!(new.is_empty(), "host links were created: {new:?}");
}

// ---------------------------------------------------------------------------------------------
// 13. The harness: labs built by LabBuilder do not collide
// ---------------------------------------------------------------------------------------------

/// Two labs built in one test get names, management networks and subnets of their own and run
/// side by side; `{lab}` and `{mgmt4}` in the YAML are the lab's; while a lab lives, its subnet is
/// claimed (another claim under the same key gets another subnet); each destroy leaves nothing.
#[test]
fn hn_builder_labs_get_names_and_subnets_of_their_own() {
    let node = r#"
        nodes:
          n: {kind: linux, mgmt-ipv4: {mgmt4}.9, env: {LAB: "{lab}"}}
    "#;
    let one = LabBuilder::new()
        .test("hn-builder-one")
        .topology(node)
        .build();
    let two = LabBuilder::new()
        .test("hn-builder-two")
        .topology(node)
        .build();
    assert!(
        one.name.starts_with("lwt-hn-builder-one-") && two.name.starts_with("lwt-hn-builder-two-"),
        "lab names {} and {}",
        one.name,
        two.name
    );
    assert_ne!(one.mgmt.network, two.mgmt.network);
    assert_ne!(one.mgmt.v4_subnet, two.mgmt.v4_subnet);
    assert_ne!(one.mgmt.v6_subnet, two.mgmt.v6_subnet);
    assert_eq!(one.nodes, ["n"], "nodes read from the topology");
    let (_claim, other) = mgmt_claim("hn-builder-one");
    assert_ne!(
        other.v4_subnet, one.mgmt.v4_subnet,
        "a live lab's subnet was handed out again"
    );

    one.deploy();
    two.deploy();
    for lab in [&one, &two] {
        let (v4, v6) = lab.eth0_addrs("n");
        assert_eq!(v4, Some(format!("{}.9", lab.mgmt.v4)), "lab {}", lab.name);
        let v6 = v6.unwrap_or_else(|| panic!("lab {}: no IPv6 on eth0", lab.name));
        assert!(
            v6.starts_with(&format!("{}:", lab.mgmt.v6)),
            "lab {}: {v6} outside {}",
            lab.name,
            lab.mgmt.v6_subnet
        );
        assert!(
            host_link_names().contains(&lab.mgmt.network),
            "no host bridge {}",
            lab.mgmt.network
        );
        lab.assert_ping("n", &format!("{}.1", lab.mgmt.v4));
        assert_eq!(lab.exec_ok("n", "echo $LAB").trim(), lab.name);
    }
    for lab in [&one, &two] {
        let out = lab.destroy(true);
        assert!(out.status.success(), "destroy: {}", describe(&out));
        lab.assert_nothing_left(&[]);
    }
}

// ---------------------------------------------------------------------------------------------
// A node's command starts clean: labwire's descriptors stay out, signals at their defaults
// ---------------------------------------------------------------------------------------------

/// A node's command holds only its standard descriptors (node inits are started by a spawner that
/// holds none of labwire's namespace descriptors) and SIGPIPE is not ignored (the Rust runtime of
/// labwire-init ignores it, and an ignored signal stays ignored across exec).
#[test]
fn node_command_holds_no_labwire_descriptor_and_default_sigpipe() {
    let lab = LabBuilder::new()
        .topology(
            r#"
    nodes:
      a:
        kind: linux
        cmd: sh -c "ls /proc/self/fd > /tmp/fds; grep SigIgn /proc/self/status > /tmp/sig; exec sleep 600"
      b: {kind: linux}
    links:
      - endpoints: ["a:eth1", "b:eth1"]
"#,
        )
        .build();
    lab.deploy();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (fds, sig) = loop {
        let fds = lab.exec("a", "cat /tmp/fds");
        let sig = lab.exec("a", "cat /tmp/sig");
        if fds.status.success() && sig.status.success() && !text(&sig.stdout).is_empty() {
            break (text(&fds.stdout), text(&sig.stdout));
        }
        assert!(Instant::now() < deadline, "node a's command left no report");
        std::thread::sleep(Duration::from_millis(100));
    };
    let fds: BTreeSet<&str> = fds.split_whitespace().collect();
    assert_eq!(
        fds,
        BTreeSet::from(["0", "1", "2", "3"]),
        "descriptors of `ls` in node a's command (3 is its listing of them)"
    );
    let mask = sig
        .trim()
        .strip_prefix("SigIgn:")
        .map(|m| u64::from_str_radix(m.trim(), 16).expect("hex mask"))
        .expect("a SigIgn line");
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "SigIgn {mask:x}");
}

/// A node whose environment is larger than the room the node spawner forks inits with is started
/// by an exec instead, and reads the same: its variables in its command and in `exec`, its init's
/// arguments in /proc.
#[test]
fn node_with_an_environment_too_large_to_fork_into_starts_the_same() {
    let big = "x".repeat(24 * 1024);
    let lab = LabBuilder::new()
        .topology(&format!(
            r#"
    nodes:
      a:
        kind: linux
        env: {{BIG: {big}, ROLE: edge}}
        cmd: sh -c "printenv BIG | wc -c > /tmp/big; exec sleep 600"
      b: {{kind: linux, env: {{ROLE: core}}}}
    links:
      - endpoints: ["a:eth1", "b:eth1"]
"#
        ))
        .build();
    lab.deploy();
    for (node, role) in [("a", "edge"), ("b", "core")] {
        assert_eq!(
            lab.exec_ok(node, "printenv ROLE").trim(),
            role,
            "ROLE in {node}"
        );
        let init = lab.exec_ok(node, "tr '\\0' ' ' < /proc/1/cmdline");
        assert!(
            init.contains(&format!("--node {node} ")),
            "node {node}'s init reads `{init}`"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = lab.exec("a", "cat /tmp/big");
        if out.status.success() && !text(&out.stdout).trim().is_empty() {
            assert_eq!(text(&out.stdout).trim(), (big.len() + 1).to_string());
            break;
        }
        assert!(Instant::now() < deadline, "node a's command left no report");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// 15. The management network's flood filter
// ---------------------------------------------------------------------------------------------

/// Counter `name` of `/proc/net/snmp6` in the namespace of `node`.
fn snmp6(lab: &TestLab, node: &str, name: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.netns(node), "cat", "/proc/net/snmp6"])
        .output()
        .expect("run ip netns exec");
    assert!(out.status.success(), "snmp6 of {node}: {}", describe(&out));
    text(&out.stdout)
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name)).then(|| f.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {name} in the snmp6 of {node}"))
}

#[test]
fn management_network_keeps_router_solicitations_from_other_nodes_not_neighbour_discovery() {
    let lab = LabBuilder::new().topology(TWO_NODES).build();
    lab.deploy();
    // Each node's port on the management bridge is in labwire's port group, which the filter's
    // rules match.
    let ports = ip_json(&["-d", "-j", "link", "show", "master", &lab.bridge]);
    let ports = ports.as_array().expect("ip -j output");
    assert_eq!(ports.len(), 2, "management bridge ports: {ports:?}");
    for p in ports {
        assert_eq!(p["group"], "19543", "port {}: {p}", p["ifname"]);
    }
    let out = Command::new("nft")
        .args(["list", "table", "bridge", "labwire"])
        .output()
        .expect("run nft");
    assert!(out.status.success(), "nft: {}", describe(&out));
    let rules = text(&out.stdout);
    for t in [
        "mld-listener-report",
        "nd-router-solicit",
        "mld2-listener-report",
    ] {
        assert!(
            rules.contains(&format!("iifgroup 19543 icmpv6 type {t} counter")),
            "{rules}"
        );
    }

    // Neighbour discovery still works across the bridge: a reaches b by its IPv6
    // address (before a's eth0 goes down, which takes its addresses).
    let (_, b_v6) = lab.eth0_addrs("b");
    let b_v6 = b_v6.expect("b has a management IPv6 address");
    let out = lab.exec("a", &format!("ping -6 -c1 -W5 {b_v6}"));
    assert!(out.status.success(), "ping a → b: {}", describe(&out));

    // Node b listens as a router on eth0 (it joins all-routers, ff02::2); node a, a host, solicits
    // routers when its eth0 comes up again. The solicitation leaves a and never reaches b.
    let b_ns = lab.netns("b");
    let forwarding = Command::new("ip")
        .args(["netns", "exec", &b_ns, "sh", "-c"])
        .arg("echo 1 > /proc/sys/net/ipv6/conf/eth0/forwarding")
        .output()
        .unwrap();
    assert!(forwarding.status.success(), "{}", describe(&forwarding));
    let sent_before = snmp6(&lab, "a", "Icmp6OutRouterSolicits");
    let heard_before = snmp6(&lab, "b", "Icmp6InRouterSolicits");
    let a_ns = lab.netns("a");
    for state in ["down", "up"] {
        let out = ip(&["-n", &a_ns, "link", "set", "eth0", state]);
        assert!(out.status.success(), "eth0 {state}: {}", describe(&out));
    }
    poll(Duration::from_secs(15), || {
        let sent = snmp6(&lab, "a", "Icmp6OutRouterSolicits");
        if sent > sent_before {
            Ok(())
        } else {
            Err(format!("node a sent no router solicitation ({sent})"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        snmp6(&lab, "b", "Icmp6InRouterSolicits"),
        heard_before,
        "node b heard node a's router solicitation"
    );
}

// ---------------------------------------------------------------------------------------------
// 16. A node linked to nodes of a later slice of its round
// ---------------------------------------------------------------------------------------------

/// A round's links and addresses are made in slices of 512 nodes. A node of the first slice with
/// links to nodes of the second is configured again in the second, for its new interfaces only:
/// those must come up with their addresses as well as the one made in its own slice.
#[test]
fn a_node_linked_across_slices_of_its_round_has_every_link_up_with_its_address() {
    let mut topo = String::from("defaults: {kind: linux}\nnodes:\n  h: {network-mode: none}\n");
    for i in 0..600 {
        topo += &format!("  m{i:03}: {{network-mode: none}}\n");
    }
    for k in 1..=5 {
        topo += &format!("  z{k}: {{network-mode: none}}\n");
    }
    topo += "links:\n";
    for k in 0..=5 {
        let far = if k == 0 {
            "m000".to_string()
        } else {
            format!("z{k}")
        };
        topo += &format!(
            "  - endpoints: [\"h:eth{}\", \"{far}:eth1\"]\n    ipv4: [\"10.203.{k}.1/24\", \"10.203.{k}.2/24\"]\n",
            k + 1
        );
    }
    let lab = LabBuilder::new().topology(&topo).build();
    lab.deploy();
    for k in 0..=5 {
        lab.assert_ping("h", &format!("10.203.{k}.2"));
    }
}
