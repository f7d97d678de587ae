//! What the page draws and what the API's lab description holds: a lab as a graph of nodes (kind,
//! runtime, state) and links (both ends with their interface names, state, impairments). Built
//! from a validated `Lab` alone (static exports: `labwire graph --html`) or with the deployed
//! lab's inspect rows (the live view). It reads nothing from the host itself.

use serde::Serialize;
use topology::{Lab, Link, Peer};
use utoipa::ToSchema;

/// A lab as the page and the API show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LabView {
    pub name: String,
    /// The topology file the lab was deployed from (empty when it came from a request body).
    pub topology: String,
    /// `deployed`, or `planned` for a view drawn from a topology file alone.
    pub state: String,
    pub nodes: Vec<NodeView>,
    pub links: Vec<LinkView>,
}

/// One node of the lab.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeView {
    pub name: String,
    pub long_name: String,
    pub kind: String,
    /// native, docker, podman or vm.
    pub runtime: String,
    pub image: String,
    pub group: String,
    /// `running`, `exited`, … as inspect says; `planned` in a static view; `none` for nodes
    /// that are no workload (bridges, the host).
    pub state: String,
    /// Inspect's status (`Up 3 minutes`).
    pub status: String,
    pub mgmt_ipv4: String,
    pub mgmt_ipv6: String,
    /// The node's process (0 when none runs).
    pub pid: i32,
    /// The node's link interfaces, as the topology wrote them.
    pub interfaces: Vec<String>,
}

/// One end of a link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndView {
    /// A node of the lab, or `host`, `mgmt-net`, `vxlan …`, `dummy` for ends outside it.
    pub node: String,
    /// The interface as the topology wrote it.
    pub interface: String,
}

/// One link of the lab.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LinkView {
    /// `node:iface` of its first end: unique in a lab.
    pub id: String,
    /// veth, host, mgmt-net, macvlan, vxlan, vxlan-stitch, dummy.
    pub kind: String,
    pub a: EndView,
    pub b: EndView,
    /// `up`, or `planned` in a static view.
    pub state: String,
    pub mtu: u32,
    /// Link impairments in force (delay, loss, rate, …) as `name: value`; empty when none.
    pub impairments: Vec<String>,
}

/// The far end of a link as a graph vertex and the interface name there (as written).
pub fn far_end(l: &Link) -> (String, String) {
    let host = |h: &String| l.host_alias.clone().unwrap_or_else(|| h.clone());
    match &l.peer {
        Peer::Veth { b } => (b.node.clone(), b.written().to_string()),
        Peer::Host { host_iface, .. } => ("host".into(), host(host_iface)),
        Peer::MgmtNet { host_iface, .. } => ("mgmt-net".into(), host(host_iface)),
        Peer::Macvlan { parent, .. } => ("host".into(), format!("macvlan:{parent}")),
        Peer::Vxlan { remote, vni, .. } | Peer::VxlanStitch { remote, vni, .. } => {
            (format!("vxlan {remote}"), format!("vni {vni}"))
        }
        Peer::Dummy => ("dummy".into(), String::new()),
    }
}

/// Each end's impairment (as the topology declares it): `node:iface delay=100ms loss=20%`.
fn impairments(l: &Link) -> Vec<String> {
    l.endpoints()
        .filter(|ep| ep.impairment != topology::Impairment::default())
        .map(|ep| format!("{}:{} {}", ep.node, ep.written(), ep.impairment.describe()))
        .collect()
}

impl LabView {
    /// The lab as its topology describes it, nothing deployed.
    pub fn planned(lab: &Lab) -> LabView {
        LabView::build(lab, "planned", None)
    }

    /// The deployed lab, each node's state from its inspect row, each link's from its ends'
    /// interfaces as they are now (`live`, from the nodes' namespaces): `up` when every end in a
    /// node is operationally up, else `down`.
    pub fn deployed(
        lab: &Lab,
        rows: &[lab::inspect::Row],
        live: &[lab::inspect::NodeInterfaces],
    ) -> LabView {
        let mut view = LabView::build(lab, "deployed", Some(rows));
        let up = |node: &str, iface: &str| {
            lab.node(node).is_none_or(|n| {
                live.iter()
                    .find(|l| l.name == n.long_name)
                    .and_then(|l| l.interfaces.iter().find(|i| i.name == iface))
                    // `unknown` is a link up whose driver reports no operational state (a veth
                    // set up before its peer existed): it passes traffic.
                    .is_some_and(|i| matches!(i.state.as_str(), "up" | "unknown"))
            })
        };
        for (v, l) in view.links.iter_mut().zip(&lab.links) {
            if !l.endpoints().all(|ep| up(&ep.node, &ep.iface)) {
                v.state = "down".into();
            }
        }
        view
    }

