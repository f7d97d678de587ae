//! `host` links: a veth from a node to the host's namespace, its host end loose (no bridge).
//! The planning of every veth whose other end is in the host (host, mgmt-net, vxlan-stitch) is
//! here; those modules add only their master.

use std::collections::HashSet;

use topology::{Link, Mac};

use super::{host_link, Cx, End, Place, Plan, Request};

pub(super) fn plan(cx: &Cx<'_>, l: &Link, host_iface: &str, host_mac: Mac, plan: &mut Plan) {
    plan_host_veth(cx, l, host_iface, host_mac, None, plan);
}

/// A veth between the link's node and the host, the host end named `host_iface` and joining
/// bridge `master` when given.
pub(super) fn plan_host_veth(
    cx: &Cx<'_>,
    l: &Link,
    host_iface: &str,
    host_mac: Mac,
    master: Option<&str>,
    plan: &mut Plan,
) {
    let mtu = Cx::mtu(l);
    plan.intents.push(host_link(host_iface, host_mac));
    if let Some(alias) = &l.host_alias {
        plan.host_aliases
            .push((host_iface.to_string(), alias.clone()));
    }
    plan.requests.push((
        format!("{} link of {}:{}", l.peer.type_name(), l.a.node, l.a.iface),
        Request::Veth {
            first: End {
                name: host_iface.to_string(),
                place: Place::Host,
                mac: host_mac,
                mtu,
                master: master.map(str::to_string),
                ns_master: None,
                up: true,
                group: None,
            },
            second: End {
                name: l.a.iface.clone(),
                place: cx.place(&l.a.node),
                mac: l.a.mac,
                mtu,
                master: None,
                ns_master: None,
                up: false,
                group: None,
            },
        },
    ));
}

/// The host end's name must be free.
pub(super) fn preflight(
    l: &Link,
    host_iface: &str,
    host_links: &HashSet<String>,
    problems: &mut Vec<String>,
) {
    if host_links.contains(host_iface) {
        problems.push(format!(
            "link {}:{}: host interface {host_iface} already exists",
            l.a.node, l.a.iface
        ));
    }
}
