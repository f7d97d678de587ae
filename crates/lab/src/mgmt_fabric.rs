//! The management network past one bridge's port limit: a Linux bridge takes at most 1024 ports
//! (`BR_MAX_PORTS`), so a lab of more nodes than that cannot hang every `eth0` on the management
//! bridge. The management bridge stays the root (it holds the gateway addresses, the firewall rule
//! and, for a docker lab, the engine's own ports); once it holds [`ROOT_PORTS`] ports, further
//! nodes go on leaf bridges of at most [`LEAF_PORTS`] ports each, every leaf joined to the root by
//! a veth pair. That is one L2 domain — one subnet, every node reachable from the host and from
//! every other node by its management address, IPv6 neighbour discovery included — and a lab under
//! the limit looks exactly as before (no leaf).
//!
//! It owns choosing the bridge of each new management port ([`seat`]), and making, journalling and
//! accepting the traffic of leaves. Leaves are shared like the root: each lab with a port on a leaf
//! journals it, and the last lab out deletes it (and its uplink, journalled as a bridge of the same
//! sharing so it goes with the leaf). It never makes the ports themselves: [`crate::links`] does,
//! with the bridge names it returns.

use std::collections::HashMap;

use topology::{mac, Lab, Mac};
use wire::netlink::{Handle, VethEnd};

use crate::error::{wire as wire_err, Error, Result};
use crate::state::{Entry, Journal};

/// Ports the management (root) bridge gives nodes before leaves are used. The rest of its 1023
/// ports stay for leaf uplinks (255 leaves: over 65,000 nodes), `mgmt-net` links and a container
/// engine's own containers on the same bridge.
pub const ROOT_PORTS: usize = 768;
/// Ports of one leaf bridge, its uplink among them (the kernel allows 1023). Bringing a bridge up
/// puts each port in forwarding state, and each one's state change walks every port of the
/// bridge: work quadratic in the ports of one bridge, so linear in the lab for a fixed leaf size
/// but proportional to it. 10,000 nodes on leaves of 1000 ports took 2.1-2.5 s to bring up, on
/// leaves of 256 1.4 s (and destroy's setting them down 1.3-1.5 s, then 0.7 s).
pub const LEAF_PORTS: usize = 256;
/// The kernel's limit of ports per bridge (`BR_MAX_PORTS` less port number 0).
const MAX_PORTS: usize = 1023;
// Every leaf costs one root port: the root's own nodes leave room for 255 uplinks.
const _: () = assert!(ROOT_PORTS + 255 <= MAX_PORTS && LEAF_PORTS < MAX_PORTS);

fn tag(bridge: &str) -> u32 {
    mac::hash64(&[bridge, "mgmt-leaf"]) as u32 & 0x00ff_ffff
}

/// The name of leaf `k` (from 1) of management bridge `bridge`: `lwb` + 6 hex digits + `-k`.
pub fn leaf_name(bridge: &str, k: usize) -> String {
    format!("lwb{:06x}-{k}", tag(bridge))
}

/// An iptables interface pattern matching every leaf of `bridge`.
pub fn leaf_pattern(bridge: &str) -> String {
    format!("lwb{:06x}-+", tag(bridge))
}

/// The uplink of leaf `k`: (end on the root, end on the leaf).
pub fn uplink_names(bridge: &str, k: usize) -> (String, String) {
    let t = tag(bridge);
    (format!("lwu{t:06x}-{k}"), format!("lwd{t:06x}-{k}"))
}

fn derived_mac(lab: &Lab, name: &str) -> Mac {
    // Depends only on the network, so every lab sharing the root agrees on its leaves.
    mac::derive("mgmt-leaf", &lab.mgmt.network, name, 0)
}

