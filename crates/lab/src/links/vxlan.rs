//! `vxlan` links: a VXLAN tunnel interface born in the node, over an optional host parent.

use std::net::IpAddr;

use topology::Link;

use super::{Cx, Plan, Request};

pub(super) fn plan(
    l: &Link,
    remote: IpAddr,
    vni: u32,
    port: u16,
    parent: Option<&str>,
    plan: &mut Plan,
) {
    if let Some(p) = parent {
        plan.need(p, "vxlan parent interface");
    }
    plan.requests.push((
        format!("vxlan link of {}:{}", l.a.node, l.a.iface),
        Request::Vxlan {
            node: l.a.node.clone(),
            name: l.a.iface.clone(),
            vni,
            remote,
            port,
            parent: parent.map(str::to_string),
            mtu: Cx::mtu(l),
            mac: l.a.mac,
        },
    ));
}
