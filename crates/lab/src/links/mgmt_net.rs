//! Management links: each bridged node's `eth0`, a veth whose host end joins the management
//! bridge, and `mgmt-net` links, the same with a host end named by the topology.

use topology::{mac, Link, Mac, Node};

use super::{host_link, Cx, End, Place, Plan, Request};

/// Host-side name of a node's management veth end: `lw` + 8 hex digits of (lab, node).
pub fn mgmt_host_end(lab: &str, node: &str) -> String {
    format!("lw{:08x}", mac::hash64(&[lab, node, "mgmt"]) as u32)
}

/// The MAC of a node's management veth end in the host.
pub fn mgmt_host_mac(lab: &str, node: &str) -> Mac {
    mac::derive(lab, "host", &mgmt_host_end(lab, node), 0)
}

const BRIDGE: &str = "management bridge";

/// A node's management `eth0`, its host end a port of `bridge` (the management bridge or one of
/// its leaves, see [`crate::mgmt_fabric`]) in interface group `group`.
pub(super) fn plan_node(cx: &Cx<'_>, n: &Node, bridge: &str, group: Option<u32>, plan: &mut Plan) {
    let lab = cx.lab;
    let host_end = mgmt_host_end(&lab.name, &n.name);
    let host_mac = mgmt_host_mac(&lab.name, &n.name);
    plan.intents.push(host_link(&host_end, host_mac));
    plan.need(bridge, BRIDGE);
    plan.requests.push((
        format!("management interface eth0 of node {}", n.name),
        Request::Veth {
            first: End {
                name: host_end,
                place: Place::Host,
                mac: host_mac,
                mtu: Some(lab.mgmt.mtu),
                master: Some(bridge.to_string()),
                ns_master: None,
                up: true,
                group,
            },
            second: End {
                name: "eth0".into(),
                place: Place::Node(n.name.clone()),
                mac: n.mgmt_mac,
                mtu: Some(lab.mgmt.mtu),
                master: None,
                ns_master: None,
                up: false,
                group: None,
            },
        },
    ));
}

/// A `mgmt-net` link: a veth from the node to the management bridge.
pub(super) fn plan(cx: &Cx<'_>, l: &Link, host_iface: &str, host_mac: Mac, plan: &mut Plan) {
    plan.need(&cx.lab.mgmt.bridge, BRIDGE);
    super::host::plan_host_veth(cx, l, host_iface, host_mac, Some(&cx.lab.mgmt.bridge), plan);
}
