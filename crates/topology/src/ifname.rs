//! Interface names as users write them → the Linux names labwire creates.
//!
//! Network OSes name their ports their own way (`ethernet-1/1`, `1/1/c1/1`, `Ethernet0/1`,
//! `ge-0/0/2`); containerlab lets a link endpoint use those names and maps each, per kind, to the
//! Linux interface the container sees, keeping the written name on the interface as its alias and
//! (made valid) as an alternative name. Any other name Linux cannot take (longer than 15 bytes, or
//! with `/` or white space) gets a generated Linux name, again with the written one kept. This
//! module owns the per-kind patterns and both decisions; it does not create interfaces.

use std::sync::OnceLock;

use regex::Regex;

/// How a matched vendor name becomes a Linux name.
#[derive(Debug, Clone, Copy)]
enum Mapping {
    /// `eth<N>` with N = port − offset + first (the kind's first data interface index).
    Port { offset: i64, first: i64 },
    /// SR Linux: `ethernet-L/P[/C]` → `eL-P[-C]`, each number at least 1.
    SrLinux,
    /// SR OS (SR-SIM): `card/[xX/]mda[/cC]/port` → `e<card>-[xX-]<mda>-[cC-]<port>`.
    SrOs,
    /// Cisco IOL: `Ethernet<slot>/<port>` → `eth<slot*4+port>` (four ports per slot).
    Iol,
}

/// One kind family's naming: the kinds, the pattern (searched, not anchored, as containerlab
/// does unless the pattern anchors itself), how to map, and what to tell a user.
struct Rule {
    kinds: &'static [&'static str],
    pattern: &'static str,
    mapping: Mapping,
    help: &'static str,
}

/// A VM-based kind numbers its data interfaces from eth1 (eth0 is management).
const VM: i64 = 1;

