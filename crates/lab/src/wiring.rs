//! Turning the lab's links into kernel objects: every veth born with both ends in their target
//! namespaces through one batched host netlink socket, then each node's interfaces brought up and
//! addressed through a socket inside that node.
//!
//! Owns the names and MACs of host-side objects (management veth ends, stitch bridges) and the
//! decision of which end of a link lives where. It records every host object in the journal before
//! making it. It never starts processes.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

use topology::{mac, KindClass, Lab, Link, Mac, NetworkMode, Node, Peer};
use wire::netlink::{Handle, Macvlan, MacvlanMode, VethEnd, Vxlan};
use wire::NetNs;

use crate::error::{wire as wire_err, Error, Result};
use crate::state::{Entry, Journal};

/// Host-side name of a node's management veth end: `lw` + 8 hex digits of (lab, node).
pub fn mgmt_host_end(lab: &str, node: &str) -> String {
    format!("lw{:08x}", mac::hash64(&[lab, node, "mgmt"]) as u32)
}

pub fn mgmt_host_mac(lab: &str, node: &str) -> Mac {
    mac::derive(lab, "host", &mgmt_host_end(lab, node), 0)
}

/// The management bridge's MAC depends only on the network, so every lab sharing it agrees.
pub fn mgmt_bridge_mac(lab: &Lab) -> Mac {
    mac::derive("mgmt", &lab.mgmt.network, &lab.mgmt.bridge, 0)
}

pub fn bridge_node_mac(bridge: &str) -> Mac {
    mac::derive("bridge", bridge, bridge, 0)
}

/// Names of the host objects a vxlan-stitch link uses: (vxlan, bridge) beside the veth end.
pub fn stitch_names(host_iface: &str) -> (String, String) {
    let suffix = host_iface.trim_start_matches("vxs-");
    (format!("vxl-{suffix}"), format!("vxb-{suffix}"))
}

fn mac_str(m: Mac) -> String {
    m.to_string()
}

/// A node's network namespace as the wiring sees it.
pub struct NodeNet<'a> {
    pub ns: &'a NetNs,
}

/// Is this node's side of a link in the host (a `bridge` or `host` kind node)?
fn in_host(lab: &Lab, node: &str) -> Option<KindClass> {
    lab.node(node).filter(|n| n.in_host()).map(|n| n.class)
}

/// The node whose namespace holds `node`'s link ends: itself, or for a bridge inside another
/// node's namespace (`br|ns`), that node.
fn netns_owner<'l>(lab: &'l Lab, node: &'l str) -> &'l str {
    lab.node(node)
        .and_then(|n| n.netns_bridge())
        .map_or(node, |(_, owner)| owner)
}

/// Make every bridge that lives inside one of `owners`' namespaces (`br|ns` nodes), up; their
/// ifindexes by bridge node name. They go with the namespace, so nothing is journaled.
pub fn ensure_netns_bridges(
    lab: &Lab,
    owners: &HashSet<&str>,
    nets: &HashMap<String, &NetNs>,
) -> Result<HashMap<String, u32>> {
    let mut out = HashMap::new();
    for n in &lab.nodes {
        let Some((bridge, owner)) = n.netns_bridge() else {
            continue;
        };
        if !owners.contains(owner) {
            continue;
        }
        let ns = nets
            .get(owner)
            .ok_or_else(|| Error::Invalid(format!("node {owner} has no network namespace")))?;
        let op = |what: &str| format!("{what} bridge {bridge} in node {owner}");
        let mut h = Handle::in_netns(ns).map_err(wire_err(op("open netlink for")))?;
        let index = match h.link(bridge).map_err(wire_err(op("look up")))? {
            Some(l) if l.kind.as_deref() == Some("bridge") => l.index,
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "node {}: interface {bridge} in node {owner} exists and is not a bridge",
                    n.name
                )))
            }
            None => h
                .add_bridge(bridge, None, Some(bridge_node_mac(&n.name).0), true)
                .map_err(wire_err(op("create")))?,
        };
        out.insert(n.name.clone(), index);
    }
    Ok(out)
}

fn host_index(host: &mut Handle, name: &str, what: &str) -> Result<u32> {
    match host
        .link(name)
        .map_err(wire_err(format!("look up {what} {name}")))?
    {
        Some(l) => Ok(l.index),
        None => Err(Error::Invalid(format!(
            "{what} {name} does not exist in the host"
        ))),
    }
}

