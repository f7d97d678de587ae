//! `vxlan` links: a VXLAN tunnel interface born in the node, over an optional host parent.

use std::net::IpAddr;

use topology::Link;

use super::{Cx, Plan, Request};

pub(super) fn plan(
    cx: &Cx<'_>,
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
            node: cx.owner(&l.a.node),
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
