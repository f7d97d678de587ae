//! Day-2 operations on a running lab's links: impairments (delay, jitter, loss, corruption,
//! duplication, reorder, rate) applied where the traffic really passes, and link state (down/up
//! as a pulled cable). `tools netem` and `tools link` call it; deploy applies the topology's
//! `impairments` through it once the lab runs.
//!
//! Impairments go on the sending side of an endpoint: for nodes whose interfaces are their
//! namespace's (native, docker, podman) as tc netem/tbf on that interface, through netlink; for
//! VM nodes inside the guest, whose own kernel carries the traffic, with the guest's `tc`
//! through the guest agent. What is in force is kept in `impairments.json` in the lab's state
//! directory, which `tools netem show` reads. Every change is an event ([`crate::events`]).

use std::collections::BTreeMap;
use std::path::Path;

use runtime::Backends;
use topology::{Endpoint, Impairment, Lab, Link, Node, Peer};
use wire::netlink::{Handle, Shape};
use wire::NetNs;

use crate::error::{wire as wire_err, Error, Result};
use crate::events::{self, Event};
use crate::exec::{deployed, running};
use crate::paths;
use crate::state::Recorded;

/// The file of impairments in force, by endpoint (`node:interface`).
const IMPAIRMENTS_FILE: &str = "impairments.json";

/// Why netem is refused on this host's kernel, for every endpoint that needs it.
fn netem_missing(ep: &Endpoint) -> String {
    format!(
        "link endpoint {}: {} needs the tc netem qdisc, which the running kernel lacks (module sch_netem); a rate alone works (tbf), and VM nodes apply every impairment in their own kernel",
        ep.label(),
        ep.impairment.describe()
    )
}

/// Whether impairments of `node` are applied inside its guest (a VM's own kernel).
fn in_guest(backends: &Backends, node: &Node) -> bool {
    !backends.node(node).addresses_in_namespace()
}

/// Problems with the topology's impairments on this host, before anything is made: endpoints on
/// nodes that are not workloads, and netem on a kernel without it (probed once, in a throwaway
/// namespace, only when some namespace endpoint needs it).
pub fn preflight(lab: &Lab, backends: &Backends, problems: &mut Vec<String>) -> Result<()> {
    let mut needs_netem = Vec::new();
    for ep in lab.links.iter().flat_map(Link::endpoints) {
        if ep.impairment.is_none() {
            continue;
        }
        let Some(node) = lab.node(&ep.node) else {
            continue;
        };
        if !node.is_workload() {
            problems.push(format!(
                "link endpoint {}: impairments apply to nodes' interfaces, and {} is a {} node",
                ep.label(),
                node.name,
                node.kind
            ));
            continue;
        }
        if ep.impairment.needs_netem() && !in_guest(backends, node) {
            needs_netem.push(ep);
        }
    }
    if !needs_netem.is_empty()
        && !wire::netlink::kernel_has_netem().map_err(wire_err("probe the kernel for netem"))?
    {
        problems.extend(needs_netem.into_iter().map(netem_missing));
    }
    Ok(())
}

/// The link and the end of it that `node` and `iface` (the Linux name or the name the topology
/// wrote) name.
pub fn find_endpoint<'a>(
    lab: &'a Lab,
    node: &str,
    iface: &str,
) -> Result<(&'a Link, &'a Endpoint)> {
    let node = lab
        .nodes
        .iter()
        .find(|n| n.name == node || n.long_name == node)
        .ok_or_else(|| Error::NoSuchNode {
            lab: lab.name.clone(),
            node: node.to_string(),
        })?;
    let ends = lab.ends_of(&node.name);
    if let Some(&(l, e)) = ends
        .iter()
        .find(|(_, e)| e.iface == iface || e.written() == iface)
    {
        return Ok((l, e));
    }
    let known: Vec<&str> = ends.iter().map(|(_, e)| e.written()).collect();
    Err(Error::NoSuchLinkEnd {
        lab: lab.name.clone(),
        node: node.name.clone(),
        iface: iface.to_string(),
        known: if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        },
    })
}

/// The deployed lab with a node whose long (container) name is `long`.
pub fn lab_of_container(long: &str) -> Option<String> {
    crate::state::recorded_labs().into_iter().find(|name| {
        Recorded::read(&paths::lab_state_dir(name))
            .lab
            .is_some_and(|l| l.nodes.iter().any(|n| n.long_name == long))
    })
}

