//! `veth` links between two nodes, each end born in its node's namespace; an end on a `bridge`
//! node joins that bridge in the host, an end on the `host` node stays loose in the host.

use std::collections::HashSet;

use topology::{Endpoint, KindClass, Link};

use super::{host_link, Cx, End, Place, Plan, Request};

pub(super) fn plan(cx: &Cx<'_>, l: &Link, b: &Endpoint, plan: &mut Plan) {
    for ep in [&l.a, b] {
        if let Some(class) = cx.in_host(&ep.node) {
            plan.intents.push(host_link(&ep.iface, ep.mac));
            if let Some(alias) = &ep.alias {
                plan.host_aliases.push((ep.iface.clone(), alias.clone()));
            }
            if class == KindClass::Bridge {
                plan.need(&ep.node, "bridge");
            }
        }
    }
    // The host side (bridge or host node) goes first: only the first end can take a master.
    let (first, second) = if cx.in_host(&b.node).is_some() {
        (b, &l.a)
    } else {
        (&l.a, b)
    };
    let first_host = cx.in_host(&first.node);
    let mtu = Cx::mtu(l);
    // An end on a bridge inside a node's namespace is that bridge's port.
    let first_ns_master = match first_host {
        Some(_) => None,
        None => cx.ns_master(&first.node, plan),
    };
    let second_ns_master = cx.ns_master(&second.node, plan);
    plan.requests.push((
        format!("link {}:{} — {}:{}", l.a.node, l.a.iface, b.node, b.iface),
        Request::Veth {
            first: End {
                name: first.iface.clone(),
                place: match first_host {
                    Some(_) => Place::Host,
                    None => cx.place(&first.node),
                },
                mac: first.mac,
                mtu,
                master: (first_host == Some(KindClass::Bridge)).then(|| first.node.clone()),
                ns_master: first_ns_master,
                up: true,
                group: None,
            },
            second: End {
                name: second.iface.clone(),
                place: cx.place(&second.node),
                mac: second.mac,
                mtu,
                master: None,
                up: second_ns_master.is_some(),
                ns_master: second_ns_master,
                group: None,
            },
        },
    ));
}

/// An end in the host must have a free name there.
pub(super) fn preflight(
    cx: &Cx<'_>,
    l: &Link,
    b: &Endpoint,
    host_links: &HashSet<String>,
    problems: &mut Vec<String>,
) {
    for ep in [&l.a, b] {
        if cx.in_host(&ep.node).is_some() && host_links.contains(&ep.iface) {
            problems.push(format!(
                "link end {}:{}: an interface {} already exists in the host",
                ep.node, ep.iface, ep.iface
            ));
        }
    }
}
