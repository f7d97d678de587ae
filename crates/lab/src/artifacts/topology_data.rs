//! `topology-data.json`: the machine-readable description of a deployed lab that containerlab's
//! tooling (graph viewers, editors, scripts) reads from the lab directory.
//!
//! Owns the document's shape only: it is built from the normalised [`Lab`] and the SSH keys handed
//! in, and never looks at the host.

use std::path::Path;

use serde_json::{json, Map, Value};
use topology::{Endpoint, Lab, Link, Node, Peer};

/// Interface name of every node's management port.
pub const MGMT_INTERFACE: &str = "eth0";

/// The `topology-data.json` document for `lab`.
pub fn topology_data(lab: &Lab, ssh_pub_keys: &[String]) -> Value {
    let nodes: Map<String, Value> = lab
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), node_entry(lab, i, n)))
        .collect();
    let links: Vec<Value> = lab.links.iter().map(link_entry).collect();
    json!({
        "name": lab.name,
        "type": "clab",
        "clab": {
            "config": {
                "prefix": lab.prefix,
                "mgmt": mgmt_entry(lab),
                "config-path": config_path(lab),
            }
        },
        "ssh-pub-keys": ssh_pub_keys,
        "nodes": nodes,
        "links": links,
    })
}

/// [`topology_data`] as pretty JSON text, the same text, written node by node and link by link: a
/// 10,000-node lab's document as one `Value` tree would cost over a hundred megabytes.
pub fn topology_data_text(lab: &Lab, ssh_pub_keys: &[String]) -> String {
    // serde_json's maps sort their keys: the fields go in that order, and the nodes by name.
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        clab: Value,
        links: Links<'a>,
        name: &'a str,
        nodes: Nodes<'a>,
        #[serde(rename = "ssh-pub-keys")]
        ssh_pub_keys: &'a [String],
        #[serde(rename = "type")]
        kind: &'static str,
    }
    struct Nodes<'a>(&'a Lab);
    impl serde::Serialize for Nodes<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let lab = self.0;
            // A name given twice keeps its last node, as a map insert would.
            let mut order: Vec<usize> = (0..lab.nodes.len()).collect();
            order.sort_by(|&a, &b| lab.nodes[a].name.cmp(&lab.nodes[b].name).then(b.cmp(&a)));
            order.dedup_by(|a, b| lab.nodes[*a].name == lab.nodes[*b].name);
            let mut m = s.serialize_map(Some(order.len()))?;
            for i in order {
                let n = &lab.nodes[i];
                m.serialize_entry(&n.name, &node_entry(lab, i, n))?;
            }
            m.end()
        }
    }
    struct Links<'a>(&'a [Link]);
    impl serde::Serialize for Links<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(link_entry))
        }
    }
    let doc = Doc {
        clab: json!({
            "config": {
                "prefix": lab.prefix,
                "mgmt": mgmt_entry(lab),
                "config-path": config_path(lab),
            }
        }),
        links: Links(&lab.links),
        name: &lab.name,
        nodes: Nodes(lab),
        ssh_pub_keys,
        kind: "clab",
    };
    serde_json::to_string_pretty(&doc).expect("the document always serialises")
}

/// The directory holding the topology file (the lab directory's parent when read from stdin).
fn config_path(lab: &Lab) -> String {
    lab.topology_file
        .as_deref()
        .and_then(Path::parent)
        .or_else(|| lab.dir.parent())
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn mgmt_entry(lab: &Lab) -> Value {
    let m = &lab.mgmt;
    let mut out = Map::new();
    out.insert("network".into(), json!(m.network));
    out.insert("bridge".into(), json!(m.bridge));
    let optional = [
        ("ipv4-subnet", m.ipv4_subnet.map(|v| v.to_string())),
        ("ipv4-gw", m.ipv4_gw.map(|v| v.to_string())),
        ("ipv4-range", m.ipv4_range.map(|v| v.to_string())),
        ("ipv6-subnet", m.ipv6_subnet.map(|v| v.to_string())),
        ("ipv6-gw", m.ipv6_gw.map(|v| v.to_string())),
        ("ipv6-range", m.ipv6_range.map(|v| v.to_string())),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            out.insert(key.into(), json!(v));
        }
    }
    out.insert("mtu".into(), json!(m.mtu));
    out.insert("external-access".into(), json!(m.external_access));
    Value::Object(out)
}

