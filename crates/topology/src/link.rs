//! Links: the brief form (`endpoints: ["a:e1", "b:e1"]`) and the typed forms (veth, host, mgmt-net,
//! macvlan, vxlan, vxlan-stitch, dummy), decoded into [`Link`]s with both ends.
//!
//! Owns endpoint parsing, per-link address lists and the "which end is where" decision. MACs are
//! filled in later by the loader (they need the whole lab to stay unique).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::diag::{did_you_mean, Diagnostics};
use crate::model::*;
use crate::read;
use crate::yaml::{Kind, Span, Value};

pub const DEFAULT_MTU: u32 = 9500;
pub const DEFAULT_VXLAN_PORT: u16 = 14789;

pub const LINK_TYPES: [&str; 9] = [
    "veth",
    "veth-stitch",
    "brief",
    "host",
    "mgmt-net",
    "macvlan",
    "vxlan",
    "vxlan-stitch",
    "dummy",
];

/// A link endpoint as written, before nodes are checked.
#[derive(Debug, Clone)]
pub struct RawEndpoint {
    pub node: String,
    pub iface: String,
    pub mac: Option<Mac>,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub span: Span,
}

/// A decoded link plus the spans of its endpoints, for later checks.
pub struct Decoded {
    pub link: Link,
    /// Endpoints given a MAC in the file (keep) versus derived (fill in).
    pub explicit_mac: Vec<bool>,
    pub spans: Vec<Span>,
    pub span: Span,
}

fn mac_of(v: &Value, d: &mut Diagnostics) -> Option<Mac> {
    let s = read::string(v, "mac", d)?;
    match s.parse::<Mac>() {
        Ok(m) if m.0[0] & 1 == 0 => Some(m),
        Ok(_) => {
            d.error(Some(v.span), format!("MAC `{s}` is a multicast address"))
                .help("the first octet must be even, e.g. 02:00:00:00:00:01");
            None
        }
        Err(()) => {
            d.error(Some(v.span), format!("malformed MAC `{s}`"))
                .help("write six hex pairs separated by `:`, e.g. 02:00:00:00:00:01");
            None
        }
    }
}

fn net_of(s: &str, span: Span, d: &mut Diagnostics) -> Option<IpNet> {
    match s.parse::<IpNet>() {
        Ok(n) => Some(n),
        Err(_) => {
            if s.parse::<IpAddr>().is_ok() {
                d.error(Some(span), format!("address `{s}` has no prefix length"))
                    .help("write address/prefix, e.g. 192.168.0.1/30 or 2001:db8::1/64");
            } else {
                d.error(Some(span), format!("malformed IP prefix `{s}`"))
                    .help("write address/prefix, e.g. 192.168.0.1/30 or 2001:db8::1/64");
            }
            None
        }
    }
}

fn v4(s: &str, span: Span, d: &mut Diagnostics) -> Option<Ipv4Net> {
    match net_of(s, span, d)? {
        IpNet::V4(n) => Some(n),
        IpNet::V6(_) => {
            d.error(
                Some(span),
                format!("`{s}` is IPv6 where an IPv4 address is expected"),
            );
            None
        }
    }
}

fn v6(s: &str, span: Span, d: &mut Diagnostics) -> Option<Ipv6Net> {
    match net_of(s, span, d)? {
        IpNet::V6(n) => Some(n),
        IpNet::V4(_) => {
            d.error(
                Some(span),
                format!("`{s}` is IPv4 where an IPv6 address is expected"),
            );
            None
        }
    }
}

/// `node:iface` as written in the brief form.
fn split_endpoint(s: &str, span: Span, d: &mut Diagnostics) -> Option<RawEndpoint> {
    match s.split_once(':') {
        Some((n, i)) if !n.is_empty() && !i.is_empty() => Some(RawEndpoint {
            node: n.to_string(),
            iface: i.to_string(),
            mac: None,
            ipv4: None,
            ipv6: None,
            span,
        }),
        _ => {
            d.error(
                Some(span),
                format!("endpoint `{s}` is not `node:interface`"),
            )
            .help("e.g. \"leaf01:swp1\"");
            None
        }
    }
}

