//! Partitions (a lab split across hosts): the schema's errors with file:line:col, inheritance of
//! `partition` through groups and defaults, and the view one host deploys — crossing links become
//! VXLAN tunnels with the one-host names, MACs, addresses and MTU, and a VNI both ends derive alike.

use std::net::IpAddr;
use std::path::Path;

use topology::partition::{self, view};
use topology::{load, Lab, Options, Peer, Source};

const FILE: &str = "p.clab.yml";

fn no_env(_: &str) -> Option<String> {
    None
}

fn no_files(p: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        p.display().to_string(),
    ))
}

fn run(text: &str) -> Result<Lab, String> {
    let src = Source::from_text(FILE, text, Path::new("/labs"));
    let opts = Options {
        env: &no_env,
        runtime: None,
        read_file: &no_files,
    };
    load(&src, &opts)
        .map(|l| l.lab)
        .map_err(|e| e.0.render(false))
}

#[track_caller]
fn expect_error(text: &str, at: &str, tokens: &[&str]) {
    let out = run(text).expect_err("expected errors");
    let want = format!("{FILE}:{at}: error: ");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&want) && tokens.iter().all(|t| l.contains(t))),
        "no error at {at} naming {tokens:?}; got:\n{out}"
    );
}

const LAB: &str = "\
name: prt-unit
partitions:
  east: {address: 10.186.0.1}
  west: {address: west.example.net}
