//! `labwire inspect`: what is deployed, as a table or containerlab's JSON.

use std::process::ExitCode;

use anyhow::bail;
use clap::Args;

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub lab: super::LabRef,
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
        let name = a.lab.resolve()?;
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