/// Create the given links and the management veths of `mgmt_nodes` with one batch on the host
/// socket. `nets` maps node names to their namespaces.
pub fn create_links(
    lab: &Lab,
    links: &[&Link],
    mgmt_nodes: &[&Node],
    nets: &HashMap<String, &NetNs>,
    host: &mut Handle,
    journal: &Journal,
) -> Result<()> {
    let fd = |node: &str| -> Result<BorrowedFd<'_>> {
        nets.get(netns_owner(lab, node))
            .map(|n| n.fd())
            .ok_or_else(|| Error::Invalid(format!("node {node} has no network namespace")))
    };
    // 1. Record every host object first.
    let mut intents = Vec::new();
    for n in mgmt_nodes {
        intents.push(Entry::HostLink {
            name: mgmt_host_end(&lab.name, &n.name),
            mac: mac_str(mgmt_host_mac(&lab.name, &n.name)),
        });
    }
    for l in links {
        match &l.peer {
            Peer::Veth { b } => {
                for ep in [&l.a, b] {
                    if in_host(lab, &ep.node).is_some() {
                        intents.push(Entry::HostLink {
                            name: ep.iface.clone(),
                            mac: mac_str(ep.mac),
                        });
                    }
                }
            }
            Peer::Host {
                host_iface,
                host_mac,
            }
            | Peer::MgmtNet {
                host_iface,
                host_mac,
            } => intents.push(Entry::HostLink {
                name: host_iface.clone(),
                mac: mac_str(*host_mac),
            }),
            Peer::VxlanStitch {
                host_iface,
                host_mac,
                ..
            } => {
                let (vx, br) = stitch_names(host_iface);
                intents.push(Entry::HostLink {
                    name: host_iface.clone(),
                    mac: mac_str(*host_mac),
                });
                intents.push(Entry::HostLink {
                    name: vx.clone(),
                    mac: mac_str(mac::derive(&lab.name, "host", &vx, 0)),
                });
                intents.push(Entry::Bridge {
                    name: br.clone(),
                    mac: mac_str(bridge_node_mac(&br)),
                    shared: false,
                });
            }
            _ => {}
        }
    }
    journal.record(&intents)?;
    wait_out_stale_host_links(host, &intents)?;

    // 2. Host indexes needed as masters or parents.
    let mut indexes: HashMap<String, u32> = HashMap::new();
    fn need(
        indexes: &mut HashMap<String, u32>,
        name: &str,
        what: &str,
        host: &mut Handle,
    ) -> Result<u32> {
        if let Some(i) = indexes.get(name) {
            return Ok(*i);
        }
        let i = host_index(host, name, what)?;
        indexes.insert(name.to_string(), i);
        Ok(i)
    }
    let mgmt_br =
        if mgmt_nodes.is_empty() && !links.iter().any(|l| matches!(l.peer, Peer::MgmtNet { .. })) {
            None
        } else {
            Some(need(
                &mut indexes,
                &lab.mgmt.bridge,
                "management bridge",
                host,
            )?)
        };
    // vxlan-stitch: its bridge and vxlan are made one by one before the batch (rare links).
    for l in links {
        if let Peer::VxlanStitch {
            remote,
            vni,
            udp_port,
            parent,
            host_iface,
            ..
        } = &l.peer
        {
            let (vx, br) = stitch_names(host_iface);
            let br_idx = host
                .add_bridge(&br, None, Some(bridge_node_mac(&br).0), true)
                .map_err(wire_err(format!("create stitch bridge {br}")))?;
            let parent_idx = match parent {
                Some(p) => Some(need(&mut indexes, p, "vxlan parent interface", host)?),
                None => None,
            };
            host.add_vxlan(&Vxlan {
                name: &vx,
                vni: *vni,
                remote: *remote,
                local: None,
                dst_port: *udp_port,
                parent: parent_idx,
                mtu: None,
                mac: Some(mac::derive(&lab.name, "host", &vx, 0).0),
                netns: None,
                up: true,
                learning: true,
            })
            .map_err(wire_err(format!("create vxlan {vx}")))?;
            let vx_idx = host_index(host, &vx, "vxlan")?;
            host.set_master(vx_idx, br_idx)
                .map_err(wire_err(format!("attach {vx} to {br}")))?;
            indexes.insert(br.clone(), br_idx);
        }
    }
    let owners: HashSet<&str> = links
        .iter()
        .flat_map(|l| l.endpoints())
        .filter_map(|e| lab.node(&e.node).and_then(|n| n.netns_bridge()))
        .map(|(_, owner)| owner)
        .collect();
    let ns_bridges = if owners.is_empty() {
        HashMap::new()
    } else {
        ensure_netns_bridges(lab, &owners, nets)?
    };
    let mut parents: HashMap<String, u32> = HashMap::new();
    for l in links {
        match &l.peer {
            Peer::Macvlan { parent, .. } => {
                parents.insert(
                    parent.clone(),
                    need(&mut indexes, parent, "macvlan parent interface", host)?,
                );
            }
            Peer::Vxlan {
                parent: Some(p), ..
            } => {
                parents.insert(
                    p.clone(),
                    need(&mut indexes, p, "vxlan parent interface", host)?,
                );
            }
            Peer::Veth { b } => {
                for ep in [&l.a, b] {
                    if in_host(lab, &ep.node) == Some(KindClass::Bridge) {
                        parents.insert(
                            ep.node.clone(),
                            need(&mut indexes, &ep.node, "bridge", host)?,
                        );
                    }
                }
            }
            _ => {}
        }
    }

    // 3. One batch; `what` names each request for error messages.
    let mut what: Vec<String> = Vec::new();
    let mut batch = host.batch();
    for n in mgmt_nodes {
        what.push(format!("management interface eth0 of node {}", n.name));
        let host_end = mgmt_host_end(&lab.name, &n.name);
        batch.add_veth(
            &VethEnd {
                name: &host_end,
                netns: None,
                mac: Some(mgmt_host_mac(&lab.name, &n.name).0),
                mtu: Some(lab.mgmt.mtu),
                master: mgmt_br,
                up: true,
            },
            &VethEnd {
                name: "eth0",
                netns: Some(fd(&n.name)?),
                mac: Some(n.mgmt_mac.0),
                mtu: Some(lab.mgmt.mtu),
                master: None,
                up: false,
            },
        );
    }
    for l in links {
        let mtu = (l.mtu > 0).then_some(l.mtu);
        what.push(match &l.peer {
            Peer::Veth { b } => format!("link {}:{} — {}:{}", l.a.node, l.a.iface, b.node, b.iface),
            p => format!("{} link of {}:{}", p.type_name(), l.a.node, l.a.iface),
        });
        match &l.peer {
            Peer::Veth { b } => {
                // The host side (bridge or host node) goes first: only the first end can take a master.
                let (first, second) = if in_host(lab, &b.node).is_some() {
                    (b, &l.a)
                } else {
                    (&l.a, b)
                };
                let first_host = in_host(lab, &first.node);
                let first_end = VethEnd {
                    name: &first.iface,
                    netns: if first_host.is_some() {
                        None
                    } else {
                        Some(fd(&first.node)?)
                    },
                    mac: Some(first.mac.0),
                    mtu,
                    master: if first_host == Some(KindClass::Bridge) {
                        parents.get(&first.node).copied()
                    } else {
                        ns_bridges.get(&first.node).copied()
                    },
                    up: true,
                };
                // An end on a bridge inside a node's namespace is that bridge's port.
                let second_master = ns_bridges.get(&second.node).copied();
                let second_end = VethEnd {
                    name: &second.iface,
                    netns: Some(fd(&second.node)?),
                    mac: Some(second.mac.0),
                    mtu,
                    master: second_master,
                    up: second_master.is_some(),
                };
                batch.add_veth(&first_end, &second_end);
            }
            // A veth whose other end is in the host: loose (host), on the management bridge, or
            // on the vxlan stitch's bridge.
            Peer::Host {
                host_iface,
                host_mac,
            }
            | Peer::MgmtNet {
                host_iface,
                host_mac,
            }
            | Peer::VxlanStitch {
                host_iface,
                host_mac,
                ..
            } => {
                let master = match &l.peer {
                    Peer::MgmtNet { .. } => mgmt_br,
                    Peer::VxlanStitch { .. } => indexes.get(&stitch_names(host_iface).1).copied(),
                    _ => None,
                };
                batch.add_veth(
                    &VethEnd {
                        name: host_iface,
                        netns: None,
                        mac: Some(host_mac.0),
                        mtu,
                        master,
                        up: true,
                    },
                    &VethEnd {
                        name: &l.a.iface,
                        netns: Some(fd(&l.a.node)?),
                        mac: Some(l.a.mac.0),
                        mtu,
                        master: None,
                        up: false,
                    },
                );
            }
            Peer::Macvlan { parent, mode } => {
                batch.add_macvlan(&Macvlan {
                    name: &l.a.iface,
                    parent: parents[parent],
                    mode: match mode {
                        topology::MacvlanMode::Private => MacvlanMode::Private,
                        topology::MacvlanMode::Vepa => MacvlanMode::Vepa,
                        topology::MacvlanMode::Bridge => MacvlanMode::Bridge,
                        topology::MacvlanMode::Passthru => MacvlanMode::Passthru,
                        topology::MacvlanMode::Source => MacvlanMode::Source,
                    },
                    mtu,
                    mac: Some(l.a.mac.0),
                    netns: Some(fd(&l.a.node)?),
                    up: false,
                });
            }
            Peer::Vxlan {
                remote,
                vni,
                udp_port,
                parent,
            } => {
                batch.add_vxlan(&Vxlan {
                    name: &l.a.iface,
                    vni: *vni,
                    remote: *remote,
                    local: None,
                    dst_port: *udp_port,
                    parent: parent.as_ref().map(|p| parents[p]),
                    mtu,
                    mac: Some(l.a.mac.0),
                    netns: Some(fd(&l.a.node)?),
                    up: false,
                    learning: true,
                });
            }
            Peer::Dummy => {
                batch.add_dummy(
                    &l.a.iface,
                    mtu,
                    Some(l.a.mac.0),
                    Some(fd(&l.a.node)?),
                    false,
                );
            }
        }
    }
    let committed = batch.commit().map_err(|e| match e.innermost() {
        wire::Error::KernelLacks { kind } => Error::Invalid(format!(
            "the running kernel lacks the \"{kind}\" link type, which this topology uses (load its module, e.g. `modprobe {kind}`, or change the link type)"
        )),
        _ => match e {
            wire::Error::Batch { index, error, .. } => Error::Wire {
                op: what.get(index).cloned().unwrap_or_else(|| "create links".into()),
                source: *error,
            },
            e => Error::Wire {
                op: "create links".into(),
                source: e,
            },
        },
    });
    committed?;
    name_host_ends(lab, links, host)
}