topology:
  defaults: {partition: east}
  groups:
    far: {partition: west}
  nodes:
    a: {}
    b: {group: far}
    c: {partition: west}
  links:
    - endpoints: [\"a:eth1\", \"b:eth1\"]
    - type: veth
      endpoints:
        - {node: a, interface: eth2, ipv4: 192.168.186.1/30}
        - {node: c, interface: eth9, ipv4: 192.168.186.2/30}
      mtu: 1400
    - endpoints: [\"b:eth2\", \"c:eth2\"]
";

fn addr(_: &str, p: &topology::Partition) -> Result<IpAddr, String> {
    match p.address.as_str() {
        "west.example.net" => Ok("10.186.0.2".parse().unwrap()),
        a => a.parse().map_err(|e| format!("{e}")),
    }
}

#[test]
fn partition_inherits_through_defaults_and_groups() {
    let lab = run(LAB).unwrap();
    let part = |n: &str| lab.node(n).unwrap().partition.clone().unwrap();
    assert_eq!(part("a"), "east");
    assert_eq!(part("b"), "west");
    assert_eq!(part("c"), "west");
    assert_eq!(lab.partitions["west"].address, "west.example.net");
}

#[test]
fn view_turns_crossing_links_into_tunnels_with_one_host_names() {
    let lab = run(LAB).unwrap();
    let east = view(&lab, "east", &addr).unwrap();
    let west = view(&lab, "west", &addr).unwrap();
    assert_eq!(
        east.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    assert_eq!(west.nodes.len(), 2);
    // The whole lab rides along for the artifacts.
    assert_eq!(east.whole().nodes.len(), 3);
    assert_eq!(east.part_of.as_ref().unwrap().partition, "east");

    assert_eq!(east.links.len(), 2);
    assert_eq!(west.links.len(), 3, "b—c stays a veth, plus two tunnels");
    let tunnel = |l: &Lab, node: &str, iface: &str| {
        let link = l
            .links
            .iter()
            .find(|x| x.a.node == node && x.a.iface == iface)
            .unwrap_or_else(|| panic!("no link at {node}:{iface}"));
        match &link.peer {
            Peer::VxlanStitch {
                remote,
                vni,
                udp_port,
                parent,
                host_iface,
                ..
            } => {
                assert_eq!(*udp_port, partition::VXLAN_PORT);
                assert!(parent.is_none());
                assert_eq!(*host_iface, partition::stitch_iface(*vni));
                assert!(host_iface.len() <= 15);
                (link.clone(), *remote, *vni)
            }
            p => panic!("{node}:{iface} is {p:?}"),
        }
    };
    let (a2, a2_remote, a2_vni) = tunnel(&east, "a", "eth2");
    let (c9, c9_remote, c9_vni) = tunnel(&west, "c", "eth9");
    assert_eq!(a2_vni, c9_vni, "both ends derive the same VNI");
    assert_eq!(a2_remote, "10.186.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(c9_remote, "10.186.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(a2.mtu, 1400);
    assert_eq!(c9.mtu, 1400);
    // Same MAC and address as the one-host link.
    let one_host = lab
        .links
        .iter()
        .find(|l| l.a.iface == "eth2" && l.a.node == "a")
        .unwrap();
    let Peer::Veth { b } = &one_host.peer else {
        panic!()
    };
    assert_eq!(a2.a, one_host.a);
    assert_eq!(c9.a, *b);
    let (_, _, a1_vni) = tunnel(&east, "a", "eth1");
    let (_, _, b1_vni) = tunnel(&west, "b", "eth1");
    assert_eq!(a1_vni, b1_vni);
    assert_ne!(a1_vni, a2_vni, "links of one lab never share a VNI");
    assert!(a1_vni > 0 && a1_vni < (1 << 24));
    assert!(
        !west
            .links
            .iter()
            .any(|l| matches!(l.peer, Peer::VxlanStitch { .. })
                && l.a.node == "b"
                && l.a.iface == "eth2"),
        "a link inside one partition stays a veth"
    );
}

#[test]
fn vni_depends_on_lab_and_place_only() {
    assert_eq!(partition::vni("x", 0), partition::vni("x", 0));
    assert_ne!(partition::vni("x", 0), partition::vni("x", 1));
    assert_eq!(partition::vni("x", 4094) & 0xfff, 4095);
}

#[test]
fn unknown_partition_is_an_error_at_its_value() {
    let text = LAB.replace("c: {partition: west}", "c: {partition: wset}");
    expect_error(&text, "12:20", &["partition `wset`", "does not define"]);
}

#[test]
fn node_without_partition_is_an_error_at_the_node() {
    let text = LAB.replace("  defaults: {partition: east}\n", "");
    expect_error(&text, "9:5", &["node a has no `partition`"]);
}

#[test]
fn partition_without_partitions_is_an_error() {
    let text = LAB.replace(
        "partitions:\n  east: {address: 10.186.0.1}\n  west: {address: west.example.net}\n",
        "",
    );
    expect_error(
        &text,
        "3:25",
        &["partition `east`", "no top-level `partitions`"],
    );
}

#[test]
fn bad_address_and_missing_address_are_errors() {
    let text = LAB.replace("west.example.net", "bad_name!");
    expect_error(&text, "4:19", &["`address` of partition west", "bad_name!"]);
    let out = run(&text).unwrap_err();
    assert_eq!(
        out.matches("error:").count(),
        1,
        "one error, no follow-ups:\n{out}"
    );
    let text = LAB.replace("{address: 10.186.0.1}", "{}");
    expect_error(&text, "3:9", &["partition east has no `address`"]);
    let text = LAB.replace("{address: 10.186.0.1}", "{adress: 10.186.0.1}");
    expect_error(&text, "3:10", &["unknown key `adress`"]);
}

#[test]
fn a_bridge_cannot_span_partitions() {
    let text = LAB
        .replace("c: {partition: west}", "c: {partition: west, kind: bridge}")
        .replace("    - endpoints: [\"b:eth2\", \"c:eth2\"]\n", "");
    expect_error(&text, "15:7", &["crosses partitions", "c (west)"]);
}

#[test]
fn view_of_an_unknown_partition_names_the_partitions() {
    let lab = run(LAB).unwrap();
    let e = view(&lab, "est", &addr).unwrap_err();
    assert!(
        e.contains("east, west") && e.contains("did you mean `east`"),
        "{e}"
    );
    let plain = run("name: prt-u2\ntopology: {nodes: {a: {}}}\n").unwrap();
    assert!(view(&plain, "east", &addr)
        .unwrap_err()
        .contains("no `partitions`"));
}
