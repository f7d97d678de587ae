//! `macvlan` links: a macvlan on a host interface (or a `bridge` node), born in the node.

use std::collections::HashSet;

use topology::{KindClass, Link, MacvlanMode};
use wire::netlink::MacvlanMode as Mode;

use super::{Cx, Plan, Request};

pub(super) fn plan(cx: &Cx<'_>, l: &Link, parent: &str, mode: MacvlanMode, plan: &mut Plan) {
    plan.need(parent, "macvlan parent interface");
    plan.requests.push((
        format!("macvlan link of {}:{}", l.a.node, l.a.iface),
        Request::Macvlan {
            node: cx.owner(&l.a.node),
            name: l.a.iface.clone(),
            parent: parent.to_string(),
            mode: match mode {
                MacvlanMode::Private => Mode::Private,
                MacvlanMode::Vepa => Mode::Vepa,
                MacvlanMode::Bridge => Mode::Bridge,
                MacvlanMode::Passthru => Mode::Passthru,
                MacvlanMode::Source => Mode::Source,
            },
            mtu: Cx::mtu(l),
            mac: l.a.mac,
        },
    ));
}

/// The parent must exist in the host (or be one of the lab's bridges, made before the links).
pub(super) fn preflight(
    cx: &Cx<'_>,
    l: &Link,
    parent: &str,
    host_links: &HashSet<String>,
    problems: &mut Vec<String>,
) {
    let lab_bridge = cx
        .lab
        .node(parent)
        .is_some_and(|n| n.class == KindClass::Bridge);
    if !lab_bridge && !host_links.contains(parent) {
        problems.push(format!(
            "link {}:{}: macvlan parent interface {parent} does not exist in the host",
            l.a.node, l.a.iface
        ));
    }
}