fn endpoint_map(v: &Value, what: &str, d: &mut Diagnostics) -> Option<RawEndpoint> {
    let m = read::map(
        v,
        what,
        &["node", "interface", "mac", "ipv4", "ipv6", "vars"],
        d,
    )?;
    let node = m
        .get("node")
        .and_then(|x| read::string(x, "endpoint node", d));
    let iface = m
        .get("interface")
        .and_then(|x| read::string(x, "endpoint interface", d));
    let (Some(node), Some(iface)) = (node, iface) else {
        d.error(Some(v.span), format!("{what} needs `node` and `interface`"));
        return None;
    };
    let ipv4 = m
        .some("ipv4")
        .and_then(|x| read::string(x, "ipv4", d).map(|s| (s, x.span)))
        .and_then(|(s, sp)| v4(&s, sp, d));
    let ipv6 = m
        .some("ipv6")
        .and_then(|x| read::string(x, "ipv6", d).map(|s| (s, x.span)))
        .and_then(|(s, sp)| v6(&s, sp, d));
    Some(RawEndpoint {
        node,
        iface,
        mac: m.some("mac").and_then(|x| mac_of(x, d)),
        ipv4,
        ipv6,
        span: v.span,
    })
}

/// The fields every link type takes.
struct Common {
    mtu: Option<u32>,
    speed: Option<u32>,
    labels: BTreeMap<String, String>,
    vars: BTreeMap<String, serde_json::Value>,
}

fn common(m: &read::Map<'_>, d: &mut Diagnostics) -> Common {
    let mtu = m.some("mtu").and_then(|v| {
        let n = read::uint(v, "link mtu", 65535, d)?;
        if n < 68 {
            d.error(
                Some(v.span),
                format!("link mtu {n} is below 68, the IPv4 minimum"),
            );
            return None;
        }
        Some(n as u32)
    });
    let speed = m.some("speed").and_then(|v| {
        let s = read::string(v, "link speed", d)?;
        let n = parse_speed(&s);
        if n.is_none() {
            d.error(
                Some(v.span),
                format!("link speed `{s}` is not a speed from 1 Mbit/s to {MAX_SPEED_MBPS} Mbit/s"),
            )
            .help("a number of Mbit/s (`speed: 25000`) or one with a unit: `100M`, `10G`, `25Gbps`, `100Gbit/s`");
        }
        n
    });
    let labels = m
        .some("labels")
        .map(|v| {
            read::string_map(v, "link labels", d)
                .into_iter()
                .map(|(k, (v, _))| (k, v))
                .collect()
        })
        .unwrap_or_default();
    let vars = m
        .some("vars")
        .map(|v| {
            read::entries(v, "link vars", d)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, _, v)| (k.to_string(), read::to_json(v)))
                .collect()
        })
        .unwrap_or_default();
    Common {
        mtu,
        speed,
        labels,
        vars,
    }
}

/// The highest link speed accepted (1 Tbit/s), in Mbit/s.
pub const MAX_SPEED_MBPS: u32 = 1_000_000;

/// A link speed in Mbit/s: a bare number is Mbit/s; `M`, `Mbps`, `Mbit/s`, `G`, `Gbps` and
/// `Gbit/s` (any case) name the unit. `None` when it is not one, or not from 1 Mbit/s to 1 Tbit/s.
pub fn parse_speed(s: &str) -> Option<u32> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num.parse().ok()?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mbps" | "mbit/s" => 1,
        "g" | "gbps" | "gbit/s" => 1000,
        _ => return None,
    };
    let mbps = n.checked_mul(scale)?;
    (1..=u64::from(MAX_SPEED_MBPS))
        .contains(&mbps)
        .then_some(mbps as u32)
}

fn to_endpoint(r: &RawEndpoint) -> Endpoint {
    Endpoint {
        node: r.node.clone(),
        iface: r.iface.clone(),
        alias: None,
        mac: r.mac.unwrap_or(Mac([0; 6])),
        ipv4: r.ipv4,
        ipv6: r.ipv6,
        impairment: Impairment::default(),
    }
}

