//! The management network: decoding `mgmt`, and assigning each node its management addresses.
//!
//! Static addresses are checked (inside the subnet, not the gateway, not used twice); the others are
//! assigned in node order from the range, skipping the gateway, the subnet's network and broadcast
//! addresses, statics, and any address the caller says is taken (another lab on the same network).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::diag::Diagnostics;
use crate::model::*;
use crate::read;
use crate::yaml::{Span, Value};

pub const DEFAULT_NETWORK: &str = "clab";
pub const DEFAULT_IPV4_SUBNET: &str = "172.20.20.0/24";
pub const DEFAULT_IPV6_SUBNET: &str = "3fff:172:20:20::/64";

const KEYS: [&str; 16] = [
    "network",
    "bridge",
    "ipv4-subnet",
    "ipv4-gw",
    "ipv4-range",
    "ipv6-subnet",
    "ipv6-gw",
    "ipv6-range",
    "mtu",
    "external-access",
    "driver",
    "mac",
    "skip-when-unused",
    "driver-opts",
    // containerlab's deprecated spellings, still read.
    "ipv4_subnet",
    "ipv6_subnet",
];

/// Bridge name for a network without an explicit `bridge`: `br-<network>` when it fits in 15 bytes.
pub fn default_bridge(network: &str) -> String {
    if network == DEFAULT_NETWORK {
        return "br-clab".into();
    }
    let name = format!("br-{network}");
    if name.len() <= 15 && crate::node::check_iface_name(&name).is_ok() {
        name
    } else {
        let h = crate::mac::hash64(&["mgmt-bridge", network]);
        format!("br-{:012x}", h & 0xffff_ffff_ffff)
    }
}

