//! `vxlan-stitch` links: a VXLAN tunnel in the host, enslaved to a bridge of its own, with a veth
//! from that bridge to the node. The bridge and the tunnel are made one by one before the batch
//! (such links are few); the veth goes in the batch. A partition tunnel (`redirect`) has no
//! bridge: the tunnel and the veth's host end are joined by a two-way tc redirect after the batch.

use std::collections::HashMap;
use std::net::IpAddr;

use topology::{mac, Link, Mac};
use wire::netlink::{Handle, Vxlan};

use super::{host_link, Cx, Plan, Prereq};
use crate::error::{wire as wire_err, Result};
use crate::state::Entry;

/// Names of the host objects a vxlan-stitch link uses: (vxlan, bridge) beside the veth end.
pub fn stitch_names(host_iface: &str) -> (String, String) {
    let suffix = host_iface.trim_start_matches("vxs-");
    (format!("vxl-{suffix}"), format!("vxb-{suffix}"))
}

/// The tunnel's parameters.
pub(super) struct Tunnel<'a> {
    pub remote: IpAddr,
    pub vni: u32,
    pub port: u16,
    pub parent: Option<&'a str>,
    /// Joined to the veth by tc redirect rather than a bridge.
    pub redirect: bool,
}

/// The tunnel's MTU: the link's when it has no parent, so every frame the veth takes crosses the
/// bridge (the underlay fragments the outer packets); over a parent, the kernel's, which fits it.
fn tunnel_mtu(l: &Link, parent: Option<&str>) -> Option<u32> {
    if parent.is_some() {
        None
    } else {
        Cx::mtu(l)
    }
}

pub(super) fn plan(
    cx: &Cx<'_>,
    l: &Link,
    t: &Tunnel<'_>,
    host_iface: &str,
    host_mac: Mac,
    plan: &mut Plan,
) {
    let (vx, br) = stitch_names(host_iface);
    let vxlan_mac = mac::derive(&cx.lab.name, "host", &vx, 0);
    let bridge_mac = crate::wiring::bridge_node_mac(&br);
    plan.intents.push(host_link(&vx, vxlan_mac));
    if !t.redirect {
        plan.intents.push(Entry::Bridge {
            name: br.clone(),
            mac: bridge_mac.to_string(),
            shared: false,
        });
    }
    if let Some(p) = t.parent {
        plan.need(p, "vxlan parent interface");
    }
    plan.prereqs.push(Prereq::StitchBridge {
        bridge: (!t.redirect).then(|| (br.clone(), bridge_mac)),
        vxlan: vx.clone(),
        vxlan_mac,
        vni: t.vni,
        remote: t.remote,
        port: t.port,
        parent: t.parent.map(str::to_string),
        mtu: tunnel_mtu(l, t.parent),
    });
    if t.redirect {
        super::host::plan_host_veth(cx, l, host_iface, host_mac, None, plan);
        plan.redirects.push((vx, host_iface.to_string()));
    } else {
        super::host::plan_host_veth(cx, l, host_iface, host_mac, Some(&br), plan);
    }
}

/// Make the stitch's bridge and tunnel; the bridge's index joins `indexes` for the batch.
pub(super) fn make(
    p: &Prereq,
    host: &mut Handle,
    indexes: &mut HashMap<String, u32>,
) -> Result<()> {
    let Prereq::StitchBridge {
        bridge,
        vxlan,
        vxlan_mac,
        vni,
        remote,
        port,
        parent,
        mtu,
    } = p;
    let parent_idx = parent.as_ref().and_then(|p| indexes.get(p).copied());
    host.add_vxlan(&Vxlan {
        name: vxlan,
        vni: *vni,
        remote: *remote,
        local: None,
        dst_port: *port,
        parent: parent_idx,
        mtu: *mtu,
        mac: Some(vxlan_mac.0),
        netns: None,
        up: true,
        learning: true,
    })
    .map_err(wire_err(format!("create vxlan {vxlan}")))?;
    let Some((bridge, bridge_mac)) = bridge else {
        return Ok(());
    };
    let br_idx = host
        .add_bridge(bridge, None, Some(bridge_mac.0), true)
        .map_err(wire_err(format!("create stitch bridge {bridge}")))?;
    let vx_idx = super::host_index(host, vxlan, "vxlan")?;
    host.set_master(vx_idx, br_idx)
        .map_err(wire_err(format!("attach {vxlan} to {bridge}")))?;
    indexes.insert(bridge.clone(), br_idx);
    Ok(())
}