/// Give each endpoint of `link` its share of the link's `impairments` (when the link has them).
fn impairments(m: &read::Map<'_>, link: &mut Link, d: &mut Diagnostics) {
    let Some(v) = m.some("impairments") else {
        return;
    };
    let names: Vec<String> = link
        .endpoints()
        .map(|e| format!("{}:{}", e.node, e.iface))
        .collect();
    let imps = crate::impair::read_link(v, &names, d);
    let mut imps = imps.into_iter();
    link.a.impairment = imps.next().unwrap_or_default();
    if let Peer::Veth { b } = &mut link.peer {
        b.impairment = imps.next().unwrap_or_default();
    }
}

/// Decode one entry of `topology.links`. `is_node` says whether a name is a defined node (the
/// special endpoint names `host`, `mgmt-net` and `macvlan` only apply when no node has that name).
pub fn decode(
    v: &Value,
    index: usize,
    is_node: &dyn Fn(&str) -> bool,
    d: &mut Diagnostics,
) -> Option<Decoded> {
    let what = format!("link #{}", index + 1);
    let ty = match &v.kind {
        Kind::Map(_) => read::entries(v, &what, &mut Diagnostics::default())
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _, _)| *k == "type")
            .map(|(_, _, t)| t),
        _ => {
            d.error(
                Some(v.span),
                format!("{what} must be a mapping, not {}", v.describe()),
            );
            return None;
        }
    };
    let ty_name = match ty {
        Some(t) => {
            let s = read::string(t, "link type", d)?;
            if !LINK_TYPES.contains(&s.as_str()) {
                let e = d.error(Some(t.span), format!("unknown link type `{s}`"));
                match did_you_mean(&s, LINK_TYPES) {
                    Some(x) => e.help(format!("did you mean `{x}`?")),
                    None => e.help(format!("accepted: {}", LINK_TYPES.join(", "))),
                };
                return None;
            }
            Some(s)
        }
        None => None,
    };
    let mut decoded = match ty_name.as_deref() {
        // `type: brief` names the brief form explicitly.
        None | Some("brief") => brief(v, &what, is_node, d),
        // Two veths joined in the host carry frames as one veth between the ends does.
        Some("veth-stitch") => typed(v, "veth", &what, d),
        Some(t) => typed(v, t, &what, d),
    }?;
    // Keys were checked by the decoder above; only `impairments` is read here.
    let m = read::map(v, &what, &[], &mut Diagnostics::default())?;
    impairments(&m, &mut decoded.link, d);
    Some(decoded)
}