/// The labels containerlab puts on every node of every runtime (`exec --label` selects by them
/// too).
pub fn builtin_labels(lab: &Lab, node: &Node) -> [(&'static str, String); 7] {
    let topo_file = lab
        .topology_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    [
        ("clab-node-name", node.name.clone()),
        ("clab-node-kind", node.kind.clone()),
        ("clab-node-type", node.node_type.clone().unwrap_or_default()),
        ("clab-node-group", node.group.clone().unwrap_or_default()),
        ("clab-node-lab-dir", node.dir.display().to_string()),
        ("clab-topo-file", topo_file),
        ("containerlab", lab.name.clone()),
    ]
}

/// The built-in labels, then the node's own (which cannot override them).
fn node_labels(lab: &Lab, node: &Node) -> Map<String, Value> {
    let mut labels: Map<String, Value> = node
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    for (k, v) in builtin_labels(lab, node) {
        labels.insert(k.into(), json!(v));
    }
    labels
}

fn node_entry(lab: &Lab, index: usize, node: &Node) -> Value {
    let v4_len = lab.mgmt.ipv4_subnet.map_or(0, |n| n.prefix_len());
    let v6_len = lab.mgmt.ipv6_subnet.map_or(0, |n| n.prefix_len());
    json!({
        "index": index.to_string(),
        "shortname": node.name,
        "longname": node.long_name,
        "fqdn": format!("{}.{}.io", node.name, lab.name),
        "group": node.group.clone().unwrap_or_default(),
        "labdir": node.dir.display().to_string(),
        "kind": node.kind,
        "image": node.image.clone().unwrap_or_default(),
        "mgmt-net": lab.mgmt.network,
        "mgmt-intf": MGMT_INTERFACE,
        "mgmt-ipv4-address": node.mgmt_ipv4.map(|a| a.to_string()).unwrap_or_default(),
        "mgmt-ipv4-prefix-length": if node.mgmt_ipv4.is_some() { v4_len } else { 0 },
        "mgmt-ipv6-address": node.mgmt_ipv6.map(|a| a.to_string()).unwrap_or_default(),
        "mgmt-ipv6-prefix-length": if node.mgmt_ipv6.is_some() { v6_len } else { 0 },
        "mac-address": node.mgmt_mac.to_string(),
        "labels": node_labels(lab, node),
        "port-bindings": [],
    })
}

fn endpoint_entry(ep: &Endpoint, peer: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("node".into(), json!(ep.node));
    // The name as the topology wrote it (a vendor port name is mapped to a Linux one).
    out.insert("interface".into(), json!(ep.written()));
    if ep.alias.is_some() {
        out.insert("linux-interface".into(), json!(ep.iface));
    }
    out.insert("mac".into(), json!(ep.mac.to_string()));
    if let Some(v4) = ep.ipv4 {
        out.insert("ipv4".into(), json!(v4.to_string()));
    }
    if let Some(v6) = ep.ipv6 {
        out.insert("ipv6".into(), json!(v6.to_string()));
    }
    out.insert("peer".into(), json!(peer));
    out
}

/// A far side that is not a node: the host, the management network, or a device kind.
fn pseudo_endpoint(node: &str, iface: &str, mac: String) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("node".into(), json!(node));
    out.insert("interface".into(), json!(iface));
    out.insert("mac".into(), json!(mac));
    out.insert("peer".into(), json!("a"));
    out
}

fn vxlan_fields(
    z: &mut Map<String, Value>,
    remote: &std::net::IpAddr,
    vni: u32,
    port: u16,
    parent: Option<&str>,
) {
    z.insert("remote".into(), json!(remote.to_string()));
    z.insert("vni".into(), json!(vni));
    z.insert("udp-port".into(), json!(port));
    if let Some(p) = parent {
        z.insert("parent-interface".into(), json!(p));
    }
}

