//! The lab's links, one module per link type, planned as data and made in one batch.
//!
//! Planning is pure: [`plan`] turns links (and the management `eth0` of nodes) into a [`Plan`] —
//! the journal intents for every host object, the host interfaces that must already exist, the
//! few objects made one by one before the batch (a vxlan-stitch's bridge and tunnel), and the
//! netlink requests of the batch, each naming namespaces and masters by name. [`execute`] then
//! records the intents, resolves names to namespaces and interface indexes, and sends every
//! request in one netlink exchange from the host's socket (why a 1000-node ring deploys in
//! seconds), each veth born with both ends in their namespaces.
//!
//! Each link type's module (`veth`, `host`, `mgmt_net`, `macvlan`, `vxlan`, `vxlan_stitch`,
//! `dummy`) keeps its planning and its preflight checks; the matches on [`topology::Peer`] here
//! are exhaustive, so a new variant is a compile error until its module is written.

mod dummy;
mod host;
mod macvlan;
pub(crate) mod mgmt_net;
mod veth;
mod vxlan;
pub(crate) mod vxlan_stitch;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::BorrowedFd;

use topology::{KindClass, Lab, Link, Mac, Node, Peer};
use wire::netlink::{Handle, VethEnd};
use wire::NetNs;

use crate::error::{wire as wire_err, Error, Result};
use crate::state::{Entry, Journal};

/// Where an interface is born.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The host's network namespace.
    Host,
    /// The network namespace of this node.
    Node(String),
}

/// One end of a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub name: String,
    pub place: Place,
    pub mac: Mac,
    pub mtu: Option<u32>,
    /// A host bridge (by name) this end joins; only the first end of a pair can have one.
    pub master: Option<String>,
    /// A bridge node inside the end's namespace (`br|ns`) this end joins.
    pub ns_master: Option<String>,
    pub up: bool,
    /// The interface group (see [`crate::mgmt_fabric::PORT_GROUP`]); the default one when `None`.
    pub group: Option<u32>,
}

/// One netlink request of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Veth {
        first: End,
        second: End,
    },
    Macvlan {
        node: String,
        name: String,
        /// The host interface it sits on.
        parent: String,
        mode: wire::netlink::MacvlanMode,
        mtu: Option<u32>,
        mac: Mac,
    },
    Vxlan {
        node: String,
        name: String,
        vni: u32,
        remote: IpAddr,
        port: u16,
        parent: Option<String>,
        mtu: Option<u32>,
        mac: Mac,
    },
    Dummy {
        node: String,
        name: String,
        mtu: Option<u32>,
        mac: Mac,
    },
}

/// A host object made before the batch, one request at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prereq {
    /// A vxlan tunnel in the host enslaved to a bridge of its own (vxlan-stitch), or alone when
    /// `bridge` is `None` (joined to its veth by a tc redirect after the batch).
    StitchBridge {
        bridge: Option<(String, Mac)>,
        vxlan: String,
        vxlan_mac: Mac,
        vni: u32,
        remote: IpAddr,
        port: u16,
        parent: Option<String>,
        mtu: Option<u32>,
    },
}

/// A host interface the plan needs to exist already: its name and what it is (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub name: String,
    pub what: &'static str,
}

/// Everything one round of link creation does, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Journal entries for every host object, recorded before anything is made.
    pub intents: Vec<Entry>,
    /// Host interfaces looked up before the batch (masters and parents).
    pub needs: Vec<Need>,
    pub prereqs: Vec<Prereq>,
    /// The batch; `what` names each request in error messages.
    pub requests: Vec<(String, Request)>,
    /// Nodes whose namespace holds a bridge node some end joins (made before the batch).
    pub netns_bridge_owners: Vec<String>,
    /// Host-side ends whose written name Linux could not take: (interface, written name).
    pub host_aliases: Vec<(String, String)>,
    /// Host interface pairs joined back to back by a two-way tc redirect after the batch.
    pub redirects: Vec<(String, String)>,
}

impl Plan {
    fn need(&mut self, name: &str, what: &'static str) {
        if !self.needs.iter().any(|n| n.name == name) {
            self.needs.push(Need {
                name: name.to_string(),
                what,
            });
        }
    }
}

/// What link planning reads from the lab.
pub(crate) struct Cx<'a> {
    pub lab: &'a Lab,
}