fn brief(
    v: &Value,
    what: &str,
    is_node: &dyn Fn(&str) -> bool,
    d: &mut Diagnostics,
) -> Option<Decoded> {
    let m = read::map(
        v,
        what,
        &[
            "type",
            "endpoints",
            "mtu",
            "speed",
            "labels",
            "vars",
            "ipv4",
            "ipv6",
            "impairments",
        ],
        d,
    )?;
    let Common {
        mtu,
        speed,
        labels,
        vars,
    } = common(&m, d);
    let Some(eps) = m.get("endpoints") else {
        d.error(Some(v.span), format!("{what} has no `endpoints`"))
            .help("a brief link lists two endpoints: endpoints: [\"a:eth1\", \"b:eth1\"], or give a `type`");
        return None;
    };
    let items = read::strings(eps, "endpoints", d);
    if items.len() != 2 {
        d.error(
            Some(eps.span),
            format!(
                "{what} has {} endpoints; a link joins exactly two",
                items.len()
            ),
        )
        .help("endpoints: [\"a:eth1\", \"b:eth1\"]");
        return None;
    }
    let mut ends: Vec<RawEndpoint> = items
        .iter()
        .filter_map(|(s, sp)| split_endpoint(s, *sp, d))
        .collect();
    if ends.len() != 2 {
        return None;
    }
    let addrs = |key: &str, d: &mut Diagnostics| -> Vec<(String, Span)> {
        let Some(list) = m.some(key) else {
            return Vec::new();
        };
        let l = read::strings(list, key, d);
        if l.len() > 2 {
            d.error(
                Some(list.span),
                format!(
                    "`{key}` of {what} has {} entries; give one per endpoint",
                    l.len()
                ),
            );
        }
        l
    };
    for (i, (s, sp)) in addrs("ipv4", d).into_iter().enumerate().take(2) {
        if !s.is_empty() {
            ends[i].ipv4 = v4(&s, sp, d);
        }
    }
    for (i, (s, sp)) in addrs("ipv6", d).into_iter().enumerate().take(2) {
        if !s.is_empty() {
            ends[i].ipv6 = v6(&s, sp, d);
        }
    }
    let special = |e: &RawEndpoint| -> Option<&'static str> {
        ["host", "mgmt-net", "macvlan"]
            .into_iter()
            .find(|s| *s == e.node && !is_node(s))
    };
    let (s0, s1) = (special(&ends[0]), special(&ends[1]));
    let (node_end, other, kind) = match (s0, s1) {
        (None, None) => {
            let b = ends.pop().expect("two ends");
            let a = ends.pop().expect("two ends");
            let spans = vec![a.span, b.span];
            return Some(Decoded {
                link: Link {
                    a: to_endpoint(&a),
                    peer: Peer::Veth { b: to_endpoint(&b) },
                    host_alias: None,
                    mtu: mtu.unwrap_or(DEFAULT_MTU),
                    speed,
                    labels,
                    vars,
                },
                explicit_mac: vec![false, false],
                spans,
                span: v.span,
            });
        }
        (Some(_), Some(_)) => {
            d.error(
                Some(eps.span),
                format!("both endpoints of {what} are special (`host`, `mgmt-net`, `macvlan`)"),
            )
            .help("one endpoint must be a node of the lab");
            return None;
        }
        (Some(k), None) => (ends.remove(1), ends.remove(0), k),
        (None, Some(k)) => (ends.remove(0), ends.remove(0), k),
    };
    let peer = match kind {
        "host" => Peer::Host {
            host_iface: other.iface.clone(),
            host_mac: Mac([0; 6]),
        },
        "mgmt-net" => Peer::MgmtNet {
            host_iface: other.iface.clone(),
            host_mac: Mac([0; 6]),
        },
        _ => Peer::Macvlan {
            parent: other.iface.clone(),
            mode: MacvlanMode::Bridge,
        },
    };
    let default_mtu = if kind == "macvlan" { 0 } else { DEFAULT_MTU };
    let mut spans = vec![node_end.span];
    if kind != "macvlan" {
        spans.push(other.span);
    }
    Some(Decoded {
        link: Link {
            a: to_endpoint(&node_end),
            peer,
            host_alias: None,
            mtu: mtu.unwrap_or(default_mtu),
            speed,
            labels,
            vars,
        },
        explicit_mac: vec![false, false],
        spans,
        span: v.span,
    })
}

