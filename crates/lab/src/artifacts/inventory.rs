//! The automation inventories: Ansible's (`ansible-inventory.yml`) and Nornir's simple inventory
//! (`nornir-simple-inventory.yml`), rendered from the normalised [`Lab`].
//!
//! Owns their text only; writing them is [`super::write_lab_artifacts`]'s job. Only workload nodes
//! (not bridges, not the host) are listed, in name order, so the output is stable across deploys.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use topology::{Lab, Node};

use super::yaml::scalar;

/// Node label naming an extra Ansible group the node joins (besides its kind's group).
pub const ANSIBLE_GROUP_LABEL: &str = "ansible-group";
/// Node label that, set to `true`, leaves `ansible_host` out of the node's entry.
pub const ANSIBLE_NO_HOST_VAR_LABEL: &str = "ansible-no-host-var";
/// Prefix of node labels whose values name the node's Nornir groups.
pub const NORNIR_GROUP_LABEL_PREFIX: &str = "nornir-group";

fn workloads(lab: &Lab) -> impl Iterator<Item = &Node> {
    lab.nodes.iter().filter(|n| n.is_workload())
}

/// The Ansible inventory: `all.children.<kind>.hosts.<long name>.ansible_host`, plus one group
/// per distinct `ansible-group` label value holding the nodes that carry it.
pub fn ansible_inventory(lab: &Lab) -> String {
    // group → long name → node; a label group that shares a kind's name merges into it.
    let mut groups: BTreeMap<&str, BTreeMap<&str, &Node>> = BTreeMap::new();
    for node in workloads(lab) {
        groups
            .entry(node.kind.as_str())
            .or_default()
            .insert(&node.long_name, node);
        if let Some(g) = node
            .labels
            .get(ANSIBLE_GROUP_LABEL)
            .filter(|g| !g.is_empty())
        {
            groups
                .entry(g.as_str())
                .or_default()
                .insert(&node.long_name, node);
        }
    }

    let mut out = String::new();
    out.push_str("all:\n");
    out.push_str("  vars:\n");
    out.push_str("    # The inventory is meant for use on the lab host: keep Ansible's HTTP API off any proxy.\n");
    out.push_str("    ansible_httpapi_use_proxy: false\n");
    if groups.is_empty() {
        out.push_str("  children: {}\n");
        return out;
    }
    out.push_str("  children:\n");
    for (group, hosts) in &groups {
        let _ = writeln!(out, "    {}:", scalar(group));
        out.push_str("      hosts:\n");
        for (long_name, node) in hosts {
            let _ = writeln!(out, "        {}:", scalar(long_name));
            let no_host_var = node
                .labels
                .get(ANSIBLE_NO_HOST_VAR_LABEL)
                .is_some_and(|v| v == "true");
            if let (Some(ip), false) = (node.mgmt_ipv4, no_host_var) {
                let _ = writeln!(out, "          ansible_host: {ip}");
            }
        }
    }
    out
}

/// The Nornir simple inventory: one entry per node keyed by its long name, with `hostname`
/// (management IPv4), `platform` (the kind) and `groups` (values of `nornir-group*` labels).
pub fn nornir_inventory(lab: &Lab) -> String {
    let mut nodes: Vec<&Node> = workloads(lab).collect();
    nodes.sort_by(|a, b| a.long_name.cmp(&b.long_name));

    let mut out = String::from("---\n");
    if nodes.is_empty() {
        out.push_str("{}\n");
        return out;
    }
    for node in nodes {
        let _ = writeln!(out, "{}:", scalar(&node.long_name));
        if let Some(ip) = node.mgmt_ipv4 {
            let _ = writeln!(out, "  hostname: {ip}");
        }
        let _ = writeln!(out, "  platform: {}", scalar(&node.kind));
        let mut groups: Vec<&str> = node
            .labels
            .iter()
            .filter(|(k, v)| k.starts_with(NORNIR_GROUP_LABEL_PREFIX) && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        if !groups.is_empty() {
            out.push_str("  groups:\n");
            for g in groups {
                let _ = writeln!(out, "    - {}", scalar(g));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::test_lab;

    #[test]
    fn ansible_groups_by_kind_and_label() {
        let lab = test_lab::lab();
        let want = "\
all:
  vars:
    # The inventory is meant for use on the lab host: keep Ansible's HTTP API off any proxy.
    ansible_httpapi_use_proxy: false
  children:
    edge:
      hosts:
        clab-t-n1:
          ansible_host: 172.20.20.2
        clab-t-n3:
    linux:
      hosts:
        clab-t-n1:
          ansible_host: 172.20.20.2
        clab-t-n3:
    nokia_srlinux:
      hosts:
        clab-t-n2:
          ansible_host: 172.20.20.9
    \"yes\":
      hosts:
        clab-t-n2:
          ansible_host: 172.20.20.9
";
        assert_eq!(ansible_inventory(&lab), want);
    }

    #[test]
    fn ansible_without_workloads_is_still_valid() {
        let mut lab = test_lab::lab();
        lab.nodes.retain(|n| !n.is_workload());
        assert!(ansible_inventory(&lab).ends_with("  children: {}\n"));
    }

    #[test]
    fn nornir_lists_workloads_with_platform_and_groups() {
        let lab = test_lab::lab();
        let want = "\
---
clab-t-n1:
  hostname: 172.20.20.2
  platform: linux
clab-t-n2:
  hostname: 172.20.20.9
  platform: nokia_srlinux
  groups:
    - core
    - spine
clab-t-n3:
  platform: linux
";
        assert_eq!(nornir_inventory(&lab), want);
    }
}
