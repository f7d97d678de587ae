//! Planning of links without a kernel: the journal intents, host interfaces needed, prerequisites
//! and netlink requests a lab would issue, and the preflight's verdict on host names.

use std::collections::HashSet;
use std::path::Path;

use topology::{Lab, Link, Node};

use super::*;
use crate::state::Entry;

fn lab(body: &str) -> Lab {
    let yaml = format!("name: pl\ntopology:\n{body}");
    let src = topology::Source::from_text("pl.clab.yml", yaml, Path::new("/tmp"));
    topology::load(&src, &topology::Options::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .lab
}

/// Three linux nodes in a ring.
fn ring() -> Lab {
    lab("  nodes:\n    a: {kind: linux}\n    b: {kind: linux}\n    c: {kind: linux}\n  links:\n    - endpoints: [a:eth1, b:eth2]\n    - endpoints: [b:eth1, c:eth2]\n    - endpoints: [c:eth1, a:eth2]\n")
}

fn with_link(extra_nodes: &str, link: &str) -> Lab {
    lab(&format!(
        "  nodes:\n    a: {{kind: linux}}\n{extra_nodes}  links:\n    - {link}\n"
    ))
}

fn all_links(lab: &Lab) -> Vec<&Link> {
    lab.links.iter().collect()
}

fn nodes(lab: &Lab) -> Vec<&Node> {
    lab.nodes.iter().filter(|n| n.is_workload()).collect()
}

fn only_request(p: &Plan) -> &Request {
    assert_eq!(p.requests.len(), 1, "{:?}", p.requests);
    &p.requests[0].1
}

fn veth(r: &Request) -> (&End, &End) {
    match r {
        Request::Veth { first, second } => (first, second),
        other => panic!("not a veth: {other:?}"),
    }
}

#[test]
fn a_ring_plans_one_request_per_link_and_one_per_management_interface() {
    let lab = ring();
    let p = plan(&lab, &all_links(&lab), &nodes(&lab));
    assert_eq!(p.requests.len(), 6);
    assert_eq!(
        p.intents.len(),
        3,
        "only the management host ends are host objects"
    );
    assert!(p.prereqs.is_empty());
}

#[test]
fn management_interfaces_come_first_in_the_batch() {
    let lab = ring();
    let p = plan(&lab, &all_links(&lab), &nodes(&lab));
    for (what, _) in &p.requests[..3] {
        assert!(
            what.starts_with("management interface eth0 of node "),
            "{what}"
        );
    }
    assert!(p.requests[3].0.starts_with("link "), "{}", p.requests[3].0);
}

#[test]
fn a_management_interface_is_a_veth_from_the_bridge_to_eth0() {
    let lab = ring();
    let a = lab.node("a").unwrap();
    let p = plan(&lab, &[], &[a]);
    let (host, eth0) = veth(only_request(&p));
    assert_eq!(host.name, mgmt_net::mgmt_host_end("pl", "a"));
    assert_eq!(host.place, Place::Host);
    assert_eq!(host.master.as_deref(), Some(lab.mgmt.bridge.as_str()));
    assert!(host.up);
    assert_eq!(eth0.name, "eth0");
    assert_eq!(eth0.place, Place::Node("a".into()));
    assert_eq!(eth0.mac, a.mgmt_mac);
    assert!(
        !eth0.up,
        "the node's side comes up when the node is configured"
    );
    assert_eq!(host.mtu, Some(lab.mgmt.mtu));
    assert_eq!(eth0.mtu, Some(lab.mgmt.mtu));
}

#[test]
fn a_management_host_end_is_journalled_with_its_mac() {
    let lab = ring();
    let p = plan(&lab, &[], &[lab.node("b").unwrap()]);
    assert_eq!(
        p.intents,
        [Entry::HostLink {
            name: mgmt_net::mgmt_host_end("pl", "b"),
            mac: mgmt_net::mgmt_host_mac("pl", "b").to_string(),
        }]
    );
}

#[test]
fn management_host_ends_differ_per_lab_and_node_and_fit_an_interface_name() {
    let a = mgmt_net::mgmt_host_end("pl", "a");
    assert_ne!(a, mgmt_net::mgmt_host_end("pl", "b"));
    assert_ne!(a, mgmt_net::mgmt_host_end("other", "a"));
    assert_eq!(a, mgmt_net::mgmt_host_end("pl", "a"));
    assert!(a.len() <= 15 && a.starts_with("lw"), "{a}");
}

#[test]
fn the_management_bridge_is_needed_once() {
    let lab = ring();
    let p = plan(&lab, &[], &nodes(&lab));
    assert_eq!(
        p.needs,
        [Need {
            name: lab.mgmt.bridge.clone(),
            what: "management bridge"
        }]
    );
}

#[test]
fn links_between_nodes_need_nothing_from_the_host() {
    let lab = ring();
    let p = plan(&lab, &all_links(&lab), &[]);
    assert!(p.needs.is_empty() && p.intents.is_empty());
}

#[test]
fn a_veth_is_born_with_both_ends_in_their_nodes() {
    let lab = ring();
    let p = plan(&lab, &all_links(&lab)[..1], &[]);
    let (a, b) = veth(only_request(&p));
    assert_eq!(
        (a.name.as_str(), &a.place),
        ("eth1", &Place::Node("a".into()))
    );
    assert_eq!(
        (b.name.as_str(), &b.place),
        ("eth2", &Place::Node("b".into()))
    );
    assert_eq!(a.mac, lab.links[0].a.mac);
    assert!(a.master.is_none() && b.master.is_none());
    assert_eq!(a.mtu, Some(lab.links[0].mtu));
    assert_eq!(p.requests[0].0, "link a:eth1 — b:eth2");
}

#[test]
fn a_veth_to_a_bridge_node_puts_the_bridge_end_first_on_its_bridge() {
    let lab = with_link(
        "    br1: {kind: bridge}\n",
        "endpoints: [a:eth1, br1:a-port]",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let (first, second) = veth(only_request(&p));
    assert_eq!(first.name, "a-port");
    assert_eq!(first.place, Place::Host);
    assert_eq!(first.master.as_deref(), Some("br1"));
    assert_eq!(second.place, Place::Node("a".into()));
    assert_eq!(
        p.needs,
        [Need {
            name: "br1".into(),
            what: "bridge"
        }]
    );
}

#[test]
fn a_bridge_end_is_first_whichever_side_names_it() {
    let lab = with_link(
        "    br1: {kind: bridge}\n",
        "endpoints: [br1:a-port, a:eth1]",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let (first, second) = veth(only_request(&p));
    assert_eq!(
        (first.name.as_str(), first.place.clone()),
        ("a-port", Place::Host)
    );
    assert_eq!(second.name, "eth1");
}

#[test]
fn a_bridge_end_is_journalled_as_a_host_link() {
    let lab = with_link(
        "    br1: {kind: bridge}\n",
        "endpoints: [a:eth1, br1:a-port]",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let port = &lab.links[0]
        .endpoints()
        .find(|e| e.node == "br1")
        .unwrap()
        .mac;
    assert_eq!(
        p.intents,
        [Entry::HostLink {
            name: "a-port".into(),
            mac: port.to_string()
        }]
    );
}

#[test]
fn a_veth_to_the_host_node_stays_loose_in_the_host() {
    let lab = with_link("", "endpoints: [a:eth1, host:a-eth1]");
    let p = plan(&lab, &all_links(&lab), &[]);
    let (first, _) = veth(only_request(&p));
    assert_eq!(first.place, Place::Host);
    assert!(first.master.is_none());
    assert!(p.needs.is_empty());
    assert_eq!(p.intents.len(), 1);
}

#[test]
fn a_host_link_is_a_veth_with_a_loose_host_end() {
    let lab = with_link(
        "",
        "type: host\n      endpoint: {node: a, interface: eth1}\n      host-interface: plh1",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let (host, node) = veth(only_request(&p));
    assert_eq!(
        (host.name.as_str(), host.place.clone()),
        ("plh1", Place::Host)
    );
    assert!(host.master.is_none());
    assert_eq!(node.place, Place::Node("a".into()));
    assert_eq!(p.requests[0].0, "host link of a:eth1");
    assert!(matches!(&p.intents[..], [Entry::HostLink { name, .. }] if name == "plh1"));
}

#[test]
fn a_mgmt_net_link_joins_the_management_bridge() {
    let lab = with_link(
        "",
        "type: mgmt-net\n      endpoint: {node: a, interface: eth1}\n      host-interface: plm1",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let (host, _) = veth(only_request(&p));
    assert_eq!(host.master.as_deref(), Some(lab.mgmt.bridge.as_str()));
    assert_eq!(p.needs[0].name, lab.mgmt.bridge);
    assert!(uses_mgmt_bridge(&lab));
}

#[test]
fn a_macvlan_sits_on_its_parent_inside_the_node() {
    let lab = with_link(
        "",
        "type: macvlan\n      endpoint: {node: a, interface: mv1}\n      host-interface: plparent\n      mode: private",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    match only_request(&p) {
        Request::Macvlan {
            node,
            name,
            parent,
            mode,
            ..
        } => {
            assert_eq!((node.as_str(), name.as_str()), ("a", "mv1"));
            assert_eq!(parent, "plparent");
            assert_eq!(*mode, wire::netlink::MacvlanMode::Private);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.needs[0].what, "macvlan parent interface");
    assert!(
        p.intents.is_empty(),
        "a macvlan lives and dies with its node"
    );
}

#[test]
fn macvlan_modes_map_one_to_one() {
    for (word, mode) in [
        ("bridge", wire::netlink::MacvlanMode::Bridge),
        ("vepa", wire::netlink::MacvlanMode::Vepa),
        ("passthru", wire::netlink::MacvlanMode::Passthru),
    ] {
        let lab = with_link(
            "",
            &format!("type: macvlan\n      endpoint: {{node: a, interface: mv1}}\n      host-interface: plparent\n      mode: {word}"),
        );
        let p = plan(&lab, &all_links(&lab), &[]);
        assert!(
            matches!(only_request(&p), Request::Macvlan { mode: m, .. } if *m == mode),
            "{word}"
        );
    }
}

#[test]
fn a_vxlan_is_born_in_the_node_with_its_tunnel() {
    let lab = with_link(
        "",
        "type: vxlan\n      endpoint: {node: a, interface: vx1}\n      remote: 192.0.2.9\n      vni: 4242\n      udp-port: 4790",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    match only_request(&p) {
        Request::Vxlan {
            node,
            vni,
            remote,
            port,
            parent,
            ..
        } => {
            assert_eq!(node, "a");
            assert_eq!((*vni, *port), (4242, 4790));
            assert_eq!(remote.to_string(), "192.0.2.9");
            assert!(parent.is_none());
        }
        other => panic!("{other:?}"),
    }
    assert!(p.needs.is_empty() && p.intents.is_empty());
}

#[test]
fn a_vxlan_link_is_named_in_errors_by_its_type_and_end() {
    let lab = with_link(
        "",
        "type: vxlan\n      endpoint: {node: a, interface: vx1}\n      remote: 192.0.2.9\n      vni: 4242",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    assert_eq!(p.requests[0].0, "vxlan link of a:vx1");
}

#[test]
fn a_vxlan_stitch_makes_its_bridge_and_tunnel_before_the_batch() {
    let lab = with_link(
        "",
        "type: vxlan-stitch\n      endpoint: {node: a, interface: st1}\n      remote: 192.0.2.9\n      vni: 4243",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let (host, _) = veth(only_request(&p));
    let (vx, br) = vxlan_stitch::stitch_names(&host.name);
    assert_eq!(host.master.as_deref(), Some(br.as_str()));
    match &p.prereqs[..] {
        [Prereq::StitchBridge {
            bridge, vxlan, vni, ..
        }] => {
            assert_eq!(
                (bridge.as_ref().map(|b| &b.0), vxlan, *vni),
                (Some(&br), &vx, 4243)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(p.redirects.is_empty());
}

#[test]
fn a_partition_tunnel_is_redirected_to_its_veth_without_a_bridge() {
    let mut lab = with_link(
        "",
        "type: vxlan-stitch\n      endpoint: {node: a, interface: st1}\n      remote: 192.0.2.9\n      vni: 4243",
    );
    if let topology::Peer::VxlanStitch { redirect, .. } = &mut lab.links[0].peer {
        *redirect = true;
    }
    let p = plan(&lab, &all_links(&lab), &[]);
    let (host, _) = veth(only_request(&p));
    let (vx, _) = vxlan_stitch::stitch_names(&host.name);
    assert_eq!(host.master, None);
    match &p.prereqs[..] {
        [Prereq::StitchBridge {
            bridge: None,
            vxlan,
            mtu,
            ..
        }] => {
            assert_eq!(vxlan, &vx);
            assert_eq!(*mtu, Some(lab.links[0].mtu).filter(|m| *m > 0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.redirects, vec![(vx, host.name.clone())]);
    assert!(!p
        .intents
        .iter()
        .any(|e| matches!(e, crate::state::Entry::Bridge { .. })));
}

#[test]
fn a_vxlan_stitch_journals_its_three_host_objects() {
    let lab = with_link(
        "",
        "type: vxlan-stitch\n      endpoint: {node: a, interface: st1}\n      remote: 192.0.2.9\n      vni: 4243",
    );
    let p = plan(&lab, &all_links(&lab), &[]);
    let t = crate::destroy::teardown(&p.intents);
    assert_eq!(t.host_links.len(), 2, "{:?}", p.intents);
    assert_eq!(t.bridges.len(), 1);
    assert!(!t.bridges[0].2, "a stitch bridge is the lab's own");
}

#[test]
fn stitch_names_share_the_host_end_suffix() {
    assert_eq!(
        vxlan_stitch::stitch_names("vxs-abc"),
        ("vxl-abc".to_string(), "vxb-abc".to_string())
    );
}

#[test]
fn a_dummy_is_born_in_the_node_and_needs_the_kernel_type() {
    let lab = with_link("", "type: dummy\n      endpoint: {node: a, interface: d0}");
    let p = plan(&lab, &all_links(&lab), &[]);
    assert!(
        matches!(only_request(&p), Request::Dummy { node, name, .. } if node == "a" && name == "d0")
    );
    assert!(uses_dummy(&lab));
    assert!(!uses_dummy(&ring()));
}

#[test]
fn only_mgmt_net_links_need_the_management_bridge() {
    assert!(!uses_mgmt_bridge(&ring()));
    assert_eq!(
        host_needs(&topology::Peer::Dummy).kernel_kind,
        Some("dummy")
    );
    assert!(!host_needs(&topology::Peer::Dummy).mgmt_bridge);
}

#[test]
fn a_link_without_an_mtu_leaves_the_kernel_default() {
    let mut lab = ring();
    lab.links[0].mtu = 0;
    let p = plan(&lab, &all_links(&lab)[..1], &[]);
    let (a, b) = veth(only_request(&p));
    assert_eq!((a.mtu, b.mtu), (None, None));
}

#[test]
fn planning_in_chunks_issues_the_same_requests() {
    let lab = ring();
    let links = all_links(&lab);
    let whole = plan(&lab, &links, &[]);
    let mut parts = plan(&lab, &links[..2], &[]).requests;
    parts.extend(plan(&lab, &links[2..], &[]).requests);
    assert_eq!(whole.requests, parts);
}

#[test]
fn planning_is_deterministic() {
    let lab = ring();
    assert_eq!(
        plan(&lab, &all_links(&lab), &nodes(&lab)),
        plan(&lab, &all_links(&lab), &nodes(&lab))
    );
}

#[test]
fn preflight_refuses_a_host_interface_that_exists() {
    let lab = with_link(
        "",
        "type: host\n      endpoint: {node: a, interface: eth1}\n      host-interface: plh1",
    );
    let mut problems = Vec::new();
    preflight(&lab, &HashSet::from(["plh1".to_string()]), &mut problems);
    assert_eq!(
        problems,
        ["link a:eth1: host interface plh1 already exists"]
    );
    problems.clear();
    preflight(&lab, &HashSet::new(), &mut problems);
    assert!(problems.is_empty());
}

#[test]
fn preflight_wants_a_macvlan_parent_in_the_host() {
    let lab = with_link(
        "",
        "type: macvlan\n      endpoint: {node: a, interface: mv1}\n      host-interface: plparent",
    );
    let mut problems = Vec::new();
    preflight(&lab, &HashSet::new(), &mut problems);
    assert_eq!(
        problems,
        ["link a:mv1: macvlan parent interface plparent does not exist in the host"]
    );
}

#[test]
fn preflight_accepts_a_macvlan_on_one_of_the_labs_bridges() {
    let lab = with_link(
        "    plbr: {kind: bridge}\n",
        "type: macvlan\n      endpoint: {node: a, interface: mv1}\n      host-interface: plbr",
    );
    let mut problems = Vec::new();
    preflight(&lab, &HashSet::new(), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn preflight_refuses_a_bridge_port_name_taken_in_the_host() {
    let lab = with_link(
        "    br1: {kind: bridge}\n",
        "endpoints: [a:eth1, br1:a-port]",
    );
    let mut problems = Vec::new();
    preflight(&lab, &HashSet::from(["a-port".to_string()]), &mut problems);
    assert_eq!(
        problems,
        ["link end br1:a-port: an interface a-port already exists in the host"]
    );
}

#[test]
fn preflight_ignores_names_inside_nodes() {
    let lab = ring();
    let mut problems = Vec::new();
    preflight(&lab, &HashSet::from(["eth1".to_string()]), &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
}