    fn build(lab: &Lab, state: &str, rows: Option<&[lab::inspect::Row]>) -> LabView {
        let nodes = lab
            .nodes
            .iter()
            .map(|n| {
                let row = rows.and_then(|r| r.iter().find(|r| r.node == n.name));
                let interfaces = lab
                    .links
                    .iter()
                    .flat_map(|l| l.endpoints())
                    .filter(|ep| ep.node == n.name)
                    .map(|ep| ep.written().to_string())
                    .collect();
                let node_state = match (row, rows) {
                    (Some(r), _) => r.state.clone(),
                    (None, None) => "planned".into(),
                    (None, Some(_)) => "none".into(),
                };
                NodeView {
                    name: n.name.clone(),
                    long_name: n.long_name.clone(),
                    kind: n.kind.clone(),
                    runtime: n.runtime.to_string(),
                    image: n.image.clone().unwrap_or_default(),
                    group: n.group.clone().unwrap_or_default(),
                    state: node_state,
                    status: row.map(|r| r.status.clone()).unwrap_or_default(),
                    mgmt_ipv4: row.map(|r| r.ipv4_address.clone()).unwrap_or_default(),
                    mgmt_ipv6: row.map(|r| r.ipv6_address.clone()).unwrap_or_default(),
                    pid: row.map_or(0, |r| r.pid),
                    interfaces,
                }
            })
            .collect();
        let link_state = if rows.is_some() { "up" } else { "planned" };
        let links = lab
            .links
            .iter()
            .map(|l| {
                let (b, b_iface) = far_end(l);
                LinkView {
                    id: format!("{}:{}", l.a.node, l.a.written()),
                    kind: l.peer.type_name().to_string(),
                    a: EndView {
                        node: l.a.node.clone(),
                        interface: l.a.written().to_string(),
                    },
                    b: EndView {
                        node: b,
                        interface: b_iface,
                    },
                    state: link_state.to_string(),
                    mtu: l.mtu,
                    impairments: impairments(l),
                }
            })
            .collect();
        LabView {
            name: lab.name.clone(),
            topology: lab
                .topology_file
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            state: state.to_string(),
            nodes,
            links,
        }
    }
}

/// The page's script and style, embedded in the binary (no CDN, no build step).
pub const PAGE_HTML: &str = include_str!("../assets/index.html");
pub const PAGE_JS: &str = include_str!("../assets/app.js");
pub const PAGE_CSS: &str = include_str!("../assets/app.css");

/// The page as one self-contained file showing `view` (no server: no live updates, no terminal).
pub fn static_html(view: &LabView) -> String {
    // `</` inside a script element would end it early.
    let data = serde_json::to_string(view)
        .expect("a view serialises")
        .replace("</", "<\\/");
    PAGE_HTML
        .replace(
            "<link rel=\"stylesheet\" href=\"/app.css\">",
            &format!("<style>\n{PAGE_CSS}</style>"),
        )
        .replace(
            "<script src=\"/app.js\"></script>",
            &format!(
                "<script>window.LABWIRE_STATIC = {data};</script>\n<script>\n{PAGE_JS}</script>"
            ),
        )
}

/// The lab as a draw.io (diagrams.net) diagram: a vertex per node and link end outside the lab,
/// an edge per link labelled with its interface names; nodes laid out on a grid.
pub fn drawio(view: &LabView) -> String {
    use std::fmt::Write as _;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut vertices: Vec<(String, String)> = view
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                format!("{}&lt;br&gt;{}", esc(&n.name), esc(&n.kind)),
            )
        })
        .collect();
    for l in &view.links {
        if !vertices.iter().any(|(v, _)| *v == l.b.node) {
            vertices.push((l.b.node.clone(), esc(&l.b.node)));
        }
    }
    let cols = (vertices.len() as f64).sqrt().ceil().max(1.0) as usize;
    let id_of = |name: &str| {
        vertices
            .iter()
            .position(|(v, _)| v == name)
            .map_or_else(String::new, |i| format!("n{i}"))
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<mxfile host=\"labwire\">\n  <diagram id=\"lab\" name=\"{}\">\n    <mxGraphModel>\n      <root>\n        <mxCell id=\"0\"/>\n        <mxCell id=\"1\" parent=\"0\"/>\n",
        esc(&view.name)
    );
    for (i, (_, label)) in vertices.iter().enumerate() {
        let (x, y) = ((i % cols) * 220 + 40, (i / cols) * 160 + 40);
        let _ = writeln!(
            out,
            "        <mxCell id=\"n{i}\" value=\"{label}\" style=\"rounded=1;whiteSpace=wrap;html=1;\" vertex=\"1\" parent=\"1\">\n          <mxGeometry x=\"{x}\" y=\"{y}\" width=\"120\" height=\"50\" as=\"geometry\"/>\n        </mxCell>"
        );
    }
    for (i, l) in view.links.iter().enumerate() {
        let _ = writeln!(
            out,
            "        <mxCell id=\"l{i}\" value=\"{} — {}\" style=\"endArrow=none;html=1;\" edge=\"1\" parent=\"1\" source=\"{}\" target=\"{}\">\n          <mxGeometry relative=\"1\" as=\"geometry\"/>\n        </mxCell>",
            esc(&l.a.interface),
            esc(&l.b.interface),
            id_of(&l.a.node),
            id_of(&l.b.node)
        );
    }
    out.push_str("      </root>\n    </mxGraphModel>\n  </diagram>\n</mxfile>\n");
    out
}