/// `node:iface` split, with a message naming the form.
pub fn parse_endpoint(s: &str) -> Result<(&str, &str)> {
    match s.split_once(':') {
        Some((n, i)) if !n.is_empty() && !i.is_empty() => Ok((n, i)),
        _ => Err(Error::BadEndpoint(s.to_string())),
    }
}

/// The node's network namespace, as registered under /run/netns.
fn node_netns(n: &Node) -> Result<NetNs> {
    NetNs::open(&Path::new(wire::netns::NETNS_RUN_DIR).join(&n.long_name)).map_err(wire_err(
        format!("open the network namespace of node {}", n.name),
    ))
}

/// A link's index in `ns` by name.
fn ifindex(h: &mut Handle, n: &Node, iface: &str) -> Result<u32> {
    h.link(iface)
        .map_err(wire_err(format!("look up {iface} in node {}", n.name)))?
        .map(|l| l.index)
        .ok_or_else(|| Error::MissingHostInterface {
            what: "interface",
            name: format!("{iface} (node {})", n.name),
        })
}

fn shape_of(imp: &Impairment) -> Shape {
    Shape {
        delay_ns: imp.delay_us.unwrap_or(0) * 1000,
        jitter_ns: imp.jitter_us.unwrap_or(0) * 1000,
        loss: imp.loss,
        corruption: imp.corruption,
        duplication: imp.duplication,
        reorder: imp.reorder,
        rate_bytes: imp.rate_kbit.map(|k| k * 1000 / 8),
    }
}

/// The guest's `tc` commands that give `iface` exactly `imp` (the modules loaded first: the
/// guest's kernel has them as modules on its modules disk).
pub fn guest_tc_command(iface: &str, imp: &Impairment) -> String {
    let dev = runtime::node::shell_quote(iface);
    let mut cmd = format!(
        "modprobe -q sch_netem 2>/dev/null; modprobe -q sch_tbf 2>/dev/null; tc qdisc del dev {dev} root 2>/dev/null; "
    );
    if imp.needs_netem() {
        let mut args = String::new();
        if let Some(d) = imp.delay_us {
            args.push_str(&format!(" delay {d}us"));
            if let Some(j) = imp.jitter_us {
                args.push_str(&format!(" {j}us"));
            }
        }
        for (k, v) in [
            ("loss", imp.loss),
            ("corrupt", imp.corruption),
            ("duplicate", imp.duplication),
            ("reorder", imp.reorder),
        ] {
            if let Some(p) = v {
                args.push_str(&format!(" {k} {p}%"));
            }
        }
        if let Some(r) = imp.rate_kbit {
            args.push_str(&format!(" rate {r}kbit"));
        }
        cmd.push_str(&format!(
            "tc qdisc add dev {dev} root handle 1: netem{args}"
        ));
    } else if let Some(r) = imp.rate_kbit {
        let burst = (r * 1000 / 8 / 10).max(32 * 1024);
        cmd.push_str(&format!(
            "tc qdisc add dev {dev} root handle 1: tbf rate {r}kbit burst {burst} latency 50ms"
        ));
    } else {
        cmd.push_str("true");
    }
    cmd
}

/// Give endpoint `ep` of node `n` exactly `imp` on its egress.
fn apply_one(
    lab: &Lab,
    rec: &Recorded,
    backends: &Backends,
    n: &Node,
    ep: &Endpoint,
    imp: &Impairment,
) -> Result<()> {
    if in_guest(backends, n) {
        let init = runtime::node::init_path()?;
        let node = running(lab, rec, n, &init)?;
        let out = backends
            .node(n)
            .exec(&node, &guest_tc_command(&ep.iface, imp))?;
        if out.code != 0 {
            return Err(Error::Path(format!(
                "set the impairments of {} in its guest: tc exited {}: {}",
                ep.label(),
                out.code,
                out.stderr.trim()
            )));
        }
        return Ok(());
    }
    let ns = node_netns(n)?;
    let mut h =
        Handle::in_netns(&ns).map_err(wire_err(format!("open netlink in node {}", n.name)))?;
    let index = ifindex(&mut h, n, &ep.iface)?;
    h.shape(index, &shape_of(imp))
        .map_err(wire_err(format!("set the impairments of {}", ep.label())))
}