impl Cx<'_> {
    /// The class of a node whose side of a link is in the host (a `bridge` or `host` node).
    pub fn in_host(&self, node: &str) -> Option<KindClass> {
        self.lab.node(node).filter(|n| n.in_host()).map(|n| n.class)
    }

    /// The namespace that holds `node`'s link ends: its own, or for a bridge inside another
    /// node's namespace (`br|ns`), that node's.
    pub fn place(&self, node: &str) -> Place {
        Place::Node(self.owner(node))
    }

    /// The node whose namespace holds `node`'s link ends.
    pub fn owner(&self, node: &str) -> String {
        self.lab
            .node(node)
            .and_then(|n| n.netns_bridge())
            .map_or(node, |(_, owner)| owner)
            .to_string()
    }

    /// The bridge node inside a namespace that an end on `node` joins (`br|ns` nodes).
    pub fn ns_master(&self, node: &str, plan: &mut Plan) -> Option<String> {
        let (_, owner) = self.lab.node(node)?.netns_bridge()?;
        if !plan.netns_bridge_owners.iter().any(|o| o == owner) {
            plan.netns_bridge_owners.push(owner.to_string());
        }
        Some(node.to_string())
    }

    /// A link's MTU for a request (0: the kernel's default).
    pub fn mtu(link: &Link) -> Option<u32> {
        (link.mtu > 0).then_some(link.mtu)
    }
}

/// Plan the management `eth0` of `mgmt_nodes` and the given links.
pub fn plan(lab: &Lab, links: &[&Link], mgmt_nodes: &[&Node]) -> Plan {
    let cx = Cx { lab };
    let mut plan = Plan::default();
    for n in mgmt_nodes {
        mgmt_net::plan_node(&cx, n, &lab.mgmt.bridge, None, &mut plan);
    }
    for l in links {
        match &l.peer {
            Peer::Veth { b } => veth::plan(&cx, l, b, &mut plan),
            Peer::Host {
                host_iface,
                host_mac,
            } => host::plan(&cx, l, host_iface, *host_mac, &mut plan),
            Peer::MgmtNet {
                host_iface,
                host_mac,
            } => mgmt_net::plan(&cx, l, host_iface, *host_mac, &mut plan),
            Peer::Macvlan { parent, mode } => macvlan::plan(&cx, l, parent, *mode, &mut plan),
            Peer::Vxlan {
                remote,
                vni,
                udp_port,
                parent,
            } => vxlan::plan(
                &cx,
                l,
                *remote,
                *vni,
                *udp_port,
                parent.as_deref(),
                &mut plan,
            ),
            Peer::VxlanStitch {
                remote,
                vni,
                udp_port,
                parent,
                host_iface,
                host_mac,
                redirect,
            } => vxlan_stitch::plan(
                &cx,
                l,
                &vxlan_stitch::Tunnel {
                    remote: *remote,
                    vni: *vni,
                    port: *udp_port,
                    parent: parent.as_deref(),
                    redirect: *redirect,
                },
                host_iface,
                *host_mac,
                &mut plan,
            ),
            Peer::Dummy => dummy::plan(&cx, l, &mut plan),
        }
    }
    plan
}

/// Plan the management `eth0` of `nodes`, each on the bridge beside it (from
/// [`crate::mgmt_fabric::seat`]).
pub fn plan_mgmt_on(lab: &Lab, nodes: &[&Node], bridges: &[String], group: Option<u32>) -> Plan {
    let cx = Cx { lab };
    let mut plan = Plan::default();
    for (n, bridge) in nodes.iter().zip(bridges) {
        mgmt_net::plan_node(&cx, n, bridge, group, &mut plan);
    }
    plan
}

/// Problems with the lab's links that the host's interface names reveal, before anything is made.
pub fn preflight(lab: &Lab, host_links: &HashSet<String>, problems: &mut Vec<String>) {
    let cx = Cx { lab };
    for l in &lab.links {
        match &l.peer {
            Peer::Veth { b } => veth::preflight(&cx, l, b, host_links, problems),
            Peer::Host { host_iface, .. } => host::preflight(l, host_iface, host_links, problems),
            Peer::MgmtNet { host_iface, .. } => {
                host::preflight(l, host_iface, host_links, problems)
            }
            Peer::Macvlan { parent, .. } => {
                macvlan::preflight(&cx, l, parent, host_links, problems)
            }
            Peer::Vxlan { .. } | Peer::VxlanStitch { .. } | Peer::Dummy => {}
        }
    }
}

/// Whether [`preflight`] needs the host's interface names: some link has an end in the host or
/// a host-side interface (veths between nodes' own namespaces need none).
pub fn needs_host_names(lab: &Lab) -> bool {
    let cx = Cx { lab };
    lab.links.iter().any(|l| match &l.peer {
        Peer::Veth { b } => [&l.a, b].iter().any(|e| cx.in_host(&e.node).is_some()),
        Peer::Host { .. } | Peer::MgmtNet { .. } | Peer::Macvlan { .. } => true,
        Peer::Vxlan { .. } | Peer::VxlanStitch { .. } | Peer::Dummy => false,
    })
}

/// What a link type needs of the host before any link is made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HostNeeds {
    /// The lab's management bridge.
    pub mgmt_bridge: bool,
    /// A link type the running kernel may lack (probed in a throwaway namespace first).
    pub kernel_kind: Option<&'static str>,
}

