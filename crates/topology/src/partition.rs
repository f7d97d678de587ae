//! Partitions: labwire's extension for one lab split across several hosts.
//!
//! Owns the top-level `partitions:` map (partition name → the host's `address`), the checks that
//! tie nodes and links to partitions, the VXLAN network identifier each link between partitions
//! gets, and [`view`]: the part of a lab one host deploys, where every link to a node of another
//! partition becomes a VXLAN tunnel to that node's host, stitched to the node's usual veth. Both hosts of a link derive the same VNI
//! from the topology alone (the lab's name and the link's place among the crossing links), so they
//! agree without talking. The module is pure: the caller resolves host names to addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::diag::{did_you_mean, Diagnostics};
use crate::model::*;
use crate::read;
use crate::yaml::{Span, Value};

/// The UDP port every partition tunnel uses (IANA's VXLAN port), in the host's own namespace.
pub const VXLAN_PORT: u16 = 4789;

/// How many links may cross partitions in one lab: the low 12 bits of a VNI number them.
pub const MAX_CROSSING_LINKS: usize = 4095;

/// What a VXLAN header adds to each frame on an IPv4 underlay (outer IPv4 20, UDP 8, VXLAN 8,
/// inner Ethernet 14); on IPv6 it is 20 more.
pub const VXLAN_OVERHEAD_V4: u32 = 50;

const KEYS: [&str; 1] = ["address"];

/// Read `partitions:`. Each entry needs an `address`: an IP address or a DNS name.
pub fn decode(v: Option<&Value>, d: &mut Diagnostics) -> BTreeMap<String, Partition> {
    let mut out = BTreeMap::new();
    let Some(v) = v else {
        return out;
    };
    for (name, span, val) in read::entries(v, "partitions", d).unwrap_or_default() {
        if let Err(e) = crate::node::check_node_name(name) {
            d.error(Some(span), format!("partition name `{name}`: {e}"));
            continue;
        }
        let what = format!("partition {name}");
        let Some(m) = read::map(val, &what, &KEYS, d) else {
            continue;
        };
        // A partition with a bad address is still defined: its nodes draw no second error.
        let address = match m.some("address") {
            None => {
                d.error(Some(val.span), format!("partition {name} has no `address`"))
                    .help("give the host that runs it: `address: 192.0.2.10` or `address: host2.example.net`");
                String::new()
            }
            Some(addr_v) => {
                let address =
                    read::string(addr_v, &format!("`address` of {what}"), d).unwrap_or_default();
                if let Err(e) = check_address(&address) {
                    d.error(
                        Some(addr_v.span),
                        format!("`address` of {what} `{address}`: {e}"),
                    )
                    .help("accepted: an IPv4 or IPv6 address, or a DNS name");
                }
                address
            }
        };
        out.insert(name.to_string(), Partition { address });
    }
    out
}

/// An IP address or a DNS name (labels of letters, digits and `-`, at most 253 bytes).
pub fn check_address(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() || name.len() > 253 {
        return Err("a DNS name has 1 to 253 bytes".into());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "`{label}` is not a DNS label (1 to 63 letters, digits or `-`, not starting or ending with `-`)"
            ));
        }
    }
    Ok(())
}

