//! `labwire generate`: ring and CLOS topologies of any size.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub shape: Shape,
    /// Lab name
    #[arg(long, global = true, default_value = "gen")]
    pub name: String,
    /// Write to this file instead of standard output
    #[arg(short, long, global = true)]
    pub output: Option<PathBuf>,
    /// Second octet of the management network used for labs over 250 nodes (10.N.0.0/16)
    #[arg(long, global = true, default_value_t = 99)]
    pub mgmt_index: u8,
}

#[derive(Subcommand)]
pub enum Shape {
    /// N nodes in a ring
    Ring {
        #[arg(long)]
        nodes: usize,
    },
    /// Tiers of nodes, each node linked to every node of the next tier (e.g. --tiers 8,4)
    Clos {
        #[arg(long, value_delimiter = ',')]
        tiers: Vec<usize>,
    },
}

pub fn run(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let text = match a.shape {
        Shape::Ring { nodes } => lab::generate::ring(&a.name, nodes, a.mgmt_index),
        Shape::Clos { tiers } => lab::generate::clos(&a.name, &tiers, a.mgmt_index),
    };
    match a.output {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
