//! One description of a node's network, derived once from the normalised `Lab`: its interfaces in
//! order (the management `eth0` first when the node is bridged, then each link end), with MAC, MTU
//! and addresses, and its default gateways.
//!
//! The native wiring addresses namespace interfaces from it, the vm runtime gives it to the guest
//! (and orders the VMM's NICs by it), and the engine runtime attaches a container's `eth0` to its
//! engine network with it. It is pure: it reads the lab and touches nothing.

use std::net::IpAddr;

use topology::{Lab, Mac, NetworkMode, Node};

/// One interface of a node as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name inside the node (`eth0`, `eth1`, …).
    pub name: String,
    pub mac: Mac,
    /// 0 leaves the kernel's default.
    pub mtu: u32,
    /// The link speed it reports where labwire makes the NIC (a VM guest's), in Mbit/s.
    pub speed_mbps: u32,
    /// Addresses with their prefix lengths.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Whether this is the management interface (on the lab's management network).
    pub mgmt: bool,
    /// The name the topology wrote when Linux could not take it (kept as the interface's alias).
    pub alias: Option<String>,
}

/// A node's interfaces and default gateways.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeNetwork {
    pub interfaces: Vec<Interface>,
    /// Default gateways, reached through the management interface.
    pub gateways: Vec<IpAddr>,
}

impl NodeNetwork {
    /// The network of `node` in `lab`.
    pub fn of(lab: &Lab, node: &Node) -> NodeNetwork {
        let mut out = NodeNetwork::default();
        if node.network_mode == NetworkMode::Bridged {
            let mut addresses = Vec::new();
            if let (Some(a), Some(s)) = (node.mgmt_ipv4, lab.mgmt.ipv4_subnet) {
                addresses.push((IpAddr::V4(a), s.prefix_len()));
                out.gateways.extend(lab.mgmt.ipv4_gw.map(IpAddr::V4));
            }
            if let (Some(a), Some(s)) = (node.mgmt_ipv6, lab.mgmt.ipv6_subnet) {
                addresses.push((IpAddr::V6(a), s.prefix_len()));
                out.gateways.extend(lab.mgmt.ipv6_gw.map(IpAddr::V6));
            }
            out.interfaces.push(Interface {
                name: "eth0".into(),
                mac: node.mgmt_mac,
                mtu: lab.mgmt.mtu,
                speed_mbps: topology::Link::DEFAULT_SPEED_MBPS,
                addresses,
                mgmt: true,
                alias: None,
            });
        }
        for (l, e) in lab.ends_of(&node.name) {
            let mut addresses = Vec::new();
            if let Some(a) = e.ipv4 {
                addresses.push((IpAddr::V4(a.addr()), a.prefix_len()));
            }
            if let Some(a) = e.ipv6 {
                addresses.push((IpAddr::V6(a.addr()), a.prefix_len()));
            }
            out.interfaces.push(Interface {
                name: e.iface.clone(),
                mac: e.mac,
                mtu: l.mtu,
                speed_mbps: l.speed_mbps(),
                addresses,
                mgmt: false,
                alias: e.alias.clone(),
            });
        }
        out
    }

    /// The management interface, when the node has one.
    pub fn mgmt(&self) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.mgmt)
    }

    /// The data interfaces (link ends).
    pub fn links(&self) -> impl Iterator<Item = &Interface> {
        self.interfaces.iter().filter(|i| !i.mgmt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(nodes: &str) -> Lab {
        let yaml = format!(
            "name: nn\ntopology:\n  nodes:\n{nodes}  links:\n    - endpoints: [a:eth1, b:eth1]\n      ipv4: [10.0.0.1/30, 10.0.0.2/30]\n"
        );
        let src = topology::Source::from_text("nn.clab.yml", yaml, std::path::Path::new("/tmp"));
        topology::load(&src, &topology::Options::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .lab
    }

    #[test]
    fn a_bridged_node_has_eth0_first_with_its_management_address_and_gateway() {
        let lab = lab("    a: {kind: linux}\n    b: {kind: linux}\n");
        let a = lab.node("a").unwrap();
        let net = NodeNetwork::of(&lab, a);
        let eth0 = net.mgmt().unwrap();
        assert_eq!(net.interfaces[0], *eth0);
        assert_eq!(eth0.mac, a.mgmt_mac);
        assert_eq!(eth0.mtu, lab.mgmt.mtu);
        assert!(eth0
            .addresses
            .contains(&(IpAddr::V4(a.mgmt_ipv4.unwrap()), 24)));
        assert_eq!(
            net.gateways.first().copied(),
            lab.mgmt.ipv4_gw.map(IpAddr::V4)
        );
    }

    #[test]
    fn link_ends_follow_with_their_addresses_and_mtu() {
        let lab = lab("    a: {kind: linux}\n    b: {kind: linux}\n");
        let net = NodeNetwork::of(&lab, lab.node("b").unwrap());
        let eth1: Vec<&Interface> = net.links().collect();
        assert_eq!(eth1.len(), 1);
        assert_eq!(eth1[0].name, "eth1");
        assert_eq!(eth1[0].mtu, lab.links[0].mtu);
        assert_eq!(
            eth1[0].addresses,
            [(IpAddr::V4("10.0.0.2".parse().unwrap()), 30)]
        );
    }

    #[test]
    fn a_node_without_a_management_network_has_no_eth0_and_no_gateway() {
        let lab = lab("    a: {kind: linux, network-mode: none}\n    b: {kind: linux}\n");
        let net = NodeNetwork::of(&lab, lab.node("a").unwrap());
        assert!(net.mgmt().is_none());
        assert!(net.gateways.is_empty());
        assert_eq!(net.interfaces.len(), 1);
    }
}