/// The bridge of each of `count` new management ports, in order: the root while it has room under
/// [`ROOT_PORTS`], then leaves with room, making new leaves as needed (journalled before they are
/// made). Call it under the global lock and the bridge's [`Lock::mgmt_seats`], and make the ports
/// before releasing the latter, so two labs sharing the root do not overfill a bridge.
///
/// [`Lock::mgmt_seats`]: crate::lock::Lock::mgmt_seats
pub fn seat(lab: &Lab, host: &mut Handle, journal: &Journal, count: usize) -> Result<Vec<String>> {
    let root = &lab.mgmt.bridge;
    let links = host.links().map_err(wire_err("list host links"))?;
    let mut ports: HashMap<u32, usize> = HashMap::new();
    for l in &links {
        if let Some(m) = l.master {
            *ports.entry(m).or_default() += 1;
        }
    }
    let by_name: HashMap<&str, &wire::netlink::Link> =
        links.iter().map(|l| (l.name.as_str(), l)).collect();
    let root_link = by_name
        .get(root.as_str())
        .ok_or_else(|| Error::MissingHostInterface {
            what: "management bridge",
            name: root.clone(),
        })?;
    let mut root_ports = ports.get(&root_link.index).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(count);
    let direct = count.min(ROOT_PORTS.saturating_sub(root_ports));
    out.extend(std::iter::repeat_n(root.clone(), direct));
    let mut k = 0;
    let mut entries = Vec::new();
    let mut made = false;
    while out.len() < count {
        k += 1;
        let leaf = leaf_name(root, k);
        let (up_root, _) = uplink_names(root, k);
        let leaf_mac = derived_mac(lab, &leaf);
        let used = match by_name.get(leaf.as_str()) {
            Some(l) if l.mac.map(Mac) == Some(leaf_mac) => {
                ports.get(&l.index).copied().unwrap_or(0)
            }
            Some(l) => {
                return Err(Error::ForeignHostInterface {
                    name: l.name.clone(),
                })
            }
            None => {
                if root_ports >= MAX_PORTS {
                    return Err(Error::MgmtNetworkFull {
                        bridge: root.clone(),
                        nodes: count,
                    });
                }
                let up_mac = derived_mac(lab, &up_root);
                journal.record(&[
                    bridge_entry(&leaf, leaf_mac),
                    bridge_entry(&up_root, up_mac),
                ])?;
                // Down with a root held down by the deploy that made it (see `bring_up`).
                make_leaf(lab, host, root_link, k, leaf_mac, up_mac)?;
                root_ports += 1;
                made = true;
                // The uplink's leaf end is the leaf's first port.
                1
            }
        };
        let free = LEAF_PORTS.saturating_sub(used);
        if free == 0 {
            continue;
        }
        // A leaf this lab puts ports on is this lab's too: the last lab out removes it.
        entries.push(bridge_entry(&leaf, leaf_mac));
        entries.push(bridge_entry(&up_root, derived_mac(lab, &up_root)));
        let take = free.min(count - out.len());
        out.extend(std::iter::repeat_n(leaf, take));
    }
    journal.record(&entries)?;
    if k > 0 {
        accept_leaf_traffic(lab, journal)?;
    }
    log::debug!(
        "management ports: {direct} on {root}, {} on {k} leaves ({})",
        count - direct,
        if made { "some new" } else { "existing" }
    );
    Ok(out)
}

/// Brings up the management bridge and its leaves, which the deploy that made them held down
/// until its first nodes' interfaces were up (see [`crate::wiring::ensure_mgmt_bridge`]). The
/// leaves that deploy made are numbered from 1 without a gap.
pub fn bring_up(lab: &Lab, host: &mut Handle) -> Result<()> {
    let root = &lab.mgmt.bridge;
    let op = |name: &str| wire_err(format!("bring up management bridge {name}"));
    let names = std::iter::once(root.clone()).chain((1..).map(|k| leaf_name(root, k)));
    for name in names {
        let Some(l) = host.link(&name).map_err(op(&name))? else {
            break;
        };
        if !l.up {
            host.set_up(l.index).map_err(op(&name))?;
        }
    }
    log::debug!("management network {root} up");
    Ok(())
}

/// The interface group of the host end of every node's management veth (`ip link show group
/// 19543` lists them). The flood filter matches it.
pub const PORT_GROUP: u32 = 0x4c57;
/// The host's bridge-family nftables table holding the flood filter, one for every lab.
pub const FILTER_TABLE: &str = "labwire";
const FILTER_CHAIN: &str = "mgmt-ports";
/// What the filter drops: MLDv1 and MLDv2 listener reports and router solicitations.
const FILTER_TYPES: [u8; 3] = [131, 133, 143];

/// Drops what nodes send on their management interface that no one there answers, before the
/// bridge floods it to every other node: multicast listener reports (the bridges labwire makes do
/// not snoop, and nothing queries) and router solicitations (nothing on it advertises routes; a
/// router a user runs there still sends its periodic advertisements). A node sends them as its
/// `eth0` comes up and repeats them for minutes, and each one was copied to every node: with
/// 10,000 nodes, about 65 frames a second kept both CPUs busy in softirq well after the deploy.
/// Neighbour discovery, duplicate address detection and everything else pass untouched.
///
/// Only ports of a management bridge labwire made join [`PORT_GROUP`] (the deploy decides, from
/// [`crate::wiring::ensure_mgmt_bridge`]): on a bridge someone else made, snooping may be on with
/// a querier, and a dropped report would then cut a node off its multicast, neighbour
/// solicitations included.
///
/// One table serves every lab (it matches the ports by their group); each lab that puts ports in
/// the group journals it, and the last one out deletes it. Called under the global lock, before
/// the ports are made. A kernel without nftables for bridges keeps the flood, with a warning.
pub fn filter_flood(journal: &Journal) -> Result<()> {
    journal.record(&[Entry::MgmtFloodFilter])?;
    let made = Handle::netfilter().and_then(|mut nf| {
        nf.replace_bridge_icmpv6_drop(&wire::netlink::BridgeIcmpv6Drop {
            table: FILTER_TABLE,
            chain: FILTER_CHAIN,
            group: PORT_GROUP,
            types: &FILTER_TYPES,
        })
    });
    if let Err(err) = made {
        log::warn!(
            "management network: nodes' router solicitations and listener reports are flooded \
             to every node (no nftables filter: {err})"
        );
    }
    Ok(())
}

