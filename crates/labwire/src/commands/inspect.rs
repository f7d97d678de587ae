//! `labwire inspect`: what is deployed, as a table, containerlab's JSON or CSV; `inspect
//! interfaces`: each node's interfaces, read from its network namespace.

use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct InspectArgs {
    #[command(subcommand)]
    pub sub: Option<InspectSub>,
    #[command(flatten)]
    pub lab: super::LabRef,
    /// Every deployed lab
    #[arg(short, long, conflicts_with_all = ["topo", "name"])]
    pub all: bool,
    #[arg(short, long, value_parser = ["table", "json", "csv"], default_value = "table")]
    pub format: String,
    /// Only these nodes (comma-separated, short or long names)
    #[arg(long, value_delimiter = ',')]
    pub node_filter: Vec<String>,
}

#[derive(Subcommand)]
pub enum InspectSub {
    /// Each node's interfaces: name, alias, MAC, index, MTU, type, state
    #[command(visible_alias = "int")]
    Interfaces {
        #[command(flatten)]
        lab: super::LabRef,
        /// Only this node (short or long name)
        #[arg(short, long)]
        node: Option<String>,
        #[arg(short, long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
}

pub fn run(a: InspectArgs) -> anyhow::Result<ExitCode> {
    if let Some(InspectSub::Interfaces { lab, node, format }) = a.sub {
        let name = lab.resolve()?;
        let nodes: Vec<String> = node.into_iter().collect();
        let ifs = lab::inspect::interfaces(&name, &nodes)?;
        if format == "json" {
            println!("{}", serde_json::to_string_pretty(&ifs)?);
        } else {
            print!("{}", interfaces_table(&ifs));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut labs = if a.all {
        lab::inspect::all()
    } else {
        let name = a.lab.resolve()?;
        match lab::inspect::lab(&name) {
            Some((_, rows)) => vec![(name, rows)],
            None => bail!("lab {name} is not deployed"),
        }
    };
    for (name, rows) in &mut labs {
        lab::inspect::check_health(name, rows);
    }
    if !a.node_filter.is_empty() {
        for (_, rows) in &mut labs {
            rows.retain(|r| a.node_filter.iter().any(|f| r.node == *f || r.name == *f));
        }
    }
    match a.format.as_str() {
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&lab::inspect::to_json(&labs))?
        ),
        "csv" => print!(
            "{}",
            crate::clab::format::inspect_csv(&crate::clab::format::sorted(&labs))
        ),
        _ if labs.is_empty() => eprintln!("no labs are deployed"),
        _ => print!("{}", lab::inspect::table(&labs)),
    }
    Ok(ExitCode::SUCCESS)
}

fn interfaces_table(nodes: &[lab::inspect::NodeInterfaces]) -> String {
    let mut out = format!(
        "{:<28} {:<16} {:<18} {:>6} {:>6} {:<8} {}\n",
        "NODE", "NAME", "MAC", "INDEX", "MTU", "TYPE", "STATE"
    );
    for n in nodes {
        for f in &n.interfaces {
            out.push_str(&format!(
                "{:<28} {:<16} {:<18} {:>6} {:>6} {:<8} {}\n",
                n.name, f.name, f.mac, f.ifindex, f.mtu, f.kind, f.state
            ));
        }
    }
    out
}
