//! The node kinds labwire knows: its own, and every kind containerlab registers (as of its v0.79),
//! which labwire runs as generic nodes.

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

/// containerlab's other kinds, with the `vr-*` aliases older files use: accepted, run as generic
/// Linux nodes (their interface names are mapped as each kind defines, see `ifname`).
pub const FOREIGN: &[&str] = &[
    "nokia_srlinux",
    "srl",
    "nokia_sros",
    "vr-sros",
    "vr-nokia_sros",
    "nokia_srsim",
    "juniper_crpd",
    "crpd",
    "juniper_csrx",
    "juniper_vmx",
    "vr-vmx",
    "vr-juniper_vmx",
    "juniper_vsrx",
    "vr-vsrx",
    "vr-juniper_vsrx",
    "juniper_vqfx",
    "vr-vqfx",
    "vr-juniper_vqfx",
    "juniper_vjunosrouter",
    "juniper_vjunosswitch",
    "juniper_vjunosevolved",
    "juniper_cjunosevolved",
    "cjunosevolved",
    "juniper_vex",
    "arista_ceos",
    "ceos",
    "arista_veos",
    "vr-veos",
    "vr-arista_veos",
    "cisco_xrd",
    "xrd",
    "cisco_xrd_vrouter",
    "cisco_xrv",
    "vr-xrv",
    "vr-cisco_xrv",
    "cisco_xrv9k",
    "vr-xrv9k",
    "vr-cisco_xrv9k",
    "cisco_csr1000v",
    "vr-csr",
    "vr-cisco_csr1000v",
    "cisco_n9kv",
    "vr-n9kv",
    "vr-cisco_n9kv",
    "cisco_nxos",
    "cisco_c8000",
    "c8000",
    "cisco_c8000v",
    "cisco_cat9kv",
    "cisco_iol",
    "cisco_ftdv",
    "cisco_asav",
    "cisco_vios",
    "cisco_sdwan",
    "sonic-vs",
    "sonic-vm",
    "dell_sonic",
    "plvision_sonic",
    "dell_ftosv",
    "vr-ftosv",
    "vr-dell_ftosv",
    "ipinfusion_ocnos",
    "checkpoint_cloudguard",
    "fortinet_fortigate",
    "paloalto_panos",
    "vr-pan",
    "vr-paloalto_panos",
    "keysight_ixia-c-one",
    "spirent_stc",
    "ovs-bridge",
    "k8s-kind",
    "mikrotik_ros",
    "vr-ros",
    "vr-mikrotik_ros",
    "huawei_vrp",
    "aruba_aoscx",
    "vr-aoscx",
    "vr-aruba_aoscx",
    "ciena_saos",
    "vr-ciena_saos",
    "f5_bigip-ve",
    "arrcus_arcos",
    "nvidia_cumulusvx",
    "openbsd",
    "freebsd",
    "openwrt",
    "6wind_vsr",
    "vyosnetworks_vyos",
    "veesix_osvbng",
    "generic_vm",
    "rare",
    "fdio_vpp",
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
