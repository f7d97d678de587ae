//! The host's bridges (the management bridge and `bridge` nodes) and each node's interfaces once
//! its links exist: brought up and addressed, as the node's [`runtime::NodeNetwork`] says,
//! through a socket inside that node. The links themselves are planned and made by
//! [`crate::links`], one module per link type.
//!
//! It records every host object in the journal before making it. It never starts processes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use topology::{mac, KindClass, Lab, Mac, Node};
use wire::netlink::Handle;
use wire::NetNs;

use crate::error::{wire as wire_err, Error, Result};
use crate::state::{Entry, Journal};

pub use crate::links::mgmt_net::{mgmt_host_end, mgmt_host_mac};
pub use crate::links::vxlan_stitch::stitch_names;

/// The management bridge's MAC depends only on the network, so every lab sharing it agrees.
pub fn mgmt_bridge_mac(lab: &Lab) -> Mac {
    mac::derive("mgmt", &lab.mgmt.network, &lab.mgmt.bridge, 0)
}

pub fn bridge_node_mac(bridge: &str) -> Mac {
    mac::derive("bridge", bridge, bridge, 0)
}

fn mac_str(m: Mac) -> String {
    m.to_string()
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
        let ns = nets.get(owner).ok_or_else(|| Error::NoNamespace {
            node: owner.to_string(),
        })?;
        let op = |what: &str| format!("{what} bridge {bridge} in node {owner}");
        let mut h = Handle::in_netns(ns).map_err(wire_err(op("open netlink for")))?;
        let index = match h.link(bridge).map_err(wire_err(op("look up")))? {
            Some(l) if l.kind.as_deref() == Some("bridge") => l.index,
            Some(l) => {
                return Err(Error::NotABridge {
                    what: "interface in the node",
                    name: format!("{bridge} (node {owner})"),
                    kind: l.kind.unwrap_or_else(|| "non-bridge".into()),
                })
            }
            None => h
                .add_bridge(bridge, None, Some(bridge_node_mac(&n.name).0), true)
                .map_err(wire_err(op("create")))?,
        };
        out.insert(n.name.clone(), index);
    }
    Ok(out)
}

/// The written name on interface `index` (Linux name `linux`): its alias, and its alternative
/// name (made valid: `/` and white space become `-`) so `ip link show <written>` finds it.
pub(crate) fn keep_written_name(b: &mut wire::Batch<'_>, index: u32, linux: &str, written: &str) {
    b.set_alias(index, written);
    if let Some(alt) = topology::ifname::altname(written).filter(|a| a != linux) {
        b.add_altname(index, &alt);
    }
}

/// What one node's namespace needs after its links exist.
pub struct NodeConfig<'a> {
    pub node: &'a Node,
    /// The node's interfaces and gateways.
    pub network: &'a runtime::NodeNetwork,
    /// Management addressing and routes (once per node).
    pub base: bool,
    /// Whether addresses and routes go on the namespace's interfaces (not for VM nodes, whose
    /// guest holds them).
    pub addresses: bool,
    /// Only these interfaces (Linux names), for a node that got links after it was configured;
    /// `None`: all of them.
    pub only: Option<&'a BTreeSet<&'a str>>,
}

/// Bring every interface of the node up and apply its addresses (and, with `base`, the management
/// address and default routes).
pub fn configure_node(cfg: &NodeConfig<'_>, ns: &NetNs, home: &NetNs) -> Result<()> {
    let node = cfg.node;
    let op = |what: &str| format!("{what} in node {}", node.name);
    let mut h = Handle::in_netns_from(ns, home).map_err(wire_err(op("open netlink")))?;
    // A few interfaces are looked up by name: a node with many links gets new ones in many
    // slices of a round, and listing all of its interfaces each time grew with its degree.
    let links = match cfg.only {
        None => h.links().map_err(wire_err(op("list interfaces")))?,
        Some(only) => {
            let mut found = Vec::with_capacity(only.len());
            for name in only {
                let l = h
                    .link(name)
                    .map_err(wire_err(op(&format!("look up interface {name}"))))?;
                found.extend(l);
            }
            found
        }
    };
    let index: HashMap<&str, u32> = links.iter().map(|l| (l.name.as_str(), l.index)).collect();
    let mut addrs: Vec<(u32, IpAddr, u8)> = Vec::new();
    if cfg.addresses {
        for iface in cfg.network.links() {
            if let Some(&i) = index.get(iface.name.as_str()) {
                addrs.extend(iface.addresses.iter().map(|(a, p)| (i, *a, *p)));
            }
        }
    }
    let mut b = h.batch();
    for iface in cfg.network.links() {
        if let (Some(alias), Some(&i)) = (&iface.alias, index.get(iface.name.as_str())) {
            keep_written_name(&mut b, i, &iface.name, alias);
        }
    }
    for l in links.iter().filter(|l| !l.up) {
        b.set_up(l.index);
    }
    for (i, a, p) in &addrs {
        b.add_address(*i, *a, *p);
    }
    if cfg.base && cfg.addresses {
        if let Some((mgmt, e)) = cfg
            .network
            .mgmt()
            .and_then(|m| index.get(m.name.as_str()).map(|e| (m, *e)))
        {
            for (a, p) in &mgmt.addresses {
                b.add_address(e, *a, *p);
            }
            for gw in &cfg.network.gateways {
                b.add_default_route(*gw, Some(e));
            }
        }
    }
    if b.is_empty() {
        return Ok(());
    }
    b.commit().map_err(wire_err(op("configure interfaces")))
}

