//! What the host's and the nodes' network look like to `ip`: read-only `ip` commands (JSON), the
//! host's interface names, interface state (MAC, up, MTU) and the interfaces topology-data.json
//! says each node has.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::*;

/// `ip ARGS` on the host (read-only uses only).
pub fn ip(args: &[&str]) -> Output {
    let mut c = Command::new("ip");
    c.args(args);
    run_timeout(c, Duration::from_secs(30))
}

pub fn ip_json(args: &[&str]) -> Value {
    let out = ip(args);
    assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ip {args:?} printed no JSON ({e}): {}", describe(&out)))
}

/// Names of the host's interfaces.
pub fn host_link_names() -> BTreeSet<String> {
    match ip_json(&["-j", "link"]) {
        Value::Array(a) => a
            .iter()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect(),
        v => panic!("ip -j link printed {v}"),
    }
}

/// A link of `ip -j link` as (name, mac, up with carrier, mtu).
pub struct IfState {
    pub mac: String,
    pub up: bool,
    pub mtu: u64,
}

pub fn if_states(links: &[Value]) -> BTreeMap<String, IfState> {
    links
        .iter()
        .filter_map(|l| {
            let name = l["ifname"].as_str()?.to_string();
            let flags: Vec<&str> = l["flags"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            Some((
                name,
                IfState {
                    mac: l["address"].as_str().unwrap_or_default().to_lowercase(),
                    up: flags.contains(&"UP")
                        && flags.contains(&"LOWER_UP")
                        && l["operstate"] == "UP",
                    mtu: l["mtu"].as_u64().unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// Every interface each node should have, from topology-data.json: node → iface → MAC
/// (eth0 from the node's `mac-address`, the rest from the links' endpoints).
pub fn expected_interfaces(data: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, n) in data["nodes"]
        .as_object()
        .expect("topology-data.json has nodes")
    {
        if let Some(mac) = n["mac-address"].as_str().filter(|m| !m.is_empty()) {
            out.entry(name.clone())
                .or_default()
                .insert("eth0".into(), mac.to_lowercase());
        }
    }
    for l in data["links"]
        .as_array()
        .expect("topology-data.json has links")
    {
        for end in ["a", "z"] {
            let e = &l["endpoints"][end];
            let (Some(node), Some(iface), Some(mac)) = (
                e["node"].as_str(),
                e["interface"].as_str(),
                e["mac"].as_str(),
            ) else {
                continue;
            };
            if data["nodes"].get(node).is_some() {
                out.entry(node.to_string())
                    .or_default()
                    .insert(iface.to_string(), mac.to_lowercase());
            }
        }
    }
    out
}

/// Wait until every named interface of `node` exists, is up with carrier and has its MAC.
pub fn assert_interfaces_up(lab: &TestLab, node: &str, expected: &BTreeMap<String, String>) {
    let r = poll(Duration::from_secs(5), || {
        let have = if_states(&lab.links(node));
        let mut problems = Vec::new();
        for (iface, mac) in expected {
            match have.get(iface) {
                None => problems.push(format!(
                    "{iface} missing (has {:?})",
                    have.keys().collect::<Vec<_>>()
                )),
                Some(s) if !s.up => problems.push(format!("{iface} is not up")),
                Some(s) if s.mac != *mac => problems.push(format!(
                    "{iface} has MAC {}, topology-data.json says {mac}",
                    s.mac
                )),
                Some(_) => {}
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    });
    if let Err(e) = r {
        panic!("lab {} node {node}: {e}", lab.name);
    }
}

/// Deletes a host bridge this test made (through labwire) if it is still there when dropped.
pub struct RemoveBridgeOnDrop(pub &'static str);

impl Drop for RemoveBridgeOnDrop {
    fn drop(&mut self) {
        if host_link_names().contains(self.0) {
            let _ = ip(&["link", "del", self.0, "type", "bridge"]);
        }
    }
}
