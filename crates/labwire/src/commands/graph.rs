//! `labwire graph`: the topology as Graphviz dot, Mermaid, a draw.io diagram, or the page of
//! `labwire serve` as one self-contained HTML file; offline, to stdout or a file.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serve::view::far_end;
use topology::Lab;

use super::TopoArg;

#[derive(Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub topo: TopoArg,
    /// Graphviz dot (the default)
    #[arg(long, conflicts_with_all = ["mermaid", "html", "drawio"])]
    pub dot: bool,
    /// Mermaid flowchart
    #[arg(long, conflicts_with_all = ["html", "drawio"])]
    pub mermaid: bool,
    /// The lab page of `labwire serve` as one self-contained file (no server needed)
    #[arg(long, conflicts_with = "drawio")]
    pub html: bool,
    /// A draw.io (diagrams.net) diagram
    #[arg(long)]
    pub drawio: bool,
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
    let text = if a.mermaid {
        mermaid(&lab)
    } else if a.html {
        serve::view::static_html(&serve::view::LabView::planned(&lab))
    } else if a.drawio {
        serve::view::drawio(&serve::view::LabView::planned(&lab))
    } else {
        dot(&lab)
    };
    match a.output {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `s` inside a Graphviz string: backslashes and quotes escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

pub fn dot(lab: &Lab) -> String {
    let mut out = format!("graph {} {{\n  node [shape=box];\n", quote(&lab.name));
    for n in &lab.nodes {
        // Two lines: Graphviz's own `\n` between the escaped name and kind.
        let _ = writeln!(
            out,
            "  {} [label=\"{}\\n{}\"];",
            quote(&n.name),
            escape(&n.name),
            escape(&n.kind)
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
