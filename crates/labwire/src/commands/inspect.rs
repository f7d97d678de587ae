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
    /// Each node's link interfaces: the name as the topology wrote it and the Linux name
    #[arg(long)]
    pub interfaces: bool,
}

pub fn run(a: InspectArgs) -> anyhow::Result<ExitCode> {
    if a.interfaces {
        return interfaces(&a);
    }
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

fn interfaces(a: &InspectArgs) -> anyhow::Result<ExitCode> {
    let names = if a.all {
        lab::state::recorded_labs()
    } else {
        vec![a.lab.resolve()?]
    };
    let mut labs = Vec::new();
    for name in names {
        match lab::inspect::lab(&name) {
            Some((l, _)) => labs.push((name, lab::inspect::interfaces(&l))),
            None if a.all => {}
            None => bail!("lab {name} is not deployed"),
        }
    }
    if a.format == "json" {
        let m: serde_json::Map<String, serde_json::Value> = labs
            .iter()
            .map(|(n, rows)| (n.clone(), serde_json::to_value(rows).unwrap_or_default()))
            .collect();
        println!("{}", serde_json::to_string_pretty(&m)?);
    } else if labs.is_empty() {
        eprintln!("no labs are deployed");
    } else {
        print!("{}", lab::inspect::interfaces_table(&labs));
    }
    Ok(ExitCode::SUCCESS)
}