/// The management bridge as [`ensure_mgmt_bridge`] found or made it.
#[derive(Debug, Clone, Copy)]
pub struct MgmtBridge {
    /// This deploy created it (and holds it down, see [`ensure_mgmt_bridge`]).
    pub created: bool,
    /// labwire made it (now or for another lab): it does not snoop multicast.
    pub labwires: bool,
}

/// Make sure the management bridge exists with its gateway addresses. Says whether labwire
/// created it (recorded in the journal before creation); one it creates is left down for the
/// caller to bring up with [`crate::mgmt_fabric::bring_up`] once the first nodes' interfaces are
/// up: while it is down, the multicast every node sends as its interfaces come up (MLD reports,
/// duplicate address detection, router solicitations) is dropped at its port instead of being
/// flooded to every other node, a cost that grew with the square of the lab's size (the addresses
/// step of a 10,000-node deploy took 37–84 s).
pub fn ensure_mgmt_bridge(lab: &Lab, host: &mut Handle, journal: &Journal) -> Result<MgmtBridge> {
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
                return Err(Error::NotABridge {
                    what: "management bridge",
                    name: m.bridge.clone(),
                    kind: l.kind.clone().unwrap_or_else(|| "non-bridge".into()),
                });
            }
            if foreign {
                bring_up_foreign(host, &l, journal)?;
            } else if !l.up {
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
            // Down until the first nodes have their interfaces (`mgmt_fabric::bring_up`).
            let idx = host
                .add_bridge(&m.bridge, Some(m.mtu), Some(mac.0), false)
                .map_err(wire_err(format!("create management bridge {}", m.bridge)))?;
            crate::mgmt_fabric::no_snooping(host, idx, &m.bridge)?;
            idx
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
    Ok(MgmtBridge {
        created,
        labwires: !foreign,
    })
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
            let rec = crate::state::Recorded::read(&crate::paths::lab_state_dir(&other));
            crate::destroy::teardown(&rec.entries).host_addresses
        })
        .filter(|(link, _, _)| link == bridge)
        .map(|(_, addr, prefix)| (addr, prefix))
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

/// A host link labwire did not make is left as up or down as it was: bringing it up is
/// journalled first (destroy sets it down again), and a link another lab brought up is recorded
/// by this lab too, so the last lab out sets it down.
fn bring_up_foreign(host: &mut Handle, l: &wire::Link, journal: &Journal) -> Result<()> {
    let entry = Entry::HostLinkUp {
        name: l.name.clone(),
    };
    if l.up {
        let by_labs = crate::state::recorded_labs().into_iter().any(|other| {
            crate::state::Recorded::read(&crate::paths::lab_state_dir(&other))
                .entries
                .contains(&entry)
        });
        if by_labs {
            journal.record(&[entry])?;
        }
        return Ok(());
    }
    journal.record(&[entry])?;
    host.set_up(l.index)
        .map_err(wire_err(format!("bring up {}", l.name)))
}

/// With a Docker engine on the host, its firewall drops traffic forwarded by other bridges:
/// accept `bridge`'s (an interface name or an iptables `name+` pattern; journalled first, removed
/// on destroy).
pub fn accept_bridge_traffic(bridge: &str, journal: &Journal) -> Result<()> {
    let entries: Vec<Entry> = ["iptables", "ip6tables"]
        .into_iter()
        .map(|tool| Entry::FirewallAccept {
            tool: tool.into(),
            bridge: bridge.to_string(),
        })
        .collect();
    journal.record(&entries)?;
    runtime::docker::allow_bridge_forwarding(bridge)?;
    Ok(())
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
                if l.mac.map(Mac) == Some(bridge_node_mac(&n.name)) {
                    if !l.up {
                        host.set_up(l.index)
                            .map_err(wire_err(format!("bring up {}", n.name)))?;
                    }
                } else {
                    bring_up_foreign(host, &l, journal)?;
                }
            }
            Some(l) => {
                return Err(Error::NotABridge {
                    what: "bridge node",
                    name: n.name.clone(),
                    kind: l.kind.clone().unwrap_or_else(|| "non-bridge".into()),
                })
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