const RULES: &[Rule] = &[
    Rule {
        kinds: &["nokia_srlinux", "srl"],
        pattern: r"ethernet-(?P<a>\d+)/(?P<b>\d+)(?:/(?P<c>\d+))?",
        mapping: Mapping::SrLinux,
        help: "ethernet-L/P or ethernet-L/P/C (L, P, C ≥ 1), or e1-1 style Linux names",
    },
    Rule {
        kinds: &["nokia_srsim"],
        pattern: r"^(?P<card>\d+)/(?:x(?P<xiom>\d+)/)?(?P<mda>\d+)(?:/c(?P<conn>\d+))?/(?P<port>\d+)$",
        mapping: Mapping::SrOs,
        help: "card/mda/port, card/mda/cC/port, card/xX/mda/port or card/xX/mda/cC/port (each ≥ 1)",
    },
    Rule {
        kinds: &["nokia_sros", "vr-sros", "vr-nokia_sros"],
        pattern: r"1/1/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "1/1/X (X ≥ 1) or ethX",
    },
    Rule {
        kinds: &["cisco_iol"],
        pattern: r"^(?:e|Ethernet)(?P<slot>\d)/(?P<port>[0-3])$",
        mapping: Mapping::Iol,
        help: "Ethernet<slot>/<port> or e<slot>/<port> (slot 0-9, port 0-3; not 0/0, the management port), or ethX",
    },
    Rule {
        kinds: &[
            "juniper_vmx",
            "vr-vmx",
            "vr-juniper_vmx",
            "juniper_vqfx",
            "vr-vqfx",
            "vr-juniper_vqfx",
            "juniper_vsrx",
            "vr-vsrx",
            "vr-juniper_vsrx",
            "juniper_vjunosrouter",
            "juniper_vjunosswitch",
            "juniper_vjunosevolved",
        ],
        pattern: r"(?:et|xe|ge)-0/0/(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 0, first: VM },
        help: "et-0/0/X, xe-0/0/X or ge-0/0/X (X ≥ 0), or ethX",
    },
    Rule {
        kinds: &["juniper_cjunosevolved", "cjunosevolved"],
        pattern: r"et-0/0/(?P<port>\d+)$",
        mapping: Mapping::Port {
            offset: -3,
            first: VM,
        },
        help: "et-0/0/X (X ≥ 0, becoming eth(X+4)), or ethX",
    },
    Rule {
        kinds: &["arista_veos", "vr-veos", "vr-arista_veos"],
        pattern: r"(?:Et|Ethernet)1/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "Ethernet1/X or Et1/X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["cisco_n9kv", "vr-n9kv", "vr-cisco_n9kv"],
        pattern: r"(?:Ethernet|Et)\s?1/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "Ethernet1/X or Et1/X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["cisco_xrv", "vr-xrv", "vr-cisco_xrv"],
        pattern: r"(?:Gi|GigabitEthernet)\s?0/0/0/(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 0, first: VM },
        help: "GigabitEthernet0/0/0/X or Gi0/0/0/X (X ≥ 0), or ethX",
    },
    Rule {
        kinds: &[
            "cisco_xrv9k",
            "vr-xrv9k",
            "vr-cisco_xrv9k",
            "cisco_xrd_vrouter",
        ],
        pattern: r"(?:Gi|GigabitEthernet|Te|TenGigE|TenGigabitEthernet)\s?0/0/0/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 0, first: VM },
        help: "GigabitEthernet0/0/0/X, Gi0/0/0/X, TenGigE0/0/0/X or Te0/0/0/X (X ≥ 0), or ethX",
    },
    Rule {
        kinds: &[
            "cisco_csr1000v",
            "vr-csr",
            "vr-cisco_csr1000v",
            "cisco_c8000v",
        ],
        pattern: r"(?:Gi|GigabitEthernet)\s?(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 2, first: VM },
        help: "GigabitEthernetX or GiX (X ≥ 2), or ethX",
    },
    Rule {
        kinds: &["cisco_vios"],
        pattern: r"(?:Gi|GigabitEthernet)\s?(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 0, first: VM },
        help: "GigabitEthernetX or GiX (X ≥ 0), or ethX",
    },
    Rule {
        kinds: &["cisco_cat9kv"],
        pattern: r"(?:Gi|GigabitEthernet)\s?1/0/(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "GigabitEthernet1/0/X or Gi1/0/X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["cisco_asav", "cisco_ftdv"],
        pattern: r"(?:GigabitEthernet|Gi)\s?0/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 0, first: VM },
        help: "GigabitEthernet0/X or Gi0/X (X ≥ 0), or ethX",
    },
    Rule {
        kinds: &["paloalto_panos", "vr-pan", "vr-paloalto_panos"],
        pattern: r"Ethernet1/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "Ethernet1/X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["aruba_aoscx", "vr-aoscx", "vr-aruba_aoscx"],
        pattern: r"1/1/(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "1/1/X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["mikrotik_ros", "vr-ros", "vr-mikrotik_ros"],
        pattern: r"ether(?P<port>\d+)",
        mapping: Mapping::Port { offset: 2, first: VM },
        help: "etherX (X ≥ 2), or ethX",
    },
    Rule {
        kinds: &["fortinet_fortigate"],
        pattern: r"port(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 2, first: VM },
        help: "portX (X ≥ 2), or ethX",
    },
    Rule {
        kinds: &["nvidia_cumulusvx"],
        pattern: r"swp(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "swpX (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["freebsd"],
        pattern: r"vtnet(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "vtnetX (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["openbsd"],
        pattern: r"vio(?P<port>\d+)",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "vioX (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["ciena_saos", "vr-ciena_saos"],
        pattern: r"^(?P<port>[1-9]\d*)$",
        mapping: Mapping::Port { offset: 1, first: VM },
        help: "X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["f5_bigip-ve"],
        pattern: r"^1\.(?P<port>\d+)$",
        mapping: Mapping::Port { offset: 1, first: 1 },
        help: "1.X (X ≥ 1), or ethX",
    },
    Rule {
        kinds: &["spirent_stc"],
        pattern: r"port(?P<port>[1-9])",
        mapping: Mapping::Port {
            offset: 0,
            first: 0,
        },
        help: "portX (X from 1 to 9)",
    },
];

/// The rule for `kind` and its compiled pattern; each pattern is compiled on first use only, so a
/// lab of generic Linux nodes never pays for any.
fn rule_for(kind: &str) -> Option<(&'static Regex, &'static Rule)> {
    const N: usize = RULES.len();
    static COMPILED: [OnceLock<Regex>; N] = [const { OnceLock::new() }; N];
    let i = RULES.iter().position(|r| r.kinds.contains(&kind))?;
    let re =
        COMPILED[i].get_or_init(|| Regex::new(RULES[i].pattern).expect("valid interface pattern"));
    Some((re, &RULES[i]))
}

/// The Linux name for a vendor port name of `kind`: `Ok(None)` when the name is not one of the
/// kind's vendor names (it is used as written), an error when it is one but names no data port
/// (a port number below the first, the management port).
pub fn vendor_to_linux(kind: &str, written: &str) -> Result<Option<String>, String> {
    let Some((re, rule)) = rule_for(kind) else {
        return Ok(None);
    };
    let Some(caps) = re.captures(written) else {
        return Ok(None);
    };
    let num = |g: &str| -> Option<i64> { caps.name(g).and_then(|m| m.as_str().parse().ok()) };
    let bad = |why: &str| Err(format!("{why}; {kind} accepts {}", rule.help));
    match rule.mapping {
        Mapping::Port { offset, first } => {
            let Some(port) = num("port") else {
                return bad("the port number is too large");
            };
            let index = port - offset + first;
            if index < first.max(1) {
                return bad(&format!("port {port} is not a data port"));
            }
            Ok(Some(format!("eth{index}")))
        }
        Mapping::SrLinux => {
            let parts: Vec<Option<i64>> = ["a", "b", "c"]
                .iter()
                .map(|g| caps.name(g).map(|m| m.as_str().parse().unwrap_or(0)))
                .collect();
            if parts.iter().flatten().any(|n| *n < 1) {
                return bad("linecard, port and channel count from 1");
            }
            let nums: Vec<String> = parts.iter().flatten().map(i64::to_string).collect();
            Ok(Some(format!("e{}", nums.join("-"))))
        }
        Mapping::SrOs => {
            let groups = ["card", "xiom", "mda", "conn", "port"];
            let vals: Vec<Option<i64>> = groups
                .iter()
                .map(|g| caps.name(g).map(|m| m.as_str().parse().unwrap_or(0)))
                .collect();
            if vals.iter().flatten().any(|n| *n < 1) {
                return bad("card, xiom, mda, connector and port count from 1");
            }
            let mut name = format!("e{}", vals[0].unwrap_or(0));
            if let Some(x) = vals[1] {
                name.push_str(&format!("-x{x}"));
            }
            name.push_str(&format!("-{}", vals[2].unwrap_or(0)));
            if let Some(c) = vals[3] {
                name.push_str(&format!("-c{c}"));
            }
            name.push_str(&format!("-{}", vals[4].unwrap_or(0)));
            Ok(Some(name))
        }
        Mapping::Iol => {
            let (Some(slot), Some(port)) = (num("slot"), num("port")) else {
                return bad("slot and port are single digits");
            };
            if slot == 0 && port == 0 {
                return bad("Ethernet0/0 is the management interface");
            }
            Ok(Some(format!("eth{}", slot * 4 + port)))
        }
    }
}

/// Whether Linux takes `name` as an interface name as it is (at most 15 bytes, no `/`, no white
/// space, not `.`/`..`).
pub fn linux_can_take(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(|c| c.is_whitespace() || c == ':')
}

/// A name Linux cannot take, made into an alternative name: `/` and white space become `-`.
/// `None` when even that is not a valid alternative name (the kernel takes at most 127 bytes).
pub fn altname(written: &str) -> Option<String> {
    let s: String = written
        .chars()
        .map(|c| {
            if c == '/' || c.is_whitespace() {
                '-'
            } else {
                c
            }
        })
        .collect();
    (s.len() <= 127 && s != "." && s != ".." && !s.contains(':')).then_some(s)
}

/// A stable Linux name for a written name Linux cannot take: its first letters and a hash of
/// (node, written name), so a redeploy makes the same name and two long names of one node differ.
pub fn generated(node: &str, written: &str) -> String {
    let head: String = written
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(5)
        .collect();
    let h = crate::mac::hash64(&["ifname", node, written]);
    let head = if head.is_empty() {
        "if".to_string()
    } else {
        head
    };
    format!("{head}-{:08x}", h as u32)
}

/// A written endpoint name resolved: the Linux name, and the written one when they differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub linux: String,
    pub alias: Option<String>,
}

/// Resolve an endpoint name of a node of `kind`: the kind's vendor names map as the kind
/// defines; other names Linux cannot take get a generated name.
pub fn resolve(kind: &str, node: &str, written: &str) -> Result<Resolved, String> {
    if let Some(linux) = vendor_to_linux(kind, written)? {
        return Ok(Resolved {
            linux,
            alias: Some(written.to_string()),
        });
    }
    if linux_can_take(written) {
        return Ok(Resolved {
            linux: written.to_string(),
            alias: None,
        });
    }
    Ok(Resolved {
        linux: generated(node, written),
        alias: Some(written.to_string()),
    })
}

/// The kinds that map vendor interface names (for documentation and tests).
pub fn mapping_kinds() -> impl Iterator<Item = &'static str> {
    RULES.iter().flat_map(|r| r.kinds.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per kind pattern: (kind, written, Linux name).
    const ROWS: &[(&str, &str, &str)] = &[
        ("nokia_srlinux", "ethernet-1/1", "e1-1"),
        ("srl", "ethernet-1/3/1", "e1-3-1"),
        ("srl", "ethernet-2/12", "e2-12"),
        ("nokia_srsim", "1/1/1", "e1-1-1"),
        ("nokia_srsim", "1/1/c1/1", "e1-1-c1-1"),
        ("nokia_srsim", "1/x1/1/c1/1", "e1-x1-1-c1-1"),
        ("nokia_srsim", "2/x3/1/4", "e2-x3-1-4"),
        ("nokia_sros", "1/1/3", "eth3"),
        ("vr-sros", "1/1/1", "eth1"),
        ("cisco_iol", "Ethernet0/1", "eth1"),
        ("cisco_iol", "e0/2", "eth2"),
        ("cisco_iol", "Ethernet1/0", "eth4"),
        ("cisco_iol", "e2/3", "eth11"),
        ("juniper_vmx", "ge-0/0/0", "eth1"),
        ("vr-vqfx", "xe-0/0/2", "eth3"),
        ("juniper_vsrx", "ge-0/0/1", "eth2"),
        ("juniper_vjunosrouter", "ge-0/0/0", "eth1"),
        ("juniper_vjunosswitch", "et-0/0/4", "eth5"),
        ("juniper_vjunosevolved", "et-0/0/0", "eth1"),
        ("juniper_cjunosevolved", "et-0/0/0", "eth4"),
        ("arista_veos", "Ethernet1/1", "eth1"),
        ("vr-veos", "Et1/2", "eth2"),
        ("cisco_n9kv", "Ethernet1/5", "eth5"),
        ("vr-n9kv", "Et 1/1", "eth1"),
        ("cisco_xrv", "GigabitEthernet0/0/0/0", "eth1"),
        ("vr-xrv", "Gi0/0/0/3", "eth4"),
        ("cisco_xrv9k", "Te0/0/0/1", "eth2"),
        ("cisco_xrd_vrouter", "TenGigE0/0/0/0", "eth1"),
        ("cisco_csr1000v", "GigabitEthernet2", "eth1"),
        ("vr-csr", "Gi3", "eth2"),
        ("cisco_c8000v", "Gi2", "eth1"),
        ("cisco_vios", "GigabitEthernet0", "eth1"),
        ("cisco_cat9kv", "GigabitEthernet1/0/1", "eth1"),
        ("cisco_asav", "GigabitEthernet0/0", "eth1"),
        ("cisco_ftdv", "Gi0/2", "eth3"),
        ("paloalto_panos", "Ethernet1/1", "eth1"),
        ("vr-aoscx", "1/1/2", "eth2"),
        ("mikrotik_ros", "ether2", "eth1"),
        ("fortinet_fortigate", "port3", "eth2"),
        ("nvidia_cumulusvx", "swp1", "eth1"),
        ("freebsd", "vtnet1", "eth1"),
        ("openbsd", "vio2", "eth2"),
        ("ciena_saos", "4", "eth4"),
        ("f5_bigip-ve", "1.1", "eth1"),
        ("spirent_stc", "port1", "eth1"),
    ];

    #[test]
    fn every_kind_pattern_maps() {
        for (kind, written, linux) in ROWS {
            let r = resolve(kind, "n", written).unwrap_or_else(|e| panic!("{kind} {written}: {e}"));
            assert_eq!(r.linux, *linux, "{kind} {written}");
            assert_eq!(r.alias.as_deref(), Some(*written), "{kind} {written}");
        }
        // Every rule has a row.
        for kind in mapping_kinds() {
            let rule = RULES.iter().find(|r| r.kinds.contains(&kind)).unwrap();
            assert!(
                ROWS.iter().any(|(k, _, _)| rule.kinds.contains(k)),
                "no row for {kind}"
            );
        }
    }

    #[test]
    fn linux_names_pass_through() {
        for (kind, name) in [
            ("srl", "e1-1"),
            ("nokia_srsim", "e1-1-c1-1"),
            ("cisco_iol", "eth3"),
            ("linux", "eth1"),
            ("vr-sros", "eth2"),
        ] {
            let r = resolve(kind, "n", name).unwrap();
            assert_eq!(
                r,
                Resolved {
                    linux: name.into(),
                    alias: None
                },
                "{kind}"
            );
        }
    }

    #[test]
    fn vendor_names_that_name_no_data_port_are_refused() {
        for (kind, name) in [
            ("cisco_iol", "Ethernet0/0"),
            ("cisco_iol", "e0/0"),
            ("srl", "ethernet-0/1"),
            ("nokia_srsim", "0/1/1"),
            ("mikrotik_ros", "ether1"),
            ("vr-csr", "Gi1"),
        ] {
            let e = resolve(kind, "n", name).unwrap_err();
            assert!(e.contains("accepts"), "{kind} {name}: {e}");
        }
    }

    #[test]
    fn names_linux_cannot_take_get_a_stable_generated_name() {
        let r = resolve("linux", "n1", "some_very_long_node_name_l1_eth1").unwrap();
        assert!(linux_can_take(&r.linux), "{}", r.linux);
        assert_eq!(
            r.linux,
            resolve("linux", "n1", "some_very_long_node_name_l1_eth1")
                .unwrap()
                .linux
        );
        assert_ne!(
            r.linux,
            resolve("linux", "n2", "some_very_long_node_name_l1_eth1")
                .unwrap()
                .linux
        );
        let slash = resolve("linux", "n1", "Gi0/1").unwrap();
        assert!(linux_can_take(&slash.linux));
        assert_eq!(slash.alias.as_deref(), Some("Gi0/1"));
        assert_eq!(altname("Gi0/1 x").as_deref(), Some("Gi0-1-x"));
        assert_eq!(altname(&"x".repeat(200)), None);
    }
}
