//! `labwire inspect`: what is deployed, as a table or containerlab's JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

#[derive(Args)]
pub struct InspectArgs {
    /// Topology file of the lab
    #[arg(short = 't', long = "topo")]
    pub topo: Option<PathBuf>,
    /// Lab name
    #[arg(long, conflicts_with = "topo")]
    pub name: Option<String>,
    /// Every deployed lab
    #[arg(short, long, conflicts_with_all = ["topo", "name"])]
    pub all: bool,
    #[arg(short, long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

pub fn run(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let labs = if a.all {
        lab::inspect::all()
    } else {
        let name = match a.name {
            Some(n) => n,
            None => {
                super::TopoArg {
                    topo: a.topo,
                    runtime: None,
                }
                .load()?
                .name
            }
        };
        match lab::inspect::lab(&name) {
            Some((_, rows)) => vec![(name, rows)],
            None => bail!("lab {name} is not deployed"),
        }
    };
    if a.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&lab::inspect::to_json(&labs))?
        );
    } else if labs.is_empty() {
        eprintln!("no labs are deployed");
    } else {
        print!("{}", lab::inspect::table(&labs));
    }
    Ok(ExitCode::SUCCESS)
}