fn typed(v: &Value, ty: &str, what: &str, d: &mut Diagnostics) -> Option<Decoded> {
    const COMMON: [&str; 6] = ["type", "mtu", "speed", "labels", "vars", "impairments"];
    let extra: &[&str] = match ty {
        "veth" => &["endpoints"],
        "host" | "mgmt-net" => &["endpoint", "host-interface"],
        "macvlan" => &["endpoint", "host-interface", "mode"],
        "vxlan" | "vxlan-stitch" => &[
            "endpoint",
            "remote",
            "vni",
            "udp-port",
            "dst-port",
            "src-port",
            "parent-interface",
        ],
        _ => &["endpoint"],
    };
    let known: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
    let what = format!("{what} (type {ty})");
    let m = read::map(v, &what, &known, d)?;
    let Common {
        mtu,
        speed,
        labels,
        vars,
    } = common(&m, d);
    if ty == "veth" {
        let Some(eps) = m.get("endpoints") else {
            d.error(Some(v.span), format!("{what} has no `endpoints`"));
            return None;
        };
        let items = read::seq(eps, "endpoints", d);
        if items.len() != 2 {
            d.error(
                Some(eps.span),
                format!(
                    "{what} has {} endpoints; a veth link joins exactly two",
                    items.len()
                ),
            );
            return None;
        }
        let a = endpoint_map(&items[0], "a veth endpoint", d)?;
        let b = endpoint_map(&items[1], "a veth endpoint", d)?;
        return Some(Decoded {
            explicit_mac: vec![a.mac.is_some(), b.mac.is_some()],
            spans: vec![a.span, b.span],
            link: Link {
                a: to_endpoint(&a),
                peer: Peer::Veth { b: to_endpoint(&b) },
                host_alias: None,
                mtu: mtu.unwrap_or(DEFAULT_MTU),
                speed,
                labels,
                vars,
            },
            span: v.span,
        });
    }
    let Some(ep) = m.get("endpoint") else {
        d.error(Some(v.span), format!("{what} has no `endpoint`"))
            .help("endpoint: {node: NAME, interface: IFACE}");
        return None;
    };
    let a = endpoint_map(ep, "the link endpoint", d)?;
    let host_iface = |d: &mut Diagnostics| -> Option<String> {
        let Some(h) = m.get("host-interface") else {
            d.error(Some(v.span), format!("{what} has no `host-interface`"));
            return None;
        };
        // Checked with the other names once names Linux cannot take are resolved.
        read::string(h, "host-interface", d)
    };
    let mut default_mtu = DEFAULT_MTU;
    let peer = match ty {
        "host" => Peer::Host {
            host_iface: host_iface(d)?,
            host_mac: Mac([0; 6]),
        },
        "mgmt-net" => Peer::MgmtNet {
            host_iface: host_iface(d)?,
            host_mac: Mac([0; 6]),
        },
        "macvlan" => {
            default_mtu = 0;
            let mode = match m.some("mode") {
                Some(mv) => {
                    let s = read::string(mv, "macvlan mode", d)?;
                    match MacvlanMode::parse(&s) {
                        Some(mm) => mm,
                        None => {
                            d.error(Some(mv.span), format!("unknown macvlan mode `{s}`"))
                                .help(format!("accepted: {}", MacvlanMode::NAMES.join(", ")));
                            return None;
                        }
                    }
                }
                None => MacvlanMode::Bridge,
            };
            Peer::Macvlan {
                parent: host_iface(d)?,
                mode,
            }
        }
        "vxlan" | "vxlan-stitch" => {
            default_mtu = 0;
            let remote = match m.get("remote") {
                Some(r) => {
                    let s = read::string(r, "vxlan remote", d)?;
                    match s.parse::<IpAddr>() {
                        Ok(ip) => ip,
                        Err(_) => {
                            d.error(
                                Some(r.span),
                                format!("vxlan remote `{s}` is not an IP address"),
                            );
                            return None;
                        }
                    }
                }
                None => {
                    d.error(Some(v.span), format!("{what} has no `remote`"));
                    return None;
                }
            };
            let vni = match m.get("vni") {
                Some(x) => read::uint(x, "vni", (1 << 24) - 1, d)? as u32,
                None => {
                    d.error(Some(v.span), format!("{what} has no `vni`"))
                        .help("a VXLAN network identifier from 1 to 16777215");
                    return None;
                }
            };
            let udp_port = match m.get("udp-port").or(m.get("dst-port")) {
                Some(x) => read::uint(x, "udp-port", 65535, d)? as u16,
                None => DEFAULT_VXLAN_PORT,
            };
            if let Some(x) = m.some("src-port") {
                read::uint(x, "src-port", 65535, d)?;
                d.warning(
                    Some(x.span),
                    "vxlan `src-port` is accepted but labwire lets the kernel pick source ports",
                );
            }
            let parent = m
                .some("parent-interface")
                .and_then(|x| read::string(x, "parent-interface", d));
            if ty == "vxlan" {
                Peer::Vxlan {
                    remote,
                    vni,
                    udp_port,
                    parent,
                }
            } else {
                Peer::VxlanStitch {
                    remote,
                    vni,
                    udp_port,
                    parent,
                    host_iface: format!("vx-{}", a.iface).chars().take(15).collect(),
                    host_mac: Mac([0; 6]),
                }
            }
        }
        _ => Peer::Dummy,
    };
    Some(Decoded {
        explicit_mac: vec![a.mac.is_some(), false],
        spans: vec![a.span],
        link: Link {
            a: to_endpoint(&a),
            peer,
            host_alias: None,
            mtu: mtu.unwrap_or(default_mtu),
            speed,
            labels,
            vars,
        },
        span: v.span,
    })
}