/// What a link of this type needs of the host.
pub fn host_needs(peer: &Peer) -> HostNeeds {
    match peer {
        Peer::Veth { .. }
        | Peer::Host { .. }
        | Peer::Macvlan { .. }
        | Peer::Vxlan { .. }
        | Peer::VxlanStitch { .. } => HostNeeds::default(),
        Peer::MgmtNet { .. } => HostNeeds {
            mgmt_bridge: true,
            kernel_kind: None,
        },
        Peer::Dummy => HostNeeds {
            mgmt_bridge: false,
            kernel_kind: Some("dummy"),
        },
    }
}

/// Whether the lab has `dummy` links (the running kernel is probed for them before deploying).
pub fn uses_dummy(lab: &Lab) -> bool {
    lab.links
        .iter()
        .any(|l| host_needs(&l.peer).kernel_kind == Some("dummy"))
}

/// Whether any link is on the management bridge.
pub fn uses_mgmt_bridge(lab: &Lab) -> bool {
    lab.links.iter().any(|l| host_needs(&l.peer).mgmt_bridge)
}

/// Record `plan`'s intents, make its prerequisites and send its batch. `nets` maps node names to
/// their namespaces.
pub fn execute(
    lab: &Lab,
    plan: &Plan,
    nets: &HashMap<String, &NetNs>,
    host: &mut Handle,
    journal: &Journal,
) -> Result<()> {
    journal.record(&plan.intents)?;
    wait_out_stale_host_links(host, &plan.intents)?;
    let mut indexes: HashMap<String, u32> = HashMap::new();
    for need in &plan.needs {
        indexes.insert(need.name.clone(), host_index(host, &need.name, need.what)?);
    }
    for p in &plan.prereqs {
        match p {
            Prereq::StitchBridge { .. } => vxlan_stitch::make(p, host, &mut indexes)?,
        }
    }
    let ns_bridges = if plan.netns_bridge_owners.is_empty() {
        HashMap::new()
    } else {
        let owners: HashSet<&str> = plan
            .netns_bridge_owners
            .iter()
            .map(String::as_str)
            .collect();
        crate::wiring::ensure_netns_bridges(lab, &owners, nets)?
    };
    let fd = |place: &Place| -> Result<Option<BorrowedFd<'_>>> {
        match place {
            Place::Host => Ok(None),
            Place::Node(node) => nets
                .get(node)
                .map(|n| Some(n.fd()))
                .ok_or_else(|| Error::NoNamespace { node: node.clone() }),
        }
    };
    let index = |name: &str| -> Result<u32> {
        indexes
            .get(name)
            .copied()
            .ok_or_else(|| Error::MissingHostInterface {
                what: "interface",
                name: name.to_string(),
            })
    };
    let mut batch = host.batch();
    for (_, r) in &plan.requests {
        match r {
            Request::Veth { first, second } => {
                let end = |e: &End| -> Result<(Option<BorrowedFd<'_>>, Option<u32>)> {
                    let master = match (&e.master, &e.ns_master) {
                        (Some(m), _) => Some(index(m)?),
                        (None, Some(b)) => ns_bridges.get(b).copied(),
                        (None, None) => None,
                    };
                    Ok((fd(&e.place)?, master))
                };
                let (ns1, m1) = end(first)?;
                let (ns2, m2) = end(second)?;
                batch.add_veth(
                    &VethEnd {
                        name: &first.name,
                        netns: ns1,
                        mac: Some(first.mac.0),
                        mtu: first.mtu,
                        master: m1,
                        up: first.up,
                        group: first.group,
                    },
                    &VethEnd {
                        name: &second.name,
                        netns: ns2,
                        mac: Some(second.mac.0),
                        mtu: second.mtu,
                        master: m2,
                        up: second.up,
                        group: second.group,
                    },
                );
            }
            Request::Macvlan {
                node,
                name,
                parent,
                mode,
                mtu,
                mac,
            } => {
                batch.add_macvlan(&wire::netlink::Macvlan {
                    name,
                    parent: index(parent)?,
                    mode: *mode,
                    mtu: *mtu,
                    mac: Some(mac.0),
                    netns: fd(&Place::Node(node.clone()))?,
                    up: false,
                });
            }
            Request::Vxlan {
                node,
                name,
                vni,
                remote,
                port,
                parent,
                mtu,
                mac,
            } => {
                batch.add_vxlan(&wire::netlink::Vxlan {
                    name,
                    vni: *vni,
                    remote: *remote,
                    local: None,
                    dst_port: *port,
                    parent: parent.as_deref().map(index).transpose()?,
                    mtu: *mtu,
                    mac: Some(mac.0),
                    netns: fd(&Place::Node(node.clone()))?,
                    up: false,
                    learning: true,
                });
            }
            Request::Dummy {
                node,
                name,
                mtu,
                mac,
            } => {
                batch.add_dummy(
                    name,
                    *mtu,
                    Some(mac.0),
                    fd(&Place::Node(node.clone()))?,
                    false,
                );
            }
        }
    }
    let committed = batch.commit().map_err(|e| match e.innermost() {
        wire::Error::KernelLacks { kind } => Error::KernelLacks {
            kind: kind.to_string(),
        },
        _ => match e {
            wire::Error::Batch { index, error, .. } => Error::Wire {
                op: plan
                    .requests
                    .get(index)
                    .map_or_else(|| "create links".into(), |(what, _)| what.clone()),
                source: *error,
            },
            e => wire_err("create links")(e),
        },
    });
    committed?;
    // Bridge ports in the host carry no address; without IPv6 they add no routes there.
    let ports = plan.requests.iter().flat_map(|(_, r)| match r {
        Request::Veth { first, second } => [first, second]
            .into_iter()
            .filter(|e| e.place == Place::Host && e.master.is_some())
            .map(|e| e.name.as_str())
            .collect(),
        Request::Macvlan { .. } | Request::Vxlan { .. } | Request::Dummy { .. } => Vec::new(),
    });
    wire::sysctl::disable_ipv6(ports).map_err(wire_err("configure bridge ports"))?;
    for (a, b) in &plan.redirects {
        let (ia, ib) = (
            host_index(host, a, "interface")?,
            host_index(host, b, "interface")?,
        );
        host.stitch(ia, ib)
            .map_err(wire_err(format!("redirect {a} ⇄ {b}")))?;
    }
    name_host_ends(plan, host)
}

