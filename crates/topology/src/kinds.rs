//! The node kinds labwire knows: its own, and containerlab's that it runs as generic nodes.

use crate::model::KindClass;

/// Kinds labwire implements itself.
pub const OWN: &[(&str, KindClass)] = &[
    ("linux", KindClass::Linux),
    ("bridge", KindClass::Bridge),
    ("host", KindClass::Host),
    ("ext-container", KindClass::ExtContainer),
    ("cvx", KindClass::Cvx),
    ("cumulus_cvx", KindClass::Cvx),
];

/// containerlab's other kinds (and their short aliases): accepted, run as generic Linux nodes.
pub const FOREIGN: &[&str] = &[
    "nokia_srlinux",
    "srl",
    "nokia_sros",
    "vr-sros",
    "nokia_srsim",
    "juniper_crpd",
    "crpd",
    "juniper_vmx",
    "vr-vmx",
    "juniper_vsrx",
    "juniper_vqfx",
    "juniper_vjunosrouter",
    "juniper_vjunosswitch",
    "juniper_vjunosevolved",
    "juniper_cjunosevolved",
    "juniper_vex",
    "arista_ceos",
    "ceos",
    "arista_veos",
    "cisco_xrd",
    "xrd",
    "cisco_xrv",
    "cisco_xrv9k",
    "cisco_csr1000v",
    "cisco_n9kv",
    "cisco_nxos",
    "cisco_c8000",
    "cisco_c8000v",
    "cisco_cat9kv",
    "cisco_iol",
    "cisco_ftdv",
    "cisco_asav",
    "sonic-vs",
    "sonic-vm",
    "dell_sonic",
    "dell_ftosv",
    "ipinfusion_ocnos",
    "checkpoint_cloudguard",
    "fortinet_fortigate",
    "paloalto_panos",
    "keysight_ixia-c-one",
    "ovs-bridge",
    "k8s-kind",
    "mikrotik_ros",
    "huawei_vrp",
    "aruba_aoscx",
    "openbsd",
    "freebsd",
    "6wind_vsr",
    "vyosnetworks_vyos",
    "generic_vm",
    "rare",
    "fdio_vpp",
    "openwrt",
];

pub enum Known {
    Own(KindClass),
    Foreign,
}

pub fn lookup(kind: &str) -> Option<Known> {
    if let Some((_, class)) = OWN.iter().find(|(k, _)| *k == kind) {
        return Some(Known::Own(*class));
    }
    FOREIGN.contains(&kind).then_some(Known::Foreign)
}

pub fn all_names() -> impl Iterator<Item = &'static str> {
    OWN.iter().map(|(k, _)| *k).chain(FOREIGN.iter().copied())
}