/// Written names of host-side ends (bridge ports, `host` and `mgmt-net` links) that Linux could
/// not take: kept on the interface as its alias and alternative name, as for node ends.
fn name_host_ends(lab: &Lab, links: &[&Link], host: &mut Handle) -> Result<()> {
    let mut named: Vec<(&str, &str)> = Vec::new();
    for l in links {
        match &l.peer {
            Peer::Veth { b } => {
                for ep in [&l.a, b] {
                    if let (Some(alias), Some(_)) = (&ep.alias, in_host(lab, &ep.node)) {
                        named.push((&ep.iface, alias));
                    }
                }
            }
            Peer::Host { host_iface, .. } | Peer::MgmtNet { host_iface, .. } => {
                if let Some(alias) = &l.host_alias {
                    named.push((host_iface, alias));
                }
            }
            _ => {}
        }
    }
    if named.is_empty() {
        return Ok(());
    }
    let index: HashMap<String, u32> = host
        .links()
        .map_err(wire_err("list host links"))?
        .into_iter()
        .map(|l| (l.name, l.index))
        .collect();
    let mut b = host.batch();
    for (name, alias) in named {
        if let Some(&i) = index.get(name) {
            keep_written_name(&mut b, i, name, alias);
        }
    }
    b.commit().map_err(wire_err("name host interfaces"))
}

