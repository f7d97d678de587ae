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
    /// Addresses with their prefix lengths.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Whether this is the management interface (on the lab's management network).
    pub mgmt: bool,
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
                addresses,
                mgmt: true,
            });
        }
        for l in &lab.links {
            for e in l.endpoints().filter(|e| e.node == node.name) {
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
                    addresses,
                    mgmt: false,
                });
            }
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
