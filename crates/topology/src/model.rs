//! The normalised lab: what every layer above `topology` works from.
//!
//! Every node has its fields resolved (node → group → kind → defaults), every link both of its
//! endpoints, every interface its MAC and every node its management addresses. These types are also
//! the lab's recorded state, so they serialise; they never refer back to YAML.

pub use crate::impair::Impairment;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// A MAC address. Derived ones are locally administered unicast.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Mac {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(());
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 {
                return Err(());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| ())?;
        }
        Ok(Mac(out))
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom(format!("bad MAC {s}")))
    }
}

/// Which runtime runs a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Native,
    Docker,
    Podman,
    Vm,
}

impl Runtime {
    pub const NAMES: [&'static str; 4] = ["native", "docker", "podman", "vm"];

    pub fn parse(s: &str) -> Option<Runtime> {
        Some(match s {
            "native" => Runtime::Native,
            "docker" => Runtime::Docker,
            "podman" => Runtime::Podman,
            "vm" => Runtime::Vm,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
            Runtime::Vm => "vm",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How labwire treats a node of a given kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KindClass {
    /// A generic Linux node (also every containerlab NOS kind labwire runs as a generic container).
    Linux,
    /// A Linux bridge in the host, named as the node; links to it attach host-side veth ends.
    Bridge,
    /// The host's own network namespace.
    Host,
    /// A container started outside labwire; its network namespace is joined, not made.
    ExtContainer,
    /// Cumulus Linux (cvx/cumulus_cvx), a VM node by default.
    Cvx,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// The default: the node gets its own network namespace with `eth0` on the management network.
    Bridged,
    /// Own network namespace, no management interface.
    None,
    /// The host's network namespace.
    Host,
    /// Share the network namespace of another node.
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// Absolute path on the host.
    pub source: PathBuf,
    /// Path inside the node.
    pub target: String,
    /// Options after the second colon (`ro`, `rw`, …).
    pub options: Vec<String>,
}

impl Bind {
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub host_ip: Option<IpAddr>,
    pub host_port: Option<(u16, u16)>,
    pub container_port: (u16, u16),
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Healthcheck {
    /// The command, as `CMD`/`CMD-SHELL` list form or a shell string.
    pub test: Vec<String>,
    pub start_period_s: u64,
    pub interval_s: u64,
    pub timeout_s: u64,
    pub retries: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dns {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The lifecycle stages a node passes through during deploy, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Create,
    CreateLinks,
    Configure,
    Healthy,
    Exit,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Create,
        Stage::CreateLinks,
        Stage::Configure,
        Stage::Healthy,
        Stage::Exit,
    ];
    pub const NAMES: [&'static str; 5] = ["create", "create-links", "configure", "healthy", "exit"];

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Stage::ALL[i])
    }

    pub fn as_str(self) -> &'static str {
        Stage::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitFor {
    pub node: String,
    pub stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecTarget {
    Container,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecPhase {
    OnEnter,
    OnExit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageExec {
    pub command: String,
    pub target: ExecTarget,
    pub phase: ExecPhase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StageSpec {
    pub wait_for: Vec<WaitFor>,
    pub exec: Vec<StageExec>,
}

/// A text map a node inherits (`env`, `labels`, `sysctls`). Nodes that inherit the same levels
/// unchanged share one map, so a lab's size is not the product of its nodes and its defaults.
pub type SharedMap = Arc<BTreeMap<String, String>>;

/// A node with every field resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// `clab-<lab>-<node>` (honouring `prefix`): container name, netns name, inventory host.
    pub long_name: String,
    pub kind: String,
    pub class: KindClass,
    pub node_type: Option<String>,
    pub group: Option<String>,
    pub runtime: Runtime,
    pub image: Option<String>,
    pub image_pull_policy: Option<String>,
    /// The node's directory inside the lab directory.
    pub dir: PathBuf,
    pub hostname: String,
    pub network_mode: NetworkMode,
    pub mgmt_ipv4: Option<Ipv4Addr>,
    pub mgmt_ipv6: Option<Ipv6Addr>,
    /// Whether the topology gave the management addresses (dynamic ones may be reassigned).
    pub mgmt_static: bool,
    /// MAC of `eth0`.
    pub mgmt_mac: Mac,
    pub cmd: Option<String>,
    pub entrypoint: Option<String>,
    pub exec: Vec<String>,
    pub env: SharedMap,
    pub labels: SharedMap,
    pub binds: Vec<Bind>,
    pub ports: Vec<PortMap>,
    pub sysctls: SharedMap,
    pub user: Option<String>,
    pub cpu: Option<f64>,
    pub cpu_set: Option<String>,
    pub memory_bytes: Option<u64>,
    pub cap_add: Vec<String>,
    pub devices: Vec<String>,
    pub dns: Option<Dns>,
    pub healthcheck: Option<Healthcheck>,
    pub stages: BTreeMap<Stage, StageSpec>,
    pub startup_config: Option<PathBuf>,
    pub startup_delay_s: u64,
    pub restart_policy: Option<String>,
    pub auto_remove: bool,
    pub aliases: Vec<String>,
    pub license: Option<PathBuf>,
    pub kernel: Option<String>,
    /// Kernel modules the node's kernel must have (labwire's extension, `kernel-modules`): loaded
    /// by a VM node's agent at boot; checked in the host's kernel for the other runtimes.
    #[serde(default)]
    pub kernel_modules: Vec<String>,
    pub vmm: Option<String>,
    /// The container engine fields (docker and podman hand them on).
    #[serde(default)]
    pub privileged: Option<bool>,
    /// Destination path → mount options.
    #[serde(default)]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(default)]
    pub pid_mode: Option<String>,
    /// Engine volume mounts (`name:/path[:opts]`), as written.
    #[serde(default)]
    pub volumes: Vec<String>,
    #[serde(default)]
    pub security_opts: Vec<String>,
    #[serde(default)]
    pub cgroup_parent: Option<String>,
    #[serde(default)]
    pub cgroupns_mode: Option<String>,
    /// Anything under `extras`, `certificate` or `config`, kept as written for the runtimes that use it.
    pub extras: BTreeMap<String, serde_json::Value>,
    /// The partition (host) that runs the node, in a lab split across hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl Node {
    /// A bridge made inside another node's network namespace (`br|ns` with
    /// `network-mode: container:ns`): the bridge's interface name and that node.
    pub fn netns_bridge(&self) -> Option<(&str, &str)> {
        match (&self.class, &self.network_mode) {
            (KindClass::Bridge, NetworkMode::Container(owner)) => Some((
                self.name
                    .split_once('|')
                    .map_or(self.name.as_str(), |(b, _)| b),
                owner.as_str(),
            )),
            _ => None,
        }
    }

    /// Whether this node's link ends are in the host's namespace (a bridge or host node).
    pub fn in_host(&self) -> bool {
        matches!(self.class, KindClass::Bridge | KindClass::Host) && self.netns_bridge().is_none()
    }

    /// Whether this node runs as its own process tree (as opposed to a bridge or the host).
    pub fn is_workload(&self) -> bool {
        matches!(
            self.class,
            KindClass::Linux | KindClass::Cvx | KindClass::ExtContainer
        )
    }
}

/// One end of a link inside a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub node: String,
    /// The Linux interface name.
    pub iface: String,
    /// The name as the topology wrote it, when Linux could not take it as it is (a vendor port
    /// name such as `ethernet-1/1`, or a name too long): kept on the interface as its alias and
    /// alternative name, and shown wherever the user reads names back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub mac: Mac,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    /// What this end does to the frames it sends (the link's `impairments`, labwire's extension).
    #[serde(default, skip_serializing_if = "Impairment::is_none")]
    pub impairment: Impairment,
}

impl Endpoint {
    /// `node:interface` as the topology writes it.
    pub fn label(&self) -> String {
        format!("{}:{}", self.node, self.written())
    }

    /// The name as the user wrote it (the Linux name when that is what they wrote).
    pub fn written(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.iface)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    Private,
    Vepa,
    Bridge,
    Passthru,
    Source,
}

impl MacvlanMode {
    pub const NAMES: [&'static str; 5] = ["private", "vepa", "bridge", "passthru", "source"];
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "private" => MacvlanMode::Private,
            "vepa" => MacvlanMode::Vepa,
            "bridge" => MacvlanMode::Bridge,
            "passthru" => MacvlanMode::Passthru,
            "source" => MacvlanMode::Source,
            _ => return None,
        })
    }
}

/// What the far side of a link is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Peer {
    /// A veth pair to another node's interface.
    Veth { b: Endpoint },
    /// A veth whose other end is in the host namespace with this name.
    Host { host_iface: String, host_mac: Mac },
    /// A veth whose other end is in the host, attached to the management bridge.
    MgmtNet { host_iface: String, host_mac: Mac },
    /// A macvlan on a host interface, inside the node.
    Macvlan { parent: String, mode: MacvlanMode },
    /// A VXLAN tunnel interface inside the node.
    Vxlan {
        remote: IpAddr,
        vni: u32,
        udp_port: u16,
        parent: Option<String>,
    },
    /// A VXLAN tunnel in the host stitched to a veth whose other end is in the node.
    VxlanStitch {
        remote: IpAddr,
        vni: u32,
        udp_port: u16,
        parent: Option<String>,
        host_iface: String,
        host_mac: Mac,
        /// Join the tunnel and the veth's host end with a two-way tc redirect instead of a
        /// bridge (partition tunnels: a tunnel that is a bridge port refuses frames larger
        /// than the underlay carries whole, where a redirected one has the host fragment them).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        redirect: bool,
    },
    /// A dummy interface inside the node.
    Dummy,
}

impl Peer {
    pub fn type_name(&self) -> &'static str {
        match self {
            Peer::Veth { .. } => "veth",
            Peer::Host { .. } => "host",
            Peer::MgmtNet { .. } => "mgmt-net",
            Peer::Macvlan { .. } => "macvlan",
            Peer::Vxlan { .. } => "vxlan",
            Peer::VxlanStitch { .. } => "vxlan-stitch",
            Peer::Dummy => "dummy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub a: Endpoint,
    pub peer: Peer,
    /// The host-side name as written, when Linux could not take it (see [`Endpoint::alias`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_alias: Option<String>,
    pub mtu: u32,
    /// The speed (Mbit/s) the link's NICs report where labwire makes them (VM nodes' virtio-net
    /// NICs); `None` is [`Link::DEFAULT_SPEED_MBPS`]. It does not shape traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub vars: BTreeMap<String, serde_json::Value>,
}

impl Link {
    /// What a NIC reports when its link sets no `speed`: 10 Gbit/s, as a veth does.
    pub const DEFAULT_SPEED_MBPS: u32 = 10_000;

    /// The speed the link's NICs report, in Mbit/s.
    pub fn speed_mbps(&self) -> u32 {
        self.speed.unwrap_or(Self::DEFAULT_SPEED_MBPS)
    }

    /// Both node endpoints (one for links to the host, macvlan, vxlan and dummy).
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        std::iter::once(&self.a).chain(match &self.peer {
            Peer::Veth { b } => Some(b),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgmtNet {
    /// The network's name (`clab` by default).
    pub network: String,
    /// The Linux bridge (`br-<hash>` style names are docker's; labwire names it explicitly).
    pub bridge: String,
    pub ipv4_subnet: Option<Ipv4Net>,
    pub ipv4_gw: Option<Ipv4Addr>,
    pub ipv4_range: Option<Ipv4Net>,
    pub ipv6_subnet: Option<Ipv6Net>,
    pub ipv6_gw: Option<Ipv6Addr>,
    pub ipv6_range: Option<Ipv6Net>,
    pub mtu: u32,
    pub external_access: bool,
}

impl MgmtNet {
    pub fn ipv4_gw_net(&self) -> Option<Ipv4Net> {
        Some(Ipv4Net::new(self.ipv4_gw?, self.ipv4_subnet?.prefix_len()).expect("valid prefix"))
    }
    pub fn ipv6_gw_net(&self) -> Option<Ipv6Net> {
        Some(Ipv6Net::new(self.ipv6_gw?, self.ipv6_subnet?.prefix_len()).expect("valid prefix"))
    }
}

/// A whole lab, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lab {
    pub name: String,
    /// The prefix of long names as resolved (`clab`, empty, or the lab name).
    pub prefix: String,
    /// The topology file (absolute); `None` when read from standard input.
    pub topology_file: Option<PathBuf>,
    /// `clab-<lab>/` next to the topology file.
    pub dir: PathBuf,
    pub mgmt: MgmtNet,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    /// `partitions:`: partition name → its host, for a lab split across hosts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitions: BTreeMap<String, Partition>,
    /// Set when this lab is the part one host deploys (see [`crate::partition::view`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_of: Option<PartOf>,
    /// Nodes by name and link ends by node, built on first use.
    #[serde(skip)]
    index: LabIndex,
}

/// One host of a partitioned lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// The host's IP address or DNS name, where the other partitions' tunnels end.
    pub address: String,
}

/// The partition a lab view deploys, and the whole lab it is part of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartOf {
    pub partition: String,
    /// The whole lab, as loaded: the artifacts name all of its nodes.
    pub lab: Box<Lab>,
}

impl Lab {
    /// The whole lab: this one, or the lab this partition is part of.
    pub fn whole(&self) -> &Lab {
        self.part_of.as_ref().map_or(self, |p| &p.lab)
    }
}

/// Lookups by node name, so a 10,000-node lab costs no per-node scan of every node or link. It
/// is rebuilt when the number of nodes or links changed since, and every hit is checked against
/// the lab itself (a miss or a stale hit falls back to a scan), so a lab edited in place is never
/// answered wrongly.
#[derive(Debug, Default)]
struct LabIndex(std::sync::RwLock<Option<std::sync::Arc<Index>>>);

#[derive(Debug)]
struct Index {
    nodes: usize,
    links: usize,
    by_name: std::collections::HashMap<String, usize>,
    /// (link index, end: 0 for `a`, 1 for the veth's `b`) by node, in link order.
    ends: std::collections::HashMap<String, Vec<(usize, u8)>>,
}

impl Clone for LabIndex {
    fn clone(&self) -> Self {
        LabIndex::default()
    }
}

impl PartialEq for LabIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Lab {
    /// A lab of these parts.
    pub fn new(
        name: String,
        prefix: String,
        topology_file: Option<PathBuf>,
        dir: PathBuf,
        mgmt: MgmtNet,
        nodes: Vec<Node>,
        links: Vec<Link>,
    ) -> Lab {
        Lab {
            name,
            prefix,
            topology_file,
            dir,
            mgmt,
            nodes,
            links,
            partitions: BTreeMap::new(),
            part_of: None,
            index: LabIndex::default(),
        }
    }

    fn index(&self) -> std::sync::Arc<Index> {
        let fresh = |i: &Index| i.nodes == self.nodes.len() && i.links == self.links.len();
        if let Some(i) = self.index.0.read().expect("lab index").as_ref() {
            if fresh(i) {
                return i.clone();
            }
        }
        let mut ends: std::collections::HashMap<String, Vec<(usize, u8)>> =
            std::collections::HashMap::new();
        for (li, l) in self.links.iter().enumerate() {
            for (k, e) in l.endpoints().enumerate() {
                ends.entry(e.node.clone()).or_default().push((li, k as u8));
            }
        }
        let i = std::sync::Arc::new(Index {
            nodes: self.nodes.len(),
            links: self.links.len(),
            by_name: self
                .nodes
                .iter()
                .enumerate()
                .rev()
                .map(|(i, n)| (n.name.clone(), i))
                .collect(),
            ends,
        });
        *self.index.0.write().expect("lab index") = Some(i.clone());
        i
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        let hit = self.index().by_name.get(name).copied();
        hit.and_then(|i| self.nodes.get(i))
            .filter(|n| n.name == name)
            .or_else(|| self.nodes.iter().find(|n| n.name == name))
    }

    /// Every link end on `node`, with its link, in link order.
    pub fn ends_of(&self, node: &str) -> Vec<(&Link, &Endpoint)> {
        let index = self.index();
        let indexed: Option<Vec<(&Link, &Endpoint)>> = index
            .ends
            .get(node)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|&(li, k)| {
                let l = self.links.get(li)?;
                let e = l.endpoints().nth(k as usize)?;
                (e.node == node).then_some((l, e))
            })
            .collect();
        indexed.unwrap_or_else(|| {
            self.links
                .iter()
                .flat_map(|l| l.endpoints().map(move |e| (l, e)))
                .filter(|(_, e)| e.node == node)
                .collect()
        })
    }

    /// The long name a node of this lab gets.
    pub fn long_name(&self, node: &str) -> String {
        long_name(&self.prefix, &self.name, node)
    }

    /// Every management address in use.
    pub fn mgmt_addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.nodes.iter().flat_map(|n| {
            n.mgmt_ipv4
                .map(IpAddr::V4)
                .into_iter()
                .chain(n.mgmt_ipv6.map(IpAddr::V6))
        })
    }

    /// A link's addresses as networks (for artifacts).
    pub fn link_nets(ep: &Endpoint) -> Vec<IpNet> {
        ep.ipv4
            .map(IpNet::V4)
            .into_iter()
            .chain(ep.ipv6.map(IpNet::V6))
            .collect()
    }
}

/// `prefix` rules as containerlab has them: `clab` by default, `""` for bare node names,
/// `__lab-name` for `<lab>-<node>`.
pub fn long_name(prefix: &str, lab: &str, node: &str) -> String {
    match prefix {
        "" => node.to_string(),
        "__lab-name" => format!("{lab}-{node}"),
        p => format!("{p}-{lab}-{node}"),
    }
}