/// The written name on interface `index` (Linux name `linux`): its alias, and its alternative
/// name (made valid: `/` and white space become `-`) so `ip link show <written>` finds it.
fn keep_written_name(b: &mut wire::Batch<'_>, index: u32, linux: &str, written: &str) {
    b.set_alias(index, written);
    if let Some(alt) = topology::ifname::altname(written).filter(|a| a != linux) {
        b.add_altname(index, &alt);
    }
}

/// A host link labwire is about to create may still exist from this lab's previous life: the kernel
/// frees a destroyed namespace's veths in the background. Wait for those (same name and MAC) to go;
/// a same-named interface with another MAC is someone else's and an error.
fn wait_out_stale_host_links(host: &mut Handle, intents: &[Entry]) -> Result<()> {
    let wanted: HashMap<&str, &str> = intents
        .iter()
        .filter_map(|e| match e {
            Entry::HostLink { name, mac } => Some((name.as_str(), mac.as_str())),
            _ => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut stale = 0;
        for l in host.links().map_err(wire_err("list host links"))? {
            let Some(mac) = wanted.get(l.name.as_str()) else {
                continue;
            };
            let ours = l.mac.map(|m| wire::netlink::format_mac(&m)).as_deref() == Some(*mac);
            if !ours {
                return Err(Error::Invalid(format!(
                    "host interface {} already exists and is not one labwire made for this lab",
                    l.name
                )));
            }
            stale += 1;
        }
        if stale == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Invalid(format!(
                "{stale} host interfaces of this lab's previous deploy are still being freed by the kernel after 30 s"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// What one node's namespace needs after its links exist.
pub struct NodeConfig<'a> {
    pub node: &'a Node,
    /// The node's link endpoints (for their addresses).
    pub endpoints: &'a [&'a topology::Endpoint],
    /// Management addressing and routes (once per node).
    pub base: bool,
    /// Whether addresses and routes go on the namespace's interfaces (not for VM nodes, whose
    /// guest holds them).
    pub addresses: bool,
}

/// Bring every interface of the node up and apply its addresses (and, with `base`, the management
/// address and default routes).
pub fn configure_node(lab: &Lab, cfg: &NodeConfig<'_>, ns: &NetNs, home: &NetNs) -> Result<()> {
    let node = cfg.node;
    let op = |what: &str| format!("{what} in node {}", node.name);
    let mut h = Handle::in_netns_from(ns, home).map_err(wire_err(op("open netlink")))?;
    let links = h.links().map_err(wire_err(op("list interfaces")))?;
    let index: HashMap<&str, u32> = links.iter().map(|l| (l.name.as_str(), l.index)).collect();
    let mut addrs: Vec<(u32, IpAddr, u8)> = Vec::new();
    if cfg.addresses {
        for ep in cfg.endpoints {
            if let Some(&i) = index.get(ep.iface.as_str()) {
                if let Some(n) = ep.ipv4 {
                    addrs.push((i, IpAddr::V4(n.addr()), n.prefix_len()));
                }
                if let Some(n) = ep.ipv6 {
                    addrs.push((i, IpAddr::V6(n.addr()), n.prefix_len()));
                }
            }
        }
    }
    let mut b = h.batch();
    for ep in cfg.endpoints {
        if let (Some(alias), Some(&i)) = (&ep.alias, index.get(ep.iface.as_str())) {
            keep_written_name(&mut b, i, &ep.iface, alias);
        }
    }
    for l in links.iter().filter(|l| !l.up) {
        b.set_up(l.index);
    }
    for (i, a, p) in &addrs {
        b.add_address(*i, *a, *p);
    }
    let eth0 = index.get("eth0").copied();
    if cfg.base && cfg.addresses && node.network_mode == NetworkMode::Bridged {
        if let Some(e) = eth0 {
            if let (Some(a), Some(s)) = (node.mgmt_ipv4, lab.mgmt.ipv4_subnet) {
                b.add_address(e, IpAddr::V4(a), s.prefix_len());
                if let Some(gw) = lab.mgmt.ipv4_gw {
                    b.add_default_route(IpAddr::V4(gw), Some(e));
                }
            }
            if let (Some(a), Some(s)) = (node.mgmt_ipv6, lab.mgmt.ipv6_subnet) {
                b.add_address(e, IpAddr::V6(a), s.prefix_len());
                if let Some(gw) = lab.mgmt.ipv6_gw {
                    b.add_default_route(IpAddr::V6(gw), Some(e));
                }
            }
        }
    }
    if b.is_empty() {
        return Ok(());
    }
    b.commit().map_err(wire_err(op("configure interfaces")))
}

/// Make sure the management bridge exists with its gateway addresses. Returns whether labwire
/// created it (recorded in the journal before creation).
pub fn ensure_mgmt_bridge(lab: &Lab, host: &mut Handle, journal: &Journal) -> Result<bool> {
    let m = &lab.mgmt;
    let existing = host
        .link(&m.bridge)
        .map_err(wire_err(format!("look up bridge {}", m.bridge)))?;
    let mut created = false;
    let mut foreign = false;
    let idx = match existing {
        Some(l) => {
            foreign = l.mac.map(Mac) != Some(mgmt_bridge_mac(lab));
            // Every lab on a bridge labwire made records it, so the last one out removes it.
            if l.mac.map(Mac) == Some(mgmt_bridge_mac(lab)) {
                journal.record(&[Entry::Bridge {
                    name: m.bridge.clone(),
                    mac: mac_str(mgmt_bridge_mac(lab)),
                    shared: true,
                }])?;
            }
            if l.kind.as_deref() != Some("bridge") {
                return Err(Error::Invalid(format!(
                    "management bridge {} exists in the host but is a {} interface, not a bridge",
                    m.bridge,
                    l.kind.as_deref().unwrap_or("non-bridge")
                )));
            }
            if !l.up {
                host.set_up(l.index)
                    .map_err(wire_err(format!("bring up {}", m.bridge)))?;
            }
            l.index
        }
        None => {
            let mac = mgmt_bridge_mac(lab);
            journal.record(&[Entry::Bridge {
                name: m.bridge.clone(),
                mac: mac_str(mac),
                shared: true,
            }])?;
            created = true;
            host.add_bridge(&m.bridge, Some(m.mtu), Some(mac.0), true)
                .map_err(wire_err(format!("create management bridge {}", m.bridge)))?
        }
    };
    let gws: Vec<(IpAddr, u8)> = m
        .ipv4_gw_net()
        .map(|gw| (IpAddr::V4(gw.addr()), gw.prefix_len()))
        .into_iter()
        .chain(
            m.ipv6_gw_net()
                .map(|gw| (IpAddr::V6(gw.addr()), gw.prefix_len())),
        )
        .collect();
    if foreign {
        journal_foreign_addresses(host, idx, &m.bridge, &gws, journal)?;
    }
    let mut b = host.batch();
    for (addr, prefix) in gws {
        b.add_address(idx, addr, prefix);
    }
    if !b.is_empty() {
        b.commit()
            .map_err(wire_err(format!("address management bridge {}", m.bridge)))?;
    }
    Ok(created)
}

/// A bridge labwire did not make keeps only what it had: each gateway address it lacks is
/// journalled before it is added, so destroy removes exactly those.
fn journal_foreign_addresses(
    host: &mut Handle,
    idx: u32,
    bridge: &str,
    gws: &[(IpAddr, u8)],
    journal: &Journal,
) -> Result<()> {
    // An address another lab added (and journalled) is this lab's too: the last lab out removes it.
    let by_labs: HashSet<(IpAddr, u8)> = crate::state::recorded_labs()
        .into_iter()
        .flat_map(|other| {
            crate::state::Recorded::read(&crate::paths::lab_state_dir(&other)).entries
        })
        .filter_map(|e| match e {
            Entry::HostAddress { link, addr, prefix } if link == bridge => Some((addr, prefix)),
            _ => None,
        })
        .collect();
    let had: HashSet<(IpAddr, u8)> = host
        .addresses(Some(idx))
        .map_err(wire_err(format!("list the addresses of {bridge}")))?
        .into_iter()
        .map(|(_, a, p)| (a, p))
        .filter(|a| !by_labs.contains(a))
        .collect();
    let added: Vec<Entry> = gws
        .iter()
        .filter(|g| !had.contains(g))
        .map(|&(addr, prefix)| Entry::HostAddress {
            link: bridge.to_string(),
            addr,
            prefix,
        })
        .collect();
    journal.record(&added)
}

/// Make sure every `bridge` kind node's bridge exists; record those labwire creates.
pub fn ensure_bridge_nodes(lab: &Lab, host: &mut Handle, journal: &Journal) -> Result<()> {
    let mut seen = HashSet::new();
    for n in lab
        .nodes
        .iter()
        .filter(|n| n.class == KindClass::Bridge && n.in_host())
    {
        if !seen.insert(n.name.clone()) {
            continue;
        }
        match host
            .link(&n.name)
            .map_err(wire_err(format!("look up bridge {}", n.name)))?
        {
            Some(l) if l.kind.as_deref() == Some("bridge") => {
                if !l.up {
                    host.set_up(l.index)
                        .map_err(wire_err(format!("bring up {}", n.name)))?;
                }
            }
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "node {} is a bridge, but the host's interface {} is not a bridge",
                    n.name, n.name
                )))
            }
            None => {
                let mac = bridge_node_mac(&n.name);
                journal.record(&[Entry::Bridge {
                    name: n.name.clone(),
                    mac: mac_str(mac),
                    shared: false,
                }])?;
                host.add_bridge(&n.name, None, Some(mac.0), true)
                    .map_err(wire_err(format!("create bridge {}", n.name)))?;
            }
        }
    }
    Ok(())
}
