//! `dummy` links: a dummy interface born in the node (the running kernel is probed for the link
//! type before a lab using it is deployed).

use topology::Link;

use super::{Cx, Plan, Request};

pub(super) fn plan(cx: &Cx<'_>, l: &Link, plan: &mut Plan) {
    plan.requests.push((
        format!("dummy link of {}:{}", l.a.node, l.a.iface),
        Request::Dummy {
            node: cx.owner(&l.a.node),
            name: l.a.iface.clone(),
            mtu: Cx::mtu(l),
            mac: l.a.mac,
        },
    ));
}