pub fn decode(v: Option<&Value>, d: &mut Diagnostics) -> MgmtNet {
    let mut m = MgmtNet {
        network: DEFAULT_NETWORK.into(),
        bridge: String::new(),
        ipv4_subnet: None,
        ipv4_gw: None,
        ipv4_range: None,
        ipv6_subnet: None,
        ipv6_gw: None,
        ipv6_range: None,
        mtu: 1500,
        external_access: true,
    };
    let map = v.and_then(|v| read::map(v, "mgmt", &KEYS, d));
    // The underscore spellings stand in for the current ones when those are absent.
    let get = |k: &str| {
        map.as_ref().and_then(|m| {
            m.some(k).or_else(|| match k {
                "ipv4-subnet" => m.some("ipv4_subnet"),
                "ipv6-subnet" => m.some("ipv6_subnet"),
                _ => None,
            })
        })
    };
    for (old, new) in [
        ("ipv4_subnet", "ipv4-subnet"),
        ("ipv6_subnet", "ipv6-subnet"),
    ] {
        if let Some(x) = map.as_ref().and_then(|m| m.some(old)) {
            d.warning(Some(x.span), format!("mgmt `{old}` is deprecated"))
                .help(format!("write `{new}`"));
        }
    }
    if let Some(x) = get("skip-when-unused") {
        read::boolean(x, "mgmt skip-when-unused", d);
    }
    if let Some(x) = get("driver-opts") {
        read::string_map(x, "mgmt driver-opts", d);
        d.warning(
            Some(x.span),
            "mgmt `driver-opts` is accepted but labwire does not act on it yet",
        );
    }
    if let Some(x) = get("network") {
        if let Some(s) = read::string(x, "mgmt network", d) {
            m.network = s;
        }
    }
    m.bridge = match get("bridge") {
        Some(x) => match read::string(x, "mgmt bridge", d) {
            Some(s) => {
                if let Err(e) = crate::node::check_iface_name(&s) {
                    d.error(Some(x.span), format!("mgmt bridge `{s}`: {e}"));
                }
                s
            }
            None => default_bridge(&m.network),
        },
        None => default_bridge(&m.network),
    };
    let net4 = |k: &str, d: &mut Diagnostics| -> Option<Ipv4Net> {
        let x = get(k)?;
        let s = read::string(x, k, d)?;
        match s.parse::<Ipv4Net>() {
            Ok(n) if n.prefix_len() == 0 => {
                d.error(Some(x.span), format!("mgmt {k} `{s}` covers every IPv4 address"))
                    .help("its route would replace the host's default route; use a private prefix such as 172.20.20.0/24");
                None
            }
            Ok(n) if n.network() == n.addr() => Some(n),
            Ok(n) => {
                d.error(Some(x.span), format!("mgmt {k} `{s}` has host bits set"))
                    .help(format!("did you mean `{}`?", n.trunc()));
                None
            }
            Err(_) => {
                d.error(
                    Some(x.span),
                    format!("mgmt {k} `{s}` is not an IPv4 prefix"),
                )
                .help("e.g. 172.20.20.0/24");
                None
            }
        }
    };
    let net6 = |k: &str, d: &mut Diagnostics| -> Option<Ipv6Net> {
        let x = get(k)?;
        let s = read::string(x, k, d)?;
        match s.parse::<Ipv6Net>() {
            Ok(n) if n.prefix_len() == 0 => {
                d.error(Some(x.span), format!("mgmt {k} `{s}` covers every IPv6 address"))
                    .help("its route would replace the host's default route; use a prefix such as 3fff:172:20:20::/64");
                None
            }
            Ok(n) if n.network() == n.addr() => Some(n),
            Ok(n) => {
                d.error(Some(x.span), format!("mgmt {k} `{s}` has host bits set"))
                    .help(format!("did you mean `{}`?", n.trunc()));
                None
            }
            Err(_) => {
                d.error(
                    Some(x.span),
                    format!("mgmt {k} `{s}` is not an IPv6 prefix"),
                )
                .help("e.g. 3fff:172:20:20::/64");
                None
            }
        }
    };
    let explicit = get("ipv4-subnet").is_some() || get("ipv6-subnet").is_some();
    m.ipv4_subnet = net4("ipv4-subnet", d);
    m.ipv6_subnet = net6("ipv6-subnet", d);
    if !explicit {
        m.ipv4_subnet = DEFAULT_IPV4_SUBNET.parse().ok();
        m.ipv6_subnet = DEFAULT_IPV6_SUBNET.parse().ok();
    }
    m.ipv4_range = net4("ipv4-range", d);
    m.ipv6_range = net6("ipv6-range", d);
    for (r, s, k) in [
        (
            m.ipv4_range.map(Into::into),
            m.ipv4_subnet.map(Into::into),
            "ipv4-range",
        ),
        (
            m.ipv6_range.map(Into::into),
            m.ipv6_subnet.map(Into::into),
            "ipv6-range",
        ),
    ] {
        let (r, s): (Option<ipnet::IpNet>, Option<ipnet::IpNet>) = (r, s);
        if let (Some(r), Some(s)) = (r, s) {
            if !s.contains(&r) {
                d.error(
                    get(k).map(|x| x.span),
                    format!("mgmt {k} {r} is not inside the subnet {s}"),
                );
            }
        }
    }
    m.ipv4_gw = match get("ipv4-gw") {
        Some(x) => read::string(x, "ipv4-gw", d).and_then(|s| match s.parse::<Ipv4Addr>() {
            Ok(a) => {
                if m.ipv4_subnet.is_some_and(|n| !n.contains(&a)) {
                    d.error(
                        Some(x.span),
                        format!("mgmt ipv4-gw {a} is outside the ipv4-subnet"),
                    );
                }
                Some(a)
            }
            Err(_) => {
                d.error(
                    Some(x.span),
                    format!("mgmt ipv4-gw `{s}` is not an IPv4 address"),
                );
                None
            }
        }),
        None => m.ipv4_subnet.and_then(|n| n.hosts().next()),
    };
    m.ipv6_gw = match get("ipv6-gw") {
        Some(x) => read::string(x, "ipv6-gw", d).and_then(|s| match s.parse::<Ipv6Addr>() {
            Ok(a) => {
                if m.ipv6_subnet.is_some_and(|n| !n.contains(&a)) {
                    d.error(
                        Some(x.span),
                        format!("mgmt ipv6-gw {a} is outside the ipv6-subnet"),
                    );
                }
                Some(a)
            }
            Err(_) => {
                d.error(
                    Some(x.span),
                    format!("mgmt ipv6-gw `{s}` is not an IPv6 address"),
                );
                None
            }
        }),
        None => m
            .ipv6_subnet
            .and_then(|n| u128::from(n.network()).checked_add(1).map(Ipv6Addr::from)),
    };
    if let Some(x) = get("mtu") {
        if let Some(n) = read::uint(x, "mgmt mtu", 65535, d) {
            if n < 68 {
                d.error(Some(x.span), format!("mgmt mtu {n} is below 68"));
            } else {
                m.mtu = n as u32;
            }
        }
    }
    if let Some(x) = get("external-access") {
        m.external_access = read::boolean(x, "mgmt external-access", d).unwrap_or(true);
    }
    m
}