/// Check a node's `partition` against the lab's partitions. `span` is where the node's
/// `partition` is set (node, group, kind or defaults), `node_span` the node's own key.
pub fn check_node(
    node: &Node,
    partitions: &BTreeMap<String, Partition>,
    span: Option<Span>,
    node_span: Span,
    d: &mut Diagnostics,
) {
    match &node.partition {
        Some(p) if partitions.is_empty() => {
            d.error(
                span,
                format!(
                    "node {} is in partition `{p}`, but the topology has no top-level `partitions`",
                    node.name
                ),
            )
            .help("add `partitions: {NAME: {address: HOST}}` at the top level, one entry per host");
        }
        Some(p) if !partitions.contains_key(p) => {
            let e = d.error(
                span,
                format!(
                    "node {} is in partition `{p}`, which `partitions` does not define",
                    node.name
                ),
            );
            match did_you_mean(p, partitions.keys().map(String::as_str)) {
                Some(s) => e.help(format!("did you mean `{s}`?")),
                None => e.help(format!(
                    "defined partitions: {}",
                    partitions.keys().cloned().collect::<Vec<_>>().join(", ")
                )),
            };
        }
        None if !partitions.is_empty() => {
            d.error(
                Some(node_span),
                format!(
                    "node {} has no `partition`; in a lab with `partitions` every node names one",
                    node.name
                ),
            )
            .help(format!(
                "set `partition:` on the node, its group, its kind or topology.defaults (one of {})",
                partitions.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        _ => {}
    }
}

/// The partition a node is in (`None` in a lab without partitions).
fn partition_of<'a>(lab: &'a Lab, node: &str) -> Option<&'a str> {
    lab.node(node).and_then(|n| n.partition.as_deref())
}

/// Whether a link joins nodes of two partitions.
pub fn crosses(lab: &Lab, link: &Link) -> bool {
    let mut parts = link.endpoints().map(|ep| partition_of(lab, &ep.node));
    match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Check the links of a partitioned lab: a link between partitions joins two nodes that have
/// namespaces of their own (a bridge or the host cannot reach into another host), no node shares
/// the namespace of a node elsewhere, and at most [`MAX_CROSSING_LINKS`] links cross.
pub fn check_links(
    lab: &Lab,
    links: &[crate::link::Decoded],
    node_span: &dyn Fn(&str) -> Option<Span>,
    d: &mut Diagnostics,
) {
    if lab.partitions.is_empty() {
        return;
    }
    let mut crossing = 0usize;
    for l in links {
        if !crosses(lab, &l.link) {
            continue;
        }
        crossing += 1;
        if crossing == MAX_CROSSING_LINKS + 1 {
            d.error(
                Some(l.span),
                format!("more than {MAX_CROSSING_LINKS} links cross partitions; a lab may have at most {MAX_CROSSING_LINKS}"),
            );
        }
        for ep in l.link.endpoints() {
            let Some(n) = lab.node(&ep.node) else {
                continue;
            };
            if n.in_host() || n.netns_bridge().is_some() {
                d.error(
                    Some(l.span),
                    format!(
                        "link {} crosses partitions, but its end on {} ({}) is a {} that lives in its host, not a node with a namespace of its own",
                        describe(&l.link),
                        n.name,
                        n.partition.as_deref().unwrap_or("?"),
                        n.kind
                    ),
                )
                .help("put both ends of a link to a bridge or the host in one partition");
            }
        }
    }
    for n in &lab.nodes {
        if let NetworkMode::Container(other) = &n.network_mode {
            if let Some(o) = lab.node(other) {
                if o.partition != n.partition {
                    d.error(
                        node_span(&n.name),
                        format!(
                            "node {} shares the network namespace of {other}, which is in another partition ({} versus {})",
                            n.name,
                            n.partition.as_deref().unwrap_or("?"),
                            o.partition.as_deref().unwrap_or("?")
                        ),
                    )
                    .help("a shared namespace lives on one host: put both nodes in one partition");
                }
            }
        }
    }
}

fn describe(l: &Link) -> String {
    let eps: Vec<String> = l
        .endpoints()
        .map(|e| format!("{}:{}", e.node, e.written()))
        .collect();
    eps.join(" — ")
}

/// The VNI of the `k`th link (from 0, in file order) that crosses partitions in lab `lab`: the
/// lab's block of 4095 (from a hash of its name) in the high 12 bits, `k + 1` in the low 12, so
/// links of one lab never share a VNI and two labs between the same hosts rarely do.
pub fn vni(lab: &str, k: usize) -> u32 {
    let block = 1 + (crate::mac::hash64(&["partition-vni", lab]) % 4095) as u32;
    (block << 12) | (k as u32 + 1)
}

/// The host end of the veth a partition tunnel is stitched to (`vxs-<VNI in hex>`; the tunnel is
/// `vxl-…` and their bridge `vxb-…`, see the vxlan-stitch link type).
pub fn stitch_iface(vni: u32) -> String {
    format!("vxs-{vni:06x}")
}

/// The part of `lab` that partition `name` deploys: its nodes, the links among them, its nodes'
/// single-ended links, and each link to a node of another partition as a VXLAN tunnel in the host
/// towards `address(partition)` of the far node's partition, stitched to a veth whose node end has
/// the local end's name, MAC, addresses and MTU — the node sees the same veth as on one host (a
/// routing daemon that treats VXLAN devices as EVPN VNIs, as FRR's zebra does, must not see a
/// tunnel where a port was). The whole lab rides along in [`Lab::part_of`] for the artifacts.
pub fn view(
    lab: &Lab,
    name: &str,
    address: &dyn Fn(&str, &Partition) -> Result<IpAddr, String>,
) -> Result<Lab, String> {
    if lab.partitions.is_empty() {
        return Err(format!(
            "lab {} has no `partitions`, so there is no partition `{name}` to deploy",
            lab.name
        ));
    }
    if !lab.partitions.contains_key(name) {
        let mut msg = format!(
            "lab {} has no partition `{name}`; its partitions are {}",
            lab.name,
            lab.partitions
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = did_you_mean(name, lab.partitions.keys().map(String::as_str)) {
            msg.push_str(&format!(" (did you mean `{s}`?)"));
        }
        return Err(msg);
    }
    let here = |node: &str| partition_of(lab, node) == Some(name);
    let mut addresses: BTreeMap<&str, IpAddr> = BTreeMap::new();
    let mut out = lab.clone();
    out.nodes.retain(|n| n.partition.as_deref() == Some(name));
    out.links.clear();
    let mut k = 0usize;
    for l in &lab.links {
        if !crosses(lab, l) {
            if here(&l.a.node) {
                out.links.push(l.clone());
            }
            continue;
        }
        let this_vni = vni(&lab.name, k);
        k += 1;
        let Peer::Veth { b } = &l.peer else {
            continue;
        };
        let (local, far) = if here(&l.a.node) {
            (&l.a, b)
        } else if here(&b.node) {
            (b, &l.a)
        } else {
            continue;
        };
        let far_part =
            partition_of(lab, &far.node).expect("a crossing link's ends have partitions");
        let remote = match addresses.get(far_part) {
            Some(a) => *a,
            None => {
                let a = address(far_part, &lab.partitions[far_part])
                    .map_err(|e| format!("partition {far_part}: {e}"))?;
                addresses.insert(far_part, a);
                a
            }
        };
        let host_iface = stitch_iface(this_vni);
        out.links.push(Link {
            a: local.clone(),
            peer: Peer::VxlanStitch {
                remote,
                vni: this_vni,
                udp_port: VXLAN_PORT,
                parent: None,
                host_mac: crate::mac::derive(&lab.name, "host", &host_iface, 0),
                host_iface,
                redirect: true,
            },
            host_alias: None,
            mtu: l.mtu,
            speed: l.speed,
            labels: l.labels.clone(),
            vars: l.vars.clone(),
        });
    }
    out.part_of = Some(PartOf {
        partition: name.to_string(),
        lab: Box::new(lab.clone()),
    });
    Ok(out)
}