fn link_entry(link: &Link) -> Value {
    let a = endpoint_entry(&link.a, "z");
    let z = match &link.peer {
        Peer::Veth { b } => endpoint_entry(b, "a"),
        Peer::Host {
            host_iface,
            host_mac,
        } => pseudo_endpoint(
            "host",
            link.host_alias.as_deref().unwrap_or(host_iface),
            host_mac.to_string(),
        ),
        Peer::MgmtNet {
            host_iface,
            host_mac,
        } => pseudo_endpoint(
            "mgmt-net",
            link.host_alias.as_deref().unwrap_or(host_iface),
            host_mac.to_string(),
        ),
        Peer::Macvlan { parent, mode } => {
            let mut z = pseudo_endpoint("macvlan", parent, String::new());
            z.insert("mode".into(), json!(format!("{mode:?}").to_lowercase()));
            z
        }
        Peer::Vxlan {
            remote,
            vni,
            udp_port,
            parent,
        } => {
            let mut z = pseudo_endpoint("vxlan", parent.as_deref().unwrap_or(""), String::new());
            vxlan_fields(&mut z, remote, *vni, *udp_port, parent.as_deref());
            z
        }
        Peer::VxlanStitch {
            remote,
            vni,
            udp_port,
            parent,
            host_iface,
            host_mac,
            ..
        } => {
            let mut z = pseudo_endpoint("vxlan", host_iface, host_mac.to_string());
            vxlan_fields(&mut z, remote, *vni, *udp_port, parent.as_deref());
            z
        }
        Peer::Dummy => pseudo_endpoint("dummy", "", String::new()),
    };
    let mut out = Map::new();
    out.insert("endpoints".into(), json!({ "a": a, "z": z }));
    if !link.vars.is_empty() {
        out.insert("vars".into(), json!(link.vars));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::test_lab;

    #[test]
    fn the_streamed_text_is_the_documents() {
        let lab = test_lab::lab();
        let keys = vec!["ssh-ed25519 AAAA".to_string()];
        let want = serde_json::to_string_pretty(&topology_data(&lab, &keys)).unwrap();
        assert_eq!(topology_data_text(&lab, &keys), want);
        let ring = crate::generate::ring("r", 30, 7);
        let src = topology::Source::from_text("r.clab.yml", ring, Path::new("/tmp"));
        let ring = topology::load(&src, &topology::Options::default())
            .unwrap_or_else(|e| panic!("{e}"))
            .lab;
        let want = serde_json::to_string_pretty(&topology_data(&ring, &[])).unwrap();
        assert_eq!(topology_data_text(&ring, &[]), want);
    }

    #[test]
    fn document_head_and_mgmt() {
        let lab = test_lab::lab();
        let keys = vec!["ssh-ed25519 AAAA".to_string()];
        let doc = topology_data(&lab, &keys);
        assert_eq!(doc["name"], "t");
        assert_eq!(doc["type"], "clab");
        assert_eq!(doc["ssh-pub-keys"], json!(keys));
        assert_eq!(
            doc["clab"],
            json!({"config": {
                "prefix": "clab",
                "mgmt": {
                    "network": "clab",
                    "bridge": "br-clab",
                    "ipv4-subnet": "172.20.20.0/24",
                    "ipv4-gw": "172.20.20.1",
                    "ipv6-subnet": "3fff:172:20:20::/64",
                    "ipv6-gw": "3fff:172:20:20::1",
                    "mtu": 1500,
                    "external-access": true
                },
                "config-path": "/tmp/x"
            }})
        );
    }

    #[test]
    fn node_entries() {
        let lab = test_lab::lab();
        let doc = topology_data(&lab, &[]);
        let nodes = doc["nodes"].as_object().unwrap();
        assert_eq!(nodes.keys().collect::<Vec<_>>(), ["br0", "n1", "n2", "n3"]);
        let n1 = lab.node("n1").unwrap();
        assert_eq!(
            doc["nodes"]["n1"],
            json!({
                "index": "0",
                "shortname": "n1",
                "longname": "clab-t-n1",
                "fqdn": "n1.t.io",
                "group": "leaf",
                "labdir": "/tmp/x/clab-t/n1",
                "kind": "linux",
                "image": "alpine:3",
                "mgmt-net": "clab",
                "mgmt-intf": "eth0",
                "mgmt-ipv4-address": "172.20.20.2",
                "mgmt-ipv4-prefix-length": 24,
                "mgmt-ipv6-address": n1.mgmt_ipv6.unwrap().to_string(),
                "mgmt-ipv6-prefix-length": 64,
                "mac-address": n1.mgmt_mac.to_string(),
                "labels": {
                    "ansible-group": "edge",
                    "site": "lab1",
                    "clab-node-name": "n1",
                    "clab-node-kind": "linux",
                    "clab-node-type": "",
                    "clab-node-group": "leaf",
                    "clab-node-lab-dir": "/tmp/x/clab-t/n1",
                    "clab-topo-file": "",
                    "containerlab": "t"
                },
                "port-bindings": []
            })
        );
        let n2 = &doc["nodes"]["n2"];
        assert_eq!(n2["index"], "1");
        assert_eq!(n2["labels"]["clab-node-type"], "ixr-d2");
        assert_eq!(n2["mgmt-ipv4-address"], "172.20.20.9");
        let n3 = &doc["nodes"]["n3"];
        assert_eq!(n3["mgmt-ipv4-address"], "");
        assert_eq!(n3["mgmt-ipv4-prefix-length"], 0);
        assert_eq!(n3["image"], "");
    }

    #[test]
    fn link_entries_for_every_peer_kind() {
        let lab = test_lab::lab();
        let doc = topology_data(&lab, &[]);
        let links = doc["links"].as_array().unwrap();
        assert_eq!(links.len(), lab.links.len());
        let mac = |i: usize| lab.links[i].a.mac.to_string();

        let veth = &links[0]["endpoints"];
        let Peer::Veth { b } = &lab.links[0].peer else {
            panic!("first link is a veth")
        };
        assert_eq!(
            links[0],
            json!({"endpoints": {
                "a": {"node": "n1", "interface": "e1-1", "mac": mac(0), "ipv4": "10.0.0.1/30", "peer": "z"},
                "z": {"node": "n2", "interface": "e1-1", "mac": b.mac.to_string(), "ipv4": "10.0.0.2/30", "peer": "a"}
            }})
        );
        assert_eq!(veth["a"]["peer"], "z");

        let Peer::Host { host_mac, .. } = &lab.links[1].peer else {
            panic!("second link goes to the host")
        };
        assert_eq!(
            links[1]["endpoints"]["z"],
            json!({"node": "host", "interface": "n1-eth2", "mac": host_mac.to_string(), "peer": "a"})
        );
        assert_eq!(links[2]["endpoints"]["z"]["node"], "mgmt-net");
        assert_eq!(links[2]["endpoints"]["z"]["interface"], "n1-eth3");
        // A link to a bridge node is an ordinary veth whose far side is the bridge.
        assert_eq!(links[3]["endpoints"]["z"]["node"], "br0");
        assert_eq!(
            links[4]["endpoints"]["z"],
            json!({"node": "macvlan", "interface": "eth0", "mac": "", "mode": "bridge", "peer": "a"})
        );
        assert_eq!(
            links[5]["endpoints"]["z"],
            json!({"node": "vxlan", "interface": "", "mac": "", "remote": "10.0.0.2", "vni": 100,
                   "udp-port": 14789, "peer": "a"})
        );
        assert_eq!(
            links[6]["endpoints"],
            json!({
                "a": {"node": "n3", "interface": "d0", "mac": mac(6), "peer": "z"},
                "z": {"node": "dummy", "interface": "", "mac": "", "peer": "a"}
            })
        );
    }
}