/// Check static management addresses; report errors at the nodes' `mgmt-ipv4`/`mgmt-ipv6` spans.
pub fn check_static(lab: &Lab, spans: &dyn Fn(&str, &str) -> Option<Span>, d: &mut Diagnostics) {
    let mut seen: std::collections::HashMap<IpAddr, &str> = std::collections::HashMap::new();
    for n in &lab.nodes {
        for (addr, key) in [
            (n.mgmt_ipv4.map(IpAddr::V4), "mgmt-ipv4"),
            (n.mgmt_ipv6.map(IpAddr::V6), "mgmt-ipv6"),
        ] {
            let Some(addr) = addr else { continue };
            let span = spans(&n.name, key);
            let (inside, subnet, gw) = match addr {
                IpAddr::V4(a) => (
                    lab.mgmt.ipv4_subnet.map(|s| s.contains(&a)),
                    lab.mgmt.ipv4_subnet.map(|s| s.to_string()),
                    lab.mgmt.ipv4_gw.map(IpAddr::V4),
                ),
                IpAddr::V6(a) => (
                    lab.mgmt.ipv6_subnet.map(|s| s.contains(&a)),
                    lab.mgmt.ipv6_subnet.map(|s| s.to_string()),
                    lab.mgmt.ipv6_gw.map(IpAddr::V6),
                ),
            };
            match inside {
                Some(false) => {
                    d.error(
                        span,
                        format!(
                            "{key} {addr} of node {} is outside the management subnet {}",
                            n.name,
                            subnet.unwrap_or_default()
                        ),
                    )
                    .help("pick an address inside mgmt's subnet, or change the subnet");
                }
                None => {
                    d.error(
                        span,
                        format!(
                            "{key} {addr} of node {} but the management network has no such subnet",
                            n.name
                        ),
                    );
                }
                Some(true) if Some(addr) == gw => {
                    d.error(
                        span,
                        format!("{key} {addr} of node {} is the management gateway", n.name),
                    );
                }
                Some(true) => {}
            }
            if let Some(other) = seen.insert(addr, &n.name) {
                d.error(
                    span,
                    format!("{key} {addr} of node {} is also node {other}'s", n.name),
                )
                .help("management addresses must be unique");
            }
        }
    }
}

/// Give every bridged node without a static address one, in node order. `taken` holds addresses
/// used elsewhere on the same network. Returns an error message when a subnet runs out.
pub fn assign(lab: &mut Lab, taken: &BTreeSet<IpAddr>) -> Result<(), String> {
    let mut used: BTreeSet<IpAddr> = taken.clone();
    used.extend(lab.mgmt_addresses());
    let mgmt = lab.mgmt.clone();
    used.extend(mgmt.ipv4_gw.map(IpAddr::V4));
    used.extend(mgmt.ipv6_gw.map(IpAddr::V6));
    let wants = |n: &Node| n.network_mode == NetworkMode::Bridged && n.is_workload();

    if let Some(subnet) = mgmt.ipv4_subnet {
        let pool = mgmt.ipv4_range.unwrap_or(subnet);
        let mut hosts = pool
            .hosts()
            .filter(|a| subnet.contains(a) && *a != subnet.broadcast() && *a != subnet.network());
        let need = lab
            .nodes
            .iter()
            .filter(|n| wants(n) && n.mgmt_ipv4.is_none())
            .count();
        for n in lab
            .nodes
            .iter_mut()
            .filter(|n| wants(n) && n.mgmt_ipv4.is_none())
        {
            let next = hosts.by_ref().find(|a| !used.contains(&IpAddr::V4(*a)));
            match next {
                Some(a) => {
                    used.insert(IpAddr::V4(a));
                    n.mgmt_ipv4 = Some(a);
                }
                None => {
                    return Err(format!(
                        "the management range {pool} has no free IPv4 address left for node {} ({need} needed); set mgmt.ipv4-subnet to a larger prefix",
                        n.name
                    ))
                }
            }
        }
    }
    if let Some(subnet) = mgmt.ipv6_subnet {
        let pool = mgmt.ipv6_range.unwrap_or(subnet);
        let base = u128::from(pool.network());
        let size: u128 = if pool.prefix_len() == 0 {
            u128::MAX
        } else {
            1u128 << (128 - pool.prefix_len())
        };
        let mut i: u128 = 1;
        for n in lab
            .nodes
            .iter_mut()
            .filter(|n| wants(n) && n.mgmt_ipv6.is_none())
        {
            loop {
                if i >= size {
                    return Err(format!(
                        "the management range {pool} has no free IPv6 address left for node {}",
                        n.name
                    ));
                }
                let a = Ipv6Addr::from(base + i);
                i += 1;
                if !used.contains(&IpAddr::V6(a)) {
                    used.insert(IpAddr::V6(a));
                    n.mgmt_ipv6 = Some(a);
                    break;
                }
            }
        }
    }
    Ok(())
}
