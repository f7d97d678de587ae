//! `labwire inspect`: what is deployed, as a table, containerlab's JSON or CSV; `--interfaces`:
//! each node's link interfaces as the topology wrote them and as Linux names them.

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
    #[arg(short, long, value_parser = ["table", "json", "csv"], default_value = "table")]
    pub format: String,
    /// Each node's link interfaces: the name as the topology wrote it and the Linux name
    #[arg(long)]
    pub interfaces: bool,
    /// Only these nodes (comma-separated, short or long names)
    #[arg(long, value_delimiter = ',')]
    pub node_filter: Vec<String>,
}

pub fn run(a: InspectArgs) -> anyhow::Result<ExitCode> {
    if a.interfaces {
        return interfaces(&a);
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

fn interfaces(a: &InspectArgs) -> anyhow::Result<ExitCode> {
    let names = if a.all {
        lab::state::recorded_labs()
    } else {
        vec![a.lab.resolve()?]
    };
    let mut labs = Vec::new();
    for name in names {
        match lab::inspect::lab(&name) {
            Some((l, _)) => {
                let mut rows = lab::inspect::interfaces(&l);
                if !a.node_filter.is_empty() {
                    rows.retain(|r| a.node_filter.contains(&r.node));
                }
                labs.push((name, rows));
            }
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
