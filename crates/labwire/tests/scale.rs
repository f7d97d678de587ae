//! End-to-end tests of labs past the kernel's limits of one object: a management network of more
//! nodes than one Linux bridge takes ports (1024). Each deploys a real lab with the `labwire`
//! binary and checks what a user would: pings by management address from the host and between
//! nodes on different bridges, and nothing left after `destroy` (namespaces, links, bridges,
//! firewall rules).
//!
//! They run as root. Lab names start with `scl`; management subnets are in 172.30.184.0/21 (172.30.181.0/24 is another suite's) and
//! fd00:30:176::/48, so they run beside the other suites. labwire-init must be built next to
//! `labwire` (`cargo build` first).

mod common;

use std::collections::BTreeSet;

use common::*;

/// `n` linux nodes `n1`…`nN` with no data links, on management network `network` (bridge
/// `br-<network>`) over `v4` and `v6`.
fn many_nodes_yaml(name: &str, network: &str, n: usize, v4: &str, v6: &str) -> String {
    let mut y = format!(
        "name: {name}\n\
         mgmt: {{network: {network}, bridge: br-{network}, ipv4-subnet: {v4}, ipv6-subnet: {v6}}}\n\
         topology:\n  defaults: {{kind: linux}}\n  nodes:\n"
    );
    for i in 1..=n {
        y.push_str(&format!("    n{i}: {{}}\n"));
    }
    y
}

fn master_of(link: &str) -> Option<String> {
    let v = ip_json(&["-j", "link", "show", "dev", link]);
    v[0]["master"].as_str().map(str::to_string)
}

fn docker_user_rules(tool: &str) -> String {
    let out = std::process::Command::new(tool)
        .args(["-w", "-S", "DOCKER-USER"])
        .output();
    out.map(|o| text(&o.stdout)).unwrap_or_default()
}

#[test]
fn management_network_past_one_bridges_1024_ports() {
    const N: usize = 1100;
    let names: Vec<String> = (1..=N).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let lab = TestLab::new(
        "sclmgmt",
        "sclmgmt",
        "sclmgmt",
        &refs,
        &many_nodes_yaml(
            "sclmgmt",
            "sclmgmt",
            N,
            "172.30.184.0/21",
            "fd00:30:176::/64",
        ),
    );
    lab.deploy();

    // The first nodes are ports of the management bridge, the last ones of the last leaf bridge.
    use lab::mgmt_fabric::{LEAF_PORTS, ROOT_PORTS};
    let root = "br-sclmgmt";
    let leaves = (N - ROOT_PORTS).div_ceil(LEAF_PORTS - 1);
    let leaf = lab::mgmt_fabric::leaf_name(root, leaves);
    let (up_root, up_leaf) = lab::mgmt_fabric::uplink_names(root, leaves);
    let end = |node: &str| lab::wiring::mgmt_host_end("sclmgmt", node);
    assert_eq!(master_of(&end("n1")).as_deref(), Some(root));
    assert_eq!(master_of(&end(&format!("n{N}"))), Some(leaf.clone()));
    assert_eq!(master_of(&up_root).as_deref(), Some(root));
    assert_eq!(master_of(&up_leaf), Some(leaf.clone()));
    let mut fabric = Vec::new();
    for k in 1..=leaves {
        let (r, l) = lab::mgmt_fabric::uplink_names(root, k);
        fabric.extend([lab::mgmt_fabric::leaf_name(root, k), r, l]);
    }
    let root_ports = match ip_json(&["-j", "link", "show", "master", root]) {
        serde_json::Value::Array(a) => a.len(),
        v => panic!("ip -j link printed {v}"),
    };
    assert!(root_ports < 1024, "{root} has {root_ports} ports");

    // Ports and leaves carry no address: IPv6 is off on them, so the host's routing table does
    // not grow with the lab (a link-local and a multicast route per port made deploy quadratic).
    let ipv6_off = |iface: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6"))
            .map(|v| v.trim() == "1")
            .unwrap_or_else(|e| panic!("read IPv6 settings of {iface}: {e}"))
    };
    for iface in [
        end("n1"),
        end(&format!("n{N}")),
        leaf.clone(),
        up_root.clone(),
        up_leaf.clone(),
    ] {
        assert!(ipv6_off(&iface), "IPv6 is on on {iface}");
    }
    // No querier on the management network: snooping would flood the same frames, at the cost
    // of a group table every node's reports fill.
    for br in [root, leaf.as_str()] {
        let d = ip_json(&["-d", "-j", "link", "show", br]);
        assert_eq!(
            d[0]["linkinfo"]["info_data"]["mcast_snooping"], 0,
            "{br} snoops multicast"
        );
    }
    let routes = std::process::Command::new("ip")
        .args(["-6", "route", "show", "table", "all"])
        .output()
        .expect("run ip -6 route");
    let port_routes = text(&routes.stdout)
        .lines()
        .filter(|l| l.contains(&format!("dev {}", end("n5"))))
        .count();
    assert_eq!(
        port_routes, 0,
        "the host has IPv6 routes on a management port"
    );

    // The bridges are up (deploy holds those it makes down until the nodes' interfaces are).
    for br in [root, leaf.as_str()] {
        let d = ip_json(&["-j", "link", "show", br]);
        let flags = d[0]["flags"].as_array().cloned().unwrap_or_default();
        assert!(flags.iter().any(|f| f == "UP"), "{br} is not up: {d}");
    }

    // Reachable by management address from the host and across the two bridges, IPv4 and IPv6.
    let (far4, far6) = lab.eth0_addrs(&format!("n{N}"));
    let (far4, far6) = (far4.expect("IPv4 on eth0"), far6.expect("IPv6 on eth0"));
    let (near4, _) = lab.eth0_addrs("n1");
    let near4 = near4.expect("IPv4 on eth0");
    let ping = |args: &[&str]| {
        let out = std::process::Command::new("ping")
            .args(args)
            .output()
            .expect("run ping");
        assert!(out.status.success(), "ping {args:?}: {}", describe(&out));
    };
    ping(&["-c1", "-W2", &far4]);
    ping(&["-c1", "-W2", &near4]);
    lab.assert_ping("n1", &far4);
    lab.assert_ping(&format!("n{N}"), &near4);
    lab.assert_ping("n2", &format!("-6 {far6}"));

    let out = lab.destroy(true);
    assert!(out.status.success(), "destroy: {}", describe(&out));
    lab.assert_nothing_left(&fabric);
    let pattern = lab::mgmt_fabric::leaf_pattern(root);
    for tool in ["iptables", "ip6tables"] {
        assert!(
            !docker_user_rules(tool).contains(&pattern),
            "{tool} still accepts {pattern}"
        );
    }
    let left: BTreeSet<String> = host_link_names()
        .into_iter()
        .filter(|l| l == root || l.starts_with(leaf.trim_end_matches(char::is_numeric)))
        .collect();
    assert!(left.is_empty(), "bridges left: {left:?}");
}