/// Written names of host-side ends (bridge ports, `host` and `mgmt-net` links) that Linux could
/// not take: kept on the interface as its alias and alternative name, as for node ends.
fn name_host_ends(plan: &Plan, host: &mut Handle) -> Result<()> {
    if plan.host_aliases.is_empty() {
        return Ok(());
    }
    let index: HashMap<String, u32> = host
        .links()
        .map_err(wire_err("list host links"))?
        .into_iter()
        .map(|l| (l.name, l.index))
        .collect();
    let mut b = host.batch();
    for (name, alias) in &plan.host_aliases {
        if let Some(&i) = index.get(name) {
            crate::wiring::keep_written_name(&mut b, i, name, alias);
        }
    }
    b.commit().map_err(wire_err("name host interfaces"))
}

fn host_index(host: &mut Handle, name: &str, what: &'static str) -> Result<u32> {
    match host
        .link(name)
        .map_err(wire_err(format!("look up {what} {name}")))?
    {
        Some(l) => Ok(l.index),
        None => Err(Error::MissingHostInterface {
            what,
            name: name.to_string(),
        }),
    }
}

/// A host link labwire is about to create may still exist from this lab's previous life: the kernel
/// frees a destroyed namespace's veths in the background. Wait for those (same name and MAC) to go;
/// a same-named interface with another MAC is someone else's and an error. A veth still there after
/// a short wait is deleted: its peer's namespace can live on for minutes (an orphaned TCP
/// connection of a killed routing daemon retransmits to a peer that is gone), and deleting one end
/// frees the pair at once.
fn wait_out_stale_host_links(host: &mut Handle, intents: &[Entry]) -> Result<()> {
    let host_links = crate::destroy::teardown(intents).host_links;
    let wanted: HashMap<&str, &str> = host_links
        .iter()
        .map(|(name, mac)| (name.as_str(), mac.as_str()))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let start = std::time::Instant::now();
    let deadline = start + std::time::Duration::from_secs(30);
    loop {
        let mut stale = 0;
        let impatient = start.elapsed() >= std::time::Duration::from_secs(2);
        // One lookup by name each: a dump of every host link per chunk of a round grew with the
        // lab (at 10,000 nodes, 40 dumps of up to 20,000 links).
        for (name, mac) in &wanted {
            let Some(l) = host
                .link(name)
                .map_err(wire_err(format!("look up host link {name}")))?
            else {
                continue;
            };
            let ours = l.mac.map(|m| wire::netlink::format_mac(&m)).as_deref() == Some(*mac);
            if !ours {
                return Err(Error::ForeignHostInterface { name: l.name });
            }
            if impatient && l.kind.as_deref() == Some("veth") {
                // Gone meanwhile (ENODEV) is as good as deleted.
                let _ = host.delete_link(l.index);
            }
            stale += 1;
        }
        if stale == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::StaleHostInterfaces { count: stale });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A host interface's journal entry.
pub(crate) fn host_link(name: &str, mac: Mac) -> Entry {
    Entry::HostLink {
        name: name.to_string(),
        mac: mac.to_string(),
    }
}

#[cfg(test)]
mod tests;
