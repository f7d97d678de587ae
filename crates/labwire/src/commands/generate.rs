//! `labwire generate`: ring and CLOS topologies of any size, or stages in containerlab's grammar
//! (`--nodes 4,2,1`, `N:kind:type`, `--kind`, `--image`), to a file or deployed at once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub shape: Option<Shape>,
    /// Lab name
    #[arg(long, global = true, default_value = "gen")]
    pub name: String,
    /// Write to this file instead of standard output
    #[arg(short, long, global = true)]
    pub output: Option<PathBuf>,
    /// Second octet of the management network used for labs over 250 nodes (10.N.0.0/16)
    #[arg(long, global = true, default_value_t = 99)]
    pub mgmt_index: u8,
    #[command(flatten)]
    pub stages: StageArgs,
    /// Deploy the generated lab (written to -o, or NAME.clab.yml); destroys it first if deployed
    #[arg(long)]
    pub deploy: bool,
    /// Runtime for the deployed nodes (with --deploy)
    #[arg(short = 'r', long, requires = "deploy")]
    pub runtime: Option<String>,
}

/// Stages as containerlab's `generate` takes them (shared with the containerlab personality).
#[derive(Args)]
pub struct StageArgs {
    /// Stages of a CLOS fabric: N, N:kind or N:kind:type, comma-separated (e.g.
    /// 4,2:linux,1:linux:spine); each node of a stage is linked to every node of the next
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Kind of the stages that name none (labwire: linux; containerlab: srl)
    #[arg(long)]
    pub kind: Option<String>,
    /// Image per kind: KIND=IMAGE, or IMAGE for --kind (repeat or comma-separate)
    #[arg(long, value_delimiter = ',')]
    pub image: Vec<String>,
    /// License file per kind: KIND=PATH, or PATH for --kind
    #[arg(long, value_delimiter = ',')]
    pub license: Vec<String>,
    /// Prefix of node names (node1-1, node1-2, …)
    #[arg(long, default_value = "node")]
    pub node_prefix: String,
    /// Prefix of group names (tier-1, …)
    #[arg(long, default_value = "tier")]
    pub group_prefix: String,
}

impl StageArgs {
    /// The topology text of lab `name` (stages of `default_kind` unless `--kind` or a stage
    /// says otherwise), with the management network settings given.
    pub fn generate(
        &self,
        name: &str,
        default_kind: &str,
        mgmt: [Option<&str>; 3],
    ) -> Result<String, String> {
        lab::generate::clab(&lab::generate::ClabSpec {
            name,
            kind: self.kind.as_deref().unwrap_or(default_kind),
            nodes: &self.nodes,
            images: &self.image,
            licenses: &self.license,
            node_prefix: &self.node_prefix,
            group_prefix: &self.group_prefix,
            network: mgmt[0],
            ipv4_subnet: mgmt[1],
            ipv6_subnet: mgmt[2],
        })
    }
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
        #[arg(long, value_delimiter = ',', required = true)]
        tiers: Vec<usize>,
    },
}

pub fn run(a: GenerateArgs) -> anyhow::Result<ExitCode> {
    let text = match &a.shape {
        Some(_) if !a.stages.nodes.is_empty() => {
            bail!("--nodes (containerlab's stages) and a ring or clos shape exclude each other")
        }
        Some(Shape::Ring { nodes }) => lab::generate::ring(&a.name, *nodes, a.mgmt_index),
        Some(Shape::Clos { tiers }) => {
            if tiers.contains(&0) {
                bail!("--tiers {tiers:?}: every tier needs at least one node");
            }
            lab::generate::clos(&a.name, tiers, a.mgmt_index)
        }
        None => a
            .stages
            .generate(&a.name, "linux", [None; 3])
            .map_err(|e| anyhow::anyhow!("{e}; or use `labwire generate ring|clos`"))?,
    };
    if a.deploy {
        let file = a
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.clab.yml", a.name)));
        std::fs::write(&file, &text).with_context(|| format!("write {}", file.display()))?;
        let lab = super::TopoArg {
            topo: Some(file),
            runtime: a.runtime.clone(),
            vars: Vec::new(),
        }
        .load()?;
        let opts = lab::deploy::DeployOptions {
            reconfigure: true,
            ..Default::default()
        };
        return super::deploy::deploy_then(
            lab,
            &opts,
            &lab::inspect::caller(),
            false,
            super::deploy::print_table,
        );
    }
    match a.output {
        Some(p) => std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
