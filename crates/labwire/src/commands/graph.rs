//! `labwire graph`: the topology as Graphviz dot or Mermaid, offline, to stdout or a file.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use topology::{Lab, Link, Peer};

use super::TopoArg;

#[derive(Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// Graphviz dot (the default)
    #[arg(long, conflicts_with = "mermaid")]
    pub dot: bool,
    /// Mermaid flowchart
    #[arg(long)]
    pub mermaid: bool,
    /// Write to this file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Only these nodes (comma-separated) and the links between them
    #[arg(long, value_delimiter = ',')]
    pub node_filter: Vec<String>,
}

pub fn run(a: GraphArgs) -> anyhow::Result<ExitCode> {
    let mut lab = a.topo.load()?;
    super::filter_nodes(&mut lab, &a.node_filter)?;
    let text = if a.mermaid { mermaid(&lab) } else { dot(&lab) };
    match a.output {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The far end of a link as a graph vertex and its label (interface names as written).
fn far_end(l: &Link) -> (String, String) {
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

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn dot(lab: &Lab) -> String {
    let mut out = format!("graph {} {{\n  node [shape=box];\n", quote(&lab.name));
    for n in &lab.nodes {
        let _ = writeln!(
            out,
            "  {} [label={}];",
            quote(&n.name),
            quote(&format!("{}\\n{}", n.name, n.kind))
        );
    }
    for l in &lab.links {
        let (b, biface) = far_end(l);
        let _ = writeln!(
            out,
            "  {} -- {} [taillabel={}, headlabel={}];",
            quote(&l.a.node),
            quote(&b),
            quote(l.a.written()),
            quote(&biface)
        );
    }
    out.push_str("}\n");
    out
}

fn mermaid_id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

pub fn mermaid(lab: &Lab) -> String {
    let mut out = String::from("flowchart LR\n");
    for n in &lab.nodes {
        let _ = writeln!(
            out,
            "  {}[\"{} ({})\"]",
            mermaid_id(&n.name),
            n.name,
            n.kind
        );
    }
    for l in &lab.links {
        let (b, biface) = far_end(l);
        let _ = writeln!(
            out,
            "  {} ---|\"{} — {}\"| {}",
            mermaid_id(&l.a.node),
            l.a.written(),
            biface,
            mermaid_id(&b)
        );
    }
    out
}