fn read_recorded(name: &str) -> BTreeMap<String, Impairment> {
    std::fs::read(paths::lab_state_dir(name).join(IMPAIRMENTS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_recorded(name: &str, all: &BTreeMap<String, Impairment>) -> Result<()> {
    let data = serde_json::to_vec_pretty(all).expect("impairments serialise");
    crate::state::write_private(&paths::lab_state_dir(name), IMPAIRMENTS_FILE, &data)
}

/// Apply the topology's impairments to a lab that was just deployed (its lock is held). `made`,
/// for a converging deploy, names the links it made (indexes into `lab.links`): only those get
/// the topology's impairments, and the links that kept running keep theirs as they are in force
/// (a `tools netem set` included).
pub fn apply_deployed(lab: &Lab, backends: &Backends, made: Option<&[usize]>) -> Result<()> {
    let links: Vec<&Link> = match made {
        Some(made) => made.iter().filter_map(|i| lab.links.get(*i)).collect(),
        None => lab.links.iter().collect(),
    };
    let made_ends: Vec<&Endpoint> = links.into_iter().flat_map(Link::endpoints).collect();
    let eps: Vec<&Endpoint> = made_ends
        .iter()
        .copied()
        .filter(|e| !e.impairment.is_none())
        .collect();
    let mut all = BTreeMap::new();
    if made.is_some() {
        // What stays in force: the recorded impairments of the ends of links that kept running
        // (a link made again starts bare).
        let before = read_recorded(&lab.name);
        if before.is_empty() && eps.is_empty() {
            return Ok(());
        }
        let remade: std::collections::HashSet<String> =
            made_ends.iter().map(|e| e.label()).collect();
        let ends: std::collections::HashSet<String> = lab
            .links
            .iter()
            .flat_map(Link::endpoints)
            .map(Endpoint::label)
            .collect();
        all.extend(
            before
                .into_iter()
                .filter(|(ep, _)| ends.contains(ep) && !remade.contains(ep)),
        );
    } else if eps.is_empty() {
        return Ok(());
    }
    if eps.is_empty() {
        return write_recorded(&lab.name, &all);
    }
    let rec = Recorded::read(&paths::lab_state_dir(&lab.name));
    for ep in eps {
        let Some(n) = lab.node(&ep.node) else {
            continue;
        };
        apply_one(lab, &rec, backends, n, ep, &ep.impairment)?;
        all.insert(ep.label(), ep.impairment.clone());
        events::emit(
            &lab.name,
            Event::ImpairmentChanged {
                endpoint: ep.label(),
                impairment: ep.impairment.clone(),
            },
        );
    }
    write_recorded(&lab.name, &all)
}

/// `tools netem set`: give endpoint `node:iface` of lab `name` exactly `imp` (an empty one is a
/// reset). Returns the endpoint as `node:interface`.
pub fn set(name: &str, node: &str, iface: &str, imp: &Impairment) -> Result<String> {
    if let Some(p) = imp.problem() {
        return Err(Error::Path(p.to_string()));
    }
    let _lock = crate::lock::Lock::lab_wait(name, std::time::Duration::from_secs(30))?;
    let (lab, rec) = deployed(name)?;
    let (_, ep) = find_endpoint(&lab, node, iface)?;
    let n = lab.node(&ep.node).expect("endpoint of a node of the lab");
    let backends = Backends::new();
    if imp.needs_netem()
        && !in_guest(&backends, n)
        && !wire::netlink::kernel_has_netem().map_err(wire_err("probe the kernel for netem"))?
    {
        let mut e = ep.clone();
        e.impairment = imp.clone();
        return Err(Error::Path(netem_missing(&e)));
    }
    apply_one(&lab, &rec, &backends, n, ep, imp)?;
    let mut all = read_recorded(name);
    if imp.is_none() {
        all.remove(&ep.label());
    } else {
        all.insert(ep.label(), imp.clone());
    }
    write_recorded(name, &all)?;
    events::emit(
        name,
        Event::ImpairmentChanged {
            endpoint: ep.label(),
            impairment: imp.clone(),
        },
    );
    Ok(ep.label())
}

/// `tools netem show`: every link endpoint of `node` (all nodes when `None`) with the
/// impairment in force, in link order.
pub fn show(name: &str, node: Option<&str>) -> Result<Vec<(String, Impairment)>> {
    let (lab, _) = deployed(name)?;
    if let Some(x) = node {
        if !lab.nodes.iter().any(|n| n.name == x || n.long_name == x) {
            return Err(Error::NoSuchNode {
                lab: name.to_string(),
                node: x.to_string(),
            });
        }
    }
    let all = read_recorded(name);
    let mut out = Vec::new();
    for ep in lab.links.iter().flat_map(Link::endpoints) {
        let keep = node.is_none_or(|x| {
            lab.node(&ep.node)
                .is_some_and(|n| n.name == x || n.long_name == x)
        });
        if keep {
            let label = ep.label();
            let imp = all.get(&label).cloned().unwrap_or_default();
            out.push((label, imp));
        }
    }
    Ok(out)
}

/// `tools link down|up`: take the link of endpoint `node:iface` down (`up` false) or bring it
/// back, as a pulled and replugged cable: both ends lose (regain) carrier. Each node end's
/// interface in its namespace goes down (a veth's peer then loses carrier too); a VM end's guest
/// NIC loses carrier through its VMM; a host end (host and mgmt-net links) goes down in the
/// host. Returns the endpoint and its peer as written.
pub fn set_link_state(
    name: &str,
    node: &str,
    iface: &str,
    up: bool,
) -> Result<(String, Option<String>)> {
    let _lock = crate::lock::Lock::lab_wait(name, std::time::Duration::from_secs(30))?;
    let (lab, rec) = deployed(name)?;
    let (link, ep) = find_endpoint(&lab, node, iface)?;
    let backends = Backends::new();
    let init = runtime::node::init_path()?;
    let verb = if up { "up" } else { "down" };
    for e in link.endpoints() {
        let n = lab.node(&e.node).expect("endpoint of a node of the lab");
        if !n.is_workload() {
            continue;
        }
        let ns = node_netns(n)?;
        let mut h =
            Handle::in_netns(&ns).map_err(wire_err(format!("open netlink in node {}", n.name)))?;
        let index = ifindex(&mut h, n, &e.iface)?;
        let op = wire_err(format!("set {} {verb}", e.label()));
        if up {
            h.set_up(index).map_err(op)?;
        } else {
            h.set_down(index).map_err(op)?;
        }
        let node = running(&lab, &rec, n, &init)?;
        backends.node(n).set_carrier(&node, &e.iface, up)?;
    }
    let host_end = match &link.peer {
        Peer::Host { host_iface, .. } | Peer::MgmtNet { host_iface, .. } => Some(host_iface),
        Peer::VxlanStitch { host_iface, .. } => Some(host_iface),
        _ => None,
    };
    if let Some(hi) = host_end {
        let mut h = Handle::new().map_err(wire_err("open netlink"))?;
        if let Some(l) = h
            .link(hi)
            .map_err(wire_err(format!("look up host interface {hi}")))?
        {
            let op = wire_err(format!("set host interface {hi} {verb}"));
            if up {
                h.set_up(l.index).map_err(op)?;
            } else {
                h.set_down(l.index).map_err(op)?;
            }
        }
    }
    let endpoint = ep.label();
    let peer = link
        .endpoints()
        .find(|e| e.label() != endpoint)
        .map(Endpoint::label)
        .or_else(|| host_end.map(|h| format!("host:{h}")));
    let event = if up {
        Event::LinkUp {
            endpoint: endpoint.clone(),
            peer: peer.clone(),
        }
    } else {
        Event::LinkDown {
            endpoint: endpoint.clone(),
            peer: peer.clone(),
        }
    };
    events::emit(name, event);
    Ok((endpoint, peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_commands_say_what_tc_takes() {
        let mut imp = Impairment::default();
        imp.set("delay", "100ms").unwrap();
        imp.set("loss", "20%").unwrap();
        let c = guest_tc_command("swp1", &imp);
        assert!(
            c.ends_with("tc qdisc add dev swp1 root handle 1: netem delay 100000us loss 20%"),
            "{c}"
        );
        let mut rate = Impairment::default();
        rate.set("rate", "1Mbit").unwrap();
        assert!(
            guest_tc_command("eth1", &rate).ends_with("tbf rate 1000kbit burst 32768 latency 50ms")
        );
        assert!(guest_tc_command("eth1", &Impairment::default()).ends_with("; true"));
    }
}