/// Deletes the flood filter (the caller checked that no lab uses it any more); a kernel without
/// nftables has none to delete.
pub fn remove_flood_filter() -> Result<()> {
    match Handle::netfilter().and_then(|mut nf| nf.delete_bridge_table(FILTER_TABLE)) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::EPROTONOSUPPORT)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(wire_err("remove the management network's flood filter")(e)),
    }
}

fn bridge_entry(name: &str, mac: Mac) -> Entry {
    Entry::Bridge {
        name: name.to_string(),
        mac: mac.to_string(),
        shared: true,
    }
}

/// Multicast snooping off on a management bridge labwire makes. With no multicast querier on the
/// network (a Linux bridge has none by default, nor does Docker's) snooping forwards nothing
/// differently: every multicast frame is flooded either way (with one, snooping could only
/// withhold frames). It keeps a table of the groups each port reported, and every node reports
/// several: at 3000 nodes, turning it off took the addresses step from 2.3-2.6 s to 1.95-2.05 s
/// and destroy from 5.9-6.1 s to 5.1-5.5 s.
pub fn no_snooping(host: &mut Handle, index: u32, bridge: &str) -> Result<()> {
    host.set_mcast_snooping(index, false)
        .map_err(wire_err(format!("configure management bridge {bridge}")))
}

/// Leaf `k`, up, and its uplink: a veth with one end on the root and one on the leaf.
fn make_leaf(
    lab: &Lab,
    host: &mut Handle,
    root_link: &wire::netlink::Link,
    k: usize,
    leaf_mac: Mac,
    up_mac: Mac,
) -> Result<()> {
    let root = root_link.index;
    let bridge = &lab.mgmt.bridge;
    let leaf = leaf_name(bridge, k);
    let (up_root, up_leaf) = uplink_names(bridge, k);
    let mtu = lab.mgmt.mtu;
    let idx = host
        .add_bridge(&leaf, Some(mtu), Some(leaf_mac.0), root_link.up)
        .map_err(wire_err(format!("create management leaf bridge {leaf}")))?;
    no_snooping(host, idx, &leaf)?;
    host.add_veth(
        &VethEnd {
            name: &up_root,
            netns: None,
            mac: Some(up_mac.0),
            mtu: Some(mtu),
            master: Some(root),
            up: true,
            group: None,
        },
        &VethEnd {
            name: &up_leaf,
            netns: None,
            mac: Some(derived_mac(lab, &up_leaf).0),
            mtu: Some(mtu),
            master: Some(idx),
            up: true,
            group: None,
        },
    )
    .map_err(wire_err(format!("join leaf bridge {leaf} to {bridge}")))?;
    // The leaf and its uplink carry no address (see `wire::sysctl::disable_ipv6`).
    wire::sysctl::disable_ipv6([leaf.as_str(), up_root.as_str(), up_leaf.as_str()])
        .map_err(wire_err(format!("configure leaf bridge {leaf}")))
}

/// Where Docker's firewall drops forwarded traffic, frames crossing a leaf are forwarded traffic
/// too (bridge netfilter): one rule matches every leaf of this root.
fn accept_leaf_traffic(lab: &Lab, journal: &Journal) -> Result<()> {
    crate::wiring::accept_bridge_traffic(&leaf_pattern(&lab.mgmt.bridge), journal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_and_uplink_names_fit_an_interface_name_and_share_one_pattern() {
        for bridge in ["clab", "br-0123456789ab", "lw-gen250"] {
            let leaf = leaf_name(bridge, 255);
            let (a, b) = uplink_names(bridge, 255);
            for n in [&leaf, &a, &b] {
                assert!(n.len() <= 15, "{n}");
            }
            let prefix = leaf_pattern(bridge);
            assert!(leaf.starts_with(prefix.trim_end_matches('+')));
            assert_ne!(leaf_name(bridge, 1), leaf_name(bridge, 2));
        }
        assert_ne!(leaf_name("a", 1), leaf_name("b", 1));
    }
}
